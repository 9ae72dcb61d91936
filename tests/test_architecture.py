"""The trust boundary in the code: the grader's student process runs only student-side modules
(autograde.core's docstring lists both sides); the grader's side never runs there."""
from __future__ import annotations

import pytest

from autograde.grading import sandbox
from autograde.grading.isolation import problem
from autograde.paths import assignments

STUDENT_SIDE = {
    "autograde", "autograde.errors", "autograde.plain", "autograde.execution", "autograde.guard",
    "autograde.notebook", "autograde.paths", "autograde.grading", "autograde.grading.isolation",
    "autograde.grading.forbid", "autograde.grading.tamper", "autograde.grading.wire",
    "autograde.grading.student_process", "autograde.grading.server",
}
ASSIGNMENT_SIDE = {f"autograde.{a}{m}" for a in assignments() for m in ("", ".drivers")}  # a package, its drivers

PRINT = "import sys\nprint('MODULES', ' '.join(sorted(m for m in sys.modules if m.startswith('autograde'))))\n"


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_the_student_process_imports_only_student_side_modules(kind):
    isolated = problem() is None
    with sandbox.Sandbox([(0, PRINT)], kind=kind, isolate=isolated, timeout=20) as sb:
        sb.start()
        line = next(ln for ln in sb.stdout.splitlines() if ln.startswith("MODULES "))
    loaded = set(line.split()[1:])
    assert "autograde.grading.student_process" in loaded  # the probe saw the machinery itself
    other = loaded - STUDENT_SIDE - ASSIGNMENT_SIDE
    assert not other, f"grader-side modules in the student process: {sorted(other)}"
