"""What a student process can see and reach: an allow-list sandbox built from user namespaces.

Two layers, the same with and without root:

1. **The warm server** (:mod:`.sandbox`'s zygote) runs inside `bubblewrap <https://github.com/containers/bubblewrap>`_
   (``bwrap``), started by :func:`server_command`: a new user, PID, IPC, network, UTS and mount
   namespace whose file system is built from an allow-list: ``/usr`` and the ``/lib*``, ``/bin``
   links, the interpreter's own folders (``sys.base_prefix``, the virtual environment), the
   ``autograde`` package, read-only; a fresh ``/proc``, a minimal ``/dev``, an empty ``/tmp``.
   Nothing else of the machine exists there: not the course (``solutions/``, the submissions, the
   output folder, the gradebook, ``.git``), not ``/home`` or ``/root``, not ``/run`` (no Unix socket
   of the host), not the grader's command line. The server for numpy exercises also has no deep-
   learning framework on disk: its folders are covered by empty ones. As root, bwrap runs as a
   dedicated unprivileged uid (:func:`grader_uid`) whose private mount namespace first makes the
   interpreter reachable when it sits under a closed folder (pyenv under ``/root``).
2. **Each student process** (:func:`enter_student`, in a child the server forks) unshares a
   further user, PID, IPC, network and mount namespace, mounts its own size-capped ``/tmp``
   (home, working folder, the submission's files) and ``/dev/shm``, and a ``/proc`` that shows its
   own processes only; then drops every capability (bounding set included) with
   ``no_new_privs``. The process that runs the student's code is PID 1 of its namespace: when it
   dies, the kernel kills everything it started, and its files and IPC objects vanish with
   the namespaces. Nothing is left on the host to clean up, also after a SIGKILLed grader
   (``--die-with-parent`` and ``PR_SET_PDEATHSIG`` along the chain).

Where the kernel or the machine does not allow this (no ``bwrap``, user namespaces disabled),
:func:`problem` says why, ``grade`` refuses to run student code unless given
``--no-isolation``, and ``validate`` (a student checking their own notebook) runs without it.
"""
from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]  # .../autograde
UID_BASE = 1_600_000_000  # + a grading worker's pid: the unprivileged uid of its servers when root

#: Top-level packages that are not on disk for a numpy exercise's student process.
FRAMEWORK_PACKAGES = ("torch", "torchvision", "torchaudio", "functorch", "torchgen", "triton", "tensorflow",
                      "keras", "jax", "jaxlib", "flax", "mxnet", "paddle", "mindspore", "theano", "chainer", "cupy")

TMP_SIZE = 512 * 2**20  # a student's /tmp: home, working folder and the submission's files
SHM_SIZE = 64 * 2**20
NPROC = 256  # processes of a grading worker's uid (root), or beyond what the grader's user already runs

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID = 0x00020000, 0x10000000, 0x20000000
CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS = 0x40000000, 0x08000000, 0x04000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 36, 38
SYS_CAPSET = {"x86_64": 126, "aarch64": 91}.get(os.uname().machine)


class Unavailable(Exception):
    """Isolation cannot be set up on this machine (the message says why)."""


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def prctl(option: int, arg: int) -> None:
    _libc().prctl(option, ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))


def die_with_parent(parent: int) -> None:
    """Be SIGKILLed when ``parent`` dies. The prctl covers only a death after the call (and a
    change of uid clears it), so a parent that is already gone (we were reparented) means exit now."""
    prctl(PR_SET_PDEATHSIG, 9)  # SIGKILL
    if os.getppid() != parent:
        os._exit(1)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        raise OSError(ctypes.get_errno(), f"{what}: {os.strerror(ctypes.get_errno())}")


