"""The Gradescope autograder, without Gradescope: the zip is unpacked into a scratch folder that
stands in for /autograder (``AUTOGRADE_GRADESCOPE_ROOT``), ``run_autograder`` grades a solution,
the released stub, a buggy one (a mistake from the catalog and a bug only hidden cases catch), a tampering one and a corrupt notebook, and ``results.json`` is checked against Gradescope's
specification and, field by field, against what ``python -m autograde grade`` gives for the same
notebooks (same student ids, same seed base). A last submission tries to write results.json,
read the autograder's solutions and outlive the run."""
from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from adversarial import PATCH_COMPARISONS, WRONG, dumps, edit, exercise_notebook, student_solution
from catalog.loss_functions import MISTAKES

from autograde.platforms import gradescope as gs
from autograde.paths import ROOT

pytestmark = pytest.mark.slow  # runs grade, run_autograder and validate about a dozen times

SEED = 4242
ASSIGNMENT = "loss_functions"
NOTEBOOK = "loss_functions.ipynb"
HIDDEN_DESCRIPTIONS = ["targets far from zero", "(N, C, L)", "different offsets per row", "a larger batch"]
VISIBILITIES = {"hidden", "after_due_date", "after_published", "visible"}

HIDDEN_ONLY_BUG = '''
def mse_loss(pred, target):
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.ndim > 2:  # a bug: only the first channel of a 3-D array counts
        pred, target = pred[..., 0], target[..., 0]
    return float(np.mean((pred - target) ** 2))
'''


def _catalog(name: str) -> str:
    return next(m.code for m in MISTAKES if m.name == name)


CASES = {
    "solution": lambda: dumps(student_solution()),
    "stub": lambda: dumps(exercise_notebook()),
    # a catalog mistake caught by the visible cases, and a bug only hidden cases catch
    "buggy": lambda: dumps(edit(student_solution(), replace={"cross_entropy_loss": _catalog("ce_naive_logsumexp"),
                                                             "mse_loss": HIDDEN_ONLY_BUG})),
    "tampering": lambda: dumps(edit(student_solution(), replace=WRONG, after={"setup": [PATCH_COMPARISONS]})),
    "corrupt": lambda: dumps(student_solution())[:-200] + b"{not json",
}


# A container that does not allow namespaces (Docker's default seccomp profile without
# CAP_SYS_ADMIN): run_autograder started under a seccomp filter, inherited by every process it
# starts, that makes unshare(2) fail with EPERM. x86_64 only.
NO_NAMESPACES = r'''
import ctypes, os, sys
f = [(0x20, 0, 0, 4), (0x15, 0, 3, 0xC000003E), (0x20, 0, 0, 0), (0x15, 0, 1, 272),
     (0x06, 0, 0, 0x00050001), (0x06, 0, 0, 0x7FFF0000)]
class F(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]
class P(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(F))]
arr = (F * len(f))(*[F(*x) for x in f])
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(22, 2, ctypes.byref(P(len(f), arr)), 0, 0) != 0:
    sys.exit("seccomp: " + os.strerror(ctypes.get_errno()))
os.execv(sys.argv[1], sys.argv[1:])
'''


def run_autograder(root: Path, sid: str, files: dict[str, bytes], *, namespaces: bool = True) -> tuple[dict, float]:
    """Gradescope's harness, simulated: a fresh submission folder and metadata, then run_autograder."""
    shutil.rmtree(root / "submission", ignore_errors=True)
    (root / "submission").mkdir()
    for name, data in files.items():
        (root / "submission" / name).write_bytes(data)
    (root / "submission_metadata.json").write_text(json.dumps({"users": [{"id": sid, "name": sid}]}))
    results = root / "results" / "results.json"
    if results.exists():
        results.unlink()
    env = {**os.environ, gs.ROOT_ENV: str(root)}
    t0 = time.perf_counter()
    cmd = [str(root / "run_autograder")] if namespaces else [sys.executable, "-c", NO_NAMESPACES, str(root / "run_autograder")]
    r = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    wall = time.perf_counter() - t0
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(results.read_text()), wall


