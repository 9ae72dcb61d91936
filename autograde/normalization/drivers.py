"""Drivers for `normalization` (student side): they run next to the student's code and return
plain data only.

The forward passes return ``(out, cache)`` and the cache is the student's own business, so the
backward driver calls forward and backward in one go here and hands back arrays. A driver that
finds a problem which is not the student's exception raises :class:`~autograde.errors.DriverProblem`.
"""
from __future__ import annotations

import copy
import time

import numpy as np

from ..errors import DriverProblem, Forbidden
from ..execution import graded
from ..guard import NORMALIZATIONS, call_recorder
from ..plain import same, to_plain

# Built-in normalizations, matched as substrings of the name of every torch function the
# student's module calls (F.group_norm, torch.layer_norm, torch.ops.aten.native_group_norm, an
# nn.GroupNorm submodule...): the names the framework guard watches, and local_response_norm.
FORBIDDEN = tuple(sorted(NORMALIZATIONS | {"local_response_norm"}))


def _tuple(name: str, result, k: int, what: str):
    if isinstance(result, tuple) and len(result) == k:
        return result
    got = f"a tuple of {len(result)} values" if isinstance(result, tuple) else f"a {type(result).__name__}"
    raise DriverProblem(f"{name} returned {got}; it must return {what}.")


def forward(ns: dict, name: str, x, gamma, beta, *rest):
    """``out, cache = name(x, gamma, beta, *rest)`` on copies: {"out", "mutated": [names of the
    inputs it changed in place]}."""
    fn = graded(ns, name)
    given = [np.array(a, copy=True) for a in (x, gamma, beta)]
    out, _ = _tuple(name, fn(*given, *copy.deepcopy(rest)), 2, "the pair (out, cache)")
    mutated = [n for n, a, g in zip(("x", "gamma", "beta"), (x, gamma, beta), given) if not same(a, g)]
    return {"out": to_plain(out), "mutated": mutated}


def forward_backward(ns: dict, fwd: str, bwd: str, args: tuple, dout):
    """``out, cache = fwd(*args)``, then ``bwd(dout, cache)``: {"forward_out", "dx", "dgamma", "dbeta"}."""
    f, b = graded(ns, fwd), graded(ns, bwd)
    out, cache = _tuple(fwd, f(*copy.deepcopy(args)), 2, "the pair (out, cache)")
    if cache is None:
        raise DriverProblem(f"{fwd} returned cache = None: store in the cache what the backward pass needs "
                            "(x̂, 1/sqrt(var + eps), gamma, ...) and return it.")
    dx, dgamma, dbeta = _tuple(bwd, b(np.array(dout, copy=True), cache), 3, "the triple (dx, dgamma, dbeta)")
    return to_plain({"forward_out": out, "dx": dx, "dgamma": dgamma, "dbeta": dbeta})


def raised(ns: dict, name: str, *args):
    """The name of the exception ``name(*args)`` raised (None if it returned) and its message."""
    fn = graded(ns, name)
    try:
        fn(*copy.deepcopy(args))
    except Exception as exc:  # noqa: BLE001 - which exception is the answer
        return {"type": type(exc).__name__, "message": str(exc)[:300]}
    return {"type": None, "message": ""}


# ---------------------------------------------------------------------------------------------
# torch: the GroupNorm module
# ---------------------------------------------------------------------------------------------
def module_steps(ns: dict, spec: dict):
    """Build ``GroupNorm(num_groups, num_channels[, eps=...][, affine=...])``, move it to spec's
    device and dtype, set its weight and bias (with affine), and per step (x, dout): forward, then
    autograd of sum(out * dout) with respect to x, weight and bias.

    Returns {"params": {name: shape}, "state_dict": [keys], "init": {name: values}, "steps":
    [{"out", "dx", "dweight", "dbias", "device", "dtype", "grad_error"}]}. Raises Forbidden when a
    built-in normalization was called, whatever else happened."""
    import torch

    cls = graded(ns, "GroupNorm")
    rec = call_recorder()
    try:
        with rec:
            return _run_module(torch, cls, spec)
    finally:
        bad = sorted(n for n in rec.names if any(f in n for f in FORBIDDEN))
        if bad:
            raise Forbidden(
                f"GroupNorm calls torch's built-in normalization ({', '.join(bad)}). This exercise asks you to "
                "write group norm from basic tensor operations (reshape, mean, var, sqrt, arithmetic): "
                "F.group_norm, nn.GroupNorm, F.layer_norm, torch.layer_norm and the other built-in normalizations "
                "(batch_norm, instance_norm, ...) are not allowed, however they are called.")


def _run_module(torch, cls, spec):
    kwargs = {k: spec[k] for k in ("eps", "affine") if spec.get(k) is not None and not (k == "affine" and spec[k])}
    m = cls(spec["num_groups"], spec["num_channels"], **kwargs)
    if not isinstance(m, torch.nn.Module):
        raise DriverProblem(f"GroupNorm(...) made a {type(m).__name__}, not a torch.nn.Module: subclass nn.Module "
                            "and call super().__init__() first.")
    params = {n: list(p.shape) for n, p in m.named_parameters()}
    state = m.state_dict()
    init = {k: v.detach().cpu().double().numpy() for k, v in state.items() if torch.is_tensor(v)}
    result = {"params": params, "state_dict": sorted(state), "init": init, "steps": []}
    c = spec["num_channels"]
    if spec["affine"] and not (params.get("weight") == [c] and params.get("bias") == [c]):
        return result  # the check explains what is missing or of the wrong shape
    dtype, device = getattr(torch, spec["dtype"]), spec["device"]
    m = m.to(device=device, dtype=dtype)
    wrt_names = ("dx", "dweight", "dbias") if spec["affine"] else ("dx",)
    if spec["affine"]:
        with torch.no_grad():
            m.weight.copy_(torch.as_tensor(spec["weight"]))
            m.bias.copy_(torch.as_tensor(spec["bias"]))
    for x, dout in spec["steps"]:
        xt = torch.tensor(x, dtype=dtype, device=device, requires_grad=True)
        out = m(xt)
        if not torch.is_tensor(out):
            raise DriverProblem(f"GroupNorm's forward returned a {type(out).__name__}, not a tensor.")
        step = {"out": out.detach().cpu().numpy(), "device": out.device.type, "dtype": str(out.dtype).replace("torch.", ""),
                "dx": None, "dweight": None, "dbias": None, "grad_error": None}
        wrt = (xt, m.weight, m.bias) if spec["affine"] else (xt,)
        try:
            grads = torch.autograd.grad(out, wrt, torch.as_tensor(dout, dtype=out.dtype, device=out.device),
                                        allow_unused=True)
            step.update({k: None if g is None else g.detach().cpu().numpy() for k, g in zip(wrt_names, grads)})
        except RuntimeError as exc:
            step["grad_error"] = str(exc).splitlines()[0][:300]
        result["steps"].append(step)
    return result


def time_forward_backward(ns: dict, fwd: str, bwd: str, args: tuple, dout, repeats: int):
    """Best of ``repeats`` wall-clock seconds of the student's forward + backward (advice only)."""
    f, b = ns[fwd], ns[bwd]
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        _, cache = f(*args)
        b(dout, cache)
        best = min(best, time.perf_counter() - t0)
    return {"seconds": best}


# The student's class module_steps exercises (named in messages: execution.subject).
module_steps.subject = "GroupNorm"
