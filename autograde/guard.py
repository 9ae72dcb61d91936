"""Framework use, detected while the student's code runs (student side; in a notebook's ``check()``
and in the grader's student process alike).

A profile hook (``sys.setprofile`` and ``threading.setprofile``) and an audit hook record calls
into a deep-learning framework ("numpy" policy) or a built-in normalization ("torch" policy);
:meth:`FrameworkGuard.verdict` raises :class:`~autograde.errors.Forbidden` afterwards. In the
grader this is the *flag*; the protection is structural (:mod:`autograde.grading.forbid`).
"""
from __future__ import annotations

import contextvars
import os
import sys
import threading
from _thread import get_ident as _get_ident

from .errors import Forbidden

#: Deep-learning frameworks a numpy answer must not reach (top-level package names).
FRAMEWORKS = ("torch", "torchvision", "torchaudio", "functorch", "tensorflow", "keras", "jax", "jaxlib",
              "flax", "mxnet", "paddle", "mindspore", "theano", "chainer", "cupy")
#: Built-in normalizations a from-scratch torch answer must not call (functions and ATen ops).
NORMALIZATIONS = frozenset({
    "batch_norm", "native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
    "_batch_norm_impl_index", "cudnn_batch_norm", "miopen_batch_norm", "batch_norm_elemt", "batch_norm_stats",
    "layer_norm", "native_layer_norm", "instance_norm", "group_norm", "native_group_norm", "rms_norm",
})
_NORM_MODULE_FILES = ("batchnorm.py", "normalization.py", "instancenorm.py")

_POLICY: contextvars.ContextVar[str] = contextvars.ContextVar("autograde_framework_policy", default="")


class framework_policy:
    """``with framework_policy("numpy"):`` makes :func:`execute` guard the drivers it runs.
    "numpy": no deep-learning framework; "torch": no built-in normalization; "": no guard."""

    def __init__(self, policy: str | None):
        self.policy = policy or ""

    def __enter__(self):
        self._token = _POLICY.set(self.policy)
        return self

    def __exit__(self, *exc):
        _POLICY.reset(self._token)
        return False


def current_policy() -> str:
    """The framework policy of the test now running ("" outside a test)."""
    return _POLICY.get()


def _framework_dirs() -> tuple[str, ...]:
    import importlib.util

    dirs = []
    for name in FRAMEWORKS:
        mod = sys.modules.get(name)
        locations = list(getattr(mod, "__path__", []) or []) if mod is not None else []
        if not locations:
            try:
                spec = importlib.util.find_spec(name)
            except (ImportError, ValueError):
                spec = None
            locations = list(spec.submodule_search_locations or []) if spec is not None else []
        dirs += [os.path.join(os.path.realpath(d), "") for d in locations]
    return tuple(dirs)


_FRAMEWORK_DIRS: tuple[str, ...] | None = None
_AUDIT_INSTALLED = False
_ACTIVE_GUARDS: list = []
# Threads (the grader's student process only, see watch_threads): a profile hook only applies to
# its own thread, so every thread the student's code starts carries _thread_dispatch, which hands
# its calls to the active guard; a thread that runs without it is evasion.
_WATCH_THREADS = False
_WATCHED: set[int] = set()  # threads whose calls reached _thread_dispatch
_UNWATCHED: set[int] = set()  # threads that changed their own profile hook since: never trusted again
_THREADING_FILE = threading.__file__


def _thread_dispatch(frame, event, arg):
    _WATCHED.add(_get_ident())
    if _ACTIVE_GUARDS:
        _ACTIVE_GUARDS[-1]._hook(frame, event, arg)


def watch_threads() -> None:
    """In the grader's student process, before any student code: every thread started afterwards
    (threading, concurrent.futures...) is watched by the framework guard, and a guarded call during
    which an unwatched thread runs (started with _thread, or its hook removed) is Forbidden."""
    global _WATCH_THREADS

    _WATCH_THREADS = True
    threading.setprofile(_thread_dispatch)


def _audit(event: str, args) -> None:  # an audit hook cannot be removed: it watches the guard's hooks
    if event not in ("sys.setprofile", "sys.settrace"):
        return
    try:
        caller = sys._getframe(1).f_code
    except ValueError:  # called from C with no Python frame
        caller = None
    if caller is not None and caller.co_name == "_bootstrap_inner" and caller.co_filename == _THREADING_FILE:
        return  # threading installing threading's hook at a thread's start (threading.setprofile is watched)
    if _WATCH_THREADS:
        _UNWATCHED.add(_get_ident())
    if _ACTIVE_GUARDS and not _ACTIVE_GUARDS[-1]._own_call:
        _ACTIVE_GUARDS[-1].evasion.append(f"it called {event}()")


def _blind_threads() -> set[int]:
    """Threads other than this one that run without _thread_dispatch (when watching)."""
    trusted, me = _WATCHED - _UNWATCHED, _get_ident()
    return {ident for ident, frame in sys._current_frames().items()
            if ident != me and ident not in trusted and not _starting(frame)}


