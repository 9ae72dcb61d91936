"""Helpers for tests/test_browser.py: the book's pages, whether _build/html is current, a local
web server for it, and Debian's Chromium driven by Playwright (no browser download)."""
from __future__ import annotations

import contextlib
import functools
import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = Path(os.environ.get("BOOK_CHROMIUM", "/usr/bin/chromium"))
# Playwright gives every launch a fresh temporary profile (--user-data-dir) of its own.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
# The strict build of tests/test_book.py (and of `make book`); execution is cached in _build/.
BUILD_CMD = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(ROOT), "-W", "-n", "--keep-going"]


def toc() -> dict:
    return yaml.safe_load((ROOT / "_toc.yml").read_text())


def toc_pages() -> list[str]:
    """Every page of the table of contents, root first, as docnames (``book/intro``)."""
    t = toc()
    pages = [t["root"]]
    for part in t.get("parts", []):
        for ch in part.get("chapters", []):
            pages.append(ch["file"])
            pages += [s["file"] for s in ch.get("sections", [])]
    return [str(Path(p).with_suffix("")) for p in pages]


def chapters() -> list[str]:
    """The numbered chapters, in reading order."""
    return [str(Path(ch["file"]).with_suffix("")) for part in toc().get("parts", [])
            if part.get("numbered") for ch in part.get("chapters", [])]


def source(docname: str) -> Path:
    for suffix in (".md", ".ipynb", ".rst"):
        if (ROOT / f"{docname}{suffix}").is_file():
            return ROOT / f"{docname}{suffix}"
    raise FileNotFoundError(docname)


def _inputs() -> list[Path]:
    """What the built site depends on: the toc's pages, the bibliography, the configuration."""
    files = [ROOT / "_config.yml", ROOT / "_toc.yml", *ROOT.glob("book/*.bib")]
    return files + [source(d) for d in toc_pages()]


def _problem_set_inputs() -> list[Path]:
    """What book/problem_sets.md reads when it executes: released notebooks and their checks."""
    return [*ROOT.glob("exercises/*/*.ipynb"), *ROOT.glob("autograde/*/checks.py")]


def problem_sets_page_is_stale() -> bool:
    """book/problem_sets.md lists the released notebooks when it executes: is its built page
    missing one, or older (as read and executed: its doctree) than a notebook or a check?"""
    src = ROOT / "book" / "problem_sets.md"
    html = HTML / "book" / "problem_sets.html"
    doctree = ROOT / "_build" / ".doctrees" / "book" / "problem_sets.doctree"
    if not (src.is_file() and html.is_file() and doctree.is_file()):
        return False  # not built yet (or not in the book): the build takes care of it
    text = html.read_text(errors="replace")
    if any(nb.relative_to(ROOT).as_posix() not in text for nb in ROOT.glob("exercises/*/*.ipynb")):
        return True
    return any(p.stat().st_mtime > doctree.stat().st_mtime for p in _problem_set_inputs())


def stale_reasons() -> list[str]:
    """Why _build/html does not show the current sources (empty when it does)."""
    stamp = HTML / "searchindex.js"  # rewritten by every build that writes a page
    if not stamp.is_file():
        return ["_build/html has not been built"]
    reasons = [f"{d}.html is missing" for d in toc_pages() if not (HTML / f"{d}.html").is_file()]
    if not (HTML / "_static" / "mathjax" / "tex-chtml.js").is_file():
        reasons.append("MathJax is not in _build/html/_static/mathjax")
    built = stamp.stat().st_mtime
    reasons += [f"{p.relative_to(ROOT)} changed since the last build" for p in _inputs()
                if p.stat().st_mtime > built]
    return reasons


def build_if_stale() -> str:
    """Build the book when _build/html is missing or older than its sources; return a note."""
    if problem_sets_page_is_stale():
        # Sphinx re-reads (and so re-executes) a page only when its source changes: mark the
        # generated page as changed (its mtime only), so that it lists what was released since.
        os.utime(ROOT / "book" / "problem_sets.md")
    reasons = stale_reasons()
    if not reasons:
        return "book is up to date"
    r = subprocess.run(BUILD_CMD, capture_output=True, text=True, timeout=3600, cwd=ROOT)
    assert r.returncode == 0, "book build failed:\n" + (r.stdout + r.stderr)[-6000:]
    return "built the book: " + "; ".join(reasons[:5])


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output for failures
        pass


@contextlib.contextmanager
def serve(directory: Path):
    """Serve a folder on 127.0.0.1 (a free port) in a thread; yield its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def relative_luminance(css_color: str) -> float | None:
    """WCAG relative luminance of an opaque ``rgb(...)``/``rgba(...)`` colour; None if transparent."""
    parts = css_color[css_color.index("(") + 1:css_color.index(")")].replace("/", ",").split(",")
    vals = [float(v) for v in parts if v.strip()]
    if len(vals) == 4 and vals[3] < 1:
        return None

    def lin(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(v) for v in vals[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b
