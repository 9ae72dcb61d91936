"""Checks for `normalization`: numpy layer norm and spatial group norm (forward, backward) and a
torch GroupNorm module, against PyTorch (``F.layer_norm``, ``F.group_norm`` and autograd, float64
on the reference device: reference.py). The inputs are cases.py's, the known mistakes mistakes.py's.
"""
from __future__ import annotations

import numpy as np

from ..core import FLOAT64, CheckFailure, Registry, Tol, expect_close, scaled, tol_for
from . import drivers
from . import mistakes as M
from . import reference as ref
from .cases import (bad_group_cases, groupnorm_backward_cases, groupnorm_cases, layernorm_backward_cases,
                    layernorm_cases, module_cases)

TESTS = Registry()

EPS = M.EPS

# float64 rows with means of 1e3-1e4 and a spread of 1e-2: x itself is rounded at ~1e-12 and
# normalizing divides that by the spread, so two correct answers differ by up to ~1e-10 absolute
# (~1e-8 through the gradients' sums). The mistake it exposes (E[x²] - E[x]²) is off by >= 1e-5.
LARGE_MEANS = Tol(1e-7, 1e-7, "means of 1e3-1e4 with a spread of 1e-2: the input's own rounding (~1e-12), divided "
                              "by the spread, allows ~1e-8")

# The module in float32 against the float64 reference on the same values: float32 rounding
# (1.2e-7) through a mean and a variance over up to C/G * H * W = 144 values, and for the gradients
# sums that cancel, loses up to ~1e-5 relative of the largest value. The smallest mistake caught
# (the unbiased variance over 36 values) is off by 1.4e-2.
MODULE32 = Tol(2e-4, 2e-5, "float32 module: float32 rounding through the group sums allows ~1e-4 relative "
                           "(atol scaled by the largest reference value)")


def input_tol(x, large: bool = False) -> Tol:
    return LARGE_MEANS if large else tol_for(x)


def _eps(p) -> float:
    return float(p.get("eps", EPS))


def _mutated(name, res):
    if res["mutated"]:
        raise CheckFailure(f"{name} changed its input {', '.join(res['mutated'])} in place (e.g. `x -= mean`): compute "
                           "on new arrays; the caller still needs x.")


def _forward_first(res, want, x, forward, test, at, large=False):
    """The backward runs on the cache of the student's own forward: when that forward's out is
    wrong on this very input, blame the forward, not the backward."""
    try:
        expect_close(res.get("forward_out"), want["out"], what=f"{forward}'s out", tol=input_tol(x, large), case=at)
    except CheckFailure as exc:
        raise CheckFailure(f"{forward} is wrong on this input (see check('{test}')); the backward is checked through "
                           f"your forward's cache, so fix the forward first. ({exc})") from None


def _grads_close(res, want, x, gamma, dout, eps, name, at, groups=None, large=False):
    tol = input_tol(x, large)
    for key, diag in (("dx", M.dx_mistakes(x, gamma, dout, eps, groups)),
                      ("dgamma", M.param_grad_mistakes(x, gamma, dout, eps, "dgamma", groups)),
                      ("dbeta", M.param_grad_mistakes(x, gamma, dout, eps, "dbeta", groups))):
        expect_close(res[key], want[key], what=f"{name}'s {key}", case=at, diagnoses=diag,
                     tol=scaled(tol, want[key]) if tol is not FLOAT64 else tol)


# ---------------------------------------------------------------------------------------------
# numpy: layer norm
# ---------------------------------------------------------------------------------------------
@TESTS.test("layernorm_forward", functions=("layernorm_forward",))
def layernorm_forward(student, ctx):
    """out equals F.layer_norm(x, (D,), gamma, beta, eps) for x (N, D), N = 1 and N = D included."""
    for case, x, gamma, beta, p, large in layernorm_cases(ctx):
        ctx.cases += 1
        eps = _eps(p)
        res = student.run(drivers.forward, "layernorm_forward", x, gamma, beta, p)
        _mutated("layernorm_forward", res)
        want = ref.layer_norm(x, gamma, beta, eps=eps)
        expect_close(res["out"], want["out"], what="layernorm_forward's out", tol=input_tol(x, large), case=case,
                     diagnoses=M.layernorm_mistakes(x, gamma, beta, eps, large))


