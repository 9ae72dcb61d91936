"""The instructor and student command line: ``python -m autograde {release,validate,grade,publish,gradescope,similarity,export-pdf} ...``."""
from __future__ import annotations

import argparse
import sys

from .paths import UsageError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m autograde", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)

    rel = sub.add_parser("release", help="regenerate exercises/ from solutions/ with nbgrader")
    rel.add_argument("assignment", nargs="?", help="one assignment (default: all)")
    rel.add_argument("--check", action="store_true", help="fail, naming the file, if exercises/ is out of date")

    _add_grading_commands(sub)
    from .platforms import cli as platforms  # gradescope, similarity, export-pdf (README: Grading)

    platforms.add_commands(sub, _one_line_errors)

    args = ap.parse_args(argv)
    try:
        if args.command in platforms.COMMANDS:
            return platforms.dispatch(args)
        if args.command == "release":
            from .release import release

            return release(args.assignment, check=args.check)
        if args.command == "grade":
            from .grading.runner import grade, parse_size

            return grade(args.submissions, args.out, workers=args.workers, timeout=args.timeout,
                         cell_timeout=args.cell_timeout, memory=parse_size(args.memory), dask=args.dask,
                         seed=args.seed, secret_file=args.secret_file, budget=args.budget, only=args.assignment,
                         students=args.student, force=args.force, progress=not args.no_progress,
                         gradebook=args.gradebook, precompute_references=args.precompute_references,
                         isolate=not args.no_isolation, policy=args.dependent_failures, deadlines=args.deadlines,
                         downloaded=args.downloaded, lms=args.lms)
        if args.command == "publish":
            from .grading.publish import publish_command

            return publish_command(args.out, submissions=args.submissions, gradebook=args.gradebook,
                                   deadlines=args.deadlines, downloaded=args.downloaded, lms=args.lms,
                                   log=lambda m: print(m, file=sys.stderr))
        if args.command == "validate":
            from .grading.runner import parse_size
            from .grading.validate import validate

            return validate(args.notebook, assignment=args.assignment, seed=args.seed, timeout=args.timeout,
                            memory=parse_size(args.memory))
    except UsageError as exc:
        print(f"autograde: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _one_line_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Bad usage of `grade`/`validate` is reported in one line (exit status 2)."""

    def error(message: str):
        print(f"autograde {parser.prog.split()[-1]}: error: {message}", file=sys.stderr)
        sys.exit(2)

    parser.error = error
    return parser


def _add_publishing_options(p) -> None:
    from .grading.collect import LMS
    from .grading.publish import DEFAULT_DEADLINES

    p.add_argument("--gradebook", default=None, metavar="PATH|URL", help="nbgrader gradebook to update (default OUT/gradebook.db)")
    p.add_argument("--deadlines", default=str(DEFAULT_DEADLINES), metavar="FILE",
                   help="due dates, extensions and the late penalty rule (TOML; default deadlines.toml in the course "
                        "folder; none: nothing is late)")
    p.add_argument("--downloaded", default=None, metavar="DIR",
                   help="nbgrader's downloaded/ folder, whose archive names give the LMS ids (default: next to the submissions)")
    p.add_argument("--lms", choices=LMS, default=None,
                   help="layout of the grade export OUT/lms/ (default: the last run's in OUT, else canvas)")


def _add_grading_commands(sub) -> None:
    from .grading.records import Limits
    from .grading.scoring import DEFAULT_POLICY, POLICIES

    g = _one_line_errors(sub.add_parser(
        "grade", help="grade submitted notebooks in isolated processes (CSV, feedback, report, gradebook)",
        description="Grade nbgrader submissions (<student_id>/<assignment>/<notebook>.ipynb) in isolated "
                    "student processes; see the Grading section of README.md."))
    g.add_argument("--submissions", required=True, metavar="DIR", help="nbgrader's submitted/ folder")
    g.add_argument("--out", required=True, metavar="DIR", help="where results, CSVs, feedback and gradebook go")
    g.add_argument("--workers", type=int, default=2, metavar="N", help="submissions graded in parallel (default 2)")
    g.add_argument("--timeout", type=float, default=Limits.timeout, metavar="S",
                   help=f"time limit per call into student code, seconds (default {Limits.timeout:g})")
    g.add_argument("--cell-timeout", type=float, default=None, metavar="S", help="time limit per notebook cell (default: --timeout)")
    g.add_argument("--memory", default=f"{Limits.memory // 2**30}G", metavar="SIZE",
                   help=f"address-space limit per student process (default {Limits.memory // 2**30}G)")
    g.add_argument("--dask", default=None, metavar="ADDRESS", help="grade on an existing Dask cluster (scheduler address)")
    g.add_argument("--seed", type=int, default=None,
                   help="public seed base for a reproducible rerun (default: the course secret, unpredictable)")
    g.add_argument("--secret-file", default=None, metavar="PATH",
                   help="the course secret that seeds grading (default .autograde/secret, made on first use)")
    g.add_argument("--budget", type=float, default=None, metavar="S",
                   help=f"time budget per submitted notebook, restarts included (default {Limits.BUDGET_FACTOR} x --timeout)")
    g.add_argument("--no-isolation", action="store_true",
                   help="grade without the sandbox where it cannot run (student code then runs as you)")
    g.add_argument("--assignment", action="append", metavar="NAME", help="grade only this assignment (repeatable)")
    g.add_argument("--student", action="append", metavar="ID", help="grade only this student (repeatable)")
    g.add_argument("--force", action="store_true", help="regrade submissions already graded in OUT")
    g.add_argument("--dependent-failures", choices=POLICIES, default=None,
                   help="a test failing along with an earlier test it builds on: charge its points, or waive them "
                        f"(default: the last run's in OUT, else {DEFAULT_POLICY}; a change rescores without running code)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_publishing_options(g)
    g.add_argument("--precompute-references", action="store_true",
                   help="compute the PyTorch references here (GPU if present) and ship them to the workers")
    p = _one_line_errors(sub.add_parser(
        "publish", help="rebuild feedback, report, CSVs and the LMS export after hand grading (no code runs)",
        description="Rebuild everything OUT holds from its results and the gradebook's hand grades: the feedback "
                    "pages, report.html, grades.csv, tests.csv and the LMS export; see the Grading section of README.md."))
    p.add_argument("--out", required=True, metavar="DIR", help="the folder `grade` wrote")
    p.add_argument("--submissions", default=None, metavar="DIR", help="nbgrader's submitted/ folder (default: the last grade run's)")
    _add_publishing_options(p)
    v = _one_line_errors(sub.add_parser(
        "validate", help="run the grader's isolated checks (visible cases) on your notebook",
        description="Run the grader's checks on NOTEBOOK the way the grader does, visible cases only."))
    v.add_argument("notebook", metavar="NOTEBOOK")
    v.add_argument("--assignment", default=None, help="the assignment (default: from the folder or the test cells)")
    v.add_argument("--seed", type=int, default=None, help="repeat a run exactly")
    v.add_argument("--timeout", type=float, default=Limits.timeout, metavar="S")
    v.add_argument("--memory", default=f"{Limits.memory // 2**30}G", metavar="SIZE")


if __name__ == "__main__":
    sys.exit(main())
