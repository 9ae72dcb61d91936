"""Checks for `batch_norm`: numpy forward/backward/spatial batch norm and a torch BatchNorm1d.

The inputs are cases.py's (fresh random draws from each test's seeded generator); the known
mistakes' outputs, which name a mistake in a failure, are mistakes.py's. The reference is PyTorch
(``F.batch_norm`` and autograd, float64, on the reference device: see reference.py). Eval steps are
checked against the *student's own* running statistics (as stored after the training steps), so a
wrong running-statistics update costs the training test only and the eval test checks what eval
mode does with them. The gradients of ``batchnorm_backward`` are also compared with centred finite
differences of the student's own ``batchnorm_forward``: when the answer is wrong, that tells apart
"the backward is not the derivative of your forward" from "the backward is right for your forward,
but the forward is wrong".

Over 400 lines because it holds nine tests of three kinds (numpy, spatial, torch module) and the
advice, each short; the helpers that only these tests use sit beside them.
"""
from __future__ import annotations

import time

import numpy as np

from ..core import FLOAT32, FLOAT64, CheckFailure, Registry, Tol, expect_close, scaled, tol_for
from . import drivers
from . import reference as ref
from .cases import (EPS, MOMENTUM, backward_cases, eval_cases, fd_case, module_cases, spatial_backward_cases,
                    spatial_cases, train_cases)
from .mistakes import (dgamma_mistakes, dx_mistakes, eval_mistakes, f64, out_mistakes, running_mistakes,
                       spatial_dx_mistakes, spatial_out_mistakes, spatial_running_mistakes, stat_axes)

TESTS = Registry()


# The module in float32, compared with the float64 reference on the same (float32) values: float32
# rounding (1.2e-7) through a mean and a variance over N <= 64 rows, and for the gradients a sum
# that cancels (N dy - sum dy - x̂ sum dy x̂), loses up to ~1e-5 relative of the largest value. The
# smallest mistake caught here (unbiased variance with N = 32) is off by 1.6e-2.
MODULE32 = Tol(2e-4, 2e-5, "float32 module: float32 rounding through the batch sums allows ~1e-4 relative "
                           "(atol scaled by the largest reference value)")


# float64 inputs with means of 1e3-1e4 and a spread down to 1e-3: x itself is rounded at ~1e-12
# (half an ulp of 1e4) and normalizing multiplies that by 1/spread <= 1e3, so two correct answers
# differ by up to ~1e-8 absolute. The mistake it exposes (E[x²] - E[x]²) is off by >= 5e-6.
LARGE_MEANS = Tol(1e-7, 1e-7, "means of 1e3-1e4 with a small spread: the input's own rounding (~1e-12), divided "
                              "by the spread, allows ~1e-8")


def input_tol(x) -> Tol:
    """FLOAT32 for float32 input; LARGE_MEANS when |mean| / std exceeds 1e4 for some feature/channel."""
    tol = tol_for(x)
    if tol is FLOAT64:
        xf = np.asarray(x, np.float64)
        mu, sd = np.abs(xf.mean(stat_axes(xf))), xf.std(stat_axes(xf))
        if np.any(mu > 1e4 * sd):
            return LARGE_MEANS
    return tol


# ---------------------------------------------------------------------------------------------
# Small helpers for the tests
# ---------------------------------------------------------------------------------------------
def _mutated(name, step):
    if step.get("mutated"):
        raise CheckFailure(f"{name} changed its input {', '.join(step['mutated'])} in place (e.g. `x -= mean`): compute "
                           "on new arrays; the caller still needs x (and the backward pass needs it too).")


def _stats_present(name, step, key, d, after):
    v = step.get(key)
    if v is None:
        raise CheckFailure(f"after {after}, bn_param has no '{key}': {name} must store the running statistics in "
                           f"bn_param['{key}'] (starting from {'zeros' if key == 'running_mean' else 'ones'}).")
    arr = np.asarray(v, dtype=np.float64) if not isinstance(v, (dict, str)) else None
    if arr is None or arr.shape != (d,) or not np.all(np.isfinite(arr)):
        what = f"shape {arr.shape}" if arr is not None and arr.shape != (d,) else "non-finite or non-numeric values"
        raise CheckFailure(f"after {after}, bn_param['{key}'] has {what}; expected {d} finite numbers, shape ({d},).")
    return arr


