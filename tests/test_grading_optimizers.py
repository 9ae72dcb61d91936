"""The `optimizers` assignment through the real grader (`python -m autograde grade`, sandboxed):
the solution earns full marks, the released stub nothing, and a numpy Adam that is torch.optim.Adam
behind the numpy API is flagged ``forbidden`` and loses every test that uses it (Adam's and
AdamW's, which builds on it), while its own numpy RMSprop and schedules keep their points.
``validate`` agrees on the student's copy."""
from __future__ import annotations

import csv
import subprocess
import sys

import nbformat
import pytest

from catalog.optimizers import MISTAKES
from test_grading import ROOT
from test_grading_attacks import pytestmark  # noqa: F401 - skipped where the sandbox cannot run

ADAM_TESTS = {"adam", "adam_weight_decay", "adamw", "amsgrad", "optimizer_arguments"}


def student_copy(adam_source: str | None = None) -> nbformat.NotebookNode:
    """The released notebook with the solution's answers typed in (no nbgrader markers), and
    Adam's cell replaced by ``adam_source`` when given."""
    nb = nbformat.read(ROOT / "exercises" / "optimizers" / "optimizers.ipynb", 4)
    sol = {c.metadata["nbgrader"]["grade_id"]: c for c in nbformat.read(ROOT / "solutions" / "optimizers" /
                                                                        "optimizers.ipynb", 4).cells}
    for c in nb.cells:
        meta = c.metadata.get("nbgrader", {})
        if meta.get("solution"):
            c.source = "\n".join(line for line in sol[meta["grade_id"]].source.splitlines() if "### " not in line)
            if meta["grade_id"] == "Adam" and adam_source is not None:
                c.source = adam_source
    return nb


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograde", *args], capture_output=True, text=True, timeout=600,
                          cwd=ROOT)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("optimizers")
    cheat = next(m for m in MISTAKES if m.name == "adam_uses_torch")
    notebooks = {"solution": student_copy(), "stub": nbformat.read(ROOT / "exercises" / "optimizers" /
                                                                   "optimizers.ipynb", 4),
                 "torch_optim": student_copy(cheat.code)}
    for sid, nb in notebooks.items():
        (root / "submitted" / sid / "optimizers").mkdir(parents=True)
        nbformat.write(nb, root / "submitted" / sid / "optimizers" / "optimizers.ipynb")
    r = cli("grade", "--submissions", str(root / "submitted"), "--out", str(root / "out"), "--assignment",
            "optimizers", "--workers", "1", "--no-progress", "--seed", "0")
    assert r.returncode == 0, r.stderr[-3000:]
    with open(root / "out" / "grades.csv", newline="") as f:
        grades = {row["student_id"]: row for row in csv.DictReader(f)}
    with open(root / "out" / "tests.csv", newline="") as f:
        tests = {(row["student_id"], row["test_id"]): row for row in csv.DictReader(f)}
    return {"root": root, "grades": grades, "tests": tests}


def test_solution_full_stub_zero(graded):
    sol, stub = graded["grades"]["solution"], graded["grades"]["stub"]
    assert float(sol["score"]) == float(sol["max_score"]) > 0 and sol["flags"] == "", sol
    assert float(stub["score"]) == 0 and stub["flags"] == "", stub


def test_torch_optim_behind_the_numpy_api_is_forbidden(graded):
    row = graded["grades"]["torch_optim"]
    assert "forbidden" in row["flags"].split(";"), row
    per_test = {tid: t for (sid, tid), t in graded["tests"].items() if sid == "torch_optim"}
    for tid, t in per_test.items():
        if tid in ADAM_TESTS:
            assert float(t["score"]) == 0, (tid, t)
        else:  # RMSprop and the schedules are its own numpy code
            assert float(t["score"]) == float(t["max_score"]) > 0, (tid, t)
    assert "numpy exercise" in per_test["adam"]["message"], per_test["adam"]["message"]


def test_validate_agrees(graded):
    path = graded["root"] / "submitted" / "solution" / "optimizers" / "optimizers.ipynb"
    r = cli("validate", str(path))
    assert r.returncode == 0, r.stdout + r.stderr
    r = cli("validate", str(graded["root"] / "submitted" / "stub" / "optimizers" / "optimizers.ipynb"))
    assert r.returncode == 1, r.stdout + r.stderr
