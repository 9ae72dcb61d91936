"""The isolated student process, and the grader's handle on it (:class:`RemoteStudent`).

How a student process comes to be
---------------------------------
Each grading worker starts one *zygote* (``python -m autograde.grading.sandbox --zygote FD``)
with a scrubbed environment. The zygote imports numpy, torch, IPython, matplotlib and every
``autograde`` assignment once, records the tamper baseline (:mod:`.tamper`), and then only
forks: one child per submission (and again after a timeout or a crash). Forking a warm
interpreter costs milliseconds, not the seconds an ``import torch`` takes.

The child, before any student code runs:

* starts a new session (its own process group), and with it dies if the zygote dies;
* as root: enters a new network namespace (no interface but a down loopback: no network) and a
  new mount namespace in which ``solutions/``, ``.git``, the submissions, the output folder and
  the gradebook are covered by empty read-only tmpfs mounts; then drops to an unprivileged
  uid/gid unique to this process (so that every process it leaves behind can be found and
  killed), with ``no_new_privs``;
* sets resource limits: address space (``--memory``, default 4 GiB; it counts the ~0.7 GB the
  warm interpreter already maps), processes (root only, per uid), file size, no core dumps;
* clears the environment (HOME and TMPDIR are its scratch folder, MPLBACKEND=Agg, one thread
  for BLAS/OpenMP), ``chdir``s to a fresh scratch folder, reads stdin from /dev/null and writes
  stdout/stderr to files the grader keeps (never shown in feedback, never cost points);
* executes the student's code cells in order (test cells skipped; a failing cell is skipped,
  like a kernel would), reporting each cell before it runs so that the grader can skip a cell
  that hangs or kills the process when it starts a fresh one;
* serves driver requests: the grader sends (driver module, qualname, arguments, framework
  policy) pickled; the child runs :func:`autograde.core.execute` and answers with plain data
  (:mod:`.wire`: JSON + validated array buffers) and the tamper report.

The grader enforces the time limits itself (it kills the whole process group and every process
of the child's uid), and decodes nothing but plain data from the child.
"""
from __future__ import annotations

import ctypes
import importlib
import os
import pickle
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .. import core
from . import wire

GiB = 2**30
DEFAULT_MEMORY = 4 * GiB
DEFAULT_TIMEOUT = 30.0
UID_BASE = 1_600_000_000  # + the child's pid: a uid no other process has

CLONE_NEWNS, CLONE_NEWNET = 0x00020000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 36, 38


class SandboxError(Exception):
    """The student process could not be started at all (a grader-side problem)."""


class Timeout(Exception):
    pass


class Died(Exception):
    def __init__(self, status: str):
        super().__init__(status)
        self.status = status


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, arg: int) -> None:
    _libc().prctl(option, ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))


