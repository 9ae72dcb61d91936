"""autograde: PyTorch references, checks and the instructor CLI of the course.

One package per assignment (``autograde.loss_functions``, ...) holds ``reference.py`` (PyTorch)
and ``checks.py`` (the tests); ``core.py`` gathers the check machinery they share (see its docstring
for the modules and the trust boundary; autograde/README.md for the data flow).
"""
from .errors import CheckFailure  # noqa: F401
