"""What the known mistakes of `loss_functions` compute, for the diagnoses (grader side, numpy
float64): each ``*_mistakes`` function maps the message naming a mistake to that mistake's output
on the test's inputs; the messages for non-finite losses are chosen in checks.py from the
student's own outputs.
"""
from __future__ import annotations

import numpy as np


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def onehot(labels, c):
    out = np.zeros((len(labels), c))
    out[np.arange(len(labels)), labels] = 1.0
    return out


def mse_mistakes(pred, target):
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


def mse_grad_mistakes(pred, target):
    p, t = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    m = {
        "the factor 2 from differentiating the square is missing.": (p - t) / p.size,
        "the sign is flipped: d/dpred of (pred - target)**2 is +2 (pred - target).": 2 * (t - p) / p.size,
        "you did not divide by the number of elements: the loss is a mean, so its gradient carries 1/n.": 2 * (p - t),
    }
    if p.ndim > 1:
        m["you divide by the batch size N; the mean runs over all N*D elements."] = 2 * (p - t) / p.shape[0]
    return m


def ce_mistakes(logits, labels):
    z = np.asarray(logits, np.float64)
    n = z.shape[0]
    with np.errstate(all="ignore"):
        nll = -np.log(softmax(z)[np.arange(n), labels] + 1e-12)
    m = {
        "your loss is the SUM over the batch; F.cross_entropy takes the MEAN over the N examples.":
            -np.sum(z[np.arange(n), labels] - lse(z)),
        "you take the log of softmax probabilities (with a small epsilon): for large logits the probability "
        "underflows to 0 and the loss saturates. Compute log-softmax directly as z - logsumexp(z).": np.mean(nll),
        "you normalize the softmax over the wrong axis (the batch axis 0 instead of the class axis 1).":
            -np.mean(z[np.arange(n), labels] - lse(z.T).reshape(1, -1).repeat(n, 0)[np.arange(n), labels])
            if n > 1 else np.nan,
    }
    if n > 1:
        # each row shifted by its own maximum, then exp divided by its sum over the batch (e / e.sum(axis=0))
        w = z - z.max(axis=1, keepdims=True)
        col = lse(w.T)
        m["you divide exp(z) by its sum over the batch axis 0 (e / e.sum(axis=0), or a sum without keepdims=True): "
          "the softmax normalizes each row over its classes, e / e.sum(axis=1, keepdims=True)."] = (
            -np.mean(w[np.arange(n), labels] - col[labels]))
    return m


def ce_grad_mistakes(logits, labels):
    z = np.asarray(logits, np.float64)
    n, c = z.shape
    p, y = softmax(z), onehot(labels, c)
    return {
        "you did not divide by the batch size N: the loss is the mean over the batch, so is its gradient.": p - y,
        "the one-hot term is missing: the gradient is (softmax(z) - onehot(y)) / N.": p / n,
        "the sign is flipped: the gradient is (softmax(z) - onehot(y)) / N, not (onehot(y) - softmax(z)) / N.": (y - p) / n,
    }


def lse(z):
    m = z.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]


def has_nan(got):
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
