"""Input cases for `batch_norm`'s checks: each generator draws from the test's seeded ``ctx.rng``
and yields a tuple whose first element describes the case in words (the docstring gives the rest);
the visible cases come first, then the hidden ones when ``ctx.hidden``.

The visible cases already hold the inputs that expose the usual mistakes: features whose variance
(~1e-6) is below eps (1e-5), so eps outside the square root is far off; means of 1e3-1e4 with a
spread of 1e-2, where E[x²] - E[x]² loses ~5 digits to cancellation; N = 2, where the biased and
unbiased variances differ by a factor 2; float32 input; non-default momentum and eps; several
training steps that share one bn_param (or one module) before eval steps.
"""
from __future__ import annotations

import numpy as np

EPS, MOMENTUM = 1e-5, 0.1  # the defaults of the contract (and of PyTorch)


def scales(r, d):
    """Scales away from 0 (a zero gamma would hide errors) with both signs."""
    return r.choice([-1.0, 1.0], d) * r.uniform(0.5, 2.0, d)


def features(r, n, d, loc=None, scale=None):
    """(n, d) features with their own means and spreads."""
    loc = r.uniform(-3, 3, d) if loc is None else loc
    scale = r.uniform(0.5, 3, d) if scale is None else scale
    return loc + scale * r.normal(size=(n, d))


