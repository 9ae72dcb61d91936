"""The figures of issue 18: the time to grade one submission through the Gradescope autograder's
``run_autograder`` (in a scratch folder standing in for /autograder), and the time of
``python -m autograde similarity`` on a class of N submissions.

    python -m bench.platforms [--runs 3] [--n 120]

run_autograder is timed on a correct notebook (``grade`` only) and on one that fails a test
(``grade``, then ``validate`` for the visible-case verdicts), each ``--runs`` times; wall and CPU
seconds (of every process under it), and the load average around the runs, since a shared
machine's load changes the wall time. The similarity class is tests/test_similarity.py's
planted class repeated to N students with renamed variables (a timing input, not a quality one).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .machine import markdown_table, save

ROOT = Path(__file__).resolve().parents[1]


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _timed(cmd: list[str], **kw) -> tuple[float, float, subprocess.CompletedProcess]:
    c0, t0 = _cpu_children(), time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    return time.perf_counter() - t0, _cpu_children() - c0, r


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.platforms")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--n", type=int, default=120)
    args = ap.parse_args(argv)
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    from adversarial import WRONG, dumps, edit, student_solution
    from test_similarity import write_class

    from autograde.platforms import gradescope as gs

    tmp = Path(tempfile.mkdtemp(prefix="bench-platforms-"))
    rows, payload = [], {"runs": args.runs, "n": args.n, "load_before": os.getloadavg()}
    try:
        root = gs.unpack(gs.build_zip("loss_functions", tmp / "autograder.zip", seed=1), tmp / "autograder")
        os.symlink(Path(sys.prefix).resolve(), root / "venv")
        env = {**os.environ, gs.ROOT_ENV: str(root)}
        cases = {"correct (grade)": dumps(student_solution()),
                 "one test wrong (grade + validate)": dumps(edit(student_solution(), replace={"mse_loss": WRONG["mse_loss"]}))}
        for name, data in cases.items():
            walls, cpus = [], []
            for _ in range(args.runs):
                shutil.rmtree(root / "submission")
                (root / "submission").mkdir()
                (root / "submission" / "loss_functions.ipynb").write_bytes(data)
                wall, cpu, r = _timed([str(root / "run_autograder")], env=env, cwd=root)
                assert r.returncode == 0, r.stdout + r.stderr
                json.loads((root / "results" / "results.json").read_text())
                walls.append(wall)
                cpus.append(cpu)
            payload[name] = {"wall_s": walls, "cpu_s": cpus}
            rows.append([f"run_autograder, one submission: {name}", statistics.median(walls), statistics.median(cpus)])
        subs = write_class(tmp / "class", args.n)
        wall, cpu, r = _timed([sys.executable, "-m", "autograde", "similarity", "--submissions", str(subs),
                               "--out", str(tmp / "similar")], cwd=ROOT)
        assert r.returncode == 0, r.stdout + r.stderr
        payload["similarity"] = {"wall_s": wall, "cpu_s": cpu, "pairs": args.n * (args.n - 1) // 2, "stdout": r.stdout.strip()}
        rows.append([f"similarity, {args.n} submissions ({args.n * (args.n - 1) // 2} pairs)", wall, cpu])
        payload["load_after"] = os.getloadavg()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    table = markdown_table(["what", "wall s (median)", "CPU s (median)"], rows)
    table += (f"\n\nLoad average (1, 5, 15 min) before: {', '.join(f'{x:.2f}' for x in payload['load_before'])}; "
              f"after: {', '.join(f'{x:.2f}' for x in payload['load_after'])} (a shared machine: wall times grow with it).")
    save("platforms", payload, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
