"""List answer cells of submitted notebooks that reach around the checks.

    python scripts/scan_answers.py submitted/*/ch05/*.ipynb

For every nbgrader answer cell, prints what ``helpers.grading.suspicious`` finds
(rebinding ``check``, an attribute of ``check``/``helpers``/``numpy``/``torch``,
touching ``get_ipython``, ``builtins``, ``sys.modules``, ``setattr`` or
``helpers.grading``); exit status 1 when it finds anything. A flag is a reason to
read the answer, not a verdict (book/instructors.md, "What a determined student
can still do").
"""

from __future__ import annotations

import sys

from helpers import grading

if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    found = grading.scan(sys.argv[1:])
    print(f"{found} flag(s) in {len(sys.argv) - 1} notebook(s)")
    sys.exit(1 if found else 0)
