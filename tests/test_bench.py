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
    assert all(f["torch_s"] > 0 and f["numpy_s"] > 0 for f in b["figures"])
