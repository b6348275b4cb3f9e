"""Latent-space tools shared by models: PCA of posterior means, dimension counts by
fidelity (RAVE; Caillon & Esling 2021), and the callback that reports them during
training."""
import json
from pathlib import Path

import keras
import numpy as np

from zoo.files import atomic_write_text


def fidelity_dims(explained_variance, fidelity):
    """Smallest ``r`` with cumulative explained-variance ratio ``>= fidelity``.

    Args:
        explained_variance: PCA variances (any order; sorted descending here).
        fidelity: target in ``(0, 1]``.

    Returns:
        An int in ``[1, len(explained_variance)]``.
    """
    if not 0.0 < float(fidelity) <= 1.0:
        raise ValueError(f"fidelity must be in (0, 1], got {fidelity}")
    var = np.sort(np.asarray(explained_variance, np.float64))[::-1]
    ratio = np.cumsum(var) / max(var.sum(), 1e-30)
    return int(min(np.searchsorted(ratio, float(fidelity) - 1e-9) + 1, len(var)))


def latent_pca(latents):
    """PCA of latent vectors ``[N, D]``: ``(mean [D], components [D, D] (columns,
    by decreasing variance), explained variance [D])``."""
    z = np.asarray(latents, np.float64).reshape(-1, np.shape(latents)[-1])
    mean = z.mean(0)
    cov = np.cov(z - mean, rowvar=False).reshape(z.shape[1], z.shape[1])
    var, vec = np.linalg.eigh(cov)
    order = np.argsort(var)[::-1]
    return mean, vec[:, order], np.maximum(var[order], 0.0)


class LatentFidelity(keras.callbacks.Callback):
    """During a VAE's first stage, at each epoch end: PCA of the posterior means of
    fixed validation clips (``model.latent_pca``), printed as the dimension counts
    reaching fidelity 0.9 / 0.95 / 0.99 and appended to ``<run>/latent_fidelity.json``
    (RAVE's "estimated latent dimensionality according to the fidelity parameter").
    The PCA is stored in the model only at the end of training (the model's
    ``finish_training`` calls ``fit_latent_pca``), since a callback cannot write
    JAX's in-flight state."""

    def __init__(self, run_dir, clips, verbose=1, when=None):
        super().__init__()
        self.path, self.clips, self.verbose = Path(run_dir) / "latent_fidelity.json", clips, verbose
        self.when = when  # callable: report at this epoch end? (default: always)

    def on_epoch_end(self, epoch, logs=None):
        if (self.when is not None and not self.when()) or not self.model.weights_finite():
            return
        self.model.sync_state()
        _, _, var = self.model.latent_pca(self.clips)
        report = self.model.fidelity_report(variance=var)
        history = json.loads(self.path.read_text()) if self.path.is_file() else []
        history.append({"epoch": epoch + 1, "dims": {str(k): v for k, v in report["dims"].items()},
                        "ratio": report["ratio"]})
        atomic_write_text(self.path, json.dumps(history, indent=1))
        if self.verbose:
            dims = ", ".join(f"f={k}: {v}" for k, v in report["dims"].items())
            print(f"\n[zoo] latent fidelity after epoch {epoch + 1}: {dims} of "
                  f"{len(var)} dims", flush=True)


# ------------------------------------------------------------- factor subspaces
def active_units(means, threshold=0.01):
    """Latent dimensions in use (Burda et al. 2016): ``Var_x(E_q[z_d]) > threshold``.

    A collapsed dimension's posterior is the prior whatever the input: its mean does not
    move and its variance stays near 1, so it carries no information about the data.

    Args:
        means: posterior means ``[N, D]``.
        threshold: the variance of a dimension's means below which it counts as unused.

    Returns:
        A boolean mask ``[D]``.
    """
    mu = np.asarray(means, np.float64).reshape(-1, np.shape(means)[-1])
    return mu.var(0) > float(threshold)


