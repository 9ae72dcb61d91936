"""Drivers for `gradient_descent`: they run next to the student's code and return plain data only.

Each driver builds what the student's code needs from plain arguments (a seeded generator,
copies of the parameter arrays, a reference optimizer, a numpy loss), calls it, and reports what
happened: the values, and also the facts the checks diagnose from (was a parameter array updated
in place or replaced in the list? did the rng advance? which rows reached loss_and_grad?).

Also here, because the student's ``train`` must be able to call them in the student's process:
the numpy losses :func:`least_squares` and :func:`softmax_regression` (``loss_and_grad``
functions), :class:`ReferenceSGD` (the optimizer handed to ``train``, so that a mistake in the
student's SGD costs only the SGD tests) and :func:`epoch_batches`, put in place of the student's
``minibatch_indices`` while ``train`` runs (so that a mistake there costs only its own test).
Nothing here imports torch: the drivers run under the numpy exercise's framework guard.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..execution import graded


# ---------------------------------------------------------------------------------------------
# What train is given: batches, an optimizer and losses (numpy, exactly PyTorch's conventions)
# ---------------------------------------------------------------------------------------------
def epoch_batches(n, batch_size, rng):
    """One epoch: ``rng.permutation(n)`` cut in order into chunks of ``batch_size``."""
    perm = rng.permutation(n)
    return [perm[i:i + batch_size] for i in range(0, n, batch_size)]


@dataclass(frozen=True)
class Rule:
    """torch.optim.SGD's update for one parameter, a piece per field; a known mistake replaces one
    (autograde/gradient_descent/mistakes.py). d is the direction, b the momentum buffer, g the
    gradient, p the parameter, mu/tau/wd the momentum, dampening and weight decay."""

    decay: Callable = lambda g, p, wd: g + wd * p  # the gradient with weight decay
    damp_without_momentum: bool = False  # dampen d although momentum is 0
    momentum: bool = True  # use the momentum buffer at all
    buffers: str = "own"  # "own": one per parameter; "by_shape": one per shape; "one": one, restarted when the shape changes
    first: Callable = lambda d, tau: d.copy()  # b_1
    next: Callable = lambda b, d, mu, tau: mu * b + (1 - tau) * d  # b_t from b_(t-1)
    ema: bool = False  # b = mu b + (1 - mu) d from a zero buffer, every step
    alias: bool = False  # b_1 is the caller's gradient array itself (seen when the caller refills it)
    nesterov: Callable = lambda d, b, mu: d + mu * b
    after: Callable = lambda d, p, wd: d  # added to the direction after momentum
    shrink: bool = False  # p -= wd p, outside the learning rate
    sign: float = -1.0  # p += sign * lr * d


TORCH_SGD = Rule()


class ReferenceSGD:
    """torch.optim.SGD in numpy (in-place updates of the arrays in ``params``), or a known mistake
    of it (``rule``). Counts its steps and records whether each step got the gradients that
    loss_and_grad returned last. ``reuse``: the caller refills the same gradient arrays each step."""

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, loss=None,
                 rule: Rule = TORCH_SGD, reuse: bool = False):
        self.params, self.lr, self.momentum, self.dampening = params, lr, momentum, dampening
        self.weight_decay, self.nesterov = weight_decay, nesterov
        self.buffers = [None] * len(params)
        self.shared: dict = {}  # buffers of a rule that shares them
        self.rule, self.reuse = rule, reuse
        self.loss = loss  # the RecordingLoss whose latest gradients step should receive
        self.steps, self.foreign_grads = 0, 0

    def _buffer(self, i, p):
        if self.rule.buffers == "by_shape":
            return self.shared.get(p.shape)
        if self.rule.buffers == "one":
            b = self.shared.get("one")
            return b if b is not None and b.shape == p.shape else None
        return self.buffers[i]

    def _keep(self, i, p, b):
        if self.rule.buffers == "by_shape":
            self.shared[p.shape] = b
        elif self.rule.buffers == "one":
            self.shared["one"] = b
        else:
            self.buffers[i] = b

    def step(self, grads):
        self.steps += 1
        grads = [np.asarray(g, dtype=np.float64) for g in grads]
        last = self.loss.last_grads if self.loss is not None else None
        if last is None or len(grads) != len(last) or not all(g.shape == l.shape and np.array_equal(g, l)
                                                              for g, l in zip(grads, last)):
            self.foreign_grads += 1
        r, mu, tau, wd = self.rule, self.momentum, self.dampening, self.weight_decay
        for i, (p, g) in enumerate(zip(self.params, grads)):
            d = r.decay(g, p, wd)
            if r.damp_without_momentum and not mu:
                d = (1 - tau) * d
            if mu and r.momentum:
                b = self._buffer(i, p)
                if r.ema:
                    b = mu * (0.0 if b is None else b) + (1 - mu) * d
                elif b is None:
                    b = r.first(d, tau)
                else:
                    if r.alias and self.reuse and self.steps == 2:
                        b = d  # the array given at step 1 now holds step 2's gradient
                    b = r.next(b, d, mu, tau)
                self._keep(i, p, b)
                d = r.nesterov(d, b, mu) if self.nesterov else b
            d = r.after(d, p, wd)
            if r.shrink:
                p -= wd * p
            p += r.sign * self.lr * d


def least_squares(params, X, y):
    """loss_and_grad of a linear model under F.mse_loss: params [W (D, K), b (K,)], X (B, D),
    y (B, K). Returns (mean over all B*K elements of (X W + b - y)**2, [dW, db])."""
    W, b = params
    r = X @ W + b - y
    dout = 2.0 * r / r.size
    return float(np.mean(r * r)), [X.T @ dout, dout.sum(axis=0)]


def softmax_regression(params, X, y):
    """loss_and_grad of softmax regression under F.cross_entropy: params [W (D, C), b (C,)],
    X (B, D), y (B,) class indices. Returns (mean cross-entropy, [dW, db])."""
    W, b = params
    z = X @ W + b
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    rows = np.arange(len(y))
    dz = np.exp(logp)
    dz[rows, y] -= 1.0
    dz /= len(y)
    return float(-logp[rows, y].mean()), [X.T @ dz, dz.sum(axis=0)]


MODELS = {"least_squares": least_squares, "softmax_regression": softmax_regression}


class RecordingLoss:
    """A loss_and_grad that also records, per call, which rows of X it got (-1: not a row of X),
    whether the targets were those rows' targets, and whether params was the list given to train."""

    def __init__(self, model, X, y, params):
        self.fn, self.X, self.y, self.params = MODELS[model], X, y, params
        self.row = {X[i].tobytes(): i for i in range(len(X))}
        self.calls, self.y_ok, self.same_params = [], [], []
        self.last_grads = None

    def __call__(self, params, Xb, yb):
        Xb = np.asarray(Xb)
        if np.ndim(Xb) < 1 or np.ndim(yb) < 1 or len(Xb) != len(yb):
            raise ValueError(f"loss_and_grad got X of shape {np.shape(Xb)} and y of shape {np.shape(yb)}: pass the "
                             "batch's rows of both, X[idx] and y[idx]")
        idx = np.array([self.row.get(np.asarray(x, dtype=np.float64).tobytes(), -1) for x in Xb.reshape(len(Xb), -1)]
                       if Xb.ndim == 2 else [-1], dtype=np.int64)
        self.calls.append(idx)
        self.y_ok.append(bool(np.all(idx >= 0) and np.shape(yb) == self.y[idx].shape and np.array_equal(yb, self.y[idx])))
        self.same_params.append(len(params) == len(self.params) and all(p is q for p, q in zip(params, self.params)))
        loss, grads = self.fn(params, Xb, np.asarray(yb))
        self.last_grads = [g.copy() for g in grads]
        return loss, grads


