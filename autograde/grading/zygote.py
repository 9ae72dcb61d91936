"""Starting the warm servers (:mod:`.server`) and asking them to fork or kill (grader side).

One server per grading thread, kind of exercise ("numpy", "torch") and isolation; started inside
the sandbox (:func:`.isolation.server_command`) as ``python -I`` with a scrubbed environment. The
server answers JSON; a fork's answer carries the new student process's pidfd.
"""
from __future__ import annotations

import atexit
import json
import os
import socket
import subprocess
import threading
import time

from . import isolation


class SandboxError(Exception):
    """The student process could not be started at all (a grader-side problem)."""


def zygote_env() -> dict:
    """The scrubbed environment of the zygote (and so of the student processes before they clear it)."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/nonexistent",
        "MPLBACKEND": "Agg", "MPLCONFIGDIR": "/tmp/matplotlib", "XDG_CACHE_HOME": "/tmp/cache", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1",
    }


def _server_argv(fd: int, kind: str, isolated: bool) -> list[str]:
    """The server's Python in isolated mode (-I: no user site, no PYTHON* variables, no script
    folder on the path): nothing a student could have written runs in it."""
    root = str(isolation.PACKAGE.parent)
    boot = (f"import sys; sys.path.insert(0, {root!r}); import autograde.grading.server as s; "
            f"s.main({fd}, {os.getpid()}, {kind!r}, {isolated!r})")
    return [isolation.server_python(), "-I", "-c", boot]


class Zygote:
    """A warm interpreter that forks student processes (one per grading thread and kind)."""

    def __init__(self, kind: str = "torch", isolated: bool = True, start_timeout: float = 300.0):
        self.kind, self.isolated = kind, isolated
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        t0 = time.perf_counter()
        argv = _server_argv(child.fileno(), kind, isolated)
        preexec, env = None, zygote_env()
        if isolated:
            try:
                argv, preexec = isolation.server_command(argv, kind=kind, env=env)
            except isolation.Unavailable as exc:
                raise SandboxError(str(exc)) from None
        self.proc = subprocess.Popen(
            argv, pass_fds=[child.fileno()], env=env, cwd="/", stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=None, preexec_fn=preexec, start_new_session=not isolated,
        )
        child.close()
        self.ctl = parent
        self.ctl.settimeout(start_timeout)
        try:
            hello, _ = self._recv()
        except (socket.timeout, OSError, ValueError) as exc:
            self.close()
            raise SandboxError(f"the student-process server did not start ({exc})") from None
        if not hello.get("ready"):
            self.close()
            raise SandboxError("the student-process server did not start (see the error above)")
        self.ctl.settimeout(120.0)
        self.start_seconds = time.perf_counter() - t0
        self.lock = threading.Lock()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _recv(self) -> tuple[dict, list[int]]:
        data, fds, _, _ = socket.recv_fds(self.ctl, 1 << 16, 4)
        if not data:
            raise SandboxError("the student-process server died")
        reply = json.loads(data)
        if not isinstance(reply, dict):
            raise SandboxError("the student-process server answered nonsense")
        return reply, fds

    def _ask(self, req: dict, fds: list[int] = ()) -> tuple[dict, list[int]]:
        with self.lock:
            socket.send_fds(self.ctl, [json.dumps(req).encode()], list(fds))
            return self._recv()

    def fork(self, sock: socket.socket) -> tuple[int, int, str | None]:
        """(pid, pidfd, scratch folder or None when isolated) of a new student process."""
        reply, fds = self._ask({"op": "fork"}, [sock.fileno()])
        if "pid" not in reply or len(fds) != 1:
            for f in fds:
                os.close(f)
            raise SandboxError(f"the student-process server could not fork ({reply.get('error', 'no pid')})")
        return int(reply["pid"]), fds[0], reply.get("home")

    def kill(self, pid: int) -> int | None:
        return self._ask({"op": "kill", "pid": pid})[0].get("status")

    def close(self) -> None:
        try:
            socket.send_fds(self.ctl, [json.dumps({"op": "quit"}).encode()], [])
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.ctl.close()


_local = threading.local()


def zygote_state() -> dict:
    """This thread's started servers, by (kind, isolated)."""
    return _local.__dict__.setdefault("zygotes", {})


def get_zygote(kind: str = "torch", isolated: bool = True) -> Zygote:
    """This thread's zygote of that kind, started on first use (and again if it died)."""
    zygotes = zygote_state()
    z = zygotes.get((kind, isolated))
    if z is None or not z.alive():
        z = zygotes[(kind, isolated)] = Zygote(kind, isolated)
        atexit.register(z.close)
    return z
