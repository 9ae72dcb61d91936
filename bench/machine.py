"""What a benchmark ran on, recorded beside every figure."""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

# BENCH_RESULTS redirects the figures (the smoke test writes to a scratch folder).
RESULTS = Path(os.environ.get("BENCH_RESULTS", Path(__file__).resolve().parent / "results"))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe() -> dict:
    import numpy
    import torch

    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu only (no CUDA)",
    }


def save(name: str, payload: dict, table: str) -> Path:
    """Write bench/results/<name>.json (figures + machine) and <name>.md (the table)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"machine": describe(), **payload}
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    m = payload["machine"]
    head = f"Measured {m['date']} on {m['cores']} cores, {m['cpu']}, torch {m['torch']}, numpy {m['numpy']}, device: {m['device']}.\n\n"
    (RESULTS / f"{name}.md").write_text(head + table.rstrip() + "\n")
    print(head + table)
    return RESULTS / f"{name}.json"


def markdown_table(header: list[str], rows: list[list]) -> str:
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)
