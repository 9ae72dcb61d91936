"""Input cases for `loss_functions`' checks: each generator draws from the test's seeded
``ctx.rng`` and yields (description, input, target); the visible cases first, then the hidden ones
when ``ctx.hidden``. Besides ordinary batches they include the inputs that expose the usual
mistakes: a batch of one example, a single class, logits of magnitude 1e3 and 1e4 (exp overflows
without log-sum-exp, and log(softmax) underflows), float32 input, and 2-D targets for MSE (mean
over all elements, not only over the batch).
"""
from __future__ import annotations

import numpy as np


def mse_cases(ctx):
    """(description, pred, target) for MSE; hidden cases only with ctx.hidden."""
    r = ctx.rng
    n, d = int(r.integers(5, 12)), int(r.integers(2, 6))
    yield "a batch of vectors (N, D) = " + str((n, d)), r.normal(size=(n, d)), r.normal(size=(n, d))
    n = int(r.integers(6, 20))
    yield f"a batch of {n} scalars, shape ({n},)", r.normal(size=n) * 3, r.normal(size=n)
    yield "a batch of one example, shape (1, 3)", r.normal(size=(1, 3)), r.normal(size=(1, 3))
    yield ("float32 input (N, D) = (8, 4)", r.normal(size=(8, 4)).astype(np.float32),
           r.normal(size=(8, 4)).astype(np.float32))
    if ctx.hidden:
        n, d = int(r.integers(20, 60)), int(r.integers(3, 9))
        yield f"targets far from zero (N, D) = {(n, d)}", r.normal(100, 5, size=(n, d)), r.normal(100, 5, size=(n, d))
        yield "a (N, C, L) array", r.normal(size=(3, 4, 5)), r.normal(size=(3, 4, 5))


def ce_cases(ctx):
    """(description, logits, labels) for cross-entropy; hidden cases only with ctx.hidden."""
    r = ctx.rng
    n, c = int(r.integers(6, 16)), int(r.integers(3, 8))
    yield f"logits (N, C) = {(n, c)}", r.normal(size=(n, c)) * 2, r.integers(0, c, size=n)
    n, c = 8, 5
    yield ("logits of magnitude 1000 (exp(z) overflows; softmax probabilities underflow to 0)",
           r.normal(size=(n, c)) * 1000, r.integers(0, c, size=n))
    yield "a batch of one example, shape (1, 4)", r.normal(size=(1, 4)), r.integers(0, 4, size=1)
    yield "a single class, C = 1 (the loss is exactly 0)", r.normal(size=(6, 1)), np.zeros(6, dtype=np.int64)
    yield ("float32 logits with int32 labels", (r.normal(size=(10, 6)) * 3).astype(np.float32),
           r.integers(0, 6, size=10).astype(np.int32))
    if ctx.hidden:
        n, c = int(r.integers(30, 80)), int(r.integers(10, 30))
        z = r.normal(size=(n, c)) * 1e4
        z[: n // 2] -= 5e4  # rows at very different offsets: a global max underflows some rows
        yield "logits of magnitude 1e4 at different offsets per row", z, r.integers(0, c, size=n)
        n, c = int(r.integers(100, 300)), 10
        yield f"a larger batch (N, C) = {(n, c)}", r.normal(size=(n, c)), r.integers(0, c, size=n)
