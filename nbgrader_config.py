"""nbgrader settings for using the course's notebooks as they are.

The notebooks fence solutions with nbgrader's ``### BEGIN SOLUTION`` /
``### END SOLUTION`` but carry no nbgrader cell metadata, so metadata is not
enforced here.  The stub matches what ``make student`` writes.
"""

c = get_config()  # noqa: F821  (provided by nbgrader when it reads this file)
c.ClearSolutions.enforce_metadata = False
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
