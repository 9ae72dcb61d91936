"""The command line: bad usage is one line on stderr and a non-zero exit; `validate` prints a
verdict per test (exit 0 when all pass, 1 otherwise, 2 for a missing or unreadable file)."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from adversarial import FW_IMPORT, dumps, edit, exercise_notebook, student_solution
from test_grading import ROOT


def cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograde", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def one_line_error(r: subprocess.CompletedProcess, phrase: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    err = r.stderr.strip()
    assert "\n" not in err and phrase in err, err
    assert "Traceback" not in r.stderr


@pytest.fixture
def subs(tmp_path):
    folder = tmp_path / "submitted" / "alice" / "loss_functions"
    folder.mkdir(parents=True)
    (folder / "loss_functions.ipynb").write_bytes(dumps(student_solution()))
    return tmp_path / "submitted"


def test_missing_submissions_folder(tmp_path):
    one_line_error(cli("grade", "--submissions", str(tmp_path / "nope"), "--out", str(tmp_path / "out")), "not found")


def test_unknown_assignment(subs, tmp_path):
    one_line_error(cli("grade", "--submissions", str(subs), "--out", str(tmp_path / "out"), "--assignment", "nope"),
                   "unknown assignment 'nope'")


@pytest.mark.parametrize("workers", ["0", "-3", "two"])
def test_bad_workers(subs, tmp_path, workers):
    one_line_error(cli("grade", "--submissions", str(subs), "--out", str(tmp_path / "out"), "--workers", workers),
                   "workers")


def test_bad_memory_and_missing_out(subs, tmp_path):
    one_line_error(cli("grade", "--submissions", str(subs), "--out", str(tmp_path / "out"), "--memory", "lots"), "--memory")
    one_line_error(cli("grade", "--submissions", str(subs)), "--out")


def test_only_unknown_assignment_folders(tmp_path):
    (tmp_path / "submitted" / "bob" / "homework9").mkdir(parents=True)
    r = cli("grade", "--submissions", str(tmp_path / "submitted"), "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and "no submissions of a known assignment" in r.stderr
    assert "skipping bob/homework9" in r.stderr


def test_validate_missing_and_corrupt(tmp_path):
    one_line_error(cli("validate", str(tmp_path / "missing.ipynb")), "no such notebook")
    bad = tmp_path / "loss_functions.ipynb"
    bad.write_text('{"cells": [')
    one_line_error(cli("validate", str(bad)), "not a readable notebook")


def test_validate_solution_and_stub(tmp_path):
    folder = tmp_path / "loss_functions"
    folder.mkdir()
    nb = folder / "loss_functions.ipynb"
    nb.write_bytes(dumps(student_solution()))
    r = cli("validate", str(nb), "--timeout", "25", "--memory", "2G")  # 25 s (default 30): room for a loaded machine
    assert r.returncode == 0, r.stdout + r.stderr
    for tid in ("mse_loss", "mse_loss_grad", "cross_entropy_loss", "cross_entropy_loss_grad"):
        assert f"\u2714 {tid}" in r.stdout
    assert "4/4 tests pass" in r.stdout

    other = tmp_path / "my work"  # the folder says nothing: the test cells tell the assignment
    other.mkdir()
    stub = other / "homework.ipynb"
    stub.write_bytes(dumps(exercise_notebook()))
    r = cli("validate", str(stub), "--seed", "3")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "loss_functions" in r.stdout and "seed 3" in r.stdout
    assert "\u2718 mse_loss" in r.stdout and "not implemented yet" in r.stdout


def test_validate_reports_forbidden(tmp_path):
    folder = tmp_path / "loss_functions"
    folder.mkdir()
    nb = folder / "loss_functions.ipynb"
    nb.write_bytes(dumps(edit(student_solution(), append=[FW_IMPORT])))
    r = cli("validate", str(nb))
    assert r.returncode == 1
    assert "\u2718 mse_loss (1 point) [forbidden]" in r.stdout and "deep-learning framework" in r.stdout
    assert "\u2714 cross_entropy_loss" in r.stdout


def pip_installed(tmp_path: Path) -> Path:
    """autograde as `pip install` puts it in site-packages (no course folder): the target folder."""
    import shutil

    src, site = tmp_path / "src", tmp_path / "site"  # a copy: pip builds in the source tree (build/)
    shutil.copytree(ROOT / "autograde", src / "autograde", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", src)
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site), str(src)]
    subprocess.run(pip, check=True, capture_output=True, timeout=300)
    return site


def test_validate_with_autograde_installed_by_pip(tmp_path):
    """On Colab there is no course folder: `%pip install` puts autograde in site-packages. validate
    then takes the tests from the notebook's own test cells; grade and release say they need the
    course folder."""
    site = pip_installed(tmp_path)
    work = tmp_path / "Colab Notebooks"
    work.mkdir()
    (work / "loss_functions.ipynb").write_bytes(dumps(student_solution()))
    (work / "stub.ipynb").write_bytes(dumps(exercise_notebook()))
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site), "HOME": str(tmp_path)}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "autograde", *args], capture_output=True, text=True,
                              timeout=240, cwd=work, env=env)

    r = run("validate", "loss_functions.ipynb", "--timeout", "25")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "(loss_functions, visible cases" in r.stdout and "4/4 tests pass" in r.stdout
    r = run("validate", "stub.ipynb")
    assert r.returncode == 1 and "\u2718 cross_entropy_loss (2 points)" in r.stdout, r.stdout + r.stderr
    one_line_error(run("validate", "stub.ipynb", "--assignment", "batch_norm"), "not those of batch_norm")
    one_line_error(run("release", "--check"), "release needs the course folder")  # the pip copy ran, not this checkout
    (work / "subs" / "ann" / "loss_functions").mkdir(parents=True)
    (work / "subs" / "ann" / "loss_functions" / "loss_functions.ipynb").write_bytes(dumps(student_solution()))
    one_line_error(run("grade", "--submissions", "subs", "--out", "out"), "grading needs the course folder")


@pytest.mark.timeout(300)
def test_dask_worker_needs_only_the_package(tmp_path):
    """What the instructors page promises: a Dask worker with only the autograde package (pip, no
    course folder) grades; every job carries its notebooks and its plan."""
    import os
    import time

    distributed = pytest.importorskip("dask.distributed")
    site = pip_installed(tmp_path)
    subs = tmp_path / "submitted"
    for student, nb in (("alice", student_solution()), ("bob", exercise_notebook())):
        (subs / student / "loss_functions").mkdir(parents=True)
        (subs / student / "loss_functions" / "loss_functions.ipynb").write_bytes(dumps(nb))
    away = tmp_path / "worker"
    away.mkdir()
    with distributed.LocalCluster(n_workers=0, processes=False, protocol="tcp", dashboard_address=None) as cluster:
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", cluster.scheduler_address, "--nthreads", "2",
             "--no-nanny", "--no-dashboard"], cwd=away, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={"PATH": os.environ["PATH"], "PYTHONPATH": str(site), "HOME": str(away)})
        try:
            with distributed.Client(cluster) as client:
                client.wait_for_workers(1, timeout=120)
                (where,) = client.run(lambda: __import__("autograde").__file__).values()
                assert where.startswith(str(site)), where  # the worker runs the pip copy
            t0 = time.monotonic()
            r = cli("grade", "--submissions", str(subs), "--out", str(tmp_path / "out"), "--dask",
                    cluster.scheduler_address, "--timeout", "25", "--no-progress")
        finally:
            worker.kill()
            worker.wait()
    assert r.returncode == 0, r.stdout + r.stderr
    with open(tmp_path / "out" / "grades.csv") as f:
        rows = {row["student_id"]: row for row in csv.DictReader(f)}
    alice, bob = rows["alice"], rows["bob"]
    assert float(alice["score"]) == float(alice["max_score"]) == 6 and alice["flags"] == "", rows
    assert float(bob["score"]) == 0 and float(bob["max_score"]) == 6, rows
    print(f"graded on a package-only Dask worker in {time.monotonic() - t0:.1f} s")


def test_one_assignment_at_a_time_keeps_the_other_rows(tmp_path):
    """Grading with --assignment, week by week, into one OUT: grades.csv, tests.csv and the report
    keep every assignment graded before; a run without --assignment then reuses them all."""
    from autograde.paths import EXERCISES

    subs = tmp_path / "submitted"
    for a in ("loss_functions", "gradient_descent"):
        (subs / "ann" / a).mkdir(parents=True)
        for nb in (EXERCISES / a).glob("*.ipynb"):
            (subs / "ann" / a / nb.name).write_bytes(nb.read_bytes())
    out = tmp_path / "out"

    def rows():
        with open(out / "grades.csv") as f:
            return [(r["student_id"], r["assignment"]) for r in csv.DictReader(f)]

    for a in ("loss_functions", "gradient_descent"):
        r = cli("grade", "--submissions", str(subs), "--out", str(out), "--assignment", a, "--no-progress")
        assert r.returncode == 0, r.stderr
    assert rows() == [("ann", "gradient_descent"), ("ann", "loss_functions")]
    tests = (out / "tests.csv").read_text()
    assert "mse_loss" in tests and "minibatch_indices" in tests
    report = (out / "report.html").read_text()
    assert "<h2>loss_functions</h2>" in report and "<h2>gradient_descent</h2>" in report
    before = (out / "grades.csv").read_bytes()
    r = cli("grade", "--submissions", str(subs), "--out", str(out), "--no-progress")
    assert r.returncode == 0 and "2 submission(s) already graded" in r.stderr, r.stderr
    assert (out / "grades.csv").read_bytes() == before
