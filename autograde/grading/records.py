"""The records that cross a process boundary in grading, typed, each with one JSON round trip.

* :class:`Limits`: what one student's code may cost (the command line takes its defaults here).
* :class:`Job`: one submission to grade (student, assignment, plan, the notebook files, seeds,
  limits): built by ``grade`` (:mod:`.runner`) or ``validate``, sent to a pool or Dask worker,
  graded by :func:`.grader.grade_job`. It carries everything, notebook bytes included, so a worker
  needs the package and not the course folders.

* :class:`Plan` (of :class:`PlanNotebook`): what an assignment grades, from the trusted solution
  notebooks (:func:`.grader.make_plan`); a job carries it without the cells (:meth:`Plan.slim`).
* :class:`Result` (of :class:`NotebookResult`, of :class:`TestRecord`): what grading one submission
  found, written per submission as ``results/<student>/<assignment>.json`` (README.md documents the
  fields); :class:`GraderError` in its place when the grader itself failed.

``to_json`` gives the JSON the files and the wire hold (the shapes are unchanged from the untyped
dicts these replace: ``tests/test_records.py`` reads results written before); ``from_json`` takes
it back, and refuses a key it does not know.
"""
from __future__ import annotations

import base64
import hashlib
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

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
    plan: "Plan"  # without its cells
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
        d["plan"] = self.plan.to_json()
        d["notebooks"], d["files"], d["unsafe"] = _b64(self.notebooks), _b64(self.files), list(self.unsafe)
        return d

    @classmethod
    def from_json(cls, data: dict) -> "Job":
        d = dict(data)
        d["notebooks"], d["files"] = _unb64(d["notebooks"]), _unb64(d.get("files", {}))
        d["limits"] = Limits.from_json(d.get("limits", {}))
        d["plan"] = Plan.from_json(d["plan"])
        d["unsafe"] = tuple(d.get("unsafe", ()))
        return cls(**d)


def _pairs(rows) -> tuple[tuple[str, float], ...]:
    return tuple((str(k), v) for k, v in rows)


@dataclass(frozen=True)
class PlanNotebook:
    """One notebook of a plan. ``tests``: (test id, points) of its autograded test cells, in order;
    ``manual``: (grade id, points) of its hand-graded cells; ``cells``: its nbgrader cells (id,
    type, flags, points, source) for the gradebook, ``None`` where only the grading is needed."""

    name: str
    tests: tuple[tuple[str, float], ...]
    manual: tuple[tuple[str, float], ...] = ()
    cells: tuple[dict, ...] | None = None

    def to_json(self) -> dict:
        d = {"name": self.name, "tests": [list(t) for t in self.tests], "manual": [list(m) for m in self.manual]}
        if self.cells is not None:
            d["cells"] = [dict(c) for c in self.cells]
        return d

    @classmethod
    def from_json(cls, data: dict) -> "PlanNotebook":
        cells = data.get("cells")
        return cls(name=data["name"], tests=_pairs(data["tests"]), manual=_pairs(data.get("manual", ())),
                   cells=None if cells is None else tuple(dict(c) for c in cells))


@dataclass(frozen=True)
class Plan:
    assignment: str
    notebooks: tuple[PlanNotebook, ...]

    @property
    def max_score(self) -> float:
        return sum(p for nb in self.notebooks for _, p in nb.tests)

    @property
    def manual_max_score(self) -> float:
        return sum(p for nb in self.notebooks for _, p in nb.manual)

    def notebook(self, name: str) -> PlanNotebook | None:
        return next((nb for nb in self.notebooks if nb.name == name), None)

    def slim(self) -> "Plan":
        """What a job needs: the plan without the cells."""
        return replace(self, notebooks=tuple(replace(nb, cells=None) for nb in self.notebooks))

    def digest(self) -> str:
        """Names, tests and points (not the cells): part of a submission's key."""
        slim = [(nb.name, [list(t) for t in nb.tests], [list(m) for m in nb.manual]) for nb in self.notebooks]
        return hashlib.sha256(repr((self.assignment, slim)).encode()).hexdigest()[:16]

    def to_json(self) -> dict:
        return {"assignment": self.assignment, "notebooks": [nb.to_json() for nb in self.notebooks]}

    @classmethod
    def from_json(cls, data: dict) -> "Plan":
        return cls(assignment=data["assignment"], notebooks=tuple(PlanNotebook.from_json(nb) for nb in data["notebooks"]))