def _momentum_eps(p):
    return float(p.get("momentum", MOMENTUM)), float(p.get("eps", EPS))


# ---------------------------------------------------------------------------------------------
# Tests: numpy batch norm
# ---------------------------------------------------------------------------------------------
@TESTS.test("batchnorm_forward_train", functions=("batchnorm_forward",))
def batchnorm_forward_train(student, ctx):
    """Training mode: out, and bn_param's running_mean / running_var after each of several steps,
    equal F.batch_norm(training=True) and its running statistics."""
    for case, gamma, beta, p, xs, large in train_cases(ctx):
        ctx.cases += 1
        momentum, eps = _momentum_eps(p)
        d = np.shape(gamma)[0]
        steps = student.run(drivers.forward_steps, "batchnorm_forward", gamma, beta, p,
                                     [("train", x) for x in xs], what="batchnorm_forward")
        rm, rv = f64(p.get("running_mean", np.zeros(d))), f64(p.get("running_var", np.ones(d)))
        for k, (x, got) in enumerate(zip(xs, steps)):
            at = f"{case}, training step {k + 1}"
            tol = input_tol(x)
            _mutated("batchnorm_forward", got)
            want = ref.batch_norm(x, gamma, beta, rm, rv, training=True, momentum=momentum, eps=eps)
            expect_close(got["out"], want["out"], what="batchnorm_forward's out", tol=tol, case=at,
                         diagnoses=out_mistakes(x, gamma, beta, eps, large))
            for key, prev in (("running_mean", rm), ("running_var", rv)):
                _stats_present("batchnorm_forward", got, key, d, f"training step {k + 1}")
                expect_close(got[key], want[key], what=f"bn_param['{key}']", tol=tol, case=at,
                             diagnoses=running_mistakes(key, prev, x, momentum))
            rm, rv = want["running_mean"], want["running_var"]


@TESTS.test("batchnorm_forward_eval", functions=("batchnorm_forward",), after=("batchnorm_forward_train",))
def batchnorm_forward_eval(student, ctx):
    """Eval mode after several training steps: out = F.batch_norm(training=False) with the running
    statistics that the training steps stored in bn_param, and those statistics stay unchanged."""
    for case, gamma, beta, p, train_xs, eval_xs in eval_cases(ctx):
        ctx.cases += 1
        momentum, eps = _momentum_eps(p)
        d = np.shape(gamma)[0]
        steps = [("train", x) for x in train_xs] + [("eval", x) for x in eval_xs]
        got = student.run(drivers.forward_steps, "batchnorm_forward", gamma, beta, p, steps,
                                   what="batchnorm_forward")
        before = got[len(train_xs) - 1]
        for k, x in enumerate(eval_xs):
            step = got[len(train_xs) + k]
            at = f"{case}: eval batch {k + 1} of {x.shape[0]}"
            after = f"{len(train_xs)} training steps" + (f" and {k} eval steps" if k else "")
            rm = _stats_present("batchnorm_forward", before, "running_mean", d, after)
            rv = _stats_present("batchnorm_forward", before, "running_var", d, after)
            if np.any(rv + eps <= 0):
                raise CheckFailure(f"after {after}, bn_param['running_var'] has negative values: a variance is >= 0.")
            _mutated("batchnorm_forward", step)
            want = ref.batch_norm(x, gamma, beta, rm, rv, training=False, momentum=momentum, eps=eps)
            expect_close(step["out"], want["out"], what="batchnorm_forward's out in eval mode", tol=input_tol(x), case=at,
                         diagnoses=eval_mistakes(x, gamma, beta, eps, rm, rv, momentum))
            for key, old in (("running_mean", rm), ("running_var", rv)):
                now = step.get(key)
                if now is None or np.shape(now) != old.shape or not np.array_equal(f64(now), old):
                    raise CheckFailure(f"batchnorm_forward changed bn_param['{key}'] in eval mode ({at}): the running "
                                       "statistics are updated in train mode only; eval mode just uses them.")
            before = step