@pytest.fixture(scope="module")
def harness():
    # a folder others may enter, as /autograder is on Gradescope (pytest's tmp_path is closed to
    # other users: the student's uid would be stopped there, whatever run_autograder does)
    tmp = Path(tempfile.mkdtemp(prefix="ag-gradescope-"))
    os.chmod(tmp, 0o755)
    try:
        yield _harness(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _harness(tmp: Path) -> dict:
    z = gs.build_zip(ASSIGNMENT, tmp / "autograder.zip", seed=SEED, timeout=10, memory="2G")
    roots = queue.Queue()  # two stand-ins for /autograder: two submissions graded at once
    for i in range(2):
        root = gs.unpack(z, tmp / f"autograder{i}")
        os.symlink(Path(sys.prefix).resolve(), root / "venv")  # setup.sh's venv: this one
        roots.put(root)
    # the same notebooks through `grade`, in nbgrader's layout, with the same seed base
    subs = tmp / "submitted"
    for sid, build in CASES.items():
        (subs / sid / ASSIGNMENT).mkdir(parents=True)
        (subs / sid / ASSIGNMENT / NOTEBOOK).write_bytes(build())
    r = subprocess.run([sys.executable, "-m", "autograde", "grade", "--submissions", str(subs), "--out", str(tmp / "graded"),
                        "--seed", str(SEED), "--timeout", "10", "--memory", "2G", "--workers", "2", "--no-progress"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr

    def one(item):
        sid, build = item
        root = roots.get()
        try:
            return sid, run_autograder(root, sid, {NOTEBOOK: build()})
        finally:
            roots.put(root)

    with ThreadPoolExecutor(2) as pool:
        done = dict(pool.map(one, CASES.items()))
    gs_results = {sid: r for sid, (r, _) in done.items()}
    walls = {sid: w for sid, (_, w) in done.items()}
    root = roots.get()
    return {"zip": z, "root": root, "graded": tmp / "graded", "results": gs_results, "walls": walls}


def test_zip_layout(harness):
    with zipfile.ZipFile(harness["zip"]) as z:
        names = set(z.namelist())
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in z.infolist()}
    assert {"setup.sh", "run_autograder", "requirements.txt", "gradescope.json",
            "autograde/platforms/gradescope.py", f"solutions/{ASSIGNMENT}/{NOTEBOOK}"} <= names
    assert not any(n.startswith(("tests/", "exercises/", "book/", ".git")) for n in names)
    assert modes["setup.sh"] & 0o111 and modes["run_autograder"] & 0o111
    for script in ("setup.sh", "run_autograder"):
        assert subprocess.run(["bash", "-n", str(harness["root"] / "source" / script)]).returncode == 0
    setup = (harness["root"] / "source" / "setup.sh").read_text()
    assert "download.pytorch.org/whl/cpu" in setup and "-r requirements.txt" in setup
    assert (harness["root"] / "source" / "requirements.txt").read_text() == (ROOT / "requirements.txt").read_text()


def test_usage(tmp_path):
    r = subprocess.run([sys.executable, "-m", "autograde", "gradescope", "nope", "--out", str(tmp_path / "x.zip")],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "unknown assignment 'nope'" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "autograde", "gradescope", ASSIGNMENT, "--out", str(tmp_path / "ag.zip")],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and (tmp_path / "ag.zip").is_file(), r.stderr
    cfg = json.loads(zipfile.ZipFile(tmp_path / "ag.zip").read("gradescope.json"))
    assert cfg["assignment"] == ASSIGNMENT and cfg["notebooks"] == [NOTEBOOK] and isinstance(cfg["seed"], int)


def _spec(res: dict) -> None:
    """Gradescope's results.json format: the fields it defines, with their types."""
    assert isinstance(res["score"], float)
    assert isinstance(res["execution_time"], (int, float)) and res["execution_time"] > 0
    assert isinstance(res["output"], str) and res["stdout_visibility"] in VISIBILITIES
    assert isinstance(res["tests"], list) and res["tests"]
    for t in res["tests"]:
        assert set(t) <= {"score", "max_score", "status", "name", "output", "visibility", "tags", "number", "extra_data"}
        assert isinstance(t["name"], str) and isinstance(t["output"], str) and t["visibility"] in VISIBILITIES
        assert t.get("status", "passed") in ("passed", "failed")
        if "score" in t:
            assert isinstance(t["score"], float) and isinstance(t["max_score"], float)
    json.dumps(res)  # plain JSON


@pytest.mark.parametrize("sid", list(CASES))
def test_results_match_grade(harness, sid):
    """Score, per-test points, status, diagnosis and flags: those of `grade` for the same notebook."""
    res = harness["results"][sid]
    _spec(res)
    graded = json.loads((harness["graded"] / "results" / sid / f"{ASSIGNMENT}.json").read_text())
    assert res["score"] == graded["score"]
    assert res["extra_data"]["flags"] == graded["flags"]
    scored = {t["name"].split(":")[0]: t for t in res["tests"] if "score" in t}
    g_tests = {t["test_id"]: t for nb in graded["notebooks"] for t in nb["tests"]}
    assert list(scored) == list(g_tests)
    assert sum(t["score"] for t in scored.values()) == graded["score"]
    for tid, g in g_tests.items():
        t = scored[tid]
        assert (t["score"], t["max_score"]) == (g["score"], g["max_score"])
        assert t["status"] == ("passed" if g["passed"] else "failed")
        assert t["visibility"] == "after_published"
        if g["message"]:
            assert t["output"].startswith(g["message"])
        for flag in g["flags"]:
            assert f"flag {flag}:" in t["output"]
    # the same rows as grade's tests.csv
    import csv

    with open(harness["graded"] / "tests.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["student_id"] == sid]
    assert [(r["test_id"], float(r["score"])) for r in rows] == [(k, v["score"]) for k, v in scored.items()]


def test_expected_scores(harness):
    r = harness["results"]
    assert r["solution"]["score"] == 6.0 and r["stub"]["score"] == 0.0
    assert r["buggy"]["score"] == 3.0
    assert r["tampering"]["score"] == 0.0 and "tampering" in r["tampering"]["extra_data"]["flags"]
    assert r["corrupt"]["score"] == 0.0 and r["corrupt"]["extra_data"]["flags"] == ["invalid-notebook"]
    buggy = next(t for t in r["buggy"]["tests"] if t["name"] == "cross_entropy_loss: visible cases")
    assert buggy["status"] == "failed" and "log(sum(exp(z))) is inf" in buggy["output"]
    stub = next(t for t in r["stub"]["tests"] if t["name"] == "mse_loss: visible cases")
    assert stub["status"] == "failed" and "not implemented yet" in stub["output"]


def test_corrupt_notebook_message(harness):
    res = harness["results"]["corrupt"]
    assert "could not be read" in res["output"] and "upload the notebook again" in res["output"]
    assert all(t["status"] == "failed" for t in res["tests"] if "status" in t)


def test_hidden_cases_stay_hidden_until_published(harness):
    """Entries shown before publication carry no points and nothing about hidden cases; the
    points and the hidden-case diagnosis are in after_published entries."""
    for sid, res in harness["results"].items():
        for t in res["tests"]:
            if t["visibility"] == "visible":
                assert "score" not in t and "max_score" not in t
                assert not any(d in t["output"] for d in HIDDEN_DESCRIPTIONS), (sid, t)
        assert not any(d in res["output"] for d in HIDDEN_DESCRIPTIONS)
        seeds = [str(s) for s in res["extra_data"]["seeds"].values() if s]
        assert not any(s in t["output"] for s in seeds for t in res["tests"] if t["visibility"] == "visible")
    res = harness["results"]["buggy"]
    visible = next(t for t in res["tests"] if t["name"] == "mse_loss: visible cases")
    scored = next(t for t in res["tests"] if t["name"].startswith("mse_loss: score"))
    assert visible["status"] == "passed" and "hidden cases are reported when grades are published" in visible["output"]
    assert scored["score"] == 0.0 and scored["visibility"] == "after_published" and "(N, C, L)" in scored["output"]
    # the visible entry of a test that failed hidden cases only reads like one that passed every case
    passed = next(t for t in harness["results"]["solution"]["tests"] if t["name"] == "mse_loss: visible cases")
    assert visible == passed


def test_missing_notebook_and_renamed_upload(harness):
    root = harness["root"]
    res, _ = run_autograder(root, "nobody", {"notes.txt": b"hello"})
    _spec(res)
    assert res["score"] == 0.0 and "missing" in res["extra_data"]["flags"]
    assert "uploaded: notes.txt" in res["output"] and NOTEBOOK in res["output"]


ATTACK = '''
import os, time
ROOT = {root!r}
MARKER = {marker!r}
report = {{}}
try:
    with open(ROOT + "/results/results.json", "w") as f:
        f.write('{{"score": 100.0, "tests": []}}')
    report["write_results"] = "written"
except OSError as exc:
    report["write_results"] = type(exc).__name__
for name, path in [("public", ROOT + "/source/autograde/__init__.py"),
                   ("solutions", ROOT + "/source/solutions/loss_functions/loss_functions.ipynb"),
                   ("config", ROOT + "/source/gradescope.json")]:
    try:
        report[name] = open(path).read()[:50]
    except OSError as exc:
        report[name] = type(exc).__name__
print("ATTACK", report)
if os.fork() == 0:          # a grandchild in its own session, outside the process group
    os.setsid()
    if os.fork() == 0:
        for _ in range(600):
            try:
                with open(MARKER, "a") as f:
                    f.write("x")
                with open(ROOT + "/results/results.json", "w") as f:
                    f.write('{{"score": 100.0, "tests": []}}')
            except OSError:
                pass
            time.sleep(0.2)
    os._exit(0)

def mse_loss(pred, target):
    for path in [ROOT + "/source/solutions/loss_functions/loss_functions.ipynb", ROOT + "/source/gradescope.json"]:
        try:
            secret = open(path).read()
        except OSError:
            continue
        raise ValueError("LEAK " + secret[secret.find("BEGIN SOLUTION"):][:200])
    return float(np.mean((np.asarray(pred, dtype=float) - target) ** 2))
'''


@pytest.mark.parametrize("namespaces", [True, False], ids=["namespaces", "no-namespaces"])
def test_submission_cannot_write_results_read_solutions_or_outlive_the_run(harness, namespaces):
    """As root (Gradescope runs the autograder as root), with and without namespaces: the student
    process runs as its own unprivileged uid, and the autograder's folders are closed to it."""
    if not namespaces and (os.uname().machine != "x86_64" or os.geteuid() != 0):
        pytest.skip("the seccomp filter that simulates a container without namespaces is x86_64 only, and needs root")
    root = harness["root"]
    shared = Path(tempfile.mkdtemp(prefix="ag-attack-"))
    os.chmod(shared, 0o1777)  # a folder any uid may write: where a surviving process would show itself
    marker = shared / f"alive-{uuid.uuid4().hex}"
    try:
        nb = edit(student_solution(), append=[ATTACK.format(root=str(root), marker=str(marker))])
        res, _ = run_autograder(root, "attacker", {NOTEBOOK: dumps(nb)}, namespaces=namespaces)
        graded = json.loads((root / "work" / "graded" / "results" / "attacker" / f"{ASSIGNMENT}.json").read_text())
        network = graded["notebooks"][0]["isolation"].get("network", "")
        assert network.startswith("isolated" if namespaces else "not isolated"), network
        stdout = graded["notebooks"][0]["stdout"]
        assert "ATTACK" in stdout, stdout
        if namespaces:  # the sandbox's allow-list: the autograder's folder does not exist for the student
            assert "'public': 'FileNotFoundError'" in stdout, stdout
        else:  # the autograder's folder is reachable: what stops the rest is the lock-down
            assert "'public': '\"\"\"" in stdout, stdout
        assert "'write_results': 'written'" not in stdout, stdout
        assert "'solutions': 'PermissionError'" in stdout or "'solutions': 'FileNotFoundError'" in stdout, stdout
        assert "'config': 'PermissionError'" in stdout or "'config': 'FileNotFoundError'" in stdout, stdout
        assert res["score"] == 6.0, res  # the honest answer scores; nothing leaked through a diagnosis
        text = json.dumps(res)
        assert "LEAK" not in text and "BEGIN SOLUTION" not in text and "Model answer" not in text
        # nothing left running: the marker (if the grandchild ever wrote it) stops growing
        size = marker.stat().st_size if marker.exists() else 0
        time.sleep(1.5)
        after = marker.stat().st_size if marker.exists() else 0
        assert after == size, "a process the submission started is still running after run_autograder returned"
        assert json.loads((root / "results" / "results.json").read_text()) == res
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_time_to_grade_one_submission(harness):
    """Wall time of run_autograder (grade, plus validate when a test failed), two at a time; the
    README's figures come from `python -m bench.platforms`, one at a time."""
    walls = harness["walls"]
    print("run_autograder wall seconds:", {k: round(v, 2) for k, v in walls.items()})
    assert walls["solution"] < 60


def test_parse_validate_reads_only_the_verdict_block():
    """A cell's error note after the verdicts may quote the student's text: it cannot add or
    change a verdict."""
    text = ("validate loss_functions.ipynb (loss_functions, visible cases, seed 5; ...)\n"
            "\u2718 mse_loss (1 point):\n    wrong on a batch\n    second line\n"
            "\u2714 mse_loss_grad (1 point): 4 cases passed\n"
            "\u2718 cross_entropy_loss (2 points) [timeout]:\n    took too long\n"
            "note: ValueError: x\n\u2714 mse_loss (1 point): 4 cases passed\n\u2714 extra (1 point): 1 cases passed\n")
    v = gs.parse_validate(text)
    assert set(v) == {"mse_loss", "mse_loss_grad", "cross_entropy_loss"}
    assert v["mse_loss"] == {"passed": False, "message": "wrong on a batch\nsecond line", "flags": [], "cases": None}
    assert v["mse_loss_grad"]["passed"] and v["cross_entropy_loss"]["flags"] == ["timeout"]


def test_to_results_names_the_notebook_when_there_are_several():
    from autograde.grading.records import Result

    result = Result.from_json({
        "format": 1, "key": "", "seed_base": 0, "hidden": True, "manual_max_score": 0,
        "assignment": "batch_norm", "score": 1.0, "max_score": 2.0, "flags": [], "student_id": "s",
        "notebooks": [{"notebook": n, "file": n, "status": "graded", "seed": 1, "advice": [], "tests": [
            {"test_id": "t", "score": float(n == "a.ipynb"), "max_score": 1.0, "passed": n == "a.ipynb",
             "message": "" if n == "a.ipynb" else "wrong", "flags": [], "cases": 3}]} for n in ("a.ipynb", "b.ipynb")]})
    res = gs.to_results(result, {"b.ipynb": {"t": {"passed": False, "message": "wrong", "flags": []}}}, elapsed=1.0)
    names = [t["name"] for t in res["tests"]]
    assert names == ["a.ipynb: t: visible cases", "a.ipynb: t: score (visible and hidden cases)",
                     "b.ipynb: t: visible cases", "b.ipynb: t: score (visible and hidden cases)"]
    assert res["score"] == 1.0 and res["tests"][2]["output"] == "wrong" and res["tests"][2]["status"] == "failed"
