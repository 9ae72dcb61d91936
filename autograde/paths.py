"""Where things live in the course repository (the design card's layout)."""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"


def assignments() -> list[str]:
    """Assignment names: the folders of solutions/ that hold a notebook; without the course
    folder (autograde installed with pip, as on Colab), the assignments whose checks ship here."""
    if not course_folder():
        return packaged_assignments()
    return sorted(p.name for p in SOLUTIONS.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def course_folder() -> bool:
    """Whether this autograde sits in the course repository (solutions/ beside it)."""
    return SOLUTIONS.is_dir()


def packaged_assignments() -> list[str]:
    """The subpackages of autograde that hold an assignment's checks."""
    here = Path(__file__).resolve().parent
    return sorted(p.name for p in here.iterdir() if (p / "checks.py").is_file())


class UsageError(Exception):
    """Bad input from the command line: reported as one line, exit status 2."""


def require_assignment(name: str) -> str:
    known = assignments()
    if name not in known:
        raise UsageError(f"unknown assignment {name!r}; known: {', '.join(known) or 'none'}")
    return name


def put_venv_on_path() -> None:
    """nbgrader shells out to `alembic` and `jupyter`: make this interpreter's scripts findable
    even when the venv is not activated (`.venv/bin/python -m autograde ...`)."""
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def load_tests(name: str):
    """The test registry of an assignment: ``autograde.<name>.checks.TESTS``."""
    return importlib.import_module(f"autograde.{require_assignment(name)}.checks").TESTS


def solution_notebooks(name: str) -> list[Path]:
    return sorted((SOLUTIONS / name).glob("*.ipynb"))


def exercise_notebooks(name: str) -> list[Path]:
    return sorted((EXERCISES / name).glob("*.ipynb"))


def chapter_of(name: str) -> str:
    """The book page of an assignment, ``book/<name>``, or the one its package names (``CHAPTER``)."""
    return "book/" + getattr(importlib.import_module(f"autograde.{name}"), "CHAPTER", name)


def problem_set_number(name: str) -> int | None:
    """The number of an assignment's problem set: its chapter's in the table of contents (None when
    the chapter is not in the book)."""
    import yaml  # jupyter-book's dependency: only the course folder has a table of contents

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    chapters = [c["file"] for part in toc.get("parts", []) if part.get("numbered") for c in part.get("chapters", [])]
    return chapters.index(chapter_of(name)) + 1 if chapter_of(name) in chapters else None