# ---------------------------------------------------------------------------------------------
# What the server sees
# ---------------------------------------------------------------------------------------------
def runtime_paths() -> list[str]:
    """Folders the interpreter needs: its prefixes (base install, virtual environment), the
    folder of the executable, and the autograde package. No other ``sys.path`` entry: a course
    folder on ``PYTHONPATH`` would bring ``solutions/`` along."""
    cands = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.realpath(sys.executable)), str(PACKAGE)}
    cands = {os.path.realpath(p) for p in cands if os.path.isdir(p)}
    cands = {p for p in cands if p != "/" and not p.startswith(("/usr/", "/proc/")) and p != "/usr"}
    return sorted(p for p in cands if not any(p != q and p.startswith(os.path.join(q, "")) for q in cands))


def framework_dirs() -> list[str]:
    """Where the deep-learning frameworks are installed (found without importing them)."""
    out = []
    for name in FRAMEWORK_PACKAGES:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        for d in (spec.submodule_search_locations or []) if spec is not None else []:
            if os.path.isdir(d):
                out.append(os.path.realpath(d))
    return sorted(set(out))


def sandbox_uid(pid: int) -> int:
    """The dedicated uid of the servers (and their student processes) a root process ``pid`` starts."""
    return UID_BASE + pid % 100_000_000


def grader_uid() -> int | None:
    """The uid the servers of this process run as: a dedicated one when root, else ours (None)."""
    return sandbox_uid(os.getpid()) if os.geteuid() == 0 else None


def _others_can_enter(path: str) -> bool:
    try:
        return os.stat(path).st_mode & 0o005 == 0o005
    except OSError:
        return False


