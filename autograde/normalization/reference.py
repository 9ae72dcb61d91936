"""PyTorch reference for the `normalization` assignment (float64 on the reference device).

``F.layer_norm(x, (D,), gamma, beta, eps)`` for (N, D) input and ``F.group_norm(x, G, gamma,
beta, eps)`` for (N, C, H, W) input, with autograd for the gradients. Their conventions are the
contract: statistics per example (over the last dimension for layer norm, over each group of
C / G channels and all positions for group norm), the biased variance, eps inside the square
root, gamma and beta per feature (layer norm) or per channel (group norm), no running statistics.
"""
from __future__ import annotations

import numpy as np

from ..device import numpy, tensor, torch


def _run(fn, x, gamma, beta, dout) -> dict:
    grad = dout is not None
    xt = tensor(np.asarray(x, np.float64), requires_grad=grad)
    g = None if gamma is None else tensor(np.asarray(gamma, np.float64), requires_grad=grad)
    b = None if beta is None else tensor(np.asarray(beta, np.float64), requires_grad=grad)
    out = fn(xt, g, b)
    res = {"out": numpy(out)}
    if grad:
        wrt = [t for t in (xt, g, b) if t is not None]
        grads = torch().autograd.grad(out, wrt, tensor(np.asarray(dout, np.float64)))
        res.update(zip(("dx", "dgamma", "dbeta"), map(numpy, grads)))
    return res


def layer_norm(x, gamma, beta, *, eps: float, dout=None) -> dict:
    """F.layer_norm over the last dimension of x (N, D); gamma, beta (D,). Returns {"out"} and, when
    ``dout`` (N, D) is given, {"dx", "dgamma", "dbeta"}: the gradients of sum(out * dout)."""
    F = torch().nn.functional
    d = np.shape(x)[-1]
    return _run(lambda xt, g, b: F.layer_norm(xt, (d,), g, b, eps), x, gamma, beta, dout)


def group_norm(x, gamma, beta, groups: int, *, eps: float, dout=None) -> dict:
    """F.group_norm of x (N, C, H, W) with ``groups`` groups; gamma, beta (C,) or None (no affine).
    Returns {"out"} and, with ``dout``, the gradients of sum(out * dout) (dgamma, dbeta only when
    gamma and beta are given)."""
    F = torch().nn.functional
    return _run(lambda xt, g, b: F.group_norm(xt, groups, g, b, eps), x, gamma, beta, dout)
