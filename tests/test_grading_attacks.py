"""The grader against a determined student (tests/adversarial/attacks.py): one batch of attacks
through the command line, then what each attack got, and what it left on the machine.

What each attack did to the grader of f1a1ea6 (before the allow-list sandbox), for the record:
``c_route`` and ``subprocess`` computed with torch for full marks and no flag; ``bn_cheat`` scored
the module tests' 5 points with the built-in batch norm; ``huge_int``, ``nested_json`` and
``long_expression`` made the batch exit 1 with no row for that student, on every rerun; ``fifos``
and ``fifo_notebook`` blocked the batch forever; ``link_notebook`` got the solution notebook graded
(and shown in its feedback), ``link_folder`` a classmate's work; ``slow`` cost ~15x the limit;
``probe`` listed the course folder (solutions/ included), connected to a Unix socket, saw the
grader's command line, and left files in /tmp and /dev/shm and a System V segment behind;
``=HYPERLINK(1)`` reached grades.csv as a formula.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from adversarial import POINTS
from adversarial.attacks import BN_MODULE_POINTS, BN_MODULE_TESTS, build
from test_grading import ROOT, read_csv

pytestmark = pytest.mark.skipif(
    subprocess.run([sys.executable, "-c", "from autograde.grading.isolation import problem; "
                    "import sys; sys.exit(problem() is not None)"], cwd=ROOT).returncode != 0,
    reason="the grader's sandbox cannot run on this machine (bwrap missing or user namespaces disabled)")

LIMITS = ["--workers", "2", "--timeout", "5", "--memory", "1G", "--no-progress", "--seed", "0"]


def shm_keys() -> set[int]:
    try:
        lines = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    except OSError:
        return set()
    return {int(line.split()[0]) for line in lines if line.strip()}


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    root = tmp_path_factory.mktemp("attacks")
    marker = f"autograde-attack-{uuid.uuid4().hex}"
    pwned = f"/tmp/{marker}.pwned"
    ipc_key = 0x5EED0000 + os.getpid() % 0xFFFF
    sock_path = f"/tmp/{marker}.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(sock_path)
    os.chmod(sock_path, 0o777)  # world-writable: any process on the machine may connect
    listener.listen(8)
    subs, cases = build(root, socket_path=sock_path, marker=marker, ipc_key=ipc_key, pwned=pwned)
    out = root / "out"
    t0 = time.perf_counter()
    try:
        r = subprocess.run([sys.executable, "-m", "autograde", "grade", "--submissions", str(subs), "--out", str(out),
                            *LIMITS], capture_output=True, text=True, timeout=600, cwd=ROOT)
        # a second run: a file a student left where the next run's Python would execute it
        r2 = subprocess.run([sys.executable, "-m", "autograde", "grade", "--submissions", str(subs), "--out", str(out),
                             *LIMITS, "--force", "--assignment", "batch_norm"],
                            capture_output=True, text=True, timeout=600, cwd=ROOT)
    finally:
        listener.close()
        os.unlink(sock_path)
    seconds = time.perf_counter() - t0
    print(f"\nattacks: {len(cases) + 1} submissions, two runs in {seconds:.1f} s\n{r.stderr[-3000:]}")
    return {"r": r, "r2": r2, "out": out, "cases": cases, "marker": marker, "pwned": pwned, "ipc_key": ipc_key,
            "grades": {(row["student_id"], row["assignment"]): row for row in read_csv(out / "grades.csv")}
            if (out / "grades.csv").exists() else {},
            "tests": read_csv(out / "tests.csv") if (out / "tests.csv").exists() else []}


def _result(attacked, student: str, assignment: str = "loss_functions") -> dict:
    return json.loads((attacked["out"] / "results" / student / f"{assignment}.json").read_text())


def test_the_batch_completes_with_a_row_for_everyone(attacked):
    assert attacked["r"].returncode == 0, attacked["r"].stderr[-3000:]
    assert attacked["r2"].returncode == 0, attacked["r2"].stderr[-3000:]
    names = {c.name for c in attacked["cases"]} | {"bn_cheat"}
    assert {sid for sid, _ in attacked["grades"]} >= names - {"=HYPERLINK(1)"}


def test_scores_and_flags(attacked):
    for case in attacked["cases"]:
        sid = case.name if not case.name.startswith("=") else "'" + case.name
        row = attacked["grades"][(sid, "loss_functions")]
        assert float(row["score"]) == case.score, (case.name, row)
        assert set(filter(None, row["flags"].split(";"))) == case.flags, (case.name, row)
        per_test = {t["test_id"]: t for t in attacked["tests"] if t["student_id"] == sid
                    and t["assignment"] == "loss_functions"}
        for tid, pts in POINTS.items():
            assert float(per_test[tid]["score"]) == (0 if tid in case.lost else pts), (case.name, tid, per_test[tid])


def test_builtin_normalization_from_c_with_the_recorder_off_earns_nothing(attacked):
    row = attacked["grades"][("bn_cheat", "batch_norm")]
    assert "forbidden" in row["flags"].split(";"), row
    per_test = {t["test_id"]: t for t in attacked["tests"] if t["student_id"] == "bn_cheat"
                and t["assignment"] == "batch_norm"}
    assert sum(float(per_test[t]["score"]) for t in BN_MODULE_TESTS) == 0
    assert float(row["score"]) == float(row["max_score"]) - BN_MODULE_POINTS  # the numpy answers still count
    assert "built-in normalization" in per_test["bn_module_train"]["message"]


def test_diagnoses(attacked):
    msg = {(t["student_id"], t["test_id"]): t["message"] for t in attacked["tests"]}
    assert "numpy exercise" in msg[("c_route", "mse_loss")] and "torch" in msg[("c_route", "mse_loss")]
    assert "not a number of ordinary size" in msg[("huge_int", "mse_loss")]
    assert "time budget" in " ".join(msg[("slow", t)] for t in POINTS)


def test_the_probe_saw_nothing_of_the_machine(attacked):
    nb = _result(attacked, "probe")["notebooks"][0]
    line = next(ln for ln in nb["stdout"].splitlines() if ln.startswith("PROBE "))
    probe = json.loads(line[len("PROBE "):])
    assert probe["isolated_flag"] == 1  # the server's Python ignores user site, PYTHON* variables
    assert set(probe["course"] or []) <= {"autograde", ".venv"}, probe["course"]  # no solutions/, tests/, .git
    from autograde.grading.isolation import runtime_paths

    visible = dict(probe["visible"])
    # /root shows at most the way to the runtime (a pyenv Python, a checkout with its .venv under /root)
    way = {p.split("/")[2] for p in runtime_paths() if p.startswith("/root/")}
    root = visible.pop("/root")
    assert root is False or set(root) <= way, probe["visible"]
    assert not any(visible.values()), probe["visible"]
    assert probe["socket"].startswith("refused"), probe["socket"]
    assert not probe["grader_cmdline_seen"] and probe["processes"] <= 3, probe
    if os.geteuid() == 0:
        from autograde.grading.isolation import UID_BASE

        assert probe["uid"] >= UID_BASE
    assert probe["/tmp"] == "written" and probe["/dev/shm"] == "written"  # private, and gone afterwards


def test_nothing_outlives_the_run(attacked):
    marker = attacked["marker"]
    assert not Path("/tmp", marker).exists() and not Path("/dev/shm", marker).exists()
    assert not Path(attacked["pwned"]).exists()  # the user-site file never ran, not even in the second run
    assert attacked["ipc_key"] not in shm_keys()


def test_links_are_never_followed(attacked):
    for sid in ("link_notebook", "link_folder", "fifo_notebook"):
        r = _result(attacked, sid)
        assert r["score"] == 0 and "unsafe-file" in r["flags"], (sid, r["flags"])
        assert not any(nb["answers"] for nb in r["notebooks"])  # nothing of the linked notebook was read
    html = (attacked["out"] / "feedback" / "link_notebook" / "loss_functions" / "loss_functions.html")
    assert "BEGIN HIDDEN TESTS" not in (html.read_text() if html.exists() else "")


def test_slow_submission_stays_within_its_budget(attacked):
    r = _result(attacked, "slow")
    assert r["timing"]["total_s"] < 6 * 5 + 15, r["timing"]  # budget 6 x --timeout, plus start-up


def test_spreadsheet_formulas_are_defused(attacked):
    text = (attacked["out"] / "grades.csv").read_text()
    assert "\n'=HYPERLINK(1)," in text and "\n=HYPERLINK" not in text