def _make_reachable(libc, paths: list[str]) -> None:
    """In a private mount namespace, make each path reachable by an unprivileged uid when one of
    its ancestors is closed to others (e.g. a pyenv Python under /root, mode 0700): the closed
    ancestor is covered by a tmpfs holding nothing but those paths, bind-mounted back."""
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
            return
        inside = [p for p in paths if p == closed or p.startswith(os.path.join(closed, ""))]
        stashes = []
        for p in inside:
            stash = tempfile.mkdtemp(prefix="autograde-stash-")
            _check(libc.mount(p.encode(), stash.encode(), None, MS_BIND | MS_REC, None), f"bind {p}")
            stashes.append((p, stash))
        _check(libc.mount(b"tmpfs", closed.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=0755,size=64k"),
               f"tmpfs on {closed}")
        for p, stash in stashes:
            os.makedirs(p, mode=0o755, exist_ok=True)
            _check(libc.mount(stash.encode(), p.encode(), None, MS_BIND | MS_REC, None), f"bind back {p}")
            libc.umount2(stash.encode(), 2)  # MNT_DETACH
            os.rmdir(stash)


def _user_processes(uid: int) -> int:
    n = 0
    for entry in os.listdir("/proc"):
        try:
            n += entry.isdigit() and os.stat(f"/proc/{entry}").st_uid == uid
        except OSError:
            pass
    return n


def _preexec(uid: int | None, nproc: int):
    """Runs in the forked child just before ``exec bwrap``: as root, a private mount namespace
    that makes the runtime reachable, then the dedicated uid (dumpable again, so that bwrap may
    read its own /proc entries); in both cases the process cap."""
    libc = _libc()
    paths = runtime_paths()

    def run():
        if uid is not None:
            _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
            _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
            _make_reachable(libc, paths)
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        os.setsid()

    return run


def server_command(argv: list[str], *, kind: str, env: dict[str, str]) -> tuple[list[str], object]:
    """(command line, preexec function) that run ``argv`` (the server's Python) inside bwrap,
    with the allow-list view; ``kind`` "numpy" hides the deep-learning frameworks."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise Unavailable("bubblewrap (bwrap) is not installed (Debian/Ubuntu: apt-get install bubblewrap)")
    cmd = [bwrap, "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-net", "--unshare-uts",
           "--unshare-cgroup-try", "--die-with-parent", "--clearenv"]
    for k, v in env.items():
        cmd += ["--setenv", k, v]
    # the fresh mounts first: a runtime folder under /tmp (a pip --target install) is bound on top
    cmd += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--ro-bind", "/usr", "/usr"]
    for top in ("lib", "lib32", "lib64", "libx32", "bin", "sbin"):
        p = f"/{top}"
        if os.path.islink(p):
            cmd += ["--symlink", os.readlink(p), p]
        elif os.path.isdir(p):
            cmd += ["--ro-bind", p, p]
    for f in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime", "/etc/fonts"):
        cmd += ["--ro-bind-try", f, f]
    for p in runtime_paths():
        cmd += ["--ro-bind", p, p]
    if kind == "numpy":
        for d in framework_dirs():
            cmd += ["--perms", "0000", "--tmpfs", d]
    cmd += ["--chdir", "/", "--"] + argv
    uid = grader_uid()
    nproc = NPROC if uid is not None else _user_processes(os.getuid()) + NPROC
    return cmd, _preexec(uid, nproc)


def server_python() -> str:
    """The interpreter the servers run: the executable's folder resolved (a .venv that is itself a
    link is bound at its real path), its name kept (a virtual environment's python finds its
    pyvenv.cfg beside it)."""
    return os.path.join(os.path.realpath(os.path.dirname(sys.executable)), os.path.basename(sys.executable))


_NESTED = ("import ctypes, sys; libc = ctypes.CDLL(None, use_errno=True); "
           f"sys.exit(libc.unshare({CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC}) != 0)")


@functools.lru_cache(maxsize=None)
def problem() -> str | None:
    """None when the sandbox works here; else why not (one line). Probed once per process by
    starting the servers' Python in it, which makes a student process's namespaces (a container
    may allow bwrap's clone but not unshare)."""
    try:
        cmd, pre = server_command([server_python(), "-I", "-c", _NESTED], kind="numpy", env={"PATH": "/usr/bin:/bin"})
        r = subprocess.run(cmd, preexec_fn=pre, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=60)
    except Unavailable as exc:
        return str(exc)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bubblewrap could not start ({type(exc).__name__}: {exc})"
    if r.returncode != 0:
        why = r.stderr.decode(errors="replace").strip().splitlines()
        return (f"bubblewrap could not create its namespaces ({why[-1] if why else f'exit {r.returncode}'}): "
                f"are unprivileged user namespaces disabled (sysctl kernel.unprivileged_userns_clone, "
                f"user.max_user_namespaces, an AppArmor restriction)?")
    return None


# ---------------------------------------------------------------------------------------------
# Each student process (in the server's forked child)
# ---------------------------------------------------------------------------------------------
def enter_student() -> None:
    """Called in a child of the server: new namespaces, then fork. The child's child returns (PID 1
    of its own namespaces: it will run the student's code); this process waits for it and exits
    with its status (it never returns). The child dies with it (PR_SET_PDEATHSIG; its parent,
    outside its PID namespace, shows as pid 0, so the signal is all there is: a kill of this
    process group reaches both)."""
    libc = _libc()
    uid, gid = os.geteuid(), os.getegid()
    _check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS),
           "unshare")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)
    pid = os.fork()
    if pid == 0:
        prctl(PR_SET_PDEATHSIG, 9)  # SIGKILL
        _mount_private()
        return
    # this process runs no student code: it stands for PID 1 outside, and ends with it
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, signal.SIG_DFL)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            os._exit(70)
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code & 0xFF)


def _mount_private() -> None:
    libc = _libc()
    _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    flags = MS_NOSUID | MS_NODEV
    _check(libc.mount(b"tmpfs", b"/tmp", b"tmpfs", flags, f"size={TMP_SIZE},mode=0755".encode()), "tmpfs /tmp")
    os.makedirs("/dev/shm", exist_ok=True)
    _check(libc.mount(b"tmpfs", b"/dev/shm", b"tmpfs", flags | MS_NOEXEC, f"size={SHM_SIZE},mode=1777".encode()),
           "tmpfs /dev/shm")
    _check(libc.mount(b"proc", b"/proc", b"proc", flags | MS_NOEXEC, None), "proc /proc")


def drop_capabilities() -> None:
    """No capability left, now or after an exec (bounding set emptied), and no_new_privs."""
    libc = _libc()
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break  # past the last capability this kernel knows
    if SYS_CAPSET is not None:
        header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
        data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable: all zero (two words)
        _check(libc.syscall(SYS_CAPSET, header, data), "capset")
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
