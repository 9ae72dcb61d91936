"""The student process: what runs in the child the server forks, before and around the student's code.

It enters its namespaces (:func:`.isolation.enter_student`), confines itself (limits, no
capabilities, a cleared environment, its scratch folder), writes the submission's files, runs the
notebook's cells and then serves driver requests, answering with plain data only (:mod:`.wire`)
and the tamper report (:mod:`.tamper`). Its stdout and stderr are files in its scratch folder whose
new text travels inside each message: the grader never opens a file a student process wrote.
Everything here runs on the student's side of the trust boundary; nothing here is trusted by
the grader.
"""
from __future__ import annotations

import importlib
import os
import socket
import sys
import tempfile

from ..execution import execute
from ..guard import framework_policy
from . import isolation, wire

GiB = 2**30


def confine(spec: dict, isolated: bool, parent: int, output: "_Output") -> dict:
    """Limits, capabilities, environment and working folder of the student process (its
    namespaces, when isolated, were made by :func:`.isolation.enter_student`). Without isolation
    but as root, it still drops to a uid of its own (UID_BASE + its pid: files closed to others,
    the server's and the grader's among them, stay closed). Returns what holds."""
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
    elif os.geteuid() == 0:
        uid = isolation.UID_BASE + os.getpid()
        for path in (home, *output.paths.values()):
            os.chown(path, uid, uid)
        resource.setrlimit(resource.RLIMIT_NPROC, (isolation.NPROC, isolation.NPROC))
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        isolation.prctl(isolation.PR_SET_NO_NEW_PRIVS, 1)
        isolation.die_with_parent(parent)  # again: the change of uid cleared it
        info = {"sandbox": "none (--no-isolation, as root): a uid of its own, no namespaces",
                "network": "not isolated", "files": "what others may read (the grader's closed folders stay closed)",
                "processes": "its uid's (killed together)", "user": f"uid {uid} (unprivileged, unique to this process)"}
    else:
        isolation.prctl(isolation.PR_SET_NO_NEW_PRIVS, 1)
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
        self.paths = {name: os.path.join(folder, f".{name}.txt") for name in wire.OUTPUT}
        self.sent = dict.fromkeys(wire.OUTPUT, 0)

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
        for name in wire.OUTPUT:
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


def main(sock: socket.socket, baseline: dict, parent: int, kind: str, isolated: bool, home: str | None) -> None:
    """Never returns. ``parent``: the zygote's pid."""
    try:
        isolation.die_with_parent(parent)  # the server may have been killed before this line
        os.setsid()
        if isolated:
            isolation.enter_student()  # from here on: PID 1 of the student's namespaces
        spec = wire.recv_pickle(sock)
        spec["home"] = "/tmp/home" if isolated else home
        output = _Output(os.path.dirname(spec["home"]) if isolated else spec["home"])
        os.makedirs(spec["home"], mode=0o700, exist_ok=True)
        output.redirect()
        info = confine(spec, isolated, parent, output)
        _write_files(spec["home"], spec.get("files") or {})
    except BaseException as exc:  # noqa: BLE001
        try:
            wire.send_frame(sock, wire.pack({"type": "fatal", "message": f"{type(exc).__name__}: {exc}"[:2000]}))
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
            with framework_policy(req.get("policy")):
                outcome = execute(driver, ns, tuple(req["args"]))
        except BaseException as exc:  # noqa: BLE001 - KeyboardInterrupt and the like from the student
            outcome = {"value": None, "error": wire.error_record(exc), "seconds": 0.0}
        try:
            tree, buffers = wire.encode(outcome["value"])
        except wire.TooLarge as exc:
            tree, buffers = None, []
            outcome = {"value": None, "error": wire.error("OutputTooLarge", str(exc)), "seconds": outcome.get("seconds", 0.0)}
        err = outcome["error"]
        if err is not None:
            err = wire.error(err.get("type"), err.get("message"), err.get("where"))
        new = [t for t in changed() if t not in reported]
        reported.update(new)
        header = {"type": "result", "value": tree, "error": err, "seconds": float(outcome.get("seconds") or 0.0),
                  "tamper": new, **output.new()}
        try:
            frame = wire.pack(header, buffers)
        except (wire.TooLarge, ValueError, TypeError) as exc:  # e.g. a list of ten million numbers
            header.update(value=None, error=wire.error("OutputTooLarge", str(exc)[:200]))
            frame = wire.pack(header, [])
        wire.send_frame(sock, frame)
