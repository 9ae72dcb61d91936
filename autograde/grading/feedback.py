"""Per-student HTML feedback and the instructor's report.

Feedback (``OUT/feedback/<student>/<assignment>/<notebook>.html``) is built from the result
record only: the student's own answers (their solution cells, escaped), each test's points,
result and diagnosis, the seed, the flags and what caused them. It never contains test-cell
source, hidden tests, or the checks' code: the record holds none of them.

``OUT/report.html``: per assignment, the distribution of total scores and, per test, how many
earned / lost its points (matplotlib, PNG embedded as base64), with tables.
"""
from __future__ import annotations

import base64
import html
import io
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import quote

from .results import num

FLAG_TEXT = {
    "tampering": "your code changed numpy, torch, builtins or the course's test helpers (or the notebook's saved "
                 "test output does not match what your code does). It did not change any score: tests run outside "
                 "your process. Your instructor will look at it.",
    "forbidden": "an answer uses what the exercise forbids (a deep-learning framework in a numpy exercise, or a "
                 "built-in normalization): that test earned no points.",
    "timeout": "some code ran longer than the time limit; the test that was running earned no points.",
    "crash": "the process running your code ended abruptly (os._exit, a segfault...); the test that was running "
             "earned no points, the others ran in a fresh process.",
    "memory": "your code ran out of memory (the per-process limit); the test that was running earned no points.",
    "invalid-output": "an answer returned something the grader could not compare with PyTorch (a number too large "
                      "for a float, ...); that test earned no points.",
    "invalid-notebook": "the notebook file could not be read (corrupt JSON? too large?).",
    "unsafe-file": "the submission holds a link or a special file; it was neither followed nor read.",
    "missing": "the notebook was not found in your submission.",
}

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
color:#1b1b1b;line-height:1.45}
table{border-collapse:collapse;width:100%;margin:1rem 0}th,td{border:1px solid #ccc;padding:.35rem .5rem;
text-align:left;vertical-align:top}th{background:#f2f2f2}pre{background:#f7f7f7;border:1px solid #ddd;
padding:.6rem;overflow-x:auto;white-space:pre-wrap}.pass{color:#0a6b1f;font-weight:600}.fail{color:#a40000;
font-weight:600}.flag{display:inline-block;background:#fde2c8;border:1px solid #e0a96d;border-radius:.3rem;
padding:0 .4rem;margin-right:.3rem}.muted{color:#555}img{max-width:100%}
"""


def e(x) -> str:
    return html.escape(str(x), quote=True)


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{e(title)}</title>"
            f"<style>{CSS}</style></head><body>\n{body}\n</body></html>\n")


def feedback_html(r: dict, nb: dict) -> str:
    nb_score = sum(t["score"] for t in nb["tests"])
    nb_max = sum(t["max_score"] for t in nb["tests"])
    parts = [f"<h1>{e(r['assignment'])}: {e(nb['notebook'])}</h1>",
             f"<p>Student <b>{e(r['student_id'])}</b>. Autograded score <b>{num(nb_score)} / {num(nb_max)}</b>"
             + (f" (assignment total {num(r['score'])} / {num(r['max_score'])})" if len(r["notebooks"]) > 1 else "")
             + (f"; {num(r.get('manual_max_score', 0))} more point(s) are graded by hand." if r.get("manual_max_score") else ".")
             + f" Seed <code>{e(nb['seed'])}</code> (the inputs of every test derive from it)."
             + (f" References: PyTorch on <code>{e(nb['reference_device'])}</code>, float64." if nb.get("reference_device") else "")
             + "</p>"]
    if nb["flags"]:
        items = "".join(f"<li><span class=\"flag\">{e(f)}</span>{e(FLAG_TEXT.get(f, ''))}</li>" for f in nb["flags"])
        parts.append(f"<h2>Flags</h2><ul>{items}</ul>")
        details = [m for _, m in nb.get("events", [])] + list(nb.get("tamper", []))
        if details:
            parts.append("<p class=\"muted\">What the grader saw:</p><ul>" + "".join(f"<li>{e(d)}</li>" for d in details) + "</ul>")
    rows = []
    for t in nb["tests"]:
        ok = bool(t.get("passed"))
        verdict = "<span class=\"pass\">\u2714 passed</span>" if ok else "<span class=\"fail\">\u2718 failed</span>"
        msg = f"<pre>{e(t['message'])}</pre>" if t["message"] else ""
        flags = "".join(f"<span class=\"flag\">{e(f)}</span>" for f in t.get("flags", []))
        rows.append(f"<tr><td><code>{e(t['test_id'])}</code></td><td>{num(t['score'])} / {num(t['max_score'])}</td>"
                    f"<td>{verdict} {flags}{msg}</td></tr>")
    parts.append("<h2>Tests</h2><table><tr><th>test</th><th>points</th><th>result</th></tr>" + "".join(rows) + "</table>")
    if nb.get("advice"):
        parts.append("<h2>Advice</h2><p class=\"muted\">No points depend on this.</p><ul>"
                     + "".join(f"<li>{e(a['message'])}</li>" for a in nb["advice"]) + "</ul>")
    if nb.get("cell_errors"):
        parts.append("<h2>Cells that raised an error</h2><p class=\"muted\">They were skipped, as a kernel would; "
                     "what they define is missing.</p><ul>" + "".join(f"<li><code>{e(c)}</code></li>" for c in nb["cell_errors"]) + "</ul>")
    if nb.get("answers"):
        parts.append("<h2>Your answers</h2>")
        for a in nb["answers"]:
            label = f"cell {a['cell']}" + (f" ({a['grade_id']})" if a.get("grade_id") else "")
            parts.append(f"<h3 class=\"muted\">{e(label)}</h3><pre>{e(a['source'])}</pre>")
    return _page(f"{r['assignment']} feedback for {r['student_id']}", "\n".join(parts))


def write_all(out: Path, results: list[dict]) -> None:
    for r in results:
        folder = out / "feedback" / r["student_id"] / r["assignment"]
        folder.mkdir(parents=True, exist_ok=True)
        for nb in r["notebooks"]:
            (folder / f"{Path(nb['notebook']).stem}.html").write_text(feedback_html(r, nb), encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------
def _feedback_links(r: dict) -> str:
    """Links to the student's feedback pages for this assignment, one per notebook (write_all's names)."""
    folder = f"feedback/{quote(r['student_id'])}/{quote(r['assignment'])}"
    return ", ".join(f"<a href=\"{folder}/{quote(Path(nb['notebook']).stem)}.html\">{e(nb['notebook'])}</a>"
                    for nb in r["notebooks"])


def _png(fig, alt: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return f"<img alt=\"{e(alt)}\" src=\"data:image/png;base64," + base64.b64encode(buf.getvalue()).decode() + "\">"


def write_report(out: Path, results: list[dict], plans: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    by_a = defaultdict(list)
    for r in results:
        by_a[r["assignment"]].append(r)
    parts = ["<h1>Grading report</h1>",
             f"<p>{len(results)} submission(s); {sum(1 for r in results if r['flags'])} flagged.</p>"]
    for a in sorted(by_a):
        rs = sorted(by_a[a], key=lambda r: r["student_id"])
        max_score = rs[0]["max_score"] if rs else 0
        scores = [r["score"] for r in rs]
        parts.append(f"<h2>{e(a)}</h2><p>{len(rs)} submission(s); mean {sum(scores) / max(len(scores), 1):.2f} / "
                     f"{num(max_score)}; flags: {e(dict(Counter(f for r in rs for f in r['flags'])) or 'none')}</p>")
        fig, ax = plt.subplots(figsize=(6, 2.8))
        # one bar centred on each whole score
        bins = [x - 0.5 for x in range(int(max_score) + 2)] if float(max_score).is_integer() else 10
        ax.hist(scores, bins=bins, color="#4c72b0", rwidth=0.8)
        ax.set_xlabel("autograded score")
        ax.set_ylabel("submissions")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts
        ax.set_title(f"{a}: total scores")
        parts.append(_png(fig, f"{a}: histogram of the submissions' autograded scores"))
        tests = [(nb.name, tid, pts) for nb in plans[a].notebooks for tid, pts in nb.tests]
        earned = Counter()
        lost = Counter()
        flagged = defaultdict(Counter)
        for r in rs:
            for nb in r["notebooks"]:
                for t in nb["tests"]:
                    key = (nb["notebook"], t["test_id"])
                    (earned if t["score"] >= t["max_score"] else lost)[key] += 1
                    for f in t["flags"]:
                        flagged[key][f] += 1
        if tests:
            fig, ax = plt.subplots(figsize=(6, 0.5 + 0.45 * len(tests)))
            labels = [tid for _, tid, _ in tests]
            ys = range(len(tests))
            ok = [earned[(n, t)] for n, t, _ in tests]
            ko = [lost[(n, t)] for n, t, _ in tests]
            ax.barh(ys, ok, color="#55a868", label="earned the points")
            ax.barh(ys, ko, left=ok, color="#c44e52", label="no points")
            ax.set_yticks(list(ys), labels)
            ax.invert_yaxis()
            ax.set_xlabel("submissions")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.legend(loc="lower left", bbox_to_anchor=(0, 1), ncol=2, fontsize=8, frameon=False)  # above the bars
            ax.set_title(f"{a}: per test", pad=22)
            parts.append(_png(fig, f"{a}: per test, how many submissions earned its points and how many got none"))
            rows = "".join(
                f"<tr><td>{e(n)}</td><td><code>{e(t)}</code></td><td>{num(p)}</td><td>{earned[(n, t)]}</td>"
                f"<td>{lost[(n, t)]}</td><td>{e(dict(flagged[(n, t)]) or '')}</td></tr>" for n, t, p in tests)
            parts.append("<table><tr><th>notebook</th><th>test</th><th>points</th><th>submissions that earned "
                         "them</th><th>submissions with no points</th><th>flags (submissions)</th></tr>"
                         f"{rows}</table>")
        rows = "".join(
            f"<tr><td>{e(r['student_id'])}</td><td>{num(r['score'])} / {num(r['max_score'])}</td>"
            f"<td>{e(';'.join(r['flags']))}</td><td>{_feedback_links(r)}</td></tr>" for r in rs)
        parts.append(f"<table><tr><th>student</th><th>score</th><th>flags</th><th>feedback</th></tr>{rows}</table>")
    (out / "report.html").write_text(_page("Grading report", "\n".join(parts)), encoding="utf-8")