def aggregated_posterior_pca(means, variances, active=None):
    """PCA of the aggregated posterior of a Gaussian encoder (Sadok et al. 2023).

    The aggregated posterior ``q(z) = 1/N sum_n N(z; mu_n, diag(sigma_n^2))`` has
    mean ``e = mean(mu_n)`` and covariance
    ``1/N sum_n (mu_n mu_n^T + diag(sigma_n^2)) - e e^T``.

    Args:
        means: posterior means ``[N, D]``.
        variances: posterior variances ``[N, D]``.
        active: optional boolean mask ``[D]`` (:func:`active_units`): the PCA is taken
            over these dimensions only and the components are zero elsewhere. A
            collapsed dimension adds its prior's unit variance to every factor's
            covariance, which then outweighs the factor's own variation (about 0.01-1
            per active dimension), so each factor's leading components would be the
            same collapsed axes.

    Returns:
        ``(e [D], components [D, A] (columns, by decreasing variance), variances [A])``
        with ``A`` the number of active dimensions (``D`` without a mask).
    """
    mu = np.asarray(means, np.float64).reshape(-1, np.shape(means)[-1])
    var = np.asarray(variances, np.float64).reshape(mu.shape)
    if not len(mu):
        raise ValueError("aggregated_posterior_pca needs at least one posterior")
    keep = np.ones(mu.shape[1], bool) if active is None else np.asarray(active, bool)
    if keep.shape != (mu.shape[1],) or not keep.any():
        raise ValueError(f"active must be a non-empty mask of {mu.shape[1]} dimensions")
    e = mu.mean(0)
    m, v, c = mu[:, keep], var[:, keep], e[keep]
    cov = m.T @ m / len(m) + np.diag(v.mean(0)) - np.outer(c, c)
    values, vectors = np.linalg.eigh((cov + cov.T) / 2)
    order = np.argsort(values)[::-1]
    components = np.zeros((mu.shape[1], int(keep.sum())))
    components[keep] = vectors[:, order]
    return e, components, np.maximum(values[order], 0.0)


def _hat_basis(y, knots):
    """Linear-interpolation (hat) basis ``[N, K]`` of ``y`` on sorted ``knots`` (values
    outside the knots use the end segments' lines, extrapolated)."""
    y = np.asarray(y, np.float64).reshape(-1)
    k = len(knots)
    seg = np.clip(np.searchsorted(knots, y, side="right") - 1, 0, k - 2)
    t = (y - knots[seg]) / (knots[seg + 1] - knots[seg])
    basis = np.zeros((len(y), k))
    rows = np.arange(len(y))
    basis[rows, seg] = 1.0 - t
    basis[rows, seg + 1] = t
    return basis


def piecewise_linear_fit(y, targets, segments=20, lo=None, hi=None, ridge=1e-9):
    """Least-squares continuous piecewise-linear map ``g: y -> targets`` with ``segments``
    equal segments on ``[lo, hi]`` (default: the range of ``y``).

    Args:
        y: factor values ``[N]``.
        targets: coordinates ``[N, M]``.
        segments: linear pieces.
        lo, hi: knot range.
        ridge: a small penalty on second differences, so knots with no data between
            them follow their neighbours' line.

    Returns:
        ``(knots [segments + 1], values [segments + 1, M])``: ``g`` is the linear
        interpolation of ``values`` at ``knots`` (:func:`piecewise_linear`).
    """
    y = np.asarray(y, np.float64).reshape(-1)
    targets = np.asarray(targets, np.float64).reshape(len(y), -1)
    lo = float(np.min(y)) if lo is None else float(lo)
    hi = float(np.max(y)) if hi is None else float(hi)
    if not hi > lo or int(segments) < 1:
        raise ValueError(f"piecewise_linear_fit needs a value range and segments >= 1; got "
                         f"[{lo}, {hi}], {segments} segments")
    knots = np.linspace(lo, hi, int(segments) + 1)
    basis = _hat_basis(y, knots)
    diff2 = np.diff(np.eye(len(knots)), 2, axis=0)
    lhs = basis.T @ basis + ridge * len(y) * diff2.T @ diff2
    values = np.linalg.solve(lhs + 1e-12 * np.eye(len(knots)), basis.T @ targets)
    return knots, values


def piecewise_linear(knots, values, y):
    """``g(y)``: the linear interpolation of ``values [K, M]`` at ``knots [K]`` for
    ``y [N]`` (extrapolated linearly beyond the ends) -> ``[N, M]``."""
    return _hat_basis(y, np.asarray(knots, np.float64)) @ np.asarray(values, np.float64)


def invert_piecewise_linear(knots, values, coords):
    """The factor value whose ``g(y)`` is nearest to each of ``coords [N, M]`` -> ``[N]``:
    each point is projected onto every segment of the curve (clamped to its ends) and
    the closest projection's value is returned, so points on the curve map back exactly."""
    knots = np.asarray(knots, np.float64)
    values = np.asarray(values, np.float64)
    coords = np.asarray(coords, np.float64).reshape(-1, values.shape[1])
    start, step = values[:-1], np.diff(values, axis=0)                      # [S, M]
    length2 = np.maximum(np.sum(step ** 2, 1), 1e-30)                       # [S]
    t = np.clip(((coords[:, None] - start[None]) * step[None]).sum(-1) / length2, 0.0, 1.0)
    nearest = start[None] + t[..., None] * step[None]                       # [N, S, M]
    best = np.argmin(np.sum((coords[:, None] - nearest) ** 2, -1), axis=1)
    rows = np.arange(len(coords))
    return knots[best] + t[rows, best] * np.diff(knots)[best]
