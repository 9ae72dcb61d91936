"""The course repository's URL lives in ONE place, `repository:` in _config.yml; this script is
the only way to change it, and it makes everything that links to the repository follow.

    python scripts/set_repository.py                    # show the URL and check every copy
    python scripts/set_repository.py URL [--branch B]   # set it everywhere
    python scripts/set_repository.py --check            # exit 1 if a copy disagrees

What follows the URL:

* the book: chapter launch buttons and the Binder/Colab/GitHub links and the `%pip install` line
  of the problem-sets page are built from _config.yml when the book is built;
* the notebooks: a notebook opened on Colab has no course folder to read _config.yml from, so
  its set-up cell carries the `%pip install -q "git+URL@BRANCH"` line as text. The script
  rewrites that line in every notebook of solutions/ and of the released exercises/ (the same
  set-up cell, so `python -m autograde release --check` still passes).

Standard library only: the Pages workflows run it before the course's .venv exists.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# `repository:` block of _config.yml: its url and branch lines
URL_LINE = re.compile(r"(?m)^(repository:\n(?:[ \t]+.*\n|[ \t]*#.*\n|\n)*?[ \t]+url:[ \t]*)(\S+)")
BRANCH_LINE = re.compile(r"(?m)^(repository:\n(?:[ \t]+.*\n|[ \t]*#.*\n|\n)*?[ \t]+branch:[ \t]*)(\S+)")
# the line a notebook's set-up cell quotes
PIP_LINE = re.compile(r'%pip install -q \\?"git\+(?P<url>[^"@\\\s]+)@(?P<branch>[^"\\\s]+)\\?"')


def configured(root: Path = ROOT) -> tuple[str, str]:
    """(url, branch) of _config.yml's repository block."""
    text = (root / "_config.yml").read_text()
    url, branch = URL_LINE.search(text), BRANCH_LINE.search(text)
    if url is None:
        sys.exit("set_repository: _config.yml has no repository: url: line")
    return url.group(2).rstrip("/"), branch.group(2) if branch else "main"


def pip_line(url: str, branch: str) -> str:
    return f'%pip install -q "git+{url}@{branch}"'


def notebooks(root: Path = ROOT) -> list[Path]:
    return sorted([*root.glob("solutions/*/*.ipynb"), *root.glob("exercises/*/*.ipynb")])


def quoted(nb: Path) -> list[tuple[str, str]]:
    """Every (url, branch) of a %pip line in the notebook's cells."""
    cells = json.loads(nb.read_text())["cells"]
    source = "\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells)
    return [(m["url"].rstrip("/"), m["branch"]) for m in PIP_LINE.finditer(source)]


def disagreements(root: Path = ROOT) -> list[str]:
    url, branch = configured(root)
    out = []
    for nb in notebooks(root):
        for u, b in quoted(nb):
            if (u, b) != (url, branch):
                out.append(f"{nb.relative_to(root)}: quotes {pip_line(u, b)}, _config.yml says {pip_line(url, branch)}")
    return out


def set_repository(url: str, branch: str | None, root: Path = ROOT) -> list[Path]:
    """Write url (and branch) into _config.yml and every notebook's %pip line; returns the files changed."""
    url = url.rstrip("/")
    if not re.fullmatch(r"https?://[^\s\"@]+/[^\s\"@/]+/[^\s\"@/]+", url):
        sys.exit(f"set_repository: not a repository URL: {url!r} (expected https://host/owner/name)")
    old_url, old_branch = configured(root)
    branch = branch or old_branch
    changed = []
    cfg = root / "_config.yml"
    text = URL_LINE.sub(lambda m: m.group(1) + url, cfg.read_text(), count=1)
    if BRANCH_LINE.search(text):
        text = BRANCH_LINE.sub(lambda m: m.group(1) + branch, text, count=1)
    if text != cfg.read_text():
        cfg.write_text(text)
        changed.append(cfg)
    for nb in notebooks(root):
        raw = nb.read_text()
        # the notebooks are JSON: rewrite the line inside its string without re-serialising the file
        new = PIP_LINE.sub(lambda m: m.group(0).replace(m["url"], url).replace("@" + m["branch"], "@" + branch), raw)
        if new != raw:
            nb.write_text(new)
            changed.append(nb)
    return changed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python scripts/set_repository.py", description=__doc__.splitlines()[0])
    ap.add_argument("url", nargs="?", help="https://github.com/<owner>/<name>")
    ap.add_argument("--branch", help="branch the links and the %%pip line use (default: keep _config.yml's)")
    ap.add_argument("--check", action="store_true", help="only check that every copy agrees with _config.yml")
    ap.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.url and not args.check:
        for f in set_repository(args.url, args.branch, args.root):
            print(f"updated {f.relative_to(args.root)}")
    url, branch = configured(args.root)
    bad = disagreements(args.root)
    print(f"repository: {url} (branch {branch})")
    for line in bad:
        print(line, file=sys.stderr)
    if bad:
        print("run: python scripts/set_repository.py URL", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
