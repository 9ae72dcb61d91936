"""`python -m autograde grade`: the batch, in three steps that each write their own files once.

* plan (:func:`_plan`): the submissions (``--assignment``, ``--student`` narrow them), the plans
  from the solution notebooks, and per submission either a job or a result to reuse: same
  notebooks and seed give the same key, and a reused result is only rescored (points or the
  dependent-failure policy changed: :func:`.scoring.rescore`), no student code runs;
* run (:func:`_run`): the jobs in parallel (a process pool, or a Dask cluster through the same
  executor interface), each result JSON written as it arrives, so a killed run resumes;
* publish (:mod:`.publish`): gradebook, CSVs, feedback, report, LMS export from every result in
  OUT; then ``run.json``, the run's own record (counts, seconds per step, the gradebook's included).
"""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..notebook import namespace_of
from ..paths import ROOT, UsageError, assignments, solution_notebooks
from . import isolation, refcache
from . import results as R
from .grader import job_seed, make_plan, safe_grade_job, secret_label, submission_key
from .publish import DEFAULT_DEADLINES
from .records import GraderError, Job, Limits, Result
from .scoring import DEFAULT_POLICY, POLICIES, after_of, as_scored, rescore
from .submissions import read_files, read_notebooks

DEFAULT_SECRET = ROOT / ".autograde" / "secret"  # git-ignored; see the README on keeping it

SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.I)


def parse_size(text: str) -> int:
    """'4G', '4GiB', '512M', '1073741824' -> bytes (powers of 1024)."""
    m = SIZE.match(str(text))
    if not m:
        raise UsageError(f"--memory: not a size: {text!r} (use e.g. 4G, 512M)")
    value = float(m.group(1)) * 1024 ** " kmgt".index((m.group(2) or " ").lower())
    if value < 64 * 2**20:
        raise UsageError(f"--memory: {text} is too small (at least 64M; the interpreter alone maps ~0.7G)")
    return int(value)


# ---------------------------------------------------------------------------------------------
# Discovery
# ---------------------------------------------------------------------------------------------
def discover(submissions: Path, only: list[str] | None) -> tuple[list[str], list[str], list[str]]:
    """(students, assignments to grade, unknown assignment folders as 'student/folder')."""
    if not submissions.is_dir():
        raise UsageError(f"submissions folder not found: {submissions}")
    known = set(assignments())
    if only:
        for a in only:
            if a not in known:
                raise UsageError(f"unknown assignment {a!r}; known: {', '.join(sorted(known)) or 'none'}")
    students = sorted(p.name for p in submissions.iterdir()
                      if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))
    seen, unknown = set(), []
    for s in students:
        for a in sorted(p.name for p in (submissions / s).iterdir() if p.is_dir() and not p.name.startswith(".")):
            if a in known:
                seen.add(a)
            else:
                unknown.append(f"{s}/{a}")
    todo = sorted(only) if only else sorted(seen)
    return students, todo, unknown


# ---------------------------------------------------------------------------------------------
# Workers
# ---------------------------------------------------------------------------------------------
def _worker_init(grader: int) -> None:
    """A pool worker: die with the grader; references on one thread (the pool is the parallelism)."""
    isolation.die_with_parent(grader)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


def _executor(workers: int, dask: str | None):
    if dask:
        try:
            from dask.distributed import Client
        except ImportError as exc:
            raise UsageError(f"--dask needs dask.distributed ({exc})") from None
        try:
            client = Client(dask, timeout=30)
        except Exception as exc:  # noqa: BLE001
            raise UsageError(f"--dask: cannot connect to {dask} ({type(exc).__name__}: {exc})") from None
        return client.get_executor(pure=False), client
    ctx = multiprocessing.get_context("spawn")  # torch in the parent: never fork it
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init, initargs=(os.getpid(),)), None


