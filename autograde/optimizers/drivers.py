"""Drivers for `optimizers`: they run next to the student's code and return plain data only
(student side: nothing here imports torch or the grader's modules).

The first argument of each driver is the name of the student's class it exercises, so that a
failure names that class (``execution.subject``).
"""
from __future__ import annotations

import numpy as np

from ..execution import graded


def optimizer_steps(ns: dict, name: str, params: list, grads: list, hyper: dict, reuse_grads: bool = False,
                    lrs: list | None = None):
    """``opt = <name>(plist, **hyper)`` on a list of copies of ``params``, then for each step k
    ``opt.lr = lrs[k]`` (when ``lrs`` is given: what a scheduler does) and ``opt.step(grads[k])``.

    With ``reuse_grads`` the same gradient arrays are refilled before every step, as PyTorch
    refills ``p.grad``; otherwise each step gets fresh copies.

    Returns {"trajectory": [step][i] the values of the arrays the caller holds (the ones in plist
    before the first step), "replaced": [step][i] whether plist[i] is no longer that array,
    "grads_changed": [step] whether the step changed the gradients it got, "earlier_changed":
    [step] whether it changed gradients given at an earlier step}."""
    cls = graded(ns, name)
    held = [np.array(p, dtype=np.float64, copy=True) for p in params]
    plist = list(held)
    opt = cls(plist, **hyper)
    buffers = [np.zeros_like(np.asarray(g, dtype=np.float64)) for g in grads[0]] if reuse_grads else None
    given_so_far = []  # (array given, its value) of earlier steps
    res = {"trajectory": [], "replaced": [], "grads_changed": [], "earlier_changed": []}
    for k, gs in enumerate(grads):
        if reuse_grads:
            for buf, g in zip(buffers, gs):
                buf[...] = g
            given = buffers
        else:
            given = [np.array(g, dtype=np.float64, copy=True) for g in gs]
        if lrs is not None:
            opt.lr = lrs[k]
        opt.step(given)
        res["trajectory"].append([a.copy() for a in held])
        res["replaced"].append([plist[i] is not held[i] if i < len(plist) else True for i in range(len(held))])
        res["grads_changed"].append(any(not np.array_equal(a, g) for a, g in zip(given, gs)))
        res["earlier_changed"].append(any(not np.array_equal(a, v) for a, v in given_so_far))
        if not reuse_grads:
            given_so_far += [(a, np.array(g, dtype=np.float64)) for a, g in zip(given, gs)]
    return res


class HoldsLr:
    """The optimizer a scheduler is given: only its learning rate ``lr`` matters to a scheduler."""

    def __init__(self, lr: float):
        self.lr = lr

    def step(self, grads=None):  # an optimizer's step, for a scheduler that calls it (it should not)
        pass


def _lr_list(value):
    """get_last_lr()'s value, copied (a list the scheduler may change later)."""
    return list(value) if isinstance(value, (list, tuple)) else value


def schedule_run(ns: dict, name: str, base_lr: float, kwargs: dict, steps: int):
    """``sched = <name>(opt, **kwargs)`` on an optimizer whose ``lr`` is ``base_lr``, then ``steps``
    calls of ``sched.step()``. Returns {"lr": [steps + 1] opt.lr at construction and after each
    step, "last": [steps + 1] what get_last_lr() returned then}."""
    cls = graded(ns, name)
    opt = HoldsLr(base_lr)
    sched = cls(opt, **kwargs)
    lr, last = [opt.lr], [_lr_list(sched.get_last_lr())]
    for _ in range(steps):
        sched.step()
        lr.append(opt.lr)
        last.append(_lr_list(sched.get_last_lr()))
    return {"lr": lr, "last": last}
