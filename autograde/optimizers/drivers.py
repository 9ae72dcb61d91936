"""Drivers for `optimizers`: they run next to the student's code and return plain data only
(student side: nothing here imports torch or the grader's modules).

The first argument of each driver is the name of the student's class it exercises, so that a
failure names that class (``execution.subject``). The optimizers themselves run in
gradient_descent's ``optimizer_steps``, the driver of its SGD.
"""
from __future__ import annotations

from ..execution import graded


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
