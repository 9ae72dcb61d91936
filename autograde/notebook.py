"""Reading notebooks: which cells are the student's code and which are tests.

A cell is a *test cell* when nbgrader marks it graded and not a solution (``grade: true,
solution: false``). Everything else that is code is the student's: answers, helpers, experiments.
Graded functions are then found by name in the namespace the student's cells build, wherever
the student put them.
"""
from __future__ import annotations

import ast
import json
from pathlib import Path


class InvalidNotebook(Exception):
    """The file is not a readable notebook (corrupt JSON, wrong format)."""


class Node(dict):
    """A notebook, cell or output as a dict that also reads as attributes (``cell.source``),
    like nbformat's NotebookNode."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key, value):
        self[key] = value


def _node(x):
    if isinstance(x, dict):
        return Node((k, _node(v)) for k, v in x.items())
    if isinstance(x, list):
        return [_node(v) for v in x]
    return x


def _joined(x):
    return "".join(x) if isinstance(x, list) and all(isinstance(v, str) for v in x) else x


def loads(text: str | bytes, name: str = "notebook") -> Node:
    """A notebook from its JSON. Format 4 is read directly, multi-line strings joined as nbformat
    joins them (every cell's ``source`` is then a str; a cell whose source is not text makes the
    notebook invalid), without schema validation (importing nbformat's validator alone takes ~3 s,
    paid by every grading process); older formats go through nbformat's converter."""
    try:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        if raw.get("nbformat") != 4:
            import nbformat  # old formats only: upgrade as nbformat does

            raw = nbformat.reads(text if isinstance(text, str) else text.decode("utf-8"), as_version=4)
    except Exception as exc:  # noqa: BLE001 - any parse failure means the same thing here
        raise InvalidNotebook(f"{name}: not a readable notebook ({type(exc).__name__}: {str(exc)[:200]})") from None
    nb = _node(raw)
    if not isinstance(nb.get("cells"), list) or not all(isinstance(c, dict) for c in nb["cells"]):
        raise InvalidNotebook(f"{name}: not a readable notebook (no cells)")
    for i, cell in enumerate(nb["cells"]):
        cell["source"] = _joined(cell.get("source", ""))
        if not isinstance(cell["source"], str):
            raise InvalidNotebook(f"{name}: not a readable notebook (cell {i}: its source is not text)")
        cell.setdefault("metadata", Node())
        for out in cell.get("outputs", []) if isinstance(cell.get("outputs"), list) else []:
            if isinstance(out, dict):
                if "text" in out:
                    out["text"] = _joined(out["text"])
                if isinstance(out.get("data"), dict):
                    for mime, value in out["data"].items():
                        out["data"][mime] = _joined(value)
    return nb


def read(path: str | Path) -> Node:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidNotebook(f"{Path(path).name}: cannot be read ({exc.strerror})") from None
    return loads(data, Path(path).name)


def is_test_cell(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def grading_cells(nb) -> dict[str, dict]:
    """grade_id -> nbgrader metadata of each test cell (points included)."""
    return {c.metadata["nbgrader"]["grade_id"]: dict(c.metadata["nbgrader"]) for c in nb.cells if is_test_cell(c)}


def test_id(grade_id: str) -> str:
    """The check a test cell runs: its nbgrader grade_id without the ``test_`` prefix."""
    return grade_id[len("test_"):] if grade_id.startswith("test_") else grade_id


def points(meta: dict) -> float:
    """A graded cell's points, from its nbgrader metadata."""
    return float(meta.get("points", 0) or 0)


def to_python(source: str) -> str:
    """Cell source as plain Python: IPython magics and shell escapes become comments. Source that
    is already valid Python is left alone (a continuation line may start with ``%`` or ``!=``);
    in a cell that also holds a magic, such a line would be commented out too."""
    try:
        ast.parse(source)
        return source
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        pass
    lines = []
    for line in source.splitlines():
        stripped = line.lstrip()
        lines.append(("# " + line) if stripped.startswith(("%", "!")) else line)
    return "\n".join(lines)


def student_cells(nb) -> list[tuple[int, str]]:
    """(cell index, Python source) of every code cell that is not a test cell."""
    out = []
    for i, cell in enumerate(nb.cells):
        if cell.get("cell_type") == "code" and not is_test_cell(cell):
            out.append((i, to_python(cell.source)))
    return out


def exec_cells(cells: list[tuple[int, str]], namespace: dict | None = None, filename: str = "notebook",
               resume_on: tuple[type[BaseException], ...] = ()) -> tuple[dict, list[str]]:
    """Execute cells in order like a kernel would; a failing cell is reported and skipped.
    With ``resume_on``, a top-level statement that raises one of those exceptions is skipped
    silently and the cell goes on with the next one. Returns (namespace, [error line per failed
    cell])."""
    ns = {"__name__": "__main__"} if namespace is None else namespace
    errors = []
    for i, src in cells:
        name = f"<{filename} cell {i}>"
        try:
            tree = ast.parse(src, filename=name)
            parts = [ast.Module(body=[stmt], type_ignores=[]) for stmt in tree.body] if resume_on else [tree]
            for part in parts:
                try:
                    exec(compile(part, name, "exec"), ns)  # noqa: S102 - this is the point: run the student's cell
                except resume_on:  # expected there (e.g. the set-up cell importing the checks): not news
                    pass
        except Exception as exc:  # noqa: BLE001 - a broken cell costs what it defines, not the run
            errors.append(f"cell {i}: {type(exc).__name__}: {str(exc)[:200]}")
    return ns, errors


def namespace_of(path: str | Path) -> dict:
    """Run a notebook's student cells in this process and return the namespace (tests, pytest)."""
    nb = read(path)
    ns, _ = exec_cells(student_cells(nb), filename=Path(path).name)
    return ns


def merged_namespace(paths, one=namespace_of) -> dict:
    """What several notebooks (an assignment's) define together: each one's namespace, ``one(path)``,
    merged in order."""
    ns: dict = {}
    for path in paths:
        ns.update(one(path))
    return ns