def _forward_first(res, want, x, forward, at):
    """The backward is checked through the cache of the student's own forward: when that forward's
    out is wrong on this very input, blame the forward, not the backward."""
    test = "batchnorm_forward_train" if forward == "batchnorm_forward" else forward
    try:
        expect_close(res.get("forward_out"), want["out"], what=f"{forward}'s out", tol=input_tol(x), case=at)
    except CheckFailure as exc:
        raise CheckFailure(f"{forward} is wrong on this input (see check('{test}')); the backward is checked through "
                           f"your forward's cache, so fix the forward first. ({exc})") from None


def _check_grads(got, want, x, gamma, dout, eps, at, name, extra=None, dx_diagnoses=None):
    """dx, dgamma, dbeta against the reference. ``dx_diagnoses`` replaces dx_mistakes (the spatial
    ones for (N, C, H, W) input); ``extra`` diagnoses are tried after them."""
    tol = input_tol(x)
    dx_diag = dx_mistakes(x, gamma, dout, eps) if dx_diagnoses is None else dx_diagnoses
    expect_close(got["dx"], want["dx"], what=f"{name}'s dx", tol=scaled(tol, want["dx"]) if tol is FLOAT32 else tol,
                 case=at, diagnoses={**dx_diag, **(extra or {})})
    expect_close(got["dgamma"], want["dgamma"], what=f"{name}'s dgamma", tol=tol, case=at,
                 diagnoses=dgamma_mistakes(x, gamma, dout, eps))
    expect_close(got["dbeta"], want["dbeta"], what=f"{name}'s dbeta", tol=tol, case=at,
                 diagnoses=dgamma_mistakes(x, gamma, dout, eps, name="dbeta"))


# Finite differences: centred, h = 1e-5 in float64 on O(1) inputs: truncation ~h² and rounding
# ~1e-16/h, both ~1e-10; 1e-6 relative is ample.
FD = Tol(1e-6, 1e-7, "centred finite differences (h = 1e-5, float64)")


def _fd_hints(student, x, gamma, beta, p, dout):
    """Diagnoses that compare dx with finite differences of the student's own forward pass."""
    fd = student.run(drivers.finite_differences, "batchnorm_forward", x, gamma, beta, p, dout, 1e-5,
                     what="batchnorm_forward (finite differences)")
    fd_dx = np.asarray(fd["dx"], np.float64)

    def agrees(got):
        return got.shape == fd_dx.shape and bool(np.allclose(got, fd_dx, rtol=FD.rtol, atol=FD.atol))

    return {
        "your dx is the derivative of YOUR batchnorm_forward (it matches its finite differences), but that forward "
        "differs from PyTorch's: fix batchnorm_forward first.": agrees,
        "your dx is not the derivative of your batchnorm_forward: centred finite differences of sum(out * dout) "
        "through your forward give other values. Recheck the backward pass stage by stage.":
            lambda got: got.shape == fd_dx.shape and not agrees(got),
    }


@TESTS.test("batchnorm_backward", functions=("batchnorm_forward", "batchnorm_backward"),
            after=("batchnorm_forward_train",))
def batchnorm_backward(student, ctx):
    """The staged backward pass: (dx, dgamma, dbeta) of sum(out * dout) after a training-mode
    forward equal PyTorch's autograd. A forward whose out is wrong on the case is blamed first (the
    backward runs on its cache); otherwise finite differences of the student's own forward say
    whether the backward agrees with it."""
    for i, (case, x, gamma, beta, p, dout) in enumerate([fd_case(ctx.rng), *backward_cases(ctx)]):
        ctx.cases += 1
        _, eps = _momentum_eps(p)
        res = student.run(drivers.forward_backward, "batchnorm_forward", ("batchnorm_backward",), x, gamma, beta,
                                   p, dout, what="batchnorm_forward + batchnorm_backward")
        want = ref.batch_norm(x, gamma, beta, np.zeros(len(gamma)), np.ones(len(gamma)), training=True,
                              momentum=MOMENTUM, eps=eps, dout=dout)
        _forward_first(res, want, x, "batchnorm_forward", case)
        extra = _fd_hints(student, x, gamma, beta, p, dout) if i == 0 else None
        _check_grads(res["batchnorm_backward"], want, x, gamma, dout, eps, case, "batchnorm_backward", extra)


