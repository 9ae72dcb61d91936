"""Drivers for `batch_norm`: they run next to the student's code and return plain data only.

The cache that a forward pass returns is the student's own business: the backward drivers call
forward and backward in one go, here, and hand back only arrays. A driver that finds a problem
which is not an exception (a forward that returns one value instead of ``(out, cache)``...)
raises :class:`~autograde.errors.DriverProblem` with the message for the student.
"""
from __future__ import annotations

import copy
import time

import numpy as np

from ..errors import DriverProblem, Forbidden
from ..execution import graded
from ..guard import NORMALIZATIONS, call_recorder
from ..plain import same, to_plain

# The torch functions that normalize for you: the names core's framework guard watches
# (guard.NORMALIZATIONS), plus local_response_norm. Each is matched as a substring of the name of every
# torch function called while the student's module is built, runs forward and backward, however it
# was reached (F.batch_norm, torch.batch_norm, getattr(torch, ...), torch.ops.aten.native_batch_norm,
# an nn.BatchNorm1d / nn.LayerNorm submodule...).
FORBIDDEN = tuple(sorted(NORMALIZATIONS | {"local_response_norm"}))


def _pair(name: str, result):
    """The (out, cache) a forward pass must return, or a problem message."""
    if isinstance(result, tuple) and len(result) == 2:
        return result, None
    got = f"a tuple of {len(result)} values" if isinstance(result, tuple) else f"a {type(result).__name__}"
    return None, f"{name} returned {got}; it must return the pair (out, cache)."


# ---------------------------------------------------------------------------------------------
# numpy: forward passes
# ---------------------------------------------------------------------------------------------
def forward_steps(ns: dict, name: str, gamma, beta, bn_param: dict, steps: list):
    """Call ``name(x, gamma, beta, bn_param)`` once per (mode, x) in ``steps``, with ONE bn_param
    dict (a copy of the given one) carried across the calls, as a training loop would.

    Returns, per step, {"out", "running_mean", "running_var", "mutated"}: the output, what bn_param
    holds after the call (None when a key is absent) and the inputs the call changed in place."""
    fn = graded(ns, name)
    param = copy.deepcopy(bn_param)
    record = []
    for mode, x in steps:
        param["mode"] = mode
        given = (np.array(x, copy=True), np.array(gamma, copy=True), np.array(beta, copy=True))
        (out, _cache), problem = _pair(name, fn(*given, param))
        if problem:
            raise DriverProblem(problem)
        mutated = [n for n, a, g in zip(("x", "gamma", "beta"), (x, gamma, beta), given) if not same(a, g)]
        # copied now: a later call may update the arrays in bn_param in place
        record.append(to_plain({"out": out, "running_mean": param.get("running_mean"),
                                "running_var": param.get("running_var"), "mutated": mutated}))
    return record


# ---------------------------------------------------------------------------------------------
# numpy: backward passes
# ---------------------------------------------------------------------------------------------
def _grads(name: str, result):
    if isinstance(result, tuple) and len(result) == 3:
        return result, None
    got = f"a tuple of {len(result)} values" if isinstance(result, tuple) else f"a {type(result).__name__}"
    return None, f"{name} returned {got}; it must return the triple (dx, dgamma, dbeta)."


