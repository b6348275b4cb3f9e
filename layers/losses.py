"""Losses in ``keras.ops``: variational, spectral, style and adversarial."""
import keras
import numpy as np
from keras import ops

from layers.spectral import stft_magnitude

__all__ = [
    "gaussian_kl",
    "itakura_saito",
    "itakura_saito_log",
    "gram_matrix",
    "style_loss",
    "content_loss",
    "StyleLoss",
    "ContentLoss",
    "multiscale_spectral_distance",
    "MultiScaleSpectralLoss",
    "log_spectral_distance",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "nonsaturating_discriminator_loss",
    "nonsaturating_generator_loss",
    "least_squares_discriminator_loss",
    "least_squares_generator_loss",
    "discriminator_loss",
    "generator_loss",
    "feature_matching",
]


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
    ratio = (ops.convert_to_tensor(x) + eps) / (ops.convert_to_tensor(v) + eps)
    return ratio - ops.log(ratio) - 1.0


@keras.saving.register_keras_serializable(package="layers")
def itakura_saito_log(log_x, log_v, max_log_ratio=30.0):
    """Itakura-Saito divergence from natural logs: ``exp(r) - r - 1``, ``r = log_x - log_v``.

    Equal to ``itakura_saito(exp(log_x), exp(log_v))`` but with no ``exp`` of the
    variance, so a decoder predicting log-variances cannot overflow. Above
    ``r = max_log_ratio`` the ``exp`` is continued linearly (value and slope match),
    so the result stays finite and the gradient keeps pushing the variance up; below
    any ``r`` the ``-r`` term keeps pulling it down. Nothing is clipped flat, so
    no input can leave the loss without a gradient.

    Args:
        log_x: log observed power.
        log_v: log model variance.
        max_log_ratio: clip of the log ratio.

    Returns:
        A tensor with the shape of ``log_x``.
    """
    r = ops.convert_to_tensor(log_x) - ops.convert_to_tensor(log_v)
    capped = ops.minimum(r, max_log_ratio)
    return ops.exp(capped) * (1.0 + r - capped) - r - 1.0


_register = keras.saving.register_keras_serializable(package="layers")
_TINY = 1e-20  # floor under square roots and ratio denominators (finite gradients at 0)


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


# --------------------------------------------------------------------------- style
@_register
def gram_matrix(features, normalize=False):
    """Gram matrix of feature maps: ``G_ij = sum_k F_ik F_jk`` over positions ``k``.

    Args:
        features: ``[batch, positions..., channels]``, e.g. ``[B, T, C]`` for 1-D
            (audio) features or ``[B, H, W, C]`` for images.
        normalize: divide by the number of positions ``M`` (Ulyanov & Lebedev's
            audio form).

    Returns:
        ``[batch, channels, channels]``.

    Example:
    >>> float(gram_matrix(ops.ones((2, 5, 3)))[0, 0, 0])  # 5 positions of ones
    5.0
    """
    features = ops.convert_to_tensor(features)
    channels = features.shape[-1]
    flat = ops.reshape(features, (ops.shape(features)[0], -1, channels))
    gram = ops.einsum("bkc,bkd->bcd", flat, flat)
    if normalize:
        gram = gram / ops.cast(ops.shape(flat)[1], gram.dtype)
    return gram


_STYLE_NORMS = ("gatys", "positions", "none")


def _check_choice(value, choices, what):
    if value not in choices:
        raise ValueError(f"{what} must be one of {choices}; got {value!r}.")
    return value


