"""The benchmarks run, at a tiny size (figures go to a scratch folder, never to bench/results/):
a smoke test that they work on a fresh clone, not a timing test."""
import json
import os
import subprocess
import sys

import pytest

from autograde.paths import ROOT


def _bench(tmp_path, *args):
    env = {**os.environ, "BENCH_RESULTS": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    return r.stdout


@pytest.mark.slow
def test_bench_grading_tiny(tmp_path):
    # a correct submission (student s01) and the unmodified stub (s02) of every assignment
    from autograde.paths import assignments

    a = len(assignments())
    out = _bench(tmp_path, "grading", "--n", str(2 * a))
    g = json.loads((tmp_path / "grading.json").read_text())
    assert g["n"] == 2 * a and g["nbgrader_s"] > 0 and g["workers1_s"] > 0 and g["workers2_s"] > 0
    assert g["kinds"] == {"correct": a, "stub": a}, g["kinds"]
    assert g["workers1_cpu_s"] > 0 and g["workers2_cpu_s"] > 0
    assert g["speedup_bound"] == g["workers1_s"] / (g["workers2_cpu_s"] / g["machine"]["cores"])
    assert g["machine"]["cores"] >= 1 and "torch" in g["machine"]
    # the same submissions get the same scores from plain nbgrader and from `grade`
    assert g["nbgrader_scores"] == g["grade_scores"], (g["nbgrader_scores"], g["grade_scores"])
    scores = {(s["kind"], s["assignment"]): g["grade_scores"][f"{s['student_id']}/{s['assignment']}"]
              for s in g["submissions"]}
    for a in {s["assignment"] for s in g["submissions"]}:
        assert scores["stub", a] == 0 < scores["correct", a], (a, scores)
    assert "plain nbgrader autograde" in out and (tmp_path / "grading.md").is_file()


@pytest.mark.slow
def test_bench_bn_quick(tmp_path):
    _bench(tmp_path, "bn", "--quick", "--repeats", "2")
    b = json.loads((tmp_path / "batchnorm_quick.json").read_text())
    assert {f["dtype"] for f in b["figures"]} == {"float32", "float64"}
    assert all(f["torch_s"] > 0 and f["numpy_fast_s"] > 0 and f["loop_s"] > 0 for f in b["figures"])


def test_bench_usage():
    r = subprocess.run([sys.executable, "-m", "bench", "nonsense"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "usage" in r.stderr


@pytest.mark.slow
def test_bench_norm_quick(tmp_path):
    _bench(tmp_path, "norm", "--quick", "--repeats", "2")
    b = json.loads((tmp_path / "normalization_quick.json").read_text())
    assert {(f["kind"], f["dtype"]) for f in b["figures"]} == {(k, d) for k in ("layer norm", "group norm")
                                                              for d in ("float32", "float64")}
    assert all(f["torch_s"] > 0 and f["numpy_s"] > 0 and f["blocked_s"] > 0 and f["torch_basic_s"] > 0 for f in b["figures"])
    assert all(set(f["relative_error"]) == {"basic", "numpy", "blocked"} for f in b["figures"])


@pytest.mark.parametrize("kind, shape, groups", [("layer", (300, 1024), None), ("group", (3, 12, 37, 41), 3),
                                                 ("group", (2, 6, 1, 1), 6)])
def test_norm_blocked_agrees_with_torch(kind, shape, groups):
    """bench/norm_blocked.py, the speed reference for the normalization solution, computes the same as
    PyTorch, also where rows do not fill whole blocks (300 rows of 32; 9 group rows of 5) and with
    one value per group; float64, so agreement to 1e-12 is rounding."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from bench import norm_blocked as nb

    rng = np.random.default_rng(0)
    x, dout = rng.normal(3, 2, size=shape), rng.normal(size=shape)
    gamma, beta = rng.normal(size=shape[1]), rng.normal(size=shape[1])
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    if kind == "layer":
        out, cache = nb.layernorm_forward(x, gamma, beta, {"eps": 1e-3})
        grads = nb.layernorm_backward(dout, cache)
        want = F.layer_norm(xt, shape[1:], wt, bt, 1e-3)
    else:
        out, cache = nb.spatial_groupnorm_forward(x, gamma, beta, groups, {"eps": 1e-3})
        grads = nb.spatial_groupnorm_backward(dout, cache)
        want = F.group_norm(xt, groups, wt, bt, 1e-3)
    ref = [want.detach().numpy(), *(g.numpy() for g in torch.autograd.grad(want, (xt, wt, bt), torch.tensor(dout)))]
    for got, r in zip((out, *grads), ref):
        np.testing.assert_allclose(got, r, rtol=1e-12, atol=1e-12)
    if kind == "group":
        with pytest.raises(ValueError):
            nb.spatial_groupnorm_forward(x, gamma, beta, 5, {})
