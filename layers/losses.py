"""Losses in ``keras.ops``: variational, spectral, style and adversarial."""
import keras
from keras import ops

__all__ = ["gaussian_kl", "itakura_saito"]


@keras.saving.register_keras_serializable(package="layers")
def gaussian_kl(mean, log_var, axis=-1):
    """Analytic KL( N(mean, exp(log_var)) || N(0, I) ), summed over ``axis``.

    KL = 1/2 * sum(mean^2 + exp(log_var) - log_var - 1). (The RAVE reference omits
    the 1/2; this function does not.)

    Args:
        mean: posterior means.
        log_var: posterior log-variances, same shape as ``mean``.
        axis: axis or axes summed over (the latent dimensions).

    Returns:
        The KL divergence with ``axis`` reduced.

    Example:
    >>> float(gaussian_kl(ops.zeros((1, 4)), ops.zeros((1, 4)))[0])
    0.0
    """
    return 0.5 * ops.sum(ops.square(mean) + ops.exp(log_var) - log_var - 1.0, axis=axis)


@keras.saving.register_keras_serializable(package="layers")
def itakura_saito(x, v, eps=1e-10):
    """Elementwise Itakura-Saito divergence d_IS(x | v) = x/v - log(x/v) - 1.

    It is the negative log-likelihood (up to a constant) of a power spectrum ``x``
    under a zero-mean complex Gaussian model with variance ``v``; it is zero where
    ``x == v`` and is scale invariant. ``eps`` keeps the log finite at zero input.

    Args:
        x: observed power (non-negative).
        v: model variance (positive).
        eps: floor added to both arguments.

    Returns:
        A tensor with the shape of ``x``.
    """
    ratio = (x + eps) / (v + eps)
    return ratio - ops.log(ratio) - 1.0
