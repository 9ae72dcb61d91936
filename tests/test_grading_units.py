"""Pieces of the grader, in this process: the wire format's safe decoding, framework detection
(the same in a notebook and in the grader), tamper snapshots, seeds, sizes, the sandbox."""
from __future__ import annotations

import json
import struct

import numpy as np
import numpy.testing  # noqa: F401 - imported before the snapshot, as the zygote does
import pytest
from conftest import solution_namespace

from adversarial import FW_DUNDER, FW_EVADE, FW_IMPORT, FW_IMPORTLIB
from autograde.core import LocalStudent, Opaque, call_function, run_test
from autograde.grading import wire
from autograde.grading.grader import derive_seed
from autograde.grading.runner import parse_size
from autograde.notebook import exec_cells
from autograde.paths import UsageError, load_tests


# ---------------------------------------------------------------------------------------------
# wire
# ---------------------------------------------------------------------------------------------
def roundtrip(value):
    tree, buffers = wire.encode(value)
    msg = wire.unpack(wire.pack({"type": "result", "value": tree}, buffers))
    return wire.decode(msg["value"], msg["buffers"])


def test_roundtrip_plain_values():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    v = roundtrip({"out": (a, 1.5, float("nan"), float("-inf"), 3, True, None, "s", [np.int8(1)]),
                   "big": np.array([1, 2], dtype=">i4"), "o": Opaque("torch.Tensor"), "huge": 10**30})
    got = v["out"]
    assert isinstance(got, tuple) and got[0].dtype == np.float32 and np.array_equal(got[0], a)
    assert np.isnan(got[2]) and got[3] == float("-inf") and got[4:8] == (3, True, None, "s")
    assert np.array_equal(v["big"], [1, 2]) and v["big"].dtype.byteorder in "=<|"
    assert v["o"] == Opaque("torch.Tensor") and v["huge"] == 10**30


def test_encode_refuses_non_plain_arrays():
    assert roundtrip(np.array(["a"])) == Opaque("ndarray of dtype <U1")
    assert roundtrip(np.array([1 + 2j])) == Opaque("ndarray of dtype complex128")
    assert roundtrip(np.array([object()], dtype=object)) == Opaque("ndarray of dtype object")


def _frame(header: dict, buffers=()) -> bytes:
    head = json.dumps(dict(header, **{"$buffers": [len(b) for b in buffers]})).encode()
    return struct.pack("!I", len(head)) + head + b"".join(buffers)


@pytest.mark.parametrize("tree,buffers", [
    ({"$nd": 0, "dtype": "|O8", "shape": [1]}, [b"\0" * 8]),          # object dtype: never
    ({"$nd": 0, "dtype": "<U1", "shape": [1]}, [b"\0" * 4]),
    ({"$nd": 0, "dtype": "<c16", "shape": [1]}, [b"\0" * 16]),
    ({"$nd": 0, "dtype": "V8", "shape": [1]}, [b"\0" * 8]),
    ({"$nd": 0, "dtype": "<f8", "shape": [2]}, [b"\0" * 8]),           # shape and buffer disagree
    ({"$nd": 0, "dtype": "<f8", "shape": [-1]}, [b"\0" * 8]),
    ({"$nd": 1, "dtype": "<f8", "shape": [1]}, [b"\0" * 8]),           # no such buffer
    ([{"$nd": 0, "dtype": "<f8", "shape": [1]}, {"$nd": 0, "dtype": "<f8", "shape": [1]}], [b"\0" * 8]),  # reused
    ({"$nd": 0, "dtype": "<f8", "shape": [1], "extra": 1}, [b"\0" * 8]),
    ({"__reduce__": "os.system"}, []),
    ({"$int": "9" * 5000}, []),
    ({"$float": "1e999"}, []),
    ({"$dict": [[1, 2]]}, []),
])
def test_decode_rejects_malformed(tree, buffers):
    msg = wire.unpack(_frame({"type": "result", "value": tree}, buffers))
    with pytest.raises(wire.WireError):
        wire.decode(msg["value"], msg["buffers"])


def test_decode_rejects_deep_nesting_and_bad_frames():
    tree = 1
    for _ in range(40):
        tree = [tree]
    with pytest.raises(wire.WireError):
        wire.decode(tree, [])
    with pytest.raises(wire.WireError):
        wire.unpack(b"\0\0\0\x05{}")
    with pytest.raises(wire.WireError):
        wire.unpack(_frame({"type": "x"}, [b"abc"])[:-1])
    with pytest.raises(wire.WireError):
        wire.unpack(struct.pack("!I", 5) + b"\x80abcd")