@TESTS.test("batchnorm_backward_fast", functions=("batchnorm_forward", "batchnorm_backward_fast"),
            after=("batchnorm_forward_train",))
def batchnorm_backward_fast(student, ctx):
    """The closed-form backward pass equals PyTorch's autograd on the same cases (and so the staged
    one); on a failure, says whether the staged one got the same cache right."""
    for case, x, gamma, beta, p, dout in backward_cases(ctx):
        ctx.cases += 1
        _, eps = _momentum_eps(p)
        res = student.run(drivers.forward_backward, "batchnorm_forward",
                                   ("batchnorm_backward_fast", "batchnorm_backward"), x, gamma, beta, p, dout,
                                   what="batchnorm_forward + batchnorm_backward_fast")
        want = ref.batch_norm(x, gamma, beta, np.zeros(len(gamma)), np.ones(len(gamma)), training=True,
                              momentum=MOMENTUM, eps=eps, dout=dout)
        _forward_first(res, want, x, "batchnorm_forward", case)
        try:
            _check_grads(res["batchnorm_backward_fast"], want, x, gamma, dout, eps, case, "batchnorm_backward_fast")
        except CheckFailure as exc:
            staged = res.get("batchnorm_backward", {})
            if "error" not in staged and _grads_close(staged, want, x):
                raise CheckFailure(f"{exc}\nYour staged batchnorm_backward gets this case right from the same cache: "
                                   "compare the two term by term (the closed form is the staged one simplified).") from None
            raise


def _grads_close(got, want, x):
    tol = input_tol(x)
    try:
        for k in ("dx", "dgamma", "dbeta"):
            expect_close(got[k], want[k], what=k, tol=scaled(tol, want[k]) if tol is FLOAT32 else tol)
    except (CheckFailure, KeyError):
        return False
    return True


@TESTS.test("spatial_batchnorm_forward", functions=("spatial_batchnorm_forward",))
def spatial_batchnorm_forward(student, ctx):
    """(N, C, H, W) input: out and the per-channel running statistics equal F.batch_norm (what
    nn.BatchNorm2d runs) in training steps and in eval mode."""
    for case, gamma, beta, p, steps in spatial_cases(ctx):
        ctx.cases += 1
        momentum, eps = _momentum_eps(p)
        c = np.shape(gamma)[0]
        got = student.run(drivers.forward_steps, "spatial_batchnorm_forward", gamma, beta, p, steps,
                                   what="spatial_batchnorm_forward")
        rm, rv = f64(p.get("running_mean", np.zeros(c))), f64(p.get("running_var", np.ones(c)))
        for k, ((mode, x), step) in enumerate(zip(steps, got)):
            at = f"{case}, step {k + 1} ({mode})"
            tol = input_tol(x)
            _mutated("spatial_batchnorm_forward", step)
            want = ref.batch_norm(x, gamma, beta, rm, rv, training=mode == "train", momentum=momentum, eps=eps)
            diag = (spatial_out_mistakes(x, gamma, beta, eps) if mode == "train" else
                    eval_mistakes(x, gamma, beta, eps, rm, rv, momentum))
            expect_close(step["out"], want["out"], what="spatial_batchnorm_forward's out", tol=tol, case=at, diagnoses=diag)
            for key, prev in (("running_mean", rm), ("running_var", rv)):
                if step.get(key) is None:
                    raise CheckFailure(f"after step {k + 1}, bn_param has no '{key}': store the running statistics in "
                                       "bn_param, one per channel.")
                expect_close(step[key], want[key], what=f"bn_param['{key}']", tol=tol, case=at,
                             diagnoses=spatial_running_mistakes(key, prev, x, momentum) if mode == "train" else {
                                 "the running statistics changed in eval mode: update them in train mode only.":
                                     lambda got, c=c: got.shape == (c,)})
            rm, rv = want["running_mean"], want["running_var"]