def _starting(frame) -> bool:
    """A thread that threading is still starting (its hook comes just before run()): every frame
    of its stack in threading.py, none of them run()."""
    while frame is not None:
        if frame.f_code.co_filename != _THREADING_FILE or frame.f_code.co_name == "run":
            return False
        frame = frame.f_back
    return True


def _module_of_c(arg) -> str:
    mod = getattr(arg, "__module__", None)
    if isinstance(mod, str) and mod:
        return mod
    owner = getattr(arg, "__self__", None)
    if owner is None:
        return ""
    if type(owner).__name__ == "module":
        return getattr(owner, "__name__", "") or ""
    return getattr(type(owner), "__module__", "") or ""


class FrameworkGuard:
    """A profile hook (``sys.setprofile`` and ``threading.setprofile``) that records calls into a
    framework ("numpy" policy) or into a built-in normalization ("torch" policy) while the
    student's code runs; :meth:`verdict` raises :class:`Forbidden` afterwards, so the student's
    code cannot catch it. An unused import is not a call and is not penalized."""

    def __init__(self, policy: str):
        global _FRAMEWORK_DIRS, _AUDIT_INSTALLED
        self.policy = policy
        self.hits: list[str] = []
        self.evasion: list[str] = []
        self._own_call = False
        self._fn = self._hook  # one bound method, so that `sys.getprofile() is self._fn` holds
        if _FRAMEWORK_DIRS is None:
            _FRAMEWORK_DIRS = _framework_dirs()
        self.dirs = _FRAMEWORK_DIRS
        if not _AUDIT_INSTALLED:
            sys.addaudithook(_audit)
            _AUDIT_INSTALLED = True

    def _is_framework(self, mod: str) -> bool:
        return mod.split(".", 1)[0] in FRAMEWORKS

    def _hook(self, frame, event, arg):
        if len(self.hits) > 3:
            return
        if event == "c_call":
            mod = _module_of_c(arg)
            if not mod or not self._is_framework(mod):
                return
            name = getattr(arg, "__name__", "?")
            if self.policy == "numpy":
                self.hits.append(f"{mod}.{name}")
            elif name in NORMALIZATIONS:
                self.hits.append(f"{mod}.{name}")
        elif event == "call":
            filename = frame.f_code.co_filename
            if filename == _THREADING_FILE and frame.f_code.co_name in ("setprofile", "settrace"):
                self.evasion.append(f"it called threading.{frame.f_code.co_name}()")  # hides later threads
                return
            if not filename.startswith(self.dirs):
                return
            name = frame.f_code.co_name
            if self.policy == "numpy":
                self.hits.append(f"{frame.f_globals.get('__name__', filename)}.{name}")
            elif name in NORMALIZATIONS or (name == "forward" and filename.endswith(_NORM_MODULE_FILES)):
                self.hits.append(f"{frame.f_globals.get('__name__', filename)}.{name}")

    def __enter__(self):
        self._own_call = True
        self._old = sys.getprofile()
        self._old_threading = getattr(threading, "_profile_hook", None)
        # threads started during the call: this guard's hook (or, when watching, the dispatcher)
        threading.setprofile(_thread_dispatch if _WATCH_THREADS else self._fn)
        sys.setprofile(self._fn)
        self._own_call = False
        self._blind_check()
        _ACTIVE_GUARDS.append(self)
        return self

    def _blind_check(self) -> None:
        blind = _blind_threads() if _WATCH_THREADS else ()
        if blind:
            self.evasion.append(f"{len(blind)} thread(s) it started run without the grader's profile hook "
                                f"(started with _thread, or the hook removed)")

    def __exit__(self, *exc):
        if sys.getprofile() is not self._fn:
            self.evasion.append("the profile hook was replaced")
        self._blind_check()
        self._own_call = True
        sys.setprofile(self._old)
        threading.setprofile(self._old_threading)
        self._own_call = False
        if _ACTIVE_GUARDS and _ACTIVE_GUARDS[-1] is self:
            _ACTIVE_GUARDS.pop()
        return False

    def verdict(self, what: str) -> None:
        if self.evasion:
            raise Forbidden(
                f"{what} switched off the grader's framework detection ({'; '.join(dict.fromkeys(self.evasion))}). "
                f"Answers must not touch sys.setprofile/sys.settrace. This test earns no points."
            )
        if not self.hits:
            return
        seen = ", ".join(dict.fromkeys(self.hits[:3]))
        if self.policy == "numpy":
            raise Forbidden(
                f"{what} uses a deep-learning framework ({seen} ran during the call). This is a numpy exercise: "
                f"compute with numpy, not tensors or torch functions. This test earns no points."
            )
        raise Forbidden(
            f"{what} calls a built-in normalization ({seen}). Compute the normalization yourself from "
            f"tensor operations (mean, var, sqrt...). This test earns no points."
        )


def call_recorder():
    """A TorchFunctionMode that records the name of every torch function called under it (a module
    driver names the built-in normalizations a student's module called; torch is imported here only
    then, in the torch exercises' process)."""
    from torch.overrides import TorchFunctionMode

    class CallRecorder(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.names: set[str] = set()

        def __torch_function__(self, func, types, args=(), kwargs=None):
            self.names.add(str(getattr(func, "__name__", func)))
            return func(*args, **(kwargs or {}))

    return CallRecorder()
