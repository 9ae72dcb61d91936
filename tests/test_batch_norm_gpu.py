"""`batch_norm` on CUDA: the reference and the student's BatchNorm1d run on the GPU
(AUTOGRADE_DEVICE=cuda). Skipped, and says so, where torch.cuda.is_available() is false."""
import pytest
from catalog import assert_caught
from catalog.batch_norm import MISTAKES
from conftest import solution_namespace

from autograde.core import LocalStudent, run_test
from autograde.paths import load_tests

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: torch.cuda.is_available() is False"),
]

MODULE_TESTS = ("bn_module_train", "bn_module_eval", "bn_module_grad")
# the catalog entries of the module: those that must fail a module test
MODULE_MISTAKES = [pytest.param(m, id=m.name) for m in MISTAKES if m.fails in MODULE_TESTS]


@pytest.mark.parametrize("test_id", MODULE_TESTS)
@pytest.mark.parametrize("seed", [0, 1])
def test_solution_module_passes_on_cuda(on_cuda, test_id, seed):
    v = run_test(load_tests("batch_norm")[test_id], LocalStudent(solution_namespace("batch_norm")), seed, hidden=True)
    assert v.passed, v.message
    assert v.cases > 0


@pytest.mark.parametrize("test_id", [t for t in load_tests("batch_norm") if t not in MODULE_TESTS])
def test_solution_numpy_passes_with_reference_on_cuda(on_cuda, test_id):
    v = run_test(load_tests("batch_norm")[test_id], LocalStudent(solution_namespace("batch_norm")), 0, hidden=True)
    assert v.passed, v.message


@pytest.mark.parametrize("mistake", MODULE_MISTAKES)
def test_module_mistake_fails_on_cuda(on_cuda, mistake):
    v = assert_caught("batch_norm", mistake, 0, hidden=False)
    if v.flag != "forbidden" and "register_buffer" not in v.message:
        assert "on cuda" in v.message, v.message  # the message says which device ran the module
