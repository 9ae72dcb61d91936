"""Tests and their registry (grader side): one :class:`Test` per nbgrader test cell, run by
:func:`run_test` against a :class:`~autograde.student.Student` on a seeded :class:`Context`."""
from __future__ import annotations

import inspect
import os
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .errors import CheckFailure, Forbidden
from .guard import framework_policy
from .student import Student


@dataclass
class Context:
    """What a test may use besides the student: the seeded generator, the reference device,
    and whether to run the hidden cases."""

    seed: int
    hidden: bool = False
    rng: np.random.Generator = field(init=False)
    cases: int = 0

    def __post_init__(self):
        self.rng = np.random.default_rng(self.seed)

    @property
    def device(self) -> str:
        from .device import reference_device

        return reference_device()


@dataclass(frozen=True)
class Test:
    """One graded test: nbgrader cell ``test_<id>``; its points live in the solution notebook."""

    id: str
    fn: Callable[[Student, Context], None]
    functions: tuple[str, ...]  # the graded names it calls
    framework: str = "numpy"  # "numpy": no deep-learning framework; "torch": no built-in normalization
    doc: str = ""
    after: tuple[str, ...] = ()  # tests of the same code that come first: a notebook check names them when they fail too

    @property
    def cell_id(self) -> str:
        return f"test_{self.id}"


@dataclass(frozen=True)
class Advice:
    """Feedback that costs no points (e.g. "vectorize this"), given once the tests ``after`` pass.
    ``fn(student, ctx)`` returns a message, or None when there is nothing to say."""
    id: str
    fn: Callable
    after: tuple[str, ...]
    framework: str = "numpy"


class Registry(dict):
    """``id -> Test`` for one assignment, filled by the :meth:`test` decorator; its
    :attr:`advice` list by :meth:`advise`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.advice: list[Advice] = []

    def test(self, id: str, *, functions: tuple[str, ...] | None = None, framework: str = "numpy",
             after: tuple[str, ...] = ()):
        def deco(fn):
            self[id] = Test(id, fn, tuple(functions or (id,)), framework, inspect.getdoc(fn) or "", tuple(after))
            return fn

        return deco

    def advise(self, id: str, *, after: tuple[str, ...], framework: str = "numpy"):
        def deco(fn):
            self.advice.append(Advice(id, fn, tuple(after), framework))
            return fn

        return deco


def run_advice(advice: Advice, student: Student, seed: int) -> str | None:
    """The advice's message, or None (also when the student's code fails: tests report that)."""
    try:
        with framework_policy(advice.framework):
            return advice.fn(student, Context(seed=seed, hidden=False))
    except CheckFailure:
        return None


@dataclass
class Verdict:
    test: str
    passed: bool
    message: str
    seed: int
    cases: int
    seconds: float
    flag: str = ""  # "forbidden" when the test failed because of forbidden use


def run_test(test: Test, student: Student, seed: int, hidden: bool = False) -> Verdict:
    """Run one test; a CheckFailure becomes a failed verdict with its diagnosis."""
    ctx = Context(seed=seed, hidden=hidden)
    t0 = time.perf_counter()
    try:
        with framework_policy(test.framework):
            test.fn(student, ctx)
        ok, msg, flag = True, "", ""
    except CheckFailure as exc:
        ok, msg, flag = False, str(exc), "forbidden" if isinstance(exc, Forbidden) else ""
    return Verdict(test.id, ok, msg, seed, ctx.cases, time.perf_counter() - t0, flag)


def fresh_seed() -> int:
    return int.from_bytes(os.urandom(4), "little") % 10**9


def prerequisite_failures(tests: Registry, test: Test, student: Student, seed: int) -> list[str]:
    """For a failed test: the tests it builds on (``Test.after``) that fail too on the same seed
    (visible cases), each as one line naming it and its diagnosis."""
    out = []
    for pid in test.after:
        if pid not in tests:
            continue
        pv = run_test(tests[pid], student, seed, hidden=False)
        if not pv.passed:
            first = pv.message.splitlines()[0] if pv.message else ""
            out.append(f"check({pid!r}) fails too on these inputs, and this test runs the same "
                       f"{' and '.join(tests[pid].functions)}: fix that first. It says: {first}")
    return out