@_register
def style_loss(style_features, generated_features, layer_weights=None, normalization="gatys"):
    """Gram-matrix style loss ``sum_l w_l E_l`` over feature layers (Gatys et al. 2016).

    ``normalization``:

    * ``"gatys"``: ``E_l = 1 / (4 N_l^2 M_l^2) sum_ij (G_ij - A_ij)^2`` with raw Gram
      matrices, ``N_l`` channels and ``M_l`` positions (computed as
      ``sum((G/M - A/M')^2) / (4 N^2)``, identical when both have ``M`` positions and
      well defined when the style excerpt has a different length ``M'``);
    * ``"positions"``: Gram matrices divided by their positions, ``E_l = sum (G - A)^2``
      (Ulyanov & Lebedev's audio style transfer);
    * ``"none"``: raw Gram matrices, ``E_l = sum (G - A)^2``.

    Args:
        style_features: tensor or list of tensors ``[B, ..., C_l]`` of the style target.
        generated_features: matching tensor(s) of the generated signal (batch 1 of
            the style broadcasts against a larger generated batch).
        layer_weights: one weight per layer; default ``1 / L`` each (Gatys).
        normalization: ``"gatys"``, ``"positions"`` or ``"none"``.

    Returns:
        Per-example loss ``[B]``.
    """
    _check_choice(normalization, _STYLE_NORMS, "normalization")
    style_features, generated_features = _as_list(style_features), _as_list(generated_features)
    if len(style_features) != len(generated_features):
        raise ValueError(
            f"style_loss: {len(style_features)} style layers but {len(generated_features)} "
            "generated layers."
        )
    num_layers = len(generated_features)
    if layer_weights is None:
        layer_weights = [1.0 / num_layers] * num_layers
    if len(layer_weights) != num_layers:
        raise ValueError(f"style_loss: {len(layer_weights)} layer_weights for {num_layers} layers.")
    total = 0.0
    for w, a_feat, g_feat in zip(layer_weights, style_features, generated_features):
        norm = normalization != "none"
        diff = gram_matrix(g_feat, normalize=norm) - gram_matrix(a_feat, normalize=norm)
        e = ops.sum(ops.square(diff), axis=(1, 2))
        if normalization == "gatys":
            channels = g_feat.shape[-1]
            e = e / (4.0 * channels ** 2)
        total = total + float(w) * e
    return total


@_register
def content_loss(content_features, generated_features, form="gatys"):
    """Feature-reconstruction (content) loss.

    Args:
        content_features: tensor ``[B, ...]`` (or list of tensors, summed) of the content.
        generated_features: matching tensor(s) of the generated signal.
        form: ``"gatys"``: ``1/2 sum (F - P)^2``; ``"mean"``: ``mean (F - P)^2``.

    Returns:
        Per-example loss ``[B]``.
    """
    _check_choice(form, ("gatys", "mean"), "form")
    total = 0.0
    for p, f in zip(_as_list(content_features), _as_list(generated_features)):
        sq = ops.square(ops.convert_to_tensor(f) - ops.convert_to_tensor(p))
        axes = tuple(range(1, len(sq.shape)))
        total = total + (0.5 * ops.sum(sq, axis=axes) if form == "gatys"
                         else ops.mean(sq, axis=axes))
    return total


class _ConfigLoss(keras.losses.Loss):
    """Loss base whose ``get_config`` is exactly the constructor arguments."""

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self._dtype_arg = dtype

    def _config(self):
        return {}

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction, "dtype": self._dtype_arg,
                **self._config()}


