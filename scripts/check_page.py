"""Strict build of one chapter alone, in a scratch copy, with the book's own _config.yml.

    python scripts/check_page.py book/<name>.md [--keep DIR]

For authors: it catches the warnings `make book` would fail on (-W -n) without touching
_build/ (so it can run beside a full build). Exit status is jupyter-book's.
"""
import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("page", help="path of a MyST-Markdown chapter, e.g. book/loss_functions.md")
    ap.add_argument("--keep", help="build in this folder instead of a temporary one")
    args = ap.parse_args()
    page = (ROOT / args.page).resolve() if not Path(args.page).is_absolute() else Path(args.page)
    if not page.is_file():
        sys.exit(f"check_page: no such page: {args.page}")
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="check_page_"))
    (work / "book").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "_config.yml", work / "_config.yml")
    for f in (ROOT / "book").glob("*.bib"):
        shutil.copy(f, work / "book" / f.name)
    for d in (ROOT / "book").iterdir():  # images or data a page may include
        if d.is_dir() and not d.name.startswith((".", "_build")):
            shutil.copytree(d, work / "book" / d.name, dirs_exist_ok=True)
    shutil.copy(page, work / "book" / page.name)
    # a references page, so that {cite} roles resolve as they do in the whole book
    (work / "book" / "references.md").write_text("# References\n\n```{bibliography}\n```\n")
    (work / "_toc.yml").write_text(
        f"format: jb-book\nroot: book/{page.stem}\nchapters:\n  - file: book/references\n"
    )
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(work), "-W", "-n", "--keep-going"]
    print("check_page:", " ".join(cmd), flush=True)
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
