"""Results on disk: one JSON per (student, assignment), written atomically, once, as each
submission finishes (or is rescored); ``grades.csv`` and ``tests.csv`` rebuilt from all of them,
sorted, when the run publishes.

A run killed half-way keeps every JSON it finished; a rerun skips those (same inputs: same
key) and rebuilds the CSVs from the JSONs, so they are byte-for-byte those of an uninterrupted
run: no duplicate rows, none missing, no timing or other run-dependent value in them.
"""
from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path

from .records import GraderError, Result

GRADES_COLUMNS = ["student_id", "assignment", "score", "max_score", "flags", "seed", "manual_max_score"]
TESTS_COLUMNS = ["student_id", "assignment", "notebook", "test_id", "score", "max_score", "message", "seed", "flags"]


def result_path(out: Path, student_id: str, assignment: str) -> Path:
    return out / "results" / student_id / f"{assignment}.json"


def write_json_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True, ensure_ascii=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read_json(path: Path) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_record(path: Path) -> Result | GraderError | None:
    """The record at ``path``: a :class:`Result`, or the :class:`GraderError` written in its place;
    ``None`` if there is none, or none this version can read (a rerun grades that submission again)."""
    data = read_json(path)
    if data is None:
        return None
    try:
        return GraderError.from_json(data) if "grader_error" in data else Result.from_json(data)
    except (KeyError, TypeError, ValueError):
        return None


def all_results(out: Path, known: set[str], log=None) -> list[Result]:
    """Every result in ``out`` of the assignments in ``known`` (this run's and earlier runs'), by
    path; a grader error is not a result. A file that holds no record is skipped, and ``log``
    names it: its submission is then missing from every output until it is graded again."""
    found = []
    for path in sorted((out / "results").glob("*/*.json")):
        r = read_record(path)
        if r is None and log is not None:
            log(f"autograde: {path} holds no result this version can read: skipped (`grade` grades that "
                f"submission again)")
        if isinstance(r, Result) and r.assignment in known:
            found.append(r)
    return found


def num(x: float) -> str:
    return f"{float(x):g}"


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def defuse(cell):
    """A text cell a spreadsheet would run as a formula (=, +, -, @, tab, CR first) gets a leading
    apostrophe, the OWASP rule: a student id or a message is shown, never evaluated."""
    return "'" + cell if isinstance(cell, str) and cell.startswith(FORMULA_START) else cell


def _write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        w.writeheader()
        w.writerows({k: defuse(v) for k, v in row.items()} for row in rows)
    os.replace(tmp, path)


def _by_submission(results: list[Result]) -> list[Result]:
    return sorted(results, key=lambda r: (r.student_id, r.assignment))


def grade_rows(results: list[Result]) -> list[dict]:
    return [{"student_id": r.student_id, "assignment": r.assignment, "score": num(r.score),
             "max_score": num(r.max_score), "flags": ";".join(r.flags),
             "seed": ";".join(str(nb.seed) for nb in r.notebooks), "manual_max_score": num(r.manual_max_score)}
            for r in _by_submission(results)]


def test_rows(results: list[Result]) -> list[dict]:
    return [{"student_id": r.student_id, "assignment": r.assignment, "notebook": nb.notebook,
             "test_id": t.test_id, "score": num(t.score), "max_score": num(t.max_score),
             "message": t.message, "seed": nb.seed, "flags": ";".join(t.flags)}
            for r in _by_submission(results)
            for nb in r.notebooks for t in nb.tests]  # notebooks and tests in the solution's order


def write_csvs(out: Path, results: list[Result]) -> None:
    _write_csv(out / "grades.csv", GRADES_COLUMNS, grade_rows(results))
    _write_csv(out / "tests.csv", TESTS_COLUMNS, test_rows(results))
