"""The mistake catalog: each plausible student error loses the points of its test and gets its
diagnosis, on several seeds (so the inputs that expose it are always drawn)."""
import importlib

import pytest
from catalog import assert_caught
from conftest import ASSIGNMENTS


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
    assert_caught(assignment, mistake, seed, hidden=True)
    # the visible cases alone catch it too: a student sees the diagnosis before submitting
    assert_caught(assignment, mistake, seed, hidden=False)


def test_catalog_sizes():
    """The issues ask for at least 6 / 8 / 12 / 12 / 12 entries for the five assignments."""
    minimum = {"loss_functions": 6, "gradient_descent": 8, "batch_norm": 12, "optimizers": 12, "normalization": 12}
    counts = {}
    for a, m in ((p.values[0], p.values[1]) for p in ENTRIES):
        counts[a] = counts.get(a, 0) + 1
    for a in ASSIGNMENTS:
        assert counts.get(a, 0) >= minimum.get(a, 6), f"{a}: {counts.get(a, 0)} catalog entries"