def die_with_parent(parent: int) -> None:
    """Be SIGKILLed when ``parent`` dies. The prctl covers only a death after the call (and a
    change of uid clears it), so a parent that is already gone (we were reparented) means exit now."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


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


# =============================================================================================
# The student side (runs in the forked child)
# =============================================================================================
def _isolate(spec: dict, parent: int) -> dict:
    """Namespaces, limits, user, environment, scratch folder. Returns what was achieved."""
    import resource

    info: dict = {"root": os.geteuid() == 0}
    scratch = spec["scratch"]
    libc = _libc()
    if os.geteuid() == 0 and spec.get("isolate", True):
        if libc.unshare(CLONE_NEWNET) == 0:
            info["network"] = "isolated (new network namespace, no interface up)"
        else:
            info["network"] = f"not isolated (unshare(CLONE_NEWNET): {os.strerror(ctypes.get_errno())})"
        hidden = []
        if libc.unshare(CLONE_NEWNS) == 0 and libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) == 0:
            info["exposed"] = _make_reachable(libc, _interpreter_paths())
            for path in spec.get("hide", []):
                if os.path.isfile(path):  # a file (the gradebook): /dev/null in its place
                    if libc.mount(b"/dev/null", path.encode(), None, MS_BIND, None) == 0:
                        hidden.append(path)
                    continue
                inside = os.path.join(path, "")
                if (not os.path.isdir(path) or path == "/" or scratch.startswith(inside)
                        or any(p == path or p.startswith(inside) for p in _interpreter_paths())):
                    continue  # never cover the scratch folder or the interpreter
                flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
                if libc.mount(b"tmpfs", path.encode(), b"tmpfs", flags, b"size=4k,mode=0555") == 0:
                    hidden.append(path)
            info["hidden"] = hidden
        else:
            info["hidden"] = []
            info["mounts"] = f"not isolated ({os.strerror(ctypes.get_errno())})"
    else:
        info["network"] = "not isolated (needs root)" if os.geteuid() != 0 else "not isolated (disabled)"
        info["hidden"] = []
    uid = None
    if os.geteuid() == 0 and spec.get("isolate", True):
        uid = UID_BASE + os.getpid()
        os.chown(scratch, uid, uid)
        for name in ("stdout.txt", "stderr.txt"):
            os.chown(os.path.join(scratch, name), uid, uid)
    mem = int(spec.get("memory") or 0)
    if mem > 0:
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    fsize = int(spec.get("fsize", GiB))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    if uid is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (spec.get("nproc", 64), spec.get("nproc", 64)))
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        info["user"] = f"uid {uid} (unprivileged, unique to this process)"
    else:
        info["user"] = "the grader's own user (no user switch: " + ("not root)" if os.geteuid() else "isolation disabled)")
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    die_with_parent(parent)  # again: setuid cleared it
    env = {
        "HOME": scratch, "TMPDIR": scratch, "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg", "MPLCONFIGDIR": os.path.join(scratch, ".matplotlib"), "USER": "student",
        "LOGNAME": "student", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
    }
    os.environ.clear()
    os.environ.update(env)
    tempfile.tempdir = scratch
    os.chdir(scratch)
    sys.argv = ["student"]
    info["memory_limit"] = mem
    return info


def _interpreter_paths() -> list[str]:
    """Folders the unprivileged student process must be able to read: the interpreter, its
    standard library, site-packages, the autograde package."""
    cands = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.realpath(sys.executable)), str(Path(__file__).resolve().parents[2])}
    cands.update(p for p in sys.path if p and p != "/")
    cands = {os.path.realpath(p) for p in cands if os.path.isdir(p)}
    return sorted(p for p in cands if not any(p != q and p.startswith(os.path.join(q, "")) for q in cands))


def _others_can_enter(path: str) -> bool:
    try:
        return os.stat(path).st_mode & 0o005 == 0o005
    except OSError:
        return False


def _make_reachable(libc, paths: list[str]) -> list[str]:
    """In this (private) mount namespace, make each path readable by an unprivileged user when
    one of its ancestors is closed to others (e.g. a pyenv Python under /root, mode 0700): the
    closed ancestor is covered by a tmpfs that holds nothing but the paths, bind-mounted back.
    Whatever else the closed folder holds stays invisible."""
    exposed = []
    for _ in range(8):
        closed = None
        for p in paths:
            parts = Path(p).parts
            for k in range(2, len(parts) + 1):
                anc = str(Path(*parts[:k]))
                if not _others_can_enter(anc):
                    closed = anc
                    break
            if closed:
                break
        if not closed:
            return exposed
        inside = [p for p in paths if p == closed or p.startswith(os.path.join(closed, ""))]
        stashes = []
        for p in inside:
            stash = tempfile.mkdtemp(prefix="autograde-stash-")
            if libc.mount(p.encode(), stash.encode(), None, MS_BIND | MS_REC, None) != 0:
                return exposed
            stashes.append((p, stash))
        if libc.mount(b"tmpfs", closed.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=0755,size=64k") != 0:
            return exposed
        for p, stash in stashes:
            os.makedirs(p, mode=0o755, exist_ok=True)
            libc.mount(stash.encode(), p.encode(), None, MS_BIND | MS_REC, None)
            libc.umount2(stash.encode(), 2)  # MNT_DETACH
            os.rmdir(stash)
        exposed.append(closed)
    return exposed


def _write_files(scratch: str, files: dict) -> None:
    """The submission's files (its notebooks, data) in the scratch folder, as the student."""
    root = os.path.realpath(scratch)
    for rel, data in files.items():
        path = os.path.realpath(os.path.join(root, rel))
        if not path.startswith(os.path.join(root, "")) or not isinstance(data, bytes):
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)


def _redefined_helpers(ns: dict) -> list[str]:
    """`check` (the notebooks' test helper) bound to something that is not autograde's own."""
    checks = []
    for name, mod in list(sys.modules.items()):
        if name.startswith("autograde.") and name.count(".") == 1 and callable(getattr(mod, "check", None)):
            checks.append(mod.check)
    out = []
    if "check" in ns and not any(ns["check"] is c for c in checks):
        out.append("the notebook redefines `check`, the course's test helper")
    return out


