"""The student's feedback: ONE page per student and assignment,
``OUT/feedback/<student>/<assignment>/<assignment>.html``, that says everything about the grade:
the total and how it is made (autograded points, hand-graded points and comments from
Formgrader, extra credit, the late penalty with its rule), then per notebook each test's points,
result and diagnosis (a hand score or comment given to it in Formgrader next to it), which
failures follow from an earlier failed test and what the course's policy makes of them, the
seed, the flags and what caused them, the advice and the student's own answers.

It is built from the result record, the hand grades read from the gradebook and the deadlines,
never from test-cell source, hidden tests or the checks' code. ``python -m autograde publish``
rebuilds it after hand grading.
"""
from __future__ import annotations

import html
from dataclasses import replace
from pathlib import Path

from .records import NotebookResult, Plan, PlanNotebook, Result, TestRecord
from .results import num
from .scoring import DEFAULT_POLICY, POLICY_TEXT, failed_prerequisites, total

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


def _verdict(t: TestRecord, hand: dict, after: dict, passed: dict, policy: str) -> str:
    ok = t.passed
    verdict = "<span class=\"pass\">\u2714 passed</span>" if ok else "<span class=\"fail\">\u2718 failed</span>"
    flags = "".join(f"<span class=\"flag\">{e(f)}</span>" for f in t.flags)
    parts = [f"{verdict} {flags}", f"<pre>{e(t.message)}</pre>" if t.message else ""]
    first = failed_prerequisites(after, t.test_id, passed) if not ok else []
    if first:
        names = ", ".join(f"<code>{e(p)}</code>" for p in first)
        cost = ("its points are kept: the course charges the mistake once, on the earlier test" if t.waived_by
                else "it still costs its points (course policy: each failed test counts)" if policy == "charge"
                else "it costs its points: it fails for a reason of its own (a flag)")
        parts.append(f"<p class=\"muted\">This test builds on {names}, which failed too: fix that first. "
                     f"Here {cost}.</p>")
    cell = f"test_{t.test_id}"
    comment = hand.get("comments", {}).get(cell)
    if comment:
        parts.append(f"<p><b>Grader's comment:</b> {e(comment)}</p>")
    return "".join(parts)


def _points(t: TestRecord, hand: dict) -> str:
    given = hand.get("scores", {}).get(f"test_{t.test_id}", [None])[0]
    if given is None:
        return f"{num(t.score)} / {num(t.max_score)}"
    return f"{num(given)} / {num(t.max_score)} <span class=\"muted\">(by hand; autograder: {num(t.score)})</span>"


def _notebook(r: Result, nb: NotebookResult, hand: dict, plan_nb: PlanNotebook | None, after: dict, policy: str) -> list[str]:
    """The notebook's part of the page: its own heading (h2, sections h3) when the assignment has
    several notebooks, else sections at h2."""
    h = "h2" if len(r.notebooks) == 1 else "h3"
    sub = "h3" if h == "h2" else "h4"
    parts = [f"<h2>{e(nb.notebook)}</h2>" if h == "h3" else "",
             f"<p class=\"muted\">Seed <code>{e(nb.seed)}</code> (the inputs of every test derive from it)."
             + (f" References: PyTorch on <code>{e(nb.reference_device)}</code>, float64." if nb.reference_device else "")
             + "</p>"]
    if nb.flags:
        items = "".join(f"<li><span class=\"flag\">{e(f)}</span>{e(FLAG_TEXT.get(f, ''))}</li>" for f in nb.flags)
        parts.append(f"<{h}>Flags</{h}><ul>{items}</ul>")
        details = [m for _, m in nb.events] + list(nb.tamper)
        if details:
            parts.append("<p class=\"muted\">What the grader saw:</p><ul>" + "".join(f"<li>{e(d)}</li>" for d in details) + "</ul>")
    passed = {t.test_id: t.passed for t in nb.tests}
    rows = "".join(f"<tr><td><code>{e(t.test_id)}</code></td><td>{_points(t, hand)}</td>"
                   f"<td>{_verdict(t, hand, after, passed, policy)}</td></tr>" for t in nb.tests)
    if rows:
        parts.append(f"<{h}>Tests</{h}><table><tr><th>test</th><th>points</th><th>result</th></tr>" + rows + "</table>")
    manual = plan_nb.manual if plan_nb else ()
    if manual:
        rows = []
        for cell, pts in manual:
            score = hand.get("scores", {}).get(cell, [None])[0]
            comment = hand.get("comments", {}).get(cell, "")
            rows.append(f"<tr><td><code>{e(cell)}</code></td><td>"
                        + (f"{num(score)} / {num(pts)}" if score is not None else f"not graded yet / {num(pts)}")
                        + f"</td><td>{e(comment)}</td></tr>")
        parts.append(f"<{h}>Graded by hand</{h}><table><tr><th>answer</th><th>points</th><th>comment</th></tr>"
                     + "".join(rows) + "</table>")
    if nb.advice:
        parts.append(f"<{h}>Advice</{h}><p class=\"muted\">No points depend on this.</p><ul>"
                     + "".join(f"<li>{e(a['message'])}</li>" for a in nb.advice) + "</ul>")
    if nb.cell_errors:
        parts.append(f"<{h}>Cells that raised an error</{h}><p class=\"muted\">They were skipped, as a kernel would; "
                     "what they define is missing.</p><ul>" + "".join(f"<li><code>{e(c)}</code></li>" for c in nb.cell_errors) + "</ul>")
    if nb.answers:
        parts.append(f"<{h}>Your answers</{h}>")
        for a in nb.answers:
            label = f"cell {a['cell']}" + (f" ({a['grade_id']})" if a.get("grade_id") else "")
            parts.append(f"<{sub} class=\"muted\">{e(label)}</{sub}><pre>{e(a['source'])}</pre>")
    return parts


