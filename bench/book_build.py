"""Book build time: a cold executed build (empty cache) and a warm rebuild with nothing changed,
in a scratch copy of the book so the working _build/ is untouched; per-page execution seconds
from the execution cache.

    python -m bench book
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .machine import markdown_table, save

ROOT = Path(__file__).resolve().parents[1]


def build(work: Path) -> float:
    jb = Path(sys.executable).with_name("jupyter-book")
    t0 = time.perf_counter()
    r = subprocess.run([str(jb), "build", str(work), "-W", "-n", "--keep-going"], capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode:
        sys.exit(f"bench book: build failed:\n{(r.stdout + r.stderr)[-3000:]}")
    return dt


def page_times(work: Path) -> dict[str, float]:
    from jupyter_cache import get_cache

    cache = get_cache(work / "_build" / ".jupyter_cache")
    out = {}
    for rec in cache.list_project_records():
        uri = Path(rec.uri).relative_to(work).as_posix()
        cached = cache.get_cached_project_nb(rec.uri)
        if cached is not None:
            out[uri] = float(cached.data.get("execution_seconds", float("nan")))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench book", description=__doc__.splitlines()[0])
    ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-book-") as tmp:
        work = Path(tmp)
        for name in ("_config.yml", "_toc.yml"):
            shutil.copy(ROOT / name, work / name)
        shutil.copytree(ROOT / "book", work / "book", ignore=shutil.ignore_patterns("_cache"))
        # the instructors page includes bench/results/grading.json (a literalinclude)
        shutil.copytree(ROOT / "bench" / "results", work / "bench" / "results",
                        ignore=shutil.ignore_patterns("*.tmp"))
        cold = build(work)
        warm = build(work)
        pages = page_times(work)
    rows = [["cold build (empty cache)", cold], ["warm rebuild (nothing changed)", warm]]
    rows += [[f"execution of {p}", s] for p, s in sorted(pages.items(), key=lambda kv: -kv[1])]
    table = markdown_table(["what", "seconds"], rows)
    goals = f"\nGoals: cold <= 360 s ({'met' if cold <= 360 else 'NOT met'}), warm <= 15 s ({'met' if warm <= 15 else 'NOT met'}).\n"
    save("book_build", {"cold_s": cold, "warm_s": warm, "pages_s": pages}, table + goals)
    return 0
