"""`python -m autograde validate NOTEBOOK`: the grader's isolated checks, visible cases only.

The student's notebook runs exactly as in grading (its code cells in a separate process, the
tests driven from this one, framework use and tampering detected) but with ``hidden=False``:
what passes here passes the visible part of grading. Prints a verdict per test with its
diagnosis; exit status 0 when every test passes with no flag, 1 otherwise, 2 (one line on
stderr) when the file is missing or unreadable or its assignment cannot be told.
"""
from __future__ import annotations

import sys
from pathlib import Path

from .. import notebook
from ..core import fresh_seed
from ..paths import UsageError, assignments, course_folder, load_tests, require_assignment
from . import isolation
from .feedback import FLAG_TEXT
from .grader import grade_notebook, make_plan
from .records import Job, Limits, Plan, PlanNotebook
from .submissions import read_files


def plan_from_notebook(path: Path, nb, only: str | None = None) -> tuple[str, Plan, PlanNotebook]:
    """Without the course folder (autograde installed with pip, as on Colab): the tests are the
    notebook's own test cells (points from their nbgrader metadata), the assignment the one
    whose checks know every one of them."""
    tests = tuple((notebook.test_id(gid), notebook.points(meta)) for gid, meta in notebook.grading_cells(nb).items())
    if not tests:
        raise UsageError(f"{path.name}: no autograded test cells, nothing to validate (its answers are graded by hand)")
    for a in [require_assignment(only)] if only else assignments():
        registry = load_tests(a)
        if all(t in registry for t, _ in tests):
            pnb = PlanNotebook(path.name, tests)
            return a, Plan(a, (pnb,)), pnb
    raise UsageError(f"{path.name}: its test cells are not those of "
                     f"{only or 'any assignment of this autograde (' + ', '.join(assignments()) + ')'}"
                     f" (test cells: {', '.join(t for t, _ in tests)})")


def infer(path: Path, nb) -> tuple[str, Plan, PlanNotebook]:
    """(assignment, plan, plan notebook) for a student notebook: its folder's name when that is
    an assignment, else the assignment whose solution notebooks share its test cells."""
    ids = {notebook.test_id(gid) for gid in notebook.grading_cells(nb)}
    folder = path.resolve().parent.name
    candidates = [folder] if folder in assignments() else assignments()
    best = None
    for a in candidates:
        try:
            plan = make_plan(a)
        except UsageError:
            continue
        for pnb in plan.notebooks:
            overlap = len(ids & {t for t, _ in pnb.tests}) + (2 if pnb.name == path.name else 0)
            if a == folder:
                overlap += 1
            if overlap and (best is None or overlap > best[0]):
                best = (overlap, a, plan, pnb)
    if best is None:
        raise UsageError(f"{path.name}: cannot tell which assignment this notebook belongs to "
                         f"(known: {', '.join(assignments())}); pass --assignment")
    return best[1], best[2], best[3]


def validate(path: str | Path, *, assignment: str | None = None, seed: int | None = None,
             timeout: float = Limits.timeout, memory: int = Limits.memory, out=sys.stdout) -> int:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such notebook")
    try:
        data = path.read_bytes()
        nb = notebook.loads(data, path.name)
    except (OSError, notebook.InvalidNotebook) as exc:
        raise UsageError(str(exc) if isinstance(exc, notebook.InvalidNotebook)
                         else f"{path.name}: cannot be read ({exc.strerror})") from None
    if not course_folder():
        assignment, plan, pnb = plan_from_notebook(path, nb, assignment)
    elif assignment:
        require_assignment(assignment)
        plan = make_plan(assignment)
        pnb = plan.notebook(path.name) or plan.notebooks[0]
    else:
        assignment, plan, pnb = infer(path, nb)
    seed = fresh_seed() if seed is None else int(seed)
    isolate = isolation.problem() is None  # a student's own machine may not allow the sandbox: their code, their machine
    job = Job(student_id="you", assignment=assignment, plan=plan.slim(), notebooks={path.name: data},
              files=read_files(path.resolve().parent, known={path.name: data}), limits=Limits(timeout=timeout, memory=memory),
              seed=seed, hidden=False, isolate=isolate)
    res = grade_notebook(job, pnb, data, path.name)
    p = lambda *a: print(*a, file=out)  # noqa: E731
    where = "in a separate, sandboxed process" if isolate else "in a separate process (no sandbox on this machine)"
    p(f"validate {path.name} ({assignment}, visible cases, seed {seed}; your code ran {where})")
    for t in res.tests:
        pts = f"{t.max_score:g} point{'s' if t.max_score != 1 else ''}"
        if t.passed:
            p(f"\u2714 {t.test_id} ({pts}): {t.cases} cases passed")
        else:
            flags = f" [{';'.join(t.flags)}]" if t.flags else ""
            p(f"\u2718 {t.test_id} ({pts}){flags}:")
            for line in t.message.splitlines():
                p(f"    {line}")
    for a in res.advice:
        p(f"advice (no points): {a['message']}")
    for err in res.cell_errors:
        p(f"note: {err} (the cell was skipped)")
    for f in res.flags:
        p(f"flag {f}: {FLAG_TEXT.get(f, '')}")
    for d in [m for _, m in res.events] + list(res.tamper):
        p(f"    {d}")
    passed = sum(t.passed for t in res.tests)
    p(f"{passed}/{len(res.tests)} tests pass their visible cases; the grader adds hidden cases. "
      f"Repeat this run with --seed {seed}.")
    return 0 if passed == len(res.tests) and not res.flags else 1
