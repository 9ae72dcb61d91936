"""Where and how the PyTorch reference runs.

The reference runs on CUDA when `torch.cuda.is_available()`, on the CPU otherwise. Override with
the environment variable AUTOGRADE_DEVICE=cpu|cuda.
It computes in float64 with TF32 off, so the reference's own rounding error (~1e-16 relative) is
negligible next to every tolerance a check states.
"""
from __future__ import annotations

import os

import numpy as np

_torch = None


def torch():
    """Import torch lazily and fix its numerics once: float64 references, no TF32."""
    global _torch
    if _torch is None:
        import torch as t

        t.backends.cuda.matmul.allow_tf32 = False
        t.backends.cudnn.allow_tf32 = False
        _torch = t
    return _torch


def reference_device() -> str:
    """'cuda' or 'cpu': the device the reference computes on (AUTOGRADE_DEVICE overrides)."""
    want = os.environ.get("AUTOGRADE_DEVICE", "").strip().lower()
    t = torch()
    if want == "cpu":
        return "cpu"
    if want == "cuda":
        if not t.cuda.is_available():
            raise RuntimeError("AUTOGRADE_DEVICE=cuda but torch.cuda.is_available() is False")
        return "cuda"
    if want:
        raise ValueError(f"AUTOGRADE_DEVICE must be 'cpu' or 'cuda', not {want!r}")
    return "cuda" if t.cuda.is_available() else "cpu"


def tensor(a, dtype=None, requires_grad: bool = False):
    """A numpy array as a float64 (or integer) tensor on the reference device."""
    t = torch()
    a = np.asarray(a)
    if dtype is None:
        dtype = t.float64 if a.dtype.kind == "f" else t.int64 if a.dtype.kind in "iu" else None
    x = t.as_tensor(a, dtype=dtype, device=reference_device())
    return x.requires_grad_(True) if requires_grad else x


def numpy(x) -> np.ndarray:
    """A tensor (any device) as a float64/int64 numpy array."""
    return x.detach().cpu().numpy()
