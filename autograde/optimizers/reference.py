"""PyTorch reference for the `optimizers` assignment (float64 on the reference device).

* :func:`optimizer_trajectory` runs ``torch.optim.RMSprop``, ``Adam`` or ``AdamW`` on given
  parameters and a given sequence of gradients (set as ``p.grad`` before each step), with the
  learning rate optionally changed before each step as a scheduler changes ``group["lr"]``.
* :func:`schedule` runs ``torch.optim.lr_scheduler.StepLR`` or ``CosineAnnealingLR`` and returns
  ``get_last_lr()`` at construction and after each ``step()``.

Every function takes plain data and returns plain data (arrays, floats), so that the grader can
compute it ahead of time per seed (see autograde/grading/refcache.py).
"""
from __future__ import annotations

import numpy as np

from ..device import numpy, tensor, torch

OPTIMIZERS = ("RMSprop", "Adam", "AdamW")
SCHEDULERS = ("StepLR", "CosineAnnealingLR")


def optimizer_trajectory(name: str, params: list, grads: list, hyper: dict, lrs: list | None = None
                         ) -> list[list[np.ndarray]]:
    """``torch.optim.<name>(params, **hyper)`` for ``len(grads)`` steps; before step k every
    ``p.grad`` is set to ``grads[k][i]`` and, when ``lrs`` is given, the group's lr to ``lrs[k]``.

    params: list of arrays (any shapes, 0-d included); grads: [step][parameter] arrays of the same
    shapes. Returns [step][parameter]: the parameters after each step (float64)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}")
    t = torch()
    ps = [tensor(np.asarray(p), dtype=t.float64).clone().requires_grad_(True) for p in params]
    opt = getattr(t.optim, name)(ps, **hyper)
    out = []
    for k, gs in enumerate(grads):
        for p, g in zip(ps, gs):
            p.grad = tensor(np.asarray(g), dtype=t.float64)
        if lrs is not None:
            for group in opt.param_groups:
                group["lr"] = lrs[k]
        opt.step()
        out.append([np.array(numpy(p), dtype=np.float64) for p in ps])
    return out


def schedule(name: str, base_lr: float, kwargs: dict, steps: int) -> np.ndarray:
    """``torch.optim.lr_scheduler.<name>(SGD([p], lr=base_lr), **kwargs)``: (steps + 1,) its
    ``get_last_lr()[0]`` at construction and after each of ``steps`` calls of ``step()`` (each
    after an ``optimizer.step()``, the order PyTorch asks for)."""
    if name not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {name!r}")
    t = torch()
    p = t.zeros(1, dtype=t.float64, requires_grad=True)
    opt = t.optim.SGD([p], lr=base_lr)
    sched = getattr(t.optim.lr_scheduler, name)(opt, **kwargs)
    out = [sched.get_last_lr()[0]]
    for _ in range(steps):
        opt.step()
        sched.step()
        out.append(sched.get_last_lr()[0])
    return np.array(out, dtype=np.float64)
