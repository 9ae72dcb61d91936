"""The grader's handle on a student process: :class:`Sandbox` and :class:`RemoteStudent`.

How a student process comes to be
---------------------------------
Each grading worker starts a warm server (:mod:`.server`) per kind of exercise, inside the
allow-list sandbox of :mod:`.isolation` (``bwrap``), as ``python -I`` with a scrubbed environment:
"numpy" (no deep-learning framework exists there) and "torch" (torch imported, its built-in
normalizations replaced by kernels that raise: :mod:`.forbid`). The server forks one
:mod:`.student_process` per notebook and kind (and again after a timeout or a crash): forking a
warm interpreter costs milliseconds, not the seconds an ``import torch`` takes. The child enters
its own user, PID, IPC, network and mount namespaces, confines itself, runs the notebook's cells
and serves driver requests.

This module is the grader's side: :class:`Zygote` starts a server and asks it to fork or kill;
:class:`Channel` talks to one student process with deadlines and death detection (its pidfd);
:class:`Sandbox` runs the notebook's cells there (restarting after a timeout or a crash, skipping
the cell that caused it, within the notebook's time budget) and sends requests;
:class:`RemoteStudent` is the :class:`~autograde.student.Student` the checks talk to. Nothing
from the student's side is unpickled: the server answers JSON, the student process plain data
(:mod:`.wire`).
"""
from __future__ import annotations

import os
import select
import signal
import socket
import sys
import time

from ..errors import CheckFailure
from ..guard import current_policy
from ..student import Student
from . import isolation, wire
from .records import Limits
from .zygote import SandboxError, Zygote, get_zygote, zygote_state

GiB = 2**30
UID_BASE = isolation.UID_BASE


class Timeout(Exception):
    pass


class BudgetSpent(Timeout):
    """The submission's time budget is used up."""


class Died(Exception):
    def __init__(self, status: str):
        super().__init__(status)
        self.status = status


def describe_status(status: int | None) -> str:
    if status is None:
        return "ended"
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with code {code}"



