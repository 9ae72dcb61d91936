"""What a student process cannot compute with, set up in the warm server before any student code.

* **numpy exercises**: the deep-learning frameworks are not on disk in that server's sandbox
  (:mod:`.isolation` covers their folders), so no import, ``importlib``, ``ctypes``, subprocess or
  worker can reach them. :func:`block_frameworks` adds a clear message: importing ``torch`` gives
  a module whose every attribute raises :class:`FrameworkUnavailable` (an unused ``import torch``
  still costs nothing).
* **torch exercises**: every ATen normalization operator (batch, layer, group, instance, RMS norm,
  forward and backward, every overload) gets a kernel that raises
  :class:`NormalizationUnavailable`, registered in PyTorch's dispatcher for the CPU and CUDA keys:
  whatever route reaches it (``F.batch_norm``, ``torch.ops.aten``, an ``nn.BatchNorm1d``, a
  subclass, C code calling C code), the built-in normalization does not run. The registration's
  handle is dropped without a Python reference, so student code cannot find it to undo it.

The grader's own checks run in another process, untouched by either.
"""
from __future__ import annotations

import re
import sys
import types

NORMALIZATION_OPS = re.compile(r"^aten::\w*(batch|layer|group|instance|rms)_norm")


class FrameworkUnavailable(ImportError):
    """A numpy exercise's process reached for a deep-learning framework."""


class NormalizationUnavailable(RuntimeError):
    """A torch exercise's process called a built-in normalization."""


def _framework_message(name: str) -> str:
    return (f"{name} is not available here: this is a numpy exercise, graded in a process without any "
            f"deep-learning framework. Compute with numpy. This test earns no points.")


#: what student code assigned on an absent framework (torch.allclose = ...): reported as tampering
PATCHED: list[str] = []


class _Absent(types.ModuleType):
    def __setattr__(self, attr, value):
        if not (attr.startswith("__") or isinstance(value, types.ModuleType)):  # the import system sets those
            PATCHED.append(f"{self.__name__}.{attr} was replaced or patched (it does not exist here)")
        super().__setattr__(attr, value)

    def __getattr__(self, attr):
        if attr.startswith("__") and attr.endswith("__") and attr not in ("__path__", "__version__"):
            raise AttributeError(attr)
        raise FrameworkUnavailable(_framework_message(self.__name__.split(".")[0]))


class _Finder:
    """Meta-path finder: a framework import gives an :class:`_Absent` module."""

    def __init__(self, names):
        self.names = frozenset(names)

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] not in self.names:
            return None
        import importlib.machinery

        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec):
        mod = _Absent(spec.name)
        mod.__path__ = []
        return mod

    def exec_module(self, module):
        pass


def block_frameworks(names) -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in names:
            del sys.modules[name]
    sys.meta_path.insert(0, _Finder(names))


def _blocked(*args, **kwargs):
    raise NormalizationUnavailable(
        "a built-in normalization (an ATen *_norm operator) was called: in this exercise the "
        "normalization must be computed from basic tensor operations (mean, var, sqrt...). "
        "This test earns no points.")


def block_normalizations() -> int:
    """Register the raising kernel for every normalization operator; returns how many overloads."""
    import ctypes
    import warnings

    import torch

    lib = torch._C._dispatch_library("IMPL", "aten", "")
    n = 0
    with warnings.catch_warnings():  # "Overriding a previously registered kernel": that is the point
        warnings.simplefilter("ignore")
        for full in torch._C._dispatch_get_all_op_names():
            if not NORMALIZATION_OPS.match(full):
                continue
            for key in ("CPU", "CUDA"):
                lib.impl(full[len("aten::"):], key, _blocked, False)
                n += 1
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(lib))  # kept alive by a count no Python object holds
    del lib
    return n
