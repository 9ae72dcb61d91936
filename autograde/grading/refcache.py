"""Caching the PyTorch reference per seed, so that grading workers need no GPU.

A check's inputs depend only on its seed, so the reference values it computes can be computed
ahead of time: :func:`precompute` runs the trusted solution (in the grader's process, on the
reference device, GPU when present) under :class:`Recorder`, which stores every call to a
function of ``autograde.<assignment>.reference`` keyed by the function and a hash of its
arguments. A worker then grades under :func:`replaying` that store: a hit returns the stored
value; a miss (say, a case the solution never reached) is computed locally, on the CPU if the
worker has no GPU, and counted.

The wrappers are installed once per process and read the store of the *current* job from a
context variable, so threads grading different submissions do not interfere.
"""
from __future__ import annotations

import contextvars
import hashlib
import importlib
import pickle
import threading
from contextlib import contextmanager

import numpy as np

_STORE: contextvars.ContextVar = contextvars.ContextVar("autograde_reference_store", default=None)
_INSTALLED: set[str] = set()
_LOCK = threading.Lock()


def _key(name: str, args, kwargs) -> str:
    h = hashlib.sha256(name.encode())

    def feed(v):
        if isinstance(v, np.ndarray):
            h.update(f"nd{v.dtype.str}{v.shape}".encode())
            h.update(np.ascontiguousarray(v).tobytes())
        elif isinstance(v, (list, tuple)):
            h.update(f"{type(v).__name__}{len(v)}".encode())
            for x in v:
                feed(x)
        elif isinstance(v, dict):
            for k in sorted(v, key=str):
                h.update(str(k).encode())
                feed(v[k])
        else:
            h.update(pickle.dumps(v, protocol=4))

    feed(tuple(args))
    feed(dict(kwargs))
    return h.hexdigest()


def install(assignment: str) -> None:
    """Wrap the public functions of ``autograde.<assignment>.reference`` (and the names the
    checks module bound to them) with the store lookup. Idempotent."""
    with _LOCK:
        if assignment in _INSTALLED:
            return
        ref = importlib.import_module(f"autograde.{assignment}.reference")
        checks = importlib.import_module(f"autograde.{assignment}.checks")
        for name, fn in list(vars(ref).items()):
            if name.startswith("_") or not callable(fn) or getattr(fn, "__module__", None) != ref.__name__:
                continue
            wrapped = _wrap(f"{assignment}.{name}", fn)
            setattr(ref, name, wrapped)
            for cname, cval in list(vars(checks).items()):
                if cval is fn:
                    setattr(checks, cname, wrapped)
        _INSTALLED.add(assignment)


def _wrap(qual: str, fn):
    def cached(*args, **kwargs):
        store = _STORE.get()
        if store is None:
            return fn(*args, **kwargs)
        k = _key(qual, args, kwargs)
        if store.mode == "record":
            value = fn(*args, **kwargs)
            store.values[k] = value
            return value
        if k in store.values:
            store.hits += 1
            return store.values[k]
        store.misses += 1
        return fn(*args, **kwargs)

    cached.__wrapped__ = fn
    cached.__name__ = getattr(fn, "__name__", qual)
    cached.__doc__ = getattr(fn, "__doc__", None)
    return cached


class Store:
    def __init__(self, mode: str, values: dict | None = None):
        self.mode = mode
        self.values = {} if values is None else values
        self.hits = 0
        self.misses = 0


@contextmanager
def using(store: Store | None):
    token = _STORE.set(store)
    try:
        yield store
    finally:
        _STORE.reset(token)


def precompute(assignment: str, test_ids: list[str], seed: int, namespace: dict, hidden: bool = True) -> dict:
    """Reference values for every check of ``test_ids`` at ``seed``, computed by running the
    trusted solution (``namespace``) in this process."""
    from ..core import LocalStudent, run_test
    from ..paths import load_tests

    install(assignment)
    tests = load_tests(assignment)
    store = Store("record")
    with using(store):
        for tid in test_ids:
            run_test(tests[tid], LocalStudent(dict(namespace)), seed, hidden=hidden)
    return store.values