@TESTS.test("spatial_batchnorm_backward", functions=("spatial_batchnorm_forward", "spatial_batchnorm_backward"),
            after=("spatial_batchnorm_forward",))
def spatial_batchnorm_backward(student, ctx):
    """(dx, dgamma, dbeta) for (N, C, H, W) input after a training-mode forward equal autograd
    through F.batch_norm; dgamma and dbeta have shape (C,)."""
    for case, x, gamma, beta, p, dout in spatial_backward_cases(ctx):
        ctx.cases += 1
        _, eps = _momentum_eps(p)
        res = student.run(drivers.forward_backward, "spatial_batchnorm_forward", ("spatial_batchnorm_backward",),
                                   x, gamma, beta, p, dout, what="spatial_batchnorm_forward + spatial_batchnorm_backward")
        want = ref.batch_norm(x, gamma, beta, np.zeros(len(gamma)), np.ones(len(gamma)), training=True,
                              momentum=MOMENTUM, eps=eps, dout=dout)
        _forward_first(res, want, x, "spatial_batchnorm_forward", case)
        _check_grads(res["spatial_batchnorm_backward"], want, x, gamma, dout, eps, case, "spatial_batchnorm_backward",
                     dx_diagnoses=spatial_dx_mistakes(x, gamma, dout, eps))


# ---------------------------------------------------------------------------------------------
# Tests: the torch module
# ---------------------------------------------------------------------------------------------
def _module_tol(dtype, want, x) -> Tol:
    return scaled(MODULE32, want) if dtype == "float32" else input_tol(x)


def _module_result(student, scenario):
    res = student.run(drivers.module_steps, scenario["spec"], what="BatchNorm1d")
    spec, d = scenario["spec"], scenario["spec"]["num_features"]
    missing_p = [n for n in ("weight", "bias") if n not in res["params"]]
    if missing_p:
        raise CheckFailure(f"BatchNorm1d has no parameter {' or '.join(missing_p)} (its parameters: "
                           f"{', '.join(res['params']) or 'none'}). Name them weight and bias, as nn.BatchNorm1d does, "
                           "and make them nn.Parameter so that autograd and optimizers see them.")
    missing_b = [n for n in ("running_mean", "running_var") if n not in res["buffers"]]
    if missing_b:
        raise CheckFailure(f"BatchNorm1d has no buffer {' or '.join(missing_b)} (its buffers: "
                           f"{', '.join(res['buffers']) or 'none'}). Create them with self.register_buffer(...): a "
                           "plain attribute does not move with .to(device) and is not saved in state_dict().")
    for k, v in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
        init = np.asarray(res["init"].get(k, np.nan), np.float64)
        if init.shape != (d,) or not np.all(init == v):
            raise CheckFailure(f"a new BatchNorm1d({d}) must have {k} = {'ones' if v else 'zeros'} of shape ({d},), as "
                               f"nn.BatchNorm1d does; yours has shape {init.shape}"
                               + (f" and values like {init.ravel()[:3]}." if init.size else "."))
    for k, step in enumerate(res["steps"]):
        if step["device"] != spec["device"] or step["dtype"] != spec["dtype"]:
            raise CheckFailure(f"BatchNorm1d's output is {step['dtype']} on {step['device']} for {spec['dtype']} input on "
                               f"{spec['device']} ({scenario['desc']}, step {k + 1}): keep every tensor on the input's "
                               "device and dtype (buffers registered with register_buffer move with .to()).")
    return res


def _module_reference(scenario, res):
    """Per step, the reference: training steps chain PyTorch's own running statistics; an eval step
    uses the student's running buffers as they were before it."""
    spec = scenario["spec"]
    d = spec["num_features"]
    momentum = MOMENTUM if spec["momentum"] is None else spec["momentum"]
    eps = EPS if spec["eps"] is None else spec["eps"]
    rm, rv = np.zeros(d), np.ones(d)
    out = []
    for k, (mode, x, dout) in enumerate(spec["steps"]):
        if mode == "train":
            w = ref.batch_norm(x, spec["weight"], spec["bias"], rm, rv, training=True, momentum=momentum, eps=eps, dout=dout)
            w["prev"] = (rm, rv)
            rm, rv = w["running_mean"], w["running_var"]
        else:
            srm = f64(res["steps"][k - 1]["running_mean"]) if k else np.zeros(d)
            srv = f64(res["steps"][k - 1]["running_var"]) if k else np.ones(d)
            w = ref.batch_norm(x, spec["weight"], spec["bias"], srm, srv, training=False, momentum=momentum, eps=eps,
                               dout=dout)
            w["prev"] = (srm, srv)
        out.append(w)
    return out, momentum, eps


