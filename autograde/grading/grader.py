"""Grading one submission (one student, one assignment) in the grader's process.

:func:`make_plan` reads the *trusted* solution notebooks: which notebooks an assignment has,
which tests each holds and their points (nbgrader metadata of the test cells), and the
manually graded cells. :func:`grade_job` grades one submission against a plan: for each
notebook it starts an isolated student process (:class:`~.sandbox.Sandbox`) on the student's
code cells, runs every test through :class:`~.sandbox.RemoteStudent` with ``hidden=True`` on a
seed derived from (seed base, student, assignment, notebook), and scores each test all or
nothing. Everything a job needs travels inside it (notebook bytes included), so a job can run
on a Dask worker that has the ``autograde`` package but not the course folders.
"""
from __future__ import annotations

import ast
import hashlib
import hmac
import re
import time
import traceback
from dataclasses import replace

from .. import core, notebook
from ..device import reference_device
from ..paths import SOLUTIONS, UsageError, load_tests, require_assignment, solution_notebooks
from . import refcache
from .records import GraderError, Job, NotebookResult, Plan, PlanNotebook, Result, TestRecord
from .sandbox import BudgetSpent, RemoteStudent, Sandbox
from .submissions import MAX_NOTEBOOK_BYTES

FLAGS = ("tampering", "forbidden", "timeout", "crash", "memory", "invalid-output", "invalid-notebook", "unsafe-file",
         "missing")
FORMAT = 1
CHECK_LINE = re.compile(r"\u2714 (\w+): [^\n]*?seed (\d+)\)")


def order_flags(flags) -> list[str]:
    s = set(flags)
    return [f for f in FLAGS if f in s]


def derive_seed(seed_base: int | bytes, student_id: str, assignment: str, notebook_name: str) -> int:
    """The submission's seed: deterministic, different per student, assignment and notebook.
    ``seed_base`` is the instructor's ``--seed`` (anyone who knows it and the checks can compute
    the inputs) or the course secret (bytes: a keyed hash nobody can predict without it)."""
    msg = f"\0{student_id}\0{assignment}\0{notebook_name}"
    if isinstance(seed_base, bytes):
        h = hmac.new(seed_base, msg.encode(), hashlib.sha256).digest()
    else:
        h = hashlib.sha256(f"{seed_base}{msg}".encode()).digest()
    return int.from_bytes(h[:8], "big") % 1_000_000_000


def secret_label(secret: bytes) -> str:
    """What results record instead of a secret: a fingerprint that changes with it."""
    return "secret:" + hmac.new(secret, b"fingerprint", hashlib.sha256).hexdigest()[:12]


# ---------------------------------------------------------------------------------------------
# The plan: from the trusted solution notebooks
# ---------------------------------------------------------------------------------------------
def make_plan(assignment: str) -> Plan:
    """Notebooks, tests and points of an assignment, from ``solutions/<assignment>/*.ipynb``."""
    require_assignment(assignment)
    paths = solution_notebooks(assignment)
    if not paths:
        raise UsageError(f"{assignment}: grading needs the course folder ({SOLUTIONS / assignment}/*.ipynb not found)")
    registry = load_tests(assignment)
    notebooks = []
    for path in paths:
        nb = notebook.read(path)
        tests, manual, cells = [], [], []
        for cell in nb.cells:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if not meta.get("grade") and not meta.get("solution") and not meta.get("locked"):
                continue
            cells.append({"grade_id": meta.get("grade_id"), "cell_type": cell.cell_type, "grade": bool(meta.get("grade")),
                          "solution": bool(meta.get("solution")), "locked": bool(meta.get("locked")),
                          "points": notebook.points(meta), "source": cell.source})
            if not meta.get("grade"):
                continue
            if notebook.is_test_cell(cell):
                tid = notebook.test_id(meta["grade_id"])
                if tid not in registry:
                    raise UsageError(f"{path.name}: test cell {meta['grade_id']} has no check in autograde.{assignment}.checks")
                tests.append((tid, notebook.points(meta)))
            else:
                manual.append((meta["grade_id"], notebook.points(meta)))
        notebooks.append(PlanNotebook(path.name, tuple(tests), tuple(manual), tuple(cells)))
    return Plan(assignment, tuple(notebooks))


