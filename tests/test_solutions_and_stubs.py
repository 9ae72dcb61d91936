"""Both ways, for every assignment: the solution passes every test (visible and hidden) on
several seeds; the released stub, unmodified, fails every test."""
import pytest
from conftest import ASSIGNMENTS, solution_namespace, stub_namespace

from autograde.core import LocalStudent, run_test
from autograde.notebook import read, grading_cells
from autograde.paths import exercise_notebooks, load_tests, solution_notebooks

SEEDS = [0, 1, 12345]


def _cases():
    for a in ASSIGNMENTS:
        for test_id in load_tests(a):
            yield pytest.param(a, test_id, id=f"{a}.{test_id}")


@pytest.mark.parametrize("assignment,test_id", list(_cases()))
@pytest.mark.parametrize("seed", SEEDS)
def test_solution_passes(assignment, test_id, seed):
    v = run_test(load_tests(assignment)[test_id], LocalStudent(solution_namespace(assignment)), seed, hidden=True)
    assert v.passed, v.message
    assert v.cases > 0


@pytest.mark.parametrize("assignment,test_id", list(_cases()))
def test_stub_fails(assignment, test_id):
    v = run_test(load_tests(assignment)[test_id], LocalStudent(stub_namespace(assignment)), 0, hidden=False)
    assert not v.passed
    assert "not implemented yet" in v.message, v.message


def test_every_test_cell_has_a_check(assignment):
    """The notebooks' test cells and the registry name the same tests, and the release keeps them."""
    registry = {t.cell_id for t in load_tests(assignment).values()}
    cells = {}
    for nb in solution_notebooks(assignment):
        cells.update(grading_cells(read(nb)))
    assert set(cells) == registry
    assert all(meta.get("points", 0) > 0 for meta in cells.values())
    released = {}
    for nb in exercise_notebooks(assignment):
        released.update(grading_cells(read(nb)))
    assert set(released) == registry
