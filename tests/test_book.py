"""The book builds strictly (`make book`'s command, with every page re-read), every toc page is in
it, and no solution code or hidden test leaks into it. Execution is cached in _build/, so a
rebuild is quick."""
import os
import re
import subprocess

import pytest
from browser_support import BUILD_CMD, HTML, chapters, toc_pages

from autograde.notebook import read
from autograde.paths import ROOT, assignments, solution_notebooks


@pytest.fixture(scope="session")
def built_book():
    # MPLBACKEND=Agg, as some CI machines set it: with it, a page that relies on the kernel's
    # default backend shows no figure and its {numref} labels go undefined (a failure seen in CI).
    env = {**os.environ, "MPLBACKEND": "Agg"}
    # --all: Sphinx re-reads every page, so a warning that an earlier build printed (for a page
    # an incremental build would not re-read) fails this one too. Execution stays cached in
    # _build/.jupyter_cache: only the pages whose code changed (and the execution_mode: force
    # pages) execute.
    r = subprocess.run([*BUILD_CMD, "--all"], capture_output=True, text=True, timeout=1800, cwd=ROOT, env=env)
    assert r.returncode == 0, (r.stdout + r.stderr)[-6000:]
    return HTML


@pytest.mark.slow
def test_every_toc_page_is_built(built_book):
    for d in toc_pages():
        assert (built_book / f"{d}.html").is_file(), d


@pytest.mark.slow
def test_no_solution_or_hidden_test_in_the_book(built_book):
    html = "\n".join(p.read_text(errors="replace") for p in built_book.rglob("*.html"))
    assert "BEGIN SOLUTION" not in html and "BEGIN HIDDEN TESTS" not in html
    # the distinctive lines of every solution must not appear in any page
    for a in assignments():
        for nb in solution_notebooks(a):
            for cell in read(nb).cells:
                m = re.search(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", cell.source, re.S)
                if not m:
                    continue
                for line in m.group(1).splitlines():
                    line = line.strip()
                    if len(line) > 30:  # short lines (`return p / n`) may legitimately occur
                        assert line not in html, f"solution line of {nb.name} in the book: {line}"
    assert not list(built_book.rglob("exercises/*")) and not list(built_book.rglob("solutions/*"))


@pytest.mark.slow
def test_pages_show_executed_outputs(built_book):
    for d in chapters():
        page = (built_book / f"{d}.html").read_text()
        assert 'class="cell_output' in page, f"{d} shows no executed output"
        assert "<img" in page, f"{d} shows no figure"


def _code_cells(page):
    """(header, code) of every code cell of a MyST chapter."""
    out = []
    for m in re.finditer(r"```\{code-cell\} ipython3\n(.*?)```", page.read_text(), re.S):
        block = m.group(1)
        if block.startswith("---\n"):
            header, _, code = block[4:].partition("\n---\n")
        else:
            lines = block.split("\n")
            n = next((i for i, l in enumerate(lines) if not l.startswith(":")), len(lines))
            header, code = "\n".join(lines[:n]), "\n".join(lines[n:])
        out.append((header, code))
    return out


@pytest.mark.parametrize("docname", chapters())
def test_glue_calls_are_not_shown_to_readers(docname):
    """Numbers for the text are glued in `remove-cell` cells (or hidden plumbing cells): the code a
    reader sees is the code that teaches."""
    shown = [code.strip().splitlines()[0] for header, code in _code_cells(ROOT / f"{docname}.md")
             if "remove-cell" not in header and "hide-input" not in header
             and re.search(r"^\s*(\w+_)?glue\(", code, re.M)]
    assert not shown, f"{docname}: visible cells that call glue(): {shown}"


@pytest.mark.parametrize("docname", chapters())
def test_figures_are_vector_graphics(docname):
    """Crisp figures at any zoom: the first cell asks the inline backend for SVG."""
    first = _code_cells(ROOT / f"{docname}.md")[0][1]
    assert '%config InlineBackend.figure_formats = ["svg"]' in first, docname
