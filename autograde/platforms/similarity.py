"""Code similarity between students: ``python -m autograde similarity --submissions DIR --out DIR``.

For each assignment, each student's *own* code is what their notebook adds to the released
template (``exercises/<assignment>/``): the code cells that are not a template cell (the set-up,
the test cells, demos), with every line that is a line of the template (signatures, docstrings,
``raise NotImplementedError()``) removed. The template's fingerprints are also given to
copydetect as boilerplate, so the starter code never counts as shared.

Pairs are compared with copydetect (winnowed k-gram fingerprints of pygments tokens in which
every name becomes ``V``/``F``/``O``, strings ``S``, and comments and whitespace are dropped): a
copy with renamed variables, other formatting, reordered functions or new comments keeps its
fingerprints. The score of a pair is the mean of copydetect's two fractions (the share of each
student's fingerprinted code found in the other's).

Writes ``OUT/similarity.csv`` (every pair, highest first) and ``OUT/similarity.html`` (the pairs at
or above ``--threshold`` side by side with the shared code highlighted, then the top of the
ranking; both at most ``--top`` pairs). Similarity is a reason to look at a pair, not a verdict: short exercises with one
natural solution are alike without any copying.
"""
from __future__ import annotations

import csv
import html
import io
import itertools
import json
import logging
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..paths import EXERCISES, UsageError, require_assignment
from ..paths import assignments as known_assignments

DEFAULT_THRESHOLD = 0.5
NOISE = 20  # k: fingerprints are k-grams of the filtered token stream (copydetect's noise threshold)
GUARANTEE = 25  # every shared run at least this long is found (copydetect's guarantee threshold)
CAUTION = ("Similarity is a reason to look, not a verdict. Short exercises with one natural solution "
           "are alike without any copying, students may have worked together as the course allows, "
           "and a high score says nothing about who wrote what. Read the code side by side and talk "
           "to the students before concluding anything.")


@dataclass
class Doc:
    student: str
    code: str  # the student's own code, as compared and shown
    notes: list[str] = field(default_factory=list)
    fp: object = None


# ---------------------------------------------------------------------------------------------
# The student's own code
# ---------------------------------------------------------------------------------------------
def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _meta(cell) -> dict:
    return (cell.get("metadata") or {}).get("nbgrader") or {}


