"""The warm server (zygote): one per grading worker and kind of exercise, inside the sandbox.

It imports what students and drivers use once ("numpy": no deep-learning framework, a clear
message for an import of one; "torch": torch, with its built-in normalizations replaced by kernels
that raise: :mod:`.forbid`), records the tamper baseline, and then only forks: one
:mod:`.student_process` per request, killed (with everything it started) on request. It never runs
student code itself. Its replies are JSON (a fork's reply carries the child's pidfd), so the
grader never unpickles what this process sends. Started by :class:`.sandbox.Zygote`.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import tempfile
import time
from pathlib import Path

from . import isolation, student_process

KINDS = ("numpy", "torch")  # numpy: no deep-learning framework at all; torch: no built-in normalization


def _warm_imports(kind: str) -> dict:
    """Import what students and drivers use, initialize lazy state, and take the baseline."""
    import numpy  # noqa: F401
    import numpy.fft  # noqa: F401
    import numpy.linalg  # noqa: F401
    import numpy.random  # noqa: F401
    import numpy.testing  # noqa: F401

    from . import forbid

    if kind == "numpy":
        forbid.block_frameworks(isolation.FRAMEWORK_PACKAGES)
    else:
        try:
            import torch

            torch.set_num_threads(1)
            import torch.nn.functional  # noqa: F401
            import torch.optim  # noqa: F401
            import torch.testing  # noqa: F401

            try:  # importing dynamo rebinds torch.manual_seed & co.: do it before the baseline
                import torch._dynamo  # noqa: F401
            except Exception:  # noqa: BLE001
                pass
            forbid.block_normalizations()
        except ImportError:
            pass
    for optional in ("IPython", "matplotlib.pyplot"):
        try:
            importlib.import_module(optional)
        except Exception:  # noqa: BLE001 - optional
            pass
    from .. import guard, notebook, paths  # noqa: F401

    for name in paths.assignments():  # the drivers only: the checks are the grader's (and need torch)
        for sub in ("drivers",):
            if importlib.util.find_spec(f"autograde.{name}.{sub}") is None:
                continue
            try:
                importlib.import_module(f"autograde.{name}.{sub}")
            except Exception:  # noqa: BLE001 - an assignment being written: grading it fails later, clearly
                pass
    guard.FrameworkGuard("numpy")  # fills lazy module state (framework dirs, audit hook) now
    guard.watch_threads()  # before the baseline: removing the thread hook is then tampering too
    from . import tamper

    snap = tamper.snapshot()
    tamper.watch_imports(snap)
    return snap


def _reap(children: dict, block_pid: int | None = None) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            break
        children[pid] = status
    if block_pid is not None and block_pid not in children:
        try:
            _, status = os.waitpid(block_pid, 0)
            children[block_pid] = status
        except ChildProcessError:
            children.setdefault(block_pid, None)


def _children_of(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out.append(int(entry))
    return out


def _kill_everything(pid: int, statuses: dict, isolated: bool) -> None:
    """Kill the student process and its process group (when isolated, its PID namespace dies
    with it; without isolation as root, every process of its own uid), and every descendant left
    with the zygote (a subreaper), then reap them."""
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except (ProcessLookupError, PermissionError):
            pass
    if not isolated and os.geteuid() == 0:
        uid = isolation.UID_BASE + pid
        helper = os.fork()
        if helper == 0:  # kill(-1) as that uid: every process of the uid, atomically
            try:
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
                os.kill(-1, signal.SIGKILL)
            finally:
                os._exit(0)
        os.waitpid(helper, 0)
    _reap(statuses, block_pid=pid)
    for _ in range(50):
        left = _children_of(os.getpid())
        if not left:
            break
        for child in left:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.01)
        _reap(statuses)


def _remove_stale_scratch() -> None:
    """Without isolation, scratch folders are on the host: those of a server that no longer runs
    (a grader killed with SIGKILL) are removed when the next one starts."""
    for path in Path(tempfile.gettempdir()).glob("autograde-student-*-*"):
        owner = path.name.split("-")[2]
        if owner.isdigit() and not os.path.exists(f"/proc/{owner}") and path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)


def _exit_with_the_grader(ctl: socket.socket) -> None:
    """Exit as soon as the grader's end of the control socket closes, however the grader ended: a
    backstop for --die-with-parent, whose signal a grader killed while it was starting this server
    (between fork and bwrap's prctl) never sends; the warm imports alone take seconds."""
    import select
    import threading

    def watch():
        p = select.poll()
        p.register(ctl.fileno(), select.POLLRDHUP)  # hang-ups and errors are always reported
        while True:
            for _, event in p.poll():
                if event & (select.POLLRDHUP | select.POLLHUP | select.POLLERR | select.POLLNVAL):
                    os._exit(0)

    threading.Thread(target=watch, name="autograde-grader-watch", daemon=True).start()


def main(fd: int, parent: int, kind: str, isolated: bool) -> None:
    """The server: forks one student process per request. Its replies are JSON (a fork's reply
    carries the child's pidfd), so the grader never unpickles what this process sends."""
    ctl = socket.socket(fileno=fd)
    if not isolated:  # inside bwrap, --die-with-parent does this (the parent is in another PID namespace)
        isolation.die_with_parent(parent)
    isolation.prctl(isolation.PR_SET_CHILD_SUBREAPER, 1)
    _exit_with_the_grader(ctl)
    me = os.getpid()
    if not isolated:
        _remove_stale_scratch()
    baseline = _warm_imports(kind)
    statuses: dict[int, int | None] = {}
    scratch: dict[int, str] = {}  # without isolation: each child's folder, removed once it is gone
    reply = lambda obj, fds=(): socket.send_fds(ctl, [json.dumps(obj).encode()], list(fds))  # noqa: E731
    reply({"ready": True})
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(ctl, 1 << 16, 4)
        except (ConnectionError, OSError):
            os._exit(0)
        if not data:
            os._exit(0)
        req = json.loads(data)
        op = req.get("op")
        if op == "fork":
            student = socket.socket(fileno=fds[0])
            home = None if isolated else tempfile.mkdtemp(prefix=f"autograde-student-{me}-")
            pid = os.fork()
            if pid == 0:
                os.close(ctl.detach())
                student_process.main(student, baseline, me, kind, isolated, home)
                os._exit(0)
            student.close()
            if home is not None:
                scratch[pid] = home
            _reap(statuses)
            pidfd = os.pidfd_open(pid)
            reply({"pid": pid, "home": home}, [pidfd])
            os.close(pidfd)
        elif op == "kill":
            for f in fds:
                os.close(f)
            pid = int(req["pid"])
            _kill_everything(pid, statuses, isolated)
            if pid in scratch:
                shutil.rmtree(scratch.pop(pid), ignore_errors=True)
            reply({"status": statuses.pop(pid, None)})
        elif op == "quit":
            for home in scratch.values():
                shutil.rmtree(home, ignore_errors=True)
            os._exit(0)
        else:
            for f in fds:
                os.close(f)
            reply({"error": f"unknown op {op!r}"})
