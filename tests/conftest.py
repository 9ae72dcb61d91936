"""Shared fixtures: the namespaces of solution and released notebooks, per assignment."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from autograde.notebook import merged_namespace, namespace_of  # noqa: E402
from autograde.paths import assignments, exercise_notebooks, solution_notebooks  # noqa: E402

_cache: dict[Path, dict] = {}


def notebook_namespace(path: Path) -> dict:
    """The namespace a notebook's student cells build (run once per session, copied per use)."""
    if path not in _cache:
        _cache[path] = namespace_of(path)
    return dict(_cache[path])


def solution_namespace(assignment: str) -> dict:
    return merged_namespace(solution_notebooks(assignment), notebook_namespace)


def stub_namespace(assignment: str) -> dict:
    return merged_namespace(exercise_notebooks(assignment), notebook_namespace)


ASSIGNMENTS = assignments()


@pytest.fixture(params=ASSIGNMENTS)
def assignment(request):
    return request.param


def pytest_report_header(config):
    from autograde.device import reference_device

    return f"autograde: reference device {reference_device()}; assignments: {', '.join(ASSIGNMENTS)}"


@pytest.fixture
def on_cuda(monkeypatch):
    """The references on CUDA (the GPU-marked tests; they skip without it)."""
    from autograde.core import Context

    monkeypatch.setenv("AUTOGRADE_DEVICE", "cuda")
    assert Context(seed=0).device == "cuda"
