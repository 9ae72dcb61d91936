"""Running student code (student side): :func:`execute` runs a *driver* next to the student's code
and reports its outcome as plain data; :func:`call_function` is the generic driver.

Drivers are module-level functions ``driver(namespace, *args)`` that call the student's code and
return plain data only (:mod:`autograde.plain`): that is all that ever crosses from the student's
side to the grader's. This module runs in the notebook's kernel (``check()``) and in the grader's
student process alike.
"""
from __future__ import annotations

import copy
import os
import time
import traceback
from typing import Callable

import numpy as np

from .grading.wire import error_record
from .guard import FrameworkGuard, _POLICY
from .plain import same, to_plain


def _student_frame_summary(exc: BaseException) -> str:
    """The last traceback line that is in the student's code (not in this package)."""
    here = os.path.dirname(os.path.abspath(__file__))
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not os.path.abspath(f.filename).startswith(here)]
    if not frames:
        return ""
    f = frames[-1]
    return f"line {f.lineno} in {f.name}" + (f": {f.line.strip()}" if f.line else "")


def subject(driver: Callable, args: tuple) -> str:
    """The student's function or class a driver exercises, to name it in a message: the driver's
    first argument when that is a name (``call_function(ns, "mse_loss", ...)``), else the
    driver's ``subject`` attribute."""
    if args and isinstance(args[0], str) and args[0].isidentifier():
        return args[0]
    return getattr(driver, "subject", "your code")


def execute(driver: Callable, namespace: dict, args: tuple) -> dict:
    """Run ``driver(namespace, *args)`` and report its outcome as plain data (never raises, but
    for a KeyboardInterrupt in a notebook, which stops the cell as usual).

    While a test runs under a framework policy (:func:`framework_policy`, set by :func:`run_test`
    from ``Test.framework``), the driver runs under :class:`FrameworkGuard`: a numpy answer that
    calls into torch (or another deep-learning framework), or a torch answer that calls a built-in
    normalization, ends in a ``Forbidden`` error, whatever the student's code did with exceptions,
    and also when it raised afterwards."""
    t0 = time.perf_counter()
    try:
        policy = _POLICY.get()
        if policy:
            guard = FrameworkGuard(policy)
            try:
                with guard:
                    raw = driver(namespace, *args)
            except Exception:
                guard.verdict(subject(driver, args))  # reaching the framework counts, raise or not
                raise
            guard.verdict(subject(driver, args))
        else:
            raw = driver(namespace, *args)
        value = to_plain(raw)
        return {"value": value, "error": None, "seconds": time.perf_counter() - t0}
    except BaseException as exc:  # noqa: BLE001 - the student's exception is a result, not our crash
        if isinstance(exc, KeyboardInterrupt):  # Ctrl+C stops a notebook's cell (the grader catches it outside)
            raise
        return {"value": None, "error": error_record(exc, _student_frame_summary(exc)), "seconds": time.perf_counter() - t0}


class MissingName(NameError):
    pass


def graded(namespace: dict, name: str):
    if name not in namespace:
        raise MissingName(name)
    return namespace[name]


def call_function(namespace: dict, name: str, *args):
    """Driver: call the student's function ``name`` on copies of ``args``.

    Returns ``{"out": <plain output>, "mutated": [index of each argument it changed]}``."""
    fn = graded(namespace, name)
    given = copy.deepcopy(args)
    out = fn(*given)
    mutated = [i for i, (a, g) in enumerate(zip(args, given)) if isinstance(a, np.ndarray) and not same(a, g)]
    return {"out": out, "mutated": mutated}


def construct(namespace: dict, name: str, hypers: list):
    """Driver: ``<name>([array], **hyper)`` for each hyper (an optimizer's arguments): the name of
    the exception it raised, or None. NotImplementedError propagates (the stub)."""
    cls = graded(namespace, name)
    out = []
    for hyper in hypers:
        try:
            cls([np.zeros(3)], **hyper)
            out.append(None)
        except NotImplementedError:
            raise
        except Exception as exc:  # noqa: BLE001 - which exception it was is the result
            out.append(type(exc).__name__)
    return out