@TESTS.test("layernorm_backward", functions=("layernorm_forward", "layernorm_backward"), after=("layernorm_forward",))
def layernorm_backward(student, ctx):
    """(dx, dgamma, dbeta) of sum(out * dout) equal autograd through F.layer_norm."""
    for case, x, gamma, beta, p, dout, large in layernorm_backward_cases(ctx):
        ctx.cases += 1
        eps = _eps(p)
        res = student.run(drivers.forward_backward, "layernorm_forward", "layernorm_backward", (x, gamma, beta, p), dout,
                          what="layernorm_forward + layernorm_backward")
        want = ref.layer_norm(x, gamma, beta, eps=eps, dout=dout)
        _forward_first(res, want, x, "layernorm_forward", "layernorm_forward", case, large)
        _grads_close(res, want, x, gamma, dout, eps, "layernorm_backward", case, large=large)


# ---------------------------------------------------------------------------------------------
# numpy: spatial group norm
# ---------------------------------------------------------------------------------------------
@TESTS.test("groupnorm_forward", functions=("spatial_groupnorm_forward",))
def groupnorm_forward(student, ctx):
    """out equals F.group_norm(x, G, gamma, beta, eps) for x (N, C, H, W), G = 1 and G = C included."""
    for case, x, gamma, beta, groups, p in groupnorm_cases(ctx):
        ctx.cases += 1
        eps = _eps(p)
        res = student.run(drivers.forward, "spatial_groupnorm_forward", x, gamma, beta, groups, p)
        _mutated("spatial_groupnorm_forward", res)
        want = ref.group_norm(x, gamma, beta, groups, eps=eps)
        expect_close(res["out"], want["out"], what="spatial_groupnorm_forward's out", tol=tol_for(x), case=case,
                     diagnoses=M.groupnorm_mistakes(x, gamma, beta, groups, eps))


@TESTS.test("groupnorm_groups", functions=("spatial_groupnorm_forward",), after=("groupnorm_forward",))
def groupnorm_groups(student, ctx):
    """G that does not divide C raises ValueError (as nn.GroupNorm does) with a message."""
    for case, x, gamma, beta, groups in bad_group_cases(ctx):
        ctx.cases += 1
        got = student.run(drivers.raised, "spatial_groupnorm_forward", x, gamma, beta, groups, {})
        if got["type"] == "NotImplementedError":
            raise CheckFailure("spatial_groupnorm_forward is not implemented yet: it still raises NotImplementedError.")
        if got["type"] != "ValueError":
            did = "returned a result" if got["type"] is None else f"raised {got['type']}: {got['message']}"
            raise CheckFailure(f"spatial_groupnorm_forward {did} for {case}: G must divide C (each group holds C / G "
                               "whole channels), so check it first and raise ValueError with a message saying so, as "
                               "nn.GroupNorm does.")


@TESTS.test("groupnorm_backward", functions=("spatial_groupnorm_forward", "spatial_groupnorm_backward"),
            after=("groupnorm_forward",))
def groupnorm_backward(student, ctx):
    """(dx, dgamma, dbeta) of sum(out * dout) equal autograd through F.group_norm; dgamma and dbeta
    have shape (C,)."""
    for case, x, gamma, beta, groups, p, dout in groupnorm_backward_cases(ctx):
        ctx.cases += 1
        eps = _eps(p)
        res = student.run(drivers.forward_backward, "spatial_groupnorm_forward", "spatial_groupnorm_backward",
                          (x, gamma, beta, groups, p), dout,
                          what="spatial_groupnorm_forward + spatial_groupnorm_backward")
        want = ref.group_norm(x, gamma, beta, groups, eps=eps, dout=dout)
        _forward_first(res, want, x, "spatial_groupnorm_forward", "groupnorm_forward", case)
        _grads_close(res, want, x, gamma, dout, eps, "spatial_groupnorm_backward", case, groups=groups)


