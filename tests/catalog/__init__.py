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