def _pythonish(source: str) -> str:
    """IPython magics and shell lines (``%matplotlib``, ``!pip``) commented out."""
    return "\n".join("# " + line if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def read_cells(path: Path) -> list[dict]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(cells, list):
        raise ValueError("no cells")
    return [c for c in cells if isinstance(c, dict)]


@dataclass
class Template:
    cells: set[str]  # the template's code cells, stripped
    lines: set[str]  # the template's code lines, stripped
    code: str  # all of it, for copydetect's boilerplate


def template(exercise_notebooks: list[Path]) -> Template:
    cells, lines, code = set(), set(), []
    for p in exercise_notebooks:
        for c in read_cells(p):
            if c.get("cell_type") != "code":
                continue
            src = _source(c)
            cells.add(src.strip())
            lines.update(s.strip() for s in src.splitlines() if s.strip())
            code.append(_pythonish(src))
    return Template(cells, lines, "\n\n".join(code))


def own_code(cells: list[dict], tpl: Template) -> str:
    """The code the student wrote: code cells that are not template cells (nor test cells),
    without the template's lines."""
    parts = []
    for c in cells:
        if c.get("cell_type") != "code":
            continue
        m = _meta(c)
        if m.get("grade") and not m.get("solution"):
            continue  # a test cell
        src = _source(c)
        if src.strip() in tpl.cells:
            continue
        kept = [line for line in _pythonish(src).splitlines() if line.strip() and line.strip() not in tpl.lines]
        if kept:
            parts.append("\n".join(kept))
    return "\n\n".join(parts) + ("\n" if parts else "")


# ---------------------------------------------------------------------------------------------
# Comparing
# ---------------------------------------------------------------------------------------------
def _fingerprint(code: str, boilerplate):
    from copydetect import CodeFingerprint

    return CodeFingerprint("student.py", NOISE, GUARANTEE - NOISE + 1, boilerplate=boilerplate,
                           language="python", fp=io.StringIO(code))


def _boilerplate(code: str):
    from copydetect.utils import filter_code, get_document_fingerprints

    filtered, _ = filter_code(code, "template.py", "python")
    hashes, _ = get_document_fingerprints(filtered, NOISE, GUARANTEE - NOISE + 1, None)
    return list(hashes)


@dataclass
class Pair:
    a: Doc
    b: Doc
    score: float
    sim_a: float
    sim_b: float
    tokens: int
    slices: tuple


def compare(docs: list[Doc]) -> list[Pair]:
    from copydetect import compare_files

    pairs = []
    for a, b in itertools.combinations([d for d in docs if d.fp is not None and d.fp.hashes], 2):
        tokens, (sa, sb), slices = compare_files(a.fp, b.fp)
        sa, sb = float(sa), float(sb)
        pairs.append(Pair(a, b, (sa + sb) / 2, sa, sb, int(tokens), slices))
    pairs.sort(key=lambda p: (-p.score, p.a.student, p.b.student))
    return pairs


# ---------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:90rem;padding:0 1rem;color:#1b1b1b;background:#fff}
.caution{border-left:4px solid #b35900;background:#fff4e5;padding:.6rem 1rem}
table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.25rem .6rem;text-align:left}
.pair{border:1px solid #bbb;margin:1.5rem 0;padding:.5rem 1rem}
.side{display:grid;grid-template-columns:1fr 1fr;gap:1rem}
pre{background:#f6f6f6;padding:.5rem;overflow:auto;font-size:.85rem;line-height:1.45;white-space:pre-wrap}
mark{background:#ffd84d;color:#000}
.muted{color:#555}
"""


def _highlight(code: str, slices) -> str:
    slices = np.asarray(slices)
    if slices.size == 0:
        return html.escape(code)
    out, pos = [], 0
    for start, end in sorted(zip(slices[0].tolist(), slices[1].tolist())):
        start, end = max(int(start), pos), int(end)
        if end <= start:
            continue
        out.append(html.escape(code[pos:start]) + "<mark>" + html.escape(code[start:end]) + "</mark>")
        pos = end
    out.append(html.escape(code[pos:]))
    return "".join(out)


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def report_html(sections: list[dict], threshold: float, top: int) -> str:
    e = html.escape
    parts = [f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Code similarity</title>"
             f"<style>{CSS}</style></head><body><h1>Code similarity between students</h1>",
             f"<p class=\"caution\"><strong>{e(CAUTION)}</strong></p>",
             f"<p class=\"muted\">Each student's own code (the released template removed) compared with copydetect's "
             f"winnowed fingerprints (names, comments and layout ignored; k = {NOISE}, guarantee {GUARANTEE}). "
             f"Score = mean of the two shares of fingerprinted code found in the other submission. "
             f"Threshold {threshold:g}.</p>"]
    for s in sections:
        pairs = s["pairs"]
        scores = [p.score for p in pairs]
        above = [p for p in pairs if p.score >= threshold]
        parts.append(f"<h2>{e(s['assignment'])}</h2>")
        stats = (f"{len(s['docs'])} submissions, {len(pairs)} pairs" +
                 (f"; median score {statistics.median(scores):.2f}, highest {max(scores):.2f}" if scores else ""))
        parts.append(f"<p>{e(stats)}. <strong>{len(above)} pair(s) at or above the threshold</strong>, highest first.</p>")
        if s["skipped"]:
            parts.append("<p class=\"muted\">Not compared: " + e("; ".join(s["skipped"])) + "</p>")
        if len(above) > top:
            parts.append(f"<p>The first {top} are shown side by side; the other {len(above) - top} are in "
                         f"<code>similarity.csv</code> (or raise <code>--top</code>).</p>")
        for rank, p in enumerate(above[:top], 1):
            parts.append(
                f"<div class=\"pair\" id=\"{e(s['assignment'])}-{rank}\"><h3>#{rank}: {e(p.a.student)} and {e(p.b.student)}: "
                f"score {p.score:.2f}</h3><p>{_pct(p.sim_a)} of {e(p.a.student)}'s code is found in {e(p.b.student)}'s, "
                f"{_pct(p.sim_b)} the other way ({p.tokens} shared tokens). Highlighted: the shared code.</p>"
                f"<div class=\"side\"><div><h4>{e(p.a.student)}</h4><pre>{_highlight(p.a.code, p.slices[0])}</pre></div>"
                f"<div><h4>{e(p.b.student)}</h4><pre>{_highlight(p.b.code, p.slices[1])}</pre></div></div></div>")
        if pairs:
            rows = "".join(f"<tr><td>{i}</td><td>{e(p.a.student)}</td><td>{e(p.b.student)}</td><td>{p.score:.2f}</td>"
                           f"<td>{_pct(p.sim_a)} / {_pct(p.sim_b)}</td></tr>" for i, p in enumerate(pairs[:top], 1))
            parts.append(f"<h3>Top {min(top, len(pairs))} pairs</h3><table><tr><th>rank</th><th>student</th><th>student</th>"
                         f"<th>score</th><th>shares</th></tr>{rows}</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------
def similarity(submissions: str | Path, out: str | Path, *, assignments: list[str] | None = None,
               threshold: float = DEFAULT_THRESHOLD, top: int = 50, log=print) -> int:
    submissions, out = Path(submissions), Path(out)
    if not submissions.is_dir():
        raise UsageError(f"{submissions}: submissions folder not found")
    if not 0 <= threshold <= 1:
        raise UsageError("--threshold must be between 0 and 1")
    if top < 1:
        raise UsageError("--top must be at least 1")
    for a in assignments or []:
        require_assignment(a)
    present = sorted({p.name for s in submissions.iterdir() if s.is_dir() for p in s.iterdir() if p.is_dir()})
    todo = [a for a in (assignments or known_assignments()) if a in present]
    if not todo:
        raise UsageError(f"no submissions of {', '.join(assignments or known_assignments())} in {submissions}")
    t0 = time.perf_counter()
    logging.getLogger().setLevel(logging.ERROR)  # copydetect warns on every empty file
    sections = []
    for a in todo:
        tpl = template(sorted((EXERCISES / a).glob("*.ipynb")))
        boiler = _boilerplate(tpl.code)
        docs, skipped = [], []
        for sdir in sorted(p for p in submissions.iterdir() if p.is_dir()):
            folder = sdir / a
            nbs = sorted(folder.glob("*.ipynb")) if folder.is_dir() else []
            if not nbs:
                continue
            code, notes = [], []
            for nb in nbs:
                try:
                    code.append(own_code(read_cells(nb), tpl))
                except (OSError, ValueError) as exc:
                    notes.append(f"{nb.name} unreadable ({type(exc).__name__})")
            doc = Doc(sdir.name, "\n".join(c for c in code if c), notes)
            if doc.code.strip():
                doc.fp = _fingerprint(doc.code, boiler)
            if doc.fp is None or not doc.fp.hashes:
                skipped.append(f"{sdir.name} ({', '.join(notes) or 'no code of their own'})")
            docs.append(doc)
        sections.append({"assignment": a, "docs": docs, "pairs": compare(docs), "skipped": skipped})
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "similarity.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["assignment", "rank", "student_a", "student_b", "score", "share_a", "share_b", "shared_tokens",
                    "above_threshold"])
        for s in sections:
            for rank, p in enumerate(s["pairs"], 1):
                w.writerow([s["assignment"], rank, p.a.student, p.b.student, f"{p.score:.4f}", f"{p.sim_a:.4f}",
                            f"{p.sim_b:.4f}", p.tokens, int(p.score >= threshold)])
    (out / "similarity.html").write_text(report_html(sections, threshold, top), encoding="utf-8")
    n_above = sum(p.score >= threshold for s in sections for p in s["pairs"])
    log(f"autograde similarity: {sum(len(s['docs']) for s in sections)} submission(s), "
        f"{sum(len(s['pairs']) for s in sections)} pair(s), {n_above} at or above {threshold:g}, in "
        f"{time.perf_counter() - t0:.1f} s: {out / 'similarity.csv'}, {out / 'similarity.html'}")
    return 0
