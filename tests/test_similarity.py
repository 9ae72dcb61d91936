"""`python -m autograde similarity`: planted pairs among independent solutions.

Seven independent, correct implementations of the `loss_functions` exercises written in
different styles (the course's own solution, plain vectorized numpy, Python loops, logaddexp with
one-hot matrices, einsum with take_along_axis, explicit sums, masks) and two planted copies: one
of STYLES["vectorized"] with every variable renamed and the layout changed, one of
STYLES["logaddexp"] with its functions in another order and new comments. The planted pairs must
rank first, and no pair of independent solutions may reach the threshold.
"""
from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from adversarial import dumps, edit, exercise_notebook, student_solution

from autograde.core import LocalStudent, run_test
from autograde.paths import ROOT, load_tests

ASSIGNMENT = "loss_functions"
FUNCS = ["mse_loss", "mse_loss_grad", "cross_entropy_loss", "cross_entropy_loss_grad"]

STYLES: dict[str, dict[str, str]] = {
    "vectorized": {
        "mse_loss": '''
def mse_loss(pred, target):
    err = np.asarray(pred, dtype=float) - np.asarray(target, dtype=float)
    return float((err ** 2).mean())
''',
        "mse_loss_grad": '''
def mse_loss_grad(pred, target):
    err = np.asarray(pred, dtype=float) - np.asarray(target, dtype=float)
    return 2 * err / err.size
''',
        "cross_entropy_loss": '''
def cross_entropy_loss(logits, labels):
    z = np.asarray(logits, dtype=float)
    z = z - z.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(z)), labels].mean())
''',
        "cross_entropy_loss_grad": '''
def cross_entropy_loss_grad(logits, labels):
    z = np.asarray(logits, dtype=float)
    z = z - z.max(axis=1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    probs[np.arange(len(z)), labels] -= 1
    return probs / len(z)
''',
    },
    "loops": {
        "mse_loss": '''
import math

def mse_loss(pred, target):
    p = np.ravel(np.asarray(pred, dtype=np.float64))
    t = np.ravel(np.asarray(target, dtype=np.float64))
    total = 0.0
    for a, b in zip(p, t):
        total += (a - b) * (a - b)
    return total / len(p)
''',
        "mse_loss_grad": '''
def mse_loss_grad(pred, target):
    p = np.asarray(pred, dtype=np.float64)
    out = np.empty_like(p)
    n = p.size
    flat_p, flat_t, flat_o = p.reshape(-1), np.asarray(target, dtype=np.float64).reshape(-1), out.reshape(-1)
    for i in range(n):
        flat_o[i] = 2.0 * (flat_p[i] - flat_t[i]) / n
    return out
''',
        "cross_entropy_loss": '''
def _row_logsumexp(row):
    biggest = max(row)
    s = 0.0
    for v in row:
        s += math.exp(v - biggest)
    return biggest + math.log(s)

def cross_entropy_loss(logits, labels):
    rows = np.asarray(logits, dtype=np.float64)
    losses = []
    for i, row in enumerate(rows):
        losses.append(_row_logsumexp(row) - row[int(labels[i])])
    return sum(losses) / len(losses)
''',
        "cross_entropy_loss_grad": '''
def cross_entropy_loss_grad(logits, labels):
    rows = np.asarray(logits, dtype=np.float64)
    n = rows.shape[0]
    grad = np.zeros_like(rows)
    for i, row in enumerate(rows):
        lse = _row_logsumexp(row)
        for j in range(len(row)):
            grad[i, j] = math.exp(row[j] - lse) / n
        grad[i, int(labels[i])] -= 1.0 / n
    return grad
''',
    },
    "logaddexp": {
        "mse_loss": '''
def mse_loss(pred, target):
    d = np.subtract(pred, target, dtype=np.float64)
    return float(np.dot(d.ravel(), d.ravel()) / d.size)
''',
        "mse_loss_grad": '''
def mse_loss_grad(pred, target):
    d = np.subtract(pred, target, dtype=np.float64)
    return np.multiply(d, 2.0 / d.size)
''',
        "cross_entropy_loss": '''
def _one_hot(labels, classes):
    return np.eye(classes)[np.asarray(labels, dtype=np.int64)]

def cross_entropy_loss(logits, labels):
    z = np.asarray(logits, dtype=np.float64)
    lse = np.logaddexp.reduce(z, axis=1)
    picked = np.sum(z * _one_hot(labels, z.shape[1]), axis=1)
    return float(np.mean(lse - picked))
''',
        "cross_entropy_loss_grad": '''
def cross_entropy_loss_grad(logits, labels):
    z = np.asarray(logits, dtype=np.float64)
    soft = np.exp(z - np.logaddexp.reduce(z, axis=1)[:, None])
    return (soft - _one_hot(labels, z.shape[1])) / z.shape[0]
''',
    },
    "einsum": {
        "mse_loss": '''
def mse_loss(pred, target):
    residual = (np.asarray(pred, np.float64) - target).ravel()
    return float(np.einsum("i,i->", residual, residual) / residual.size)
''',
        "mse_loss_grad": '''
def mse_loss_grad(pred, target):
    residual = np.asarray(pred, np.float64) - target
    return residual * (2.0 / np.prod(residual.shape))
''',
        "cross_entropy_loss": '''
def log_softmax(z):
    shift = z - np.amax(z, axis=-1, keepdims=True)
    return shift - np.log(np.sum(np.exp(shift), axis=-1, keepdims=True))

def cross_entropy_loss(logits, labels):
    lp = log_softmax(np.asarray(logits, np.float64))
    idx = np.asarray(labels).astype(np.intp)[:, None]
    return float(-np.take_along_axis(lp, idx, axis=1).mean())
''',
        "cross_entropy_loss_grad": '''
def cross_entropy_loss_grad(logits, labels):
    lp = log_softmax(np.asarray(logits, np.float64))
    g = np.exp(lp)
    idx = np.asarray(labels).astype(np.intp)[:, None]
    np.put_along_axis(g, idx, np.take_along_axis(g, idx, axis=1) - 1.0, axis=1)
    return g / lp.shape[0]
''',
    },
    "explicit": {
        "mse_loss": '''
def mse_loss(pred, target):
    pred = np.array(pred, dtype=np.float64, copy=True)
    target = np.array(target, dtype=np.float64)
    squared = np.square(pred - target)
    return float(squared.sum() / squared.size)
''',
        "mse_loss_grad": '''
def mse_loss_grad(pred, target):
    n_elements = np.size(pred)
    return (np.array(pred, dtype=np.float64) - np.array(target, dtype=np.float64)) * 2 / n_elements
''',
        "cross_entropy_loss": '''
def cross_entropy_loss(logits, labels):
    logits = np.array(logits, dtype=np.float64)
    labels = np.array(labels, dtype=int)
    batch = logits.shape[0]
    row_max = np.max(logits, axis=1)
    shifted = logits - row_max.reshape(batch, 1)
    normalizer = row_max + np.log(np.sum(np.exp(shifted), axis=1))
    correct = logits[range(batch), labels]
    return float(np.sum(normalizer - correct) / batch)
''',
        "cross_entropy_loss_grad": '''
def cross_entropy_loss_grad(logits, labels):
    logits = np.array(logits, dtype=np.float64)
    batch, classes = logits.shape
    exps = np.exp(logits - np.max(logits, axis=1).reshape(batch, 1))
    softmax = exps / np.sum(exps, axis=1).reshape(batch, 1)
    target = np.zeros((batch, classes))
    target[range(batch), np.array(labels, dtype=int)] = 1.0
    return (softmax - target) / batch
''',
    },
    "masks": {
        "mse_loss": '''
def mse_loss(pred, target):
    return float(np.mean(np.power(np.asarray(pred, float) - np.asarray(target, float), 2)))
''',
        "mse_loss_grad": '''
def mse_loss_grad(pred, target):
    pred = np.asarray(pred, float)
    return (pred - np.asarray(target, float)) * (2 / pred.size)
''',
        "cross_entropy_loss": '''
def cross_entropy_loss(logits, labels):
    return float(np.mean(per_example_ce(np.asarray(logits, float), np.asarray(labels))))

def per_example_ce(z, y):
    m = z.max(1)
    return m + np.log(np.exp(z - m[:, np.newaxis]).sum(1)) - z[np.arange(z.shape[0]), y]
''',
        "cross_entropy_loss_grad": '''
def cross_entropy_loss_grad(logits, labels):
    z = np.asarray(logits, float)
    mask = np.arange(z.shape[1])[np.newaxis, :] == np.asarray(labels)[:, np.newaxis]
    e = np.exp(z - z.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True) - mask) / z.shape[0]
''',
    },
}

