"""Known mistakes in `normalization`, as data (grader side).

Layer norm and group norm are one computation: view the input as (N, G, M) rows of statistics,
standardize each row (mean, biased variance, eps inside the square root), view it back and scale
per feature / channel. :func:`normalized` and :func:`grads` are that computation in numpy float64
with its pieces as parameters; each known mistake is the same call with one piece replaced (the
axes the statistics run over, the grouping, ddof, where eps goes, gamma's shape...). The
``*_mistakes`` functions map a message to what that mistake computes on the checks' inputs, for
``expect_close(..., diagnoses=...)``.
"""
from __future__ import annotations

import numpy as np

EPS = 1e-5  # the contract's default (and PyTorch's)


def _f64(a) -> np.ndarray:
    return np.asarray(a, np.float64)


# ---------------------------------------------------------------------------------------------
# The models
# ---------------------------------------------------------------------------------------------
def view(x, groups: int, order: str = "channels"):
    """x (N, C, H, W) as rows (N, G, M) of G groups, and the function that undoes it.

    order "channels": group g holds channels g*C/G ... (g+1)*C/G - 1 (PyTorch's, a plain reshape of
    contiguous NCHW); "interleaved": channels g, g + G, g + 2G, ... (reshape (N, C/G, G, ...));
    "channels_last": a reshape of the (N, H, W, C) transpose, which mixes channels and positions."""
    n, c, h, w = x.shape
    if order == "channels":
        return x.reshape(n, groups, -1), lambda v: v.reshape(n, c, h, w)
    if order == "interleaved":
        return (x.reshape(n, c // groups, groups, h, w).transpose(0, 2, 1, 3, 4).reshape(n, groups, -1),
                lambda v: v.reshape(n, groups, c // groups, h, w).transpose(0, 2, 1, 3, 4).reshape(n, c, h, w))
    if order == "channels_last":
        return (x.transpose(0, 2, 3, 1).reshape(n, groups, -1),
                lambda v: v.reshape(n, h, w, c).transpose(0, 3, 1, 2))
    raise ValueError(order)


def standardized(v, eps, axes=(-1,), ddof=0, eps_outside=False, shortcut=False, flat_stats=False):
    """(v - mean) / sqrt(var + eps) with the statistics over ``axes``; the pieces a mistake replaces:
    ``ddof`` of the variance, eps outside the square root, the variance as E[v²] - E[v]²
    (``shortcut``), and statistics without keepdims that broadcast along the last axis
    (``flat_stats``, 2-D input with N == D)."""
    v = _f64(v)
    mu = v.mean(axes, keepdims=True)
    var = ((v ** 2).mean(axes, keepdims=True) - mu ** 2) if shortcut else v.var(axes, keepdims=True, ddof=ddof)
    if flat_stats:
        mu, var = mu.reshape(1, -1), var.reshape(1, -1)
    return (v - mu) / (np.sqrt(var) + eps if eps_outside else np.sqrt(var + eps))


def layer_normalized(x, gamma, beta, eps, **pieces):
    """Layer norm of x (N, D) over axis 1 (``axes=(0,)`` is batch norm's choice)."""
    pieces.setdefault("axes", (1,))
    return standardized(x, eps, **pieces) * _f64(gamma) + _f64(beta)


def group_normalized(x, gamma, beta, groups, eps, order="channels", per_group=False, **pieces):
    """Group norm of x (N, C, H, W); gamma, beta (C,) or None. ``axes`` run over the (N, G, M) view
    (``(0, 2)``: each group's statistics over the whole batch, as batch norm would); ``per_group``:
    the first G entries of gamma and beta scale whole groups."""
    pieces.setdefault("axes", (2,))
    v, back = view(_f64(x), groups, order)
    xhat = back(standardized(v, eps, **pieces))
    if gamma is None:
        return xhat
    c = xhat.shape[1]
    g, b = _f64(gamma), _f64(beta)
    if per_group:
        g, b = np.repeat(g[:groups], c // groups), np.repeat(b[:groups], c // groups)
    return xhat * g.reshape(1, c, 1, 1) + b.reshape(1, c, 1, 1)


def grads(x, gamma, dout, eps, groups=None, order="channels", axes=None, mean_path=True, var_path=True,
          use_gamma=True, var_count=None):
    """(dx, dgamma, dbeta) of sum(out * dout): layer norm for 2-D x (``groups`` None), group norm for
    4-D x. The pieces a mistake replaces: the gradient paths through the mean and the variance,
    the factor gamma, and the count the variance's derivative divides by."""
    x, dout = _f64(x), _f64(dout)
    if groups is None:
        shape, back, xv, gv = (1, -1), (lambda v: v), x, dout * (_f64(gamma) if use_gamma else 1.0)
        axes = (1,) if axes is None else axes
        psum = (0,)
    else:
        c = x.shape[1]
        shape, psum = (1, c, 1, 1), (0, 2, 3)
        xv, back = view(x, groups, order)
        gv = view(dout * (_f64(gamma).reshape(shape) if use_gamma else 1.0), groups, order)[0]
        axes = (2,) if axes is None else axes
    m = int(np.prod([xv.shape[a] for a in axes]))
    mu, var = xv.mean(axes, keepdims=True), xv.var(axes, keepdims=True)
    inv = 1.0 / np.sqrt(var + eps)
    xhat = (xv - mu) * inv
    dx = gv * inv
    if mean_path:
        dx = dx - gv.mean(axes, keepdims=True) * inv
    if var_path:
        dx = dx - xhat * (gv * xhat).sum(axes, keepdims=True) / (var_count or m) * inv
    xhat_full = back(xhat)
    return back(dx), (dout * xhat_full).sum(psum), dout.sum(psum)


# ---------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------
EPS_OUTSIDE = ("eps is outside the square root: divide by sqrt(var + eps), not sqrt(var) + eps (it matters when a "
               "row's variance is near eps).")
UNBIASED = ("you normalize with the UNBIASED variance (divided by m - 1, m the number of values per statistic; torch.var's default). Layer and group norm "
            "use the BIASED variance, mean((x - mean)²): x.var() in numpy, x.var(correction=0) in torch.")
SWAPPED = "gamma and beta are swapped: out = gamma * x̂ + beta."
CANCELLATION = ("the variance loses precision when the mean is large: E[x²] - E[x]² subtracts two numbers of ~1e7 "
                "that agree in most digits (catastrophic cancellation). Compute mean((x - mean)²) instead.")
LN_BATCH_AXIS = ("you reduce over the batch axis (axis 0), as batch norm does: layer norm takes each EXAMPLE's "
                 "statistics, over its D features (axis 1, keepdims=True), so one example's output never depends "
                 "on the others.")
LN_KEEPDIMS = ("your mean and variance have shape (N,) and broadcast along the LAST axis, i.e. across the features "
               "of every row (it runs silently when N == D): keep them as columns, x.mean(axis=1, keepdims=True).")
GN_BATCH_AXIS = ("you take each group's statistics over the whole batch (axes 0 and the group's values), as batch norm "
                 "would: group norm normalizes each example's groups on their own, so reduce over the C/G channels "
                 "and H*W positions of one example only.")
GN_INTERLEAVED = ("your groups interleave the channels (reshape to (N, C // G, G, H, W) puts channels g, g + G, ... "
                  "in group g): group g holds the consecutive channels g*C/G ... (g+1)*C/G - 1, i.e. "
                  "x.reshape(N, G, C // G, H, W).")
GN_CHANNELS_LAST = ("your groups mix channels and positions: reshaping the (N, H, W, C) transpose to (N, G, -1) cuts "
                    "it into groups of positions, not of channels. Reshape x itself, (N, C, H, W) -> (N, G, -1).")
GN_PER_GROUP = ("gamma and beta are per CHANNEL, shape (C,): you scale whole groups with G of their values. Undo the "
                "grouping first, then out = x̂ * gamma.reshape(1, C, 1, 1) + beta.reshape(1, C, 1, 1).")
GN_LAYER = "you ignore G and normalize over all channels at once (G = 1, layer norm): each of the G groups has its own statistics."
GN_INSTANCE = "you ignore G and normalize each channel on its own (G = C, instance norm): a group spans C / G channels."

NO_VAR_PATH = ("the path through the variance is missing (dvar -> dx): x̂ depends on x through the variance too, "
               "which adds -x̂ * mean(dx̂ * x̂) / sqrt(var + eps) to dx, the mean over the same values as the statistics.")
NO_MEAN_PATH = ("the path through the mean is missing (dmean -> dx): x̂ depends on x through the mean too, which "
                "adds -mean(dx̂) / sqrt(var + eps) to dx.")
NO_STATS_PATH = ("you treat the mean and variance as constants (dx = gamma * dout / sqrt(var + eps)): both depend on "
                 "x, and both paths (dmean -> dx, dvar -> dx) belong in dx.")
NO_GAMMA = "dx is missing the factor gamma: the upstream gradient of x̂ is dx̂ = dout * gamma."
VAR_COUNT = ("the variance's derivative uses 1/(m - 1); the forward pass normalizes with the biased variance, "
             "mean((x - mean)²), whose derivative is 2 (x - mean) / m.")
BN_BACKWARD = ("your backward pass sums over the batch axis (axis 0), as batch norm's does; layer norm's statistics, "
               "and so the sums in dx, run over each example's features (axis 1).")


def eps_ignored(owner: str) -> str:
    """The message for an eps that is not read from ``owner`` (``ln_param['eps']``, the eps argument...)."""
    return f"you ignore {owner} (you always use 1e-5): read it and use it in sqrt(var + eps)."


# ---------------------------------------------------------------------------------------------
# What each mistake computes on given inputs: message -> output (or predicate on the output)
# ---------------------------------------------------------------------------------------------
def layernorm_mistakes(x, gamma, beta, eps, large=False):
    """layernorm_forward's out."""
    n, d = np.shape(x)
    m = {
        LN_BATCH_AXIS: layer_normalized(x, gamma, beta, eps, axes=(0,)),
        EPS_OUTSIDE: layer_normalized(x, gamma, beta, eps, eps_outside=True),
        UNBIASED: layer_normalized(x, gamma, beta, eps, ddof=1),
        SWAPPED: layer_normalized(x, beta, gamma, eps),
    }
    if n == d:
        m[LN_KEEPDIMS] = layer_normalized(x, gamma, beta, eps, flat_stats=True)
    if eps != EPS:
        m[eps_ignored("ln_param['eps']")] = layer_normalized(x, gamma, beta, EPS)
    if large:
        want = layer_normalized(x, gamma, beta, eps)
        m[CANCELLATION] = lambda got: got.shape == want.shape and (
            not np.all(np.isfinite(got)) or np.allclose(got, want, rtol=1e-2, atol=1e-2))
    return m


def groupnorm_mistakes(x, gamma, beta, groups, eps, owner="gn_param['eps']"):
    """spatial_groupnorm_forward's out (and the module's, with ``owner`` naming its eps)."""
    c = np.shape(x)[1]
    m = {
        GN_INTERLEAVED: group_normalized(x, gamma, beta, groups, eps, order="interleaved"),
        GN_CHANNELS_LAST: group_normalized(x, gamma, beta, groups, eps, order="channels_last"),
        GN_BATCH_AXIS: group_normalized(x, gamma, beta, groups, eps, axes=(0, 2)),
        EPS_OUTSIDE: group_normalized(x, gamma, beta, groups, eps, eps_outside=True),
        UNBIASED: group_normalized(x, gamma, beta, groups, eps, ddof=1),
    }
    if gamma is not None:
        m[SWAPPED] = group_normalized(x, beta, gamma, groups, eps)
        if groups < c:
            m[GN_PER_GROUP] = group_normalized(x, gamma, beta, groups, eps, per_group=True)
    if groups > 1:
        m[GN_LAYER] = group_normalized(x, gamma, beta, 1, eps)
    if groups < c:
        m[GN_INSTANCE] = group_normalized(x, gamma, beta, c, eps)
    if eps != EPS:
        m[eps_ignored(owner)] = group_normalized(x, gamma, beta, groups, EPS)
    return m


def dx_mistakes(x, gamma, dout, eps, groups=None):
    """dx of layer norm (``groups`` None) or group norm."""
    kw = {"groups": groups}
    m = {
        NO_VAR_PATH: grads(x, gamma, dout, eps, **kw, var_path=False)[0],
        NO_MEAN_PATH: grads(x, gamma, dout, eps, **kw, mean_path=False)[0],
        NO_STATS_PATH: grads(x, gamma, dout, eps, **kw, mean_path=False, var_path=False)[0],
        NO_GAMMA: grads(x, gamma, dout, eps, **kw, use_gamma=False)[0],
    }
    size = np.size(x) // np.shape(x)[0] // (groups or 1)
    if size > 1:
        m[VAR_COUNT] = grads(x, gamma, dout, eps, **kw, var_count=size - 1)[0]
    if groups is None:
        m[BN_BACKWARD] = grads(x, gamma, dout, eps, axes=(0,))[0]
    else:
        m[GN_INTERLEAVED] = grads(x, gamma, dout, eps, groups=groups, order="interleaved")[0]
        m[GN_CHANNELS_LAST] = grads(x, gamma, dout, eps, groups=groups, order="channels_last")[0]
    return m


def param_grad_mistakes(x, gamma, dout, eps, name, groups=None):
    """dgamma (``name`` "dgamma") or dbeta: sums over the wrong axes, swapped, averaged, x for x̂."""
    xf, g = _f64(x), _f64(dout)
    _, dgamma, dbeta = grads(x, gamma, dout, eps, groups=groups)
    psum = (0,) if groups is None else (0, 2, 3)
    shape = (np.shape(x)[1],)
    where = "the batch (axis 0)" if groups is None else "the batch and the positions (axes 0, 2, 3)"
    m = {
        f"{name} is not summed over the right axes: gamma and beta are per {'feature' if groups is None else 'channel'},"
        f" so sum over {where} to shape {shape}.": lambda got: got.shape != shape,
        "dgamma and dbeta are swapped: dgamma = sum(dout * x̂), dbeta = sum(dout).": dbeta if name == "dgamma" else dgamma,
    }
    if groups is None:  # summed over the features instead of the batch: shape (N,), the same as (D,) when N == D
        m[f"{name} is summed over the features (axis 1); gamma and beta are per feature, so sum over the batch "
          "(axis 0)."] = ((g * layer_normalized(x, np.ones(shape), np.zeros(shape), eps)) if name == "dgamma" else g).sum(1)
    if name == "dbeta":
        m[f"dbeta averages dout; it is the SUM over {where}, since beta is added to every output."] = g.mean(psum)
    else:
        m["dgamma multiplies dout by x; it is sum(dout * x̂), with the NORMALIZED input x̂."] = (g * xf).sum(psum)
    return m
