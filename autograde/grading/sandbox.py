"""The isolated student process, and the grader's handle on it (:class:`RemoteStudent`).

How a student process comes to be
---------------------------------
Each grading worker starts a warm *server* (zygote) per kind of exercise, inside the allow-list
sandbox of :mod:`.isolation` (``bwrap``), as ``python -I`` with a scrubbed environment: "numpy"
(no deep-learning framework exists there: :mod:`.forbid`) and "torch" (torch imported, its
built-in normalizations replaced by kernels that raise). The server imports numpy (and torch),
IPython, matplotlib and the ``autograde`` drivers once, records the tamper baseline
(:mod:`.tamper`), and then only forks: one child per notebook and kind (and again after a
timeout or a crash). Forking a warm interpreter costs milliseconds, not the seconds an
``import torch`` takes.

The child, before any student code runs:

* starts a new session, dies if the server dies, and enters its own user, PID, IPC, network and
  mount namespaces with a private size-capped ``/tmp`` and ``/dev/shm`` and its own ``/proc``
  (:func:`.isolation.enter_student`); it drops every capability, with ``no_new_privs``;
* sets resource limits: address space (``--memory``, default 4 GiB; it counts the ~0.7 GB the
  warm interpreter already maps), file size, no core dumps;
* clears the environment (HOME and TMPDIR are its scratch folder in its private /tmp,
  MPLBACKEND=Agg, one thread for BLAS/OpenMP), reads stdin from /dev/null and writes
  stdout/stderr to files there whose text travels to the grader inside its messages (never shown
  in feedback, never costing points; the grader opens no file a student process wrote);
* executes the student's code cells in order (test cells skipped; a failing cell is skipped,
  like a kernel would), reporting each cell before it runs so that the grader can skip a cell
  that hangs or kills the process when it starts a fresh one;
* serves driver requests: the grader sends (driver module, qualname, arguments, framework
  policy) pickled; the child runs :func:`autograde.core.execute` and answers with plain data
  (:mod:`.wire`: JSON + validated array buffers) and the tamper report.

The grader enforces the time limits and the notebook's time budget itself (killing the child's
process group; its PID namespace dies with it), and decodes nothing but plain data from the
child or the server (the server's replies are JSON).
"""
from __future__ import annotations

import ctypes
import importlib
import importlib.util
import os
import json
import pickle
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from .. import core
from . import isolation, wire

GiB = 2**30
DEFAULT_MEMORY = 4 * GiB
DEFAULT_TIMEOUT = 30.0
UID_BASE = isolation.UID_BASE

PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 36, 38


class SandboxError(Exception):
    """The student process could not be started at all (a grader-side problem)."""


class Timeout(Exception):
    pass


class BudgetSpent(Timeout):
    """The submission's time budget is used up."""


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
OUTPUT = ("stdout", "stderr")


def _confine(spec: dict, isolated: bool) -> dict:
    """Limits, capabilities, environment and working folder of the student process (its
    namespaces, when isolated, were made by :func:`.isolation.enter_student`). Returns what holds."""
    import resource

    home = spec["home"]
    os.makedirs(home, mode=0o700, exist_ok=True)
    mem = int(spec.get("memory") or 0)
    if mem > 0:
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    fsize = int(spec.get("fsize", GiB))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    if isolated:
        isolation.drop_capabilities()
        info = {
            "sandbox": "bubblewrap: allow-list file system (interpreter, libraries and autograde, read-only)",
            "network": "isolated (new network namespace, no interface up: no socket of any kind reaches out)",
            "files": f"a private {isolation.TMP_SIZE // 2**20} MiB /tmp and {isolation.SHM_SIZE // 2**20} MiB "
                     f"/dev/shm; nothing of the course or the grader exists here",
            "processes": "its own PID namespace (it is PID 1: what it starts dies with it) and IPC namespace",
            "user": f"uid {os.getuid()} (unprivileged, no capabilities, no_new_privs)",
        }
    else:
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        info = {"sandbox": "none (--no-isolation): the student's code runs as the grader's user",
                "network": "not isolated", "files": "not isolated", "processes": "not isolated",
                "user": f"uid {os.getuid()} (the grader's own)"}
    env = {
        "HOME": home, "TMPDIR": home, "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg", "MPLCONFIGDIR": os.path.join(home, ".matplotlib"), "USER": "student",
        "LOGNAME": "student", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
    }
    os.environ.clear()
    os.environ.update(env)
    tempfile.tempdir = home
    os.chdir(home)
    sys.argv = ["student"]
    info["memory_limit"] = mem
    return info


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
        if name.startswith("autograde.") and name.count(".") == 1:
            c = vars(mod).get("check")  # never imports the checks (a numpy exercise's process has no torch)
            if callable(c):
                checks.append(c)
    out = []
    if "check" in ns and not any(ns["check"] is c for c in checks):
        out.append("the notebook redefines `check`, the course's test helper")
    return out


