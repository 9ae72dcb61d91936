"""What the known mistakes of `batch_norm` compute, for the diagnoses (grader side, numpy float64).

A mistake model is one of the small parameterised functions below (``normalized`` with
``ddof=1``, ``bn_grads`` with the path through the variance dropped, ...); each ``*_mistakes``
function maps the message that names a mistake to what that mistake outputs on the test's inputs
(or to a predicate on the student's output), and is passed as ``diagnoses=`` to ``expect_close``.
"""
from __future__ import annotations

import numpy as np

from .cases import EPS, MOMENTUM


def f64(a):
    return np.asarray(a, dtype=np.float64)


def stat_axes(x):
    return (0,) if np.ndim(x) == 2 else (0, 2, 3)


def per_channel(p, x):
    """A per-feature (D,) / per-channel (C,) vector shaped to broadcast against x."""
    return np.reshape(f64(p), (1, -1) + (1,) * (np.ndim(x) - 2))


def normalized(x, gamma, beta, eps, *, axes=None, ddof=0, eps_outside=False, mean=None, var=None):
    """gamma * (x - mean) / sqrt(var + eps) + beta, with the variants that mistakes make."""
    x = f64(x)
    axes = stat_axes(x) if axes is None else axes
    mu = x.mean(axes, keepdims=True) if mean is None else per_channel(mean, x)
    v = x.var(axes, ddof=ddof, keepdims=True) if var is None else per_channel(var, x)
    with np.errstate(all="ignore"):
        den = np.sqrt(v) + eps if eps_outside else np.sqrt(v + eps)
        return per_channel(gamma, x) * (x - mu) / den + per_channel(beta, x)


def batch_stats(x):
    """Per feature/channel: mean, biased variance, unbiased variance, and the count m."""
    x = f64(x)
    axes = stat_axes(x)
    m = x.size // x.shape[1]
    mu, vb = x.mean(axes), x.var(axes)
    with np.errstate(all="ignore"):
        return mu, vb, vb * m / (m - 1), m


def bn_grads(x, gamma, dout, eps, *, axes=None, mean_path=True, var_path=True, use_gamma=True, var_count=None):
    """(dx, dgamma, dbeta) of sum(out * dout), with paths of the graph optionally dropped."""
    x, dout = f64(x), f64(dout)
    axes = stat_axes(x) if axes is None else axes
    m = int(np.prod([x.shape[a] for a in axes]))
    mu, var = x.mean(axes, keepdims=True), x.var(axes, keepdims=True)
    inv = 1.0 / np.sqrt(var + eps)
    xhat = (x - mu) * inv
    g = dout * per_channel(gamma, x) if use_gamma else dout
    dx = g * inv
    if mean_path:
        dx = dx - g.mean(axes, keepdims=True) * inv
    if var_path:
        dx = dx - xhat * (g * xhat).sum(axes, keepdims=True) / (var_count or m) * inv
    sum_axes = stat_axes(x)
    return dx, (dout * xhat).sum(sum_axes), dout.sum(sum_axes)


EPS_OUTSIDE = ("eps is outside the square root: divide by sqrt(var + eps), not sqrt(var) + eps (it matters when a "
               "feature's variance is near eps).")
EPS_MISSING = "eps is missing: divide by sqrt(var + eps) (eps keeps a constant feature from dividing by zero)."
UNBIASED_NORM = ("you normalize with the UNBIASED variance (divided by N - 1, as in makemore). Batch norm normalizes "
                 "with the BIASED batch variance (divided by N); only running_var stores the unbiased one.")
VAR_NOT_STD = "you divide by the variance (+ eps) instead of its square root, the standard deviation."
SWAPPED = "gamma and beta are swapped: out = gamma * x̂ + beta."
SUM_OF_SQUARES = ("your variance is a sum of squares, not a mean: var = mean((x - mean)²), i.e. the sum divided by the "
                  "number of values N.")
EPS_IGNORED = ("you ignore bn_param['eps'] (you always use 1e-5): read it with bn_param.get('eps', 1e-5) and use it "
               "in sqrt(var + eps).")
EPS_IGNORED_MODULE = "you ignore the eps argument (you always use 1e-5): store it in __init__ and use it in sqrt(var + eps)."
CANCELLATION = ("the variance loses precision when the mean is large: E[x²] - E[x]² subtracts two numbers of ~1e7 "
                "that agree in most digits (catastrophic cancellation). Compute mean((x - mean)²) instead.")


