"""Tamper detection inside the student process: the identity of everything a student could patch.

Before the student's code runs, :func:`snapshot` records the identity (``id``) of every attribute
of numpy (and numpy.testing, linalg, random, fft), torch (torch.nn, torch.nn.functional, the
methods of ``torch.Tensor``), math, builtins, copy, IPython (when importable), every module of
the ``autograde`` package and the methods of its classes, the profiling/tracing functions of
``sys`` and ``threading``, and which module object ``sys.modules`` holds for each of those.
For Python functions it also records their code object and defaults (so ``f.__code__ = ...``
counts as a change). :func:`compare` lists what changed: an attribute replaced or deleted, a
new non-module attribute, a profile or trace function installed, a module swapped in
``sys.modules``.

This runs in the student's process, so a determined student could defeat the detector itself;
what cannot be defeated is the score, which the grader computes in its own process. The flag is
a signal for the instructor, not the protection.
"""
from __future__ import annotations

import sys
import types

WATCHED_MODULES = (
    "numpy", "numpy.testing", "numpy.linalg", "numpy.random", "numpy.fft",
    "torch", "torch.nn", "torch.nn.functional", "torch.testing",
    "math", "builtins", "copy", "IPython",
)
SYS_NAMES = ("setprofile", "settrace", "getprofile", "gettrace", "audit", "addaudithook", "_getframe", "exc_info")
THREADING_NAMES = ("setprofile", "settrace")
# attributes that change without anyone tampering: the REPL's last value; the reference device's
# lazy torch (the set-up cell's check.ready() fills it; no student-side module reads it)
IGNORED = {"builtins": {"_", "__builtins__"}, "autograde.device": {"_torch"}}


def _ignored(name: str):
    """Attributes that may change: an assignment package binds ``check`` on first use (lazily, so
    that a numpy exercise's process never imports the checks and torch)."""
    lazy = {"check", "validate"} if name.startswith("autograde.") and name.count(".") == 1 else set()
    return lazy | set(IGNORED.get(name, ()))


def _watched_classes() -> dict[str, type]:
    out = {}
    torch = sys.modules.get("torch")
    tensor = vars(torch).get("Tensor") if isinstance(torch, types.ModuleType) else None  # no torch: nothing
    if isinstance(tensor, type):
        out["torch.Tensor"] = tensor
        base = vars(getattr(torch, "_C", None) or types).get("TensorBase")
        if isinstance(base, type):
            out["torch._C.TensorBase"] = base
    for name, mod in list(sys.modules.items()):
        if name == "autograde" or name.startswith("autograde."):
            for attr, val in list(vars(mod).items()):
                if isinstance(val, type) and getattr(val, "__module__", "") == name:
                    out[f"{name}.{attr}"] = val
    return out


def _modules() -> dict[str, types.ModuleType]:
    mods = {name: sys.modules[name] for name in WATCHED_MODULES if name in sys.modules}
    for name, mod in list(sys.modules.items()):
        if (name == "autograde" or name.startswith("autograde.")) and isinstance(mod, types.ModuleType):
            mods[name] = mod
    return mods


_Function = types.FunctionType


def _sig(value):
    """Identity of a value, plus the code/defaults of a Python function (or of the function a
    numpy dispatcher wraps), so that ``f.__code__ = ...`` counts as a change."""
    t = type(value)
    if t is _Function:
        return (id(value), id(value.__code__), id(value.__defaults__), id(value.__kwdefaults__))
    if t.__name__ == "_ArrayFunctionDispatcher":
        impl = getattr(value, "_implementation", None)
        code = getattr(impl, "__code__", None)
        return (id(value), id(impl), id(code), id(getattr(impl, "__defaults__", None)))
    if t is staticmethod or t is classmethod:
        return (id(value), _sig(value.__func__))
    return id(value)


def _sigs(d: dict, base: dict | None, ignored=()) -> dict:
    return {k: _sig(v) for k, v in d.items()
            if k not in ignored and (base is None or k in base or not isinstance(v, types.ModuleType))}


