"""The instructor and student command line: ``python -m autograde {release,validate,grade} ...``."""
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

    args = ap.parse_args(argv)
    try:
        if args.command == "release":
            from .release import release

            return release(args.assignment, check=args.check)
    except UsageError as exc:
        print(f"autograde: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