# ---------------------------------------------------------------------------------------------
# One submission
# ---------------------------------------------------------------------------------------------
def _graded_names(plan_nb: PlanNotebook, tests: core.Registry) -> set[str]:
    return {f for tid, _ in plan_nb.tests for f in tests[tid].functions}


def _defines(src: str, names: set[str]) -> bool:
    try:
        tree = ast.parse(src)
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # too deep for the parser: the cell is text here
        return any(re.search(rf"\bdef\s+{re.escape(n)}\b|\bclass\s+{re.escape(n)}\b", src) for n in names)
    return any(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name in names
               for node in ast.walk(tree))


def answers_of(nb, graded: set[str]) -> list[dict]:
    """The student's answers: solution cells (by nbgrader metadata) and any other code cell that
    defines a graded name; never a test cell."""
    out = []
    for i, cell in enumerate(nb.cells):
        if notebook.is_test_cell(cell):
            continue
        src = cell.source  # a str: notebook.loads joins it
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") or (cell.get("cell_type") == "code" and _defines(src, graded)):
            out.append({"cell": i, "kind": cell.get("cell_type", "code"), "grade_id": meta.get("grade_id"),
                        "source": src[:20000]})
    return out


def saved_checks(nb) -> dict[str, list[int]]:
    """test id -> seeds of the ✔ lines the notebook's saved test-cell outputs show."""
    found: dict[str, list[int]] = {}
    for cell in nb.cells:
        if not notebook.is_test_cell(cell):
            continue
        for out in cell.get("outputs", []) or []:
            texts = [out.get("text")] if out.get("output_type") == "stream" else []
            texts += (out.get("data") or {}).values()
            for text in texts:  # notebook.loads joins text; anything else (a JSON value...) shows no ✔
                if not isinstance(text, str):
                    continue
                for tid, seed in CHECK_LINE.findall(text):
                    found.setdefault(tid, [])
                    if int(seed) not in found[tid]:
                        found[tid].append(int(seed))
    return found


def parse(data: bytes, name: str, graded: set[str]) -> tuple[list[tuple[int, str]], list[dict], dict[str, list[int]]]:
    """(student cells, answers, ✔ lines) of a submitted file. Whatever the file holds (corrupt,
    huge, nested too deep for the parsers, fields of the wrong types), the only exception is
    :class:`~autograde.notebook.InvalidNotebook`."""
    try:
        if len(data) > MAX_NOTEBOOK_BYTES:
            raise notebook.InvalidNotebook(f"{name}: {len(data) / 2**20:.0f} MiB, more than the "
                                           f"{MAX_NOTEBOOK_BYTES // 2**20} MiB a notebook may have")
        nb = notebook.loads(data, name)
        return notebook.student_cells(nb), answers_of(nb, graded), saved_checks(nb)
    except notebook.InvalidNotebook:
        raise
    except Exception as exc:  # noqa: BLE001 - RecursionError, MemoryError, a list where a dict belongs...
        raise notebook.InvalidNotebook(f"{name}: not a readable notebook ({type(exc).__name__}: {str(exc)[:200]})") from None


def _match_notebook(name: str, available: dict[str, bytes | None], single: bool) -> tuple[str | None, bytes | None]:
    if available.get(name) is not None:
        return name, available[name]
    for other, data in available.items():
        if other.lower() == name.lower() and data is not None:
            return other, data
    present = [k for k, v in available.items() if v is not None]
    if single and len(present) == 1:
        return present[0], available[present[0]]
    return None, None


def kind_of(test) -> str:
    """Which student server runs a test: "numpy" (no deep-learning framework exists there) or
    "torch" (built-in normalizations disabled)."""
    return "numpy" if test.framework == "numpy" else "torch"


def job_seed(job: Job, name: str) -> int:
    """The seed of one notebook of a job."""
    if job.seed is not None:
        return int(job.seed)
    base = bytes.fromhex(job.secret) if job.secret else job.seed_base
    return derive_seed(base, job.student_id, job.assignment, name)


