"""PDFs of the hand-graded answers: ``python -m autograde export-pdf --submissions DIR --out DIR``.

For Gradescope's manual grading (as Otter does): ``OUT/<student>/<assignment>.pdf`` holds, for
each hand-graded question of the assignment (the solution notebooks' cells that nbgrader grades
by hand: ``grade`` and ``solution`` both true, or a ``task``), in notebook order, one section
that starts on a new page: a heading naming the question and its points, the prompt (the cells
since the previous answer or test cell: the question's text and the student's saved outputs,
figures included, of the code cells it refers to; the code of the course's own cells is left
out, a student's code cell is shown) and the student's answer.

Rendered by Chromium through Playwright's ``page.pdf`` (Debian's ``/usr/bin/chromium``, no browser
download, no LaTeX). Students' markdown is rendered with raw HTML escaped and only text and
PNG/JPEG outputs are shown (no HTML or JavaScript from a notebook runs). Math is typeset by the
MathJax that ``sphinx-mathjax-offline`` installs, served to the page from disk; every other
request is refused, so nothing reaches the network.
"""
from __future__ import annotations

import base64
import html
import json
import os
import re
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

from ..paths import UsageError, require_assignment, solution_notebooks
from ..paths import assignments as known_assignments

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ORIGIN = "http://export-pdf.invalid/"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

CSS = """
@page { size: Letter; margin: 16mm 15mm; }
body { font-family: "DejaVu Sans", system-ui, sans-serif; font-size: 10.5pt; color: #000; line-height: 1.35;
       font-variant-ligatures: none; }
section.question { break-before: page; }
section.question:first-of-type { break-before: auto; }
h1.q { font-size: 14pt; border-bottom: 2px solid #333; padding-bottom: 2pt; margin: 0 0 6pt; }
.label { font-size: 8.5pt; color: #444; text-transform: uppercase; letter-spacing: .05em; margin: 8pt 0 2pt; }
.prompt { border-left: 3px solid #999; padding-left: 8pt; }
.answer { border: 1.5px solid #000; padding: 4pt 8pt; min-height: 20mm; }
pre { font-family: "DejaVu Sans Mono", monospace; font-size: 8.5pt; background: #f3f3f3; padding: 4pt;
      white-space: pre-wrap; word-break: break-word; margin: 3pt 0; }
pre.out { background: #fff; border: 1px dashed #aaa; }
img { max-width: 100%; max-height: 110mm; break-inside: avoid; display: block; }
table { border-collapse: collapse; } td, th { border: 1px solid #999; padding: 1pt 4pt; }
.missing { color: #a00; font-style: italic; }
"""


@dataclass
class Question:
    notebook: str
    grade_id: str
    points: float


def _src(cell) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else str(s)


def _nbg(cell) -> dict:
    return (cell.get("metadata") or {}).get("nbgrader") or {}


def _is_manual(cell) -> bool:
    m = _nbg(cell)
    return bool((m.get("grade") and m.get("solution")) or m.get("task"))


def _is_boundary(cell) -> bool:
    """Where a question's prompt starts after: an answer (autograded or not) or a test cell."""
    m = _nbg(cell)
    return bool(m.get("solution") or m.get("grade") or m.get("task"))


def questions(assignment: str) -> list[Question]:
    """The hand-graded questions of an assignment, from its solution notebooks (trusted metadata)."""
    out = []
    for p in solution_notebooks(assignment):
        for c in json.loads(p.read_text())["cells"]:
            if _is_manual(c):
                m = _nbg(c)
                out.append(Question(p.name, m.get("grade_id", ""), float(m.get("points") or 0)))
    return out


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------
def _markdown():
    from markdown_it import MarkdownIt
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    def math(content: str, opts: dict) -> str:
        tex = html.escape(content)
        return f"\\[{tex}\\]" if opts.get("display_mode") else f"\\({tex}\\)"

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    dollarmath_plugin(md, double_inline=True, renderer=math)
    return md