RENAMES = {"err": "residual_values", "z": "scores", "log_probs": "logp_matrix", "probs": "p_hat"}


def renamed_and_reformatted(style: dict[str, str]) -> dict[str, str]:
    """A copy: every local variable renamed, spacing and line breaks changed, a comment added."""
    out = {}
    for f, src in style.items():
        for old, new in RENAMES.items():
            src = re.sub(rf"\b{old}\b", new, src)
        src = src.replace("dtype=float", "dtype = float").replace(", ", " ,  ").replace("(axis=1", "( axis=1")
        src = src.replace("    return", "    # my result\n    return")
        out[f] = src.replace("\n", "\n\n", 1)
    return out


def reordered_with_comments(style: dict[str, str]) -> dict[str, str]:
    """A copy: the functions in other cells (reverse order), every line commented anew."""
    codes = [style[f] for f in FUNCS][::-1]
    out = {}
    for f, src in zip(FUNCS, codes):
        lines = []
        for line in src.splitlines():
            lines.append(line + ("  # computed step by step" if line.strip().startswith(("d =", "z =", "lse", "soft")) else ""))
        out[f] = "# my own derivation, see the chapter\n" + "\n".join(lines) + "\n"
    return out


def solution_style() -> dict[str, str]:
    nb = student_solution()
    return {c.metadata.nbgrader.grade_id: c.source for c in nb.cells
            if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") in FUNCS}


def class_of_students() -> dict[str, dict[str, str]]:
    students = {f"indep_{name}": code for name, code in STYLES.items()}
    students["indep_course_solution"] = solution_style()
    students["copy_renamed"] = renamed_and_reformatted(STYLES["vectorized"])
    students["copy_reordered"] = reordered_with_comments(STYLES["logaddexp"])
    return students


PLANTED = {("copy_renamed", "indep_vectorized"), ("copy_reordered", "indep_logaddexp")}


def notebook_bytes(code: dict[str, str]) -> bytes:
    return dumps(edit(exercise_notebook(), replace=code))


def write_class(root: str | Path, n: int | None = None) -> Path:
    """The planted class in nbgrader's layout; with ``n``, that many students (the styles repeated
    with students' own variable names: a class-sized input for timing)."""
    root = Path(root)
    students = class_of_students()
    if n:
        base = list(students.items())
        students = {}
        for i in range(n):
            name, code = base[i % len(base)]
            suffix = f"_{i}"
            students[f"s{i:03d}_{name}"] = {f: re.sub(r"\b(err|z|d|lp|g|e|m|rows|grad|total|residual)\b",
                                                      lambda m: m.group(1) + suffix, src) for f, src in code.items()}
    for sid, code in students.items():
        folder = root / sid / ASSIGNMENT
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{ASSIGNMENT}.ipynb").write_bytes(notebook_bytes(code))
    return root


@pytest.mark.parametrize("name", sorted(class_of_students()))
def test_every_student_is_correct(name):
    """The independent solutions and the copies all pass every test, hidden cases included."""
    ns = {"np": np}
    for src in class_of_students()[name].values():
        exec(compile(src, name, "exec"), ns)
    tests = load_tests(ASSIGNMENT)
    for tid in FUNCS:
        v = run_test(tests[tid], LocalStudent(ns), seed=7, hidden=True)
        assert v.passed, (name, tid, v.message)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("similarity")
    subs = write_class(tmp / "submitted")
    # the released stub, a corrupt notebook and an unchanged template: reported, not compared
    (subs / "stub_only" / ASSIGNMENT).mkdir(parents=True)
    (subs / "stub_only" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").write_bytes(dumps(exercise_notebook()))
    (subs / "corrupt" / ASSIGNMENT).mkdir(parents=True)
    (subs / "corrupt" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").write_bytes(b'{"cells": [')
    r = subprocess.run([sys.executable, "-m", "autograde", "similarity", "--submissions", str(subs), "--out",
                        str(tmp / "out"), "--threshold", "0.5"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    with open(tmp / "out" / "similarity.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {"rows": rows, "html": (tmp / "out" / "similarity.html").read_text(), "stdout": r.stdout, "subs": subs}


def _pair(row) -> tuple[str, str]:
    return tuple(sorted((row["student_a"], row["student_b"])))


def test_planted_pairs_rank_first_and_independent_pairs_stay_below(report):
    rows = report["rows"]
    print("\n".join(f"{r['rank']:>3} {r['score']} {r['student_a']} {r['student_b']}" for r in rows[:12]))
    assert {_pair(r) for r in rows[:2]} == PLANTED
    for r in rows:
        if _pair(r) in PLANTED:
            assert float(r["score"]) >= 0.5 and r["above_threshold"] == "1", r
        else:
            assert float(r["score"]) < 0.5 and r["above_threshold"] == "0", r
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    n = len(class_of_students())
    assert len(rows) == n * (n - 1) // 2  # every pair of the students with code of their own


def test_template_and_unreadable_notebooks_are_not_compared(report):
    names = {r["student_a"] for r in report["rows"]} | {r["student_b"] for r in report["rows"]}
    assert "stub_only" not in names and "corrupt" not in names
    assert "stub_only (no code of their own)" in report["html"]
    assert "corrupt (loss_functions.ipynb unreadable" in report["html"]


def test_own_code_removes_the_template():
    from autograde.paths import EXERCISES
    from autograde.platforms.similarity import own_code, read_cells, template

    tpl = template(sorted((EXERCISES / ASSIGNMENT).glob("*.ipynb")))
    assert own_code(read_cells(EXERCISES / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"), tpl) == ""
    import json

    cells = json.loads(notebook_bytes(STYLES["vectorized"]))["cells"]
    code = own_code(cells, tpl)
    assert "err = np.asarray" in code and "raise NotImplementedError" not in code
    assert "check(" not in code and "from autograde" not in code and '"""' not in code


def test_html_report(report):
    html = report["html"]
    assert "Similarity is a reason to look, not a verdict" in html
    assert html.count('class="pair"') == 2  # the two planted pairs, side by side
    first = html.index("copy_renamed") if html.index("copy_renamed") < html.index("copy_reordered") else None
    assert first is not None or html.index("copy_reordered") < html.index("copy_renamed")
    assert "<mark>" in html and "residual_values" in html and "my own derivation" in html
    assert "Top " in html and "pair(s) at or above the threshold" in html


def test_threshold_and_usage(report, tmp_path):
    r = subprocess.run([sys.executable, "-m", "autograde", "similarity", "--submissions", str(report["subs"]), "--out",
                        str(tmp_path / "o"), "--threshold", "0.0"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "o" / "similarity.csv", newline="") as f:
        assert all(row["above_threshold"] == "1" for row in csv.DictReader(f))
    for args, phrase in [(["--threshold", "2"], "--threshold"), (["--assignment", "nope"], "unknown assignment")]:
        r = subprocess.run([sys.executable, "-m", "autograde", "similarity", "--submissions", str(report["subs"]),
                            "--out", str(tmp_path / "x"), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and phrase in r.stderr and "Traceback" not in r.stderr, r.stderr
