"""The notebooks' ``check(test_id)`` and ``validate()`` (notebook side): the registry's tests on the
functions of the student's kernel, with feedback written for a person (:mod:`autograde.kernel`)."""
from __future__ import annotations

import sys

from .errors import CheckFailure
from .registry import Registry, fresh_seed, prerequisite_failures, run_test
from .student import LocalStudent


def make_check(tests: Registry, assignment: str):
    """The ``check(test_id)`` function the notebooks import from ``autograde.<assignment>``.

    In a notebook a person drives (:func:`autograde.kernel.interactive`), a failing check shows its
    diagnosis as word-wrapped text and returns, so Run All goes on to the cells after it; in a batch
    run (nbgrader's autograde and validate, pytest, a script) it raises :class:`CheckFailure`, so
    the test cell has an error and scores 0. Warnings raised while the student's code runs are
    summarized in the message, not printed; the message says which cell run defined the functions
    under test, and warns when a later run of that cell failed (the check then tested the old one)."""
    from . import kernel

    def check(test_id: str, namespace: dict | None = None, *, hidden: bool = False, seed: int | None = None):
        """Check one of your functions against PyTorch on fresh random inputs.

        ``check("mse_loss")`` runs the visible cases on the functions defined in your notebook.
        A failure says what is wrong (in a notebook) or raises with the diagnosis (in a batch run);
        ``seed=`` (with the same ``hidden``) repeats a run exactly."""
        if test_id not in tests:
            raise ValueError(f"unknown test {test_id!r} for {assignment}; known: {', '.join(tests)}")
        if namespace is None:  # the caller's globals: the notebook's namespace
            namespace = sys._getframe(1).f_globals
        s = fresh_seed() if seed is None else int(seed)
        test = tests[test_id]
        student = LocalStudent(namespace)
        with kernel.record_warnings() as caught:
            v = run_test(test, student, s, hidden=hidden)
            before = None
            if not v.passed and not v.flag:
                before = prerequisite_failures(tests, test, student, s)
        from .device import reference_device

        notes, stale = kernel.origins(test.functions, namespace)
        warned = kernel.summarize_warnings(caught)
        where = f"PyTorch on {reference_device()}, float64; seed {s}"
        if not v.passed:
            again = f"check({test_id!r}, seed={s}" + (", hidden=True)" if hidden else ")")
            body = [v.message, *(before or []), *([warned] if warned else []), *notes, f"({where}; repeat with {again})"]
            if kernel.interactive():
                kernel.show("\n".join([*stale, "\u2718 " + body[0], *body[1:]]), "warn" if stale else "fail")
                return None
            raise CheckFailure("\n".join([*stale, "\u2718 " + body[0], *body[1:]] if stale else body))
        label = "hidden cases" if hidden else f"{v.cases} cases"
        print(f"\u2714 {test_id}: {label} passed ({where})")
        extra = [*notes, *([warned] if warned else [])]
        if extra:
            print("\n".join(kernel.wrap("  " + " ".join(extra))))
        if stale:
            kernel.show("\n".join(stale), "warn")

    def ready() -> None:
        """The set-up cell's last line: one line saying the checks work (and on what)."""
        from .device import reference_device, torch

        # the device only in a kernel: the grader's forked student processes never probe CUDA
        on = f" on {reference_device()}" if kernel.ipython() is not None else ""
        print(f"checks ready: PyTorch {torch().__version__.split('+')[0]}{on} ({assignment}, {len(tests)} checks)")

    def validate(notebook: str | None = None, timeout: float = 300):
        """Run the grader's checks (``python -m autograde validate``) on this notebook's SAVED file,
        in a separate process, and show the verdicts; first say when the saved file differs from
        the functions you ran. Save (Ctrl+S) before you run it."""
        kernel.validate(tests, assignment, notebook, sys._getframe(1).f_globals, timeout=timeout)

    check.ready = ready
    check.validate = validate
    return check