# reaches torch, then raises: still `forbidden` (the error does not hide the framework call)
FW_THEN_RAISE = '''
import torch.nn.functional as F
def mse_loss(pred, target):
    F.mse_loss(F.torch.as_tensor(pred), F.torch.as_tensor(target))
    raise ValueError("oops")
'''


# ---------------------------------------------------------------------------------------------
# framework detection, in this process (a notebook's check() sees exactly this)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("code,test_id,phrase", [
    (FW_IMPORT, "mse_loss", "deep-learning framework"),
    (FW_DUNDER, "cross_entropy_loss", "deep-learning framework"),
    (FW_IMPORTLIB, "mse_loss_grad", "deep-learning framework"),
    (FW_EVADE, "cross_entropy_loss_grad", "switched off"),
    (FW_THEN_RAISE, "mse_loss", "deep-learning framework"),
])
def test_framework_use_is_forbidden_locally(code, test_id, phrase):
    ns, errors = exec_cells([(0, code)], solution_namespace("loss_functions"))
    assert not errors
    v = run_test(load_tests("loss_functions")[test_id], LocalStudent(ns), 0, hidden=True)
    assert not v.passed and v.flag == "forbidden" and phrase in v.message, v.message


def test_hidden_failure_says_how_to_repeat_it():
    """The hint after a hidden failure repeats that run: with hidden=True (without it, the visible
    cases might pass)."""
    from autograde.core import CheckFailure
    from autograde.loss_functions import check

    ns, _ = exec_cells([(0, "def mse_loss(pred, target):\n    return 0.0\n")], solution_namespace("loss_functions"))
    with pytest.raises(CheckFailure, match=r"repeat with check\('mse_loss', seed=5, hidden=True\)"):
        check("mse_loss", ns, hidden=True, seed=5)
    with pytest.raises(CheckFailure, match=r"repeat with check\('mse_loss', seed=5\)"):
        check("mse_loss", ns, seed=5)


def test_unused_import_and_outside_a_test_are_fine():
    ns, _ = exec_cells([(0, "import torch\nimport torch as T\n")], solution_namespace("loss_functions"))
    v = run_test(load_tests("loss_functions")["mse_loss"], LocalStudent(ns), 0, hidden=True)
    assert v.passed, v.message
    ns, _ = exec_cells([(0, FW_IMPORT)], solution_namespace("loss_functions"))
    out = LocalStudent(ns).call("mse_loss", np.ones(3), np.zeros(3))  # no test running: no policy
    assert out == 1.0


def test_torch_policy_forbids_builtin_normalization():
    from autograde.core import Forbidden, FrameworkGuard

    import torch

    x = torch.randn(8, 3)
    with FrameworkGuard("torch") as g:
        (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + 1e-5)
    g.verdict("manual")
    with FrameworkGuard("torch") as g:
        torch.nn.functional.batch_norm(x, None, None, training=True)
    with pytest.raises(Forbidden, match="built-in normalization"):
        g.verdict("F.batch_norm")
    with FrameworkGuard("torch") as g:
        torch.nn.BatchNorm1d(3)(x)
    with pytest.raises(Forbidden):
        g.verdict("nn.BatchNorm1d")


# ---------------------------------------------------------------------------------------------
# tamper snapshots
# ---------------------------------------------------------------------------------------------
def test_tamper_snapshot_sees_patches():
    import builtins

    from autograde import core
    from autograde.grading import tamper

    base = tamper.snapshot()
    assert tamper.compare(base) == []
    saved = (np.allclose, core.expect_close, np.testing.assert_allclose.__code__, builtins.len)
    try:
        np.allclose = lambda *a, **k: True
        core.expect_close = lambda *a, **k: None
        np.testing.assert_allclose.__code__ = (lambda *a, **k: None).__code__
        builtins.len = lambda x: 0
        found = " ".join(tamper.compare(base))
    finally:
        np.allclose, core.expect_close, np.testing.assert_allclose.__code__, builtins.len = saved
    for name in ("numpy.allclose", "autograde.core.expect_close", "numpy.testing.assert_allclose", "builtins.len"):
        assert name in found, found
    assert tamper.compare(base) == []


# ---------------------------------------------------------------------------------------------
# seeds, sizes
# ---------------------------------------------------------------------------------------------
def test_seed_derivation():
    s = derive_seed(0, "alice", "loss_functions", "loss_functions.ipynb")
    assert s == derive_seed(0, "alice", "loss_functions", "loss_functions.ipynb")
    assert s != derive_seed(0, "bob", "loss_functions", "loss_functions.ipynb")
    assert s != derive_seed(1, "alice", "loss_functions", "loss_functions.ipynb")
    assert 0 <= s < 10**9


def test_parse_size():
    assert parse_size("4G") == 4 * 2**30 and parse_size("512M") == 512 * 2**20 and parse_size("1GiB") == 2**30
    for bad in ("lots", "1K", "-1G"):
        with pytest.raises(UsageError):
            parse_size(bad)


