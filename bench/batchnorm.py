"""Vectorized batch norm: the solution's numpy forward + backward against PyTorch on the CPU.

    python -m bench bn [--repeats R] [--quick]

Times, single-threaded (torch.set_num_threads(1); numpy's BLAS is not used by these kernels):
  * torch:   F.batch_norm forward + backward (autograd), training mode
  * numpy:   the solution's batchnorm_forward + batchnorm_backward_fast (closed form)
  * staged:  the solution's batchnorm_forward + batchnorm_backward (staged graph)
  * loop:    a student-style version that loops over the D features in Python
for float32 and float64 at N x D in {64x256, 512x1024, 4096x1024}; and the minimum bytes one
forward+backward pass must move (read x, write y; read dy and x, write dx: 5*N*D elements) turned
into a time at this machine's measured copy bandwidth. At float64 512x1024 the solution/torch and
loop/torch ratios bracket the grader's vectorization-warning threshold K (SPEED_K in
autograde/batch_norm/checks.py, chosen between them); the report says where K sits.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from autograde.batch_norm.checks import SPEED_K

from . import solution_namespace
from .machine import markdown_table, save

SIZES = [(64, 256), (512, 1024), (4096, 1024)]


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def copy_bandwidth() -> float:
    """Bytes per second of a large numpy copy (read + write counted), best of 5."""
    a = np.ones(64 * 2**20 // 8)
    b = np.empty_like(a)
    t = best_time(lambda: np.copyto(b, a), 5)
    return 2 * a.nbytes / t


def loop_forward_backward(x, gamma, beta, dout, eps=1e-5):
    """What a student who has not vectorized writes: one feature at a time."""
    n, d = x.shape
    out, dx = np.empty_like(x), np.empty_like(x)
    dgamma, dbeta = np.empty(d, x.dtype), np.empty(d, x.dtype)
    for j in range(d):
        col = x[:, j]
        mu = col.mean()
        var = ((col - mu) ** 2).mean()
        inv = 1.0 / np.sqrt(var + eps)
        xhat = (col - mu) * inv
        out[:, j] = gamma[j] * xhat + beta[j]
        dy = dout[:, j]
        dbeta[j], dgamma[j] = dy.sum(), (dy * xhat).sum()
        dx[:, j] = gamma[j] * inv / n * (n * dy - dy.sum() - xhat * (dy * xhat).sum())
    return out, dx, dgamma, dbeta


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench bn", description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="smallest size only (CI smoke run)")
    args = ap.parse_args(argv)

    import torch
    import torch.nn.functional as F

    torch.set_num_threads(1)
    ns = solution_namespace("batch_norm")
    fwd, bwd_fast, bwd = ns["batchnorm_forward"], ns["batchnorm_backward_fast"], ns["batchnorm_backward"]
    bw = copy_bandwidth()
    sizes = SIZES[:1] if args.quick else SIZES
    rows, figures = [], []
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        for n, d in sizes:
            x = rng.normal(3, 2, size=(n, d)).astype(dtype)
            gamma, beta = rng.normal(size=d).astype(dtype), rng.normal(size=d).astype(dtype)
            dout = rng.normal(size=(n, d)).astype(dtype)

            xt = torch.tensor(x, requires_grad=True)
            wt, bt = torch.tensor(gamma, requires_grad=True), torch.tensor(beta, requires_grad=True)
            dt = torch.tensor(dout)

            def run_torch():
                y = F.batch_norm(xt, None, None, wt, bt, training=True, eps=1e-5)
                torch.autograd.grad(y, (xt, wt, bt), dt)

            def run_numpy(backward=bwd_fast):
                out, cache = fwd(x, gamma, beta, {"mode": "train"})
                backward(dout, cache)

            r = max(1, args.repeats if n * d < 2**21 else args.repeats // 2)
            t_torch = best_time(run_torch, r)
            t_fast = best_time(run_numpy, r)
            t_staged = best_time(lambda: run_numpy(bwd), r)
            t_loop = best_time(lambda: loop_forward_backward(x, gamma, beta, dout), max(1, r // 3))
            t_bytes = 5 * n * d * np.dtype(dtype).itemsize / bw
            name = np.dtype(dtype).name
            figures.append({"dtype": name, "N": n, "D": d, "torch_s": t_torch, "numpy_fast_s": t_fast,
                            "numpy_staged_s": t_staged, "loop_s": t_loop, "min_bytes_s": t_bytes})
            rows.append([name, f"{n}x{d}", t_torch * 1e3, t_fast * 1e3, t_fast / t_torch, t_staged * 1e3,
                         t_loop * 1e3, t_loop / t_torch, t_bytes * 1e3, t_fast / t_bytes])
            print(rows[-1], flush=True)
    header = ["dtype", "N x D", "torch ms", "numpy fast ms", "fast/torch", "numpy staged ms", "loop ms",
              "loop/torch", "min-bytes ms", "fast/min-bytes"]
    ref = next((f for f in figures if f["dtype"] == "float64" and (f["N"], f["D"]) == (512, 1024)), figures[-1])
    k = ref["loop_s"] / ref["numpy_fast_s"]
    note = (f"\nCopy bandwidth {bw / 1e9:.2f} GB/s (read+write). Threads: torch 1; "
            f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '-')}.\n"
            f"At float64 {ref['N']}x{ref['D']} the loop version is {k:.1f}x slower than the vectorized solution; "
            f"against PyTorch the solution takes {ref['numpy_fast_s'] / ref['torch_s']:.2f}x, the loop "
            f"{ref['loop_s'] / ref['torch_s']:.1f}x: the grader's vectorization warning fires past "
            f"K = {SPEED_K:g}x (autograde/batch_norm/checks.py, SPEED_K), between the two.\n")
    save("batchnorm_quick" if args.quick else "batchnorm",
         {"copy_bandwidth_Bps": bw, "figures": figures, "loop_over_fast_512x1024": k},
         markdown_table(header, rows) + note)
    return 0
