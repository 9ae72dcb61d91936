"""Checks for `loss_functions`: one test per graded function, each against the PyTorch reference
(reference.py) on cases.py's inputs; when the student's output matches what a known mistake
computes (mistakes.py), the failure message names that mistake.
"""
from __future__ import annotations

import numpy as np

from ..core import CheckFailure, Registry, expect_close, tol_for
from . import reference as ref
from .cases import ce_cases, mse_cases
from .mistakes import (GLOBAL_MAX, OVERFLOW, OVERFLOW_INF, UNDERFLOW, UNDERFLOW_NEG_INF, ce_grad_mistakes, ce_mistakes,
                       has_nan, mse_grad_mistakes, mse_mistakes)

TESTS = Registry()


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
    if has_nan(g):
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
                     scalar=True, diagnoses=mse_mistakes(pred, target))


@TESTS.test("mse_loss_grad")
def mse_loss_grad(student, ctx):
    """mse_loss_grad(pred, target) equals d F.mse_loss / d pred (autograd), shape of pred."""
    for case, pred, target in mse_cases(ctx):
        ctx.cases += 1
        got = student.call("mse_loss_grad", pred, target, argnames=("pred", "target"))
        expect_close(got, ref.mse_loss_grad(pred, target), what="mse_loss_grad", tol=tol_for(pred), case=case,
                     diagnoses=mse_grad_mistakes(pred, target))


@TESTS.test("cross_entropy_loss")
def cross_entropy_loss(student, ctx):
    """cross_entropy_loss(logits, labels) -> float equals F.cross_entropy (mean over the batch)."""
    for case, logits, labels in ce_cases(ctx):
        ctx.cases += 1
        got = student.call("cross_entropy_loss", logits, labels, argnames=("logits", "labels"))
        diagnoses = {OVERFLOW: has_nan, **ce_mistakes(logits, labels)}
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
        diagnoses = {OVERFLOW: has_nan, **ce_grad_mistakes(logits, labels)}
        expect_close(got, ref.cross_entropy_loss_grad(logits, labels), what="cross_entropy_loss_grad",
                     tol=tol_for(logits), case=case, diagnoses=diagnoses)
