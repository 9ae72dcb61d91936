"""The mistake catalog: plausible student errors, one module per assignment.

Each entry replaces one or more graded functions in the (otherwise correct) solution with code a
student could plausibly write, names the test that must fail, and a phrase its diagnosis must
contain. tests/test_catalog.py runs every entry.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Mistake:
    name: str
    code: str  # student-style source, executed over the solution's namespace
    fails: str  # the test id that must fail (lose its points)
    diagnosis: str  # a phrase the failure message must contain
    flag: str = ""  # the verdict's flag: "forbidden" for a framework or built-in normalization in use


def assert_caught(assignment: str, mistake: Mistake, seed: int, *, hidden: bool):
    """Run the test ``mistake.fails`` on the solution with the mistake's code in place; assert that
    it fails with the diagnosis and the flag. Returns the verdict."""
    from conftest import solution_namespace

    from autograde.core import LocalStudent, run_test
    from autograde.notebook import exec_cells
    from autograde.paths import load_tests

    ns, errors = exec_cells([(0, mistake.code)], solution_namespace(assignment))
    assert not errors, errors
    v = run_test(load_tests(assignment)[mistake.fails], LocalStudent(ns), seed, hidden=hidden)
    assert not v.passed, f"{mistake.name} was not caught (seed {seed}, hidden={hidden})"
    assert mistake.diagnosis.lower() in v.message.lower(), v.message
    assert v.flag == mistake.flag, f"{mistake.name}: flag {v.flag!r}, expected {mistake.flag!r}: {v.message}"
    return v