@_register
class StyleLoss(_ConfigLoss):
    """Gram-matrix style loss over a list of feature layers (see ``style_loss``).

    ``y_true`` holds the style excerpt's features and ``y_pred`` the generated
    signal's, each a tensor or a list of tensors ``[B, positions..., C_l]``.

    Args:
        layer_weights: weight per layer (default ``1 / L`` each).
        normalization: ``"gatys"`` (``1 / (4 N^2 M^2) sum (G - A)^2``, default),
            ``"positions"`` (Gram / positions, summed squared error) or ``"none"``.
        name, reduction, dtype: as ``keras.losses.Loss``.

    Returns:
        The per-example losses reduced over the batch by ``reduction``.

    Example:
    >>> feats = [ops.ones((1, 8, 4)), ops.ones((1, 4, 16))]
    >>> float(StyleLoss()(feats, feats))
    0.0
    """

    def __init__(self, layer_weights=None, normalization="gatys", name=None,
                 reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.layer_weights = None if layer_weights is None else [float(w) for w in layer_weights]
        self.normalization = _check_choice(normalization, _STYLE_NORMS, "normalization")

    def call(self, y_true, y_pred):
        return style_loss(y_true, y_pred, self.layer_weights, self.normalization)

    def _config(self):
        return {"layer_weights": self.layer_weights, "normalization": self.normalization}


@_register
class ContentLoss(_ConfigLoss):
    """Content loss between feature maps (see ``content_loss``).

    Args:
        form: ``"gatys"`` (``1/2 sum (F - P)^2`` per example, default) or ``"mean"``.
        name, reduction, dtype: as ``keras.losses.Loss``.

    Returns:
        The per-example losses reduced over the batch by ``reduction``.

    Example:
    >>> float(ContentLoss()(ops.zeros((1, 4, 2)), ops.ones((1, 4, 2))))
    4.0
    """

    def __init__(self, form="gatys", name=None, reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.form = _check_choice(form, ("gatys", "mean"), "form")

    def call(self, y_true, y_pred):
        return content_loss(y_true, y_pred, self.form)

    def _config(self):
        return {"form": self.form}


# ------------------------------------------------------------------------ spectral
_SPECTRAL_FORMS = ("rave", "seed", "frobenius")


def _signals(x):
    """[B, samples] -> [B, 1, samples]; [B, samples, C] -> [B, C, samples]."""
    x = ops.convert_to_tensor(x)
    if len(x.shape) == 2:
        return ops.expand_dims(x, 1)
    if len(x.shape) == 3:
        return ops.transpose(x, (0, 2, 1))
    raise ValueError(f"expected [batch, samples] or [batch, samples, channels]; got {x.shape}.")


@_register
def multiscale_spectral_distance(y_true, y_pred, scales=(2048, 1024, 512, 256, 128),
                                 overlap=0.75, form="rave", eps=1e-7, per_example=False):
    """Multiscale STFT-magnitude distance, summed over scales (RAVE).

    For each FFT size ``n`` (Hann window ``n``, hop ``n * (1 - overlap)``, centred
    reflect-padded frames, magnitudes ``X`` of ``y_true`` and ``Y`` of ``y_pred``):

    * ``form="rave"`` (default; the reference code):
      ``mean((X - Y)^2) / mean(X^2) + mean|log(X + eps) - log(Y + eps)|``;
    * ``form="seed"`` (the seed slides / RAVE paper's equation, literally):
      ``||X - Y||_F / ||X||_F + log(||X - Y||_1 + eps)``; its second term is
      unbounded below as ``Y -> X`` and scales with the signal length;
    * ``form="frobenius"``: ``||X - Y||_F / ||X||_F + mean|log(X + eps) - log(Y + eps)|``
      (the paper's Frobenius ratio with the code's log-magnitude L1).

    Multi-channel input (e.g. PQMF bands) treats every channel as a signal; means
    and norms run over channels, frames and bins (and over the batch too unless
    ``per_example``). Ratio denominators and norms are floored, so gradients stay
    finite for silent inputs.

    Args:
        y_true: target waveforms ``[B, samples]`` or ``[B, samples, C]``.
        y_pred: predicted waveforms, same shape.
        scales: FFT sizes.
        overlap: frame overlap in ``[0, 1)``; hop is ``int(n * (1 - overlap))``.
        form: ``"rave"``, ``"seed"`` or ``"frobenius"``.
        eps: offset inside the logarithms.
        per_example: return one value per example ``[B]`` instead of pooling the
            batch into one scalar as RAVE does.

    Returns:
        A scalar, or ``[B]`` if ``per_example``.
    """
    _check_choice(form, _SPECTRAL_FORMS, "form")
    x, y = _signals(y_true), _signals(y_pred)
    total = 0.0
    for n in scales:
        hop = max(1, int(n * (1 - overlap)))
        mx = stft_magnitude(x, n, hop)
        my = stft_magnitude(y, n, hop)
        axes = (0, 1, 2, 3) if not per_example else (1, 2, 3)
        log_l1 = ops.mean(ops.abs(ops.log(mx + eps) - ops.log(my + eps)), axis=axes)
        sq = ops.square(mx - my)
        if form == "rave":
            lin = ops.mean(sq, axis=axes) / ops.maximum(ops.mean(ops.square(mx), axis=axes), _TINY)
            total = total + lin + log_l1
            continue
        lin = ops.sqrt(ops.maximum(ops.sum(sq, axis=axes), _TINY)) / ops.sqrt(
            ops.maximum(ops.sum(ops.square(mx), axis=axes), _TINY))
        if form == "seed":
            total = total + lin + ops.log(ops.sum(ops.abs(mx - my), axis=axes) + eps)
        else:
            total = total + lin + log_l1
    return total


@_register
class MultiScaleSpectralLoss(_ConfigLoss):
    """Multiscale spectral distance as a Keras loss (see ``multiscale_spectral_distance``).

    The default ``form="rave"`` is the RAVE reference code's distance, per scale
    ``mean((X-Y)^2)/mean(X^2) + mean|log(X+eps) - log(Y+eps)|``; ``"seed"`` is the
    seed's Frobenius ratio plus log of the L1 norm; ``"frobenius"`` the Frobenius
    ratio plus the mean log-magnitude L1. Works on ``[B, samples]`` and on
    multi-channel (e.g. PQMF band) signals ``[B, samples, C]``.

    Args:
        scales: FFT sizes (Hann windows of the same length).
        overlap: frame overlap; hop ``= int(n * (1 - overlap))`` (``n / 4`` by default).
        form: ``"rave"`` (default), ``"seed"`` or ``"frobenius"``.
        eps: offset inside the logarithms (RAVE: 1e-7).
        per_example: per-example distances averaged by ``reduction`` instead of RAVE's
            batch-pooled ratio (the default).
        name, reduction, dtype: as ``keras.losses.Loss``.

    Returns:
        A scalar loss.

    Example:
    >>> loss = MultiScaleSpectralLoss(scales=(256, 64))
    >>> x = keras.random.normal((2, 4096), seed=1)
    >>> float(loss(x, x))
    0.0
    """

    def __init__(self, scales=(2048, 1024, 512, 256, 128), overlap=0.75, form="rave",
                 eps=1e-7, per_example=False, name=None, reduction="sum_over_batch_size",
                 dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.scales = [int(s) for s in scales]
        self.overlap = float(overlap)
        if not 0.0 <= self.overlap < 1.0:
            raise ValueError(f"overlap must be in [0, 1); got {overlap!r}.")
        self.form = _check_choice(form, _SPECTRAL_FORMS, "form")
        self.eps = float(eps)
        self.per_example = bool(per_example)

    def call(self, y_true, y_pred):
        return multiscale_spectral_distance(y_true, y_pred, self.scales, self.overlap,
                                            self.form, self.eps, self.per_example)

    def _config(self):
        return {"scales": list(self.scales), "overlap": self.overlap, "form": self.form,
                "eps": self.eps, "per_example": self.per_example}


@_register
def log_spectral_distance(x, y, n_fft, hop, eps=1e-10):
    """Log-spectral distance in dB, averaged over frames.

    ``LSD = mean_t sqrt(mean_f (10 log10((|X|^2 + eps) / (|Y|^2 + eps)))^2)``; the
    mean square is floored before the root so gradients stay finite when ``x == y``.

    Args:
        x, y: waveforms ``[..., samples]``.
        n_fft: FFT size (Hann window, centred frames).
        hop: hop length.
        eps: power floor inside the logarithm.

    Returns:
        ``[...]`` (the leading axes of ``x``).

    Example:
    >>> x = keras.random.normal((1, 2048), seed=0)
    >>> float(log_spectral_distance(x, 2.0 * x, 256, 64)[0])  # doctest: +ELLIPSIS
    6.02...
    """
    px = stft_magnitude(x, n_fft, hop, power=2.0)
    py = stft_magnitude(y, n_fft, hop, power=2.0)
    db = (10.0 / np.log(10.0)) * (ops.log(px + eps) - ops.log(py + eps))
    per_frame = ops.sqrt(ops.maximum(ops.mean(ops.square(db), axis=-1), _TINY))
    return ops.mean(per_frame, axis=-1)


# ----------------------------------------------------------------------------- GAN
def _gan_sum(fn, *groups):
    """Sum ``fn`` over parallel lists (multi-scale discriminators); plain tensors pass."""
    groups = [_as_list(g) for g in groups]
    return sum(fn(*items) for items in zip(*groups))


def _m(x):
    return ops.mean(ops.convert_to_tensor(x))


@_register
def hinge_discriminator_loss(real_logits, fake_logits, scale=1.0):
    """``scale * (mean relu(1 - D(x)) + mean relu(1 + D(G(z))))`` (RAVE, SAGAN).

    MelGAN-VC's critic uses ``scale=0.5``. Lists (one entry per discriminator
    scale) are summed.
    """
    return _gan_sum(lambda r, f: scale * (_m(ops.relu(1.0 - r)) + _m(ops.relu(1.0 + f))),
                    real_logits, fake_logits)


@_register
def hinge_generator_loss(fake_logits):
    """``-mean D(G(z))`` (summed over a list of discriminator outputs)."""
    return _gan_sum(lambda f: -_m(f), fake_logits)


@_register
def nonsaturating_discriminator_loss(real_logits, fake_logits):
    """Sigmoid cross-entropy from logits: ``mean softplus(-D(x)) + mean softplus(D(G(z)))``.

    ``softplus(-l) = -log sigmoid(l)`` is evaluated stably for large ``|l|``.
    """
    return _gan_sum(lambda r, f: _m(ops.softplus(-r)) + _m(ops.softplus(f)),
                    real_logits, fake_logits)


@_register
def nonsaturating_generator_loss(fake_logits):
    """Non-saturating generator loss ``mean softplus(-D(G(z))) = -mean log sigmoid(D(G(z)))``."""
    return _gan_sum(lambda f: _m(ops.softplus(-f)), fake_logits)


@_register
def least_squares_discriminator_loss(real_logits, fake_logits):
    """LSGAN (labels 0/1): ``mean (D(x) - 1)^2 + mean D(G(z))^2``."""
    return _gan_sum(lambda r, f: _m(ops.square(r - 1.0)) + _m(ops.square(f)),
                    real_logits, fake_logits)


@_register
def least_squares_generator_loss(fake_logits):
    """LSGAN generator loss ``mean (D(G(z)) - 1)^2``."""
    return _gan_sum(lambda f: _m(ops.square(f - 1.0)), fake_logits)


_D_LOSSES = {"hinge": hinge_discriminator_loss,
             "nonsaturating": nonsaturating_discriminator_loss,
             "least_squares": least_squares_discriminator_loss}
_G_LOSSES = {"hinge": hinge_generator_loss,
             "nonsaturating": nonsaturating_generator_loss,
             "least_squares": least_squares_generator_loss}


@_register
def discriminator_loss(real_logits, fake_logits, kind="hinge"):
    """Discriminator loss by name: ``"hinge"``, ``"nonsaturating"`` or ``"least_squares"``.

    Example:
    >>> float(discriminator_loss(ops.ones((4,)), -ops.ones((4,)), "hinge"))
    0.0
    """
    return _D_LOSSES[_check_choice(kind, tuple(_D_LOSSES), "kind")](real_logits, fake_logits)


@_register
def generator_loss(fake_logits, kind="hinge"):
    """Generator loss by name: ``"hinge"``, ``"nonsaturating"`` or ``"least_squares"``."""
    return _G_LOSSES[_check_choice(kind, tuple(_G_LOSSES), "kind")](fake_logits)


@_register
def feature_matching(real_features, fake_features, relative=False, eps=1e-7):
    """L1 feature matching summed over discriminator layers.

    ``sum_l mean|F_l(x) - F_l(G(z))|``; with ``relative`` each term is divided by
    ``mean|F_l(x)|`` (floored at ``eps``). Nested lists (layers of several
    discriminators) are flattened. Weighting (RAVE uses 10) is left to the caller.

    Args:
        real_features: list of tensors from the discriminator on real data.
        fake_features: matching list on generated data.
        relative: normalise each layer by the real features' mean magnitude.
        eps: floor of that normaliser.

    Returns:
        A scalar.

    Example:
    >>> float(feature_matching([ops.ones((2, 3))], [ops.zeros((2, 3))]))
    1.0
    """
    real, fake = keras.tree.flatten(real_features), keras.tree.flatten(fake_features)
    if len(real) != len(fake):
        raise ValueError(f"feature_matching: {len(real)} real vs {len(fake)} fake layers.")
    total = 0.0
    for r, f in zip(real, fake):
        r, f = ops.convert_to_tensor(r), ops.convert_to_tensor(f)
        term = ops.mean(ops.abs(r - f))
        if relative:
            term = term / ops.maximum(ops.mean(ops.abs(r)), eps)
        total = total + term
    return total