def grade_notebook(job: Job, plan_nb: PlanNotebook, data: bytes | None, found_as: str | None) -> NotebookResult:
    assignment = job.assignment
    name = plan_nb.name
    seed = job_seed(job, name)
    tests = load_tests(assignment)
    blank = NotebookResult(notebook=name, file=found_as, seed=seed)

    def zero(status: str, message: str, flag: str) -> NotebookResult:
        return replace(blank, status=status, flags=(flag,), tests=tuple(
            TestRecord(tid, 0.0, pts, False, message, (flag,)) for tid, pts in plan_nb.tests))

    if data is None:
        return zero("missing", f"{name} was not submitted.", "missing")
    t0 = time.perf_counter()
    try:
        cells, answers, claimed = parse(data, name, _graded_names(plan_nb, tests))
    except notebook.InvalidNotebook as exc:
        return zero("invalid-notebook", f"the notebook could not be read: {str(exc)[:300]}", "invalid-notebook")
    timing = {"parse_s": time.perf_counter() - t0}
    graded = replace(blank, answers=tuple(answers), timing=timing, reference_device=reference_device())
    if not plan_nb.tests:  # nothing autograded in this notebook (hand-graded answers only)
        return graded

    store = None
    if job.references is not None:
        refcache.install(assignment)
        store = refcache.Store("replay", job.references.get(str(seed), {}))
    limits = job.limits
    budget = limits.notebook_budget()
    deadline = time.monotonic() + budget
    boxes: dict[str, Sandbox] = {}

    def box(kind: str) -> tuple[Sandbox, RemoteStudent]:
        if kind not in boxes:
            sb = Sandbox(cells, timeout=limits.timeout, cell_timeout=limits.cell_timeout, memory=limits.memory,
                         filename=name, isolate=job.isolate, kind=kind, files=job.files,
                         budget=budget, deadline=deadline)
            boxes[kind] = sb
            try:
                sb.start()
            except BudgetSpent:  # its tests fail below, saying why
                pass
            sb.student = RemoteStudent(sb)
        return boxes[kind], boxes[kind].student

    def events() -> list[tuple[str, str]]:
        return [e for sb in boxes.values() for e in sb.events]

    records: list[TestRecord] = []
    advice: list[dict] = []
    try:
        with refcache.using(store):
            for tid, pts in plan_nb.tests:
                sb, student = box(kind_of(tests[tid]))
                n_events = len(sb.events)
                before = student.seconds
                t1 = time.perf_counter()
                try:
                    v = core.run_test(tests[tid], student, seed, hidden=job.hidden)
                except Exception as exc:  # noqa: BLE001 - the student's output broke the comparison itself
                    v = core.Verdict(tid, False, f"{', '.join(tests[tid].functions)} returned something the grader could "
                                                 f"not compare with PyTorch ({type(exc).__name__}: {str(exc)[:200]}). "
                                                 f"Return numpy arrays or Python floats of ordinary size.",
                                     seed, 0, time.perf_counter() - t1, "invalid-output")
                wall = time.perf_counter() - t1
                flags = order_flags(([v.flag] if v.flag else []) + sb.events_since(n_events))
                student_s = student.seconds - before
                records.append(TestRecord(tid, pts if v.passed else 0.0, pts, v.passed, v.message, tuple(flags), v.cases,
                                          {"wall_s": wall, "student_s": student_s,
                                           "grader_s": max(wall - student_s, 0.0)}))
            # the notebook's saved outputs claim ✔ where the isolated run fails: re-run those visible
            # cases on the very seed the output shows
            for t in records:
                if t.passed or t.flags or t.test_id not in claimed:
                    continue
                sb, student = box(kind_of(tests[t.test_id]))
                for s in claimed[t.test_id][:2]:
                    n_events = len(sb.events)
                    try:
                        v = core.run_test(tests[t.test_id], student, s, hidden=False)
                    except Exception:  # noqa: BLE001 - reported by the test itself
                        break
                    if len(sb.events) > n_events:
                        break
                    if not v.passed and not v.flag:
                        sb.suspect(
                            f"the saved output shows \u2714 {t.test_id} (seed {s}), but your code fails those "
                            f"visible cases in isolation: {v.message.splitlines()[0][:200]}")
                        break
            # advice (no points), for what passed: e.g. an unvectorized answer
            passed = {t.test_id for t in records if t.passed}
            for adv in getattr(tests, "advice", []):
                if set(adv.after) <= passed:
                    _, student = box("numpy" if adv.framework == "numpy" else "torch")
                    try:
                        msg = core.run_advice(adv, student, seed)
                    except Exception:  # noqa: BLE001 - advice costs nothing, also when it cannot be given
                        msg = None
                    if msg:
                        advice.append({"id": adv.id, "message": msg})
        flags = [flag for t in records for flag in t.flags] + [flag for flag, _ in events()]
    finally:
        for sb in boxes.values():
            sb.close()
    tamper = [t for sb in boxes.values() for t in sb.tamper]
    if tamper:
        flags.append("tampering")
    for sb in boxes.values():
        for k, v in sb.timing.items():
            timing[k] = timing.get(k, 0.0) + v
    timing.setdefault("process_start_s", 0.0)
    timing.setdefault("cells_s", 0.0)
    timing["restarts"] = sum(max(sb.starts - 1, 0) for sb in boxes.values())
    if store is not None:
        timing["reference_cache"] = {"hits": store.hits, "misses": store.misses}
    first = next(iter(boxes.values()), None)
    return replace(
        graded, flags=tuple(order_flags(flags)), tests=tuple(records),
        cell_errors=tuple(dict.fromkeys(e for sb in boxes.values() for e in sb.cell_errors))[:50],
        tamper=tuple(dict.fromkeys(tamper))[:30], events=tuple(tuple(e) for e in events())[:30],
        isolation=first.isolation if first else {}, advice=tuple(advice),
        stdout="".join(sb.stdout for sb in boxes.values())[-4000:],
        stderr="".join(sb.stderr for sb in boxes.values())[-4000:], timing=timing)


