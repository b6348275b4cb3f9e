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
