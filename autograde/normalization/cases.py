"""The named input cases of `normalization` (grader side): generators ``<group>_cases(ctx)`` that
draw from ``ctx.rng`` and yield tuples whose first element describes the case in words; visible
cases first, the hidden ones under ``if ctx.hidden:``.

The visible cases already hold the inputs that expose the known mistakes (mistakes.py): every
example and every channel has its own mean and spread (so statistics over the wrong axis, or
groups of the wrong channels, are far off); rows whose variance (~1e-6) is below eps = 1e-5 (eps
outside the square root); few values per statistic, D or C/G * H * W small (biased against
unbiased variance); N == D (statistics without keepdims broadcast silently along the wrong axis);
N = 1 (batch norm's axis leaves nothing to normalize); means of 1e3-1e4 with a spread of 1e-2
(E[x²] - E[x]² cancels); float32 input; non-default eps; G = 1 and G = C next to 1 < G < C.
"""
from __future__ import annotations

import numpy as np


def _gamma(r, d):
    """Scales away from 0 (a zero gamma would hide errors), both signs."""
    return r.choice([-1.0, 1.0], d) * r.uniform(0.5, 2.0, d)


def _rows(r, n, d, spread=None):
    """(n, d): each example (row) with its own mean and spread."""
    spread = r.uniform(0.5, 3, (n, 1)) if spread is None else spread
    return r.uniform(-3, 3, (n, 1)) + spread * r.normal(size=(n, d))


