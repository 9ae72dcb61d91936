"""Checks for `batch_norm`: numpy forward/backward/spatial batch norm and a torch BatchNorm1d.

Every case is a fresh random draw from the test's seeded generator, and the visible cases already
hold the inputs that expose the usual mistakes: features whose variance (~1e-6) is below eps
(1e-5), so eps outside the square root is far off; means of 1e3-1e4 with a spread of 1e-2, where
E[x²] - E[x]² loses ~5 digits to cancellation; N = 2, where the biased and unbiased variances
differ by a factor 2; float32 input; non-default momentum and eps; several training steps that
share one bn_param (or one module) before eval steps.

The reference is PyTorch (``F.batch_norm`` and autograd, float64, on the reference device: see
reference.py). Eval steps are checked against the *student's own* running statistics (as stored
after the training steps), so a wrong running-statistics update costs the training test only and
the eval test checks what eval mode does with them. The gradients of ``batchnorm_backward`` are
also compared with centred finite differences of the student's own ``batchnorm_forward``: when the
answer is wrong, that tells apart "the backward is not the derivative of your forward" from "the
backward is right for your forward, but the forward is wrong".

The ``diagnoses`` below are what known mistakes compute on the same inputs (numpy, float64).
"""
from __future__ import annotations

import numpy as np

from ..core import FLOAT32, FLOAT64, CheckFailure, Registry, Tol, expect_close, tol_for
from . import drivers
from . import reference as ref

TESTS = Registry()

EPS, MOMENTUM = 1e-5, 0.1  # the defaults of the contract (and of PyTorch)

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
        mu, sd = np.abs(xf.mean(_axes(xf))), xf.std(_axes(xf))
        if np.any(mu > 1e4 * sd):
            return LARGE_MEANS
    return tol


def scaled(tol: Tol, want) -> Tol:
    """tol with its atol taken relative to the largest |value| of the reference (>= 1)."""
    m = float(np.max(np.abs(want))) if np.size(want) else 1.0
    return Tol(tol.rtol, tol.atol * max(1.0, m), tol.why)


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------
def _gamma(r, d):
    """Scales away from 0 (a zero gamma would hide errors) with both signs."""
    return r.choice([-1.0, 1.0], d) * r.uniform(0.5, 2.0, d)


def _batch(r, n, d, loc=None, scale=None):
    """(n, d) features with their own means and spreads."""
    loc = r.uniform(-3, 3, d) if loc is None else loc
    scale = r.uniform(0.5, 3, d) if scale is None else scale
    return loc + scale * r.normal(size=(n, d))


