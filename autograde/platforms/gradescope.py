"""A Gradescope autograder for one assignment, built on ``python -m autograde grade``.

``python -m autograde gradescope ASSIGNMENT --out autograder.zip`` writes a zip that follows
Gradescope's autograder specification: ``setup.sh`` (installs the pinned requirements, PyTorch's
CPU wheel, and this package), ``run_autograder`` and the course files it needs (the
``autograde`` package, ``solutions/<assignment>/`` for the points, ``gradescope.json``).

On Gradescope, ``run_autograder`` runs :func:`run`: it lays the upload out as nbgrader's
submitted folder (``work/submitted/<student>/<assignment>/<notebook>.ipynb``), runs
``python -m autograde grade`` on it (same isolated grader, same policy: the scores, flags and
diagnoses are the ones ``grade`` writes into ``results/<student>/<assignment>.json``) and
converts that result into ``results/results.json``.

Seeds are not shown to students (they are in ``extra_data``, for the instructor). What students
see before grades are published: for each test, an entry with its *visible*
cases only (``visibility: visible``), taken from ``python -m autograde validate`` on the same
seed (the same inputs the student's own ``check()`` cell would draw, so nothing about hidden
cases), and only when ``grade`` did not already pass every case. The points and the diagnosis
of the full run, hidden cases included, are in a second entry per test with
``visibility: after_published``; so are the flags.

Every path is below one root, ``/autograder`` on Gradescope; the environment variable
``AUTOGRADE_GRADESCOPE_ROOT`` moves it (the tests unpack the zip into a scratch folder).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from ..grading.records import Result
from ..grading.results import read_record

ROOT_ENV = "AUTOGRADE_GRADESCOPE_ROOT"
CONFIG = "gradescope.json"
FORMAT = 1

VISIBLE_PASS = "The visible cases pass; the hidden cases are reported when grades are published."
FLAG_TEXT = {  # what a flag means, for the entry that shows it
    "tampering": "your code changed numpy, torch, builtins or the course's test helpers (or the notebook's saved "
                 "test output does not match what your code does); it changed no score: tests run outside your process.",
    "forbidden": "an answer uses what the exercise forbids (a deep-learning framework in a numpy exercise, or a "
                 "built-in normalization): that test earned no points.",
    "timeout": "some code ran longer than the time limit; the test that was running earned no points.",
    "crash": "the process running your code ended abruptly (os._exit, a segfault...); the test that was running "
             "earned no points.",
    "memory": "your code ran out of memory; the test that was running earned no points.",
    "invalid-notebook": "the notebook file could not be read (corrupt JSON?).",
    "missing": "the notebook was not found in your submission.",
}

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
# It installs Python 3.11+, the exact pins of requirements.txt (PyTorch's CPU wheel) and the
# course's autograde package into $ROOT/venv. ROOT is /autograder unless AUTOGRADE_GRADESCOPE_ROOT says otherwise.
set -euo pipefail
ROOT="${AUTOGRADE_GRADESCOPE_ROOT:-/autograder}"
cd "$ROOT/source"
PY=""
for c in python3.11 python3.12 python3.13 python3; do  # the pins were resolved on 3.11
  if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then PY="$c"; break; fi
done
if [ -z "$PY" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq python3.11 python3.11-venv || { apt-get install -y -qq software-properties-common &&
    add-apt-repository -y ppa:deadsnakes/ppa && apt-get update -qq && apt-get install -y -qq python3.11 python3.11-venv; }
  PY=python3.11
fi
if ! "$PY" -m venv --help >/dev/null 2>&1; then apt-get install -y -qq python3-venv; fi
"$PY" -m venv "$ROOT/venv"
"$ROOT/venv/bin/python" -m pip install --quiet --upgrade pip
PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu "$ROOT/venv/bin/python" -m pip install --quiet -r requirements.txt
"$ROOT/venv/bin/python" -m pip install --quiet --no-deps -e .
"$ROOT/venv/bin/python" -c "import autograde, torch, numpy; print('autograde ready: torch', torch.__version__)"
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this for every submission; it writes $ROOT/results/results.json.
# ROOT is /autograder unless AUTOGRADE_GRADESCOPE_ROOT says otherwise.
ROOT="${AUTOGRADE_GRADESCOPE_ROOT:-/autograder}"
PY="$ROOT/venv/bin/python"
[ -x "$PY" ] || PY=python3
export PYTHONPATH="$ROOT/source"
cd "$ROOT"
exec "$PY" -m autograde.platforms.gradescope run
"""


