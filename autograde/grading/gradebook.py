"""Keeping nbgrader's gradebook consistent with the CSVs, through nbgrader's own API.

:func:`sync` records, in ``gradebook.db`` (OUT's by default, or the course's with
``--gradebook``): each assignment with its notebooks and cells as the trusted solution
notebooks define them (grade, solution and source cells, as ``nbgrader generate_assignment``
would), each student, each submission, and the ``auto_score`` of every autograded cell. Manually
graded cells keep no auto score and are marked ``needs_manual_grade`` so they appear in
formgrader; a manual score already given there is left alone. Submissions with a flag are
marked ``flagged``. ``nbgrader export`` then gives, per submission, the autograded score of
grades.csv plus whatever was graded by hand.

It also copies each submitted notebook to ``OUT/autograded/<student>/<assignment>/`` (where
formgrader looks for it when the course's ``autograded`` folder is pointed there).
"""
from __future__ import annotations

import json
import shutil
import warnings
import time
from pathlib import Path


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

    from ..paths import put_venv_on_path

    put_venv_on_path()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Gradebook(_db_url(target)):
            pass
    import nbformat.v4  # noqa: F401 - for _checksum
    import nbgrader.utils  # noqa: F401


def sync(target: str, plans: dict, results: list[dict], students: list[str], submissions: Path | None = None,
         out: Path | None = None) -> dict[tuple[str, str], float]:
    """Write plans and results into the gradebook; returns seconds spent per (student, assignment)."""
    from nbgrader.api import Gradebook, MissingEntry

    from ..paths import put_venv_on_path

    put_venv_on_path()  # nbgrader runs `alembic`
    url = _db_url(target)
    seconds: dict[tuple[str, str], float] = {}
    with warnings.catch_warnings(), Gradebook(url) as gb:
        warnings.filterwarnings("ignore", message=".*not in session.*")  # nbgrader's own, harmless
        for a, plan in plans.items():
            gb.update_or_create_assignment(a)
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
        for r in sorted(results, key=lambda r: (r["student_id"], r["assignment"])):
            t0 = time.perf_counter()
            s, a = r["student_id"], r["assignment"]
            gb.update_or_create_submission(a, s)
            plan = plans.get(a)
            for nb in r["notebooks"]:
                nb_id = Path(nb["notebook"]).stem
                sub_nb = gb.find_submission_notebook(nb_id, a, s)
                sub_nb.flagged = bool(nb["flags"])
                for t in nb["tests"]:
                    grade = gb.find_grade(f"test_{t['test_id']}", nb_id, a, s)
                    grade.auto_score = float(t["score"])
                    grade.needs_manual_grade = grade.manual_score is not None
                pnb = plan.notebook(nb["notebook"]) if plan else None
                manual = pnb.manual if pnb else ()
                for gid, _ in manual:
                    grade = gb.find_grade(gid, nb_id, a, s)
                    grade.auto_score = None
                    grade.needs_manual_grade = grade.manual_score is None
            gb.db.commit()
            seconds[(s, a)] = time.perf_counter() - t0
            if submissions is not None and out is not None:
                src, dst = submissions / s / a, out / "autograded" / s / a
                for nb in r["notebooks"]:
                    f = nb.get("file")
                    if f and (src / f).is_file() and not (src / f).is_symlink():  # never a link (see submissions.py)
                        dst.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(src / f, dst / nb["notebook"])
    return seconds