def _child_main(sock: socket.socket, baseline: dict, parent: int) -> None:
    """Never returns. ``parent``: the zygote's pid."""
    try:
        die_with_parent(parent)  # the zygote may have been killed before this line
        os.setsid()
        spec = wire.recv_pickle(sock)
        scratch = spec["scratch"]
        out = os.open(os.path.join(scratch, "stdout.txt"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        err = os.open(os.path.join(scratch, "stderr.txt"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        for fd in (null, out, err):
            os.close(fd)
        sys.stdin = open(0, "r", closefd=False)
        sys.stdout = open(1, "w", buffering=1, closefd=False, encoding="utf-8", errors="replace")
        sys.stderr = open(2, "w", buffering=1, closefd=False, encoding="utf-8", errors="replace")
        info = _isolate(spec, parent)
        _write_files(spec["scratch"], spec.get("files") or {})
    except BaseException as exc:  # noqa: BLE001
        try:
            wire.send_frame(sock, wire.pack({"type": "fatal", "message": f"{type(exc).__name__}: {exc}"}))
        finally:
            os._exit(70)
    try:
        _serve(sock, spec, info, baseline)
    except BaseException:  # noqa: BLE001 - the student's doing (closed our socket...) or EOF
        pass
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:  # noqa: BLE001
            pass
        os._exit(0)


def _serve(sock: socket.socket, spec: dict, info: dict, baseline: dict) -> None:
    from .. import notebook
    from . import tamper

    send = lambda header, buffers=(): wire.send_frame(sock, wire.pack(header, list(buffers)))  # noqa: E731
    send({"type": "hello", "isolation": info})
    ns: dict = {"__name__": "__main__"}
    errors, memory = [], []
    for i, src in spec["cells"]:
        send({"type": "cell", "index": i})
        try:
            _, errs = notebook.exec_cells([(i, src)], ns, filename=spec.get("filename", "notebook"))
            errors += errs
            memory += [i for e in errs if ": MemoryError:" in e]
        except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt in a cell
            errors.append(f"cell {i}: {type(exc).__name__}: {str(exc)[:200]}")
    reported = set()
    found = tamper.compare(baseline) + _redefined_helpers(ns)
    reported.update(found)
    send({"type": "ready", "errors": errors, "memory_cells": memory, "tamper": found})
    while True:
        try:
            req = wire.recv_pickle(sock)
        except EOFError:
            return
        if req.get("op") == "bye":
            return
        if req.get("op") != "call":
            continue
        try:
            mod = importlib.import_module(req["module"])
            driver = mod
            for part in req["qualname"].split("."):
                driver = getattr(driver, part)
            with core.framework_policy(req.get("policy")):
                outcome = core.execute(driver, ns, tuple(req["args"]))
        except BaseException as exc:  # noqa: BLE001 - KeyboardInterrupt and the like from the student
            outcome = {"value": None, "error": {"type": type(exc).__name__, "message": str(exc)[:2000], "where": ""},
                       "seconds": 0.0}
        try:
            tree, buffers = wire.encode(outcome["value"])
        except wire.TooLarge as exc:
            tree, buffers = None, []
            outcome = {"value": None, "error": {"type": "OutputTooLarge", "message": str(exc), "where": ""},
                       "seconds": outcome.get("seconds", 0.0)}
        err = outcome["error"]
        if err is not None:
            err = {k: str(err.get(k) or "")[:2000] for k in ("type", "message", "where")}
        new = [t for t in tamper.compare(baseline) + _redefined_helpers(ns) if t not in reported]
        reported.update(new)
        header = {"type": "result", "value": tree, "error": err, "seconds": float(outcome.get("seconds") or 0.0),
                  "tamper": new}
        try:
            frame = wire.pack(header, buffers)
        except (wire.TooLarge, ValueError, TypeError) as exc:  # e.g. a list of ten million numbers
            header.update(value=None, error={"type": "OutputTooLarge", "message": str(exc)[:200], "where": ""})
            frame = wire.pack(header, [])
        wire.send_frame(sock, frame)


# =============================================================================================
# The zygote (a warm interpreter that forks student processes)
# =============================================================================================
def _warm_imports() -> dict:
    """Import what students and drivers use, initialize lazy state, and take the baseline."""
    import numpy  # noqa: F401
    import numpy.fft  # noqa: F401
    import numpy.linalg  # noqa: F401
    import numpy.random  # noqa: F401
    import numpy.testing  # noqa: F401

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
    except ImportError:
        pass
    for optional in ("IPython", "matplotlib.pyplot"):
        try:
            importlib.import_module(optional)
        except Exception:  # noqa: BLE001 - optional
            pass
    from .. import core, device, notebook, paths  # noqa: F401

    for name in paths.assignments():
        try:
            importlib.import_module(f"autograde.{name}")
            importlib.import_module(f"autograde.{name}.checks")
        except Exception:  # noqa: BLE001 - an assignment being written: grading it fails later, clearly
            pass
    core.FrameworkGuard("numpy")  # fills lazy module state (framework dirs, audit hook) now
    core.watch_threads()  # before the baseline: removing the thread hook is then tampering too
    try:
        device.torch()
    except Exception:  # noqa: BLE001
        pass
    from . import tamper

    return tamper.snapshot()


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


def _kill_everything(pid: int, uid: int | None, statuses: dict) -> None:
    """Kill the student process, its process group, every process of its uid, and every
    descendant left with the zygote (a subreaper), then reap them."""
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except (ProcessLookupError, PermissionError):
            pass
    if uid is not None and os.geteuid() == 0:
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


def zygote_main(fd: int, parent: int) -> None:
    ctl = socket.socket(fileno=fd)
    die_with_parent(parent)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    if sys.path and sys.path[0] in ("", "/", os.getcwd()):
        del sys.path[0]  # `python -m` put the working directory first
    me = os.getpid()
    baseline = _warm_imports()
    statuses: dict[int, int | None] = {}
    ctl.sendall(pickle.dumps({"ready": True, "pid": me}))
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(ctl, 1 << 16, 4)
        except (ConnectionError, OSError):
            os._exit(0)
        if not data:
            os._exit(0)
        req = pickle.loads(data)
        op = req.get("op")
        if op == "fork":
            student = socket.socket(fileno=fds[0])
            pid = os.fork()
            if pid == 0:
                os.close(ctl.detach())
                _child_main(student, baseline, me)
                os._exit(0)
            student.close()
            _reap(statuses)
            ctl.sendall(pickle.dumps({"pid": pid}))
        elif op == "kill":
            for f in fds:
                os.close(f)
            pid = req["pid"]
            _kill_everything(pid, req.get("uid"), statuses)
            ctl.sendall(pickle.dumps({"status": statuses.pop(pid, None)}))
        elif op == "quit":
            os._exit(0)
        else:
            for f in fds:
                os.close(f)
            ctl.sendall(pickle.dumps({"error": f"unknown op {op!r}"}))


# =============================================================================================
# The grader side
# =============================================================================================
def zygote_env() -> dict:
    """The scrubbed environment of the zygote (and so of the student processes before they clear it)."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": tempfile.gettempdir(),
        "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }


class Zygote:
    """A warm interpreter that forks student processes (one per grading thread)."""

    def __init__(self, start_timeout: float = 300.0):
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "autograde.grading.sandbox", "--zygote", str(child.fileno()), str(os.getpid())],
            pass_fds=[child.fileno()], env=zygote_env(), cwd="/", stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=None, start_new_session=False,
        )
        child.close()
        self.ctl = parent
        self.ctl.settimeout(start_timeout)
        try:
            hello = pickle.loads(self.ctl.recv(1 << 16) or pickle.dumps({}))
        except (socket.timeout, OSError) as exc:
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

    def _ask(self, req: dict, fds: list[int] = ()) -> dict:
        with self.lock:
            socket.send_fds(self.ctl, [pickle.dumps(req)], list(fds))
            data = self.ctl.recv(1 << 16)
        if not data:
            raise SandboxError("the student-process server died")
        return pickle.loads(data)

    def fork(self, sock: socket.socket) -> int:
        return int(self._ask({"op": "fork"}, [sock.fileno()])["pid"])

    def kill(self, pid: int, uid: int | None) -> int | None:
        return self._ask({"op": "kill", "pid": pid, "uid": uid}).get("status")

    def close(self) -> None:
        try:
            socket.send_fds(self.ctl, [pickle.dumps({"op": "quit"})], [])
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.ctl.close()


_local = threading.local()


def get_zygote() -> Zygote:
    """This thread's zygote, started on first use (and again if it died)."""
    z = getattr(_local, "zygote", None)
    if z is None or not z.alive():
        z = _local.zygote = Zygote()
        import atexit

        atexit.register(z.close)
    return z


class Channel:
    """Grader end of the socket to one student process: deadlines, death detection (pidfd),
    size caps. Reads frames as bytes; never unpickles."""

    def __init__(self, sock: socket.socket, pid: int):
        self.sock = sock
        self.sock.setblocking(False)
        self.pidfd = os.pidfd_open(pid)
        self.buf = bytearray()

    def send(self, obj, timeout: float) -> None:
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        data = struct.pack("!Q", len(data)) + data
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

    def _frame(self) -> bytes | None:
        if len(self.buf) < 8:
            return None
        (n,) = struct.unpack("!Q", self.buf[:8])
        if n > wire.MAX_FRAME:
            raise wire.TooLarge(f"a message of {n} bytes")
        if len(self.buf) < 8 + n:
            return None
        frame = bytes(self.buf[8:8 + n])
        del self.buf[:8 + n]
        return frame

    def recv(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            frame = self._frame()
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
                self.buf += chunk
            elif self.pidfd in r:
                try:  # what it sent before it ended still counts
                    while True:
                        chunk = self.sock.recv(1 << 20)
                        if not chunk:
                            break
                        self.buf += chunk
                except (BlockingIOError, OSError):
                    pass
                frame = self._frame()
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
    skipping any cell that hung or killed the process) after a timeout or a crash."""

    def __init__(self, cells: list[tuple[int, str]], *, timeout: float = DEFAULT_TIMEOUT,
                 cell_timeout: float | None = None, memory: int = DEFAULT_MEMORY, hide: tuple[str, ...] = (),
                 filename: str = "notebook", isolate: bool = True, zygote: Zygote | None = None,
                 files: dict[str, bytes] | None = None):
        self.cells = list(cells)
        self.timeout = float(timeout)
        self.cell_timeout = float(cell_timeout or timeout)
        self.memory = int(memory)
        self.hide = [str(p) for p in hide]
        self.filename = filename
        self.isolate = isolate
        self.files = dict(files or {})  # copied into the scratch folder (the submission folder's files)
        self._zygote = zygote
        self.skip: set[int] = set()
        self.events: list[tuple[str, str]] = []  # (flag, explanation): timeout, crash, memory
        self.tamper: list[str] = []
        self.cell_errors: list[str] = []
        self.isolation: dict = {}
        self.starts = 0
        self.timing = {"process_start_s": 0.0, "cells_s": 0.0}
        self.pid: int | None = None
        self.ch: Channel | None = None
        self.scratch: str | None = None
        self.stdout = ""
        self.stderr = ""

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def zygote(self) -> Zygote:
        return self._zygote or get_zygote()

    def _uid(self) -> int | None:
        return UID_BASE + self.pid if (os.geteuid() == 0 and self.isolate and self.pid) else None

    def _spawn(self) -> None:
        t0 = time.perf_counter()
        fresh = getattr(_local, "zygote", None)
        zygote = self.zygote
        if zygote is not fresh and self._zygote is None:  # this call started the warm server
            self.timing["zygote_start_s"] = self.timing.get("zygote_start_s", 0.0) + time.perf_counter() - t0
            t0 = time.perf_counter()
        self._drop_scratch()  # a fresh folder per process: the previous one belonged to another uid
        self.scratch = tempfile.mkdtemp(prefix="autograde-student-")
        os.chmod(self.scratch, 0o700)
        mine, theirs = socket.socketpair()
        try:
            self.pid = zygote.fork(theirs)
        finally:
            theirs.close()
        self.ch = Channel(mine, self.pid)
        self.starts += 1
        cells = [(i, s) for i, s in self.cells if i not in self.skip]
        spec = {"scratch": self.scratch, "memory": self.memory, "hide": self.hide, "cells": cells,
                "filename": self.filename, "isolate": self.isolate, "files": self.files}
        try:
            self.ch.send(spec, timeout=60)
            hello = self.ch.recv(timeout=60)
        except (Timeout, Died, wire.WireError) as exc:
            self._kill()
            raise SandboxError(f"the student process did not start ({type(exc).__name__}: {exc})") from None
        if hello.get("type") != "hello":
            self._kill()
            raise SandboxError(f"the student process did not start: {hello.get('message', hello.get('type'))}")
        self.isolation = hello.get("isolation", {})
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
                    msg = self.ch.recv(timeout=self.cell_timeout if current is not None else 60)
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
            except Timeout:
                self._kill()
                self._event("timeout", f"cell {current} ran longer than {self.cell_timeout:g} s; it was skipped")
            except Died:
                status = self._kill()
                self._event("crash", f"the process {describe_status(status)} while cell {current} ran; it was skipped")
            except wire.WireError as exc:
                self._kill()
                self._event("crash", f"cell {current} garbled the grader's connection ({exc}); it was skipped")
            self.timing["cells_s"] += time.perf_counter() - t0
            if current is None:
                raise SandboxError("the student process ended before running any cell")
            self.skip.add(current)
        raise SandboxError("too many restarts")

    def _event(self, flag: str, message: str) -> None:
        self.events.append((flag, message))

    def _tampered(self, found) -> None:
        for t in found:
            t = wire.clean(str(t))[:300]
            if t not in self.tamper:
                self.tamper.append(t)

    def _kill(self) -> int | None:
        status = None
        if self.pid is not None:
            try:
                status = self.zygote.kill(self.pid, self._uid())
            except (SandboxError, OSError):
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

    def _drop_scratch(self) -> None:
        """Keep the (capped) output of the process that used the scratch folder, remove it."""
        if not self.scratch:
            return
        for name in ("stdout", "stderr"):
            try:
                with open(os.path.join(self.scratch, f"{name}.txt"), "rb") as f:
                    data = f.read(8192).decode("utf-8", errors="replace")
                setattr(self, name, (getattr(self, name) + data)[-16384:])
            except OSError:
                pass
        import shutil

        shutil.rmtree(self.scratch, ignore_errors=True)
        self.scratch = None

    def close(self) -> None:
        """Stop the process (and anything it left behind), keep its output, remove scratch."""
        self.close_process()
        self._drop_scratch()

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
        if self.pid is None:
            self.start()
        req = {"op": "call", "module": driver.__module__, "qualname": driver.__qualname__,
               "args": tuple(args), "policy": policy}
        try:
            self.ch.send(req, timeout=self.timeout)
            msg = self.ch.recv(timeout=self.timeout)
            if msg.get("type") != "result":
                raise wire.WireError(f"unexpected message {msg.get('type')!r}")
            value = wire.decode(msg.get("value"), msg.get("buffers", []))
            err = msg.get("error")
            if err is not None and not (isinstance(err, dict) and all(isinstance(err.get(k), str) for k in ("type", "message"))):
                raise wire.WireError("malformed error")
            if err is not None:
                err = {k: wire.clean(str(err.get(k) or ""))[:2000] for k in ("type", "message", "where")}
            seconds = msg.get("seconds")
            self._tampered([t for t in msg.get("tamper", []) if isinstance(t, str)][:20])
        except Timeout:
            self._kill()
            raise
        except Died as exc:
            status = self._kill()
            raise Died(describe_status(status)) from exc
        except wire.WireError:
            self._kill()
            raise
        return {"value": value, "error": err, "seconds": float(seconds) if isinstance(seconds, (int, float)) else 0.0}


class RemoteStudent(core.Student):
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
            outcome = sb.request(driver, args, core.current_policy())
        except Timeout:
            sb._event("timeout", f"{what} did not return within {sb.timeout:g} s")
            raise core.CheckFailure(
                f"{what} did not return within {sb.timeout:g} s, the time limit per call: an endless loop, or far "
                f"too slow? The remaining tests ran in a fresh process.") from None
        except Died as exc:
            sb._event("crash", f"the process {exc.status} while {what} ran")
            raise core.CheckFailure(
                f"the process running your code {exc.status} while {what} ran (os._exit, sys.exit in a thread, "
                f"a segfault...). The remaining tests ran in a fresh process.") from None
        except wire.WireError as exc:
            raise core.CheckFailure(
                f"{what} returned something the grader cannot read back ({exc}). Return numpy arrays or "
                f"Python numbers.") from None
        finally:
            self.seconds += time.perf_counter() - t0
        err = outcome["error"]
        if err is not None and err["type"] == "MemoryError":
            sb._event("memory", f"{what} ran out of memory (limit {sb.memory / GiB:g} GiB)")
            raise core.CheckFailure(
                f"{what} ran out of memory (MemoryError): a student process may use at most "
                f"{sb.memory / GiB:g} GiB. Do not build arrays much larger than the inputs.")
        if err is not None and err["type"] == "OutputTooLarge":
            raise core.CheckFailure(f"{what} returned too much data ({err['message']}).")
        return outcome


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--zygote":
        zygote_main(int(sys.argv[2]), int(sys.argv[3]))
    else:
        print("usage: python -m autograde.grading.sandbox --zygote FD PARENT_PID", file=sys.stderr)
        sys.exit(2)
