"""GPU reference: the GPU-marked tests, and each assignment's tests (the solution, hidden cases)
timed with the reference on CUDA vs CPU (each time covers the solution's code, the reference and
the comparison).

    python -m bench gpu [--repeats R]

Run it only on a machine with CUDA (the device tool's machine). Without CUDA it records
"not run" and no figure: it never estimates.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from . import solution_namespace
from .machine import markdown_table, save


def time_tests(device: str, repeats: int) -> dict[str, float]:
    """Seconds per test (best of `repeats`, after one warm-up) with the reference on `device`."""
    import torch

    from autograde.core import LocalStudent, run_test
    from autograde.paths import assignments, load_tests

    os.environ["AUTOGRADE_DEVICE"] = device
    out = {}
    for a in assignments():
        ns = solution_namespace(a)
        for tid, test in load_tests(a).items():
            best = float("inf")
            for i in range(repeats + 1):
                if device == "cuda":
                    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    start.record()
                    v = run_test(test, LocalStudent(ns), seed=i, hidden=True)
                    end.record()
                    torch.cuda.synchronize()
                    dt = start.elapsed_time(end) / 1e3
                else:
                    t0 = time.perf_counter()
                    v = run_test(test, LocalStudent(ns), seed=i, hidden=True)
                    dt = time.perf_counter() - t0
                assert v.passed, f"{a}.{tid} failed on {device}: {v.message}"
                if i:  # the first run is the warm-up
                    best = min(best, dt)
            out[f"{a}.{tid}"] = best
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench gpu", description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        save("gpu", {"status": "not run: no CUDA device on this machine"},
             "GPU reference: **not run** — torch.cuda.is_available() is False on this machine. "
             "No figure is estimated; run `python -m bench gpu` on a CUDA machine.\n")
        return 0
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider"],
                       capture_output=True, text=True)
    gpu_tests = (r.stdout.strip().splitlines() or ["(no output)"])[-1]
    cpu, cuda = time_tests("cpu", args.repeats), time_tests("cuda", args.repeats)
    rows = [[k, cpu[k] * 1e3, cuda[k] * 1e3, cpu[k] / cuda[k]] for k in cpu]
    table = markdown_table(["test (solution, hidden cases)", "CPU ms", "CUDA ms", "CPU/CUDA"], rows)
    save("gpu", {"status": "run", "gpu_marked_tests": gpu_tests, "gpu_tests_rc": r.returncode,
                 "cpu_s": cpu, "cuda_s": cuda},
         f"GPU-marked tests: `{gpu_tests}` (exit {r.returncode}).\n\n" + table)
    return 0 if r.returncode == 0 else 1
