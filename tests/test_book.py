"""The book builds strictly (`make book`'s command), every toc page is in it, and no solution
code or hidden test leaks into it. Execution is cached in _build/, so a rebuild is quick."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from autograde.notebook import read
from autograde.paths import ROOT, assignments, solution_notebooks

HTML = ROOT / "_build" / "html"


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        for ch in part.get("chapters", []):
            files.append(ch["file"])
            files += [s["file"] for s in ch.get("sections", [])]
    return files


@pytest.fixture(scope="session")
def built_book():
    jb = Path(sys.executable).with_name("jupyter-book")
    r = subprocess.run([str(jb), "build", str(ROOT), "-W", "-n", "--keep-going"], capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, (r.stdout + r.stderr)[-6000:]
    return HTML


@pytest.mark.slow
def test_every_toc_page_is_built(built_book):
    for f in toc_files():
        assert (built_book / f"{Path(f).with_suffix('')}.html").is_file(), f


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
    for f in toc_files()[1:]:
        page = (built_book / f"{Path(f).with_suffix('')}.html").read_text()
        assert 'class="cell_output' in page, f"{f} shows no executed output"