# =============================================================================================
# Building the zip
# =============================================================================================
def build_zip(assignment: str, out: str | Path | None = None, *, seed: int | None = None, timeout: float = 30.0,
              memory: str = "4G") -> Path:
    """Write the autograder zip of ``assignment``; return its path."""
    from ..paths import ROOT, UsageError, require_assignment, solution_notebooks

    require_assignment(assignment)
    out = Path(out) if out else Path(f"{assignment}_gradescope.zip")
    if out.parent and not out.parent.is_dir():
        raise UsageError(f"{out.parent}: no such folder")
    notebooks = [p.name for p in solution_notebooks(assignment)]
    if seed is None:  # a seed base of the course's own, kept in the zip (instructors only)
        seed = int.from_bytes(os.urandom(4), "little") % 10**9
    config = {"format": FORMAT, "assignment": assignment, "notebooks": notebooks, "seed": int(seed),
              "timeout": float(timeout), "memory": str(memory),
              "built": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    files: dict[str, bytes] = {"setup.sh": SETUP_SH.encode(), "run_autograder": RUN_AUTOGRADER.encode(),
                               CONFIG: json.dumps(config, indent=1).encode()}
    for name in ("requirements.txt", "pyproject.toml"):
        files[name] = (ROOT / name).read_bytes()
    for p in sorted((ROOT / "autograde").rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc",):
            files[p.relative_to(ROOT).as_posix()] = p.read_bytes()
    for p in solution_notebooks(assignment):
        files[p.relative_to(ROOT).as_posix()] = p.read_bytes()
    tmp = out.with_name(out.name + ".part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            mode = 0o755 if name in ("setup.sh", "run_autograder") else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            z.writestr(info, data)
    os.replace(tmp, out)
    return out


def unpack(zip_path: str | Path, root: str | Path) -> Path:
    """What Gradescope does with the zip: its files in ``ROOT/source``, ``run_autograder`` copied to
    ``ROOT`` (executable), an empty ``ROOT/submission`` and ``ROOT/results``. For tests and trials."""
    root = Path(root)
    src = root / "source"
    src.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(src)
        for info in z.infolist():
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(src / info.filename, mode)
    shutil.copy2(src / "run_autograder", root / "run_autograder")
    os.chmod(root / "run_autograder", 0o755)
    (root / "submission").mkdir(exist_ok=True)
    (root / "results").mkdir(exist_ok=True)
    return root


# =============================================================================================
# Running on Gradescope
# =============================================================================================
def autograder_root() -> Path:
    return Path(os.environ.get(ROOT_ENV) or "/autograder")


def _lock_down(root: Path) -> None:
    """Folders only the grader (root) may enter: the student processes run as another uid, so
    even without mount namespaces they cannot read the solutions or write results.json."""
    for path, mode in ((root / "results", 0o700), (root / "work", 0o700), (root / "source" / "solutions", 0o700),
                       (root / "source" / "tests", 0o700), (root / "source" / CONFIG, 0o600)):
        if path.exists():
            os.chmod(path, mode)


def student_id(root: Path) -> str:
    """The submitter's Gradescope id (``submission_metadata.json``), or ``student``."""
    try:
        meta = json.loads((root / "submission_metadata.json").read_text())
        users = meta.get("users") or []
        sid = str(users[0].get("id") or users[0].get("email") or "") if users else ""
    except (OSError, ValueError, AttributeError, IndexError, TypeError):
        sid = ""
    sid = re.sub(r"[^A-Za-z0-9_.@-]", "_", sid).strip("._")
    return sid or "student"


def _regular_files(folder: Path) -> list[Path]:
    """The regular files under ``folder`` (symbolic links are not followed: a link to the
    autograder's files would otherwise be copied with the grader's rights)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__MACOSX")
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if not p.is_symlink() and p.is_file():
                found.append(p)
    return found


def stage(submission: Path, dest: Path, notebooks: list[str]) -> list[str]:
    """Copy the upload into ``dest`` (the assignment folder of nbgrader's layout); put each expected
    notebook at the top under its name. Returns notes for the student (what was taken for what)."""
    dest.mkdir(parents=True, exist_ok=True)
    files = _regular_files(submission) if submission.is_dir() else []
    for p in files:
        target = dest / p.relative_to(submission)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, target)
    notes = []
    uploaded = [p for p in files if p.suffix == ".ipynb"]
    for name in notebooks:
        if (dest / name).is_file():
            continue
        same = [p for p in uploaded if p.name == name]
        if same:
            shutil.copyfile(same[0], dest / name)
            notes.append(f"graded {same[0].relative_to(submission)} as {name}")
        elif len(notebooks) == 1 and len(uploaded) == 1:
            shutil.copyfile(uploaded[0], dest / name)
            notes.append(f"graded {uploaded[0].relative_to(submission)} as {name} (the only notebook uploaded)")
    return notes


def _autograde(*args: str, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(cwd) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return subprocess.run([sys.executable, "-m", "autograde", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def parse_validate(text: str) -> dict[str, dict]:
    """``validate``'s verdict lines: ``{test_id: {"passed", "message", "flags", "cases"}}``.

    Only the block of verdicts right after the heading line is read (a diagnosis is indented; the
    notes, flags and details that follow may quote the student's own text), first verdict per test."""
    verdicts: dict[str, dict] = {}
    current = None
    for line in text.splitlines()[1:]:
        m = re.match(r"^([\u2714\u2718]) (\S+) \(([^)]*)\)(?: \[([^\]]*)\])?:(?: (\d+) cases passed)?\s*$", line)
        if m and m.group(2) not in verdicts:
            current = {"passed": m.group(1) == "\u2714", "message": "", "flags": (m.group(4) or "").split(";") if m.group(4) else [],
                       "cases": int(m.group(5)) if m.group(5) else None}
            verdicts[m.group(2)] = current
        elif current is not None and not current["passed"] and line.startswith("    "):
            current["message"] += ("\n" if current["message"] else "") + line[4:]
        else:
            break
    return verdicts


def _flags_text(flags) -> str:
    return "\n".join(f"flag {f}: {FLAG_TEXT.get(f, '')}" for f in flags)


def to_results(result: Result, visible: dict[str, dict | None], *, elapsed: float, notes: list[str] = ()) -> dict:
    """Gradescope's results.json from one ``grade`` result (``results/<student>/<assignment>.json``)
    and, per notebook, ``validate``'s visible-case verdicts (None: not needed, every case passed,
    or the notebook could not be run)."""
    tests = []
    many = len(result.notebooks) > 1
    summary = [f"Autograded {result.assignment}: each test's visible cases are shown now; its points, "
               "computed on the visible and the hidden cases, are shown when grades are published."]
    summary += [f"Note: {n}." for n in notes]
    for nb in result.notebooks:
        name = nb.notebook or nb.file or ""
        prefix = f"{name}: " if many else ""
        unreadable = nb.status in ("invalid-notebook", "missing")
        if unreadable:
            first = next((t.message for t in nb.tests if t.message), "")
            summary.append(f"{name}: {FLAG_TEXT.get(nb.status, nb.status)} {first}".strip()
                           + " Nothing in it could be graded: upload the notebook again (File > Download as .ipynb).")
        for a in nb.advice:  # advice runs on the visible cases only
            summary.append(f"Advice (no points): {a.get('message', '')}")
        seen = (visible or {}).get(name)
        for t in nb.tests:
            tid = t.test_id
            if unreadable:
                v_status, v_out = "failed", t.message
            elif t.passed:  # the same words as a test whose hidden cases failed: nothing told before publication
                v_status, v_out = "passed", VISIBLE_PASS
            elif seen and tid in seen:
                v = seen[tid]
                v_status = "passed" if v["passed"] else "failed"
                v_out = (VISIBLE_PASS if v["passed"] else v["message"] + (("\n" + _flags_text(v["flags"])) if v["flags"] else ""))
            else:
                v_status, v_out = None, "The result of this test is shown when grades are published."
            entry = {"name": f"{prefix}{tid}: visible cases", "output": v_out, "visibility": "visible"}
            if v_status:
                entry["status"] = v_status
            tests.append(entry)
            full = t.message or f"Passed every case, visible and hidden ({t.cases} cases)."
            if t.flags:
                full += "\n" + _flags_text(t.flags)
            tests.append({"name": f"{prefix}{tid}: score (visible and hidden cases)", "score": float(t.score),
                          "max_score": float(t.max_score), "status": "passed" if t.passed else "failed",
                          "output": full, "visibility": "after_published"})
    flags = list(result.flags)
    if flags:
        details = [m for nb in result.notebooks for m in [m for _, m in nb.events] + list(nb.tamper)]
        tests.append({"name": "Flags", "output": _flags_text(flags) + ("\n\nWhat the grader saw:\n" + "\n".join(details) if details else ""),
                      "visibility": "after_published"})
    return {
        "score": float(result.score),
        "execution_time": round(elapsed, 2),
        "output": "\n".join(summary),
        "stdout_visibility": "hidden",
        "tests": tests,
        "extra_data": {"assignment": result.assignment, "student_id": result.student_id,
                       "max_score": result.max_score, "flags": flags,
                       "seeds": {nb.notebook: nb.seed for nb in result.notebooks}},
    }


def _write(results_dir: Path, data: dict) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / "results.json"
    tmp = results_dir / ".results.json.part"
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False))
    os.replace(tmp, path)
    return path


def run(root: Path | None = None) -> int:
    """Grade ``ROOT/submission`` and write ``ROOT/results/results.json``."""
    t0 = time.perf_counter()
    root = Path(root or autograder_root()).resolve()
    source = root / "source"
    config = json.loads((source / CONFIG).read_text())
    assignment, notebooks = config["assignment"], list(config["notebooks"])
    timeout, memory, seed = float(config.get("timeout", 30)), str(config.get("memory", "4G")), int(config["seed"])
    work = root / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (root / "results").mkdir(parents=True, exist_ok=True)
    _lock_down(root)
    sid = student_id(root)
    folder = work / "submitted" / sid / assignment
    notes = stage(root / "submission", folder, notebooks)
    uploaded = [p.name for p in _regular_files(root / "submission")] if (root / "submission").is_dir() else []
    out = work / "graded"
    limit = max(600.0, 20 * timeout * (1 + len(notebooks)))
    from ..grading.isolation import problem

    # a container that allows no namespaces: grade without the sandbox (as root, each student process
    # still gets a uid of its own, and _lock_down closed the autograder's files to it)
    sandbox = [] if problem() is None else ["--no-isolation"]
    r = _autograde("grade", "--submissions", str(work / "submitted"), "--out", str(out), "--workers", "1",
                   "--no-progress", "--seed", str(seed), "--timeout", f"{timeout:g}", "--memory", memory,
                   "--assignment", assignment, "--force", *sandbox, cwd=source, timeout=limit)
    print(r.stdout + r.stderr)  # ROOT/results/stdout: for the instructor
    result = read_record(out / "results" / sid / f"{assignment}.json")
    if not isinstance(result, Result):
        _write(root / "results", {
            "score": 0.0, "execution_time": round(time.perf_counter() - t0, 2), "stdout_visibility": "hidden",
            "output": ("The autograder could not grade this submission: a grader-side error, not a verdict on your "
                       "code. Resubmit, or tell your instructor."), "tests": [],
            "extra_data": {"assignment": assignment, "grade_exit_status": r.returncode}})
        return 1
    if any(nb.status == "missing" for nb in result.notebooks):
        notes.append("expected " + ", ".join(notebooks) + "; uploaded: " + (", ".join(uploaded) or "nothing"))
    visible: dict[str, dict | None] = {}
    for nb in result.notebooks:
        name = nb.notebook or nb.file
        if nb.status != "graded" or all(t.passed for t in nb.tests):
            continue
        v = _autograde("validate", str(folder / name), "--seed", str(nb.seed), "--assignment", assignment,
                       "--timeout", f"{timeout:g}", "--memory", memory, cwd=source, timeout=limit)
        visible[name] = parse_validate(v.stdout) if v.returncode in (0, 1) else None
    _write(root / "results", to_results(result, visible, elapsed=time.perf_counter() - t0, notes=notes))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m autograde.platforms.gradescope")
    ap.add_argument("command", choices=["run"], help="run: grade ROOT/submission into ROOT/results/results.json "
                                                      f"(ROOT: ${ROOT_ENV}, default /autograder)")
    ap.parse_args(argv)
    return run()


if __name__ == "__main__":
    sys.exit(main())
