"""torch.optim's RMSprop, Adam/AdamW and the schedules StepLR and CosineAnnealingLR in numpy, each
update written as a ``Rule`` of small pieces (grader side).

The default rules are PyTorch's; :mod:`.mistakes` replaces one piece per known mistake, and the
same numpy optimizers below run them all, so that a student's trajectory can be matched against
what each mistake computes on the same inputs. Parameters are float64 arrays of any shape
(0-d included); a trajectory is [step][parameter] -> array after that step.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np


# ---------------------------------------------------------------------------------------------
# Adam and AdamW (one optimizer: AdamW is Adam with decoupled weight decay)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AdamRule:
    """torch.optim.Adam/AdamW's update of one parameter p with gradient g at step t (1, 2, ...):
    m, v the moment estimates, b1/b2 the betas, wd the weight decay, ``decoupled`` True for AdamW."""

    # (p, g) after weight decay: AdamW shrinks p by lr·wd, Adam adds wd·p to g (L2)
    decay: Callable = lambda p, g, lr, wd, decoupled: (p * (1 - lr * wd), g) if decoupled else (p, g + wd * p)
    decay_after_step: bool = False  # apply ``decay`` to the parameter after the Adam step
    first: Callable = lambda m, g, b1: b1 * m + (1 - b1) * g
    second: Callable = lambda v, g, b2: b2 * v + (1 - b2) * g * g
    count: Callable = lambda t, i, n: t  # the step count the bias correction uses (param i of n)
    correct1: Callable = lambda b1, t: 1 - b1 ** t
    correct2: Callable = lambda b2, t: 1 - b2 ** t
    # AMSGrad: the running maximum kept between steps, of the raw v (bc2: the second correction)
    vmax: Callable = lambda vmax, v, bc2: np.maximum(vmax, v)
    vmax_corrected: bool = False  # the kept maximum is already bias-corrected (do not divide again)
    denom: Callable = lambda v, bc2, eps: np.sqrt(v) / math.sqrt(bc2) + eps
    lr_at_init: bool = False  # the learning rate read once in __init__ (a scheduler's change is lost)


TORCH_ADAM = AdamRule()


class NumpyAdam:
    """torch.optim.Adam (``decoupled=False``) or AdamW (``decoupled=True``) under ``rule``."""

    def __init__(self, params, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, *,
                 decoupled: bool, rule: AdamRule = TORCH_ADAM):
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.weight_decay, self.amsgrad, self.decoupled, self.rule = weight_decay, amsgrad, decoupled, rule
        self.lr0 = lr
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.vmax = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads):
        r, (b1, b2), n = self.rule, self.betas, len(self.params)
        lr = self.lr0 if r.lr_at_init else self.lr
        self.t += 1
        for i, (p, g) in enumerate(zip(self.params, grads)):
            g = np.asarray(g, dtype=np.float64)
            q, g = (p, g) if r.decay_after_step else r.decay(p, g, lr, self.weight_decay, self.decoupled)
            self.m[i] = r.first(self.m[i], g, b1)
            self.v[i] = r.second(self.v[i], g, b2)
            t = r.count(self.t, i, n)
            bc1, bc2 = r.correct1(b1, t), r.correct2(b2, t)
            v = self.v[i]
            if self.amsgrad:
                self.vmax[i] = r.vmax(self.vmax[i], v / bc2 if r.vmax_corrected else v, bc2)
                v = self.vmax[i]
            den = np.sqrt(v) + self.eps if (self.amsgrad and r.vmax_corrected) else r.denom(v, bc2, self.eps)
            q = q - lr / bc1 * self.m[i] / den
            if r.decay_after_step:
                q, _ = r.decay(q, g, lr, self.weight_decay, self.decoupled)
            p[...] = q


# ---------------------------------------------------------------------------------------------
# RMSprop
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RMSpropRule:
    """torch.optim.RMSprop's update of one parameter: s the running mean of g², a its running mean
    (centered), b the momentum buffer, alpha the smoothing constant, mu the momentum."""

    decay: Callable = lambda g, p, wd: g + wd * p
    square: Callable = lambda s, g, alpha: alpha * s + (1 - alpha) * g * g
    mean: Callable = lambda a, g, alpha: alpha * a + (1 - alpha) * g
    centre: Callable = lambda s, a: s - a * a  # what the root is taken of, centered
    denom: Callable = lambda s, eps: np.sqrt(s) + eps
    # (new buffer, direction): the buffer accumulates g / avg
    momentum: Callable = lambda b, g, avg, mu: (mu * b + g / avg,) * 2
    correct: Callable = lambda s, alpha, t: s  # the mean of g² as used (no bias correction in RMSprop)


TORCH_RMSPROP = RMSpropRule()


class NumpyRMSprop:
    """torch.optim.RMSprop under ``rule``."""

    def __init__(self, params, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False, *,
                 rule: RMSpropRule = TORCH_RMSPROP):
        self.params, self.lr, self.alpha, self.eps = params, lr, alpha, eps
        self.weight_decay, self.momentum, self.centered, self.rule = weight_decay, momentum, centered, rule
        self.s = [np.zeros_like(p) for p in params]
        self.a = [np.zeros_like(p) for p in params]
        self.b = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads):
        r = self.rule
        self.t += 1
        for i, (p, g) in enumerate(zip(self.params, grads)):
            g = r.decay(np.asarray(g, dtype=np.float64), p, self.weight_decay)
            self.s[i] = r.square(self.s[i], g, self.alpha)
            s = r.correct(self.s[i], self.alpha, self.t)
            if self.centered:
                self.a[i] = r.mean(self.a[i], g, self.alpha)
                s = r.centre(s, self.a[i])
            avg = r.denom(s, self.eps)
            if self.momentum > 0:
                self.b[i], d = r.momentum(self.b[i], g, avg, self.momentum)
            else:
                d = g / avg
            p[...] = p - self.lr * d


def trajectory(opt, grads: list) -> list[list[np.ndarray]]:
    """``opt.step(gs)`` for each gs of ``grads`` ([step][parameter]); ``lrs`` per step, when the
    optimizer carries them as ``opt.lrs``, are set first (as a scheduler would)."""
    out = []
    for k, gs in enumerate(grads):
        if getattr(opt, "lrs", None) is not None:
            opt.lr = opt.lrs[k]
        opt.step(gs)
        out.append([p.copy() for p in opt.params])
    return out


# ---------------------------------------------------------------------------------------------
# Schedules: the learning rate after t scheduler steps (t = 0: at construction)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StepRule:
    """StepLR: lr_t = base · γ^(number of decays by step t)."""

    decays: Callable = lambda t, step_size: t // step_size


@dataclass(frozen=True)
class CosineRule:
    """CosineAnnealingLR: lr_t = η_min + (base - η_min)(1 + cos(π t / T_max)) / 2, which PyTorch's
    recursive form follows beyond T_max too (back up to base at 2 T_max: a period of 2 T_max)."""

    count: Callable = lambda t, T: t  # the t that enters the cosine
    low: Callable = lambda eta_min: eta_min  # the floor the curve reaches at T_max
    span: Callable = lambda base, eta_min: base - eta_min


TORCH_STEP, TORCH_COSINE = StepRule(), CosineRule()


def step_lr(base: float, step_size: int, gamma: float, steps: int, rule: StepRule = TORCH_STEP) -> np.ndarray:
    """(steps + 1,) the learning rate at construction and after each of ``steps`` scheduler steps."""
    return np.array([base * gamma ** rule.decays(t, step_size) for t in range(steps + 1)], dtype=np.float64)


def cosine_lr(base: float, T_max: int, eta_min: float, steps: int, rule: CosineRule = TORCH_COSINE) -> np.ndarray:
    """(steps + 1,) as :func:`step_lr`, for CosineAnnealingLR."""
    return np.array([rule.low(eta_min) + rule.span(base, eta_min) * (1 + math.cos(math.pi * rule.count(t, T_max) / T_max))
                     / 2 for t in range(steps + 1)], dtype=np.float64)