def _outputs(cell) -> str:
    parts = []
    for o in cell.get("outputs", []) or []:
        kind = o.get("output_type")
        if kind == "stream":
            parts.append(f"<pre class=\"out\">{html.escape(ANSI.sub('', _join(o.get('text'))))}</pre>")
        elif kind in ("execute_result", "display_data"):
            data = o.get("data") or {}
            for mime in ("image/png", "image/jpeg"):
                if mime in data:
                    b64 = re.sub(r"\s", "", _join(data[mime]))
                    try:
                        base64.b64decode(b64, validate=True)
                    except ValueError:
                        break
                    parts.append(f"<img alt=\"output figure\" src=\"data:{mime};base64,{b64}\">")
                    break
            else:
                if "text/plain" in data:
                    parts.append(f"<pre class=\"out\">{html.escape(_join(data['text/plain']))}</pre>")
        elif kind == "error":
            tb = ANSI.sub("", "\n".join(o.get("traceback") or [f"{o.get('ename')}: {o.get('evalue')}"]))
            parts.append(f"<pre class=\"out\">{html.escape(tb)}</pre>")
    return "".join(parts)


def _join(x) -> str:
    return "".join(x) if isinstance(x, list) else str(x or "")


def _cell_html(cell, md, prompt: bool = False) -> str:
    """A cell as HTML. In a prompt, a code cell the course wrote (nbgrader ``locked``) shows only
    the student's saved outputs: the grader reads what it produced, not its code."""
    if cell.get("cell_type") == "markdown":
        return md.render(_src(cell))
    if cell.get("cell_type") == "code":
        out = _outputs(cell)
        if prompt and _nbg(cell).get("locked"):
            return out or "<p class=\"missing\">(no saved output: the student did not run this cell)</p>"
        return f"<pre>{html.escape(_src(cell))}</pre>{out}"
    return ""


def question_html(q: Question, cells: list[dict] | None, assignment: str, md, problem: str = "") -> str:
    """One question's section: heading, prompt with the student's outputs, answer."""
    pts = f"{q.points:g} point{'s' if q.points != 1 else ''}"
    head = (f"<h1 class=\"q\">{html.escape(assignment)} \u00b7 {html.escape(q.notebook)} \u00b7 "
            f"question {html.escape(q.grade_id)} ({pts})</h1>")
    if cells is None:
        return (f"<section class=\"question\">{head}<p class=\"missing\">{html.escape(problem)}</p>"
                f"<div class=\"label\">Answer</div><div class=\"answer\"><p class=\"missing\">no answer</p></div></section>")
    idx = next((i for i, c in enumerate(cells) if _nbg(c).get("grade_id") == q.grade_id), None)
    if idx is None:
        return (f"<section class=\"question\">{head}<p class=\"missing\">The answer cell of this question is not in the "
                f"submitted notebook (deleted, or its metadata removed).</p></section>")
    start = idx
    while start > 0 and not _is_boundary(cells[start - 1]):
        start -= 1
    prompt = "".join(_cell_html(c, md, prompt=True) for c in cells[start:idx])
    answer = _cell_html(cells[idx], md)
    if not _src(cells[idx]).strip() or _src(cells[idx]).strip() == "YOUR ANSWER HERE":
        answer = "<p class=\"missing\">(no answer written)</p>"
    return (f"<section class=\"question\">{head}<div class=\"label\">Question</div><div class=\"prompt\">{prompt}</div>"
            f"<div class=\"label\">Answer</div><div class=\"answer\">{answer}</div></section>")


def mathjax_dir() -> Path | None:
    for base in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}:
        p = Path(base) / "sphinx-mathjax-offline" / "static" / "mathjax"
        if (p / "tex-chtml.js").is_file():
            return p
    return None


def document(assignment: str, sections: list[str], with_math: bool) -> str:
    mj = ""
    if with_math:
        mj = ("<script>window.MathJax={tex:{inlineMath:[['\\\\(','\\\\)']],displayMath:[['\\\\[','\\\\]']]},"
              "chtml:{fontURL:'" + ORIGIN + "mathjax/output/chtml/fonts/woff-v2'},startup:{typeset:true}};</script>"
              f"<script src=\"{ORIGIN}mathjax/tex-chtml.js\"></script>")
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(assignment)}</title>"
            f"<style>{CSS}</style>{mj}</head><body>{''.join(sections)}</body></html>")


