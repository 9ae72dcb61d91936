"""`normalization` through the instructor grader (``python -m autograde grade``, sandboxed): the
solution earns full marks, the released stub nothing, and built-in normalizations are flagged as
in batch_norm (tests/adversarial/attacks.py's bn_cheat): a GroupNorm that calls torch.group_norm
from C with the recorder switched off, and a numpy layer norm that computes with torch."""
from __future__ import annotations

import subprocess
import sys

import nbformat
import pytest

from adversarial.attacks import solution_of
from autograde.paths import EXERCISES
from test_grading import ROOT, read_csv

pytestmark = pytest.mark.skipif(
    subprocess.run([sys.executable, "-c", "from autograde.grading.isolation import problem; "
                    "import sys; sys.exit(problem() is not None)"], cwd=ROOT).returncode != 0,
    reason="the grader's sandbox cannot run on this machine (bwrap missing or user namespaces disabled)")

LIMITS = ["--workers", "2", "--timeout", "20", "--memory", "2G", "--no-progress", "--seed", "0"]
NOTEBOOK = "normalization.ipynb"
MODULE_TESTS = {"gn_module_forward", "gn_module_grad"}

# the built-in group norm, reached from C with the grader's torch-function recorder off
GN_CHEAT = '''
class GroupNorm(nn.Module):
    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True):
        super().__init__()
        self.num_groups, self.eps = num_groups, eps
        self.weight = nn.Parameter(torch.ones(num_channels)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_channels)) if affine else None

    def forward(self, x):
        with torch._C.DisableTorchFunction():
            return next(map(torch.group_norm, [x], [self.num_groups], [self.weight], [self.bias], [self.eps]))
'''
# a numpy answer that computes with torch
LN_TORCH = '''
def layernorm_forward(x, gamma, beta, ln_param):
    import torch
    t = torch.from_numpy(x)
    mu = t.mean(1, keepdim=True)
    xhat = ((t - mu) / torch.sqrt(t.var(1, keepdim=True, correction=0) + ln_param.get("eps", 1e-5))).numpy()
    return gamma * xhat + beta, (xhat, 1 / np.sqrt(x.var(1, keepdims=True) + ln_param.get("eps", 1e-5)), gamma)
'''


def _with(nb, gid: str, source: str):
    for cell in nb.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == gid:
            cell.source = source
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("normalization")
    subs, out = root / "submitted", root / "out"
    solution = solution_of("normalization", NOTEBOOK)
    notebooks = {"solution": solution, "stub": nbformat.read(EXERCISES / "normalization" / NOTEBOOK, as_version=4),
                 "gn_cheat": _with(solution_of("normalization", NOTEBOOK), "GroupNorm", GN_CHEAT),
                 "ln_torch": _with(solution_of("normalization", NOTEBOOK), "layernorm_forward", LN_TORCH)}
    for student, nb in notebooks.items():
        (subs / student / "normalization").mkdir(parents=True)
        nbformat.write(nb, subs / student / "normalization" / NOTEBOOK)
    r = subprocess.run([sys.executable, "-m", "autograde", "grade", "--submissions", str(subs), "--out", str(out),
                        *LIMITS, "--assignment", "normalization"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    tests = read_csv(out / "tests.csv")
    return {"grades": {row["student_id"]: row for row in read_csv(out / "grades.csv")},
            "tests": {(t["student_id"], t["test_id"]): t for t in tests}}


def test_solution_full_marks_stub_zero(graded):
    sol, stub = graded["grades"]["solution"], graded["grades"]["stub"]
    assert float(sol["score"]) == float(sol["max_score"]) > 0, sol
    assert "forbidden" not in sol["flags"], sol
    assert float(stub["score"]) == 0, stub


def test_solution_has_no_flags(graded):
    """An honest notebook with a torch exercise: its set-up cell's check.ready() fills autograde.device's
    lazy torch, which the warm server fills before its tamper baseline (else: flagged 'tampering')."""
    assert not graded["grades"]["solution"]["flags"], graded["grades"]["solution"]


def test_builtin_group_norm_from_c_earns_nothing(graded):
    row = graded["grades"]["gn_cheat"]
    assert "forbidden" in row["flags"].split(";"), row
    lost = {t for (s, t), r in graded["tests"].items() if s == "gn_cheat" and float(r["score"]) == 0}
    assert lost == MODULE_TESTS, lost  # the numpy answers still count
    assert "built-in normalization" in graded["tests"][("gn_cheat", "gn_module_forward")]["message"]


def test_torch_in_a_numpy_answer_is_forbidden(graded):
    row = graded["grades"]["ln_torch"]
    assert "forbidden" in row["flags"].split(";"), row
    lost = {t for (s, t), r in graded["tests"].items() if s == "ln_torch" and float(r["score"]) == 0}
    assert lost == {"layernorm_forward", "layernorm_backward"}, lost
    assert "torch" in graded["tests"][("ln_torch", "layernorm_forward")]["message"]
