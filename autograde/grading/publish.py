"""The batch's last step, and ``python -m autograde publish`` on its own after hand grading:
from the result records in OUT (they are not changed here), write everything the instructor and
the students read, each file once.

1. the gradebook (:mod:`.gradebook`): plans and autograded scores in; hand grades and comments out;
   the notebooks Formgrader shows (``OUT/autograded``);
2. ``grades.csv`` and ``tests.csv`` (:mod:`.results`): the autograder's record, nothing else;
3. per submission: its time and lateness (:mod:`.late`), its total (:func:`.scoring.total`);
4. the feedback pages (:mod:`.feedback`), the report (:mod:`.report`), the LMS export (:mod:`.lms`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..paths import ROOT
from . import collect, late
from . import results as R
from .records import Result

DEFAULT_DEADLINES = ROOT / "deadlines.toml"  # git-ignored: extensions name students


@dataclass(frozen=True)
class Publishing:
    """Where publishing reads from, besides OUT's results."""

    gradebook: str  # URL or path of nbgrader's gradebook
    submissions: Path | None  # nbgrader's submitted/ (timestamps, the notebooks Formgrader shows)
    deadlines: Path | None = DEFAULT_DEADLINES
    downloaded: Path | None = None  # nbgrader's downloaded/ (LMS ids); default: next to submissions
    lms: str = "canvas"


def publish(out: Path, results: list[Result], plans: dict, students: list[str], how: Publishing, log=print) -> dict:
    """Write every output of OUT from ``results`` (all of OUT's, one per student and assignment);
    returns seconds spent per step (for ``run.json``)."""
    from . import feedback, gradebook as G, lms, report
    from .scoring import DEFAULT_POLICY, after_of, total

    seconds = {}
    deadlines = late.load(how.deadlines)
    downloaded = how.downloaded or (how.submissions.parent / "downloaded" if how.submissions else None)
    collected = collect.downloaded(downloaded, how.lms) if downloaded else {}
    times = {(r.student_id, r.assignment): late.submission_time(how.submissions / r.student_id / r.assignment)
             if how.submissions else None for r in results}

    t0 = time.perf_counter()
    seconds["gradebook"], hand = G.sync(how.gradebook, plans, results,
                                        sorted(set(students) | {r.student_id for r in results}),
                                        times=times, due=deadlines.due)
    if how.submissions is not None:
        G.write_autograded(out, how.submissions, plans, results)
    seconds["gradebook_total"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    R.write_csvs(out, results)
    afters = {a: after_of(a) for a in plans}
    totals = {}
    for r in sorted(results, key=lambda r: (r.student_id, r.assignment)):
        s, a = r.student_id, r.assignment
        c = collected.get((s, a))
        lt = late.lateness(deadlines, a, s, times[(s, a)], marked_late=bool(c and c.late))
        h = hand.get((s, a), {})
        totals[(s, a)] = total(r, plans[a], h, lt.fraction)
        feedback.write_page(out, r, feedback.assignment_page(
            r, plans[a], hand=h, late_note=lt.note, late_fraction=lt.fraction, policy=r.policy or DEFAULT_POLICY,
            after=afters[a]))
    report.write_report(out, results, plans, totals)
    written = lms.write(out, how.lms, totals, collected, log=log)
    seconds["outputs"] = time.perf_counter() - t0
    pending = sum(1 for g in totals.values() if g["pending"])
    log(f"autograde: feedback for {len(results)} submission(s) in {out}/feedback; upload "
        f"{', '.join(str(p) for p in written)} to {how.lms.capitalize()}"
        + (f" ({pending} submission(s) still have answers to grade by hand: they count 0 until graded)" if pending else ""))
    return seconds


def publish_command(out: str | Path, *, submissions: str | Path | None = None, gradebook: str | None = None,
                    deadlines: str | Path | None = DEFAULT_DEADLINES, downloaded: str | Path | None = None,
                    lms: str | None = None, log=print) -> int:
    """``python -m autograde publish``: the publish step alone, after hand grading in Formgrader
    (or a change of deadlines): no student code runs, no result changes."""
    from ..paths import UsageError, assignments
    from .grader import make_plan

    out = Path(out)
    every = R.all_results(out, set(assignments()), log=log)
    if not every:
        raise UsageError(f"no graded submissions in {out} (run `python -m autograde grade` first)")
    run = R.read_json(out / "run.json") or {}
    subs = Path(submissions) if submissions else (Path(run["submissions"]) if run.get("submissions") else None)
    if subs is not None and not subs.is_dir():
        raise UsageError(f"submissions folder not found: {subs} (pass --submissions)")
    plans = {a: make_plan(a) for a in sorted({r.assignment for r in every})}
    lms = lms or run.get("lms") or "canvas"
    publish(out, every, plans, [], Publishing(
        gradebook=gradebook or f"sqlite:///{(out / 'gradebook.db').resolve()}", submissions=subs,
        deadlines=Path(deadlines) if deadlines else None, downloaded=Path(downloaded) if downloaded else None, lms=lms),
        log=log)
    return 0
