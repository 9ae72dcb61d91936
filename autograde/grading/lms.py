"""The grade export for the LMS: ONE file to upload, in the layout the LMS imports, with each
student's total (autograded + hand-graded + extra credit - late penalty, :func:`.scoring.total`)
and the LMS's own id of the student, taken from the downloaded archives' file names
(:mod:`.collect`).

* ``OUT/lms/canvas.csv``: Canvas's gradebook import (Grades > Import): ``Student, ID, SIS User ID,
  SIS Login ID, Section``, then one column per assignment, and a ``Points Possible`` row. Canvas
  matches a row on ``ID`` (the Canvas user id), else on ``SIS Login ID``, which gets the nbgrader
  student id when no Canvas id is known (a JupyterHub login is usually the SIS login).
* ``OUT/lms/moodle_<assignment>.csv``: Moodle's grading worksheet (Assignment > View all
  submissions > Grading action: Upload grading worksheet): ``Identifier`` ("Participant <id>"),
  ``Full name``, ``Grade``, ``Maximum grade``. Moodle's participant ids are per assignment, hence
  one file per assignment; a student without one (not collected from a Moodle archive) cannot be
  matched and is listed on stderr.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

from .results import defuse, num

CANVAS_FIXED = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_COLUMNS = ["Identifier", "Full name", "Grade", "Maximum grade"]


def _write(path: Path, rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows([[defuse(c) for c in row] for row in rows])
    os.replace(tmp, path)


def write(out: Path, lms: str, totals: dict, collected: dict, log=print) -> list[Path]:
    """``totals``: (student, assignment) -> :func:`.scoring.total`; ``collected``: (student,
    assignment) -> :class:`.collect.Collected`. Returns the files written."""
    assignments = sorted({a for _, a in totals})
    students = sorted({s for s, _ in totals})
    if lms == "canvas":
        possible = {a: next(g["possible"] for (s, b), g in totals.items() if b == a) for a in assignments}
        rows = [CANVAS_FIXED + assignments, ["Points Possible", "", "", "", ""] + [num(possible[a]) for a in assignments]]
        for s in students:
            ids = [collected[(s, a)] for a in assignments if (s, a) in collected]
            lms_id = ids[0].lms_id if ids else ""
            rows.append([ids[0].name if ids else s, lms_id, "", "" if lms_id else s, ""]
                        + [num(totals[(s, a)]["total"]) if (s, a) in totals else "" for a in assignments])
        path = out / "lms" / "canvas.csv"
        _write(path, rows)
        return [path]
    written = []
    for a in assignments:
        rows, unmatched = [MOODLE_COLUMNS], []
        for s in students:
            if (s, a) not in totals:
                continue
            c = collected.get((s, a))
            if c is None:
                unmatched.append(s)
                continue
            g = totals[(s, a)]
            rows.append([f"Participant {c.lms_id}", c.name, num(g["total"]), num(g["possible"])])
        if unmatched:
            log(f"autograde: {a}: no Moodle participant id for {', '.join(unmatched)} (not in downloaded/{a}/extracted): "
                f"not in lms/moodle_{a}.csv")
        path = out / "lms" / f"moodle_{a}.csv"
        _write(path, rows)
        written.append(path)
    return written