def course_secret(path: Path) -> bytes:
    """The course secret that seeds grading when no ``--seed`` is given: read from ``path``, or
    made there (32 random bytes, hex, mode 0600) on first use."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        text = os.urandom(32).hex()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")
    except OSError as exc:
        raise UsageError(f"--secret-file {path}: cannot be read ({exc.strerror})") from None
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        raise UsageError(f"--secret-file {path}: not a hex secret") from None
    if len(secret) < 16:
        raise UsageError(f"--secret-file {path}: a secret needs at least 16 bytes (32 hex digits)")
    return secret


# ---------------------------------------------------------------------------------------------
# The batch: plan -> run -> publish
# ---------------------------------------------------------------------------------------------
@dataclass
class Batch:
    """What a run grades, decided before any student code runs."""

    students: list[str]
    assignments: list[str]
    plans: dict  # assignment -> plan (with the solution cells, for the gradebook)
    jobs: list[Job] = field(default_factory=list)  # to grade now
    reused: list[tuple[str, str]] = field(default_factory=list)  # graded before, same notebooks and seed
    rescored: list[tuple[str, str]] = field(default_factory=list)  # of those: points or policy changed


def grade(submissions: str | Path, out: str | Path, *, workers: int = 2, timeout: float = Limits.timeout,
          cell_timeout: float | None = None, memory: int = Limits.memory, dask: str | None = None,
          seed: int | None = None, secret_file: str | Path | None = None, budget: float | None = None,
          only: list[str] | None = None, students: list[str] | None = None, force: bool = False,
          progress: bool = True, gradebook: str | None = None, precompute_references: bool = False,
          isolate: bool = True, policy: str | None = None, deadlines: str | Path | None = DEFAULT_DEADLINES,
          downloaded: str | Path | None = None, lms: str | None = None, log=None) -> int:
    """``policy`` and ``lms`` not given: the last run's in OUT (``run.json``), else the defaults."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    submissions, out = Path(submissions), Path(out)
    last = R.read_json(out / "run.json") or {}
    policy = policy or last.get("policy") or DEFAULT_POLICY
    lms = lms or last.get("lms") or "canvas"
    _check_usage(isolate, dask, workers, timeout, policy, log)
    t_start = time.perf_counter()
    batch, seed_label = _plan(submissions, out, only, students, force, seed, secret_file, policy,
                              Limits(timeout=float(timeout), cell_timeout=cell_timeout, memory=int(memory), budget=budget), isolate, log)
    if precompute_references and batch.jobs:
        batch.jobs = _precompute(batch.jobs, batch.plans)

    gb_target = gradebook or f"sqlite:///{(out / 'gradebook.db').resolve()}"
    errors = []
    if batch.jobs:
        errors = _run(batch.jobs, out, workers, dask, progress, log, policy, batch.plans,
                      during=lambda: _prepare_outputs(gb_target))
    t_grade = time.perf_counter() - t_start

    pairs = {(s, a) for s in batch.students for a in batch.assignments}
    missing = sorted(f"{s}/{a}" for s, a in pairs if not isinstance(R.read_record(R.result_path(out, s, a)), Result))
    # Everything in OUT is published: grading one --assignment or --student keeps the rows, pages
    # and exports of the others graded before.
    every = R.all_results(out, set(assignments()), log=log)
    plans = {a: batch.plans.get(a) or make_plan(a) for a in {r.assignment for r in every}}
    from .publish import Publishing, publish

    seconds = publish(out, every, plans, batch.students, Publishing(
        gradebook=gb_target, submissions=submissions, deadlines=Path(deadlines) if deadlines else None,
        downloaded=Path(downloaded) if downloaded else None, lms=lms), log=log)
    summary = {"graded_now": len(batch.jobs) - len(errors), "reused": len(batch.reused), "rescored": len(batch.rescored),
               "errors": errors, "seconds": {"grading": t_grade, **seconds, "total": time.perf_counter() - t_start},
               "workers": workers, "dask": dask or "", "seed": seed_label, "timeout": timeout, "memory": memory,
               "policy": policy, "lms": lms, "submissions": str(submissions.resolve()), "students": students or []}
    R.write_json_atomic(out / "run.json", summary)
    flagged = sum(1 for r in every if r.flags)
    log(f"autograde grade: {len(every)} submission(s) in {out}/grades.csv ({flagged} flagged), "
        f"{len(batch.jobs) - len(errors)} graded now in {t_grade:.1f} s")
    if missing:
        log(f"autograde grade: NOT graded (grader errors; rerun to retry): {', '.join(missing)}")
        return 1
    return 0


def _check_usage(isolate: bool, dask: str | None, workers, timeout, policy: str, log) -> None:
    if isolate and not dask:
        why = isolation.problem()
        if why:
            raise UsageError(f"cannot isolate student code here: {why}. Fix that, or pass --no-isolation to grade "
                             f"without a sandbox (student code then runs as your user: it can read solutions/ and "
                             f"the gradebook, change results and reach the network)")
    if not isolate:
        log("autograde grade: --no-isolation: student code runs unsandboxed as this user and can read or change "
            "anything this user can (solutions, other results); grade only code you trust this way")
    if workers is None or int(workers) < 1:
        raise UsageError(f"--workers must be at least 1 (got {workers})")
    if timeout is None or float(timeout) <= 0:
        raise UsageError(f"--timeout must be positive (got {timeout})")
    if policy not in POLICIES:
        raise UsageError(f"--dependent-failures must be one of {', '.join(POLICIES)} (got {policy!r})")