def _strict(cls, data: dict) -> dict:
    """``data`` with every key a field of ``cls`` (a record from elsewhere is not silently cut)."""
    known = {f.name for f in fields(cls)}
    extra = sorted(set(data) - known)
    if extra:
        raise ValueError(f"{cls.__name__}: unknown field(s) {', '.join(extra)}")
    return dict(data)


@dataclass(frozen=True)
class TestRecord:
    """One test of one notebook: its points, verdict, diagnosis and flags. ``timing``: wall_s,
    student_s, grader_s (empty for a notebook that was not run)."""

    __test__ = False  # not a pytest class

    test_id: str
    score: float
    max_score: float
    passed: bool
    message: str
    flags: tuple[str, ...] = ()
    cases: int = 0
    timing: dict = field(default_factory=dict)
    waived_by: str | None = None  # the earlier failed test it builds on, under the "waive" policy (.scoring)

    def to_json(self) -> dict:
        d = asdict(self)
        d["flags"] = list(self.flags)
        if self.waived_by is None:
            del d["waived_by"]
        return d

    @classmethod
    def from_json(cls, data: dict) -> "TestRecord":
        d = _strict(cls, data)
        d["flags"] = tuple(d.get("flags", ()))
        return cls(**d)


@dataclass(frozen=True)
class NotebookResult:
    """One notebook of a submission. ``status``: graded, missing or invalid-notebook; ``file``: the
    submitted file it was found as; ``events``: (flag, what happened); ``reference_device``: where
    the PyTorch references ran (absent when nothing ran)."""

    notebook: str
    file: str | None
    seed: int
    status: str = "graded"
    flags: tuple[str, ...] = ()
    tests: tuple[TestRecord, ...] = ()
    cell_errors: tuple[str, ...] = ()
    tamper: tuple[str, ...] = ()
    events: tuple[tuple[str, str], ...] = ()
    isolation: dict = field(default_factory=dict)
    answers: tuple[Any, ...] = ()
    advice: tuple[dict, ...] = ()
    stdout: str = ""
    stderr: str = ""
    timing: dict = field(default_factory=dict)
    reference_device: str | None = None

    def to_json(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d.update(flags=list(self.flags), tests=[t.to_json() for t in self.tests], cell_errors=list(self.cell_errors),
                 tamper=list(self.tamper), events=[list(e) for e in self.events], answers=list(self.answers),
                 advice=[dict(a) for a in self.advice], isolation=dict(self.isolation), timing=dict(self.timing))
        if self.reference_device is None:
            del d["reference_device"]
        return d

    @classmethod
    def from_json(cls, data: dict) -> "NotebookResult":
        d = _strict(cls, data)
        d["tests"] = tuple(TestRecord.from_json(t) for t in d.get("tests", ()))
        d["events"] = tuple(tuple(e) for e in d.get("events", ()))
        for k in ("flags", "cell_errors", "tamper", "answers", "advice"):
            d[k] = tuple(d.get(k, ()))
        return cls(**d)


@dataclass(frozen=True)
class Result:
    """One submission (student, assignment): the autograded score out of ``max_score``, the points
    graded by hand elsewhere (``manual_max_score``), the flags of all its notebooks. ``key``
    identifies what it was computed from; ``seed_base`` is the ``--seed`` or the course secret's
    label (never the secret)."""

    format: int
    student_id: str
    assignment: str
    key: str
    seed_base: int | str | None
    hidden: bool
    score: float
    max_score: float
    manual_max_score: float
    flags: tuple[str, ...]
    notebooks: tuple[NotebookResult, ...]
    timing: dict = field(default_factory=dict)
    policy: str | None = None  # the dependent-failure policy it was scored under, when not the default (.scoring)

    def to_json(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d.update(flags=list(self.flags), notebooks=[nb.to_json() for nb in self.notebooks], timing=dict(self.timing))
        if self.policy is None:
            del d["policy"]
        return d

    @classmethod
    def from_json(cls, data: dict) -> "Result":
        d = _strict(cls, data)
        d["flags"] = tuple(d["flags"])
        d["notebooks"] = tuple(NotebookResult.from_json(nb) for nb in d["notebooks"])
        return cls(**d)


@dataclass(frozen=True)
class GraderError:
    """In place of a :class:`Result` when grading failed on the grader's side: the submission
    counts as not graded, and a rerun retries it."""

    student_id: str
    assignment: str
    grader_error: str
    traceback: str = ""

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "GraderError":
        return cls(**_strict(cls, data))