# ---------------------------------------------------------------------------------------------
# Drivers
# ---------------------------------------------------------------------------------------------
def _state(rng):
    return repr(rng.bit_generator.state)


def minibatch_calls(ns: dict, n: int, batch_size: int, seed: int, calls: int):
    """``minibatch_indices(n, batch_size, rng)`` ``calls`` times with ONE ``default_rng(seed)``
    (consecutive epochs). Returns per call {"batches": what it returned, "rng_used": whether the
    generator's state moved during the call}."""
    fn = graded(ns, "minibatch_indices")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(calls):
        before = _state(rng)
        batches = fn(n, batch_size, rng)
        if isinstance(batches, (list, tuple)):  # copied now: a later call might reuse the arrays
            batches = [np.array(b, copy=True) if isinstance(b, np.ndarray) else b for b in batches]
        out.append({"batches": batches, "rng_used": _state(rng) != before})
    return out  # made plain by execution.execute (a generator becomes Opaque('generator'))


def optimizer_steps(ns: dict, name: str, params: list, grads: list, hyper: dict, reuse_grads: bool = False,
                    lrs: list | None = None):
    """An optimizer class of the student's (SGD here; RMSprop, Adam, AdamW in `optimizers`):
    ``opt = <name>(plist, **hyper)`` on a list of copies of ``params``, then for each step k
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


def train_run(ns: dict, model: str, params: list, X, y, hyper: dict, batch_size: int, epochs: int, seed: int):
    """``train(plist, loss_and_grad, X, y, optimizer, batch_size, epochs, default_rng(seed))`` with a
    :class:`RecordingLoss` of ``model`` and a :class:`ReferenceSGD` over plist, and with
    :func:`epoch_batches` as ``minibatch_indices`` while it runs (recording its calls).

    Returns {"losses": what train returned, "final": the arrays the caller holds afterwards,
    "calls": [call] row indices given to loss_and_grad, "y_ok", "same_params": [call] bools,
    "steps": optimizer.step calls, "foreign_grads": steps whose gradients were not those that
    loss_and_grad had just returned, "minibatch_calls": [call] {"n", "batch_size", "given_rng": whether
    the generator was the rng given to train, "new_rng": whether it was a generator neither given
    nor seen in an earlier call}}."""
    fn = graded(ns, "train")
    held = [np.array(p, dtype=np.float64, copy=True) for p in params]
    plist = list(held)
    X, y = np.array(X, copy=True), np.array(y, copy=True)
    loss = RecordingLoss(model, X, y, plist)
    opt = ReferenceSGD(plist, **hyper, loss=loss)
    missing = object()
    saved = ns.get("minibatch_indices", missing)
    given = np.random.default_rng(seed)
    seen, mb_calls = [], []  # the generators minibatch_indices got (kept alive: identity is compared)

    def recording_batches(n, batch_size, rng):
        new = rng is not given and not any(rng is r for r in seen)
        if new:
            seen.append(rng)
        mb_calls.append({"n": int(n) if isinstance(n, (int, np.integer)) else repr(n),
                         "batch_size": int(batch_size) if isinstance(batch_size, (int, np.integer)) else repr(batch_size),
                         "given_rng": rng is given, "new_rng": new})
        return epoch_batches(n, batch_size, rng)

    ns["minibatch_indices"] = recording_batches
    try:
        losses = fn(plist, loss, X, y, opt, batch_size, epochs, given)
    finally:
        if saved is missing:
            ns.pop("minibatch_indices", None)
        else:
            ns["minibatch_indices"] = saved
    return {"losses": list(losses) if isinstance(losses, (list, tuple)) else losses, "final": held,
            "calls": loss.calls, "y_ok": loss.y_ok, "same_params": loss.same_params, "steps": opt.steps,
            "foreign_grads": opt.foreign_grads, "minibatch_calls": mb_calls}  # made plain by execution.execute


# The student's function or class each driver exercises (named in messages: execution.subject).
minibatch_calls.subject = "minibatch_indices"
train_run.subject = "train"
