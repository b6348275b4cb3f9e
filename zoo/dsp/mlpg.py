"""Dynamic features and maximum-likelihood parameter generation (Tokuda et al. 2000).

A trajectory ``y [T, D]`` is described by static and delta features ``W y``
(delta window ``[-0.5, 0, 0.5]``, edges repeated). Given per-frame means and variances
of ``[static, delta]``, MLPG finds the trajectory maximising their Gaussian likelihood:
``(W' P W) y = W' P mu`` with ``P`` the precisions, one banded system per dimension.
"""
import numpy as np

DELTA_WINDOW = (-0.5, 0.0, 0.5)


def delta(x):
    """Delta features ``0.5 (x[t+1] - x[t-1])`` of ``x [T, D]`` (edges repeated)."""
    x = np.asarray(x, np.float64)
    padded = np.concatenate([x[:1], x, x[-1:]], axis=0)
    return 0.5 * (padded[2:] - padded[:-2])


def static_delta(x):
    """``[T, D]`` -> ``[T, 2 D]``: statics then deltas."""
    return np.concatenate([np.asarray(x, np.float64), delta(x)], axis=-1)


def delta_matrix(frames):
    """The sparse ``[2 T, T]`` matrix ``W`` with ``W y = [y; delta(y)]`` (one dimension)."""
    from scipy import sparse

    t = np.arange(frames)
    prev, nxt = np.maximum(t - 1, 0), np.minimum(t + 1, frames - 1)
    rows = np.concatenate([t, frames + t, frames + t])
    cols = np.concatenate([t, nxt, prev])
    vals = np.concatenate([np.ones(frames), np.full(frames, 0.5), np.full(frames, -0.5)])
    return sparse.csr_matrix((vals, (rows, cols)), shape=(2 * frames, frames))


def mlpg(mean, variance):
    """The trajectory ``[T, D]`` whose static + delta features best fit ``mean`` and
    ``variance`` (both ``[T, 2 D]``: statics then deltas) in likelihood."""
    from scipy import sparse
    from scipy.sparse.linalg import spsolve

    mean, variance = np.asarray(mean, np.float64), np.asarray(variance, np.float64)
    frames, dims = mean.shape[0], mean.shape[1] // 2
    W = delta_matrix(frames)
    out = np.empty((frames, dims))
    for d in range(dims):
        mu = np.concatenate([mean[:, d], mean[:, dims + d]])
        prec = 1.0 / np.concatenate([variance[:, d], variance[:, dims + d]])
        WP = W.T @ sparse.diags(prec)
        out[:, d] = spsolve((WP @ W).tocsc(), WP @ mu)
    return out