def _tiny(r, n, d):
    """Every other feature has variance ~1e-6, below the default eps = 1e-5 (and a mean of at most
    1e-2, so that float32 input still resolves the spread: see LARGE_MEANS for large means)."""
    x = _batch(r, n, d)
    x[:, ::2] = r.uniform(-1e-2, 1e-2, d)[::2] + 1e-3 * r.normal(size=(n, (d + 1) // 2))
    return x


def _large(r, n, d, spread=1e-2):
    """Means of 1e3-1e4 (both signs) with a small spread: E[x²] - E[x]² cancels catastrophically."""
    return r.choice([-1.0, 1.0], d) * r.uniform(1e3, 1e4, d) + spread * r.normal(size=(n, d))


def _params(r, d, momentum=None, eps=None, running=False):
    """A bn_param without "mode" (the driver sets it per step)."""
    p = {}
    if momentum is not None:
        p["momentum"] = momentum
    if eps is not None:
        p["eps"] = eps
    if running:
        p["running_mean"], p["running_var"] = r.normal(size=d), r.uniform(0.5, 2.0, d)
    return p


def train_cases(ctx):
    """(description, gamma, beta, bn_param, [x per training step], large-means?)."""
    r = ctx.rng
    n, d = int(r.integers(8, 17)), int(r.integers(3, 7))
    yield (f"two steps from bn_param = {{'mode': 'train'}} (the defaults), (N, D) = {(n, d)}",
           _gamma(r, d), r.normal(size=d), {}, [_batch(r, n, d) for _ in range(2)], False)
    yield ("two steps with momentum = 0.3, eps = 1e-3 and given running statistics",
           _gamma(r, d), r.normal(size=d), _params(r, d, 0.3, 1e-3, running=True), [_batch(r, n, d) for _ in range(2)], False)
    yield ("features with variance ~1e-6, below eps = 1e-5", _gamma(r, d), r.normal(size=d), {}, [_tiny(r, n, d)], False)
    yield "a batch of N = 2", _gamma(r, d), r.normal(size=d), _params(r, d, 0.2), [_batch(r, 2, d) for _ in range(2)], False
    yield ("means of 1e3 to 1e4 with a spread of 1e-2", _gamma(r, d), r.normal(size=d), {}, [_large(r, 32, d)], True)
    yield ("float32 input, momentum = 0.2", _gamma(r, d).astype(np.float32), r.normal(size=d).astype(np.float32),
           _params(r, d, 0.2), [_batch(r, n, d).astype(np.float32) for _ in range(2)], False)
    if ctx.hidden:
        n, d = int(r.integers(64, 200)), int(r.integers(10, 30))
        yield (f"three steps, (N, D) = {(n, d)}, momentum = 0.05, eps = 1e-4", _gamma(r, d), r.normal(size=d),
               _params(r, d, 0.05, 1e-4, running=True), [_batch(r, n, d) for _ in range(3)], False)
        yield ("momentum = 1 (the running statistics become the batch's)", _gamma(r, d), r.normal(size=d),
               _params(r, d, 1.0, running=True), [_batch(r, n, d)], False)
        yield ("means of 1e3 to 1e4 with a spread of 1e-3, N = 64", _gamma(r, d), r.normal(size=d),
               _params(r, d, eps=1e-6), [_large(r, 64, d, 1e-3)], True)


def eval_cases(ctx):
    """(description, gamma, beta, bn_param, [x per training step], [x per eval step])."""
    r = ctx.rng
    n, d = int(r.integers(8, 17)), int(r.integers(3, 7))
    loc, scale = r.uniform(-3, 3, d), r.uniform(0.5, 3, d)
    yield (f"three training steps from the defaults, then eval on a batch of {n + 3} and on a single example",
           _gamma(r, d), r.normal(size=d), {}, [_batch(r, n, d, loc, scale) for _ in range(3)],
           [_batch(r, n + 3, d, loc + 1, scale), _batch(r, 1, d, loc, scale)])
    yield ("four training steps with momentum = 0.3, eps = 0.1 and given running statistics, then eval",
           _gamma(r, d), r.normal(size=d), _params(r, d, 0.3, 0.1, running=True),
           [_batch(r, n, d, loc, scale) for _ in range(4)], [_batch(r, n, d, loc - 1, scale)])
    yield ("two training steps on N = 2, then eval (float32)", _gamma(r, d).astype(np.float32),
           r.normal(size=d).astype(np.float32), _params(r, d, 0.5),
           [_batch(r, 2, d, loc, scale).astype(np.float32) for _ in range(2)], [_batch(r, 5, d).astype(np.float32)])
    if ctx.hidden:
        n, d = int(r.integers(64, 200)), int(r.integers(10, 30))
        yield (f"five training steps, (N, D) = {(n, d)}, then two eval batches", _gamma(r, d), r.normal(size=d),
               _params(r, d, 0.05, 1e-4), [_batch(r, n, d) for _ in range(5)], [_batch(r, 7, d), _tiny(r, 9, d)])


def backward_cases(ctx):
    """(description, x, gamma, beta, bn_param, dout) for a training-mode forward + backward."""
    r = ctx.rng
    n, d = int(r.integers(8, 17)), int(r.integers(3, 7))

    def case(desc, x, p=None, dtype=np.float64):
        nn_, dd = x.shape
        return (desc, x.astype(dtype), _gamma(r, dd).astype(dtype), r.normal(size=dd).astype(dtype), p or {},
                r.normal(size=(nn_, dd)).astype(dtype))

    yield case(f"(N, D) = {(n, d)}", _batch(r, n, d))
    yield case("a batch of N = 2", _batch(r, 2, d))
    yield case("features with variance ~1e-6, below eps = 1e-5", _tiny(r, n, d))
    yield case("eps = 1e-2", _batch(r, n, d, scale=r.uniform(0.05, 0.3, d)), {"eps": 1e-2})
    yield case("float32 input", _batch(r, n, d), dtype=np.float32)
    if ctx.hidden:
        yield case("means of 1e3 to 1e4 with a spread of 1e-2", _large(r, 32, d))
        nb, db = int(r.integers(64, 200)), int(r.integers(10, 30))
        yield case(f"(N, D) = {(nb, db)}, eps = 1e-3", _batch(r, nb, db), {"eps": 1e-3, "momentum": 0.3})


def spatial_cases(ctx):
    """(description, gamma, beta, bn_param, [(mode, x)]) with N, C, H, W all different."""
    r = ctx.rng
    n, c, h, w = int(r.integers(2, 5)), 3, 4, 5

    def x(nn_, dtype=np.float64):
        return (r.uniform(-3, 3, (1, c, 1, 1)) + r.uniform(0.5, 3, (1, c, 1, 1)) * r.normal(size=(nn_, c, h, w))).astype(dtype)

    yield (f"train, train, eval from the defaults, (N, C, H, W) = {(n, c, h, w)}", _gamma(r, c), r.normal(size=c), {},
           [("train", x(n)), ("train", x(n)), ("eval", x(n + 1))])
    yield ("momentum = 0.3, eps = 1e-3, given running statistics", _gamma(r, c), r.normal(size=c),
           _params(r, c, 0.3, 1e-3, running=True), [("train", x(n)), ("eval", x(2))])
    yield (f"N = 1: each channel's statistics come from its H * W = {h * w} positions", _gamma(r, c), r.normal(size=c),
           {}, [("train", x(1)), ("eval", x(1))])
    yield ("float32 input", _gamma(r, c).astype(np.float32), r.normal(size=c).astype(np.float32), _params(r, c, 0.2),
           [("train", x(n, np.float32)), ("eval", x(n, np.float32))])
    if ctx.hidden:
        c, h, w = 8, 6, 7
        yield ("(N, C, H, W) = (16, 8, 6, 7), momentum = 0.05", _gamma(r, c), r.normal(size=c), _params(r, c, 0.05),
               [("train", x(16)), ("train", x(16)), ("eval", x(3))])


def spatial_backward_cases(ctx):
    """(description, x, gamma, beta, bn_param, dout) with x of shape (N, C, H, W)."""
    r = ctx.rng
    c, h, w = 3, 4, 5

    def case(desc, n, p=None, dtype=np.float64, c=c, h=h, w=w):
        xv = r.uniform(-3, 3, (1, c, 1, 1)) + r.uniform(0.5, 3, (1, c, 1, 1)) * r.normal(size=(n, c, h, w))
        return (desc, xv.astype(dtype), _gamma(r, c).astype(dtype), r.normal(size=c).astype(dtype), p or {},
                r.normal(size=xv.shape).astype(dtype))

    n = int(r.integers(2, 5))
    yield case(f"(N, C, H, W) = {(n, c, h, w)}", n)
    yield case("eps = 1e-2", n, {"eps": 1e-2})
    yield case(f"N = 1 (statistics over H * W = {h * w} positions)", 1)
    yield case("float32 input", n, dtype=np.float32)
    if ctx.hidden:
        yield case("(N, C, H, W) = (16, 8, 6, 7)", 16, c=8, h=6, w=7)


def module_cases(ctx):
    """Scenarios for BatchNorm1d: {"desc", "spec"} where spec is what drivers.module_steps runs."""
    r = ctx.rng
    dev = ctx.device

    def scenario(desc, d, dtype, steps, eps=None, momentum=None):
        spec = {"num_features": d, "eps": eps, "momentum": momentum, "dtype": dtype, "device": dev,
                "weight": _gamma(r, d), "bias": r.normal(size=d),
                "steps": [(mode, x.astype(dtype), r.normal(size=x.shape).astype(dtype)) for mode, x in steps]}
        return {"desc": f"{desc} ({dtype} on {dev})", "spec": spec}

    n, d = int(r.integers(8, 17)), int(r.integers(3, 7))
    loc, scale = r.uniform(-3, 3, d), r.uniform(0.5, 3, d)
    yield scenario(f"BatchNorm1d({d}), two training steps then eval on a shifted batch, (N, D) = {(n, d)}", d, "float64",
                   [("train", _batch(r, n, d, loc, scale)), ("train", _batch(r, n, d, loc, scale)),
                    ("eval", _batch(r, n + 2, d, loc + 1, scale))])
    yield scenario(f"BatchNorm1d({d}, eps=1e-3, momentum=0.3), features of variance ~1e-6, then eval", d, "float32",
                   [("train", _tiny(r, 32, d)), ("train", _tiny(r, 32, d)), ("train", _tiny(r, 32, d)),
                    ("eval", _tiny(r, 6, d))], eps=1e-3, momentum=0.3)
    yield scenario(f"BatchNorm1d({d}, momentum=0.5) on N = 2, then eval on one example", d, "float64",
                   [("train", _batch(r, 2, d, loc, scale)), ("train", _batch(r, 2, d, loc, scale)),
                    ("eval", _batch(r, 1, d, loc, scale))], momentum=0.5)
    if ctx.hidden:
        nb, db = int(r.integers(64, 128)), int(r.integers(10, 30))
        yield scenario(f"BatchNorm1d({db}, eps=1e-4, momentum=0.05), (N, D) = {(nb, db)}", db, "float32",
                       [("train", _batch(r, nb, db)) for _ in range(3)] + [("eval", _batch(r, 9, db))],
                       eps=1e-4, momentum=0.05)
        yield scenario(f"BatchNorm1d({d}), means of 1e3 to 1e4 with a spread of 1e-2", d, "float64",
                       [("train", _large(r, 32, d)), ("eval", _large(r, 4, d))])


# ---------------------------------------------------------------------------------------------
# What known mistakes compute (numpy, float64), for the diagnoses
# ---------------------------------------------------------------------------------------------
def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _axes(x):
    return (0,) if np.ndim(x) == 2 else (0, 2, 3)


def _b(p, x):
    """A per-feature (D,) / per-channel (C,) vector shaped to broadcast against x."""
    return np.reshape(_f64(p), (1, -1) + (1,) * (np.ndim(x) - 2))


def normalized(x, gamma, beta, eps, *, axes=None, ddof=0, eps_outside=False, mean=None, var=None):
    """gamma * (x - mean) / sqrt(var + eps) + beta, with the variants that mistakes make."""
    x = _f64(x)
    axes = _axes(x) if axes is None else axes
    mu = x.mean(axes, keepdims=True) if mean is None else _b(mean, x)
    v = x.var(axes, ddof=ddof, keepdims=True) if var is None else _b(var, x)
    with np.errstate(all="ignore"):
        den = np.sqrt(v) + eps if eps_outside else np.sqrt(v + eps)
        return _b(gamma, x) * (x - mu) / den + _b(beta, x)


def batch_stats(x):
    """Per feature/channel: mean, biased variance, unbiased variance, and the count m."""
    x = _f64(x)
    axes = _axes(x)
    m = x.size // x.shape[1]
    mu, vb = x.mean(axes), x.var(axes)
    with np.errstate(all="ignore"):
        return mu, vb, vb * m / (m - 1), m


def bn_grads(x, gamma, dout, eps, *, axes=None, mean_path=True, var_path=True, use_gamma=True, var_count=None):
    """(dx, dgamma, dbeta) of sum(out * dout), with paths of the graph optionally dropped."""
    x, dout = _f64(x), _f64(dout)
    axes = _axes(x) if axes is None else axes
    m = int(np.prod([x.shape[a] for a in axes]))
    mu, var = x.mean(axes, keepdims=True), x.var(axes, keepdims=True)
    inv = 1.0 / np.sqrt(var + eps)
    xhat = (x - mu) * inv
    g = dout * _b(gamma, x) if use_gamma else dout
    dx = g * inv
    if mean_path:
        dx = dx - g.mean(axes, keepdims=True) * inv
    if var_path:
        dx = dx - xhat * (g * xhat).sum(axes, keepdims=True) / (var_count or m) * inv
    sum_axes = _axes(x)
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
        VAR_NOT_STD: normalized(x, gamma, beta, eps, var=(_f64(x).var(_axes(x)) + eps) ** 2 - eps),
        SWAPPED: normalized(x, beta, gamma, eps),
        SUM_OF_SQUARES: normalized(x, gamma, beta, eps, var=_f64(x).var(_axes(x)) * (_f64(x).size // np.shape(x)[1])),
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
    p = _f64(prev)
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
            normalized(x, gamma, beta, eps, mean=(1 - momentum) * _f64(rm) + momentum * mu,
                       var=(1 - momentum) * _f64(rv) + momentum * vu),
        EPS_OUTSIDE: normalized(x, gamma, beta, eps, mean=rm, var=rv, eps_outside=True),
        EPS_MISSING: normalized(x, gamma, beta, 0.0, mean=rm, var=rv),
        "you treat running_var as a standard deviation: divide by sqrt(running_var + eps).":
            normalized(x, gamma, beta, 0.0, mean=rm, var=(_f64(rv) + eps) ** 2),
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
    xf, g = _f64(x), _f64(dout)
    d = xf.shape[1]
    out = {
        f"{name} is not summed over the right axes: the parameters are per feature/channel, so sum over the batch "
        f"(axis 0; (0, 2, 3) for spatial batch norm) to shape ({d},).": lambda got: got.shape != (d,),
        "dgamma and dbeta are swapped: dgamma = sum(dout * x̂), dbeta = sum(dout).":
            g.sum(_axes(xf)) if name == "dgamma" else bn_grads(x, gamma, dout, eps)[1],
    }
    if name == "dbeta":
        out["dbeta averages dout over the batch: it is the SUM over the batch (axis 0; (0, 2, 3) for spatial batch "
            "norm), since beta is added to every example's output."] = g.mean(_axes(xf))
    if name == "dgamma":
        out["dgamma multiplies dout by x; it is sum(dout * x̂), with the NORMALIZED input x̂."] = (g * xf).sum(_axes(xf))
    return out


def spatial_out_mistakes(x, gamma, beta, eps):
    xf = _f64(x)
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
        xf = _f64(x)
        n = xf.shape[0]
        vb = xf.var(_axes(xf))
        if n > 1:
            d["the unbiased correction uses N / (N - 1) with N the batch size; each channel's statistics come from "
              "m = N * H * W values, so it is m / (m - 1)."] = (1 - momentum) * _f64(prev) + momentum * vb * n / (n - 1)
    d[f"{key} has the wrong shape: spatial batch norm keeps one statistic per channel, shape (C,)."] = (
        lambda got: got.shape != (np.shape(x)[1],))
    return d


def spatial_dx_mistakes(x, gamma, dout, eps):
    xf, g = _f64(x), _f64(dout)
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
        rm, rv = _f64(p.get("running_mean", np.zeros(d))), _f64(p.get("running_var", np.ones(d)))
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
                if now is None or np.shape(now) != old.shape or not np.array_equal(_f64(now), old):
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


@TESTS.test("batchnorm_backward", functions=("batchnorm_forward", "batchnorm_backward"))
def batchnorm_backward(student, ctx):
    """The staged backward pass: (dx, dgamma, dbeta) of sum(out * dout) after a training-mode
    forward equal PyTorch's autograd. A forward whose out is wrong on the case is blamed first (the
    backward runs on its cache); otherwise finite differences of the student's own forward say
    whether the backward agrees with it."""
    r = ctx.rng
    n, d = 4, 3
    fd_case = ("a small batch (N, D) = (4, 3), also compared with finite differences of your forward", _batch(r, n, d),
               _gamma(r, d), r.normal(size=d), {}, r.normal(size=(n, d)))
    for i, (case, x, gamma, beta, p, dout) in enumerate([fd_case, *backward_cases(ctx)]):
        ctx.cases += 1
        _, eps = _momentum_eps(p)
        res = student.run(drivers.forward_backward, "batchnorm_forward", ("batchnorm_backward",), x, gamma, beta,
                                   p, dout, what="batchnorm_forward + batchnorm_backward")
        want = ref.batch_norm(x, gamma, beta, np.zeros(len(gamma)), np.ones(len(gamma)), training=True,
                              momentum=MOMENTUM, eps=eps, dout=dout)
        _forward_first(res, want, x, "batchnorm_forward", case)
        extra = _fd_hints(student, x, gamma, beta, p, dout) if i == 0 else None
        _check_grads(res["batchnorm_backward"], want, x, gamma, dout, eps, case, "batchnorm_backward", extra)


@TESTS.test("batchnorm_backward_fast", functions=("batchnorm_forward", "batchnorm_backward_fast"))
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
        rm, rv = _f64(p.get("running_mean", np.zeros(c))), _f64(p.get("running_var", np.ones(c)))
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
            srm = _f64(res["steps"][k - 1]["running_mean"]) if k else np.zeros(d)
            srv = _f64(res["steps"][k - 1]["running_var"]) if k else np.ones(d)
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
            if not np.array_equal(_f64(got[key]), old):
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
# a loop over the features: see bench/results/batchnorm.md (measured 2026-11-27 on 2 cores: the
# solution 1.82x PyTorch, the loop 24.7x). K sits between the two, with room for a loaded machine on
# either side.
SPEED_SIZE = (512, 1024)
SPEED_K = 8.0
SPEED_REPEATS = 3
# PyTorch's side is cheap (milliseconds at SPEED_SIZE): more repeats, so that a busy machine (which only ever slows a
# run down) rarely inflates its best time and hides a slow answer.
TORCH_REPEATS = 10


def _torch_seconds(x, gamma, beta, dout, repeats: int) -> float:
    """Best-of-``repeats`` seconds of F.batch_norm forward + backward on the CPU, one thread."""
    import time

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
