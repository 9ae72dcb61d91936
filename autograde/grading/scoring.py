"""Points from verdicts (grader side): what a graded submission earns under the solution's points
and the course's dependent-failure policy, computed from the result record alone, so that a
change of points or of policy rescores every result without running any student code.

A result records, per test, whether it ``passed``; its ``score`` and ``max_score`` follow from
the plan's points and the policy:

* ``charge`` (the default): every failed test costs its points, also one that fails along with
  an earlier test it builds on (``after=(...)`` in the assignment's ``checks.py``). The feedback
  names that earlier test, so the student knows where to start.
* ``waive``: a failed test whose earlier test (``after``, directly or through another) failed too
  keeps its points; it is marked ``waived_by`` that test. One mistake is then charged once, on
  the test that checks it; the instructor accepts that a second, independent mistake in the later
  function may go unpunished while the earlier one is wrong.
"""
from __future__ import annotations

from dataclasses import replace

from ..paths import load_tests
from .records import Plan, Result

POLICIES = ("charge", "waive")
DEFAULT_POLICY = "charge"

POLICY_TEXT = {
    "charge": "every failed test costs its points, also one that fails along with an earlier test it builds on",
    "waive": "a test that fails along with an earlier test it builds on keeps its points: the mistake is charged "
             "once, on the earlier test",
}


def prerequisites(after: dict[str, tuple[str, ...]], tid: str) -> list[str]:
    """The tests ``tid`` builds on, directly or through another, in the order they are declared."""
    seen: list[str] = []
    todo = list(after.get(tid, ()))
    while todo:
        p = todo.pop(0)
        if p not in seen and p != tid:
            seen.append(p)
            todo.extend(after.get(p, ()))
    return seen


def failed_prerequisites(after: dict[str, tuple[str, ...]], tid: str, passed: dict[str, bool]) -> list[str]:
    """The tests ``tid`` builds on that this submission failed."""
    return [p for p in prerequisites(after, tid) if p in passed and not passed[p]]


def after_of(assignment: str) -> dict[str, tuple[str, ...]]:
    """test id -> the tests it builds on (``Test.after``), from the assignment's checks."""
    return {tid: tuple(t.after) for tid, t in load_tests(assignment).items()}


def as_scored(plan: Plan, result: Result) -> Plan:
    """``plan`` with each test's points as ``result`` was scored with (its tests' ``max_score``):
    the plan a result's key was computed from when only test points changed since."""
    scored = {(nb.notebook, t.test_id): t.max_score for nb in result.notebooks for t in nb.tests}
    return replace(plan, notebooks=tuple(
        replace(nb, tests=tuple((tid, scored.get((nb.name, tid), pts)) for tid, pts in nb.tests)) for nb in plan.notebooks))


def rescore(result: Result, plan: Plan, policy: str = DEFAULT_POLICY,
            after: dict[str, tuple[str, ...]] | None = None) -> Result:
    """``result`` scored with ``plan``'s points under ``policy``: each test's ``max_score`` and
    ``score``, the totals, ``manual_max_score`` and ``policy`` (recorded only when it is not the
    default, so a default run's records keep their shape)."""
    if policy not in POLICIES:
        raise ValueError(f"unknown dependent-failure policy {policy!r} (one of {', '.join(POLICIES)})")
    after = after_of(result.assignment) if after is None else after
    points = {(nb.name, tid): pts for nb in plan.notebooks for tid, pts in nb.tests}

    def scored(nb, t, passed):
        waived = [] if t.passed or policy != "waive" or t.flags else failed_prerequisites(after, t.test_id, passed)
        max_score = points.get((nb.notebook, t.test_id), t.max_score)
        return replace(t, max_score=max_score, score=max_score if t.passed or waived else 0.0,
                       waived_by=waived[0] if waived else None)

    def notebook(nb):
        passed = {t.test_id: t.passed for t in nb.tests}
        return replace(nb, tests=tuple(scored(nb, t, passed) for t in nb.tests))

    notebooks = tuple(notebook(nb) for nb in result.notebooks)
    return replace(result, notebooks=notebooks, score=sum(t.score for nb in notebooks for t in nb.tests),
                   max_score=plan.max_score, manual_max_score=plan.manual_max_score,
                   policy=None if policy == DEFAULT_POLICY else policy)


def total(result: Result, plan: Plan, hand: dict | None = None, late_fraction: float = 0.0) -> dict:
    """The submission's grade: autograded points (a hand score given to a test cell in Formgrader
    replaces the autograder's, as in nbgrader), hand-graded points, extra credit, and the late
    penalty, a fraction of the possible points (as Canvas's late policy deducts), never below zero.
    ``pending``: hand-graded cells not graded yet (they count 0 until they are)."""
    hand = hand or {}
    auto = 0.0
    for nb in result.notebooks:
        scores = hand.get(nb.notebook, {}).get("scores", {})
        for t in nb.tests:
            given = scores.get(f"test_{t.test_id}", [None])[0]
            auto += float(given) if given is not None else float(t.score)
    by_hand = extra = 0.0
    for h in hand.values():
        extra += sum(float(bonus or 0) for _, _, bonus in h.get("scores", {}).values())
    pending = []
    for nb in plan.notebooks:
        scores = hand.get(nb.name, {}).get("scores", {})
        for cell, _ in nb.manual:
            if scores.get(cell, [None])[0] is None:
                pending.append(cell)
            else:
                by_hand += float(scores[cell][0])
    possible = float(result.max_score) + float(result.manual_max_score)
    earned = auto + by_hand + extra
    penalty = min(late_fraction * possible, earned)
    return {"auto": auto, "hand": by_hand, "extra": extra, "penalty": penalty, "total": earned - penalty,
            "possible": possible,
            "hand_possible": float(result.manual_max_score), "pending": pending}
