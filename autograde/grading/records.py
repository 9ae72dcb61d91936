"""The records that cross a process boundary in grading, typed, each with one JSON round trip.

* :class:`Limits`: what one student's code may cost (the command line takes its defaults here).
* :class:`Job`: one submission to grade (student, assignment, plan, the notebook files, seeds,
  limits): built by ``grade`` (:mod:`.runner`) or ``validate``, sent to a pool or Dask worker,
  graded by :func:`.grader.grade_job`. It carries everything, notebook bytes included, so a worker
  needs the package and not the course folders.

The plan (from the solution notebooks) and the result (the JSON written per submission) keep
their JSON shapes as documented in README.md; a job holds the plan as that JSON.
"""
from __future__ import annotations

import base64
from dataclasses import asdict, dataclass, field, replace

GiB = 2**30


@dataclass(frozen=True)
class Limits:
    """Time and memory for one submission's student processes."""

    timeout: float = 30.0  # seconds, per call into student code
    cell_timeout: float | None = None  # seconds, per notebook cell (None: timeout)
    memory: int = 4 * GiB  # address space per student process (it includes the ~0.7 GB the warm interpreter maps)
    budget: float | None = None  # seconds, per notebook in all, restarts included (None: BUDGET_FACTOR x timeout)

    BUDGET_FACTOR = 6  # a notebook may cost this many --timeout before its remaining tests fail

    def notebook_budget(self) -> float:
        return float(self.budget) if self.budget else self.BUDGET_FACTOR * float(self.timeout)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "Limits":
        return cls(**{k: data[k] for k in ("timeout", "cell_timeout", "memory", "budget") if k in data})


def _b64(files: dict[str, bytes]) -> dict[str, str]:
    return {k: base64.b64encode(v).decode() for k, v in files.items()}


def _unb64(files: dict[str, str]) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in files.items()}


@dataclass(frozen=True)
class Job:
    """One submission to grade. ``seed`` set: every notebook uses it (``validate``); otherwise each
    notebook's seed derives from ``secret`` (hex, the course secret) or from ``seed_base``."""

    student_id: str
    assignment: str
    plan: dict  # {"assignment", "notebooks": [{"name", "tests": [[id, points]], "manual": [[id, points]]}]}
    notebooks: dict[str, bytes]  # submitted .ipynb files by name (b"" for one that cannot be read)
    files: dict[str, bytes] = field(default_factory=dict)  # the submission folder's files, for its working folder
    key: str = ""  # what the result was computed from (a rerun reuses a result with the same key)
    limits: Limits = field(default_factory=Limits)
    seed_base: int | None = 0
    secret: str | None = None
    seed: int | None = None
    hidden: bool = True  # run the hidden test cases too
    isolate: bool = True
    unsafe: tuple[str, ...] = ()  # links and special files found in the submission folder
    references: dict | None = None  # precomputed reference values by seed (--precompute-references)

    def with_references(self, references: dict) -> "Job":
        return replace(self, references=references)

    def to_json(self) -> dict:
        d = asdict(self)
        d["notebooks"], d["files"], d["unsafe"] = _b64(self.notebooks), _b64(self.files), list(self.unsafe)
        return d

    @classmethod
    def from_json(cls, data: dict) -> "Job":
        d = dict(data)
        d["notebooks"], d["files"] = _unb64(d["notebooks"]), _unb64(d.get("files", {}))
        d["limits"] = Limits.from_json(d.get("limits", {}))
        d["unsafe"] = tuple(d.get("unsafe", ()))
        return cls(**d)
