"""nbgrader settings for the course directory that ``make nbgrader`` writes.

``make nbgrader`` copies this file to ``_build/nbgrader/nbgrader_config.py``;
run every nbgrader command from that directory (see book/instructors.md).
The repository itself is not an nbgrader course directory: its notebooks
carry no nbgrader metadata, ``scripts/nbgrader_bundle.py`` adds it.
"""

c = get_config()  # noqa: F821  (provided by nbgrader when it reads this file)

# The course's name, used by release_assignment / fetch / submit / collect
# when an exchange directory is shared on a JupyterHub.
c.CourseDirectory.course_id = "second-order-autodiff"

# Released notebooks keep the outputs and figures of the chapter (students read
# them); the bundle has already cleared the outputs of answer and test cells.
c.ClearOutput.enabled = False

# The stub, identical to the one `make student` writes.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# A chapter runs in seconds; this leaves room on a loaded machine.
c.Execute.timeout = 300

# `nbgrader export` writes one row per student and exercise (course_export.py,
# copied beside this file; nbgrader puts the working directory on sys.path).
c.ExportApp.plugin_class = "course_export.PerExerciseCsvExportPlugin"
