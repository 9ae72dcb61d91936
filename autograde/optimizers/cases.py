"""The named input cases of `optimizers`, drawn from ``ctx.rng``: visible cases first, hidden
ones under ``ctx.hidden``.

Optimizer cases are tuples ``(description, name, params, grads, hyper, reuse, lrs)``: the class
name ("RMSprop", "Adam", "AdamW"), a list of parameter arrays, grads [step][parameter], the
keyword arguments, whether the caller refills the same gradient arrays before every step (as
PyTorch refills ``p.grad``), and None or the learning rate to set before each step (what a
scheduler does). The parameters always include two arrays of the same shape (state shared across
parameters shows) and a 0-d scalar; 12 steps (bias corrections still far from 1).

What makes each known mistake visible: learning rates 0.01-0.1 (a step of 1e-3 relative changes
the parameters by far more than the tolerance), small gradients (~1e-4) next to eps where eps
matters, gradients that shrink after the first steps (AMSGrad's maximum is then in use), a
gradient with a non-zero mean (centered RMSprop), and learning rates changed between steps.

Schedule cases are ``(description, name, base_lr, kwargs, steps)``, always more than one period.
"""
from __future__ import annotations


STEPS = 12


def _show(hyper: dict) -> str:
    """Keyword arguments as they would be written: lr=0.0123, amsgrad=True."""
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in hyper.items())


def _shapes(r, big=False):
    d, k = (int(r.integers(10, 30)), int(r.integers(5, 15))) if big else (int(r.integers(2, 5)), int(r.integers(2, 4)))
    return [(d, k), (k,), (d, k), ()]


def _case(r, desc, name, hyper, *, scale=None, offset=0.0, reuse=False, lrs=False, big=False, steps=STEPS):
    """``scale``: None, or a function step -> the size of that step's gradients."""
    shapes = _shapes(r, big)
    params = [r.normal(size=s) for s in shapes]
    grads = [[(scale(k) if scale else 1.0) * (offset + r.normal(size=s)) for s in shapes] for k in range(steps)]
    rates = [float(v) for v in hyper.get("lr", 0.01) * r.uniform(0.3, 1.0, size=steps)] if lrs else None
    what = f"{desc}: {name}(params, {_show(hyper)}), params of shapes {shapes}, {steps} steps"
    if reuse:
        what += ", the same gradient arrays refilled before every step (as PyTorch refills p.grad)"
    if lrs:
        what += ", optimizer.lr changed before every step (as a scheduler does)"
    return what, name, params, grads, hyper, reuse, rates


def _lr(r, low=0.01, high=0.1):
    return float(r.uniform(low, high))


def _shrinking(k):
    """Gradients that shrink after the second step: v's running maximum is then in use."""
    return 3.0 if k < 2 else 0.3


def rmsprop_cases(ctx):
    """RMSprop without centering or momentum."""
    r = ctx.rng
    yield _case(r, "the plain update", "RMSprop", {"lr": _lr(r)})
    yield _case(r, "alpha and eps of your own", "RMSprop", {"lr": _lr(r), "alpha": float(r.uniform(0.8, 0.95)),
                                                               "eps": 1e-3})
    yield _case(r, "small gradients (~1e-4), where eps matters", "RMSprop", {"lr": _lr(r)}, scale=lambda k: 1e-4)
    yield _case(r, "weight decay", "RMSprop", {"lr": _lr(r), "weight_decay": float(r.uniform(0.05, 0.3))}, reuse=True)
    if ctx.hidden:
        yield _case(r, "larger arrays, learning rate changed between steps", "RMSprop", {"lr": _lr(r)}, big=True,
                    lrs=True)
        yield _case(r, "alpha = 0.5", "RMSprop", {"lr": _lr(r), "alpha": 0.5}, steps=20)


def rmsprop_centered_cases(ctx):
    """RMSprop with centering and momentum."""
    r = ctx.rng
    yield _case(r, "centered, gradients with a non-zero mean", "RMSprop", {"lr": _lr(r), "centered": True},
                offset=1.0)
    yield _case(r, "momentum", "RMSprop", {"lr": _lr(r), "momentum": float(r.uniform(0.5, 0.9))})
    yield _case(r, "centered with momentum", "RMSprop", {"lr": _lr(r), "momentum": float(r.uniform(0.5, 0.9)),
                                                          "centered": True}, offset=0.5, reuse=True)
    if ctx.hidden:
        yield _case(r, "centered with momentum and weight decay, larger arrays", "RMSprop",
                    {"lr": _lr(r), "alpha": 0.9, "momentum": 0.9, "centered": True, "weight_decay": 0.1}, big=True,
                    lrs=True)


def adam_cases(ctx):
    """Adam without weight decay or AMSGrad."""
    r = ctx.rng
    yield _case(r, "the plain update", "Adam", {"lr": _lr(r)})
    yield _case(r, "betas and eps of your own", "Adam", {"lr": _lr(r), "betas": (float(r.uniform(0.5, 0.8)),
                                                                                  float(r.uniform(0.9, 0.99))),
                                                         "eps": 1e-3}, reuse=True)
    yield _case(r, "small gradients (~1e-4), where eps matters", "Adam", {"lr": _lr(r)}, scale=lambda k: 1e-4)
    yield _case(r, "learning rate changed between steps", "Adam", {"lr": _lr(r)}, lrs=True)
    if ctx.hidden:
        yield _case(r, "larger arrays, 30 steps", "Adam", {"lr": _lr(r)}, big=True, steps=30)
        yield _case(r, "default arguments", "Adam", {})