def _plan(submissions: Path, out: Path, only, students, force: bool, seed, secret_file, policy: str, limits: Limits,
          isolate: bool, log) -> tuple[Batch, str | int]:
    """The batch: which submissions to grade, which results to reuse (rescored, and rewritten,
    when only the points or the policy changed: no student code runs for them)."""
    found, todo, unknown = discover(submissions, only)
    for u in unknown:
        log(f"autograde grade: skipping {u}: not an assignment of this course (known: {', '.join(assignments())})")
    if not todo:
        raise UsageError(f"no submissions of a known assignment under {submissions} "
                         f"(expected <student_id>/<assignment>/<notebook>.ipynb)")
    if students:
        absent = [s for s in students if s not in found]
        if absent:
            raise UsageError(f"--student {absent[0]}: no folder {submissions / absent[0]}")
        found = sorted(set(students))
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    for stale in (out / "results").glob("*/.*.tmp"):  # a run killed while writing a result
        stale.unlink(missing_ok=True)
    if seed is None:
        secret = course_secret(Path(secret_file) if secret_file else DEFAULT_SECRET)
        seed_label, secret_hex = secret_label(secret), secret.hex()
    else:
        seed_label, secret_hex = int(seed), None
    plans = {a: make_plan(a) for a in todo}
    afters = {a: after_of(a) for a in todo}
    batch = Batch(found, todo, plans)
    for student in found:
        for a in todo:
            nbs, unsafe = read_notebooks(submissions / student / a)
            key = submission_key(seed_label, plans[a], nbs)
            path = R.result_path(out, student, a)
            old = R.read_record(path)
            if (not force and isinstance(old, Result)
                    and old.key in (key, submission_key(seed_label, as_scored(plans[a], old), nbs))):
                batch.reused.append((student, a))  # the same notebooks and seed; the points may differ
                new = replace(rescore(old, plans[a], policy, afters[a]), key=key)
                if new != old:
                    R.write_json_atomic(path, new.to_json())
                    batch.rescored.append((student, a))
                continue
            batch.jobs.append(Job(student_id=student, assignment=a, plan=plans[a].slim(), notebooks=nbs,
                                  files=read_files(submissions / student / a, known=nbs), key=key, limits=limits,
                                  seed_base=None if secret_hex else seed_label, secret=secret_hex, hidden=True,
                                  isolate=isolate, unsafe=tuple(unsafe)))
    if batch.reused:
        log(f"autograde grade: {len(batch.reused)} submission(s) already graded in {out} (same notebooks and seed); "
            f"grading the other {len(batch.jobs)}"
            + (f"; {len(batch.rescored)} rescored (points or policy changed), no code run" if batch.rescored else ""))
    return batch, (seed_label if secret_hex is None else "secret")


def _prepare_outputs(gb_target: str) -> None:
    """Best effort: a failure here shows up, with its message, when sync/report run."""
    try:
        from . import gradebook as G

        G.prepare(gb_target)
        from . import report  # noqa: F401

        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401
    except Exception:  # noqa: BLE001
        pass


def _precompute(jobs: list[Job], plans: dict) -> list[Job]:
    """The jobs with the reference values of their seeds, computed here (GPU when present) by the solution."""
    spaces, out = {}, []
    for job in jobs:
        a = job.assignment
        refs = {}
        for nb in plans[a].notebooks:
            if (a, nb.name) not in spaces:
                path = next(p for p in solution_notebooks(a) if p.name == nb.name)
                with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
                    spaces[(a, nb.name)] = namespace_of(path)
            seed = job_seed(job, nb.name)
            refs[str(seed)] = refcache.precompute(a, [t for t, _ in nb.tests], seed, spaces[(a, nb.name)])
        out.append(job.with_references(refs))
    return out


def _run(jobs: list[Job], out: Path, workers: int, dask: str | None, progress: bool, log, policy: str, plans: dict,
         during=None) -> list[str]:
    """Grade `jobs` on the pool (or Dask), writing each result (scored under `policy`) as it
    arrives; `during()` runs in a thread while the workers grade."""
    from tqdm import tqdm

    executor, client = _executor(workers, dask)
    errors: list[str] = []
    bar = tqdm(total=len(jobs), desc="grading", unit="submission", disable=not progress, file=sys.stderr,
               dynamic_ncols=True)
    helper = None
    try:
        futures = {executor.submit(safe_grade_job, job): job for job in jobs}
        # Only now, with this thread's imports done and the workers started: two threads importing
        # the same package at once can see it half-initialised (a spurious "No module named ...").
        # Dask's client imports lazily in its own thread, so with --dask `during` runs afterwards.
        if during is not None and client is None:
            helper = threading.Thread(target=during, daemon=True)
            helper.start()
        for fut in cf.as_completed(futures):
            job = futures[fut]
            label = f"{job.student_id}/{job.assignment}"
            try:
                data = fut.result()
                res = GraderError.from_json(data) if "grader_error" in data else Result.from_json(data)
            except Exception as exc:  # noqa: BLE001 - a worker died: that submission is retried next run
                res = GraderError(job.student_id, job.assignment, f"{type(exc).__name__}: {exc}")
            if isinstance(res, GraderError):
                errors.append(f"{label}: {res.grader_error}")
                log(f"autograde grade: grader error on {label}: {res.grader_error}")
            else:
                res = rescore(res, plans[job.assignment], policy)
                R.write_json_atomic(R.result_path(out, job.student_id, job.assignment), res.to_json())
                if res.flags:
                    bar.set_postfix_str(f"{label}: {';'.join(res.flags)}", refresh=False)
            bar.update(1)
    finally:
        bar.close()
        if client is None:
            executor.shutdown(wait=True, cancel_futures=True)
        else:  # dask's executor has no cancel_futures
            executor.shutdown(wait=True)
        if client is not None:
            client.close()
    if helper is not None:
        helper.join()
    elif during is not None:
        during()
    return errors


__all__ = ["grade", "parse_size"]
