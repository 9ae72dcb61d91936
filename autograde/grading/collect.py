"""Submissions downloaded from an LMS: the file names of Canvas's and Moodle's "download all
submissions" archives, read by ``nbgrader zip_collect`` (through :class:`LmsCollector`) and
again by the grade export, which takes the LMS's own id of each student from them.

* Canvas: ``<name>_[LATE_]<user id>_<submission id>_<file name>``, e.g.
  ``doejane_LATE_123456_7890123_loss_functions.ipynb`` (a re-upload appends ``-1`` to the name).
  The user id is what Canvas's grade import matches on; ``LATE`` is all Canvas says of the time.
* Moodle: ``<Full Name>_<participant id>_assignsubmission_file_<file name>``, or, with "download
  submissions in folders", ``<Full Name>_<participant id>_assignsubmission_file/<file name>``.
  The participant id (per assignment) is what Moodle's grading worksheet matches on.

The nbgrader student id is the name, lower-case letters and digits only (``doejane``,
``janedoe``): readable in Formgrader and the same in every assignment.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..paths import UsageError

LMS = ("canvas", "moodle")

NAMES = {
    "canvas": re.compile(r"^(?P<name>[^_/]+)_(?:(?P<late>LATE)_)?(?P<lms_id>\d+)_(?P<submission>\d+)_"
                         r"(?P<file_id>.+?)(?:-\d+)?(?P<ext>\.[A-Za-z0-9]+)$"),
    "moodle": re.compile(r"^(?P<name>[^_/]+)_(?P<lms_id>\d+)_assignsubmission_(?:file|onlinetext)(?:_|/)"
                         r"(?P<file_id>[^/]+?)(?P<ext>\.[A-Za-z0-9]+)$"),
}


@dataclass(frozen=True)
class Collected:
    student_id: str  # the nbgrader student id
    lms_id: str  # Canvas user id / Moodle participant id
    name: str  # as the LMS wrote it
    file_id: str  # the file's name in the submission folder
    late: bool  # Canvas's LATE marker


def student_id(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", name.lower()) or "unnamed"


def parse(lms: str, relpath: str) -> Collected | None:
    """What a downloaded file's name says (its last one or two path parts: nbgrader extracts each
    archive into a folder of its own); None if it is not one of this LMS's submission files."""
    parts = relpath.replace(os.sep, "/").split("/")
    m = NAMES[lms].match(parts[-1]) or (NAMES[lms].match("/".join(parts[-2:])) if len(parts) > 1 else None)
    if not m:
        return None
    return Collected(student_id(m["name"]), m["lms_id"], m["name"], m["file_id"] + m["ext"],
                     bool(m.groupdict().get("late")))


def downloaded(root: Path, lms: str) -> dict[tuple[str, str], Collected]:
    """(student id, assignment) -> what the names in ``root/<assignment>/extracted/`` say
    (``root`` is nbgrader's ``downloaded`` folder); a student with files marked LATE is late."""
    found: dict[tuple[str, str], Collected] = {}
    if not root.is_dir():
        return found
    for a in sorted(p.name for p in root.iterdir() if p.is_dir()):
        base = root / a / "extracted"
        for top, dirs, files in os.walk(base, followlinks=False):
            for f in sorted(files):
                c = parse(lms, os.path.relpath(os.path.join(top, f), base))
                if c is None:
                    continue
                old = found.get((c.student_id, a))
                if old is not None and old.lms_id != c.lms_id:
                    raise UsageError(f"downloaded/{a}: two students are called {c.student_id!r} ({old.name}, "
                                     f"{old.lms_id} and {c.lms_id}): rename one archive entry")
                if old is None or (c.late and not old.late):
                    found[(c.student_id, a)] = c
    return found


try:
    from nbgrader.plugins import FileNameCollectorPlugin
    from traitlets import Unicode
except ImportError:  # autograde without nbgrader (a Dask worker): zip_collect never runs there
    FileNameCollectorPlugin = None

if FileNameCollectorPlugin is not None:
    class LmsCollector(FileNameCollectorPlugin):
        """``nbgrader zip_collect``'s collector for Canvas or Moodle archives (``nbgrader_config.py``:
        ``c.ZipCollectApp.collector_plugin = "autograde.grading.collect.LmsCollector"`` and
        ``c.LmsCollector.lms = "canvas"`` or ``"moodle"``)."""

        lms = Unicode("canvas", help="canvas or moodle: whose archive names to read").tag(config=True)

        def collect(self, submitted_file: str):
            if self.lms not in NAMES:
                raise ValueError(f"LmsCollector.lms must be one of {', '.join(LMS)}, not {self.lms!r}")
            _, ext = os.path.splitext(submitted_file)
            if ext not in self.valid_ext:
                return None
            c = parse(self.lms, submitted_file)
            if c is None:
                self.log.warning("not a %s submission file name, skipped: %s", self.lms, submitted_file)
                return None
            return {"student_id": c.student_id, "file_id": c.file_id}
