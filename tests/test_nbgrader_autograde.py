"""Under nbgrader's own `autograde` (tests inside the student's kernel, as nbgrader runs them):
the solution scores full marks on every autograded cell and the released stub scores zero.

This is the nbgrader path instructors already know; `python -m autograde grade` is the hardened
one (isolation, tamper detection). Both must agree on honest submissions.
"""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ASSIGNMENTS

from autograde.paths import EXERCISES, SOLUTIONS

BIN = Path(sys.executable).parent


def _autograde(tmp: Path, assignment: str) -> dict[str, tuple[float, float]]:
    """Return {student: (autograded score, autograded max)} for two submissions."""
    from nbgrader.api import Gradebook

    shutil.copytree(SOLUTIONS / assignment, tmp / "source" / assignment)
    for student, folder in (("solution", SOLUTIONS), ("stub", EXERCISES)):
        dest = tmp / "submitted" / student / assignment
        dest.mkdir(parents=True)
        for nb in (folder / assignment).glob("*.ipynb"):
            shutil.copy(nb, dest / nb.name)
    db = f"sqlite:///{tmp / 'gradebook.db'}"
    common = [f"--CourseDirectory.root={tmp}", f"--CourseDirectory.db_url={db}", "--log-level=ERROR"]
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp), "MPLBACKEND": "Agg"}
    for step in (["generate_assignment", assignment, "--force"], ["autograde", assignment, "--force"]):
        r = subprocess.run([str(BIN / "nbgrader"), *step, *common], capture_output=True, text=True, env=env, cwd=tmp, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
    out = {}
    with Gradebook(db) as gb:
        for student in ("solution", "stub"):
            sub = gb.find_submission(assignment, student)
            auto = [g for nb in sub.notebooks for g in nb.grades if g.auto_score is not None]
            out[student] = (sum(g.auto_score for g in auto), sum(g.max_score for g in auto))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_nbgrader_autograde_full_and_zero(tmp_path, assignment):
    scores = _autograde(tmp_path, assignment)
    got, full = scores["solution"]
    assert full > 0 and got == full, scores
    assert scores["stub"][0] == 0, scores