def out_mistakes(x, gamma, beta, eps, large=False, module=False):
    """Training-mode output mistakes."""
    d = {
        EPS_OUTSIDE: normalized(x, gamma, beta, eps, eps_outside=True),
        UNBIASED_NORM: normalized(x, gamma, beta, eps, ddof=1),
        EPS_MISSING: normalized(x, gamma, beta, 0.0),
        VAR_NOT_STD: normalized(x, gamma, beta, eps, var=(f64(x).var(stat_axes(x)) + eps) ** 2 - eps),
        SWAPPED: normalized(x, beta, gamma, eps),
        SUM_OF_SQUARES: normalized(x, gamma, beta, eps, var=f64(x).var(stat_axes(x)) * (f64(x).size // np.shape(x)[1])),
    }
    if eps != EPS:
        d[EPS_IGNORED_MODULE if module else EPS_IGNORED] = normalized(x, gamma, beta, EPS)
    if large:
        want = normalized(x, gamma, beta, eps)
        d[CANCELLATION] = lambda got: got.shape == want.shape and (
            not np.all(np.isfinite(got)) or np.allclose(got, want, rtol=1e-2, atol=1e-2))
    return d


def running_mistakes(key, prev, x, momentum, module=False):
    """What a wrong update of running_mean / running_var (key) computes from prev (D,)."""
    mu, vb, vu, m = batch_stats(x)
    batch = mu if key == "running_mean" else vu
    start = np.zeros_like(batch) if key == "running_mean" else np.ones_like(batch)
    p = f64(prev)
    store = f"self.{key}" if module else f"bn_param['{key}']"
    mom = "the momentum argument" if module else "bn_param['momentum']"
    d = {}
    if key == "running_var":
        d[f"{store} must hold the UNBIASED batch variance (times N / (N - 1)), as PyTorch does; yours uses the "
          "biased one (which is right for normalizing, not for running_var)."] = (1 - momentum) * p + momentum * vb
        d["momentum is the wrong way round AND running_var uses the biased variance. PyTorch: running = (1 - momentum) "
          "* running + momentum * batch (momentum = 0.1 weights the NEW value), with the unbiased batch "
          "variance."] = momentum * p + (1 - momentum) * vb
        d["running_var starts at zeros; PyTorch starts it at ones."] = momentum * vu
        d[f"{store} is updated with the standard deviation (the square root of the unbiased variance); it holds "
          "the VARIANCE: running_var = (1 - momentum) * running_var + momentum * unbiased batch variance."] = (
            (1 - momentum) * p + momentum * np.sqrt(vu))
    d["momentum is the wrong way round (CS231n's convention, where momentum = 0.9 weights the OLD value). PyTorch: "
      "running = (1 - momentum) * running + momentum * batch_statistic, so momentum = 0.1 weights the new "
      f"value. Use {mom} (default 0.1)."] = momentum * p + (1 - momentum) * batch
    if momentum != MOMENTUM:
        d[f"you ignore {mom} (you always use 0.1)."] = (1 - MOMENTUM) * p + MOMENTUM * batch
    d[f"{key} is not updated: in train mode store (1 - momentum) * {key} + momentum * batch statistic in "
      f"{store}."] = p
    d[f"you do not carry {key} from call to call: you start from its default "
      f"({'zeros' if key == 'running_mean' else 'ones'}) every time. Update the value in {store} and keep it "
      "there."] = (1 - momentum) * start + momentum * batch
    return d


def eval_mistakes(x, gamma, beta, eps, rm, rv, momentum, module=False):
    """Eval-mode output mistakes, given the running statistics the student stored."""
    mu, _, vu, _ = batch_stats(x)
    owner = "the module's" if module else "bn_param's"
    d = {
        f"in eval mode you normalize with the BATCH statistics; eval mode must use {owner} running_mean and "
        "running_var (so an example's output does not depend on the rest of its batch).":
            normalized(x, gamma, beta, eps),
        "in eval mode you first update the running statistics with the eval batch, then normalize with them; "
        "eval mode must neither update nor use the batch's statistics.":
            normalized(x, gamma, beta, eps, mean=(1 - momentum) * f64(rm) + momentum * mu,
                       var=(1 - momentum) * f64(rv) + momentum * vu),
        EPS_OUTSIDE: normalized(x, gamma, beta, eps, mean=rm, var=rv, eps_outside=True),
        EPS_MISSING: normalized(x, gamma, beta, 0.0, mean=rm, var=rv),
        "you treat running_var as a standard deviation: divide by sqrt(running_var + eps).":
            normalized(x, gamma, beta, 0.0, mean=rm, var=(f64(rv) + eps) ** 2),
    }
    if eps != EPS:
        d[EPS_IGNORED_MODULE if module else EPS_IGNORED] = normalized(x, gamma, beta, EPS, mean=rm, var=rv)
    return d


NO_VAR_PATH = ("the path through the variance is missing (dvar -> dx): x̂ depends on x through the variance too, "
               "which adds -x̂ * mean(dx̂ * x̂) / sqrt(var + eps) to dx.")
NO_MEAN_PATH = ("the path through the mean is missing (dmean -> dx): x̂ depends on x through the mean too, which adds "
                "-mean(dx̂) / sqrt(var + eps) to dx.")
NO_STATS_PATH = ("you treat the batch mean and variance as constants (dx = gamma * dout / sqrt(var + eps)): in "
                 "training mode both depend on x, and both paths (dmean -> dx, dvar -> dx) belong in dx.")
NO_GAMMA = "dx is missing the factor gamma: the upstream gradient of x̂ is dx̂ = dout * gamma."
VAR_COUNT = ("the variance's derivative uses 1/(N - 1); the forward pass normalizes with the biased variance, "
             "mean((x - mean)²), whose derivative is 2 (x - mean) / N.")


def dx_mistakes(x, gamma, dout, eps, module=False):
    m = x.size // np.shape(x)[1]
    d = {
        NO_VAR_PATH: bn_grads(x, gamma, dout, eps, var_path=False)[0],
        NO_MEAN_PATH: bn_grads(x, gamma, dout, eps, mean_path=False)[0],
        (NO_STATS_PATH + (" Compute them from x itself, not x.detach() or under torch.no_grad(); only the "
                          "running-buffer update is detached.") if module else NO_STATS_PATH):
            bn_grads(x, gamma, dout, eps, mean_path=False, var_path=False)[0],
        NO_GAMMA: bn_grads(x, gamma, dout, eps, use_gamma=False)[0],
        VAR_COUNT: bn_grads(x, gamma, dout, eps, var_count=m - 1)[0] if m > 1 else np.nan,
    }
    return d


def dgamma_mistakes(x, gamma, dout, eps, name="dgamma"):
    xf, g = f64(x), f64(dout)
    d = xf.shape[1]
    out = {
        f"{name} is not summed over the right axes: the parameters are per feature/channel, so sum over the batch "
        f"(axis 0; (0, 2, 3) for spatial batch norm) to shape ({d},).": lambda got: got.shape != (d,),
        "dgamma and dbeta are swapped: dgamma = sum(dout * x̂), dbeta = sum(dout).":
            g.sum(stat_axes(xf)) if name == "dgamma" else bn_grads(x, gamma, dout, eps)[1],
    }
    if name == "dbeta":
        out["dbeta averages dout over the batch: it is the SUM over the batch (axis 0; (0, 2, 3) for spatial batch "
            "norm), since beta is added to every example's output."] = g.mean(stat_axes(xf))
    if name == "dgamma":
        out["dgamma multiplies dout by x; it is sum(dout * x̂), with the NORMALIZED input x̂."] = (g * xf).sum(stat_axes(xf))
    return out


def spatial_out_mistakes(x, gamma, beta, eps):
    xf = f64(x)
    n, c, h, w = xf.shape
    correct = normalized(xf, gamma, beta, eps)
    flat = normalized(xf.reshape(-1, c), gamma, beta, eps).reshape(n, c, h, w)
    return {
        "you normalize over the batch axis only (axis 0), i.e. per (channel, row, column); spatial batch norm "
        "normalizes each channel over (N, H, W).": normalized(xf, gamma, beta, eps, axes=(0,)),
        "you normalize over axes (0, 1), i.e. across channels; each channel has its own statistics, over (N, H, W).":
            normalized(xf, gamma, beta, eps, axes=(0, 1)),
        "you reshape x to (-1, C) without moving the channel axis last first: rows then mix channels. Use "
        "x.transpose(0, 2, 3, 1).reshape(-1, C), and undo both on the way back.": flat,
        "you transpose to (N, H, W, C) and reshape, but reshape the output straight to (N, C, H, W): transpose "
        "it back (reshape(N, H, W, C).transpose(0, 3, 1, 2)).": correct.transpose(0, 2, 3, 1).reshape(n, c, h, w),
        **out_mistakes(xf, gamma, beta, eps),
    }


def spatial_running_mistakes(key, prev, x, momentum):
    d = running_mistakes(key, prev, x, momentum)
    if key == "running_var":
        xf = f64(x)
        n = xf.shape[0]
        vb = xf.var(stat_axes(xf))
        if n > 1:
            d["the unbiased correction uses N / (N - 1) with N the batch size; each channel's statistics come from "
              "m = N * H * W values, so it is m / (m - 1)."] = (1 - momentum) * f64(prev) + momentum * vb * n / (n - 1)
    d[f"{key} has the wrong shape: spatial batch norm keeps one statistic per channel, shape (C,)."] = (
        lambda got: got.shape != (np.shape(x)[1],))
    return d


def spatial_dx_mistakes(x, gamma, dout, eps):
    xf, g = f64(x), f64(dout)
    n, c, h, w = xf.shape
    correct = bn_grads(xf, gamma, g, eps)[0]
    flat = bn_grads(xf.reshape(-1, c), gamma, g.reshape(-1, c), eps)[0].reshape(n, c, h, w)
    return {
        "you reshape dx straight to (N, C, H, W): it was computed as (N * H * W, C) rows of the transposed "
        "array, so transpose it back (reshape(N, H, W, C).transpose(0, 3, 1, 2)).":
            correct.transpose(0, 2, 3, 1).reshape(n, c, h, w),
        "you reshape to (-1, C) without moving the channel axis last first: rows then mix channels. Use "
        ".transpose(0, 2, 3, 1).reshape(-1, C), and undo both on the way back.": flat,
        "you normalize over the batch axis only (axis 0); each channel's statistics are over (N, H, W), and so are "
        "the sums in the backward pass.": bn_grads(xf, gamma, g, eps, axes=(0,))[0],
        **dx_mistakes(xf, gamma, g, eps),
    }


# ---------------------------------------------------------------------------------------------
