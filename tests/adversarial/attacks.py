"""Attacks on the grader by a determined student (one per class of hole), each with the score and
flags the grader must give it. Every one of them succeeded against the grader before the
allow-list sandbox (commit f1a1ea6): the tests in ``tests/test_grading_attacks.py`` say what the old
code did.

Paths the attacks aim at (the course folder, a socket, marker files) are filled in by
:func:`build`, so that a test can check afterwards that nothing reached them.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat

from adversarial import FULL, POINTS, Case, dumps, edit, student_solution
from autograde.paths import EXERCISES, ROOT, SOLUTIONS

# numpy answer computed by torch through C calling C (map, next): no Python-level call for a profile
# hook to see, and float() converts the tensor
C_ROUTE = '''
import torch
def mse_loss(pred, target):
    d = next(map(torch.sub, map(torch.from_numpy, [pred]), map(torch.from_numpy, [target])))
    return float(next(map(torch.mean, map(torch.square, [d]))))
'''

# numpy answer computed by torch in another process
SUBPROCESS = '''
import json, subprocess, sys
_CODE = ("import sys, json, torch; p, t = json.loads(sys.stdin.read()); "
         "p = torch.tensor(p, dtype=torch.float64, requires_grad=True); "
         "((p - torch.tensor(t, dtype=torch.float64)) ** 2).mean().backward(); print(json.dumps(p.grad.tolist()))")
def mse_loss_grad(pred, target):
    out = subprocess.run([sys.executable, "-c", _CODE], input=json.dumps([pred.tolist(), target.tolist()]),
                         capture_output=True, text=True).stdout
    return np.array(json.loads(out))
'''

# an answer whose value cannot be compared (OverflowError in the comparison)
HUGE_INT = "def mse_loss(pred, target):\n    return 10 ** 350  # an int, too large for a float\n"

# special files where the old grader read the process's output after it ended
FIFOS = '''
import os
for _name in ("stdout.txt", "stderr.txt", ".stdout.txt", ".stderr.txt"):
    try:
        os.remove(_name)
    except OSError:
        pass
    try:
        os.mkfifo(_name)
    except OSError:
        pass
'''

# a cell with an expression too deep for the grader's parser
LONG_EXPRESSION = "_x = " + "+".join(["1"] * 60000) + "\n"

# cells just under the cell limit, and every graded function hanging: restarts re-run the cells
SLOW_CELL = "import time\ntime.sleep(4.2)\n"
HANG = "def {name}(*args):\n    while True:\n        pass\n"

# everything a student process could reach, reported on stdout; paths filled in by build()
PROBE = r'''
import ctypes, glob, json, os, socket, sys
report = {"isolated_flag": sys.flags.isolated, "uid": os.getuid()}
import autograde
root = os.path.dirname(os.path.dirname(autograde.__file__))
report["course"] = sorted(os.listdir(root)) if os.path.isdir(root) else None
def look(p):
    try:
        return sorted(os.listdir(p)) if os.path.isdir(p) else os.path.exists(p)
    except OSError as exc:
        return f"exists, {type(exc).__name__}"
report["visible"] = {p: look(p) for p in @TARGETS@}
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(@SOCKET@)
    report["socket"] = "connected"
except OSError as exc:
    report["socket"] = f"refused: {type(exc).__name__}"
cmdlines = []
for d in glob.glob("/proc/[0-9]*/cmdline"):
    try:
        cmdlines.append(open(d, "rb").read().replace(b"\0", b" ").decode(errors="replace"))
    except OSError:
        pass
report["processes"] = len(cmdlines)
report["grader_cmdline_seen"] = any("autograde" in c and "grade" in c and "--submissions" in c for c in cmdlines)
for folder in ("/tmp", "/dev/shm"):
    try:
        with open(os.path.join(folder, @MARKER@), "wb") as f:
            f.write(b"x" * (8 << 20))
        report[folder] = "written"
    except OSError as exc:
        report[folder] = f"not written: {exc}"
try:
    report["shm_id"] = ctypes.CDLL(None, use_errno=True).shmget(@IPC_KEY@, 1 << 20, 0o1000 | 0o666)  # left behind
except Exception as exc:
    report["shm_id"] = f"error: {exc}"
try:
    import site
    os.makedirs(site.getusersitepackages(), exist_ok=True)
    open(os.path.join(site.getusersitepackages(), "usercustomize.py"), "w").write(
        "open(" + repr(@PWNED@) + ", 'w').write('ran')\n")
    report["user_site"] = site.getusersitepackages()
except Exception as exc:
    report["user_site"] = f"not written: {exc}"
print("PROBE " + json.dumps(report))
'''

# a torch module that calls the built-in batch norm with the recorder switched off, from C
BN_CHEAT = '''
class BatchNorm1d(nn.Module):
    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x):
        if self.training:
            self.num_batches_tracked += 1
        with torch._C.DisableTorchFunction():  # the grader's recorder is a torch-function mode
            return next(map(torch.batch_norm, [x], [self.weight], [self.bias], [self.running_mean],
                            [self.running_var], [self.training], [self.momentum], [self.eps], [False]))
'''
BN_MODULE_TESTS = {"bn_module_train", "bn_module_eval", "bn_module_grad"}
BN_MODULE_POINTS = 5


def solution_of(assignment: str, name: str):
    """The released notebook with the solution's answers filled in (markers removed)."""
    answers = {}
    for cell in nbformat.read(SOLUTIONS / assignment / name, as_version=4).cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and meta.get("grade_id"):
            answers[meta["grade_id"]] = re.sub(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", "", cell.source, flags=re.M)
    nb = nbformat.read(EXERCISES / assignment / name, as_version=4)
    for cell in nb.cells:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
    return nb


def nested_json(depth: int = 600) -> bytes:
    """Valid JSON (the decoder takes it) nested deeper than a recursive walk of it can go."""
    nb = json.loads(dumps(student_solution()))
    nb["cells"][0]["metadata"]["deep"] = "@DEEP@"
    return json.dumps(nb).replace('"@DEEP@"', "[" * depth + "]" * depth).encode()


def build(root: Path, *, socket_path: str, marker: str, ipc_key: int, pwned: str) -> tuple[Path, list[Case]]:
    """The submitted/ folder of the attacks under ``root`` and the cases (of loss_functions)."""
    subs = root / "submitted"
    targets = [str(SOLUTIONS), str(ROOT / ".git"), str(ROOT / ".autograde"), str(subs), str(root / "out"),
               "/home", "/root", "/run", "/var"]
    probe = (PROBE.replace("@TARGETS@", repr(targets)).replace("@SOCKET@", repr(socket_path))
             .replace("@MARKER@", repr(marker)).replace("@IPC_KEY@", str(ipc_key)).replace("@PWNED@", repr(pwned)))
    sol = lambda **kw: (lambda: dumps(edit(student_solution(), **kw)))  # noqa: E731
    hang = "".join(HANG.format(name=n) for n in POINTS)
    cases = [
        Case("solution", lambda: dumps(student_solution()), FULL),
        Case("c_route", sol(append=[C_ROUTE]), FULL - 1, {"forbidden"}, {"mse_loss"}),
        Case("subprocess", sol(append=[SUBPROCESS]), FULL - 1, set(), {"mse_loss_grad"}),
        Case("huge_int", sol(append=[HUGE_INT]), FULL - 1, set(), {"mse_loss"}),
        Case("fifos", sol(after={"setup": [FIFOS]}), FULL),
        Case("long_expression", sol(append=[LONG_EXPRESSION]), FULL),
        Case("nested_json", nested_json, 0, {"invalid-notebook"}, set(POINTS)),
        Case("probe", sol(append=[probe]), FULL),
        Case("slow", sol(after={"setup": [SLOW_CELL] * 3}, append=[hang]), 0, {"timeout"}, set(POINTS)),
        Case("=HYPERLINK(1)", lambda: dumps(student_solution()), FULL),
    ]
    from adversarial import write_submissions

    write_submissions(subs, cases)
    # links and special files in the submissions tree (the old grader followed and read them)
    (subs / "link_notebook" / "loss_functions").mkdir(parents=True)
    (subs / "link_notebook" / "loss_functions" / "loss_functions.ipynb").symlink_to(
        SOLUTIONS / "loss_functions" / "loss_functions.ipynb")
    (subs / "link_folder").mkdir()
    (subs / "link_folder" / "loss_functions").symlink_to(subs / "solution" / "loss_functions")
    import os

    (subs / "fifo_notebook" / "loss_functions").mkdir(parents=True)
    os.mkfifo(subs / "fifo_notebook" / "loss_functions" / "loss_functions.ipynb")
    unsafe = {"missing", "unsafe-file"}
    cases += [Case("link_notebook", None, 0, unsafe, set(POINTS)), Case("link_folder", None, 0, unsafe, set(POINTS)),
              Case("fifo_notebook", None, 0, unsafe, set(POINTS))]
    # batch norm: the built-in normalization, reached from C with the recorder off
    bn = solution_of("batch_norm", "batch_norm.ipynb")
    for cell in bn.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "BatchNorm1d":
            cell.source = BN_CHEAT
    (subs / "bn_cheat" / "batch_norm").mkdir(parents=True)
    (subs / "bn_cheat" / "batch_norm" / "batch_norm.ipynb").write_text(nbformat.writes(bn))
    return subs, cases