def forward_backward(ns: dict, forward: str, backwards: tuple, x, gamma, beta, bn_param: dict, dout):
    """``out, cache = forward(x, gamma, beta, bn_param)`` in train mode, then each backward in
    ``backwards`` on (a copy of) that same cache. The first backward must work; for the others an
    error is recorded, not raised (the fast test compares with the staged one when it runs).

    Returns {backward name: {"dx", "dgamma", "dbeta"} or {"error": str}, "forward_out": the
    forward's out (the checks blame the forward first when it is wrong)}."""
    fn = graded(ns, forward)
    param = dict(copy.deepcopy(bn_param), mode="train")
    (_out, cache), problem = _pair(forward, fn(np.array(x, copy=True), np.array(gamma, copy=True),
                                               np.array(beta, copy=True), param))
    if problem:
        raise DriverProblem(problem)
    if cache is None:
        raise DriverProblem(f"{forward} returned cache = None in train mode: store in the cache what the "
                            "backward pass needs (x̂, 1/sqrt(var + eps), gamma, ...) and return it.")
    res = {"forward_out": to_plain(_out)}
    for i, name in enumerate(backwards):
        bwd = graded(ns, name)
        try:
            c = copy.deepcopy(cache)
        except Exception:  # noqa: BLE001 - an uncopyable cache is shared; only the order then matters
            c = cache
        try:
            (dx, dgamma, dbeta), problem = _grads(name, bwd(np.array(dout, copy=True), c))
        except Exception as exc:  # noqa: BLE001
            if i == 0:
                raise
            res[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            continue
        if problem:
            if i == 0:
                raise DriverProblem(problem)
            res[name] = {"error": problem}
            continue
        res[name] = to_plain({"dx": dx, "dgamma": dgamma, "dbeta": dbeta})
    return res


def finite_differences(ns: dict, forward: str, x, gamma, beta, bn_param: dict, dout, h: float):
    """Centred finite differences of L = sum(out * dout) through the student's own forward pass
    (train mode, a fresh bn_param per call): {"dx", "dgamma", "dbeta"}. Cheap for the small
    inputs it is used on (2 calls per entry)."""
    fn = graded(ns, forward)

    def loss(xv, g, b):
        (out, _), problem = _pair(forward, fn(xv, g, b, dict(copy.deepcopy(bn_param), mode="train")))
        if problem:
            raise TypeError(problem)
        return float(np.sum(np.asarray(out, np.float64) * dout))

    args = [np.array(a, np.float64) for a in (x, gamma, beta)]
    grads = []
    for k, a in enumerate(args):
        g = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            plus, minus = [v.copy() for v in args], [v.copy() for v in args]
            plus[k][idx] += h
            minus[k][idx] -= h
            g[idx] = (loss(*plus) - loss(*minus)) / (2 * h)
        grads.append(g)
    return dict(zip(("dx", "dgamma", "dbeta"), grads))


# ---------------------------------------------------------------------------------------------
# torch: the BatchNorm1d module
# ---------------------------------------------------------------------------------------------
def _forbidden_names(names) -> list[str]:
    return sorted(n for n in names if any(f in n for f in FORBIDDEN))


def module_steps(ns: dict, spec: dict):
    """Build ``BatchNorm1d(num_features[, eps=..., momentum=...])``, move it to spec's device and
    dtype, set its weight and bias, and run ``steps`` = [(mode, x, dout)]: forward in that mode,
    then autograd of sum(out * dout) with respect to x, weight and bias.

    Returns {"params", "buffers", "init", "steps": [{"out", "dx", "dweight", "dbias",
    "running_mean", "running_var", "device", "dtype", "attached", "grad_error"}]}, or raises DriverProblem.
    Raises Forbidden when a built-in normalization was called, whatever else happened."""
    import torch

    cls = graded(ns, "BatchNorm1d")
    dtype, device = getattr(torch, spec["dtype"]), spec["device"]
    rec = call_recorder()
    try:
        with rec:
            return _run_module(torch, cls, spec, dtype, device)
    finally:
        bad = _forbidden_names(rec.names)
        if bad:
            raise Forbidden(
                f"BatchNorm1d calls torch's built-in normalization ({', '.join(bad)}). This exercise asks "
                "you to write batch norm from basic tensor operations (mean, var, sqrt, arithmetic): "
                "F.batch_norm, torch.batch_norm, nn.BatchNorm1d and the other built-in normalizations "
                "(layer_norm, group_norm, instance_norm, ...) are not allowed, however they are called.")


def _run_module(torch, cls, spec, dtype, device):
    kwargs = {k: spec[k] for k in ("eps", "momentum") if spec.get(k) is not None}
    m = cls(spec["num_features"], **kwargs)
    if not isinstance(m, torch.nn.Module):
        raise DriverProblem(f"BatchNorm1d(...) made a {type(m).__name__}, not a torch.nn.Module: subclass "
                            "nn.Module and call super().__init__() first.")
    params = sorted(n for n, _ in m.named_parameters())
    buffers = sorted(n for n, _ in m.named_buffers())
    state = m.state_dict()
    init = {k: state[k].detach().cpu().double().numpy() for k in ("weight", "bias", "running_mean", "running_var")
            if k in state and torch.is_tensor(state[k])}
    result = {"params": params, "buffers": buffers, "init": init, "steps": []}
    if not {"weight", "bias"} <= set(params) or not {"running_mean", "running_var"} <= set(buffers):
        return result  # the check explains what is missing
    m = m.to(device=device, dtype=dtype)
    with torch.no_grad():
        m.weight.copy_(torch.as_tensor(spec["weight"]))
        m.bias.copy_(torch.as_tensor(spec["bias"]))
    for mode, x, dout in spec["steps"]:
        m.train(mode == "train")
        xt = torch.tensor(x, dtype=dtype, device=device, requires_grad=True)
        out = m(xt)
        if not torch.is_tensor(out):
            raise DriverProblem(f"BatchNorm1d's forward returned a {type(out).__name__}, not a tensor.")
        step = {"out": out.detach().cpu().numpy(), "device": out.device.type, "dtype": str(out.dtype).replace("torch.", ""),
                "attached": bool(m.running_mean.requires_grad or m.running_var.requires_grad)}
        try:
            grads = torch.autograd.grad(out, (xt, m.weight, m.bias),
                                        torch.as_tensor(dout, dtype=out.dtype, device=out.device), allow_unused=True)
            step.update({k: None if g is None else g.detach().cpu().numpy()
                         for k, g in zip(("dx", "dweight", "dbias"), grads)})
            step["grad_error"] = None
        except RuntimeError as exc:
            step.update(dx=None, dweight=None, dbias=None, grad_error=str(exc).splitlines()[0][:300])
        step["running_mean"] = m.running_mean.detach().cpu().numpy().copy()
        step["running_var"] = m.running_var.detach().cpu().numpy().copy()
        result["steps"].append(step)
    return result


def time_forward_backward(ns: dict, forward: str, backward: str, x, gamma, beta, dout, repeats: int):
    """Best of ``repeats`` wall-clock seconds of the student's train-mode forward + backward.
    Measured in the student's process: it can only change the advice it gets, never a score."""
    fwd, bwd = ns[forward], ns[backward]
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        _, cache = fwd(x, gamma, beta, {"mode": "train"})
        bwd(dout, cache)
        best = min(best, time.perf_counter() - t0)
    return {"seconds": best}


# The student's class module_steps exercises (named in messages: execution.subject).
module_steps.subject = "BatchNorm1d"