class Channel:
    """Grader end of the socket to one student process: deadlines, death detection (pidfd),
    size caps. Reads frames as bytes; never unpickles."""

    def __init__(self, sock: socket.socket, pidfd: int):
        self.sock = sock
        self.sock.setblocking(False)
        self.pidfd = pidfd
        self.frames = wire.FrameBuffer()

    def send(self, obj, timeout: float) -> None:
        data = wire.request_frame(obj)
        deadline = time.monotonic() + timeout
        view = memoryview(data)
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout()
            r, w, _ = select.select([self.pidfd], [self.sock], [], left)
            if w:
                try:
                    n = self.sock.send(view[: 1 << 20])
                except BlockingIOError:
                    continue
                except OSError:
                    raise Died("closed its connection") from None
                view = view[n:]
            elif r:
                raise Died("ended")

    def recv(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            frame = self.frames.next()
            if frame is not None:
                return wire.unpack(frame)
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout()
            r, _, _ = select.select([self.sock, self.pidfd], [], [], left)
            if self.sock in r:
                try:
                    chunk = self.sock.recv(1 << 20)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    raise Died("closed its connection")
                self.frames.feed(chunk)
            elif self.pidfd in r:
                try:  # what it sent before it ended still counts
                    while True:
                        chunk = self.sock.recv(1 << 20)
                        if not chunk:
                            break
                        self.frames.feed(chunk)
                except (BlockingIOError, OSError):
                    pass
                frame = self.frames.next()
                if frame is not None:
                    return wire.unpack(frame)
                raise Died("ended")

    def close(self) -> None:
        for closer in (self.sock.close, lambda: os.close(self.pidfd)):
            try:
                closer()
            except OSError:
                pass


class Sandbox:
    """The student's notebook code, alive in an isolated process; restarted (cells re-run,
    skipping any cell that hung or killed the process) after a timeout or a crash.

    ``kind`` picks the server: "numpy" (no deep-learning framework exists in the process) or
    "torch" (built-in normalizations raise). ``budget`` (seconds) caps everything this
    submission's notebook may cost, cells re-run after restarts included: once spent, every
    later request fails at once with a timeout."""

    def __init__(self, cells: list[tuple[int, str]], *, timeout: float = Limits.timeout,
                 cell_timeout: float | None = None, memory: int = Limits.memory, filename: str = "notebook",
                 isolate: bool = True, kind: str = "torch", zygote: Zygote | None = None,
                 files: dict[str, bytes] | None = None, budget: float | None = None, deadline: float | None = None):
        self.cells = list(cells)
        self.timeout = float(timeout)
        self.cell_timeout = float(cell_timeout or timeout)
        self.memory = int(memory)
        self.filename = filename
        self.isolate = isolate
        self.kind = kind
        self.files = dict(files or {})  # copied into the scratch folder (the submission folder's files)
        self._zygote = zygote
        self.budget = float(budget) if budget else None
        self.deadline = deadline  # time.monotonic() when the budget is spent (shared by a notebook's sandboxes)
        self.skip: set[int] = set()
        self.events: list[tuple[str, str]] = []  # (flag, explanation): timeout, crash, memory
        self.tamper: list[str] = []
        self.cell_errors: list[str] = []
        self.isolation: dict = {}
        self.starts = 0
        self.timing = {"process_start_s": 0.0, "cells_s": 0.0}
        self.pid: int | None = None
        self.ch: Channel | None = None
        self.stdout = ""
        self.stderr = ""

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def zygote(self) -> Zygote:
        return self._zygote or get_zygote(self.kind, self.isolate)

    def left(self) -> float:
        """Seconds of the budget left (inf without one)."""
        if self.budget is None:
            return float("inf")
        if self.deadline is None:
            self.deadline = time.monotonic() + self.budget
        return max(self.deadline - time.monotonic(), 0.0)

    def _limit(self, seconds: float) -> float:
        left = self.left()
        if left <= 0:
            raise BudgetSpent()
        return min(seconds, left)

    def _spawn(self) -> None:
        t0 = time.perf_counter()
        zygotes = dict(zygote_state())
        zygote = self.zygote
        if self._zygote is None and zygotes.get((self.kind, self.isolate)) is not zygote:  # this call started it
            self.timing["zygote_start_s"] = self.timing.get("zygote_start_s", 0.0) + time.perf_counter() - t0
            t0 = time.perf_counter()
        mine, theirs = socket.socketpair()
        try:
            self.pid, pidfd, _ = zygote.fork(theirs)
        finally:
            theirs.close()
        self.ch = Channel(mine, pidfd)
        self.starts += 1
        cells = [(i, s) for i, s in self.cells if i not in self.skip]
        spec = {"memory": self.memory, "cells": cells, "filename": self.filename, "files": self.files}
        try:
            self.ch.send(spec, timeout=60)
            hello = self.ch.recv(timeout=60)
        except (Timeout, Died, wire.WireError) as exc:
            self._kill()
            raise SandboxError(f"the student process did not start ({type(exc).__name__}: {exc})") from None
        if hello.get("type") != "hello":
            self._kill()
            raise SandboxError(f"the student process did not start: {hello.get('message', hello.get('type'))}")
        self.isolation = hello.get("isolation", {}) if isinstance(hello.get("isolation"), dict) else {}
        self.timing["process_start_s"] += time.perf_counter() - t0

    def start(self) -> None:
        """Start the process and run the cells; a cell that hangs or crashes is skipped."""
        self.close_process()
        for _ in range(len(self.cells) + 2):
            self._spawn()
            t0 = time.perf_counter()
            current = None
            try:
                while True:
                    msg = self.ch.recv(timeout=self._limit(self.cell_timeout if current is not None else 60))
                    self._output(msg)
                    if msg.get("type") == "cell":
                        current = int(msg["index"])
                    elif msg.get("type") == "ready":
                        self.cell_errors = [wire.clean(str(e))[:300] for e in msg.get("errors", [])][:50]
                        for i in msg.get("memory_cells", []):
                            self._event("memory", f"cell {i} ran out of memory (limit {self.memory / GiB:g} GiB)")
                        self._tampered(msg.get("tamper", []))
                        self.timing["cells_s"] += time.perf_counter() - t0
                        return
                    else:
                        raise wire.WireError(f"unexpected message {msg.get('type')!r}")
            except BudgetSpent:
                self._kill()
                self.timing["cells_s"] += time.perf_counter() - t0
                self._event("timeout", f"the notebook used up its time budget of {self.budget:g} s while cell "
                                       f"{current} ran")
                raise
            except Timeout:
                self._kill()
                self._event("timeout", f"cell {current} ran longer than {self.cell_timeout:g} s; it was skipped")
            except Died:
                status = self._kill()
                self._event("crash", f"the process {describe_status(status)} while cell {current} ran; it was skipped")
            except (wire.WireError, ValueError, TypeError) as exc:
                self._kill()
                self._event("crash", f"cell {current} garbled the grader's connection ({exc}); it was skipped")
            self.timing["cells_s"] += time.perf_counter() - t0
            if current is None:
                raise SandboxError("the student process ended before running any cell")
            self.skip.add(current)
        raise SandboxError("too many restarts")

    def _output(self, msg: dict) -> None:
        for name in wire.OUTPUT:
            text = msg.get(name)
            if isinstance(text, str) and text:
                setattr(self, name, (getattr(self, name) + wire.clean(text)[:8192])[-16384:])

    def _event(self, flag: str, message: str) -> None:
        self.events.append((flag, message))

    def events_since(self, n: int) -> list[str]:
        """The flags of the events after the first ``n``."""
        return [flag for flag, _ in self.events[n:]]

    def suspect(self, message: str) -> None:
        """The grader found a sign of tampering outside the process (e.g. saved outputs that lie)."""
        self._tampered([message])

    def _tampered(self, found) -> None:
        for t in found:
            t = wire.clean(str(t))[:300]
            if t not in self.tamper:
                self.tamper.append(t)

    def _kill(self) -> int | None:
        status = None
        if self.pid is not None:
            try:
                status = self.zygote.kill(self.pid)
            except (SandboxError, OSError, ValueError):
                pass
        if self.ch is not None:
            self.ch.close()
        self.pid, self.ch = None, None
        return status

    def close_process(self) -> None:
        if self.pid is not None and self.ch is not None:
            try:
                self.ch.send({"op": "bye"}, timeout=1)
            except (Timeout, Died):
                pass
        self._kill()

    def close(self) -> None:
        """Stop the process (and anything it left behind)."""
        self.close_process()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- requests ----------------------------------------------------------------------------
    def request(self, driver, args: tuple, policy: str = "") -> dict:
        """Run ``driver(namespace, *args)`` in the student process. Returns the outcome
        (decoded plain data); raises Timeout, Died or wire.WireError after killing the process
        (the next request starts a fresh one)."""
        if self.left() <= 0:
            raise BudgetSpent()
        if self.pid is None:
            self.start()
        req = {"op": "call", "module": driver.__module__, "qualname": driver.__qualname__,
               "args": tuple(args), "policy": policy}
        try:
            self.ch.send(req, timeout=self._limit(self.timeout))
            msg = self.ch.recv(timeout=self._limit(self.timeout))
            self._output(msg)
            if msg.get("type") != "result":
                raise wire.WireError(f"unexpected message {msg.get('type')!r}")
            value = wire.decode(msg.get("value"), msg.get("buffers", []))
            err = msg.get("error")
            if err is not None and not (isinstance(err, dict) and all(isinstance(err.get(k), str) for k in ("type", "message"))):
                raise wire.WireError("malformed error")
            if err is not None:
                err = wire.error(err.get("type"), err.get("message"), err.get("where"))
            seconds = msg.get("seconds")
            self._tampered([t for t in msg.get("tamper", []) if isinstance(t, str)][:20])
        except Timeout:
            self._kill()
            raise
        except Died as exc:
            status = self._kill()
            raise Died(describe_status(status)) from exc
        except (wire.WireError, ValueError, TypeError, AttributeError) as exc:  # whatever it sent, it is its failure
            self._kill()
            raise exc if isinstance(exc, wire.WireError) else wire.WireError(f"{type(exc).__name__}: {exc}") from None
        return {"value": value, "error": err, "seconds": float(seconds) if isinstance(seconds, (int, float)) else 0.0}


class RemoteStudent(Student):
    """The student's code in an isolated process: ``_execute`` sends the driver's module,
    qualname and arguments to the :class:`Sandbox` and returns the plain outcome. Time-outs,
    crashes and memory exhaustion become failed checks (and events the grader turns into flags)."""

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox
        self.seconds = 0.0  # wall time of the requests (the student's side), for the timing record
        self.requests = 0

    def _execute(self, driver, args, what):
        sb = self.sandbox
        t0 = time.perf_counter()
        self.requests += 1
        try:
            outcome = sb.request(driver, args, current_policy())
        except BudgetSpent:
            sb._event("timeout", f"{what} was not run: the notebook used up its time budget of {sb.budget:g} s")
            raise CheckFailure(
                f"{what} was not run: your notebook used up its time budget of {sb.budget:g} s (all its cells and "
                f"calls together, restarts included). Look for cells or functions that run far too long.") from None
        except SandboxError:
            raise
        except Timeout:
            sb._event("timeout", f"{what} did not return within {sb.timeout:g} s")
            raise CheckFailure(
                f"{what} did not return within {sb.timeout:g} s, the time limit per call: an endless loop, or far "
                f"too slow? The remaining tests ran in a fresh process.") from None
        except Died as exc:
            sb._event("crash", f"the process {exc.status} while {what} ran")
            raise CheckFailure(
                f"the process running your code {exc.status} while {what} ran (os._exit, sys.exit in a thread, "
                f"a segfault...). The remaining tests ran in a fresh process.") from None
        except wire.WireError as exc:
            raise CheckFailure(
                f"{what} returned something the grader cannot read back ({exc}). Return numpy arrays or "
                f"Python numbers.") from None
        finally:
            self.seconds += time.perf_counter() - t0
        err = outcome["error"]
        if err is not None and err["type"] == "MemoryError":
            sb._event("memory", f"{what} ran out of memory (limit {sb.memory / GiB:g} GiB)")
            raise CheckFailure(
                f"{what} ran out of memory (MemoryError): a student process may use at most "
                f"{sb.memory / GiB:g} GiB. Do not build arrays much larger than the inputs.")
        if err is not None and err["type"] == "OutputTooLarge":
            raise CheckFailure(f"{what} returned too much data ({err['message']}).")
        return outcome


if __name__ == "__main__":
    print("the student-process server is started by the grader (autograde.grading.sandbox.Zygote)", file=sys.stderr)
    sys.exit(2)
