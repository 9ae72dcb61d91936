"""Checks for `loss_functions`: one test per graded function, each against the PyTorch reference.

Every case is a fresh random draw from the test's seeded generator. Besides ordinary batches
the cases include the inputs that expose the usual mistakes: a batch of one example, a single
class, logits of magnitude 1e3 and 1e4 (exp overflows without log-sum-exp, and log(softmax)
underflows), float32 input, and 2-D targets for MSE (mean over all elements, not only over the batch).

The ``diagnoses`` are what known mistakes produce on the same inputs; when the student's output
matches one, the failure message names that mistake.
"""
from __future__ import annotations

import numpy as np

from ..core import CheckFailure, Registry, expect_close, tol_for
from . import reference as ref

TESTS = Registry()


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
# Known mistakes, as what they would compute (for diagnosis only)
# ---------------------------------------------------------------------------------------------
def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _onehot(labels, c):
    out = np.zeros((len(labels), c))
    out[np.arange(len(labels)), labels] = 1.0
    return out


def _mse_mistakes(pred, target):
    p, t = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    n = p.shape[0]
    m = {
        "your loss is the SUM of the squared errors; PyTorch's mse_loss takes the MEAN over all elements.":
            np.sum((p - t) ** 2),
        "you use the 1/2 * mean convention (as some textbooks and CS231n do); PyTorch's mse_loss has no 1/2.":
            0.5 * np.mean((p - t) ** 2),
        "you take the mean of the errors before squaring them (mean(pred - target)**2).": np.mean(p - t) ** 2,
        "you return the root of the mean squared error (RMSE), not the MSE.": np.sqrt(np.mean((p - t) ** 2)),
    }
    if p.ndim > 1:
        m["you divide by the batch size N only; mse_loss averages over ALL N*D elements."] = np.sum((p - t) ** 2) / n
    return m


def _mse_grad_mistakes(pred, target):
    p, t = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    m = {
        "the factor 2 from differentiating the square is missing.": (p - t) / p.size,
        "the sign is flipped: d/dpred of (pred - target)**2 is +2 (pred - target).": 2 * (t - p) / p.size,
        "you did not divide by the number of elements: the loss is a mean, so its gradient carries 1/n.": 2 * (p - t),
    }
    if p.ndim > 1:
        m["you divide by the batch size N; the mean runs over all N*D elements."] = 2 * (p - t) / p.shape[0]
    return m


def _ce_mistakes(logits, labels):
    z = np.asarray(logits, np.float64)
    n = z.shape[0]
    with np.errstate(all="ignore"):
        nll = -np.log(_softmax(z)[np.arange(n), labels] + 1e-12)
    m = {
        "your loss is the SUM over the batch; F.cross_entropy takes the MEAN over the N examples.":
            -np.sum(z[np.arange(n), labels] - _lse(z)),
        "you take the log of softmax probabilities (with a small epsilon): for large logits the probability "
        "underflows to 0 and the loss saturates. Compute log-softmax directly as z - logsumexp(z).": np.mean(nll),
        "you normalize the softmax over the wrong axis (the batch axis 0 instead of the class axis 1).":
            -np.mean(z[np.arange(n), labels] - _lse(z.T).reshape(1, -1).repeat(n, 0)[np.arange(n), labels])
            if n > 1 else np.nan,
    }
    if n > 1:
        # each row shifted by its own maximum, then exp divided by its sum over the batch (e / e.sum(axis=0))
        w = z - z.max(axis=1, keepdims=True)
        col = _lse(w.T)
        m["you divide exp(z) by its sum over the batch axis 0 (e / e.sum(axis=0), or a sum without keepdims=True): "
          "the softmax normalizes each row over its classes, e / e.sum(axis=1, keepdims=True)."] = (
            -np.mean(w[np.arange(n), labels] - col[labels]))
    return m


def _ce_grad_mistakes(logits, labels):
    z = np.asarray(logits, np.float64)
    n, c = z.shape
    p, y = _softmax(z), _onehot(labels, c)
    return {
        "you did not divide by the batch size N: the loss is the mean over the batch, so is its gradient.": p - y,
        "the one-hot term is missing: the gradient is (softmax(z) - onehot(y)) / N.": p / n,
        "the sign is flipped: the gradient is (softmax(z) - onehot(y)) / N, not (onehot(y) - softmax(z)) / N.": (y - p) / n,
    }


def _lse(z):
    m = z.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]


def _has_nan(got):
    return bool(np.any(np.isnan(got)))


# nan: exp(z) overflowed to inf and the softmax divided inf by inf.
OVERFLOW = ("the result is nan for large logits: exp(z) overflows to inf, and inf / inf is nan. Subtract each "
            "row's maximum before exponentiating (the log-sum-exp trick) — it does not change the softmax.")
# inf and -inf: their causes are told apart by _nonfinite_cause.
OVERFLOW_INF = ("the loss is inf for large logits: exp(z) overflows to inf, so log(sum(exp(z))) is inf. Subtract "
                "each row's maximum before exponentiating (the log-sum-exp trick) — it does not change the softmax.")
# -inf without the shift: every exp of a row of very negative logits underflowed to 0, and log(0) = -inf.
UNDERFLOW_NEG_INF = ("the loss is -inf for large logits: exp(z) underflows to 0 for a row whose logits are all very "
                     "negative, so log(sum(exp(z))) is -inf. Subtract each row's maximum before exponentiating (the "
                     "log-sum-exp trick) — it does not change the softmax, and the largest term becomes exp(0) = 1.")