# ---------------------------------------------------------------------------------------------
# Chromium
# ---------------------------------------------------------------------------------------------
class Renderer:
    """One headless Chromium for a batch of PDFs; the page loads only what we serve it."""

    def __init__(self, chromium: str | None = None):
        from playwright.sync_api import sync_playwright

        exe = chromium or os.environ.get("BOOK_CHROMIUM") or CHROMIUM
        if not Path(exe).is_file():
            raise UsageError(f"no Chromium at {exe} (apt-get install chromium, or --chromium PATH)")
        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        self.mathjax = mathjax_dir()

    def pdf(self, doc_html: str, path: Path) -> None:
        ctx = self.browser.new_context(java_script_enabled=self.mathjax is not None, service_workers="block")
        try:
            page = ctx.new_page()

            def route(r):
                url = r.request.url
                if url == ORIGIN + "page.html":
                    return r.fulfill(status=200, content_type="text/html; charset=utf-8", body=doc_html)
                if self.mathjax and url.startswith(ORIGIN + "mathjax/"):
                    rel = url[len(ORIGIN + "mathjax/"):].split("?")[0]
                    f = (self.mathjax / rel).resolve()
                    if f.is_file() and self.mathjax.resolve() in f.parents:
                        ctype = "application/javascript" if f.suffix == ".js" else "font/woff2" if f.suffix == ".woff2" else "application/octet-stream"
                        return r.fulfill(status=200, content_type=ctype, body=f.read_bytes())
                if url.startswith("data:"):
                    return r.continue_()
                return r.abort()  # nothing else: no network

            page.route("**/*", route)
            page.goto(ORIGIN + "page.html", wait_until="load")
            if self.mathjax:
                page.evaluate("() => (window.MathJax && MathJax.startup && MathJax.startup.promise) || null")
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".part")
            page.pdf(path=str(tmp), format="Letter", print_background=True, prefer_css_page_size=True)
            os.replace(tmp, path)
        finally:
            ctx.close()

    def close(self) -> None:
        try:
            self.browser.close()
        finally:
            self._pw.stop()


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------
def export_pdfs(submissions: str | Path, out: str | Path, *, assignments: list[str] | None = None,
                chromium: str | None = None, log=print) -> int:
    submissions, out = Path(submissions), Path(out)
    if not submissions.is_dir():
        raise UsageError(f"{submissions}: submissions folder not found")
    for a in assignments or []:
        require_assignment(a)
    todo = [a for a in (assignments or known_assignments()) if questions(a)]
    students = sorted(p for p in submissions.iterdir() if p.is_dir())
    jobs = [(s, a) for s in students for a in todo if (s / a).is_dir()]
    if not jobs:
        raise UsageError(f"no submissions with hand-graded questions in {submissions}")
    t0 = time.perf_counter()
    md = _markdown()
    renderer = Renderer(chromium)
    written = 0
    try:
        for sdir, a in jobs:
            sections = []
            cache: dict[str, tuple[list | None, str]] = {}
            single = len(solution_notebooks(a)) == 1
            for q in questions(a):
                if q.notebook not in cache:
                    cache[q.notebook] = _read(sdir / a, q.notebook, single)
                cells, problem = cache[q.notebook]
                sections.append(question_html(q, cells, a, md, problem))
            renderer.pdf(document(a, sections, renderer.mathjax is not None), out / sdir.name / f"{a}.pdf")
            written += 1
    finally:
        renderer.close()
    log(f"autograde export-pdf: {written} PDF(s) in {out} ({time.perf_counter() - t0:.1f} s)")
    return 0


def _read(folder: Path, name: str, single: bool) -> tuple[list | None, str]:
    path = folder / name
    if not path.is_file():
        others = sorted(folder.glob("*.ipynb"))
        if single and len(others) == 1:
            path = others[0]  # a one-notebook assignment: its only notebook under another name, as `grade` accepts
        else:
            return None, f"{name} was not submitted."
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        cells = [c for c in data["cells"] if isinstance(c, dict)]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"{path.name} could not be read ({type(exc).__name__})."
    return cells, ""
