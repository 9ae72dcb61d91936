"""The first code cell of every released notebook: inside the course folder it finds `autograde`
(and exports it in PYTHONPATH for `!python -m autograde validate`); outside it (Colab) it stops
with a ModuleNotFoundError that quotes the `%pip install` line of book/problem_sets.md."""
import os
import subprocess
import sys

import pytest
import yaml

from autograde.paths import ROOT, assignments, exercise_notebooks
from autograde.notebook import read

NOTEBOOKS = [nb for a in assignments() for nb in exercise_notebooks(a)]

# Runs one cell's code with the installed (editable) autograde hidden, as in a Python without it.
RUNNER = """
import importlib.util, os, sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")]
sys.path[:] = [p for p in sys.path if p not in ("", {root!r})]
if importlib.util.find_spec("autograde") is not None:
    print("AUTOGRADE-STILL-IMPORTABLE"); sys.exit(0)
try:
    exec(compile(open({cell!r}).read(), "setup cell", "exec"))
except ModuleNotFoundError as exc:
    print("RAISED", exc.name); print(exc); sys.exit(0)
print("IMPORTED", sys.modules["autograde"].__file__); print("PYTHONPATH", os.environ.get("PYTHONPATH"))
"""


def pip_line():
    """The line book/problem_sets.md shows, from _config.yml."""
    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    return f'%pip install -q "git+{repo["url"].rstrip("/")}@{repo.get("branch", "main")}"'


def run_first_cell(nb, cwd, tmp_path):
    cell = tmp_path / "cell.py"
    cell.write_text(next(c.source for c in read(nb).cells if c.cell_type == "code"))
    r = subprocess.run([sys.executable, "-c", RUNNER.format(root=str(ROOT), cell=str(cell))], cwd=cwd,
                       capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": "", "MPLBACKEND": "Agg"})
    assert r.returncode == 0, r.stdout + r.stderr
    if "AUTOGRADE-STILL-IMPORTABLE" in r.stdout:
        pytest.skip("autograde is importable without the editable install: cannot hide it")
    return r.stdout


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_outside_the_course_the_error_quotes_the_pip_line(nb, tmp_path):
    out = run_first_cell(nb, tmp_path, tmp_path)
    assert out.startswith("RAISED autograde\n"), out
    assert pip_line() in out, f"the set-up cell of {nb.name} should quote {pip_line()} (from _config.yml):\n{out}"
    assert "Problem sets" in out


@pytest.mark.parametrize("nb", [nb for nb in NOTEBOOKS if nb.name != "bn_mlp.ipynb"], ids=lambda p: p.name)
def test_inside_the_course_the_cell_finds_autograde(nb, tmp_path):
    out = run_first_cell(nb, nb.parent, tmp_path)
    assert f"IMPORTED {ROOT / 'autograde' / '__init__.py'}\nPYTHONPATH {ROOT}\n" in out, out
