"""The subcommands ``gradescope``, ``similarity`` and ``export-pdf`` of ``python -m autograde``."""
from __future__ import annotations

COMMANDS = ("gradescope", "similarity", "export-pdf")


def _folders(parser) -> None:
    """The arguments a command over a class's submissions takes."""
    parser.add_argument("--submissions", required=True, metavar="DIR", help="nbgrader's submitted/ folder")
    parser.add_argument("--out", required=True, metavar="DIR")
    parser.add_argument("--assignment", action="append", metavar="NAME", help="only this assignment (repeatable)")


def add_commands(sub, one_line_errors) -> None:
    from ..grading.records import Limits

    g = one_line_errors(sub.add_parser(
        "gradescope", help="build a Gradescope autograder zip for one assignment",
        description="Build a Gradescope autograder (setup.sh, run_autograder, the course's grader) for ASSIGNMENT; "
                    "see book/instructors.md for the upload."))
    g.add_argument("assignment", metavar="ASSIGNMENT")
    g.add_argument("--out", default=None, metavar="ZIP", help="where the zip goes (default ASSIGNMENT_gradescope.zip)")
    g.add_argument("--seed", type=int, default=None, help="seed base (default: a random one, kept in the zip)")
    g.add_argument("--timeout", type=float, default=Limits.timeout, metavar="S",
                   help=f"time limit per call into student code (default {Limits.timeout:g})")
    g.add_argument("--memory", default=f"{Limits.memory // 2**30}G", metavar="SIZE",
                   help=f"address-space limit per student process (default {Limits.memory // 2**30}G)")

    s = one_line_errors(sub.add_parser(
        "similarity", help="pairs of students whose own code is unusually similar (CSV and HTML report)",
        description="Compare each student's own code (the released template removed) with every other "
                    "student's, with copydetect's fingerprints; write similarity.csv and similarity.html."))
    _folders(s)
    s.add_argument("--threshold", type=float, default=None, metavar="T",
                   help="pairs scoring at least T (0..1) are shown side by side (default 0.5)")
    s.add_argument("--top", type=int, default=50, metavar="N", help="at most N pairs side by side and N in the ranking (default 50)")

    p = one_line_errors(sub.add_parser(
        "export-pdf", help="PDFs of the hand-graded answers, one question per page (Gradescope manual grading)",
        description="Write OUT/<student>/<assignment>.pdf: each hand-graded question (prompt, the student's answer "
                    "and outputs) on its own page, rendered by Chromium (no LaTeX)."))
    _folders(p)
    p.add_argument("--chromium", default=None, metavar="PATH", help="the Chromium to use (default /usr/bin/chromium)")


def dispatch(args) -> int:
    if args.command == "gradescope":
        from .gradescope import build_zip

        z = build_zip(args.assignment, args.out, seed=args.seed, timeout=args.timeout, memory=args.memory)
        print(f"autograde gradescope: {z} (upload it as the autograder of a Gradescope programming assignment)")
        return 0
    if args.command == "similarity":
        from .similarity import DEFAULT_THRESHOLD, similarity

        threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
        return similarity(args.submissions, args.out, assignments=args.assignment, threshold=threshold, top=args.top)
    if args.command == "export-pdf":
        from .pdf import export_pdfs

        return export_pdfs(args.submissions, args.out, assignments=args.assignment, chromium=args.chromium)
    raise AssertionError(args.command)
