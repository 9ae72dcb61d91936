"""Keeping nbgrader's gradebook consistent with the CSVs, through nbgrader's own API.

:func:`sync` records, in ``gradebook.db`` (OUT's by default, or the course's with
``--gradebook``): each assignment with its notebooks and cells as the trusted solution
notebooks define them (grade, solution and source cells, as ``nbgrader generate_assignment``
would), each student, each submission, and the ``auto_score`` of every autograded cell. Manually
graded cells keep no auto score and are marked ``needs_manual_grade`` so they appear in
formgrader; a manual score already given there is left alone. Submissions with a flag are
marked ``flagged``. It returns what was graded by hand (scores, extra credit, comments), which
the feedback page and the grade export combine with the autograded points.

:func:`write_autograded` writes each submitted notebook to ``OUT/autograded/<student>/<assignment>/``
(where Formgrader finds it through ``nbgrader_config.py``) with the solution's points in its
cells' metadata and each test cell's verdict and diagnosis as the cell's output, so that a hand
grader sees why a test failed.
"""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

from ..paths import put_venv_on_path
from .records import Result, TestRecord
from .submissions import UnsafeFile, read_regular


def _db_url(target: str) -> str:
    if "://" in target:
        return target
    return f"sqlite:///{Path(target).resolve()}"


def _checksum(cell: dict) -> str | None:
    """nbgrader's checksum of a source cell (informative: formgrader shows changed cells)."""
    try:
        from nbformat.v4 import new_code_cell, new_markdown_cell
        from nbgrader.utils import compute_checksum

        meta = {"nbgrader": {k: cell[k] for k in ("grade", "solution", "locked")} | {
            "grade_id": cell["grade_id"], "points": cell["points"], "schema_version": 3, "task": False}}
        make = new_code_cell if cell["cell_type"] == "code" else new_markdown_cell
        return compute_checksum(make(source=cell["source"], metadata=meta))
    except Exception:  # noqa: BLE001
        return None


def prepare(target: str) -> None:
    """Create the gradebook's tables now (nbgrader runs `alembic` for a new database: ~2 s), and
    import what :func:`sync` needs: run in a thread while the workers grade, it takes that time
    off the end of the run."""
    from nbgrader.api import Gradebook

    put_venv_on_path()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Gradebook(_db_url(target)):
            pass
    import nbformat.v4  # noqa: F401 - for _checksum
    import nbgrader.utils  # noqa: F401


