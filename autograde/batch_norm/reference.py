"""PyTorch reference for the `batch_norm` assignment (float64 on the reference device).

Everything goes through ``torch.nn.functional.batch_norm`` (the function behind
``nn.BatchNorm1d`` and ``nn.BatchNorm2d``) and autograd. Its conventions are the contract:
normalize with the biased batch variance, ``running = (1 - momentum) * running + momentum * batch``
with the *unbiased* variance in ``running_var``, and running statistics in eval mode. For an
(N, C, H, W) input it normalizes each channel over (N, H, W), which is what spatial batch norm is.
"""
from __future__ import annotations

import numpy as np

from ..device import numpy, tensor, torch


def batch_norm(x, gamma, beta, running_mean, running_var, *, training: bool, momentum: float, eps: float,
               dout=None) -> dict:
    """One step of F.batch_norm on float64 copies of the inputs.

    x: (N, D) or (N, C, H, W); gamma, beta, running_mean, running_var: (D,) or (C,).
    Returns {"out", "running_mean", "running_var"} (the running statistics after the step, updated
    only in training mode) and, when ``dout`` (shape of x) is given, the gradients
    {"dx", "dgamma", "dbeta"} of sum(out * dout) by autograd."""
    F = torch().nn.functional
    # copies: torch.as_tensor shares a float64 array's memory on the CPU, and F.batch_norm updates
    # the running statistics in place
    rm, rv = tensor(np.array(running_mean, np.float64)), tensor(np.array(running_var, np.float64))
    grad = dout is not None
    xt = tensor(np.asarray(x, np.float64), requires_grad=grad)
    g = tensor(np.asarray(gamma, np.float64), requires_grad=grad)
    b = tensor(np.asarray(beta, np.float64), requires_grad=grad)
    out = F.batch_norm(xt, rm, rv, g, b, training=training, momentum=momentum, eps=eps)
    res = {"out": numpy(out), "running_mean": numpy(rm).copy(), "running_var": numpy(rv).copy()}
    if grad:
        dx, dg, db = torch().autograd.grad(out, (xt, g, b), tensor(np.asarray(dout, np.float64)))
        res.update(dx=numpy(dx), dgamma=numpy(dg), dbeta=numpy(db))
    return res
