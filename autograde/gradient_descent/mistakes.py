"""Known mistakes in `gradient_descent`'s SGD, as data: each is torch.optim.SGD's update rule
(:class:`drivers.Rule`) with one piece replaced, run by the same numpy SGD the drivers hand to the
student's ``train`` (:class:`drivers.ReferenceSGD`). A failed SGD test names the mistake whose
trajectory the student's matches (grader side: the student's process never imports this)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .drivers import TORCH_SGD, ReferenceSGD, Rule

MISTAKES: dict[str, Rule] = {
    "ascent": replace(TORCH_SGD, sign=1.0),
    "damp_no_momentum": replace(TORCH_SGD, damp_without_momentum=True),
    "no_momentum": replace(TORCH_SGD, momentum=False),
    "shared": replace(TORCH_SGD, buffers="by_shape"),
    "shared_one": replace(TORCH_SGD, buffers="one"),
    "ema": replace(TORCH_SGD, ema=True),
    "tau_weight": replace(TORCH_SGD, next=lambda b, d, mu, tau: mu * b + tau * d),
    "damp_first": replace(TORCH_SGD, first=lambda d, tau: (1 - tau) * d),
    "damp_ignored": replace(TORCH_SGD, next=lambda b, d, mu, tau: mu * b + d),
    "alias": replace(TORCH_SGD, alias=True),
    "nesterov_plain": replace(TORCH_SGD, nesterov=lambda d, b, mu: b),
    "nesterov_one_plus": replace(TORCH_SGD, nesterov=lambda d, b, mu: (1 + mu) * b),
    "wd_ignored": replace(TORCH_SGD, decay=lambda g, p, wd: g),
    "wd_double": replace(TORCH_SGD, decay=lambda g, p, wd: g + 2 * wd * p),
    "wd_sign": replace(TORCH_SGD, decay=lambda g, p, wd: g - wd * p),
    "wd_after": replace(TORCH_SGD, decay=lambda g, p, wd: g, after=lambda d, p, wd: d + wd * p),
    "wd_no_lr": replace(TORCH_SGD, decay=lambda g, p, wd: g, shrink=True),
}


def simulate(params, grads, hyper: dict, rule: Rule = TORCH_SGD, reuse: bool = False) -> list[list[np.ndarray]]:
    """The parameters after each step ([step][i]) of the numpy SGD under ``rule``."""
    ps = [np.array(p, dtype=np.float64) for p in params]
    opt = ReferenceSGD(ps, **hyper, rule=rule, reuse=reuse)
    out = []
    for gs in grads:
        opt.step(gs)
        out.append([p.copy() for p in ps])
    return out


DAMP_FIRST = ("the first momentum step must not be dampened: PyTorch sets b_1 = g (a copy of the first gradient), and "
              "only from the second step on b_t = μ b_(t-1) + (1 - τ) g_t. (A buffer that starts at zero dampens the "
              "first step.)")
DAMP_IGNORED = ("dampening is ignored: with dampening τ the buffer is b_t = μ b_(t-1) + (1 - τ) g_t from the second "
                "step on (b_1 = g); yours adds the whole gradient, μ b_(t-1) + g_t.")
TAU_WEIGHT = "dampening applied with the wrong weight (τ instead of 1 - τ): b_t = μ b_(t-1) + (1 - dampening) g_t."
EMA = ("you use the moving-average form b = μ b + (1 - μ) g. torch.optim.SGD's buffer is b_t = μ b_(t-1) + (1 - τ) g_t "
       "with the dampening τ (0 by default), starting at b_1 = g.")
NO_MOMENTUM = ("momentum is ignored: your steps are plain SGD steps. With momentum μ > 0 the step is θ ← θ - lr·b_t, "
               "b_t = μ b_(t-1) + (1 - τ) g_t, b_1 = g.")
SHARED = ("momentum buffer shared across parameters: each parameter needs its own momentum buffer, of its own shape "
          "(keep a list of buffers, one per array in params; beware `[np.zeros(s)] * k`, which repeats ONE array).")
SHARED_BY_SHAPE = ("momentum buffer shared across parameters of the same shape (a dict keyed by p.shape?): arrays "
                   "of the same shape are still different parameters, "
                   "and each needs its own momentum buffer. Keep a list of buffers, one per array in params.")
SHARED_ONE = ("momentum buffer shared across parameters: you keep ONE buffer and start it afresh whenever the next "
              "parameter's shape does not fit, so parameters of the same shape continue each other's buffer. Each "
              "parameter needs its own momentum buffer: keep a list of buffers, one per array in params.")
ALIAS = ("your momentum buffer is the gradient array itself (b_1 = g without a copy): the caller refills its gradient "
         "arrays before each step (as PyTorch refills p.grad), so your buffer changed with them. Store a copy: "
         "b = g.copy().")
NESTEROV_PLAIN = "Nesterov uses g + μ·b, not b: with nesterov=True the step is θ ← θ - lr (g_t + μ b_t)."
NESTEROV_ONE_PLUS = "Nesterov uses g + μ·b, not (1 + μ)·b: with nesterov=True the step is θ ← θ - lr (g_t + μ b_t)."
WD_IGNORED = "weight_decay is ignored: add λθ to the gradient first, g ← g + λθ."
WD_AFTER = ("weight decay must be added to the gradient before momentum: g ← g + λθ first, then b_t = μ b_(t-1) + "
            "(1 - τ) g. You add λθ to the step after the buffer (decoupled weight decay, as in AdamW, is not "
            "torch.optim.SGD's).")
WD_DOUBLE = "your weight-decay term is 2λθ; torch.optim.SGD adds λθ to the gradient (the gradient of (λ/2)·‖θ‖²)."
WD_SIGN = "the weight-decay term has the wrong sign: g ← g + λθ (it pulls the parameters towards zero)."
WD_NO_LR = ("you shrink the parameters by (1 - λ) directly; weight decay is added to the gradient, g ← g + λθ, so the "
            "learning rate multiplies it too.")
DAMP_NO_MOMENTUM = ("dampening only acts on the momentum buffer: with momentum = 0 PyTorch ignores it, and the step "
                    "is θ ← θ - lr·g.")
ASCENT = "you step up the gradient: gradient descent subtracts, θ ← θ - lr·g."
REBIND = ("your update rebinds the array instead of changing it in place: `params[i] = params[i] - lr * g` puts a NEW "
          "array in the list, so the arrays the caller holds (the model's weights) never change. Update in place: "
          "`p -= lr * d` (or `p[...] = ...`).")
NOT_IN_PLACE = ("the parameter array you were given did not change: your update rebinds the array instead of changing "
                "it in place (`p = p - lr * g` makes a new array and binds the local name to it; so does updating "
                "copies made in __init__). torch.optim.SGD changes the parameters themselves: write `p -= lr * d`.")
GRADS_CHANGED = ("step changed the gradient arrays it was given (e.g. `g += weight_decay * p`, or a momentum buffer "
                 "that is the gradient array itself, updated in place). torch.optim.SGD leaves p.grad as it is: compute "
                 "on new arrays, `d = g + weight_decay * p`.")
BUFFER_IS_GRAD = ("step changed a gradient array passed at an EARLIER step: your momentum buffer is the gradient array "
                  "itself (b_1 = g without a copy), and updating it in place changes the caller's gradient. Store a "
                  "copy on the first step: b = g.copy() (torch clones it).")


def sgd_mistakes(case) -> dict:
    """message -> the mistake's rule (:data:`MISTAKES`), for the mistakes that make a difference on this case."""
    h = case["hyper"]
    mu, tau = h.get("momentum", 0.0), h.get("dampening", 0.0)
    wd, nest = h.get("weight_decay", 0.0), h.get("nesterov", False)
    m = {ASCENT: MISTAKES["ascent"]}
    if tau and not mu:
        m[DAMP_NO_MOMENTUM] = MISTAKES["damp_no_momentum"]
    if mu:
        m[NO_MOMENTUM] = MISTAKES["no_momentum"]
        m[SHARED_BY_SHAPE] = MISTAKES["shared"]
        m[SHARED_ONE] = MISTAKES["shared_one"]
        m[EMA] = MISTAKES["ema"]
        m[TAU_WEIGHT] = MISTAKES["tau_weight"]  # with τ = 0 the mistake drops the gradient: b_t = μ b_(t-1)
        if tau:
            m[DAMP_FIRST] = MISTAKES["damp_first"]
            m[DAMP_IGNORED] = MISTAKES["damp_ignored"]
        if case["reuse"] and not wd:
            m[ALIAS] = MISTAKES["alias"]
    if nest:
        m[NESTEROV_PLAIN] = MISTAKES["nesterov_plain"]
        m[NESTEROV_ONE_PLUS] = MISTAKES["nesterov_one_plus"]
    if wd:
        m[WD_IGNORED] = MISTAKES["wd_ignored"]
        m[WD_DOUBLE] = MISTAKES["wd_double"]
        m[WD_SIGN] = MISTAKES["wd_sign"]
        m[WD_NO_LR] = MISTAKES["wd_no_lr"]
        if mu:
            m[WD_AFTER] = MISTAKES["wd_after"]
    return m
