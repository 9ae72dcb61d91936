"""Checks for `optimizers`: RMSprop, Adam and AdamW against torch.optim, step by step, and StepLR
and CosineAnnealingLR against torch.optim.lr_scheduler.

The optimizers run on the student's side in gradient_descent's :func:`optimizer_steps`, which keeps the
arrays it put in ``params`` and reports their values after every step, whether the list's elements
were replaced and whether the gradients it passed were changed. The inputs are the named cases of
:mod:`.cases`; the diagnoses are what the known mistakes of :mod:`.mistakes` compute on the same
inputs: when the student's whole trajectory matches one, the failure names that mistake.
"""
from __future__ import annotations

import numpy as np

from ..core import FLOAT64, CheckFailure, Opaque, Registry, Tol, expect_close
from ..execution import construct
from ..gradient_descent.drivers import optimizer_steps
from . import cases as C
from . import drivers
from . import mistakes as M
from . import reference as ref

TESTS = Registry()

# a mistake's trajectory "matches" the student's within this: float64 over a dozen steps, far
# tighter than the distance between any two catalogued mistakes on the drawn inputs (>= 1e-5)
MODEL_TOL = Tol(1e-6, 1e-9, "a known mistake's trajectory, up to rounding")
# PyTorch's schedulers compute the rate recursively from the previous one (lr_t from lr_(t-1));
# the closed form differs by accumulated rounding, ~1e-15 per step times at most ~1/(1 + cos(π (T-1)/T))
# ~ T² near the cosine's trough: 1e-9 relative covers T_max up to ~1e3 and is far from every mistake
SCHEDULE = Tol(1e-9, 1e-12, "the schedule's rate, up to the rounding of PyTorch's recursive formula")


def run(student, driver, *args, what: str, case: str = ""):
    """student.run with the case, and for a division by zero the usual cause, added to a failure."""
    try:
        return student.run(driver, *args, what=what)
    except CheckFailure as exc:  # Forbidden too: keep the type, the grader flags it
        msg = str(exc)
        if "ZeroDivisionError" in msg and what in ("Adam", "AdamW"):
            msg += f" Probably {M.COUNT_FROM_ZERO}"
        if case:
            msg += f"\nOn {case}."
        raise type(exc)(msg) from None


def _all_close(got, want, tol: Tol) -> bool:
    return all(np.shape(g) == np.shape(w) and np.allclose(g, w, rtol=tol.rtol, atol=tol.atol)
               for gs, ws in zip(got, want) for g, w in zip(gs, ws))


def check_optimizer_case(student, case):
    """Run the student's optimizer on one case of :mod:`.cases` and compare its trajectory with
    torch.optim's, step by step."""
    desc, name, params, grads, hyper, reuse, lrs = case
    res = run(student, optimizer_steps, name, params, grads, hyper, reuse, lrs, what=name, case=desc)
    want = ref.optimizer_trajectory(name, params, grads, hyper, lrs)
    got = res["trajectory"]
    for t in range(len(got)):
        if res["earlier_changed"][t]:
            raise CheckFailure(f"{name} is wrong on {desc}, step {t + 1}: {M.EARLIER_CHANGED}")
        if res["grads_changed"][t]:
            raise CheckFailure(f"{name} is wrong on {desc}, step {t + 1}: {M.GRADS_CHANGED}")
    if _all_close(got, want, FLOAT64):
        return
    t, i = next((t, i) for t in range(len(want)) for i in range(len(want[t]))
                if not (np.shape(got[t][i]) == np.shape(want[t][i])
                        and np.allclose(got[t][i], want[t][i], rtol=FLOAT64.rtol, atol=FLOAT64.atol)))
    where = f"{desc}; params[{i}] after step {t + 1}"
    before = params[i] if t == 0 else got[t - 1][i]
    if res["replaced"][t][i]:
        raise CheckFailure(f"{name} is wrong on {where}: {M.REBIND}")
    if np.array_equal(got[t][i], before):
        raise CheckFailure(f"{name} is wrong on {where}: {M.NOT_IN_PLACE}")
    if t == 0 and not np.all(np.isfinite(got[0][i])) and name != "RMSprop":
        raise CheckFailure(f"{name} is wrong on {where}: the parameters are not finite after the first step. "
                           f"{M.COUNT_FROM_ZERO}")
    for message, rule in M.optimizer_mistakes(case).items():
        if _all_close(got, M.simulate(case, rule), MODEL_TOL):
            raise CheckFailure(f"{name} is wrong on {where} (and the other steps): {message}")
    expect_close(got[t][i], want[t][i], what=f"params[{i}] after step {t + 1}", tol=FLOAT64, case=desc)


def _run_cases(student, ctx, cases):
    for case in cases:
        ctx.cases += 1
        check_optimizer_case(student, case)


@TESTS.test("rmsprop", functions=("RMSprop",))
def rmsprop(student, ctx):
    """RMSprop as torch.optim.RMSprop: s ← α s + (1 - α) g², θ ← θ - lr·g / (√s + eps), weight
    decay added to g first; in place, one state per parameter."""
    _run_cases(student, ctx, C.rmsprop_cases(ctx))


@TESTS.test("rmsprop_centered_momentum", functions=("RMSprop",), after=("rmsprop",))
def rmsprop_centered_momentum(student, ctx):
    """centered (√(s - ḡ²)) and momentum (b ← μ b + g / (√s + eps), θ ← θ - lr·b)."""
    _run_cases(student, ctx, C.rmsprop_centered_cases(ctx))