def sync(target: str, plans: dict, results: list[Result], students: list[str], times: dict | None = None,
         due: dict | None = None) -> tuple[float, dict]:
    """Write plans and results into the gradebook; returns (seconds spent on the submissions, what
    was graded by hand: ``{(student, assignment): {notebook: {"scores": {cell: [score, max, extra]},
    "comments": {cell: text}}}}``, hand scores given to autograded cells included).
    ``times``: (student, assignment) -> submission time (UTC); Formgrader counts a submission as
    autograded only when the gradebook's time is its ``timestamp.txt``'s. ``due``: assignment ->
    due date (UTC), shown by Formgrader."""
    times, due = times or {}, due or {}
    from nbgrader.api import Gradebook, MissingEntry

    put_venv_on_path()  # nbgrader runs `alembic`
    url = _db_url(target)
    hand: dict[tuple[str, str], dict] = {}
    with warnings.catch_warnings(), Gradebook(url) as gb:
        warnings.filterwarnings("ignore", message=".*not in session.*")  # nbgrader's own, harmless
        for a, plan in plans.items():
            gb.update_or_create_assignment(a, duedate=_naive(due.get(a)))
            for nb in plan.notebooks:
                nb_id = Path(nb.name).stem
                try:
                    gb.find_notebook(nb_id, a)
                except MissingEntry:
                    gb.add_notebook(nb_id, a, kernelspec=json.dumps({"display_name": "Python 3", "language": "python",
                                                                     "name": "python3"}))
                for cell in nb.cells or ():
                    name = cell["grade_id"]
                    if not name:
                        continue
                    if cell["grade"]:
                        gb.update_or_create_grade_cell(name, nb_id, a, max_score=cell["points"],
                                                       cell_type=cell["cell_type"])
                    if cell["solution"]:
                        gb.update_or_create_solution_cell(name, nb_id, a)
                    if cell["grade"] or cell["solution"] or cell["locked"]:
                        gb.update_or_create_source_cell(name, nb_id, a, cell_type=cell["cell_type"],
                                                        locked=cell["locked"], source=cell["source"],
                                                        checksum=_checksum(cell))
        for s in students:
            gb.update_or_create_student(s)
        t0 = time.perf_counter()
        for r in sorted(results, key=lambda r: (r.student_id, r.assignment)):
            s, a = r.student_id, r.assignment
            gb.update_or_create_submission(a, s, timestamp=_naive(times.get((s, a))))
            plan = plans[a]
            for nb in r.notebooks:
                nb_id = Path(nb.notebook).stem
                sub_nb = gb.find_submission_notebook(nb_id, a, s)
                sub_nb.flagged = bool(nb.flags)
                for t in nb.tests:
                    grade = gb.find_grade(f"test_{t.test_id}", nb_id, a, s)
                    grade.auto_score = float(t.score)
                    grade.needs_manual_grade = grade.manual_score is not None
                pnb = plans[a].notebook(nb.notebook)
                manual = pnb.manual if pnb else ()
                for gid, _ in manual:
                    grade = gb.find_grade(gid, nb_id, a, s)
                    grade.auto_score = None
                    grade.needs_manual_grade = grade.manual_score is None
                scores = {g.name: [g.manual_score, g.max_score, g.extra_credit or 0.0] for g in sub_nb.grades
                          if g.manual_score is not None or g.extra_credit}
                comments = {c.name: c.manual_comment for c in sub_nb.comments if c.manual_comment}
                if scores or comments:
                    hand.setdefault((s, a), {})[nb.notebook] = {"scores": scores, "comments": comments}
            gb.db.commit()
    return time.perf_counter() - t0, hand


def _naive(t):
    """nbgrader's gradebook holds naive UTC times."""
    return t.replace(tzinfo=None) if t is not None else None


def write_autograded(out: Path, submissions: Path, plans: dict, results: list[Result]) -> None:
    """Each submitted notebook as Formgrader shows it (see the module's docstring); a notebook that
    cannot be read is copied as it is, a link or special file is not read at all."""
    import nbformat

    for r in results:
        s, a = r.student_id, r.assignment
        points = {c["grade_id"]: c["points"] for nb in plans[a].notebooks for c in nb.cells or () if c["grade_id"]}
        for nb in r.notebooks:
            if not nb.file:
                continue
            try:
                data = read_regular(submissions / s / a / nb.file, 32 * 2**20)
            except UnsafeFile:
                continue
            verdicts = {f"test_{t.test_id}": t for t in nb.tests}
            dst = out / "autograded" / s / a / nb.notebook
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                doc = nbformat.reads(data.decode("utf-8"), as_version=4)
                for cell in doc.cells:
                    meta = cell.get("metadata", {}).get("nbgrader", {})
                    gid = meta.get("grade_id")
                    if meta.get("grade") and gid in points:
                        meta["points"] = points[gid]
                    if gid in verdicts and cell.cell_type == "code":
                        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=_verdict_text(verdicts[gid]))]
                dst.write_text(nbformat.writes(doc), encoding="utf-8")
            except Exception:  # noqa: BLE001 - the student's file, whatever it holds: shown as submitted
                dst.write_bytes(data)


def _verdict_text(t: TestRecord) -> str:
    head = f"\u2714 {t.test_id}: passed" if t.passed else f"\u2718 {t.test_id}: failed"
    flags = f" [{', '.join(t.flags)}]" if t.flags else ""
    waived = f" (waived: {t.waived_by} failed first)" if t.waived_by else ""
    return f"{head}{flags}{waived} \u2014 autograder: {t.score:g} / {t.max_score:g}\n" + (
        f"{t.message}\n" if t.message else "")