UNDERFLOW = ("the loss is infinite for large logits: a probability underflowed to 0 (exp of a very negative number), "
             "so log(p) gave -inf. Do not take the log of the softmax: compute the log-probabilities directly "
             "as z - logsumexp(z), with logsumexp(z) = max(z) + log(sum(exp(z - max(z)))).")
# Shifting by one maximum over the whole batch: rows far below it underflow to exp(.) = 0 entirely.
GLOBAL_MAX = ("you subtracted one maximum over the whole batch (z - z.max()): in a row whose logits are all far below "
              "that maximum every exp underflows to 0, so its log(sum(exp)) is -inf (or its softmax 0/0). Subtract "
              "each row's own maximum: z - z.max(axis=1, keepdims=True).")


def _nonfinite_cause(student, logits, labels, got) -> str | None:
    """Why the loss ``got`` is not finite; None when it is finite, when a call fails, or for a nan
    that OVERFLOW already explains. The true loss is unchanged when each row is shifted by its own
    maximum, and so is the mean over the rows taken one at a time (a batch of one, whose maximum is
    its own). If the student's code gives those two the same value but ``got`` differs, one maximum
    served the whole batch. Otherwise: still not finite after the shift, a probability underflowed
    to 0 before a log; finite, the shift was missing (exp overflowed: inf; or underflowed: -inf)."""
    g = np.asarray(got, dtype=np.float64) if isinstance(got, (int, float, np.ndarray)) else None
    if g is None or np.all(np.isfinite(g)):
        return None
    z, y = np.asarray(logits), np.asarray(labels)

    def loss(zz, yy):
        out = np.asarray(student.call("cross_entropy_loss", zz, yy, argnames=("logits", "labels")), dtype=np.float64)
        if out.size != 1:
            raise ValueError("not one number")
        return float(out.ravel()[0])

    try:
        with np.errstate(all="ignore"):
            shifted = loss(z - z.max(axis=1, keepdims=True), y)
            rows = np.mean([loss(z[i:i + 1], y[i:i + 1]) for i in range(len(z))]) if len(z) > 1 else None
    except (CheckFailure, TypeError, ValueError):
        return None
    same = lambda a, b: bool(np.isclose(a, b, rtol=1e-9, atol=0.0, equal_nan=True))  # noqa: E731 (inf == inf)
    if rows is not None and same(rows, shifted) and not same(g.ravel()[0], shifted):
        return GLOBAL_MAX
    if _has_nan(g):
        return None
    if not np.isfinite(shifted):
        return UNDERFLOW
    return UNDERFLOW_NEG_INF if np.all(g[np.isinf(g)] < 0) else OVERFLOW_INF


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------
@TESTS.test("mse_loss")
def mse_loss(student, ctx):
    """mse_loss(pred, target) -> float equals F.mse_loss (mean over all elements)."""
    for case, pred, target in mse_cases(ctx):
        ctx.cases += 1
        got = student.call("mse_loss", pred, target, argnames=("pred", "target"))
        expect_close(got, ref.mse_loss(pred, target), what="mse_loss", tol=tol_for(pred), case=case,
                     scalar=True, diagnoses=_mse_mistakes(pred, target))


@TESTS.test("mse_loss_grad")
def mse_loss_grad(student, ctx):
    """mse_loss_grad(pred, target) equals d F.mse_loss / d pred (autograd), shape of pred."""
    for case, pred, target in mse_cases(ctx):
        ctx.cases += 1
        got = student.call("mse_loss_grad", pred, target, argnames=("pred", "target"))
        expect_close(got, ref.mse_loss_grad(pred, target), what="mse_loss_grad", tol=tol_for(pred), case=case,
                     diagnoses=_mse_grad_mistakes(pred, target))


@TESTS.test("cross_entropy_loss")
def cross_entropy_loss(student, ctx):
    """cross_entropy_loss(logits, labels) -> float equals F.cross_entropy (mean over the batch)."""
    for case, logits, labels in ce_cases(ctx):
        ctx.cases += 1
        got = student.call("cross_entropy_loss", logits, labels, argnames=("logits", "labels"))
        diagnoses = {OVERFLOW: _has_nan, **_ce_mistakes(logits, labels)}
        cause = _nonfinite_cause(student, logits, labels, got)
        if cause:  # found from this very output: it goes first
            diagnoses = {cause: lambda g: True, **diagnoses}
        expect_close(got, ref.cross_entropy_loss(logits, labels), what="cross_entropy_loss", tol=tol_for(logits),
                     case=case, scalar=True, diagnoses=diagnoses)


@TESTS.test("cross_entropy_loss_grad")
def cross_entropy_loss_grad(student, ctx):
    """cross_entropy_loss_grad(logits, labels) equals d F.cross_entropy / d logits (autograd)."""
    for case, logits, labels in ce_cases(ctx):
        ctx.cases += 1
        got = student.call("cross_entropy_loss_grad", logits, labels, argnames=("logits", "labels"))
        diagnoses = {OVERFLOW: _has_nan, **_ce_grad_mistakes(logits, labels)}
        expect_close(got, ref.cross_entropy_loss_grad(logits, labels), what="cross_entropy_loss_grad",
                     tol=tol_for(logits), case=case, diagnoses=diagnoses)
