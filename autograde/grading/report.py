"""The instructor's report, ``OUT/report.html``: per assignment, the distribution of total
scores and, per test, how many earned / lost its points (matplotlib, PNG embedded as base64),
the class's common mistakes (the diagnoses grouped per test, with counts and the students
concerned), and the students, lowest total first, with links to their feedback pages.
"""
from __future__ import annotations

import base64
import io
import re
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import quote

from .feedback import _page, e, page_path
from .records import Result
from .results import num

WRONG = re.compile(r"^(?P<what>.+?) is wrong(?: on .+?)?: (?P<mistake>.+)$")
NO_MATCH = re.compile(r"^(?P<what>.+?) does not match PyTorch\b")
NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def mistake_of(message: str) -> str:
    """What a failed test's diagnosis says, without what differs between students (the case, the
    numbers): a known mistake's sentence, or "does not match PyTorch (no known mistake)"."""
    first = (message or "").strip().splitlines()[0] if (message or "").strip() else "(no message)"
    m = WRONG.match(first)
    if m:
        return NUMBER.sub("#", f"{m['what']} is wrong: {m['mistake']}")
    m = NO_MATCH.match(first)
    if m:
        return f"{m['what']} does not match PyTorch (no known mistake)"
    return NUMBER.sub("#", first)


def common_mistakes(results: list[Result], tests: list[tuple[str, str, float]]) -> list[tuple[str, str, list[str]]]:
    """[(test, mistake, students)] for the failed tests of ``results``: per test in the plan's
    order, the most frequent diagnosis first."""
    groups: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        for nb in r.notebooks:
            for t in nb.tests:
                if not t.passed:
                    groups[(nb.notebook, t.test_id)][mistake_of(t.message)].append(r.student_id)
    rows = []
    for n, tid, _ in tests:
        for mistake, students in sorted(groups.get((n, tid), {}).items(), key=lambda kv: (-len(kv[1]), kv[0])):
            rows.append((tid, mistake, sorted(students)))
    return rows


def flags_text(counts: Counter) -> str:
    """{'timeout': 2, 'crash': 1} -> 'timeout (2), crash (1)'; 'none'."""
    return ", ".join(f"{f} ({n})" for f, n in counts.most_common()) or "none"


def _png(fig, alt: str) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return f"<img alt=\"{e(alt)}\" src=\"data:image/png;base64," + base64.b64encode(buf.getvalue()).decode() + "\">"


def _histogram(a: str, scores: list[float], max_score: float) -> str:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 2.8))
    # one bar centred on each whole score
    bins = [x - 0.5 for x in range(int(max_score) + 2)] if float(max_score).is_integer() else 10
    ax.hist(scores, bins=bins, color="#4c72b0", rwidth=0.8)
    ax.set_xlabel("autograded score")
    ax.set_ylabel("submissions")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts
    ax.set_title(f"{a}: total scores")
    return _png(fig, f"{a}: histogram of the submissions' autograded scores")


def _per_test(a: str, tests: list, earned: Counter, lost: Counter) -> str:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.45 * len(tests)))
    ys = range(len(tests))
    ok = [earned[(n, t)] for n, t, _ in tests]
    ko = [lost[(n, t)] for n, t, _ in tests]
    ax.barh(ys, ok, color="#55a868", label="earned the points")
    ax.barh(ys, ko, left=ok, color="#c44e52", label="no points")
    ax.set_yticks(list(ys), [tid for _, tid, _ in tests])
    ax.invert_yaxis()
    ax.set_xlabel("submissions")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1), ncol=2, fontsize=8, frameon=False)  # above the bars
    ax.set_title(f"{a}: per test", pad=22)
    return _png(fig, f"{a}: per test, how many submissions earned its points and how many got none")