# ---------------------------------------------------------------------------------------------
# torch: the GroupNorm module
# ---------------------------------------------------------------------------------------------
def _module_result(student, desc, spec):
    res = student.run(drivers.module_steps, spec, what="GroupNorm")
    c = spec["num_channels"]
    want = {"weight": [c], "bias": [c]} if spec["affine"] else {}
    call = f"GroupNorm({spec['num_groups']}, {c}" + ("" if spec["affine"] else ", affine=False") + ")"
    if res["params"] != want:
        got = ", ".join(f"{n} {tuple(s)}" for n, s in res["params"].items()) or "none"
        raise CheckFailure(f"{call} has parameters {got}; nn.GroupNorm has "
                           + (f"weight and bias of shape ({c},): one scale and shift per CHANNEL, not per group, "
                              "made nn.Parameter so that autograd and optimizers see them." if want else
                              "none with affine=False (and no weight or bias in its state_dict)."))
    if res["state_dict"] != sorted(want):
        raise CheckFailure(f"{call}.state_dict() has keys {res['state_dict']}; nn.GroupNorm's are {sorted(want)} (a "
                           "checkpoint of one must load into the other).")
    for k, v in (("weight", 1.0), ("bias", 0.0)):
        if k in want and not np.all(res["init"][k] == v):
            raise CheckFailure(f"a new {call} must have {k} = {'ones' if v else 'zeros'}, as nn.GroupNorm does.")
    for k, step in enumerate(res["steps"]):
        if step["device"] != spec["device"] or step["dtype"] != spec["dtype"]:
            raise CheckFailure(f"GroupNorm's output is {step['dtype']} on {step['device']} for {spec['dtype']} input on "
                               f"{spec['device']} ({desc}, step {k + 1}): keep every tensor on the input's device and "
                               "dtype.")
    return res


def _module_steps(student, ctx):
    """Per step of every module case: (description, spec, x, dout, the student's step, the reference, eps)."""
    for desc, spec in module_cases(ctx):
        ctx.cases += 1
        res = _module_result(student, desc, spec)
        eps = EPS if spec["eps"] is None else spec["eps"]
        for k, ((x, dout), got) in enumerate(zip(spec["steps"], res["steps"])):
            xin = x.astype(np.float32) if spec["dtype"] == "float32" else x  # the values the module saw
            want = ref.group_norm(xin, spec["weight"], spec["bias"], spec["num_groups"], eps=eps, dout=dout)
            yield f"{desc}, step {k + 1}", spec, xin, dout, got, want, eps


def _module_tol(spec, want) -> Tol:
    return scaled(MODULE32, want) if spec["dtype"] == "float32" else FLOAT64


@TESTS.test("gn_module_forward", functions=("GroupNorm",), framework="torch")
def gn_module_forward(student, ctx):
    """GroupNorm(num_groups, num_channels, eps, affine): parameters, state_dict keys and initial values
    of nn.GroupNorm, and its output, on the reference device, for float32 and float64 input;
    GroupNorm(4, 6) raises ValueError, as nn.GroupNorm does."""
    for at, spec, x, _, got, want, eps in _module_steps(student, ctx):
        expect_close(got["out"], want["out"], what="GroupNorm's output", tol=_module_tol(spec, want["out"]), case=at,
                     diagnoses=M.groupnorm_mistakes(x, spec["weight"], spec["bias"], spec["num_groups"], eps,
                                                    owner="the eps argument"))
    got = student.run(drivers.raised, "GroupNorm", 4, 6)
    if got["type"] != "ValueError":
        did = "returned a module" if got["type"] is None else f"raised {got['type']}: {got['message']}"
        raise CheckFailure(f"GroupNorm(4, 6) {did}: num_groups must divide num_channels (each group holds whole "
                           "channels), so check it in __init__ and raise ValueError with a message, as nn.GroupNorm does.")


@TESTS.test("gn_module_grad", functions=("GroupNorm",), framework="torch", after=("gn_module_forward",))
def gn_module_grad(student, ctx):
    """Autograd through GroupNorm: the gradients of sum(out * dout) with respect to the input, weight
    and bias equal nn.GroupNorm's."""
    for at, spec, x, dout, got, want, eps in _module_steps(student, ctx):
        if got["grad_error"]:
            raise CheckFailure(f"backward through GroupNorm failed ({at}): {got['grad_error']}")
        keys = (("dx", "dx"), ("dweight", "dgamma"), ("dbias", "dbeta")) if spec["affine"] else (("dx", "dx"),)
        for name, key in keys:
            if got[name] is None:
                raise CheckFailure(f"GroupNorm's output does not depend on {name[1:]} ({at}): no gradient reaches it.")
        gamma = spec["weight"] if spec["affine"] else np.ones(spec["num_channels"])
        diag = M.dx_mistakes(x, gamma, dout, eps, spec["num_groups"])
        diag[M.NO_STATS_PATH + " Compute them from x itself, not x.detach() or under torch.no_grad()."] = diag.pop(
            M.NO_STATS_PATH)
        expect_close(got["dx"], want["dx"], what="the gradient for GroupNorm's input", tol=_module_tol(spec, want["dx"]),
                     case=at, diagnoses=diag)
        for name, key in keys[1:]:
            expect_close(got[name], want[key], what=f"GroupNorm.{name[1:]}.grad", tol=_module_tol(spec, want[key]),
                         case=at)
