"""`optimizers` with the PyTorch reference on CUDA (AUTOGRADE_DEVICE=cuda): torch.optim on the GPU
takes its multi-tensor (foreach) path, whose rounding differs from the CPU's; the solution must
still pass every test within the stated tolerances and every catalog entry still be caught and
named. Skipped, and says so, where torch.cuda.is_available() is false."""
import numpy as np
import pytest
from catalog import assert_caught
from catalog.optimizers import MISTAKES
from conftest import solution_namespace

from autograde.core import LocalStudent, run_test
from autograde.paths import load_tests

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: torch.cuda.is_available() is False"),
]


@pytest.mark.parametrize("test_id", list(load_tests("optimizers")))
@pytest.mark.parametrize("seed", [0, 1])
def test_solution_passes_with_reference_on_cuda(on_cuda, test_id, seed):
    v = run_test(load_tests("optimizers")[test_id], LocalStudent(solution_namespace("optimizers")), seed, hidden=True)
    assert v.passed, v.message
    assert v.cases > 0


@pytest.mark.parametrize("mistake", [pytest.param(m, id=m.name) for m in MISTAKES])
def test_mistake_caught_with_reference_on_cuda(on_cuda, mistake):
    assert_caught("optimizers", mistake, 0, hidden=True)


def test_cuda_reference_agrees_with_cpu(on_cuda, monkeypatch):
    """The same trajectories from torch.optim on CUDA and on the CPU, to float64 rounding: 1e-10
    relative allows for a different order of the foreach kernels over 20 steps and is 1000x below
    the checks' tolerance (1e-7)."""
    from autograde.optimizers import reference as ref

    rng = np.random.default_rng(0)
    params = [rng.normal(size=(5, 3)), rng.normal(size=3), np.array(0.5)]
    grads = [[rng.normal(size=np.shape(p)) for p in params] for _ in range(20)]
    for name, hyper in (("RMSprop", {"lr": 0.05, "momentum": 0.9, "centered": True, "weight_decay": 0.1}),
                        ("Adam", {"lr": 0.05, "weight_decay": 0.1, "amsgrad": True}),
                        ("AdamW", {"lr": 0.05, "weight_decay": 0.1})):
        gpu = ref.optimizer_trajectory(name, params, grads, hyper)
        monkeypatch.setenv("AUTOGRADE_DEVICE", "cpu")
        cpu = ref.optimizer_trajectory(name, params, grads, hyper)
        monkeypatch.setenv("AUTOGRADE_DEVICE", "cuda")
        for g, c in zip(gpu, cpu):
            for a, b in zip(g, c):
                np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