def grade_job(job: Job) -> Result:
    """Grade one submission. Raises only on a grader-side failure (the submission then counts as
    not graded, and a rerun retries it)."""
    t0 = time.perf_counter()
    plan = job.plan
    single = len(plan.notebooks) == 1
    nbs = []
    for plan_nb in plan.notebooks:
        found_as, data = _match_notebook(plan_nb.name, job.notebooks, single)
        nb = grade_notebook(job, plan_nb, data, found_as)
        if job.unsafe:
            nb = replace(nb, flags=tuple(order_flags(nb.flags + ("unsafe-file",))), events=nb.events + tuple(
                ("unsafe-file", f"the submission holds {u}: it was neither followed nor read") for u in job.unsafe[:10]))
        nbs.append(nb)
    return Result(
        format=FORMAT, student_id=job.student_id, assignment=job.assignment, key=job.key,
        seed_base=job.seed_base if not job.secret else secret_label(bytes.fromhex(job.secret)), hidden=job.hidden,
        score=sum(t.score for nb in nbs for t in nb.tests), max_score=plan.max_score,
        manual_max_score=plan.manual_max_score, flags=tuple(order_flags(f for nb in nbs for f in nb.flags)),
        notebooks=tuple(nbs), timing={"total_s": time.perf_counter() - t0})


def safe_grade_job(job: Job) -> dict:
    """:func:`grade_job`'s result as JSON, or a :class:`GraderError`'s on a grader-side failure."""
    try:
        return grade_job(job).to_json()
    except Exception as exc:  # noqa: BLE001
        return GraderError(job.student_id, job.assignment, f"{type(exc).__name__}: {exc}",
                           traceback.format_exc()[-3000:]).to_json()


def submission_key(seed_base: int | str, plan: Plan, notebooks: dict[str, bytes | None], hidden: bool = True) -> str:
    """Identifies what a result was computed from: a rerun reuses a result with the same key.
    ``seed_base``: the ``--seed``, or the secret's label (:func:`secret_label`)."""
    h = hashlib.sha256(f"{FORMAT}\0{seed_base}\0{hidden}\0{plan.digest()}".encode())
    for name in sorted(notebooks):
        data = notebooks[name]
        h.update(name.encode() + b"\0" + (hashlib.sha256(data).digest() if data is not None else b"-"))
    return h.hexdigest()[:24]