def _tiny_rows(r, n, d):
    """Every other row has variance ~1e-6, below the default eps."""
    x = _rows(r, n, d)
    x[::2] = r.uniform(-1e-2, 1e-2, ((n + 1) // 2, 1)) + 1e-3 * r.normal(size=((n + 1) // 2, d))
    return x


def _large_rows(r, n, d, spread=1e-2):
    """Row means of 1e3-1e4 (both signs) with a small spread."""
    return r.choice([-1.0, 1.0], (n, 1)) * r.uniform(1e3, 1e4, (n, 1)) + spread * r.normal(size=(n, d))


def _images(r, n, c, h, w, spread=None):
    """(n, c, h, w): every (example, channel) with its own mean and spread."""
    spread = r.uniform(0.5, 3, (n, c, 1, 1)) if spread is None else spread
    return r.uniform(-3, 3, (n, c, 1, 1)) + spread * r.normal(size=(n, c, h, w))


def layernorm_cases(ctx):
    """(description, x (N, D), gamma (D,), beta (D,), ln_param, large means?)."""
    r = ctx.rng
    n, d = int(r.integers(5, 9)), int(r.integers(3, 5))

    def case(desc, x, p=None, dtype=np.float64, large=False):
        dd = x.shape[1]
        return desc, x.astype(dtype), _gamma(r, dd).astype(dtype), r.normal(size=dd).astype(dtype), p or {}, large

    # N = D first: statistics without keepdims then broadcast silently (a shape error on the others)
    yield case(f"N = D = {d}, ln_param = {{}} (the defaults)", _rows(r, d, d))
    yield case(f"(N, D) = {(n, d)}", _rows(r, n, d))
    yield case("a single example, N = 1", _rows(r, 1, d + 2))
    yield case("rows with variance ~1e-6, below eps = 1e-5", _tiny_rows(r, n, d))
    yield case("eps = 1e-2, rows with variance ~1e-2", _rows(r, n, d, r.uniform(0.05, 0.2, (n, 1))), {"eps": 1e-2})
    yield case("row means of 1e3 to 1e4 with a spread of 1e-2", _large_rows(r, n, 16), large=True)
    yield case("float32 input", _rows(r, n, d), dtype=np.float32)
    if ctx.hidden:
        nb, db = int(r.integers(64, 200)), int(r.integers(32, 100))
        yield case(f"(N, D) = {(nb, db)}, eps = 1e-3", _rows(r, nb, db), {"eps": 1e-3})
        yield case("N = D = 32, rows with variance ~1e-6", _tiny_rows(r, 32, 32))


def layernorm_backward_cases(ctx):
    """(description, x (N, D), gamma, beta, ln_param, dout (N, D), large means?): layernorm_cases'
    inputs with an upstream gradient."""
    r = ctx.rng
    for desc, x, gamma, beta, p, large in layernorm_cases(ctx):
        yield desc, x, gamma, beta, p, r.normal(size=x.shape).astype(x.dtype), large


def groupnorm_cases(ctx):
    """(description, x (N, C, H, W), gamma (C,), beta (C,), G, gn_param)."""
    r = ctx.rng
    n, h, w = int(r.integers(2, 4)), 3, 4

    def case(desc, x, groups, p=None, dtype=np.float64):
        c = x.shape[1]
        return desc, x.astype(dtype), _gamma(r, c).astype(dtype), r.normal(size=c).astype(dtype), groups, p or {}

    yield case(f"(N, C, H, W) = {(n, 6, h, w)}, G = 3, gn_param = {{}} (the defaults)", _images(r, n, 6, h, w), 3)
    yield case(f"(N, C, H, W) = {(n, 8, 2, 2)}, G = 2", _images(r, n, 8, 2, 2), 2)
    yield case("G = 1 (layer norm over (C, H, W))", _images(r, n, 4, h, w), 1)
    yield case("G = C (instance norm)", _images(r, n, 4, h, w), 4)
    yield case("a single example, N = 1, G = 2", _images(r, 1, 4, h, w), 2)
    yield case("eps = 1e-2, channels with variance ~1e-2, G = 2", _images(r, n, 4, h, w, r.uniform(0.05, 0.2, (n, 4, 1, 1))),
               2, {"eps": 1e-2})
    yield case("groups with variance ~1e-6, below eps = 1e-5, G = 2", _images(r, n, 4, h, w, 1e-3), 2)
    yield case("float32 input, G = 3", _images(r, n, 6, h, w), 3, dtype=np.float32)
    if ctx.hidden:
        yield case("(N, C, H, W) = (16, 32, 8, 8), G = 8, eps = 1e-3", _images(r, 16, 32, 8, 8), 8, {"eps": 1e-3})
        yield case("(N, C, H, W) = (3, 12, 5, 7), G = 4", _images(r, 3, 12, 5, 7), 4)


def groupnorm_backward_cases(ctx):
    """(description, x (N, C, H, W), gamma, beta, G, gn_param, dout)."""
    r = ctx.rng
    for desc, x, gamma, beta, groups, p in groupnorm_cases(ctx):
        yield desc, x, gamma, beta, groups, p, r.normal(size=x.shape).astype(x.dtype)


def bad_group_cases(ctx):
    """(description, x, gamma, beta, G) with G not dividing C: each must raise ValueError. G divides
    C * H * W, so that a reshape to (N, G, -1) without the check does not raise by accident."""
    r = ctx.rng
    yield "C = 6 channels in G = 4 groups, H = W = 2", _images(r, 2, 6, 2, 2), _gamma(r, 6), r.normal(size=6), 4
    yield "C = 4 channels in G = 8 groups, H = W = 2", _images(r, 2, 4, 2, 2), _gamma(r, 4), r.normal(size=4), 8
    if ctx.hidden:
        yield "C = 6 channels in G = 9 groups, H = W = 3", _images(r, 1, 6, 3, 3), _gamma(r, 6), r.normal(size=6), 9


def module_cases(ctx):
    """(description, spec): spec = {"num_groups", "num_channels", "eps" (None: the default),
    "affine", "dtype", "device", "weight", "bias" (set into the module; None without affine),
    "steps": [(x (N, C, H, W), dout)]}."""
    r = ctx.rng

    def spec(desc, groups, c, shape, eps=None, affine=True, dtype="float64", steps=2, spread=None):
        n, h, w = shape
        return f"{desc} (on {ctx.device})", {
            "num_groups": groups, "num_channels": c, "eps": eps, "affine": affine, "dtype": dtype, "device": ctx.device,
            "weight": _gamma(r, c) if affine else None, "bias": r.normal(size=c) if affine else None,
            "steps": [(_images(r, n, c, h, w, spread), r.normal(size=(n, c, h, w))) for _ in range(steps)],
        }

    yield spec("GroupNorm(3, 6), input (2, 6, 3, 4), float64", 3, 6, (2, 3, 4))
    yield spec("GroupNorm(2, 4, eps=1e-2), channels with variance ~1e-2", 2, 4, (3, 2, 5), eps=1e-2,
               spread=r.uniform(0.05, 0.2, (3, 4, 1, 1)))
    yield spec("GroupNorm(2, 8, affine=False)", 2, 8, (2, 2, 3), affine=False)
    yield spec("GroupNorm(4, 8), float32, a single example", 4, 8, (1, 3, 3), dtype="float32")
    yield spec("GroupNorm(2, 4), groups with variance ~1e-6, below eps", 2, 4, (2, 3, 3), spread=1e-3, steps=1)
    if ctx.hidden:
        yield spec("GroupNorm(8, 32), input (8, 32, 6, 6), float32", 8, 32, (8, 6, 6), dtype="float32")
        yield spec("GroupNorm(1, 5) (layer norm over (C, H, W)), eps=1e-3", 1, 5, (3, 4, 4), eps=1e-3)
