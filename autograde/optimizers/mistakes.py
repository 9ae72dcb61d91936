"""Known mistakes in `optimizers`, as data: each is PyTorch's rule (:mod:`.rules`) with one piece
replaced, run by the same numpy optimizer or schedule as the correct rule. A failed test names the
mistake whose whole trajectory (or learning-rate sequence) the student's matches (grader side).

The ``*_mistakes(case)`` functions return {message: what computes the mistake} for the mistakes
that make a difference on that case: an optimizer (``rules.NumpyAdam`` / ``NumpyRMSprop``
arguments) or a learning-rate sequence.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .rules import (TORCH_ADAM, TORCH_COSINE, TORCH_RMSPROP, TORCH_STEP, NumpyAdam, NumpyRMSprop, cosine_lr, step_lr,
                    trajectory)

ADAM = {
    "no_correction": replace(TORCH_ADAM, correct1=lambda b1, t: 1.0, correct2=lambda b2, t: 1.0),
    "no_correction2": replace(TORCH_ADAM, correct2=lambda b2, t: 1.0),
    "count_plus_one": replace(TORCH_ADAM, count=lambda t, i, n: t + 1),
    "count_shared": replace(TORCH_ADAM, count=lambda t, i, n: (t - 1) * n + i + 1),
    "eps_in_root": replace(TORCH_ADAM, denom=lambda v, bc2, eps: np.sqrt(v / bc2 + eps)),
    "first_no_weight": replace(TORCH_ADAM, first=lambda m, g, b1: b1 * m + g),
    "betas_swapped": replace(TORCH_ADAM, first=lambda m, g, b1: (1 - b1) * m + b1 * g),
    "l2_always": replace(TORCH_ADAM, decay=lambda p, g, lr, wd, decoupled: (p, g + wd * p)),
    "decoupled_always": replace(TORCH_ADAM, decay=lambda p, g, lr, wd, decoupled: (p * (1 - lr * wd), g)),
    "decay_lr_twice": replace(TORCH_ADAM, decay=lambda p, g, lr, wd, decoupled: (p * (1 - lr * lr * wd), g)),
    "decay_no_lr": replace(TORCH_ADAM, decay=lambda p, g, lr, wd, decoupled: (p * (1 - wd), g)),
    "decay_after": replace(TORCH_ADAM, decay_after_step=True),
    "vmax_corrected": replace(TORCH_ADAM, vmax_corrected=True),
    "vmax_not_kept": replace(TORCH_ADAM, vmax=lambda vmax, v, bc2: v),
    "lr_at_init": replace(TORCH_ADAM, lr_at_init=True),
}

RMSPROP = {
    "eps_in_root": replace(TORCH_RMSPROP, denom=lambda s, eps: np.sqrt(s + eps)),
    "alpha_swapped": replace(TORCH_RMSPROP, square=lambda s, g, alpha: (1 - alpha) * s + alpha * g * g),
    "not_centered": replace(TORCH_RMSPROP, centre=lambda s, a: s),
    "momentum_undivided": replace(TORCH_RMSPROP, momentum=lambda b, g, avg, mu: (mu * b + g, (mu * b + g) / avg)),
    "momentum_ema": replace(TORCH_RMSPROP, momentum=lambda b, g, avg, mu: (mu * b + (1 - mu) * g / avg,) * 2),
    "bias_corrected": replace(TORCH_RMSPROP, correct=lambda s, alpha, t: s / (1 - alpha ** t)),
    "wd_ignored": replace(TORCH_RMSPROP, decay=lambda g, p, wd: g),
}

STEP = {
    "early": replace(TORCH_STEP, decays=lambda t, s: (t + 1) // s),
    "late": replace(TORCH_STEP, decays=lambda t, s: max(t - 1, 0) // s),
    "at_start": replace(TORCH_STEP, decays=lambda t, s: t // s + 1),
    "every_step": replace(TORCH_STEP, decays=lambda t, s: t / s),
}

COSINE = {
    "early": replace(TORCH_COSINE, count=lambda t, T: t + 1),
    "late": replace(TORCH_COSINE, count=lambda t, T: max(t - 1, 0)),
    "clamped": replace(TORCH_COSINE, count=lambda t, T: min(t, T)),
    "restarts": replace(TORCH_COSINE, count=lambda t, T: t % T),
    "no_eta_min": replace(TORCH_COSINE, low=lambda eta_min: 0.0, span=lambda base, eta_min: base),
    "span_base": replace(TORCH_COSINE, span=lambda base, eta_min: base),
}

# --- messages ---------------------------------------------------------------------------------
NO_CORRECTION = ("no bias correction: m and v start at zero, so early on they are too small by the factors 1 - β₁ᵗ and "
                 "1 - β₂ᵗ. Divide by them: m̂ = m / (1 - β₁ᵗ), v̂ = v / (1 - β₂ᵗ), θ ← θ - lr·m̂ / (√v̂ + eps).")
NO_CORRECTION2 = ("the second moment is not bias-corrected: v̂ = v / (1 - β₂ᵗ) as well as m̂ = m / (1 - β₁ᵗ) "
                  "(PyTorch divides √v by √(1 - β₂ᵗ)).")
COUNT_PLUS_ONE = ("the bias correction uses the wrong step count (t + 1: incremented twice, or started at 1 and "
                  "incremented before use): the first step uses t = 1, so 1 - β₁¹ = 1 - β₁.")
COUNT_SHARED = ("the step count is shared across parameters: you increment it once per PARAMETER, so each parameter's "
                "bias correction uses a different t. PyTorch keeps one count per parameter, all equal to the number of "
                "step() calls: increment t once per step().")
COUNT_FROM_ZERO = ("the bias correction counts steps from 0: at the first step 1 - β⁰ = 0 and the division blows up. "
                   "Increment the step count BEFORE using it, so the first step uses t = 1.")
EPS_IN_ROOT = ("eps is inside the square root: PyTorch adds eps after the root, √v̂ + eps (for Adam, √v / √(1 - β₂ᵗ) + "
               "eps), not √(v̂ + eps).")
FIRST_NO_WEIGHT = "the first moment must be a weighted average: m ← β₁ m + (1 - β₁) g (you add the whole gradient)."
BETAS_SWAPPED = "the moment's weights are swapped: m ← β₁ m + (1 - β₁) g, the OLD value weighted by β₁."
ADAM_DECOUPLED = ("Adam's weight_decay is an L2 penalty added to the gradient, g ← g + λθ, before the moments; you "
                  "shrink the parameter instead (θ ← θ(1 - lr·λ)), which is AdamW's decoupled weight decay.")
ADAMW_L2 = ("AdamW's weight decay is decoupled: θ ← θ(1 - lr·λ) before the Adam step, and the gradient is left as it "
            "is. You add λθ to the gradient (Adam's L2 penalty), so the decay is divided by √v̂ like the gradient.")
DECAY_LR_TWICE = "AdamW's decay is multiplied by lr twice: the shrink factor is (1 - lr·λ), not (1 - lr²·λ)."
DECAY_NO_LR = ("AdamW's decay is not multiplied by the learning rate: the shrink factor is (1 - lr·λ) (PyTorch), not "
               "(1 - λ).")
DECAY_AFTER = ("AdamW shrinks the parameter BEFORE the Adam step: θ ← θ(1 - lr·λ), then θ ← θ - lr·m̂ / (√v̂ + eps); "
               "you shrink the already updated parameter.")
VMAX_CORRECTED = ("AMSGrad keeps the running maximum of the RAW second moment v (PyTorch: v_max ← max(v_max, v), then "
                  "divides √v_max by √(1 - β₂ᵗ)); you take the maximum of the bias-corrected v̂.")
VMAX_NOT_KEPT = ("amsgrad has no effect in yours: AMSGrad keeps v_max ← max(v_max, v) from step to step (stored per "
                 "parameter) and uses √v_max in place of √v.")
LR_AT_INIT = ("the learning rate is read once, in __init__: a scheduler changes optimizer.lr between steps, and step() "
              "must use the current self.lr.")
RMS_EPS_IN_ROOT = "eps is inside the square root: RMSprop divides by √s + eps (eps added after the root), not √(s + eps)."
RMS_ALPHA_SWAPPED = "alpha weights the OLD value: s ← α s + (1 - α) g² (yours weights the new g² by α)."
RMS_NOT_CENTERED = ("centered RMSprop subtracts the squared running mean of the gradient: ḡ ← α ḡ + (1 - α) g, "
                    "then divides by √(s - ḡ²) + eps; yours divides by √s + eps as the uncentered one does.")
RMS_MOMENTUM_UNDIVIDED = ("RMSprop's momentum buffer accumulates the already divided step: b ← μ b + g / (√s + eps), "
                          "θ ← θ - lr·b; you divide the buffer by the root after adding the raw gradient.")
RMS_MOMENTUM_EMA = "RMSprop's momentum buffer is b ← μ b + g / (√s + eps) (not a weighted average with 1 - μ)."
RMS_BIAS_CORRECTED = ("RMSprop has no bias correction (that is Adam's): PyTorch uses s as it is, s ← α s + (1 - α) g² "
                      "from s = 0.")
RMS_WD_IGNORED = "weight_decay is ignored: RMSprop adds λθ to the gradient first, g ← g + λθ."
REBIND = ("your update rebinds the array instead of changing it in place: `params[i] = params[i] - ...` puts a NEW "
          "array in the list, so the arrays the caller holds (the model's weights) never change. Update in place: "
          "`p -= ...` (or `p[...] = ...`).")
NOT_IN_PLACE = ("the parameter array you were given did not change: your update rebinds the array instead of changing "
                "it in place (`p = p - ...` makes a new array and binds the local name to it). torch.optim changes the "
                "parameters themselves: write `p -= lr * ...`.")
GRADS_CHANGED = ("step changed the gradient arrays it was given (e.g. `g += weight_decay * p`). torch.optim leaves "
                 "p.grad as it is: compute on new arrays, `g = g + weight_decay * p`.")
EARLIER_CHANGED = ("step changed a gradient array passed at an EARLIER step: your state keeps the caller's gradient "
                   "array itself and updates it in place. Keep your own arrays (np.zeros_like(p), or g.copy()).")
STEP_EARLY = ("StepLR decays one step early: after t calls of step() the rate is base·γ^⌊t / step_size⌋, so the first "
              "decay comes with the step_size-th call of step().")
STEP_LATE = ("StepLR decays one step late: after t calls of step() the rate is base·γ^⌊t / step_size⌋ (count the call "
             "before computing the rate).")
STEP_AT_START = ("StepLR decays already at construction: right after StepLR(optimizer, ...) the rate is the "
                 "optimizer's own; the first decay comes with the step_size-th call of step().")
STEP_EVERY = ("StepLR decays in steps: the rate is base·γ^⌊t / step_size⌋ (integer division), constant for step_size "
              "calls; yours decays a little at every call (γ^(t / step_size)).")
COS_EARLY = ("the cosine schedule is one step ahead: after t calls of step() the rate is η_min + (base - η_min)(1 + "
             "cos(π t / T_max)) / 2, with t = 0 at construction.")
COS_LATE = ("the cosine schedule is one step behind: after t calls of step() the rate is η_min + (base - η_min)(1 + "
            "cos(π t / T_max)) / 2 (count the call before computing the rate).")
COS_CLAMPED = ("after T_max steps PyTorch's cosine keeps going: the rate climbs back to base at 2·T_max (period "
               "2·T_max); yours stays at η_min.")
COS_RESTARTS = ("yours restarts at base every T_max steps (that is CosineAnnealingWarmRestarts); CosineAnnealingLR "
                "follows the cosine on, back up to base at 2·T_max.")
COS_NO_ETA_MIN = "eta_min is ignored: the rate is η_min + (base - η_min)(1 + cos(π t / T_max)) / 2."
COS_SPAN_BASE = ("the cosine's amplitude is base - η_min: η_min + (base - η_min)(1 + cos(π t / T_max)) / 2 (yours uses "
                 "base, so it starts at base + η_min).")


def _adam(case, rule):
    desc, name, params, grads, hyper, reuse, lrs = case
    ps = [np.array(p, dtype=np.float64) for p in params]
    defaults = {"weight_decay": 0.01} if name == "AdamW" else {}  # AdamW's default decay, as torch.optim.AdamW
    opt = NumpyAdam(ps, **{**defaults, **hyper}, decoupled=name == "AdamW", rule=rule)
    opt.lrs = lrs
    return opt


def _rmsprop(case, rule):
    desc, name, params, grads, hyper, reuse, lrs = case
    opt = NumpyRMSprop([np.array(p, dtype=np.float64) for p in params], **hyper, rule=rule)
    opt.lrs = lrs
    return opt


def simulate(case, rule) -> list[list[np.ndarray]]:
    """The trajectory of the numpy optimizer of ``case`` (a cases.optimizer tuple) under ``rule``."""
    make = _rmsprop if case[1] == "RMSprop" else _adam
    with np.errstate(all="ignore"):  # a mistake's model may divide by zero (its trajectory is then not finite)
        return trajectory(make(case, rule), case[3])


def adam_mistakes(case) -> dict:
    """message -> rule, for Adam or AdamW on this case."""
    name, hyper, lrs = case[1], case[4], case[6]
    m = {NO_CORRECTION: ADAM["no_correction"], NO_CORRECTION2: ADAM["no_correction2"],
         COUNT_PLUS_ONE: ADAM["count_plus_one"], EPS_IN_ROOT: ADAM["eps_in_root"],
         FIRST_NO_WEIGHT: ADAM["first_no_weight"], BETAS_SWAPPED: ADAM["betas_swapped"]}
    if len(case[2]) > 1:
        m[COUNT_SHARED] = ADAM["count_shared"]
    if hyper.get("weight_decay", 0.01 if name == "AdamW" else 0.0):
        if name == "Adam":
            m[ADAM_DECOUPLED] = ADAM["decoupled_always"]
        else:
            m.update({ADAMW_L2: ADAM["l2_always"], DECAY_LR_TWICE: ADAM["decay_lr_twice"],
                      DECAY_NO_LR: ADAM["decay_no_lr"], DECAY_AFTER: ADAM["decay_after"]})
    if hyper.get("amsgrad"):
        m.update({VMAX_CORRECTED: ADAM["vmax_corrected"], VMAX_NOT_KEPT: ADAM["vmax_not_kept"]})
    if lrs is not None:
        m[LR_AT_INIT] = ADAM["lr_at_init"]
    return m


def rmsprop_mistakes(case) -> dict:
    """message -> rule, for RMSprop on this case."""
    hyper = case[4]
    m = {RMS_EPS_IN_ROOT: RMSPROP["eps_in_root"], RMS_BIAS_CORRECTED: RMSPROP["bias_corrected"]}
    if hyper.get("alpha", 0.99) != 0.5:  # at 0.5 the swapped weights are PyTorch's
        m[RMS_ALPHA_SWAPPED] = RMSPROP["alpha_swapped"]
    if hyper.get("centered"):
        m[RMS_NOT_CENTERED] = RMSPROP["not_centered"]
    if hyper.get("momentum"):
        m[RMS_MOMENTUM_UNDIVIDED] = RMSPROP["momentum_undivided"]
        m[RMS_MOMENTUM_EMA] = RMSPROP["momentum_ema"]
    if hyper.get("weight_decay"):
        m[RMS_WD_IGNORED] = RMSPROP["wd_ignored"]
    return m


def optimizer_mistakes(case) -> dict:
    return rmsprop_mistakes(case) if case[1] == "RMSprop" else adam_mistakes(case)


def step_lr_mistakes(base, step_size, gamma, steps) -> dict:
    """message -> the learning-rate sequence (steps + 1,) of the mistake."""
    msgs = {STEP_EARLY: "early", STEP_LATE: "late", STEP_AT_START: "at_start", STEP_EVERY: "every_step"}
    return {msg: step_lr(base, step_size, gamma, steps, STEP[key]) for msg, key in msgs.items()}


def cosine_mistakes(base, T_max, eta_min, steps) -> dict:
    """message -> the learning-rate sequence (steps + 1,) of the mistake."""
    msgs = {COS_EARLY: "early", COS_LATE: "late", COS_CLAMPED: "clamped", COS_RESTARTS: "restarts"}
    if eta_min:
        msgs.update({COS_NO_ETA_MIN: "no_eta_min", COS_SPAN_BASE: "span_base"})
    return {msg: cosine_lr(base, T_max, eta_min, steps, COSINE[key]) for msg, key in msgs.items()}
