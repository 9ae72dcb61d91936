"""The check machinery shared by every assignment (this module gathers its names; each lives in a
module of its own, on one side of the trust boundary).

A *test* (one per nbgrader test cell, e.g. ``mse_loss`` in cell ``test_mse_loss``) is a function
``test(student, ctx)`` that draws inputs from ``ctx.rng``, asks the student's code for outputs
through ``student.call(name, *args)`` / ``student.run(driver, *args)``, computes the PyTorch
reference in *this* process and compares with :func:`expect_close`, raising :class:`CheckFailure`
with a diagnosis a student can act on. It is written once and serves

* the notebook's visible and hidden test cells (``check("mse_loss")``: :class:`LocalStudent`,
  the student's code in the same kernel),
* pytest (the solution and the mistake catalog, also through :class:`LocalStudent`),
* the instructor grader (a student object whose ``run`` executes the *driver* in an isolated
  process and returns plain arrays).

Drivers are module-level functions ``driver(namespace, *args)`` that run next to the student's
code, call it, and return plain data only (see :func:`to_plain`): that is all that ever crosses
from the student's side to the grader's.

Student side (runs next to the student's code: the notebook kernel, the grader's student
process): :mod:`.errors`, :mod:`.plain` (plain data), :mod:`.execution` (drivers and their
executor), :mod:`.guard` (framework use). Grader side (never imports student code):
:mod:`.student` (the student proxy), :mod:`.compare` (tolerances, :func:`expect_close`),
:mod:`.registry` (tests, verdicts); notebook side: :mod:`.check` (``check()``), :mod:`.kernel`.
The grader's student process imports only the student side (``tests/test_architecture.py``).
"""
from __future__ import annotations

from .check import make_check
from .compare import DIAGNOSIS, FLOAT32, FLOAT64, Tol, as_numeric, expect_close, scaled, tol_for
from .errors import CheckFailure, DriverProblem, Forbidden
from .execution import MissingName, call_function, execute, graded, subject
from .guard import FRAMEWORKS, NORMALIZATIONS, FrameworkGuard, current_policy, framework_policy, watch_threads
from .plain import Opaque, same, to_plain
from .registry import (Advice, Context, Registry, Test, Verdict, fresh_seed, prerequisite_failures, run_advice,
                       run_test)
from .student import LocalStudent, Student, describe_error

__all__ = ["Advice", "CheckFailure", "Context", "DIAGNOSIS", "DriverProblem", "FLOAT32", "FLOAT64", "FRAMEWORKS", "Forbidden",
           "FrameworkGuard", "LocalStudent", "MissingName", "NORMALIZATIONS", "Opaque", "Registry", "Student",
           "Test", "Tol", "Verdict", "as_numeric", "call_function", "current_policy", "describe_error", "execute",
           "expect_close", "framework_policy", "fresh_seed", "graded", "make_check", "prerequisite_failures",
           "run_advice", "run_test", "same", "scaled", "subject", "to_plain", "tol_for", "watch_threads"]