def tiny_variance(r, n, d):
    """Every other feature has variance ~1e-6, below the default eps = 1e-5 (and a mean of at most
    1e-2, so that float32 input still resolves the spread: see LARGE_MEANS for large means)."""
    x = features(r, n, d)
    x[:, ::2] = r.uniform(-1e-2, 1e-2, d)[::2] + 1e-3 * r.normal(size=(n, (d + 1) // 2))
    return x


def large_means(r, n, d, spread=1e-2):
    """Means of 1e3-1e4 (both signs) with a small spread: E[x²] - E[x]² cancels catastrophically."""
    return r.choice([-1.0, 1.0], d) * r.uniform(1e3, 1e4, d) + spread * r.normal(size=(n, d))


def bn_params(r, d, momentum=None, eps=None, running=False):
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
           scales(r, d), r.normal(size=d), {}, [features(r, n, d) for _ in range(2)], False)
    yield ("two steps with momentum = 0.3, eps = 1e-3 and given running statistics",
           scales(r, d), r.normal(size=d), bn_params(r, d, 0.3, 1e-3, running=True), [features(r, n, d) for _ in range(2)], False)
    yield ("features with variance ~1e-6, below eps = 1e-5", scales(r, d), r.normal(size=d), {}, [tiny_variance(r, n, d)], False)
    yield "a batch of N = 2", scales(r, d), r.normal(size=d), bn_params(r, d, 0.2), [features(r, 2, d) for _ in range(2)], False
    yield ("means of 1e3 to 1e4 with a spread of 1e-2", scales(r, d), r.normal(size=d), {}, [large_means(r, 32, d)], True)
    yield ("float32 input, momentum = 0.2", scales(r, d).astype(np.float32), r.normal(size=d).astype(np.float32),
           bn_params(r, d, 0.2), [features(r, n, d).astype(np.float32) for _ in range(2)], False)
    if ctx.hidden:
        n, d = int(r.integers(64, 200)), int(r.integers(10, 30))
        yield (f"three steps, (N, D) = {(n, d)}, momentum = 0.05, eps = 1e-4", scales(r, d), r.normal(size=d),
               bn_params(r, d, 0.05, 1e-4, running=True), [features(r, n, d) for _ in range(3)], False)
        yield ("momentum = 1 (the running statistics become the batch's)", scales(r, d), r.normal(size=d),
               bn_params(r, d, 1.0, running=True), [features(r, n, d)], False)
        yield ("means of 1e3 to 1e4 with a spread of 1e-3, N = 64", scales(r, d), r.normal(size=d),
               bn_params(r, d, eps=1e-6), [large_means(r, 64, d, 1e-3)], True)


def eval_cases(ctx):
    """(description, gamma, beta, bn_param, [x per training step], [x per eval step])."""
    r = ctx.rng
    n, d = int(r.integers(8, 17)), int(r.integers(3, 7))
    loc, scale = r.uniform(-3, 3, d), r.uniform(0.5, 3, d)
    yield (f"three training steps from the defaults, then eval on a batch of {n + 3} and on a single example",
           scales(r, d), r.normal(size=d), {}, [features(r, n, d, loc, scale) for _ in range(3)],
           [features(r, n + 3, d, loc + 1, scale), features(r, 1, d, loc, scale)])
    yield ("four training steps with momentum = 0.3, eps = 0.1 and given running statistics, then eval",
           scales(r, d), r.normal(size=d), bn_params(r, d, 0.3, 0.1, running=True),
           [features(r, n, d, loc, scale) for _ in range(4)], [features(r, n, d, loc - 1, scale)])
    yield ("two training steps on N = 2, then eval (float32)", scales(r, d).astype(np.float32),
           r.normal(size=d).astype(np.float32), bn_params(r, d, 0.5),
           [features(r, 2, d, loc, scale).astype(np.float32) for _ in range(2)], [features(r, 5, d).astype(np.float32)])
    if ctx.hidden:
        n, d = int(r.integers(64, 200)), int(r.integers(10, 30))
        yield (f"five training steps, (N, D) = {(n, d)}, then two eval batches", scales(r, d), r.normal(size=d),
               bn_params(r, d, 0.05, 1e-4), [features(r, n, d) for _ in range(5)], [features(r, 7, d), tiny_variance(r, 9, d)])


def backward_cases(ctx):
    """(description, x, gamma, beta, bn_param, dout) for a training-mode forward + backward."""
    r = ctx.rng
    n, d = int(r.integers(8, 17)), int(r.integers(3, 7))

    def case(desc, x, p=None, dtype=np.float64):
        nn_, dd = x.shape
        return (desc, x.astype(dtype), scales(r, dd).astype(dtype), r.normal(size=dd).astype(dtype), p or {},
                r.normal(size=(nn_, dd)).astype(dtype))

    yield case(f"(N, D) = {(n, d)}", features(r, n, d))
    yield case("a batch of N = 2", features(r, 2, d))
    yield case("features with variance ~1e-6, below eps = 1e-5", tiny_variance(r, n, d))
    yield case("eps = 1e-2", features(r, n, d, scale=r.uniform(0.05, 0.3, d)), {"eps": 1e-2})
    yield case("float32 input", features(r, n, d), dtype=np.float32)
    if ctx.hidden:
        yield case("means of 1e3 to 1e4 with a spread of 1e-2", large_means(r, 32, d))
        nb, db = int(r.integers(64, 200)), int(r.integers(10, 30))
        yield case(f"(N, D) = {(nb, db)}, eps = 1e-3", features(r, nb, db), {"eps": 1e-3, "momentum": 0.3})


def spatial_cases(ctx):
    """(description, gamma, beta, bn_param, [(mode, x)]) with N, C, H, W all different."""
    r = ctx.rng
    n, c, h, w = int(r.integers(2, 5)), 3, 4, 5

    def x(nn_, dtype=np.float64):
        return (r.uniform(-3, 3, (1, c, 1, 1)) + r.uniform(0.5, 3, (1, c, 1, 1)) * r.normal(size=(nn_, c, h, w))).astype(dtype)

    yield (f"train, train, eval from the defaults, (N, C, H, W) = {(n, c, h, w)}", scales(r, c), r.normal(size=c), {},
           [("train", x(n)), ("train", x(n)), ("eval", x(n + 1))])
    yield ("momentum = 0.3, eps = 1e-3, given running statistics", scales(r, c), r.normal(size=c),
           bn_params(r, c, 0.3, 1e-3, running=True), [("train", x(n)), ("eval", x(2))])
    yield (f"N = 1: each channel's statistics come from its H * W = {h * w} positions", scales(r, c), r.normal(size=c),
           {}, [("train", x(1)), ("eval", x(1))])
    yield ("float32 input", scales(r, c).astype(np.float32), r.normal(size=c).astype(np.float32), bn_params(r, c, 0.2),
           [("train", x(n, np.float32)), ("eval", x(n, np.float32))])
    if ctx.hidden:
        c, h, w = 8, 6, 7
        yield ("(N, C, H, W) = (16, 8, 6, 7), momentum = 0.05", scales(r, c), r.normal(size=c), bn_params(r, c, 0.05),
               [("train", x(16)), ("train", x(16)), ("eval", x(3))])


def spatial_backward_cases(ctx):
    """(description, x, gamma, beta, bn_param, dout) with x of shape (N, C, H, W)."""
    r = ctx.rng
    c, h, w = 3, 4, 5

    def case(desc, n, p=None, dtype=np.float64, c=c, h=h, w=w):
        xv = r.uniform(-3, 3, (1, c, 1, 1)) + r.uniform(0.5, 3, (1, c, 1, 1)) * r.normal(size=(n, c, h, w))
        return (desc, xv.astype(dtype), scales(r, c).astype(dtype), r.normal(size=c).astype(dtype), p or {},
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
                "weight": scales(r, d), "bias": r.normal(size=d),
                "steps": [(mode, x.astype(dtype), r.normal(size=x.shape).astype(dtype)) for mode, x in steps]}
        return {"desc": f"{desc} ({dtype} on {dev})", "spec": spec}

    n, d = int(r.integers(8, 17)), int(r.integers(3, 7))
    loc, scale = r.uniform(-3, 3, d), r.uniform(0.5, 3, d)
    yield scenario(f"BatchNorm1d({d}), two training steps then eval on a shifted batch, (N, D) = {(n, d)}", d, "float64",
                   [("train", features(r, n, d, loc, scale)), ("train", features(r, n, d, loc, scale)),
                    ("eval", features(r, n + 2, d, loc + 1, scale))])
    yield scenario(f"BatchNorm1d({d}, eps=1e-3, momentum=0.3), features of variance ~1e-6, then eval", d, "float32",
                   [("train", tiny_variance(r, 32, d)), ("train", tiny_variance(r, 32, d)), ("train", tiny_variance(r, 32, d)),
                    ("eval", tiny_variance(r, 6, d))], eps=1e-3, momentum=0.3)
    yield scenario(f"BatchNorm1d({d}, momentum=0.5) on N = 2, then eval on one example", d, "float64",
                   [("train", features(r, 2, d, loc, scale)), ("train", features(r, 2, d, loc, scale)),
                    ("eval", features(r, 1, d, loc, scale))], momentum=0.5)
    if ctx.hidden:
        nb, db = int(r.integers(64, 128)), int(r.integers(10, 30))
        yield scenario(f"BatchNorm1d({db}, eps=1e-4, momentum=0.05), (N, D) = {(nb, db)}", db, "float32",
                       [("train", features(r, nb, db)) for _ in range(3)] + [("eval", features(r, 9, db))],
                       eps=1e-4, momentum=0.05)
        yield scenario(f"BatchNorm1d({d}), means of 1e3 to 1e4 with a spread of 1e-2", d, "float64",
                       [("train", large_means(r, 32, d)), ("eval", large_means(r, 4, d))])


# ---------------------------------------------------------------------------------------------


def fd_case(r):
    """A small batch for the finite-difference comparison, as backward_cases' tuples."""
    n, d = 4, 3
    return ("a small batch (N, D) = (4, 3), also compared with finite differences of your forward", features(r, n, d),
            scales(r, d), r.normal(size=d), {}, r.normal(size=(n, d)))