def snapshot() -> dict:
    """Everything :func:`compare` checks, as of now."""
    snap: dict[str, object] = {"modules": {}, "attrs": {}, "keys": {}}
    for name, mod in _modules().items():
        snap["modules"][name] = id(mod)
        snap["attrs"][name] = _sigs(dict(vars(mod)), None, _ignored(name))
    for name, cls in _watched_classes().items():
        snap["attrs"][name] = _sigs(dict(vars(cls)), None)
    snap["sys"] = {k: id(getattr(sys, k, None)) for k in SYS_NAMES}
    threading = sys.modules.get("threading")
    snap["threading"] = {k: id(getattr(threading, k, None)) for k in THREADING_NAMES}
    snap["hooks"] = (id(sys.getprofile()), id(sys.gettrace()), id(getattr(threading, "_profile_hook", None)),
                     id(getattr(threading, "_trace_hook", None)))
    return snap


class _Baseline:
    """Meta-path finder: an ``autograde`` module imported after the snapshot (the checks, which the
    server does not import) gets its baseline the moment its import finishes, before the student's
    next statement could patch it."""

    def __init__(self, snap: dict):
        self.snap = snap

    def find_spec(self, name, path=None, target=None):
        if not (name == "autograde" or name.startswith("autograde.")):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Recording(spec.loader, self.snap)
                return spec
        return None


class _Recording:
    def __init__(self, loader, snap: dict):
        self._loader, self._snap = loader, snap

    def __getattr__(self, attr):
        return getattr(self._loader, attr)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        name = module.__name__
        self._snap["modules"].setdefault(name, id(module))
        self._snap["attrs"].setdefault(name, _sigs(dict(vars(module)), None, _ignored(name)))
        for attr, val in list(vars(module).items()):
            if isinstance(val, type) and getattr(val, "__module__", "") == name:
                self._snap["attrs"].setdefault(f"{name}.{attr}", _sigs(dict(vars(val)), None))


def watch_imports(snap: dict) -> None:
    """From now on, baseline each ``autograde`` module when it is first imported (see :class:`_Baseline`)."""
    sys.meta_path.insert(0, _Baseline(snap))


def compare(base: dict, limit: int = 20) -> list[str]:
    """What changed since ``base`` (human-readable, at most ``limit`` lines)."""
    out: list[str] = []
    mods = {}
    for name, ident in base["modules"].items():
        mod = sys.modules.get(name)
        if mod is None or id(mod) != ident:
            out.append(f"sys.modules[{name!r}] was replaced or removed")
        mods[name] = mod
    classes = _watched_classes()
    for name, attrs in base["attrs"].items():
        target = mods.get(name) if name in base["modules"] else classes.get(name)
        if target is None:
            continue
        try:
            d = dict(vars(target))
        except TypeError:
            continue
        now = _sigs(d, attrs, _ignored(name))
        if now == attrs:
            continue
        for k, sig in attrs.items():
            if k not in now:
                out.append(f"{name}.{k} was deleted")
            elif now[k] != sig:
                out.append(f"{name}.{k} was replaced or patched")
        for k in now:
            if k not in attrs:
                out.append(f"{name}.{k} was added")
        if len(out) >= limit:
            break
    for k, ident in base["sys"].items():
        if id(getattr(sys, k, None)) != ident:
            out.append(f"sys.{k} was replaced")
    threading = sys.modules.get("threading")
    for k, ident in base["threading"].items():
        if id(getattr(threading, k, None)) != ident:
            out.append(f"threading.{k} was replaced")
    hooks = (id(sys.getprofile()), id(sys.gettrace()), id(getattr(threading, "_profile_hook", None)),
             id(getattr(threading, "_trace_hook", None)))
    if hooks != base["hooks"]:
        out.append("a profile or trace function (sys.setprofile/settrace) was installed")
    absent = sys.modules.get("autograde.grading.forbid")  # patches of a framework that is not there
    out += list(dict.fromkeys(getattr(absent, "PATCHED", [])))
    return out[:limit]
