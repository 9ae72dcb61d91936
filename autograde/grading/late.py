"""Late work (grader side): submission times, due dates, per-student extensions and the penalty rule.

The submission time is nbgrader's ``timestamp.txt`` in the submission folder (``nbgrader collect``
writes it; ``zip_collect`` does when its file names carry a time), read as a regular file only.
Canvas archives carry no time, only a ``LATE`` marker in the file name (:mod:`.collect`): such a
submission counts as late by one started day.

Due dates and extensions live in a TOML file (``--deadlines``, default ``deadlines.toml`` in the
course folder, git-ignored: extensions name students)::

    [penalty]            # the rule; these are the defaults
    per_day = 0.10       # fraction of the assignment's points (autograded + hand) lost per started day late
    grace_minutes = 15   # this much after the due date is still on time
    max_fraction = 1.0   # the penalty never exceeds this fraction

    [due]
    loss_functions = 2026-10-01T23:59:00+02:00

    [extensions.loss_functions]
    alice = 2026-10-04T23:59:00+02:00

The penalty of a submission ``late`` seconds after its (extended) due date, beyond the grace
period, is ``min(per_day * ceil(late / 1 day), max_fraction)`` of its points; the feedback page
states the times, the extension and the computation.
"""
from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..paths import UsageError
from .submissions import UnsafeFile, read_regular

DAY = 86400.0


@dataclass(frozen=True)
class Rule:
    per_day: float = 0.10
    grace_minutes: float = 15.0
    max_fraction: float = 1.0

    def fraction(self, late_s: float) -> float:
        """The share of the points lost ``late_s`` seconds after the due date."""
        beyond = late_s - 60 * self.grace_minutes
        if beyond <= 0:
            return 0.0
        return min(self.per_day * math.ceil(beyond / DAY), self.max_fraction)

    def describe(self) -> str:
        return (f"{self.per_day:.0%} of the possible points per started day late (after {self.grace_minutes:g} minutes' grace), "
                f"at most {self.max_fraction:.0%}")


@dataclass(frozen=True)
class Deadlines:
    rule: Rule = field(default_factory=Rule)
    due: dict = field(default_factory=dict)  # assignment -> datetime (UTC)
    extensions: dict = field(default_factory=dict)  # (assignment, student) -> datetime (UTC)

    def due_for(self, assignment: str, student: str) -> tuple[datetime | None, bool]:
        """(the due date that applies to this student, whether it is an extension)."""
        ext = self.extensions.get((assignment, student))
        return (ext, True) if ext is not None else (self.due.get(assignment), False)


@dataclass(frozen=True)
class Lateness:
    """What the feedback and the export need to know about one submission's time."""

    submitted: datetime | None
    due: datetime | None
    extended: bool
    late_s: float  # seconds after the due date (0 when on time or unknown)
    fraction: float  # of the points lost
    note: str  # one sentence for the feedback page


def utc(value, where: str) -> datetime:
    """A TOML datetime or an ISO string as an aware UTC datetime (a naive one is taken as UTC)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise UsageError(f"{where}: not a date and time: {value!r} (use e.g. 2026-10-01T23:59:00+02:00)") from None
    if not isinstance(value, datetime):
        raise UsageError(f"{where}: not a date and time: {value!r}")
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def load(path: Path | None) -> Deadlines:
    """The deadlines file; no file: no due dates (nothing is late)."""
    if path is None or not Path(path).is_file():
        return Deadlines()
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"--deadlines {path}: {exc}") from None
    unknown = set(data) - {"penalty", "due", "extensions"}
    if unknown:
        raise UsageError(f"--deadlines {path}: unknown section(s) {', '.join(sorted(unknown))} (penalty, due, extensions)")
    try:
        rule = Rule(**{k: float(v) for k, v in data.get("penalty", {}).items()})
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--deadlines {path}: [penalty]: {exc}") from None
    due = {a: utc(v, f"{path}: due.{a}") for a, v in data.get("due", {}).items()}
    ext = {(a, s): utc(v, f"{path}: extensions.{a}.{s}")
           for a, table in data.get("extensions", {}).items() for s, v in table.items()}
    return Deadlines(rule, due, ext)


def submission_time(folder: Path) -> datetime | None:
    """nbgrader's ``timestamp.txt`` of a submission folder, in UTC; None if absent or unreadable."""
    try:
        text = read_regular(folder / "timestamp.txt", 4096).decode("utf-8", "replace").strip()
    except UnsafeFile:
        return None
    try:
        from nbgrader.utils import parse_utc  # nbgrader's own format ("2026-10-01 12:00:00.123456 UTC" and others)

        return parse_utc(text).replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError, TypeError):
        return None


def _when(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M UTC")


def _span(seconds: float) -> str:
    d, rest = divmod(int(seconds), 86400)
    h, rest = divmod(rest, 3600)
    return (f"{d} day(s) " if d else "") + f"{h} h {rest // 60} min"


def lateness(deadlines: Deadlines, assignment: str, student: str, submitted: datetime | None,
             marked_late: bool = False) -> Lateness:
    due, extended = deadlines.due_for(assignment, student)
    rule = deadlines.rule
    whose = "your extended due date" if extended else "the due date"
    if due is None:
        return Lateness(submitted, None, False, 0.0, 0.0, "")
    if submitted is None:
        if marked_late and not extended:
            f = rule.fraction(DAY)
            return Lateness(None, due, False, DAY, f,
                            f"The LMS marked this submission late without its time: it counts as one day late "
                            f"({rule.describe()}): {f:.0%} of the possible points.")
        return Lateness(None, due, extended, 0.0, 0.0,
                        f"Due {_when(due)} ({whose}); the submission time is not known, so no penalty applies.")
    late_s = max((submitted - due).total_seconds(), 0.0)
    f = rule.fraction(late_s)
    if late_s <= 0:
        note = f"Submitted {_when(submitted)}, on time ({whose}: {_when(due)})."
    elif f == 0:
        note = f"Submitted {_when(submitted)}, {_span(late_s)} after {whose} ({_when(due)}), within the grace period."
    else:
        note = (f"Submitted {_when(submitted)}, {_span(late_s)} after {whose} ({_when(due)}). Rule: "
                f"{rule.describe()}: {f:.0%} of the possible points.")
    return Lateness(submitted, due, extended, late_s, f, note)
