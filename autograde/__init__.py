"""autograde: PyTorch references, checks and the instructor CLI of the course.

One package per assignment (``autograde.loss_functions``, ...) holds ``reference.py`` (PyTorch)
and ``checks.py`` (the tests); ``core.py`` is the check machinery they share.
"""
from .core import CheckFailure  # noqa: F401
