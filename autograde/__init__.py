"""autograde: PyTorch references, checks and the instructor CLI of the course.

One package per assignment (``autograde.loss_functions``, ...) holds ``reference.py`` (PyTorch)
and ``checks.py`` (the tests); ``core.py`` gathers the check machinery they share (see its docstring
for the modules and the trust boundary; autograde/README.md for the data flow).
"""
from .errors import CheckFailure  # noqa: F401


def lazy_check(assignment: str):
    """The module ``__getattr__`` of an assignment package: ``check`` and ``validate`` import the
    checks (and torch) only when first asked for, so that the grader's process for numpy
    exercises imports the package's drivers without them."""

    def __getattr__(name: str):
        if name not in ("check", "validate"):
            raise AttributeError(f"module 'autograde.{assignment}' has no attribute {name!r}")
        import importlib
        import sys

        from .check import make_check

        check = make_check(importlib.import_module(f"autograde.{assignment}.checks").TESTS, assignment)
        vars(sys.modules[f"autograde.{assignment}"]).update(check=check, validate=check.validate)
        return check if name == "check" else check.validate

    return __getattr__