class _Output:
    """The student process's stdout/stderr: files in its own scratch folder, whose new text
    travels to the grader inside each message (capped); the grader never opens them."""

    CAP = 4096

    def __init__(self, folder: str):
        self.paths = {name: os.path.join(folder, f".{name}.txt") for name in OUTPUT}
        self.sent = dict.fromkeys(OUTPUT, 0)

    def redirect(self) -> None:
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        for fd, name in ((1, "stdout"), (2, "stderr")):
            f = os.open(self.paths[name], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.dup2(f, fd)
            os.close(f)
        sys.stdin = open(0, "r", closefd=False)
        sys.stdout = open(1, "w", buffering=1, closefd=False, encoding="utf-8", errors="replace")
        sys.stderr = open(2, "w", buffering=1, closefd=False, encoding="utf-8", errors="replace")

    def new(self) -> dict[str, str]:
        out = {}
        for name in OUTPUT:
            try:
                getattr(sys, name).flush()
                with open(self.paths[name], "rb") as f:
                    f.seek(self.sent[name])
                    data = f.read(self.CAP)
                    self.sent[name] = f.seek(0, 2)
                out[name] = data.decode("utf-8", errors="replace")
            except (OSError, ValueError, AttributeError):
                out[name] = ""
        return out


def _child_main(sock: socket.socket, baseline: dict, parent: int, kind: str, isolated: bool, home: str | None) -> None:
    """Never returns. ``parent``: the zygote's pid."""
    try:
        die_with_parent(parent)  # the zygote may have been killed before this line
        os.setsid()
        if isolated:
            isolation.enter_student()  # from here on: PID 1 of the student's namespaces
        spec = wire.recv_pickle(sock)
        spec["home"] = "/tmp/home" if isolated else home
        output = _Output(os.path.dirname(spec["home"]) if isolated else spec["home"])
        os.makedirs(spec["home"], mode=0o700, exist_ok=True)
        output.redirect()
        info = _confine(spec, isolated)
        _write_files(spec["home"], spec.get("files") or {})
    except BaseException as exc:  # noqa: BLE001
        try:
            wire.send_frame(sock, wire.pack({"type": "fatal", "message": f"{type(exc).__name__}: {exc}"}))
        finally:
            os._exit(70)
    try:
        _serve(sock, spec, info, baseline, kind, output)
    except BaseException:  # noqa: BLE001 - the student's doing (closed our socket...) or EOF
        pass
    finally:
        os._exit(0)


def _serve(sock: socket.socket, spec: dict, info: dict, baseline: dict, kind: str, output: _Output) -> None:
    from .. import notebook
    from . import forbid, tamper

    send = lambda header, buffers=(): wire.send_frame(sock, wire.pack(header, list(buffers)))  # noqa: E731
    send({"type": "hello", "isolation": info})
    ns: dict = {"__name__": "__main__"}
    errors, memory = [], []
    # without torch, a statement that reaches for it is skipped and the cell goes on: an `import
    # torch` or a torch demo beside the numpy answers costs nothing
    resume = (forbid.FrameworkUnavailable,) if kind == "numpy" else ()
    for i, src in spec["cells"]:
        send({"type": "cell", "index": i})
        try:
            _, errs = notebook.exec_cells([(i, src)], ns, filename=spec.get("filename", "notebook"), resume_on=resume)
            errors += errs
            memory += [i for e in errs if ": MemoryError:" in e]
        except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt in a cell
            errors.append(f"cell {i}: {type(exc).__name__}: {str(exc)[:200]}")
    def changed() -> list[str]:
        try:
            return tamper.compare(baseline) + _redefined_helpers(ns)
        except BaseException as exc:  # noqa: BLE001 - something the student did broke the check itself
            return [f"the tamper check itself failed ({type(exc).__name__})"]

    reported = set()
    found = changed()
    reported.update(found)
    send({"type": "ready", "errors": errors, "memory_cells": memory, "tamper": found, **output.new()})
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
            outcome = {"value": None, "error": wire.error_record(exc), "seconds": 0.0}
        try:
            tree, buffers = wire.encode(outcome["value"])
        except wire.TooLarge as exc:
            tree, buffers = None, []
            outcome = {"value": None, "error": {"type": "OutputTooLarge", "message": str(exc), "where": ""},
                       "seconds": outcome.get("seconds", 0.0)}
        err = outcome["error"]
        if err is not None:
            err = {k: str(err.get(k) or "")[:2000] for k in ("type", "message", "where")}
        new = [t for t in changed() if t not in reported]
        reported.update(new)
        header = {"type": "result", "value": tree, "error": err, "seconds": float(outcome.get("seconds") or 0.0),
                  "tamper": new, **output.new()}
        try:
            frame = wire.pack(header, buffers)
        except (wire.TooLarge, ValueError, TypeError) as exc:  # e.g. a list of ten million numbers
            header.update(value=None, error={"type": "OutputTooLarge", "message": str(exc)[:200], "where": ""})
            frame = wire.pack(header, [])
        wire.send_frame(sock, frame)


# =============================================================================================
# The zygote (a warm interpreter that forks student processes)
# =============================================================================================
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
    from .. import core, device, notebook, paths  # noqa: F401

    for name in paths.assignments():
        for sub in (("drivers",) if kind == "numpy" else ("checks", "drivers")):
            if importlib.util.find_spec(f"autograde.{name}.{sub}") is None:
                continue
            try:
                importlib.import_module(f"autograde.{name}.{sub}")
            except Exception:  # noqa: BLE001 - an assignment being written: grading it fails later, clearly
                pass
    core.FrameworkGuard("numpy")  # fills lazy module state (framework dirs, audit hook) now
    core.watch_threads()  # before the baseline: removing the thread hook is then tampering too
    if kind != "numpy":
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


def _kill_everything(pid: int, statuses: dict) -> None:
    """Kill the student process and its process group (when isolated, its PID namespace dies
    with it), and every descendant left with the zygote (a subreaper), then reap them."""
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except (ProcessLookupError, PermissionError):
            pass
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


def zygote_main(fd: int, parent: int, kind: str, isolated: bool) -> None:
    """The server: forks one student process per request. Its replies are JSON (a fork's reply
    carries the child's pidfd), so the grader never unpickles what this process sends."""
    ctl = socket.socket(fileno=fd)
    if not isolated:  # inside bwrap, --die-with-parent does this (the parent is in another PID namespace)
        die_with_parent(parent)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
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
                _child_main(student, baseline, me, kind, isolated, home)
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
            _kill_everything(pid, statuses)
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


# =============================================================================================
# The grader side
# =============================================================================================
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
    boot = (f"import sys; sys.path.insert(0, {root!r}); import autograde.grading.sandbox as s; "
            f"s.zygote_main({fd}, {os.getpid()}, {kind!r}, {isolated!r})")
    return [sys.executable, "-I", "-c", boot]


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


def get_zygote(kind: str = "torch", isolated: bool = True) -> Zygote:
    """This thread's zygote of that kind, started on first use (and again if it died)."""
    zygotes = _local.__dict__.setdefault("zygotes", {})
    z = zygotes.get((kind, isolated))
    if z is None or not z.alive():
        z = zygotes[(kind, isolated)] = Zygote(kind, isolated)
        import atexit

        atexit.register(z.close)
    return z


class Channel:
    """Grader end of the socket to one student process: deadlines, death detection (pidfd),
    size caps. Reads frames as bytes; never unpickles."""

    def __init__(self, sock: socket.socket, pidfd: int):
        self.sock = sock
        self.sock.setblocking(False)
        self.pidfd = pidfd
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
    skipping any cell that hung or killed the process) after a timeout or a crash.

    ``kind`` picks the server: "numpy" (no deep-learning framework exists in the process) or
    "torch" (built-in normalizations raise). ``budget`` (seconds) caps everything this
    submission's notebook may cost, cells re-run after restarts included: once spent, every
    later request fails at once with a timeout."""

    def __init__(self, cells: list[tuple[int, str]], *, timeout: float = DEFAULT_TIMEOUT,
                 cell_timeout: float | None = None, memory: int = DEFAULT_MEMORY, filename: str = "notebook",
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
        zygotes = dict(getattr(_local, "zygotes", {}))
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
        for name in OUTPUT:
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
                err = {k: wire.clean(str(err.get(k) or ""))[:2000] for k in ("type", "message", "where")}
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
        except BudgetSpent:
            sb._event("timeout", f"{what} was not run: the notebook used up its time budget of {sb.budget:g} s")
            raise core.CheckFailure(
                f"{what} was not run: your notebook used up its time budget of {sb.budget:g} s (all its cells and "
                f"calls together, restarts included). Look for cells or functions that run far too long.") from None
        except SandboxError:
            raise
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
    print("the student-process server is started by the grader (autograde.grading.sandbox.Zygote)", file=sys.stderr)
    sys.exit(2)
