"""How close plain numpy gets to PyTorch's fused layer and group norm: the fastest numpy forward +
backward found, kept beside the course's solution so that `python -m bench norm` measures both.

Not the course's answer (solutions/normalization/ is: one whole-array operation per formula,
which is what students write). Three changes buy speed here, none of them a new formula:
  * every reduction that is a weighted row or column sum is a matrix-vector product (BLAS reads
    the array once, fast; numpy's `mean`/`einsum` are several times slower at these sizes);
  * the rows are processed in blocks of about 256 KiB, so that each block's arrays stay in the L2
    cache between the eight or so elementwise operations that touch them (a fused kernel reads
    each row once; numpy's whole-array operations stream every array through memory each time);
  * group norm's backward takes per-(example, channel) sums of dout and dout * xhat once, and gets
    dbeta, dgamma and the per-group means from them; dx is then three passes.
Same signatures and caches' roles as the solution's; `tests/test_bench.py` checks them against
PyTorch.
"""
from __future__ import annotations

import numpy as np

BLOCK_BYTES = 1 << 18


def _blocks(rows: int, row_bytes: int) -> list[slice]:
    step = max(1, BLOCK_BYTES // row_bytes)
    return [slice(i, i + step) for i in range(0, rows, step)]


def _normalize_rows(v, xhat, inv_std, eps):
    """Row-normalize v (R, M) into xhat (R, M) and 1/sqrt(var + eps) into inv_std (R, 1), by blocks."""
    m = v.shape[1]
    mean_w = np.full(m, 1.0 / m, v.dtype)
    for s in _blocks(len(v), v[0].nbytes):
        xh, r = xhat[s], inv_std[s]
        np.subtract(v[s], (v[s] @ mean_w)[:, None], out=xh)
        np.sqrt(np.einsum("rm,rm->r", xh, xh)[:, None] / m + eps, out=r)
        np.divide(1.0, r, out=r)
        xh *= r


def layernorm_forward(x, gamma, beta, ln_param):
    """x (N, D); gamma, beta (D,) -> (out (N, D), cache)."""
    n, d = x.shape
    xhat, out, inv_std = np.empty_like(x), np.empty_like(x), np.empty((n, 1), x.dtype)
    _normalize_rows(x, xhat, inv_std, ln_param.get("eps", 1e-5))
    for s in _blocks(n, x[0].nbytes):
        np.multiply(xhat[s], gamma, out=out[s])
        out[s] += beta
    return out, (xhat, inv_std, gamma)


def layernorm_backward(dout, cache):
    """dout (N, D) -> (dx (N, D), dgamma (D,), dbeta (D,))."""
    xhat, inv_std, gamma = cache
    n, d = dout.shape
    ones, gamma_d = np.ones(n, dout.dtype), gamma / d
    dx, dgamma, dbeta = np.empty_like(dout), np.zeros(d, dout.dtype), ones @ dout
    blocks = _blocks(n, dout[0].nbytes)
    p = np.empty((blocks[0].stop, d), dout.dtype)
    for s in blocks:
        dy, xh, g = dout[s], xhat[s], dx[s]
        pb = p[:len(dy)]
        np.multiply(dy, xh, out=pb)
        dgamma += ones[:len(dy)] @ pb
        c2 = pb @ gamma_d  # mean over the row of (dout * gamma) * xhat
        c1 = dy @ gamma_d  # mean over the row of dout * gamma
        # dx = inv_std * (dout * gamma - c1 - xhat * c2)
        np.multiply(dy, gamma, out=g)
        g -= c1[:, None]
        np.multiply(xh, c2[:, None], out=pb)
        g -= pb
        g *= inv_std[s]
    return dx, dgamma, dbeta


def spatial_groupnorm_forward(x, gamma, beta, G, gn_param):
    """x (N, C, H, W); gamma, beta (C,); G divides C -> (out (N, C, H, W), cache)."""
    n, c = x.shape[:2]
    if G < 1 or c % G:
        raise ValueError(f"G = {G} groups must divide the C = {c} channels")
    xhat, out, inv_std = np.empty_like(x), np.empty_like(x), np.empty((n * G, 1), x.dtype)
    _normalize_rows(x.reshape(n * G, -1), xhat.reshape(n * G, -1), inv_std, gn_param.get("eps", 1e-5))
    rows, xhr = out.reshape(n * c, -1), xhat.reshape(n * c, -1)  # one row per (example, channel)
    gam, bet = np.tile(gamma, n)[:, None], np.tile(beta, n)[:, None]
    for s in _blocks(n * c, rows[0].nbytes):
        np.multiply(xhr[s], gam[s], out=rows[s])
        rows[s] += bet[s]
    return out, (xhat, inv_std, gamma, G)


def spatial_groupnorm_backward(dout, cache):
    """dout (N, C, H, W) -> (dx (N, C, H, W), dgamma (C,), dbeta (C,))."""
    xhat, inv_std, gamma, G = cache
    n, c = dout.shape[:2]
    k = c // G
    dy, xh = dout.reshape(n * c, -1), xhat.reshape(n * c, -1)  # one row per (example, channel)
    m = k * dy.shape[1]
    s_dy = (dy @ np.ones(dy.shape[1], dout.dtype)).reshape(n, c)  # sums over space
    s_dyxh = np.einsum("rm,rm->r", dy, xh).reshape(n, c)
    dbeta, dgamma = s_dy.sum(axis=0), s_dyxh.sum(axis=0)
    c1 = (s_dy * gamma).reshape(n * G, k).sum(axis=1) / m  # per (example, group): mean of dout * gamma
    c2 = (s_dyxh * gamma).reshape(n * G, k).sum(axis=1) / m  # ... and of dout * gamma * xhat
    r = inv_std[:, 0]
    # dx = r * (dout * gamma - c1 - xhat * c2) = dout * a + xhat * b + e, per (example, channel) row
    a = (gamma.reshape(1, G, k) * r.reshape(n, G, 1)).reshape(n * c, 1)
    b, e = np.repeat(-r * c2, k)[:, None], np.repeat(-r * c1, k)[:, None]
    dx = np.empty_like(dout)
    rows = dx.reshape(n * c, -1)
    blocks = _blocks(n * c, dy[0].nbytes)
    t = np.empty((blocks[0].stop, dy.shape[1]), dout.dtype)
    for s in blocks:
        o, tb = rows[s], t[:len(rows[s])]
        np.multiply(xh[s], b[s], out=o)
        o += e[s]
        np.multiply(dy[s], a[s], out=tb)
        o += tb
    return dx, dgamma, dbeta
