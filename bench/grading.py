"""Grading throughput: the same submissions graded by plain `nbgrader autograde` (serial, tests in
the student's kernel) and by `python -m autograde grade --workers 1` and `--workers 2` (isolated
student processes), side by side in one run; where the grader's time goes, from its timing record.

    python -m bench grading [--n 40] [--skip-nbgrader]

The submissions are realistic and reproducible: for every assignment, correct answers (the
solution notebooks), the unmodified released stub, mistakes from the test suite's catalog
(tests/catalog/, a mistake's code written into the cell that defines the function, as a student
would) and a slow, loop-based but correct answer.
"""
from __future__ import annotations

import argparse
import csv
import importlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autograde.grading.results import all_results
from autograde.paths import assignments

from .machine import markdown_table, save

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# Correct but slow: element- or column-wise Python loops where the solution is vectorized.
SLOW = {
    "loss_functions": '''
def mse_loss(pred, target):
    total = 0.0
    for p, t in zip(np.ravel(pred), np.ravel(target)):
        total += (float(p) - float(t)) ** 2
    return total / np.size(pred)
''',
    "gradient_descent": '''
def minibatch_indices(n, batch_size, rng):
    perm = rng.permutation(n)
    batches = []
    for start in range(0, n, batch_size):
        batch = []
        for j in range(start, min(start + batch_size, n)):
            batch.append(perm[j])
        batches.append(np.array(batch, dtype=perm.dtype))
    return batches
''',
    "batch_norm": '''
def batchnorm_forward(x, gamma, beta, bn_param):
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.1)
    n, d = x.shape
    running_mean = bn_param.get("running_mean", np.zeros(d, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.ones(d, dtype=x.dtype))
    out = np.empty_like(x)
    if mode == "train":
        mu, var = np.empty(d, dtype=x.dtype), np.empty(d, dtype=x.dtype)
        for j in range(d):  # one feature at a time
            mu[j] = x[:, j].mean()
            var[j] = ((x[:, j] - mu[j]) ** 2).mean()
        xc = x - mu
        inv_std = 1.0 / np.sqrt(var + eps)
        xhat = xc * inv_std
        for j in range(d):
            out[:, j] = gamma[j] * xhat[:, j] + beta[j]
        bn_param["running_mean"] = (1 - momentum) * running_mean + momentum * mu
        bn_param["running_var"] = (1 - momentum) * running_var + momentum * var * n / (n - 1)
        return out, (xc, var, eps, inv_std, xhat, gamma)
    if mode == "eval":
        for j in range(d):
            out[:, j] = gamma[j] * (x[:, j] - running_mean[j]) / np.sqrt(running_var[j] + eps) + beta[j]
        return out, None
    raise ValueError(f"bn_param['mode'] must be 'train' or 'eval', not {mode!r}")
''',
    "optimizers": '''
class RMSprop:
    def __init__(self, params, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
        for value in (lr, eps, momentum, weight_decay, alpha):
            if not 0.0 <= value:
                raise ValueError(f"Invalid value: {value}")
        self.params, self.lr, self.alpha, self.eps = params, lr, alpha, eps
        self.weight_decay, self.momentum, self.centered = weight_decay, momentum, centered
        self.state = [(np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)) for p in params]

    def step(self, grads):
        for p, g, (s, m, b) in zip(self.params, grads, self.state):
            ps, gs, ss, ms, bs = p.reshape(-1), np.reshape(g, -1), s.reshape(-1), m.reshape(-1), b.reshape(-1)
            for j in range(ps.size):  # one coordinate at a time
                gj = gs[j] + self.weight_decay * ps[j]
                ss[j] = self.alpha * ss[j] + (1 - self.alpha) * gj * gj
                v = ss[j]
                if self.centered:
                    ms[j] = self.alpha * ms[j] + (1 - self.alpha) * gj
                    v = v - ms[j] ** 2
                if self.momentum > 0:
                    bs[j] = self.momentum * bs[j] + gj / (np.sqrt(v) + self.eps)
                    ps[j] -= self.lr * bs[j]
                else:
                    ps[j] -= self.lr * gj / (np.sqrt(v) + self.eps)
''',
    "normalization": '''
def layernorm_forward(x, gamma, beta, ln_param):
    eps = ln_param.get("eps", 1e-5)
    n, d = x.shape
    out, xhat, inv_std = np.empty_like(x), np.empty_like(x), np.empty((n, 1), dtype=x.dtype)
    for i in range(n):  # one example at a time
        mu = x[i].mean()
        inv_std[i] = 1.0 / np.sqrt(((x[i] - mu) ** 2).mean() + eps)
        xhat[i] = (x[i] - mu) * inv_std[i]
        out[i] = gamma * xhat[i] + beta
    return out, (xhat, inv_std, gamma)
''',
}


