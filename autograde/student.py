"""The student's code as a check sees it (grader side): :class:`Student` runs drivers and turns
their outcome into values or diagnoses; :class:`LocalStudent` runs them in this process (a
notebook's kernel, pytest), :class:`autograde.grading.sandbox.RemoteStudent` in an isolated one."""
from __future__ import annotations

import re
from typing import Callable

from .errors import CheckFailure, Forbidden
from .execution import call_function, execute, subject


class Student:
    """The student's code, seen from a check. Subclasses say where it runs (``_execute``)."""

    def _execute(self, driver: Callable, args: tuple, what: str) -> dict:  # pragma: no cover - abstract
        """The driver's plain outcome; ``what`` names the student's code in any failure it raises."""
        raise NotImplementedError

    def run(self, driver: Callable, *args, what: str | None = None):
        """Run a driver next to the student's code; return its plain result or raise the
        student's error as a :class:`CheckFailure` with a diagnosis. ``what`` names the student's
        code in messages (default: :func:`subject`, never the driver)."""
        what = what or subject(driver, args)
        outcome = self._execute(driver, args, what)
        err = outcome["error"]
        if err is not None:
            # a driver's own detection, or the grader's process refusing a framework / a normalization
            if err["type"] in ("Forbidden", "FrameworkUnavailable", "NormalizationUnavailable"):
                raise Forbidden(f"{what}: {err['message']}" if err["type"] != "Forbidden" else err["message"])
            if err["type"] == "DriverProblem":  # a driver's own diagnosis
                raise CheckFailure(err["message"])
            raise CheckFailure(describe_error(err, what))
        return outcome["value"]

    def call(self, name: str, *args, argnames: tuple[str, ...] = ()):
        """Call the student's function ``name`` on copies of ``args``; return its output.
        Fails if the function raised or changed one of its inputs in place."""
        res = self.run(call_function, name, *args, what=name)
        if res["mutated"]:
            names = [argnames[i] if i < len(argnames) else f"argument {i + 1}" for i in res["mutated"]]
            raise CheckFailure(
                f"{name} changed its input {', '.join(names)} in place. A loss function must not modify "
                f"its arguments: compute on a copy (e.g. `d = pred - target`, not `pred -= target`)."
            )
        return res["out"]


class LocalStudent(Student):
    """Student code living in a namespace of this process (the notebook kernel, or pytest)."""

    def __init__(self, namespace: dict):
        self.namespace = namespace

    def _execute(self, driver, args, what):
        return execute(driver, self.namespace, args)


def describe_error(err: dict, what: str) -> str:
    kind, msg, where = err["type"], err["message"], err.get("where") or ""
    at = f" ({where})" if where else ""
    if kind == "MissingName":
        return f"`{msg}` is not defined. Run the cell that defines it, and keep the name `{msg}` exactly."
    if kind == "NameError" and re.search(r"name '(np|torch|nn)' is not defined", msg):
        return (f"{what} raised NameError: {msg}{at}. Run the set-up cell at the top of the notebook first "
                "(it imports numpy as np; section 5's cell imports torch and nn), then this function's cell.")
    if kind == "NotImplementedError":
        return f"{what} is not implemented yet: it still raises NotImplementedError{at}. Replace the `raise` with your code."
    return f"{what} raised {kind}: {msg}{at}"