# ---------------------------------------------------------------------------------------------
# the sandbox, directly
# ---------------------------------------------------------------------------------------------
def test_sandbox_plain_data_only_and_restart(tmp_path):
    from autograde.core import CheckFailure
    from autograde.grading.sandbox import RemoteStudent, Sandbox

    code = '''
import numpy as np, os
class Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/pwned",))
def evil(x):
    return Evil()
def obj_array(x):
    return np.array([Evil()], dtype=object)
def ok(x):
    return {"a": x * 2, "b": (1, "two")}
def die(x):
    os._exit(4)
'''
    with Sandbox([(0, code)], timeout=5, memory=2**30) as sb:
        st = RemoteStudent(sb)
        assert st.call("evil", np.ones(2)) == Opaque("__main__.Evil")
        assert st.call("obj_array", np.ones(2)) == Opaque("ndarray of dtype object")
        out = st.call("ok", np.ones(2))
        assert np.array_equal(out["a"], [2, 2]) and out["b"] == (1, "two")
        with pytest.raises(CheckFailure, match="exited with code 4 while die ran"):
            st.call("die", np.ones(2))
        assert st.call("ok", np.ones(1))["b"] == (1, "two")  # a fresh process, cells re-run
        assert sb.starts == 2 and [f for f, _ in sb.events] == ["crash"]
    assert sb.pid is None


def test_remote_and_local_students_agree():
    """The same check, the same seed: LocalStudent (notebook) and RemoteStudent (grader) agree."""
    from autograde.grading.sandbox import RemoteStudent, Sandbox
    from autograde.notebook import read, student_cells
    from autograde.paths import solution_notebooks

    tests = load_tests("loss_functions")
    local = LocalStudent(solution_namespace("loss_functions"))
    with Sandbox(student_cells(read(solution_notebooks("loss_functions")[0])), timeout=10) as sb:
        remote = RemoteStudent(sb)
        for tid, t in tests.items():
            a, b = run_test(t, local, 5, hidden=True), run_test(t, remote, 5, hidden=True)
            assert a.passed and b.passed and a.cases == b.cases
        x = np.random.default_rng(0).normal(size=(4, 3))
        assert local.run(call_function, "mse_loss_grad", x, x * 0)["out"].tobytes() == \
            remote.run(call_function, "mse_loss_grad", x, x * 0)["out"].tobytes()


def test_remote_failures_name_the_students_code():
    """A time-out or a crash names the student's function or class, never the grader's driver."""
    from autograde.batch_norm import drivers
    from autograde.core import CheckFailure
    from autograde.grading.sandbox import Died, RemoteStudent, Timeout

    class Stub:  # a sandbox whose every request fails as told
        timeout, memory, failure = 5.0, 2**30, Timeout()

        def __init__(self):
            self.events = []

        def _event(self, flag, message):
            self.events.append((flag, message))

        def request(self, driver, args, policy):
            raise self.failure

    sb = Stub()
    st = RemoteStudent(sb)
    with pytest.raises(CheckFailure, match="^batchnorm_forward did not return within 5 s") as info:
        st.run(drivers.forward_steps, "batchnorm_forward", np.ones(2), np.zeros(2), {}, [])
    assert "forward_steps" not in str(info.value)
    sb.failure = Died("exited with code 4")
    with pytest.raises(CheckFailure, match="exited with code 4 while BatchNorm1d ran"):
        st.run(drivers.module_steps, {})
    with pytest.raises(CheckFailure, match="exited with code 4 while mse_loss ran"):
        st.call("mse_loss", np.ones(2), np.zeros(2))
    assert [f for f, _ in sb.events] == ["timeout", "crash", "crash"]
    assert not any("_steps" in m for _, m in sb.events), sb.events


# ---------------------------------------------------------------------------------------------
# the reference cache (workers without a GPU)
# ---------------------------------------------------------------------------------------------
def test_reference_cache_is_used():
    from autograde.grading import refcache

    tests = load_tests("loss_functions")
    solution = solution_namespace("loss_functions")
    values = refcache.precompute("loss_functions", list(tests), 3, solution)
    assert values
    store = refcache.Store("replay", values)
    with refcache.using(store):
        for t in tests.values():
            assert run_test(t, LocalStudent(dict(solution)), 3, hidden=True).passed
    assert store.hits == len(values) and store.misses == 0
    poisoned = refcache.Store("replay", {k: (v + 1.0) for k, v in values.items()})
    with refcache.using(poisoned):  # the stored values, not fresh ones, are what the check compares with
        assert not run_test(tests["mse_loss"], LocalStudent(dict(solution)), 3, hidden=True).passed
    assert run_test(tests["mse_loss"], LocalStudent(dict(solution)), 3, hidden=True).passed  # no store: computed