def _assignment(a: str, rs: list[Result], plan, totals: dict) -> list[str]:
    max_score = rs[0].max_score if rs else 0
    scores = [r.score for r in rs]
    parts = [f"<h2>{e(a)}</h2><p>{len(rs)} submission(s); mean {sum(scores) / max(len(scores), 1):.2f} / "
             f"{num(max_score)}; flags: {e(flags_text(Counter(f for r in rs for f in r.flags)))}</p>",
             _histogram(a, scores, max_score)]
    tests = [(nb.name, tid, pts) for nb in plan.notebooks for tid, pts in nb.tests]
    earned, lost, flagged = Counter(), Counter(), defaultdict(Counter)
    for r in rs:
        for nb in r.notebooks:
            for t in nb.tests:
                key = (nb.notebook, t.test_id)
                (earned if t.score >= t.max_score else lost)[key] += 1
                for f in t.flags:
                    flagged[key][f] += 1
    if tests:
        parts.append(_per_test(a, tests, earned, lost))
        rows = "".join(
            f"<tr><td>{e(n)}</td><td><code>{e(t)}</code></td><td>{num(p)}</td><td>{earned[(n, t)]}</td>"
            f"<td>{lost[(n, t)]}</td><td>{e(flags_text(flagged[(n, t)]) if flagged[(n, t)] else '')}</td></tr>"
            for n, t, p in tests)
        parts.append("<table><tr><th>notebook</th><th>test</th><th>points</th><th>submissions that earned "
                     "them</th><th>submissions with no points</th><th>flags (submissions)</th></tr>"
                     f"{rows}</table>")
    mistakes = common_mistakes(rs, tests)
    if mistakes:
        rows = "".join(f"<tr><td><code>{e(tid)}</code></td><td>{e(m)}</td><td>{len(ss)}</td>"
                       f"<td>{e(', '.join(ss))}</td></tr>" for tid, m, ss in mistakes)
        parts.append(f"<h3>Common mistakes</h3><p class=\"muted\">The diagnoses of failed tests, grouped across the "
                     f"class (numbers and input cases left out), most frequent first per test.</p>"
                     f"<table><tr><th>test</th><th>diagnosis</th><th>submissions</th><th>students</th></tr>{rows}</table>")
    by_total = sorted(rs, key=lambda r: (totals.get((r.student_id, a), {}).get("total", r.score), r.student_id))
    rows = "".join(
        f"<tr><td>{e(r.student_id)}</td><td>{num(r.score)} / {num(r.max_score)}</td>"
        f"<td>{_total(totals.get((r.student_id, a)))}</td><td>{e(', '.join(r.flags))}</td>"
        f"<td><a href=\"{quote(page_path(r.student_id, a))}\">feedback</a></td></tr>" for r in by_total)
    parts.append("<h3>Students</h3><p class=\"muted\">Lowest total first.</p><table><tr><th>student</th>"
                 f"<th>autograded</th><th>total (hand grades, late penalty)</th><th>flags</th><th>feedback</th></tr>"
                 f"{rows}</table>")
    return parts


def _total(g: dict | None) -> str:
    if not g:
        return ""
    note = [f"late \u2212{num(g['penalty'])}"] if g["penalty"] else []
    note += [f"{len(g['pending'])} to grade by hand"] if g["pending"] else []
    return f"{num(g['total'])} / {num(g['possible'])}" + (f" ({', '.join(note)})" if note else "")


def write_report(out: Path, results: list[Result], plans: dict, totals: dict | None = None) -> None:
    """``totals``: (student, assignment) -> :func:`.scoring.total`'s record."""
    import matplotlib

    matplotlib.use("Agg")
    by_a = defaultdict(list)
    for r in results:
        by_a[r.assignment].append(r)
    parts = ["<h1>Grading report</h1>",
             f"<p>{len(results)} submission(s); {sum(1 for r in results if r.flags)} flagged.</p>"]
    for a in sorted(by_a):
        parts += _assignment(a, by_a[a], plans[a], totals or {})
    (out / "report.html").write_text(_page("Grading report", "\n".join(parts)), encoding="utf-8")
