"""The mistake catalog: each plausible student error loses the points of its test and gets its
diagnosis, on several seeds (so the inputs that expose it are always drawn)."""
import importlib

import pytest
from conftest import ASSIGNMENTS, solution_namespace

from autograde.core import LocalStudent, run_test
from autograde.notebook import exec_cells
from autograde.paths import load_tests


def _entries():
    for a in ASSIGNMENTS:
        try:
            mod = importlib.import_module(f"catalog.{a}")
        except ModuleNotFoundError:
            continue
        for m in mod.MISTAKES:
            yield pytest.param(a, m, id=f"{a}.{m.name}")


ENTRIES = list(_entries())


@pytest.mark.parametrize("assignment,mistake", ENTRIES)
@pytest.mark.parametrize("seed", [0, 7])
def test_mistake_is_caught_and_diagnosed(assignment, mistake, seed):
    ns, errors = exec_cells([(0, mistake.code)], solution_namespace(assignment))
    assert not errors, errors
    student = LocalStudent(ns)
    v = run_test(load_tests(assignment)[mistake.fails], student, seed, hidden=True)
    assert not v.passed, f"{mistake.name} was not caught"
    assert mistake.diagnosis.lower() in v.message.lower(), v.message
    # the visible cases alone catch it too: a student sees the diagnosis before submitting
    v = run_test(load_tests(assignment)[mistake.fails], student, seed, hidden=False)
    assert not v.passed and mistake.diagnosis.lower() in v.message.lower(), v.message


def test_catalog_sizes():
    """The issues ask for at least 6 / 8 / 12 entries for the three assignments."""
    minimum = {"loss_functions": 6, "gradient_descent": 8, "batch_norm": 12}
    counts = {}
    for a, m in ((p.values[0], p.values[1]) for p in ENTRIES):
        counts[a] = counts.get(a, 0) + 1
    for a in ASSIGNMENTS:
        assert counts.get(a, 0) >= minimum.get(a, 6), f"{a}: {counts.get(a, 0)} catalog entries"
