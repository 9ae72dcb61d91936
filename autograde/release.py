"""`python -m autograde release [ASSIGNMENT] [--check]`: exercises/ from solutions/ with nbgrader.

nbgrader's ``generate_assignment`` does the work (solutions cleared, hidden tests removed, cells
locked, checksums). We run it in a scratch course directory, so no gradebook.db or timestamp
lands in the repository, and then normalize the output so that it is byte-for-byte the same on
every run: cell ids from the nbgrader grade ids, no execution counts or outputs, sorted keys.
``--check`` regenerates in scratch and fails, naming the file, when exercises/ differs.
"""
from __future__ import annotations

import difflib
import logging
import shutil
import tempfile
from pathlib import Path

import nbformat

from .paths import EXERCISES, SOLUTIONS, UsageError, assignments, course_folder, put_venv_on_path, require_assignment


def normalize(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Deterministic form of a notebook: stable ids, no outputs, no execution counts."""
    nb.nbformat, nb.nbformat_minor = 4, 5
    for cell in nb.cells:
        cell.metadata.pop("lines_to_next_cell", None)
        cell.metadata.pop("execution", None)
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id:
            cell["id"] = grade_id.replace("_", "-")
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.validate(nb)
    return nb


def dumps(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb, version=4) + ("" if nbformat.writes(nb).endswith("\n") else "\n")


def generate(names: list[str]) -> dict[Path, str]:
    """Release the given assignments in a scratch course; return {path under exercises/: text}."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    put_venv_on_path()
    out: dict[Path, str] = {}
    with tempfile.TemporaryDirectory(prefix="autograde-release-") as tmp:
        root = Path(tmp)
        for name in names:
            shutil.copytree(SOLUTIONS / name, root / "source" / name,
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        cfg = Config()
        cfg.CourseDirectory.root = str(root)
        cfg.CourseDirectory.source_directory = "source"
        cfg.CourseDirectory.release_directory = "release"
        cfg.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
        cfg.GenerateAssignment.db_url = cfg.CourseDirectory.db_url  # older spelling, same value
        logging.getLogger("traitlets").setLevel(logging.ERROR)
        api = NbGraderAPI(CourseDirectory(config=cfg), config=cfg)
        for name in names:
            result = api.generate_assignment(name, force=True, create=True)
            if not result["success"]:
                raise RuntimeError(f"nbgrader generate_assignment failed for {name}:\n{result.get('log')}\n{result.get('error')}")
            rel = root / "release" / name
            for path in sorted(rel.rglob("*")):
                if path.is_dir() or ".ipynb_checkpoints" in path.parts:
                    continue
                key = Path(name) / path.relative_to(rel)
                if path.suffix == ".ipynb":
                    out[key] = dumps(normalize(nbformat.read(path, as_version=4)))
                else:
                    out[key] = path.read_text()
    return out


def release(assignment: str | None = None, check: bool = False) -> int:
    if not course_folder():
        raise UsageError(f"release needs the course folder ({SOLUTIONS} not found)")
    names = [require_assignment(assignment)] if assignment else assignments()
    if not names:
        raise UsageError(f"no assignments found under {SOLUTIONS}")
    want = generate(names)
    if check:
        bad = []
        for rel, text in want.items():
            path = EXERCISES / rel
            have = path.read_text() if path.is_file() else None
            if have != text:
                bad.append(rel)
                why = "missing" if have is None else "differs from what solutions/ produce"
                print(f"release --check: exercises/{rel} {why}")
                if have is not None:
                    diff = difflib.unified_diff(have.splitlines(), text.splitlines(), "exercises", "release", n=1, lineterm="")
                    print("\n".join(list(diff)[:20]))
        for name in names:  # files in exercises/ that the release would not produce
            for path in sorted((EXERCISES / name).rglob("*")) if (EXERCISES / name).is_dir() else []:
                rel = path.relative_to(EXERCISES)
                if path.is_file() and rel not in want and ".ipynb_checkpoints" not in path.parts:
                    bad.append(rel)
                    print(f"release --check: exercises/{rel} is not produced by solutions/ (stale)")
        if bad:
            print(f"release --check: FAILED, {len(bad)} file(s) out of date; run `python -m autograde release`")
            return 1
        print(f"release --check: exercises/ matches solutions/ ({len(want)} files, {', '.join(names)})")
        return 0
    for name in names:
        if (EXERCISES / name).is_dir():
            shutil.rmtree(EXERCISES / name)
    for rel, text in want.items():
        (EXERCISES / rel).parent.mkdir(parents=True, exist_ok=True)
        (EXERCISES / rel).write_text(text)
        print(f"released exercises/{rel}")
    return 0
