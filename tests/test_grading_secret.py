"""Inputs nobody can predict: without --seed a course secret seeds grading (kept, 0600, reused by
reruns), and a machine where the sandbox cannot run makes `grade` refuse instead of grading
unsandboxed (unless --no-isolation says so)."""
from __future__ import annotations

import csv
import os
import stat
import subprocess
import sys

import pytest

from adversarial import dumps, student_solution
from autograde.grading.grader import derive_seed
from test_grading import ROOT


def grade(subs, out, *extra):
    r = subprocess.run([sys.executable, "-m", "autograde", "grade", "--submissions", str(subs), "--out", str(out),
                        "--workers", "1", "--no-progress", "--timeout", "10", *extra],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    return r


def seeds(out) -> dict[str, str]:
    with open(out / "grades.csv", newline="") as f:
        return {row["student_id"]: row["seed"] for row in csv.DictReader(f)}


def test_a_course_secret_seeds_grading_by_default(tmp_path):
    subs = tmp_path / "submitted"
    for sid in ("alice", "bob"):
        (subs / sid / "loss_functions").mkdir(parents=True)
        (subs / sid / "loss_functions" / "loss_functions.ipynb").write_bytes(dumps(student_solution()))
    secret = tmp_path / "keys" / "secret"
    r1 = grade(subs, tmp_path / "out1", "--secret-file", str(secret))
    assert r1.returncode == 0, r1.stderr[-2000:]
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600 and len(bytes.fromhex(secret.read_text().strip())) == 32
    r2 = grade(subs, tmp_path / "out2", "--secret-file", str(secret))  # the same secret: the same inputs
    other = tmp_path / "other"
    other.write_text(os.urandom(32).hex())
    r3 = grade(subs, tmp_path / "out3", "--secret-file", str(other))
    assert r2.returncode == r3.returncode == 0
    s1, s2, s3 = seeds(tmp_path / "out1"), seeds(tmp_path / "out2"), seeds(tmp_path / "out3")
    assert s1 == s2 and s1 != s3
    for sid in s1:  # not the public derivation from a seed base anyone could guess
        assert s1[sid] != str(derive_seed(0, sid, "loss_functions", "loss_functions.ipynb"))
    assert secret.read_text().strip() not in (tmp_path / "out1" / "run.json").read_text()


def test_grade_refuses_without_a_sandbox_unless_told(tmp_path, monkeypatch):
    from autograde.grading import isolation, runner
    from autograde.paths import UsageError

    subs = tmp_path / "submitted" / "alice" / "loss_functions"
    subs.mkdir(parents=True)
    (subs / "loss_functions.ipynb").write_bytes(dumps(student_solution()))
    monkeypatch.setattr(isolation, "problem", lambda: "bubblewrap (bwrap) is not installed")
    with pytest.raises(UsageError, match="--no-isolation"):
        runner.grade(tmp_path / "submitted", tmp_path / "out", seed=0, progress=False)
    assert not (tmp_path / "out").exists()  # nothing ran