def _summary(g: dict, late_note: str, policy: str, after: dict) -> str:
    rows = [("autograded", f"{num(g['auto'])} / {num(g['possible'] - g['hand_possible'])}")]
    if g["hand_possible"] or g["hand"]:
        rows.append(("graded by hand", f"{num(g['hand'])} / {num(g['hand_possible'])}"
                     + (f" ({len(g['pending'])} answer(s) not graded yet)" if g["pending"] else "")))
    if g["extra"]:
        rows.append(("extra credit", num(g["extra"])))
    if g["penalty"]:
        rows.append(("late penalty", f"\u2212{num(g['penalty'])}"))
    rows.append(("<b>total</b>", f"<b>{num(g['total'])} / {num(g['possible'])}</b>"))
    parts = ["<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"]
    if late_note:
        parts.append(f"<p><b>Submission time.</b> {e(late_note)}</p>")
    if any(after.values()):
        parts.append(f"<p class=\"muted\"><b>Tests that build on an earlier one</b> (course policy "
                     f"<code>{e(policy)}</code>): {e(POLICY_TEXT[policy])}.</p>")
    return "".join(parts)


def assignment_page(r: Result, plan: Plan | None = None, *, hand: dict | None = None, late_note: str = "",
                    late_fraction: float = 0.0, policy: str = DEFAULT_POLICY, after: dict | None = None) -> str:
    """The student's one page for this assignment (see the module's docstring)."""
    hand, after = hand or {}, after or {}
    plan = plan or Plan(r.assignment, tuple(PlanNotebook(nb.notebook, ()) for nb in r.notebooks))
    g = total(r, plan, hand, late_fraction)
    parts = [f"<h1>{e(r.assignment)}</h1>", f"<p>Feedback for <b>{e(r.student_id)}</b>.</p>",
             _summary(g, late_note, policy, after)]
    plan_nbs = {nb.name: nb for nb in plan.notebooks}
    for nb in r.notebooks:
        parts += _notebook(r, nb, hand.get(nb.notebook, {}), plan_nbs.get(nb.notebook), after, policy)
    return _page(f"{r.assignment} feedback for {r.student_id}", "\n".join(parts))


def feedback_html(r: Result, nb: NotebookResult) -> str:
    """One notebook's part of the page alone (no hand grades, no deadlines)."""
    return assignment_page(replace(r, notebooks=(nb,)))


def page_path(student: str, assignment: str) -> str:
    """Where a student's page lies under OUT (the report links it)."""
    return f"feedback/{student}/{assignment}/{assignment}.html"


def write_page(out: Path, r: Result, text: str) -> None:
    path = out / page_path(r.student_id, r.assignment)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