def adam_weight_decay_cases(ctx):
    """Adam's weight_decay (an L2 penalty)."""
    r = ctx.rng
    yield _case(r, "weight decay", "Adam", {"lr": _lr(r), "weight_decay": float(r.uniform(0.1, 0.5))})
    if ctx.hidden:
        yield _case(r, "weight decay, larger arrays, learning rate changed between steps", "Adam",
                    {"lr": _lr(r), "weight_decay": 0.05}, big=True, lrs=True)


def adamw_cases(ctx):
    """AdamW (decoupled weight decay)."""
    r = ctx.rng
    yield _case(r, "AdamW, its default weight decay 0.01", "AdamW", {"lr": _lr(r, 0.05, 0.2)})
    yield _case(r, "a larger weight decay", "AdamW", {"lr": _lr(r), "weight_decay": float(r.uniform(0.1, 0.5))},
                reuse=True)
    yield _case(r, "learning rate changed between steps (the decay uses the current lr)", "AdamW",
                {"lr": _lr(r), "weight_decay": float(r.uniform(0.1, 0.5))}, lrs=True)
    if ctx.hidden:
        yield _case(r, "larger arrays, 30 steps", "AdamW", {"lr": _lr(r), "weight_decay": 0.1}, big=True, steps=30)
        yield _case(r, "weight decay 0 (AdamW is then Adam)", "AdamW", {"lr": _lr(r), "weight_decay": 0.0})


def amsgrad_cases(ctx):
    """AMSGrad, for Adam and AdamW."""
    r = ctx.rng
    yield _case(r, "AMSGrad, gradients that shrink after two steps", "Adam", {"lr": _lr(r), "amsgrad": True},
                scale=_shrinking)
    yield _case(r, "AMSGrad with AdamW, gradients that shrink after two steps", "AdamW",
                {"lr": _lr(r), "weight_decay": 0.1, "amsgrad": True}, scale=_shrinking)
    if ctx.hidden:
        yield _case(r, "AMSGrad with weight decay, larger arrays", "Adam",
                    {"lr": _lr(r), "weight_decay": 0.1, "amsgrad": True}, big=True, scale=lambda k: 2.0 ** -(k % 4))


def argument_cases(ctx):
    """(description, name, hyper, expected exception name or None): what torch.optim refuses."""
    yield "a negative learning rate", "RMSprop", {"lr": -0.01}, "ValueError"
    yield "a negative eps", "RMSprop", {"eps": -1e-8}, "ValueError"
    yield "a negative momentum", "RMSprop", {"momentum": -0.5}, "ValueError"
    yield "a negative alpha", "RMSprop", {"alpha": -0.9}, "ValueError"
    yield "valid: centered with momentum", "RMSprop", {"lr": 0.01, "momentum": 0.9, "centered": True}, None
    for name in ("Adam", "AdamW"):
        yield "a negative learning rate", name, {"lr": -0.001}, "ValueError"
        yield "beta1 = 1", name, {"betas": (1.0, 0.999)}, "ValueError"
        yield "a negative beta2", name, {"betas": (0.9, -0.5)}, "ValueError"
        yield "a negative weight decay", name, {"weight_decay": -0.1}, "ValueError"
        yield "valid: beta1 = 0", name, {"betas": (0.0, 0.99)}, None
    if ctx.hidden:
        yield "a negative weight decay", "RMSprop", {"weight_decay": -0.1}, "ValueError"
        for name in ("Adam", "AdamW"):
            yield "a negative eps", name, {"eps": -1e-8}, "ValueError"
            yield "beta2 = 1", name, {"betas": (0.9, 1.0)}, "ValueError"
            yield "valid: lr = 0", name, {"lr": 0.0}, None


def step_lr_cases(ctx):
    """StepLR over several periods."""
    r = ctx.rng
    s = int(r.integers(2, 5))
    yield f"StepLR(optimizer, step_size={s}, gamma=0.5), base lr 0.1, {4 * s + 1} steps", "StepLR", 0.1, \
        {"step_size": s, "gamma": 0.5}, 4 * s + 1
    s = int(r.integers(3, 6))
    yield f"StepLR(optimizer, step_size={s}) (default gamma), base lr 1.0, {3 * s} steps", "StepLR", 1.0, \
        {"step_size": s}, 3 * s
    if ctx.hidden:
        yield "StepLR(optimizer, step_size=1, gamma=0.9), 10 steps", "StepLR", 0.05, {"step_size": 1, "gamma": 0.9}, 10


def cosine_cases(ctx):
    """CosineAnnealingLR over more than one period (2 T_max)."""
    r = ctx.rng
    T = int(r.integers(4, 8))
    yield f"CosineAnnealingLR(optimizer, T_max={T}), base lr 0.1, {2 * T + 3} steps", "CosineAnnealingLR", 0.1, \
        {"T_max": T}, 2 * T + 3
    T = int(r.integers(3, 6))
    e = float(r.uniform(0.01, 0.05))
    yield (f"CosineAnnealingLR(optimizer, T_max={T}, eta_min={e:.3g}), base lr 0.2, {3 * T + 2} steps",
           "CosineAnnealingLR", 0.2, {"T_max": T, "eta_min": e}, 3 * T + 2)
    if ctx.hidden:
        yield "CosineAnnealingLR(optimizer, T_max=1), 5 steps", "CosineAnnealingLR", 0.1, {"T_max": 1}, 5
        yield ("CosineAnnealingLR(optimizer, T_max=20, eta_min=0.001), 50 steps", "CosineAnnealingLR", 0.01,
               {"T_max": 20, "eta_min": 0.001}, 50)