@TESTS.test("adam", functions=("Adam",))
def adam(student, ctx):
    """Adam as torch.optim.Adam: moments with bias correction 1 - βᵗ (t = 1 at the first step),
    eps after the root, the current lr at every step; in place, one state per parameter."""
    _run_cases(student, ctx, C.adam_cases(ctx))


@TESTS.test("adam_weight_decay", functions=("Adam",), after=("adam",))
def adam_weight_decay(student, ctx):
    """Adam's weight_decay is an L2 penalty: g ← g + λθ before the moments."""
    _run_cases(student, ctx, C.adam_weight_decay_cases(ctx))


@TESTS.test("adamw", functions=("AdamW",), after=("adam",))
def adamw(student, ctx):
    """AdamW's decoupled weight decay: θ ← θ(1 - lr·λ), then Adam's step on the raw gradient."""
    _run_cases(student, ctx, C.adamw_cases(ctx))


@TESTS.test("amsgrad", functions=("Adam", "AdamW"), after=("adam", "adamw"))
def amsgrad(student, ctx):
    """AMSGrad: v_max ← max(v_max, v) kept per parameter, √v_max / √(1 - β₂ᵗ) in the denominator."""
    _run_cases(student, ctx, C.amsgrad_cases(ctx))


@TESTS.test("optimizer_arguments", functions=("RMSprop", "Adam", "AdamW"))
def optimizer_arguments(student, ctx):
    """The constructors raise ValueError where torch.optim's do (negative lr, eps, momentum, alpha,
    weight decay; betas outside [0, 1)) and accept the valid edge cases."""
    by_name: dict[str, list] = {}
    for case in C.argument_cases(ctx):
        by_name.setdefault(case[1], []).append(case)
    for name, cases in by_name.items():
        ctx.cases += len(cases)
        got = run(student, construct, name, [c[2] for c in cases], what=name)
        for (desc, _, hyper, want), g in zip(cases, got):
            call = f"{name}([p], {C._show(hyper)})"
            if want and g != want:
                raise CheckFailure(f"{call} ({desc}) must raise ValueError, as torch.optim.{name} does; yours "
                                   f"{'raised ' + g if g else 'raised nothing'}.")
            if not want and g:
                raise CheckFailure(f"{call} raised {g}; these arguments are valid ({desc}).")


def _lrs(values, what: str, case: str, n: int) -> np.ndarray:
    """The student's learning rates as a float array of n, or a CheckFailure saying what came back."""
    bad = next((v for v in values if isinstance(v, (Opaque, str, list, tuple, dict)) or v is None), "none")
    if bad != "none":
        kind = bad.type_name if isinstance(bad, Opaque) else type(bad).__name__
        raise CheckFailure(f"{what} is a {kind} on {case}; expected a float.")
    try:
        return np.asarray(values, dtype=np.float64).reshape(n)
    except (TypeError, ValueError, OverflowError):
        raise CheckFailure(f"{what} is not a float on {case}; expected a float after every step().") from None


def check_schedule_case(student, case, diagnoses):
    """Run the student's scheduler and compare optimizer.lr and get_last_lr() with PyTorch's,
    at construction and after every step()."""
    desc, name, base, kwargs, steps = case
    got = run(student, drivers.schedule_run, name, base, kwargs, steps, what=name, case=desc)
    want = ref.schedule(name, base, kwargs, steps)
    lr = _lrs(got["lr"], "optimizer.lr", desc, steps + 1)
    for t, last in enumerate(got["last"]):
        if not isinstance(last, list) or len(last) != 1:
            kind = last.type_name if isinstance(last, Opaque) else type(last).__name__
            raise CheckFailure(f"{name}.get_last_lr() returned a {kind} on {desc}; like PyTorch's it returns a list "
                               "with one learning rate per parameter group: here one, [optimizer.lr].")
    last = _lrs([v[0] for v in got["last"]], "get_last_lr()[0]", desc, steps + 1)
    if np.all(lr == base) and not np.allclose(want, base):
        raise CheckFailure(f"{name} is wrong on {desc}: optimizer.lr never changes. step() must set the optimizer's "
                           "learning rate, optimizer.lr = <the new rate> (the optimizer reads it at its next step).")
    expect_close(lr, want, what=f"optimizer.lr at construction and after each of the {steps} step() calls",
                 tol=SCHEDULE, case=desc, diagnoses=diagnoses)
    expect_close(last, lr, what="get_last_lr()[0] (it must equal the optimizer.lr you set)", tol=SCHEDULE, case=desc)


@TESTS.test("step_lr", functions=("StepLR",))
def step_lr(student, ctx):
    """StepLR: after t calls of step(), optimizer.lr = base·γ^⌊t / step_size⌋ and get_last_lr() is
    [optimizer.lr], as torch.optim.lr_scheduler.StepLR."""
    for case in C.step_lr_cases(ctx):
        ctx.cases += 1
        _, _, base, kw, steps = case
        check_schedule_case(student, case, M.step_lr_mistakes(base, kw["step_size"], kw.get("gamma", 0.1), steps))


@TESTS.test("cosine_lr", functions=("CosineAnnealingLR",))
def cosine_lr(student, ctx):
    """CosineAnnealingLR: after t calls of step(), optimizer.lr = η_min + (base - η_min)(1 +
    cos(π t / T_max)) / 2, on beyond T_max (period 2 T_max), as PyTorch's."""
    for case in C.cosine_cases(ctx):
        ctx.cases += 1
        _, _, base, kw, steps = case
        check_schedule_case(student, case, M.cosine_mistakes(base, kw["T_max"], kw.get("eta_min", 0.0), steps))
