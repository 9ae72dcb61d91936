"""The instructor grader on the adversarial suite (tests/adversarial): one batch through the
command line, with small limits (--timeout 5, --memory 1G, 2 workers); then each submission's
score and flags, the CSVs, the feedback (no hidden test code), the report, the gradebook, the
isolation probe and the timing record."""
from __future__ import annotations

import csv
import json
import re
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adversarial import CASES, FULL, POINTS, solution_notebook, write_submissions
from autograde.grading import isolation
from autograde.grading import results as R
from autograde.grading.sandbox import UID_BASE

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LIMITS = ["--workers", "2", "--timeout", "5", "--memory", "1G", "--no-progress", "--seed", "0"]


def run_grade(submissions: Path, out: Path, *extra: str, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "autograde", "grade", "--submissions", str(submissions), "--out", str(out), *LIMITS, *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("adversarial")
    subs = write_submissions(root / "submitted")
    out = root / "out"
    t0 = time.perf_counter()
    r = run_grade(subs, out)
    seconds = time.perf_counter() - t0
    assert r.returncode == 0, r.stdout + r.stderr
    grades = {row["student_id"]: row for row in read_csv(out / "grades.csv")}
    tests = read_csv(out / "tests.csv")
    print(f"\nadversarial batch: {len(CASES)} submissions in {seconds:.1f} s\n{r.stderr}")
    return {"out": out, "subs": subs, "grades": grades, "tests": tests, "stderr": r.stderr, "seconds": seconds}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_score_and_flags(graded, case):
    row = graded["grades"][case.name]
    assert row["assignment"] == "loss_functions"
    assert float(row["score"]) == case.score, row
    assert float(row["max_score"]) == FULL
    assert set(filter(None, row["flags"].split(";"))) == case.flags, row
    per_test = {t["test_id"]: t for t in graded["tests"] if t["student_id"] == case.name}
    assert set(per_test) == set(POINTS)
    for tid, pts in POINTS.items():
        want = 0 if tid in case.lost else pts
        assert float(per_test[tid]["score"]) == want, (tid, per_test[tid]["message"])
        assert float(per_test[tid]["max_score"]) == pts
        if want == 0:
            assert per_test[tid]["message"], f"{tid}: a lost test explains why"


def test_every_submission_has_one_row(graded):
    assert sorted(graded["grades"]) == sorted(c.name for c in CASES)
    keys = [(t["student_id"], t["notebook"], t["test_id"]) for t in graded["tests"]]
    assert len(keys) == len(set(keys)) == len(CASES) * len(POINTS)
    assert keys == sorted(keys, key=lambda k: (k[0], k[1], list(POINTS).index(k[2])))


def test_seed_is_deterministic_and_recorded(graded):
    from autograde.grading.grader import derive_seed

    for name, row in graded["grades"].items():
        assert row["seed"] == str(derive_seed(0, name, "loss_functions", "loss_functions.ipynb"))
    for t in graded["tests"]:
        assert t["seed"] == graded["grades"][t["student_id"]]["seed"]
    assert len({row["seed"] for row in graded["grades"].values()}) == len(CASES)


def test_diagnoses_reach_the_csv(graded):
    msg = {(t["student_id"], t["test_id"]): t["message"] for t in graded["tests"]}
    assert "SUM of the squared errors" in msg[("wrong_mse", "mse_loss")]
    assert "did not return within 5 s" in msg[("loop", "mse_loss")]
    assert "exited with code 1" in msg[("os_exit", "mse_loss_grad")]
    assert "SIGSEGV" in msg[("segfault", "mse_loss")]
    assert "out of memory" in msg[("memory_hog", "cross_entropy_loss")]
    for name, tid in [("fw_import", "mse_loss"), ("fw_dunder", "cross_entropy_loss"), ("fw_importlib", "mse_loss_grad")]:
        assert "deep-learning framework" in msg[(name, tid)] and "torch" in msg[(name, tid)]
    assert "switched off the grader's framework detection" in msg[("fw_evade", "cross_entropy_loss_grad")]
    assert "not implemented yet" in msg[("stub", "mse_loss")]
    assert msg[("noisy", "mse_loss")] == ""


def _result(graded, name) -> dict:
    return json.loads((graded["out"] / "results" / name / "loss_functions.json").read_text())


def test_tampering_is_explained(graded):
    notes = " ".join(_result(graded, "patch_comparisons")["notebooks"][0]["tamper"])
    for helper in ("numpy.allclose", "numpy.isclose", "numpy.array_equal", "numpy.testing.assert_allclose", "torch.allclose"):
        assert helper in notes, notes
    notes = " ".join(_result(graded, "patch_helpers")["notebooks"][0]["tamper"])
    assert "autograde.core.expect_close" in notes and "redefines `check`" in notes
    notes = " ".join(_result(graded, "fake_outputs")["notebooks"][0]["tamper"])
    assert "saved output shows" in notes and "seed 12345" in notes


def test_feedback_shows_answers_and_results_never_hidden_tests(graded):
    import html
    import inspect

    from autograde.loss_functions import cases, checks, mistakes, reference

    pages = sorted((graded["out"] / "feedback").rglob("*.html"))
    assert len(pages) == len(CASES)
    distinctive = ["hidden=True", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "ctx.hidden", "def mse_cases",
                   "r.normal(100, 5", "z[: n // 2] -= 5e4", "_mse_mistakes", "expect_close(", "F.mse_loss(tensor(pred)",
                   "check(\"mse_loss\")", "check(&quot;mse_loss&quot;)"]
    src = "".join(inspect.getsource(m) for m in (cases, checks, mistakes, reference))
    answers = "".join(c.source for c in solution_notebook().cells if c.get("metadata", {}).get("nbgrader", {}).get("solution"))
    # every line of the checks', cases', mistakes' and the reference's source longer than 30 characters (that is not
    # also a line of the model answers, which students may well write) is absent
    distinctive += [ln.strip() for ln in src.splitlines()
                    if len(ln.strip()) > 30 and not ln.strip().startswith(("#", '"', "'")) and ln.strip() not in answers]
    for page in pages:
        text = page.read_text()
        for s in distinctive:
            assert s not in text and html.escape(s) not in text, f"{page}: contains {s!r}"
    sol = (graded["out"] / "feedback" / "solution" / "loss_functions" / "loss_functions.html").read_text()
    assert "np.mean(diff * diff)" in sol and "6 / 6" in sol and "seed" in sol.lower()
    loop = (graded["out"] / "feedback" / "loop" / "loss_functions" / "loss_functions.html").read_text()
    assert "timeout" in loop and "did not return within 5 s" in loop
    inst = (graded["out"] / "feedback" / "instructor_copy" / "loss_functions" / "loss_functions.html").read_text()
    assert "BEGIN SOLUTION" in inst  # their own answer cells are shown as submitted; the test cells are not


def test_report_has_plots_and_table(graded):
    text = (graded["out"] / "report.html").read_text()
    assert text.count("data:image/png;base64,") >= 2
    assert "loss_functions" in text and "cross_entropy_loss_grad" in text
    for case in CASES:
        assert f"<td>{case.name}</td>" in text
    links = re.findall(r'<a href="(feedback/[^"]+)">', text)
    assert len(links) == len(CASES) and all((graded["out"] / link).is_file() for link in links), links
    assert 'alt="plot"' not in text and "histogram of the submissions" in text


def test_gradebook_matches_grades_csv(graded, tmp_path):
    """`nbgrader export` on the gradebook: per submission, the score of grades.csv (no manual
    grade given yet) and the max score of grades.csv plus the manually graded points."""
    db = f"sqlite:///{graded['out'] / 'gradebook.db'}"
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path)}
    r = subprocess.run([str(BIN / "nbgrader"), "export", f"--CourseDirectory.root={tmp_path}",
                        f"--CourseDirectory.db_url={db}", f"--CsvExportPlugin.to={tmp_path / 'export.csv'}",
                        "--log-level=ERROR"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    exported = {row["student_id"]: row for row in read_csv(tmp_path / "export.csv")}
    assert sorted(exported) == sorted(graded["grades"])
    for sid, row in graded["grades"].items():
        assert float(exported[sid]["raw_score"]) == float(row["score"]), sid
        assert float(exported[sid]["max_score"]) == float(row["max_score"]) + float(row["manual_max_score"]), sid
    from nbgrader.api import Gradebook

    with Gradebook(db) as gb:
        grade = gb.find_grade("q_overflow", "loss_functions", "loss_functions", "solution")
        assert grade.auto_score is None and grade.needs_manual_grade  # formgrader shows it for hand grading
        assert gb.find_submission_notebook("loss_functions", "loss_functions", "loop").flagged
        assert not gb.find_submission_notebook("loss_functions", "loss_functions", "solution").flagged
    assert (graded["out"] / "autograded" / "solution" / "loss_functions" / "loss_functions.ipynb").is_file()


def test_formgrader_sees_the_graded_submissions(graded):
    """Formgrader's own API (nbgrader's NbGraderAPI), told where OUT's notebooks and gradebook are
    as README and the instructors page say, lists every submission as autograded with its score."""
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    c = Config()
    c.CourseDirectory.root = str(ROOT)
    c.CourseDirectory.source_directory = "solutions"
    c.CourseDirectory.directory_structure = "{nbgrader_step}/{student_id}/{assignment_id}"
    c.CourseDirectory.autograded_directory = str(graded["out"] / "autograded")
    c.CourseDirectory.db_url = f"sqlite:///{graded['out'] / 'gradebook.db'}"
    api = NbGraderAPI(CourseDirectory(config=c), config=c)
    submitted = {sid: row for sid, row in graded["grades"].items() if "missing" not in row["flags"]}
    assert len(submitted) >= len(graded["grades"]) - 2
    for sid, row in submitted.items():  # (a missing notebook has nothing for formgrader to show)
        sub = api.get_submission("loss_functions", sid)
        assert sub["autograded"] and sub["code_score"] == float(row["score"]), (sid, sub)


@pytest.mark.skipif(os.geteuid() != 0, reason="isolation of network, user and files needs root")
def test_isolation_probe(graded):
    res = _result(graded, "probe")["notebooks"][0]
    line = next(ln for ln in res["stdout"].splitlines() if ln.startswith("PROBE "))
    probe = json.loads(line[len("PROBE "):])
    assert probe["uid"] >= UID_BASE
    assert probe["network"].startswith("unreachable")
    assert probe["solutions"] in (None, [])
    assert set(probe["env"]) <= {"HOME", "TMPDIR", "PATH", "LANG", "MPLBACKEND", "MPLCONFIGDIR", "USER", "LOGNAME",
                                 "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"}
    assert probe["cwd"] not in (str(ROOT), "/")
    iso = res["isolation"]
    assert iso["network"].startswith("isolated")
    assert "allow-list" in iso["sandbox"]  # solutions/, the submissions, OUT: not there at all


PF_EXITING = 0x4  # include/linux/sched.h: the task is in do_exit(), it runs no user code any more
SIGKILL_PENDING = 1 << (signal.SIGKILL - 1)  # its bit in /proc/PID/status's SigPnd and ShdPnd


def _status(pid: str) -> dict[str, str] | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return dict(ln.split(":\t", 1) for ln in text.splitlines() if ":\t" in ln)


def sandbox_processes(uids: set[int] | None = None) -> list[str]:
    """Sandbox processes that have not finished exiting. With ``uids`` (a run's sandbox uids):
    every one of theirs. Without: those of any sandbox uid whose parent is gone (reparented to
    init; a live grader's, or this test session's own, servers have a live parent). A zombie has
    finished: it runs nothing and holds no memory, only its exit status waits to be collected
    (by init, here, about once a second)."""
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        st = _status(pid)
        try:
            uid, ppid = int(st["Uid"].split()[1]), int(st["PPid"])
        except (TypeError, KeyError, ValueError, IndexError):
            continue  # gone meanwhile
        if st["State"].startswith(("Z", "X")):
            continue
        if uids is not None and uid in uids or uids is None and uid >= UID_BASE and ppid <= 1:
            left.append(pid)
    return left


def _fate(pid: str) -> str:
    """'exiting' (in do_exit: torn down by the kernel, no user code runs), 'killed' (a SIGKILL is
    pending: it will not return to user code) or 'running' (it can still run user code)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        flags = int(stat[stat.rindex(")") + 2:].split()[6])
    except (OSError, ValueError, IndexError):
        return "gone"
    st = _status(pid) or {}
    pending = int(st.get("SigPnd", "0"), 16) | int(st.get("ShdPnd", "0"), 16)
    return "exiting" if flags & PF_EXITING else "killed" if pending & SIGKILL_PENDING else "running"


def _describe(pid: str) -> str:
    st = _status(pid)
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:200]
        wchan = Path(f"/proc/{pid}/wchan").read_text()
    except OSError as exc:
        return f"{pid}: gone ({exc.strerror})"
    keep = ("Name", "State", "PPid", "Uid", "NSpid", "Threads")
    return (f"{pid}: {_fate(pid)} {cmd!r} wchan={wchan} "
            + "; ".join(f"{k}: {st[k]}" for k in keep if st and k in st))


def wait_gone(uids: set[int] | None = None, seconds: float = 20.0) -> list[str]:
    """Wait until :func:`sandbox_processes` finds none; what is still there after ``seconds``.
    Killed, they finish in about 0.1 s (0.15 s at most in 86 runs killed after their first
    result, 84 of them beside two busy loops on two cores); what a kill left running shows as
    such in :func:`_describe`."""
    deadline = time.monotonic() + seconds
    while (left := sandbox_processes(uids)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


def _children(pid: int) -> set[int]:
    out = set()
    for entry in filter(str.isdigit, os.listdir("/proc")):
        st = _status(entry)
        if st and st.get("PPid") == str(pid):
            out.add(int(entry))
    return out


@pytest.mark.skipif(os.geteuid() != 0, reason="student processes get their own uid only under root")
def test_nothing_left_running(graded):
    """The forked sleepers (one escaped its process group with setsid) were killed."""
    left = wait_gone()
    assert not left, [_describe(pid) for pid in left]


def test_timing_record(graded):
    r = _result(graded, "solution")
    nb = r["notebooks"][0]
    for key in ("parse_s", "process_start_s", "cells_s"):  # the solution parsed, started, ran its cells
        assert nb["timing"][key] > 0, key
    for t in nb["tests"]:
        tm = t["timing"]
        assert set(tm) == {"wall_s", "student_s", "grader_s"}
        assert tm["student_s"] > 0 and tm["wall_s"] >= tm["student_s"] and tm["grader_s"] >= 0, tm
    assert r["timing"]["total_s"] > 0
    run = json.loads((graded["out"] / "run.json").read_text())  # the run's own record, not a submission's
    assert run["seconds"]["gradebook"] > 0
    print("\nper-submission seconds (total):",
          sorted(round(_result(graded, c.name)["timing"]["total_s"], 2) for c in CASES))


def _stable(x):
    """A result without what changes from run to run: timings and the sandbox's uid."""
    if isinstance(x, dict):
        return {k: ("uid" if k == "user" else _stable(v)) for k, v in x.items() if k != "timing"}
    if isinstance(x, list):
        return [_stable(v) for v in x]
    return x


WRITTEN_BEFORE = sorted((Path(__file__).parent / "data" / "results").glob("*.json"))


@pytest.mark.parametrize("path", WRITTEN_BEFORE, ids=[p.stem for p in WRITTEN_BEFORE])
def test_results_as_written_before_the_records_were_typed(graded, path):
    """The same submission, seed and limits give the result file the untyped code wrote (tests/data/
    results), timings and uid aside: fields, values, scores, and the key (so the plan's digest)
    where the submitted notebook is the same bytes (an appended cell gets a fresh random id)."""
    now, before = _result(graded, path.stem), json.loads(path.read_text())
    case = next(c for c in CASES if c.name == path.stem)
    if case.build() != case.build():
        now, before = {**now, "key": ""}, {**before, "key": ""}
    assert _stable(now) == _stable(before)


def test_rerun_reuses_results(graded):
    before = {p: p.read_bytes() for p in (graded["out"] / "grades.csv", graded["out"] / "tests.csv")}
    r = run_grade(graded["subs"], graded["out"])
    assert r.returncode == 0, r.stderr
    assert f"{len(CASES)} submission(s) already graded" in r.stderr
    assert {p: p.read_bytes() for p in before} == before


@pytest.mark.timeout(300)
def test_grade_on_a_dask_cluster(graded, tmp_path):
    """`--dask ADDRESS`: the same jobs on a Dask cluster (a LocalCluster started here, its worker
    threads in this process) give exactly the rows the process pool gave."""
    distributed = pytest.importorskip("dask.distributed")
    names = ["solution", "stub", "fw_import", "os_exit"]
    subs = write_submissions(tmp_path / "submitted", [c for c in CASES if c.name in names])
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp",
                                  dashboard_address=None) as cluster:
        cmd = [sys.executable, "-m", "autograde", "grade", "--submissions", str(subs), "--out", str(tmp_path / "dask"),
               "--dask", cluster.scheduler_address, *LIMITS]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    grades = read_csv(tmp_path / "dask" / "grades.csv")
    assert grades == [graded["grades"][n] for n in sorted(names)]
    assert read_csv(tmp_path / "dask" / "tests.csv") == [t for t in graded["tests"] if t["student_id"] in names]


# two fast submissions and three that each spend a 5-second timeout: the kill lands while some
# are still being graded
RESUME_NAMES = ["solution", "stub", "loop", "os_exit", "cell_loop"]


def test_kill_and_resume(graded, tmp_path):
    """A run killed (SIGKILL, whole process group) after its first result is written, then
    started again, grades only what is missing and writes the same CSVs, byte for byte, as an
    uninterrupted run (this module's batch: same seed and limits)."""
    subs = write_submissions(tmp_path / "submitted", [c for c in CASES if c.name in RESUME_NAMES])
    whole = tmp_path / "uninterrupted"  # the CSVs an uninterrupted run writes for these submissions
    R.write_csvs(whole, [R.read_record(graded["out"] / "results" / n / "loss_functions.json") for n in RESUME_NAMES])

    out = tmp_path / "resumed"
    cmd = [sys.executable, "-m", "autograde", "grade", "--submissions", str(subs), "--out", str(out), *LIMITS]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    results = out / "results"
    workers = set()
    while time.monotonic() < deadline and not list(results.glob("*/*.json")):
        assert proc.poll() is None, "the run ended before it could be killed"
        workers |= _children(proc.pid)
        time.sleep(0.02)
    workers |= _children(proc.pid)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # Everything of this run's sandboxes (the uids of its grader and workers) must go: a worker's
    # bwrap dies with it (--die-with-parent), the namespace's init with that bwrap, and with the
    # init every process of its PID namespace. Not "no orphan": a sandbox process is orphaned
    # only once its worker has died, which the kill of the process group does not wait for.
    left = wait_gone({isolation.sandbox_uid(pid) for pid in workers | {proc.pid}})
    assert not left, [_describe(pid) for pid in left]
    first = sorted(p.parent.name for p in results.glob("*/*.json"))
    assert 1 <= len(first) < len(RESUME_NAMES), first
    assert not (out / "grades.csv").exists()

    r = run_grade(subs, out)
    assert r.returncode == 0, r.stderr
    assert f"{len(first)} submission(s) already graded" in r.stderr, r.stderr
    for name in ("grades.csv", "tests.csv"):
        assert (out / name).read_bytes() == (whole / name).read_bytes(), name
    assert sorted(p.parent.name for p in results.glob("*/*.json")) == sorted(RESUME_NAMES)
    assert not list(results.glob("*/.*.tmp"))