def mistakes(assignment: str) -> list:
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        return list(importlib.import_module(f"catalog.{assignment}").MISTAKES)
    finally:
        sys.path.remove(str(ROOT / "tests"))


def with_code(notebooks: dict[str, dict], code: str) -> dict[str, dict]:
    """The notebooks with ``code`` appended to the cell that defines the first function or class
    it defines: where a student edits, so that the notebook's own tests run it too."""
    name = re.search(r"^(?:def|class)\s+(\w+)", code, re.M).group(1)
    pattern = re.compile(rf"^(?:def|class)\s+{name}\b", re.M)
    out = json.loads(json.dumps(notebooks))
    for nb in out.values():
        for cell in nb["cells"]:
            src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            if cell["cell_type"] == "code" and pattern.search(src):
                cell["source"] = src.rstrip() + "\n\n" + code.strip() + "\n"
                return out
    raise ValueError(f"no cell defines {name}")


def make_submissions(folder: Path, n: int) -> list[dict]:
    """``n`` submissions in nbgrader's submitted layout: each student submits every assignment
    in turn (the last one may have submitted only some)."""
    from autograde.paths import exercise_notebooks, solution_notebooks

    def load(paths):
        return {p.name: json.loads(p.read_text()) for p in paths}

    plans = {}
    for a in assignments():
        solution = load(solution_notebooks(a))
        kinds = [("correct", solution), ("stub", load(exercise_notebooks(a))), ("slow", with_code(solution, SLOW[a]))]
        kinds += [(f"buggy:{m.name}", with_code(solution, m.code)) for m in mistakes(a)]
        # correct answers are the commonest kind in a real class: one in three
        order = []
        for i, k in enumerate(kinds[1:]):
            if i % 2 == 0:
                order.append(kinds[0])
            order.append(k)
        plans[a] = order
    subs, names, i = [], list(plans), 0
    while len(subs) < n:
        a = names[i % len(names)]
        kind, notebooks = plans[a][(i // len(names)) % len(plans[a])]
        student = f"s{i // len(names) + 1:02d}"
        dest = folder / student / a
        dest.mkdir(parents=True)
        for name, nb in notebooks.items():
            (dest / name).write_text(json.dumps(nb, indent=1))
        subs.append({"student_id": student, "assignment": a, "kind": kind})
        i += 1
    return subs


def run(cmd: list[str], cwd: Path, env: dict | None = None) -> tuple[float, float]:
    """Run ``cmd``; (wall seconds, CPU seconds of it and every descendant that was reaped)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        sys.exit(f"bench grading: {' '.join(cmd[:4])} failed:\n{(r.stdout + r.stderr)[-3000:]}")
    return dt, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def plain_nbgrader(tmp: Path, submitted: Path, subs: list[dict]) -> tuple[float, dict]:
    """Serial `nbgrader autograde` per assignment, as nbgrader runs it; returns (seconds, scores)."""
    from nbgrader.api import Gradebook

    course = tmp / "nbgrader"
    shutil.copytree(ROOT / "solutions", course / "source")
    shutil.copytree(submitted, course / "submitted")
    db = f"sqlite:///{course / 'gradebook.db'}"
    common = [f"--CourseDirectory.root={course}", f"--CourseDirectory.db_url={db}", "--log-level=ERROR"]
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(course), "MPLBACKEND": "Agg"}
    todo = sorted({s["assignment"] for s in subs})
    for a in todo:  # setup, not timed: the gradebook needs the assignment
        run([str(BIN / "nbgrader"), "generate_assignment", a, "--force", *common], course, env)
    seconds = sum(run([str(BIN / "nbgrader"), "autograde", a, *common], course, env)[0] for a in todo)
    scores = {}
    with Gradebook(db) as gb:
        for s in subs:
            sub = gb.find_submission(s["assignment"], s["student_id"])
            scores[(s["student_id"], s["assignment"])] = sum(
                g.auto_score or 0.0 for nb in sub.notebooks for g in nb.grades if g.auto_score is not None)
    return seconds, scores


def hardened(tmp: Path, submitted: Path, workers: int) -> tuple[float, float, Path]:
    """(wall seconds, CPU seconds, output folder) of one `autograde grade` run."""
    out = tmp / f"graded-w{workers}"
    cmd = [sys.executable, "-m", "autograde", "grade", "--submissions", str(submitted), "--out", str(out),
           "--workers", str(workers), "--no-progress"]
    return (*run(cmd, ROOT), out)


def breakdown(out: Path) -> dict[str, float]:
    """Seconds summed over all submissions, by where the time went (the grader's timing record)."""
    keys = ["zygote_start_s", "process_start_s", "parse_s", "cells_s"]
    tot = dict.fromkeys([*keys, "student_calls_s", "reference_and_compare_s", "gradebook_s", "job_total_s"], 0.0)
    tot["gradebook_s"] = json.loads((out / "run.json").read_text())["seconds"].get("gradebook", 0.0)
    for r in all_results(out, set(assignments())):
        tot["job_total_s"] += r.timing["total_s"]
        for nb in r.notebooks:
            for k in keys:
                tot[k] += nb.timing.get(k, 0.0)
            for t in nb.tests:
                tot["student_calls_s"] += t.timing.get("student_s", 0.0)
                tot["reference_and_compare_s"] += t.timing.get("grader_s", 0.0)
    return tot


def grades(out: Path) -> dict:
    """(student, assignment) -> score, from grades.csv."""
    with open(out / "grades.csv") as fh:
        return {(r["student_id"], r["assignment"]): float(r["score"]) for r in csv.DictReader(fh)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench grading", description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40, help="number of submissions (default 40)")
    ap.add_argument("--skip-nbgrader", action="store_true", help="leave out plain nbgrader autograde")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as t:
        tmp = Path(t)
        submitted = tmp / "submitted"
        subs = make_submissions(submitted, args.n)
        nbg_s, nbg_scores = (None, {}) if args.skip_nbgrader else plain_nbgrader(tmp, submitted, subs)
        w1_s, w1_cpu, out1 = hardened(tmp, submitted, 1)
        w2_s, w2_cpu, out2 = hardened(tmp, submitted, 2)
        parts = breakdown(out1)
        # Outside the jobs (run.json): before grading starts (interpreter, imports, plans) and after
        # the last job (CSVs, feedback, report, the rest of the gradebook).
        run1 = json.loads((out1 / "run.json").read_text())["seconds"]
        outside = {"cli_startup_and_imports_s": w1_s - run1["total"],
                   "worker_start_and_result_writes_s": run1["grading"] - parts["job_total_s"],
                   "csv_feedback_report_gradebook_s": run1["total"] - run1["grading"]}
        # grades.csv also lists each student's other assignments (flag `missing`): keep what was submitted
        keys = [(s["student_id"], s["assignment"]) for s in subs]
        g1, g2 = ({k: g[k] for k in keys} for g in (grades(out1), grades(out2)))
    n = len(subs)
    kinds = {}
    for s in subs:
        kinds[s["kind"].split(":")[0]] = kinds.get(s["kind"].split(":")[0], 0) + 1
    # What the student's code itself computed: its cells and the calls into it.
    student_s = parts["cells_s"] + parts["student_calls_s"]
    overhead = (w1_s - student_s) / n
    rows = []
    if nbg_s is not None:
        rows.append(["plain nbgrader autograde (serial)", nbg_s, nbg_s / n, 1.0])
    for label, s in (("autograde grade --workers 1", w1_s), ("autograde grade --workers 2", w2_s)):
        rows.append([label, s, s / n, (nbg_s / s) if nbg_s else "-"])
    table = markdown_table(["grader", "seconds", "s / submission", "speed-up vs nbgrader"], rows)
    where = markdown_table(["where the time goes (--workers 1, summed over submissions)", "seconds", "s / submission"],
                           [[k, v, v / n] for k, v in {**parts, **outside}.items()])
    where += ("\n\njob_total_s is the jobs' wall time; the rows above it but gradebook_s are its parts (cells_s "
              "and student_calls_s the student's code, the others the grader's; the rest is closing the "
              "student processes). The last three rows are once per run: this wall time minus the jobs.")
    goals = [f"1 -> 2 workers: {w1_s / w2_s:.2f}x (goal >= 1.7: {'met' if w1_s / w2_s >= 1.7 else 'NOT met'})",
             f"grader overhead per submission (wall of --workers 1 minus student compute, / n): {overhead:.3f} s "
             f"(goal <= 0.5: {'met' if overhead <= 0.5 else 'NOT met'})"]
    # The most 2 workers can gain on this machine: all its cores busy with the CPU work the 2-worker run
    # did, against the wall time of 1 worker (which already keeps more than one core busy: the main
    # process and the student process overlap the worker).
    cores = os.cpu_count() or 1
    bound = w1_s / (w2_cpu / cores)
    goals.append(f"CPU seconds the grader's process tree accounts (its own and its workers'; the sandboxed servers and "
                 f"student processes are reaped inside their PID namespace, so not all of theirs is counted: the figures "
                 f"below are lower bounds): --workers 1 {w1_cpu:.1f} s over {w1_s:.1f} s "
                 f"wall ({w1_cpu / w1_s:.2f} cores busy), --workers 2 {w2_cpu:.1f} s over {w2_s:.1f} s "
                 f"({w2_cpu / w2_s:.2f} cores busy); with all {cores} cores busy on that CPU work, "
                 f"1 -> 2 workers could reach at most {bound:.2f}x (an upper bound, since the CPU is undercounted)")
    if nbg_s is not None:
        goals.insert(0, f"--workers 2 vs plain nbgrader: {nbg_s / w2_s:.2f}x (goal >= 3: {'met' if nbg_s / w2_s >= 3 else 'NOT met'})")
    same = sum(g1[k] == g2[k] for k in g1)
    agree = [f"--workers 1 and --workers 2 give the same score on {same}/{len(g1)} submissions."]
    if nbg_scores:
        diff = [f"{k[0]}/{k[1]} ({next(s['kind'] for s in subs if (s['student_id'], s['assignment']) == k)}): "
                f"nbgrader {nbg_scores[k]:g}, grade {g1[k]:g}" for k in keys if nbg_scores.get(k) != g1[k]]
        agree.append(f"plain nbgrader and `grade` agree on {len(g1) - len(diff)}/{len(g1)} submissions"
                     + (": differ on " + "; ".join(diff) if diff else "."))
    mix = ", ".join(f"{v} {k}" for k, v in sorted(kinds.items()))
    text = (f"{n} submissions ({mix}) over {len(set(s['assignment'] for s in subs))} assignments.\n\n"
            f"{table}\n\n{where}\n\n" + "\n".join(f"- {g}" for g in goals + agree) + "\n")
    save("grading", {
        "n": n, "kinds": kinds, "submissions": subs, "nbgrader_s": nbg_s, "workers1_s": w1_s, "workers2_s": w2_s,
        "workers1_cpu_s": w1_cpu, "workers2_cpu_s": w2_cpu, "speedup_bound": bound,
        "breakdown_workers1_s": {**parts, **outside}, "overhead_per_submission_s": overhead,
        "nbgrader_scores": {f"{k[0]}/{k[1]}": v for k, v in nbg_scores.items()},
        "grade_scores": {f"{k[0]}/{k[1]}": v for k, v in g1.items()},
    }, text)
    return 0