def _module_steps(student, ctx, modes=("train", "eval")):
    """Run every scenario of module_cases on the student's BatchNorm1d (one case each) and yield, per
    step whose mode is in ``modes``: (scenario, step number k, mode, x, dout, the student's step, the
    reference step, momentum, eps)."""
    for sc in module_cases(ctx):
        ctx.cases += 1
        res = _module_result(student, sc)
        wants, momentum, eps = _module_reference(sc, res)
        for k, ((mode, x, dout), got, want) in enumerate(zip(sc["spec"]["steps"], res["steps"], wants)):
            if mode in modes:
                yield sc, k, mode, x, dout, got, want, momentum, eps


@TESTS.test("bn_module_train", functions=("BatchNorm1d",), framework="torch")
def bn_module_train(student, ctx):
    """BatchNorm1d in training mode: parameters weight/bias, buffers running_mean/running_var (initial
    values of nn.BatchNorm1d), and after each training step the output and running buffers of
    nn.BatchNorm1d, on the reference device, for float32 and float64 input."""
    for sc, k, _, x, _, got, want, momentum, eps in _module_steps(student, ctx, ("train",)):
        spec = sc["spec"]
        at = f"{sc['desc']}, training step {k + 1}"
        expect_close(got["out"], want["out"], what="BatchNorm1d's output", tol=_module_tol(spec["dtype"], want["out"], x),
                     case=at, diagnoses=out_mistakes(x, spec["weight"], spec["bias"], eps, module=True))
        for key, prev in zip(("running_mean", "running_var"), want["prev"]):
            expect_close(got[key], want[key], what=f"BatchNorm1d.{key}", tol=_module_tol(spec["dtype"], want[key], x),
                         case=at, diagnoses=running_mistakes(key, prev, x, momentum, module=True))


@TESTS.test("bn_module_eval", functions=("BatchNorm1d",), framework="torch", after=("bn_module_train",))
def bn_module_eval(student, ctx):
    """BatchNorm1d after .eval(): the output is nn.BatchNorm1d's in eval mode with the module's own
    running buffers (as the training steps left them), and the buffers do not change."""
    for sc, k, _, x, _, got, want, momentum, eps in _module_steps(student, ctx, ("eval",)):
        spec = sc["spec"]
        at = f"{sc['desc']}, eval step {k + 1} on {x.shape[0]} example(s)"
        rm, rv = want["prev"]
        expect_close(got["out"], want["out"], what="BatchNorm1d's output in eval mode",
                     tol=_module_tol(spec["dtype"], want["out"], x), case=at,
                     diagnoses=eval_mistakes(x, spec["weight"], spec["bias"], eps, rm, rv, momentum, module=True))
        for key, old in (("running_mean", rm), ("running_var", rv)):
            if not np.array_equal(f64(got[key]), old):
                raise CheckFailure(f"BatchNorm1d changed {key} in eval mode ({at}): update the running buffers only "
                                   "when self.training is True.")