def test_sandbox_odd_outputs():
    """Huge outputs, lone surrogates in messages, infinite recursion: a failed check each, never
    a grader error, and the messages are writable as UTF-8."""
    from autograde.core import CheckFailure
    from autograde.grading.sandbox import RemoteStudent, Sandbox

    code = '''
def many(x):
    return list(range(3_000_000))
def surrogate(x):
    raise ValueError("bad \\udc80 text")
def recurse(x):
    return recurse(x)
def nested(x):
    out = []
    for _ in range(50):
        out = [out]
    return out
'''
    with Sandbox([(0, code)], timeout=10, memory=2**31) as sb:
        st = RemoteStudent(sb)
        for name, phrase in [("many", "too much data"), ("surrogate", "surrogate raised ValueError: bad"),
                             ("recurse", "RecursionError")]:
            with pytest.raises(CheckFailure, match=phrase) as info:
                st.run(call_function, name, np.ones(1), what=name)
            str(info.value).encode("utf-8")
        assert "deeply nested" in repr(st.call("nested", np.ones(1)))
        assert sb.starts == 1


_ORPHAN = r"""
import os, sys, time
from autograde.grading.isolation import die_with_parent
parent = os.getpid()
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(w)
    if sys.argv[2] == "gone":
        os.read(r, 1)  # EOF: the parent is exiting (or gone) before the call below
    die_with_parent(parent)
    if sys.argv[2] == "gone":  # a parent still exiting at the call sends the signal a moment later
        time.sleep(0.3)
    open(sys.argv[1], "w").write(str(os.getpid()))  # only a process that outlived the call writes
    time.sleep(0.5 if sys.argv[2] == "gone" else 0)
    os._exit(0)
print(pid, flush=True)
if sys.argv[2] == "alive":
    os.waitpid(pid, 0)
"""


@pytest.mark.parametrize("case", ["gone", "alive"])
def test_die_with_parent_when_the_parent_died_first(tmp_path, case):
    """The race behind a CI failure: a student process whose zygote is killed between its fork
    and its PR_SET_PDEATHSIG never gets the signal. `die_with_parent` then exits at once; with
    its parent alive it returns (the control: this test can fail)."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    mark = tmp_path / "survived"
    r = subprocess.run([sys.executable, "-c", _ORPHAN, str(mark), case], capture_output=True, text=True,
                       timeout=60, cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0, r.stderr
    child = int(r.stdout)
    for _ in range(200):
        if not Path(f"/proc/{child}").exists() or Path(f"/proc/{child}/stat").read_text().split(") ")[1][0] == "Z":
            break
        time.sleep(0.01)
    if case == "gone":
        assert not mark.exists()
    else:
        assert mark.read_text() == str(child)


def test_continuation_lines_are_not_magics():
    """A line inside brackets may start with % or != (valid Python, as a kernel runs it); a real
    magic or shell escape is commented out."""
    from autograde.notebook import to_python

    ns, errors = exec_cells([(0, to_python("x = (7\n     % 3)\ny = (x\n     != 2)\n"))])
    assert not errors and ns["x"] == 1 and ns["y"] is True
    assert to_python("%matplotlib inline\nz = 1\n!ls") == "# %matplotlib inline\nz = 1\n# !ls"


def test_a_namedtuple_answer_is_plain_data():
    from collections import namedtuple

    from autograde.core import to_plain

    pair = namedtuple("pair", "dx dgamma")
    got = to_plain(pair(np.ones(2), [1.0]))
    assert type(got) is tuple and np.array_equal(got[0], np.ones(2)) and got[1] == [1.0]


def test_a_driver_problem_reaches_the_grader_as_its_diagnosis():
    """A driver's own diagnosis (DriverProblem: here a forward pass that returns no cache) crosses
    the wire as the failure's message, not as "raised DriverProblem"."""
    from catalog.batch_norm import MISTAKES

    from autograde.grading.isolation import problem
    from autograde.grading.sandbox import RemoteStudent, Sandbox
    from autograde.notebook import student_cells
    from autograde.paths import load_tests, solution_notebooks
    from autograde.notebook import read

    mistake = next(m for m in MISTAKES if m.name == "bwd_forward_returns_no_cache")
    cells = student_cells(read(solution_notebooks("batch_norm")[0])) + [(10_000, mistake.code)]
    with Sandbox(cells, kind="numpy", isolate=problem() is None, timeout=30) as sb:
        v = run_test(load_tests("batch_norm")[mistake.fails], RemoteStudent(sb), 3, hidden=False)
    assert not v.passed and mistake.diagnosis in v.message and "DriverProblem" not in v.message, v.message
