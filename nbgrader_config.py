"""The course's nbgrader settings, for the course directory ``make nbgrader`` writes.

``make nbgrader`` copies this file to ``_build/nbgrader/course_config.py`` every
time, and writes ``_build/nbgrader/nbgrader_config.py`` only when it is missing:
that file loads this one and then holds the instructor's own settings (such as
``c.Exchange.root``), which ``make nbgrader`` never overwrites. Run every
nbgrader command from that directory (see book/instructors.md). The repository
itself is not an nbgrader course directory: its notebooks carry no nbgrader
metadata, ``scripts/nbgrader_bundle.py`` adds it.
"""

c = get_config()  # noqa: F821  (provided by nbgrader when it reads this file)

# The course's name, used by release_assignment / fetch / submit / collect
# when an exchange directory is shared on a JupyterHub.
c.CourseDirectory.course_id = "second-order-autodiff"

# Released notebooks keep the outputs and figures of the chapter (students read
# them); the bundle has already cleared the outputs of answer and test cells.
c.ClearOutput.enabled = False

# The stubs, identical to the ones `make student` writes.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# The model answer and rubric of a written answer sit in a locked markdown cell
# after the student's answer cell, between ### BEGIN MARK SCHEME and
# ### END MARK SCHEME: generate_assignment removes them from the release and
# autograde restores them, so the formgrader shows them under the answer. nbgrader
# expects mark schemes in "task" cells only; this cell is not one (its points are
# on the answer cell), hence:
c.ClearMarkScheme.enforce_metadata = False

# A chapter runs in seconds; this leaves room on a loaded machine.
c.Execute.timeout = 300

# `nbgrader export` writes one row per student and graded cell (course_export.py,
# copied beside this file; nbgrader puts the working directory on sys.path).
c.ExportApp.plugin_class = "course_export.PerExerciseCsvExportPlugin"