@TESTS.test("bn_module_grad", functions=("BatchNorm1d",), framework="torch", after=("bn_module_train",))
def bn_module_grad(student, ctx):
    """Autograd through BatchNorm1d: the gradients of sum(out * dout) with respect to the input,
    weight and bias equal nn.BatchNorm1d's, in training and in eval mode; the running buffers carry no
    autograd history."""
    for sc, k, mode, x, dout, got, want, _, eps in _module_steps(student, ctx):
        spec = sc["spec"]
        at = f"{sc['desc']}, {mode} step {k + 1}"
        if got["attached"]:
            raise CheckFailure(f"after {at}, BatchNorm1d's running buffers carry autograd history (requires_grad): "
                               "update them under torch.no_grad() (or from .detach()ed statistics); otherwise every "
                               "step's graph stays alive and a later backward through them fails.")
        if got["grad_error"]:
            raise CheckFailure(f"backward through BatchNorm1d failed ({at}): {got['grad_error']}")
        for name, key in (("dx", "dx"), ("dweight", "dgamma"), ("dbias", "dbeta")):
            if got[name] is None:
                raise CheckFailure(f"BatchNorm1d's output does not depend on {name[1:]} ({at}): no gradient reaches it.")
        tol = _module_tol(spec["dtype"], want["dx"], x)
        diag = dx_mistakes(x, spec["weight"], dout, eps, module=True) if mode == "train" else {}
        expect_close(got["dx"], want["dx"], what="the gradient for BatchNorm1d's input", tol=tol, case=at, diagnoses=diag)
        expect_close(got["dweight"], want["dgamma"], what="BatchNorm1d.weight.grad",
                     tol=_module_tol(spec["dtype"], want["dgamma"], x), case=at)
        expect_close(got["dbias"], want["dbeta"], what="BatchNorm1d.bias.grad",
                     tol=_module_tol(spec["dtype"], want["dbeta"], x), case=at)


# ---------------------------------------------------------------------------------------------
# Advice (no points): an unvectorized answer. `python -m bench bn` times, single-threaded, at
# float64 512 x 1024, PyTorch's F.batch_norm forward+backward, the solution's vectorized numpy and
# a loop over the features (bench/results/batchnorm.md): K sits between the solution's ratio and
# the loop's, with room for a loaded machine on either side.
SPEED_SIZE = (512, 1024)
SPEED_K = 8.0
SPEED_REPEATS = 3
# PyTorch's side is cheap (milliseconds at SPEED_SIZE): more repeats, so that a busy machine (which only ever slows a
# run down) rarely inflates its best time and hides a slow answer.
TORCH_REPEATS = 10


def _torch_seconds(x, gamma, beta, dout, repeats: int) -> float:
    """Best-of-``repeats`` seconds of F.batch_norm forward + backward on the CPU, one thread."""
    import torch
    import torch.nn.functional as F

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        xt = torch.tensor(x, requires_grad=True)
        wt, bt = torch.tensor(gamma, requires_grad=True), torch.tensor(beta, requires_grad=True)
        dt = torch.tensor(dout)
        best = float("inf")
        for _ in range(repeats + 1):  # the first run warms up
            t0 = time.perf_counter()
            y = F.batch_norm(xt, None, None, wt, bt, training=True, eps=EPS)
            torch.autograd.grad(y, (xt, wt, bt), dt)
            best = min(best, time.perf_counter() - t0)
        return best
    finally:
        torch.set_num_threads(threads)


@TESTS.advise("vectorized", after=("batchnorm_forward_train", "batchnorm_backward_fast"))
def vectorized(student, ctx):
    """Warn when batchnorm_forward + batchnorm_backward_fast is more than SPEED_K times slower
    than PyTorch at SPEED_SIZE (float64, one thread each)."""
    r = np.random.default_rng(0)
    n, d = SPEED_SIZE
    x, dout = r.normal(3, 2, size=(n, d)), r.normal(size=(n, d))
    gamma, beta = r.normal(size=d), r.normal(size=d)
    got = student.run(drivers.time_forward_backward, "batchnorm_forward", "batchnorm_backward_fast",
                      x, gamma, beta, dout, SPEED_REPEATS)
    ratio = float(got["seconds"]) / _torch_seconds(x, gamma, beta, dout, TORCH_REPEATS)
    if ratio > SPEED_K:
        return (f"batchnorm_forward + batchnorm_backward_fast took {float(got['seconds']) * 1e3:.1f} ms at "
                f"N x D = {n} x {d} (float64), {ratio:.0f}x PyTorch's F.batch_norm forward + backward; a "
                f"vectorized numpy answer is within about 2x of it (a warning past {SPEED_K:g}x). A Python loop "
                f"over the features or the examples? Write each step as one numpy expression over the whole "
                f"(N, D) array, reducing with axis=0.")
    return None
