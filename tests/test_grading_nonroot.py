"""The grader run by an ordinary user: the same sandbox (unprivileged user namespaces), so a
student can neither read the course nor change a classmate's result.

The test runs as root (as CI does) and starts the grader as a fresh unprivileged uid, in a private
mount namespace that makes the interpreter reachable when it sits under a closed folder (pyenv
under /root), exactly as the grader's own servers do. Before the allow-list sandbox (f1a1ea6) the
attacker read solutions/ and rewrote the victim's result JSON, and the rerun reused the forgery.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from adversarial import FULL, dumps, edit, student_solution
from test_grading import ROOT

UID = 1_599_999_000 + os.getpid() % 900

ATTACK = r'''
import json, os
report = {"uid": os.getuid()}
try:
    report["solutions"] = sorted(os.listdir(@SOLUTIONS@))
except OSError as exc:
    report["solutions"] = f"unreadable: {type(exc).__name__}"
try:
    victim = json.load(open(@VICTIM@))
    victim["score"] = 0.0
    for nb in victim["notebooks"]:
        for t in nb["tests"]:
            t["score"], t["passed"] = 0.0, False
    with open(@VICTIM@, "w") as f:
        json.dump(victim, f)
    report["forged"] = True
except OSError as exc:
    report["forged"] = f"no: {type(exc).__name__}"
print("PROBE " + json.dumps(report))
'''


def _as_user(uid: int):
    from autograde.grading.isolation import _libc, _make_reachable, runtime_paths, CLONE_NEWNS, MS_PRIVATE, MS_REC

    libc = _libc()
    paths = runtime_paths() + [str(ROOT)]

    def run():
        assert libc.unshare(CLONE_NEWNS) == 0
        assert libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) == 0
        _make_reachable(libc, paths)
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)

    return run


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to an unprivileged uid needs root (CI runs as root)")
def test_an_ordinary_user_grades_in_the_same_sandbox():
    from autograde.grading.isolation import problem

    if problem():
        pytest.skip(f"no sandbox on this machine: {problem()}")
    work = Path(tempfile.mkdtemp(prefix="autograde-nonroot-", dir="/tmp"))
    try:
        os.chmod(work, 0o755)
        subs, out = work / "submitted", work / "out"
        (subs / "victim" / "loss_functions").mkdir(parents=True)
        (subs / "victim" / "loss_functions" / "loss_functions.ipynb").write_bytes(dumps(student_solution()))
        out.mkdir()
        for p in [work, subs, out, *subs.rglob("*")]:
            os.chown(p, UID, UID)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work), "LANG": "C.UTF-8",
               "MPLBACKEND": "Agg"}

        def grade():
            r = subprocess.run([sys.executable, "-m", "autograde", "grade", "--submissions", str(subs), "--out",
                                str(out), "--seed", "0", "--timeout", "10", "--workers", "1", "--no-progress"],
                               cwd=ROOT, env=env, preexec_fn=_as_user(UID), capture_output=True, text=True,
                               timeout=300)
            assert r.returncode == 0, r.stderr[-3000:]
            with open(out / "grades.csv", newline="") as f:
                return {row["student_id"]: row for row in csv.DictReader(f)}, r

        first, _ = grade()
        assert float(first["victim"]["score"]) == FULL
        victim = out / "results" / "victim" / "loss_functions.json"
        attack = ATTACK.replace("@SOLUTIONS@", repr(str(ROOT / "solutions"))).replace("@VICTIM@", repr(str(victim)))
        (subs / "attacker" / "loss_functions").mkdir(parents=True)
        (subs / "attacker" / "loss_functions" / "loss_functions.ipynb").write_bytes(
            dumps(edit(student_solution(), append=[attack])))
        for p in [subs / "attacker", *(subs / "attacker").rglob("*")]:
            os.chown(p, UID, UID)
        second, r = grade()
        third, _ = grade()  # a rerun reuses results: the victim's must still be the grader's
        res = json.loads((out / "results" / "attacker" / "loss_functions.json").read_text())
        line = next(ln for ln in res["notebooks"][0]["stdout"].splitlines() if ln.startswith("PROBE "))
        probe = json.loads(line[len("PROBE "):])
        assert probe["uid"] == UID  # an ordinary user: nothing of root was needed
        assert str(probe["solutions"]).startswith("unreadable"), probe
        assert probe["forged"] != True, probe  # noqa: E712
        assert float(third["victim"]["score"]) == FULL == float(second["victim"]["score"])
        assert float(third["attacker"]["score"]) == FULL
        assert "bubblewrap" in res["notebooks"][0]["isolation"]["sandbox"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
