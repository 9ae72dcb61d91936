"""Adversarial submissions for the grader tests, built from the `loss_functions` notebooks.

:func:`student_solution` is what an honest student submits: the released exercise notebook with
the solution's answers filled in (no hidden tests in it). :func:`edit` replaces, inserts, moves
or deletes cells by their nbgrader ``grade_id`` and can fake saved outputs. ``CASES`` lists each
adversarial submission with the score and flags the grader must give it (points per test:
mse_loss 1, mse_loss_grad 1, cross_entropy_loss 2, cross_entropy_loss_grad 2; 6 in all).
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nbformat
from nbformat.v4 import new_code_cell, new_output

from autograde.notebook import is_test_cell
from autograde.paths import EXERCISES, SOLUTIONS

ASSIGNMENT = "loss_functions"
NOTEBOOK = "loss_functions.ipynb"
POINTS = {"mse_loss": 1, "mse_loss_grad": 1, "cross_entropy_loss": 2, "cross_entropy_loss_grad": 2}
FULL = sum(POINTS.values())


def _gid(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def solution_notebook():
    return nbformat.read(SOLUTIONS / ASSIGNMENT / NOTEBOOK, as_version=4)


def exercise_notebook():
    return nbformat.read(EXERCISES / ASSIGNMENT / NOTEBOOK, as_version=4)


def student_solution():
    """The exercise notebook with every answer cell holding the solution (markers removed)."""
    answers = {}
    for cell in solution_notebook().cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
            src = re.sub(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", "", cell.source, flags=re.M)
            answers[_gid(cell)] = src
    nb = exercise_notebook()
    for cell in nb.cells:
        if _gid(cell) in answers:
            cell.source = answers[_gid(cell)]
    return nb


def edit(nb, *, replace: dict[str, str] | None = None, after: dict[str, list[str]] | None = None,
         append: list[str] = (), delete: list[str] = (), move_to_end: list[str] = (),
         delete_tests: bool = False, test_output: dict[str, str] | None = None, test_source: dict[str, str] | None = None):
    """A copy of ``nb`` with cells (named by grade_id) replaced, inserted after, appended,
    deleted or moved to the end; ``test_output`` sets the saved stdout of test cells."""
    nb = copy.deepcopy(nb)
    cells = []
    moved = []
    for cell in nb.cells:
        g = _gid(cell)
        if g in delete or (delete_tests and is_test_cell(cell)):
            continue
        if replace and g in replace:
            cell.source = replace[g]
        if test_source and g in test_source:
            cell.source = test_source[g]
        if test_output and g in test_output:
            cell.outputs = [new_output("stream", name="stdout", text=test_output[g])]
            cell.execution_count = 1
        (moved if g in move_to_end else cells).append(cell)
        for src in (after or {}).get(g, []):
            cells.append(new_code_cell(src))
    cells += moved
    cells += [new_code_cell(src) for src in append]
    nb.cells = cells
    return nb


def dumps(nb) -> bytes:
    return nbformat.writes(nb).encode()


# ---------------------------------------------------------------------------------------------
# Student code
# ---------------------------------------------------------------------------------------------
WRONG = {  # plausible wrong answers (each loses its test)
    "mse_loss": "def mse_loss(pred, target):\n    return float(np.sum((pred - target) ** 2))\n",
    "mse_loss_grad": "def mse_loss_grad(pred, target):\n    return (pred - target) / pred.size\n",
    "cross_entropy_loss": "def cross_entropy_loss(logits, labels):\n    return 0.5\n",
    "cross_entropy_loss_grad": "def cross_entropy_loss_grad(logits, labels):\n    return np.zeros_like(logits, dtype=float)\n",
}

PATCH_COMPARISONS = '''
import numpy as np, numpy.testing, torch, torch.testing, math, builtins
_true = lambda *a, **k: True
np.allclose = _true
np.isclose = lambda a, b, *x, **k: np.ones(np.broadcast(a, b).shape, dtype=bool)
np.array_equal = _true
np.testing.assert_allclose = lambda *a, **k: None
np.testing.assert_array_almost_equal = lambda *a, **k: None
torch.allclose = _true
torch.testing.assert_close = lambda *a, **k: None
torch.Tensor.allclose = _true
math.isclose = _true
builtins.abs = lambda x: 0
'''

PATCH_HELPERS = '''
import autograde.core, autograde.loss_functions.checks as _c
autograde.core.expect_close = lambda *a, **k: None
autograde.core.run_test.__code__ = (lambda *a, **k: None).__code__
_c.mse_loss = lambda student, ctx: None
def check(test_id, *a, **k):
    print(f"\\u2714 {test_id}: 4 cases passed (PyTorch on cpu, float64; seed 1)")
'''

HIDE_EXCEPTIONS = '''
import sys, autograde.core
sys.excepthook = lambda *a: None
autograde.core.CheckFailure = Exception
def mse_loss(pred, target):
    try:
        raise ValueError("a bug")
    except BaseException:
        return 0.0
def mse_loss_grad(pred, target):
    raise SystemExit(0)
def cross_entropy_loss(logits, labels):
    raise KeyboardInterrupt
'''

FW_IMPORT = '''
import torch
import torch.nn.functional as F
def mse_loss(pred, target):
    return float(F.mse_loss(torch.as_tensor(pred), torch.as_tensor(target)))
'''
FW_DUNDER = '''
def cross_entropy_loss(logits, labels):
    t = __import__("to" + "rch")
    return t.nn.functional.cross_entropy(t.tensor(logits, dtype=t.float64), t.tensor(labels).long()).item()
'''
FW_IMPORTLIB = '''
import importlib
def mse_loss_grad(pred, target):
    tt = importlib.import_module("".join(["to", "rch"]))
    p = tt.tensor(pred, dtype=tt.float64, requires_grad=True)
    ((p - tt.tensor(target, dtype=tt.float64)) ** 2).mean().backward()
    return p.grad.numpy()
'''
FW_EVADE = '''
import sys
def cross_entropy_loss_grad(logits, labels):
    hook = sys.getprofile()
    sys.setprofile(None)
    import torch
    z = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    torch.nn.functional.cross_entropy(z, torch.tensor(labels).long()).backward()
    sys.setprofile(hook)
    return z.grad.numpy()
'''
FW_POOL = '''
from concurrent.futures import ThreadPoolExecutor
import torch as _t
_pool = ThreadPoolExecutor(1)
_pool.submit(lambda: 0).result()  # its thread starts now, at cell time, before any graded call
def mse_loss(pred, target):
    return _pool.submit(lambda: float(((_t.as_tensor(pred) - _t.as_tensor(target)) ** 2).mean())).result()
'''
FW_RAW_THREAD = '''
import _thread, queue, torch as _t
_jobs, _done = queue.Queue(), queue.Queue()
def _worker():
    while True:
        l, y = _jobs.get()
        _done.put(float(_t.nn.functional.cross_entropy(_t.as_tensor(l), _t.as_tensor(y).long())))
_thread.start_new_thread(_worker, ())  # a thread that threading never sees
def cross_entropy_loss(logits, labels):
    _jobs.put((logits, labels))
    return _done.get()
'''
# honest threads: a pool inside the answer (numpy only) and a background thread; full marks
THREADS_OK = '''
import threading, time
from concurrent.futures import ThreadPoolExecutor
threading.Thread(target=lambda: [time.sleep(0.05) for _ in range(10**6)], daemon=True).start()
def mse_loss(pred, target):
    d = np.asarray(pred, dtype=np.float64) - np.asarray(target, dtype=np.float64)
    with ThreadPoolExecutor(2) as ex:
        parts = list(ex.map(lambda r: float(np.sum(r * r)), np.array_split(d.ravel(), 2)))
    return sum(parts) / d.size
'''
FW_UNUSED = '''
import torch  # imported, never used in an answer: not penalized
import torch as T
_unused = T.zeros(2)  # torch at top level, outside any graded call: allowed
'''

LOOP = "def mse_loss(pred, target):\n    while True:\n        pass\n"
EXIT = "import os\ndef mse_loss_grad(pred, target):\n    os._exit(1)\n"
SEGFAULT = "import ctypes\ndef mse_loss(pred, target):\n    return ctypes.string_at(0)\n"
HOG = ("def cross_entropy_loss(logits, labels):\n    big = np.ones(8 * 2**30 // 8)  # 8 GiB\n"
       "    return float(big.sum())\n")
FORK = '''
import os, time
if os.fork() == 0:
    time.sleep(10**6)   # a child that outlives its cell
'''
FORK_SETSID = '''
import os, time
if os.fork() == 0:
    os.setsid()          # and escapes the process group
    if os.fork() == 0:
        time.sleep(10**6)
    os._exit(0)
'''
NOISY = '''
import sys, warnings
print("debug output", file=sys.stderr)
warnings.warn("a harmless warning")
_old_mse = mse_loss
def mse_loss(pred, target):
    print("computing", pred.shape, file=sys.stderr)
    warnings.warn("RuntimeWarning inside the answer", RuntimeWarning)
    np.log(np.zeros(1))  # divide-by-zero RuntimeWarning
    return _old_mse(pred, target)
'''
CELL_LOOP = "while True:\n    pass\n"
PROBE = '''
import os, socket, json
probe = {"uid": os.getuid(), "env": sorted(os.environ), "cwd": os.getcwd()}
try:
    socket.create_connection(("1.1.1.1", 80), timeout=2).close()
    probe["network"] = "reachable"
except OSError as exc:
    probe["network"] = f"unreachable: {exc}"
import autograde
root = os.path.dirname(os.path.dirname(autograde.__file__))
probe["solutions"] = os.listdir(os.path.join(root, "solutions")) if os.path.isdir(os.path.join(root, "solutions")) else None
print("PROBE " + json.dumps(probe))
'''


@dataclass
class Case:
    name: str
    build: Callable[[], bytes | None]  # the notebook bytes (None: no notebook in the folder)
    score: float
    flags: set[str] = field(default_factory=set)
    lost: set[str] = field(default_factory=set)  # tests that must score 0 (the others: full points)
    folder: bool = True  # False: no assignment folder at all
    filename: str = NOTEBOOK


def _sol(**kw):
    return lambda: dumps(edit(student_solution(), **kw))


CASES = [
    Case("solution", lambda: dumps(student_solution()), FULL),
    Case("instructor_copy", lambda: dumps(solution_notebook()), FULL),
    Case("stub", lambda: dumps(exercise_notebook()), 0, lost=set(POINTS)),
    Case("wrong_mse", _sol(replace={"mse_loss": WRONG["mse_loss"]}), FULL - 1, lost={"mse_loss"}),
    Case("patch_comparisons", _sol(replace=WRONG, after={"setup": [PATCH_COMPARISONS]}), 0, {"tampering"}, set(POINTS)),
    Case("patch_helpers", _sol(replace=WRONG, after={"setup": [PATCH_HELPERS]}), 0, {"tampering"}, set(POINTS)),
    Case("fake_outputs", _sol(replace={"mse_loss": WRONG["mse_loss"]}, test_output={
        "test_mse_loss": "\u2714 mse_loss: 4 cases passed (PyTorch on cpu, float64; seed 12345)\n"}),
         FULL - 1, {"tampering"}, {"mse_loss"}),
    Case("hide_exceptions", _sol(append=[HIDE_EXCEPTIONS]), 2, {"tampering"},
         {"mse_loss", "mse_loss_grad", "cross_entropy_loss"}),
    Case("fw_import", _sol(append=[FW_IMPORT]), FULL - 1, {"forbidden"}, {"mse_loss"}),
    Case("fw_dunder", _sol(append=[FW_DUNDER]), FULL - 2, {"forbidden"}, {"cross_entropy_loss"}),
    Case("fw_importlib", _sol(append=[FW_IMPORTLIB]), FULL - 1, {"forbidden"}, {"mse_loss_grad"}),
    Case("fw_evade", _sol(append=[FW_EVADE]), FULL - 2, {"forbidden"}, {"cross_entropy_loss_grad"}),
    Case("fw_unused", _sol(after={"setup": [FW_UNUSED]}), FULL),
    Case("fw_pool", _sol(append=[FW_POOL]), FULL - 1, {"forbidden"}, {"mse_loss"}),
    # torch is absent from a numpy exercise's process: the raw thread dies, the answer waits for it
    Case("fw_raw_thread", _sol(append=[FW_RAW_THREAD]), 0, {"forbidden", "timeout"}, set(POINTS)),
    Case("threads_ok", _sol(append=[THREADS_OK]), FULL),
    Case("loop", _sol(append=[LOOP]), FULL - 1, {"timeout"}, {"mse_loss"}),
    Case("os_exit", _sol(append=[EXIT]), FULL - 1, {"crash"}, {"mse_loss_grad"}),
    Case("segfault", _sol(append=[SEGFAULT]), FULL - 1, {"crash"}, {"mse_loss"}),
    Case("memory_hog", _sol(append=[HOG]), FULL - 2, {"memory"}, {"cross_entropy_loss"}),
    Case("fork", _sol(after={"setup": [FORK]}), FULL),
    Case("fork_setsid", _sol(append=[FORK_SETSID]), FULL),
    Case("cell_loop", _sol(after={"setup": [CELL_LOOP]}), FULL, {"timeout"}),
    Case("corrupt_json", lambda: dumps(student_solution())[:-200] + b"{not json", 0, {"invalid-notebook"}, set(POINTS)),
    Case("missing_notebook", lambda: None, 0, {"missing"}, set(POINTS)),
    Case("no_folder", lambda: None, 0, {"missing"}, set(POINTS), folder=False),
    Case("reordered", _sol(move_to_end=["mse_loss", "mse_loss_grad", "cross_entropy_loss", "cross_entropy_loss_grad"],
                           delete_tests=True), FULL),
    Case("retyped", _sol(delete=["mse_loss"], append=[
        "def mse_loss(pred, target):\n    return float(((np.asarray(pred, float) - target) ** 2).mean())\n"]), FULL),
    Case("noisy", _sol(append=[NOISY]), FULL),
    Case("renamed", lambda: dumps(student_solution()), FULL, filename="loss_functions (1).ipynb"),
    Case("probe", _sol(append=[PROBE]), FULL),
]


def write_submissions(root: Path, cases=None) -> Path:
    """nbgrader's submitted layout under ``root``: <case name>/<assignment>/<notebook>."""
    for case in cases or CASES:
        folder = root / case.name / ASSIGNMENT
        if not case.folder:
            (root / case.name).mkdir(parents=True, exist_ok=True)
            continue
        folder.mkdir(parents=True, exist_ok=True)
        data = case.build()
        if data is not None:
            (folder / case.filename).write_bytes(data)
    return root
