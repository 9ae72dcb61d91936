"""PyTorch reference for the `gradient_descent` assignment (float64 on the reference device).

* :func:`sgd_trajectory` runs ``torch.optim.SGD`` on given parameters and a given sequence of
  gradients (set as ``p.grad`` before each step) and returns the parameters after every step.
* :func:`train` is the training loop the students write, with torch autograd for the loss and
  ``torch.optim.SGD`` for the update, on the batches that :func:`epoch_batches` defines.
* :func:`epoch_batches` is the batching rule over several epochs: it is numpy's, since the batches
  are defined by the draws of a seeded ``numpy.random.Generator`` (one ``permutation(n)`` per epoch),
  and the rule for one epoch is written once, in :func:`drivers.epoch_batches` (what the student's
  ``train`` gets in place of ``minibatch_indices``).

Every function takes plain data (arrays, numbers, str, seeds) and returns plain data, so that the
grader can compute it ahead of time per seed (see autograde/grading/refcache.py).
"""
from __future__ import annotations

import numpy as np

from ..device import numpy, tensor, torch
from . import drivers


def epoch_batches(n: int, batch_size: int, seed: int, epochs: int) -> list[list[np.ndarray]]:
    """The batches of ``epochs`` epochs drawn from ``np.random.default_rng(seed)``: per epoch one
    ``rng.permutation(n)`` cut in order into chunks of ``batch_size`` (the last one shorter when
    ``batch_size`` does not divide ``n``). Returns [epoch][batch] -> int64 array of indices."""
    rng = np.random.default_rng(seed)
    return [drivers.epoch_batches(n, batch_size, rng) for _ in range(epochs)]


def sgd_trajectory(params: list, grads: list, lr: float, momentum: float = 0.0, dampening: float = 0.0,
                   weight_decay: float = 0.0, nesterov: bool = False) -> list[list[np.ndarray]]:
    """``torch.optim.SGD(params, lr, momentum, dampening, weight_decay, nesterov)`` for
    ``len(grads)`` steps, where step t sets ``p.grad = grads[t][i]`` for every parameter i.

    params: list of arrays (any shapes); grads: [step][parameter] arrays of the same shapes.
    Returns [step][parameter]: the parameters after each step (float64)."""
    t = torch()
    ps = [tensor(p, dtype=t.float64).clone().requires_grad_(True) for p in params]
    opt = t.optim.SGD(ps, lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                      nesterov=nesterov)
    out = []
    for gs in grads:
        for p, g in zip(ps, gs):
            p.grad = tensor(g, dtype=t.float64)
        opt.step()
        out.append([numpy(p).copy() for p in ps])
    return out


def _loss(model: str, W, b, X, y):
    F = torch().nn.functional
    out = X @ W + b
    if model == "least_squares":
        return F.mse_loss(out, y)
    if model == "softmax_regression":
        return F.cross_entropy(out, y)
    raise ValueError(f"unknown model {model!r}")


def train(model: str, params: list, X: np.ndarray, y: np.ndarray, hyper: dict, batch_size: int, epochs: int,
          seed: int) -> dict:
    """The training loop: for each epoch and each batch ``idx`` of :func:`epoch_batches`, the loss
    of ``model`` (``"least_squares"``: F.mse_loss(X W + b, y); ``"softmax_regression"``:
    F.cross_entropy(X W + b, y)) on (X[idx], y[idx]) by autograd, then one
    ``torch.optim.SGD(**hyper)`` step.

    params: [W (D, K), b (K,)]; X (N, D); y (N, K) floats or (N,) class indices.
    Returns {"losses": (updates,) the loss before each update, "final": [W, b] after the last}."""
    t = torch()
    W, b = (tensor(p, dtype=t.float64).clone().requires_grad_(True) for p in params)
    opt = t.optim.SGD([W, b], **hyper)
    Xt, yt = tensor(X), tensor(y)
    losses = []
    for epoch in epoch_batches(len(X), batch_size, seed, epochs):
        for idx in epoch:
            i = tensor(idx)
            opt.zero_grad()
            loss = _loss(model, W, b, Xt[i], yt[i])
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    return {"losses": np.array(losses), "final": [numpy(W).copy(), numpy(b).copy()]}
