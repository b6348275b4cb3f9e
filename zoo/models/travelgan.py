"""TraVeLGAN as MelGAN-VC applies it to spectrograms (Pasini 2019, "MelGAN-VC"; Amodio &
Krishnaswamy 2019, "TraVeLGAN: Image-to-image translation by transformation vector learning").

Unpaired translation of domain A (the dataset's first domain) into domain B on
normalised log-mel features ``[batch, frames, n_mels]``:

* generator ``G``: a U-Net along time with spectral-norm convolutions and no bias.
  MelGAN-VC's first Conv2D of kernel ``(n_mels, 3)`` collapsing the frequency axis
  is, exactly, a Conv1D of width 3 with the mel bands as input channels, and its
  final ``(n_mels, 1)`` transposed conv is a width-1 Conv1D back to ``n_mels``
  channels; they are written that way here (same maps, same spectral norms).
  Two stride-2 convs (widths 9, 7), an upsample + conv decoder with skips,
  BatchNorm except in the last decoder conv, tanh output. Works on any width that
  is a multiple of 4 frames.
* critic ``C``: spectral-norm convs on the joined ``num_chunks * chunk_frames``
  crop, Flatten, spectral-norm Dense(1).
* siamese ``S``: the generator's down path without spectral norm, Flatten,
  Dense(``siamese_dim``), on single chunks.

Chunk-then-join: each training crop's first ``num_chunks * chunk_frames`` frames
are split into ``num_chunks`` chunks, each converted by ``G``, and joined before
``C`` sees them, so seams are penalised.

Losses (Pasini 2019, eqs. 1-5): critic ``1/2 [relu(1 - C(b)) + relu(1 + C(G(a)))]``;
generator + siamese ``-C(G(a)) + travel_weight (TraVeL + margin) +
identity_weight |G(b) - b|`` with ``t = S(a1) - S(a3)``, ``t' = S(G(a1)) - S(G(a3))``
(first and last chunk of each crop), ``TraVeL = mean (t - t')^2 - mean cos(t, t')``,
``margin = mean max(0, delta - ||t||)^2``. (The MelGAN-VC code applies its margin
to ``S(G(a1)) - S(a1)``; the paper defines it on ``t``, as here.)

Conversion of any length and rate comes from the base class
(:class:`zoo.models.translation.SpectrogramTranslation`): features -> chunks of
``chunk_frames`` with 50 % overlap -> ``G`` in batches of at most ``max_chunks`` ->
``sin^2`` crossfade -> Griffin-Lim (or, with ``inversion="gradient"``, the
reference's Adam-on-L1 mel inversion) -> the input's length.

Variants (``variant``):

* ``"melgan_vc"`` (default): everything above.
* ``"travelgan"``: the original TraVeLGAN (Amodio 2019) losses. TraVeL vectors
  over ALL ordered pairs ``i != j`` of siamese inputs in the batch,
  ``t_ij = S(x_i) - S(x_j)``, ``t'_ij = S(G(x_i)) - S(G(x_j))``
  (:func:`pairwise_travel_loss`, the same distance - cosine form averaged over
  pairs). The siamese sees single chunks, so the pairs are over all
  ``batch * num_chunks`` chunks of the batch (chunks of one crop and of
  different crops alike). Margin ``mean_ij max(0, margin - ||t_ij||^2)``
  (:func:`pairwise_margin_loss`; margin 10), sigmoid cross-entropy
  (non-saturating) GAN losses, identity weight 0 by default. Its 1:1
  critic/generator schedule and siamese size 1000 are in
  ``recipes/travelgan_original.toml``.
"""
import keras
from keras import layers as kl
from keras import ops

from layers import (SNConv1D, SNDense, hinge_discriminator_loss, hinge_generator_loss,
                    nonsaturating_discriminator_loss, nonsaturating_generator_loss)
from zoo.engine import AdversarialModel, Objective, check_positive
from zoo.models.chunking import pad_to_multiple
from zoo.models.spectral import SpectralFrontEnd
from zoo.models.translation import SpectrogramTranslation

__all__ = ["TraVeLGAN", "travel_loss", "margin_loss", "identity_loss",
           "pairwise_travel_loss", "pairwise_margin_loss"]

VARIANTS = ("melgan_vc", "travelgan")


# ------------------------------------------------------------------------- losses
def _l2_normalize(x, eps=1e-12):
    return x * ops.rsqrt(ops.maximum(ops.sum(ops.square(x), axis=-1, keepdims=True), eps))


def travel_loss(s_a1, s_a3, s_ga1, s_ga3):
    """TraVeL loss: ``mean (t - t')^2 - mean_batch cos(t, t')``.

    ``t = s_a1 - s_a3`` (siamese vectors of two source chunks), ``t' = s_ga1 - s_ga3``
    (of their translations); all ``[batch, dim]``.
    """
    s_a1, s_a3, s_ga1, s_ga3 = (ops.convert_to_tensor(s) for s in (s_a1, s_a3, s_ga1, s_ga3))
    t, t_gen = s_a1 - s_a3, s_ga1 - s_ga3
    distance = ops.mean(ops.square(t - t_gen))
    cosine = ops.mean(ops.sum(_l2_normalize(t) * _l2_normalize(t_gen), axis=-1))
    return distance - cosine


def margin_loss(s_a1, s_a3, delta=2.0):
    """Siamese margin: ``mean max(0, delta - ||s_a1 - s_a3||)^2``."""
    s_a1, s_a3 = ops.convert_to_tensor(s_a1), ops.convert_to_tensor(s_a3)
    norm = ops.sqrt(ops.sum(ops.square(s_a1 - s_a3), axis=-1) + 1e-12)
    return ops.mean(ops.square(ops.relu(delta - norm)))


def _pair_differences(s):
    """``[N, dim]`` -> (``t [N, N, dim]`` with ``t_ij = s_i - s_j``, off-diagonal mask, pairs)."""
    s = ops.convert_to_tensor(s)
    n = s.shape[0] if s.shape[0] is not None else ops.shape(s)[0]
    mask = 1.0 - ops.eye(n, dtype=s.dtype)
    return ops.expand_dims(s, 1) - ops.expand_dims(s, 0), mask, ops.sum(mask)


def pairwise_travel_loss(s_x, s_g):
    """Original TraVeLGAN TraVeL loss over all ordered pairs ``i != j`` of the batch.

    ``t_ij = s_x[i] - s_x[j]``, ``t'_ij = s_g[i] - s_g[j]`` (``s_g``: siamese vectors of
    the translations of the same inputs, ``[N, dim]``, ``N >= 2``);
    ``mean_ij mean_d (t - t')^2 - mean_ij cos(t_ij, t'_ij)``.
    """
    t, mask, pairs = _pair_differences(s_x)
    t_gen, _, _ = _pair_differences(s_g)
    distance = ops.sum(mask * ops.mean(ops.square(t - t_gen), axis=-1)) / pairs
    cosine = ops.sum(mask * ops.sum(_l2_normalize(t) * _l2_normalize(t_gen), axis=-1)) / pairs
    return distance - cosine


def pairwise_margin_loss(s_x, delta=10.0):
    """Original TraVeLGAN siamese margin: ``mean_{i != j} max(0, delta - ||s_i - s_j||^2)``."""
    t, mask, pairs = _pair_differences(s_x)
    return ops.sum(mask * ops.relu(delta - ops.sum(ops.square(t), axis=-1))) / pairs


def identity_loss(b, g_b):
    """Identity mapping: mean absolute error between ``G(b)`` and ``b``."""
    return ops.mean(ops.abs(ops.convert_to_tensor(g_b) - ops.convert_to_tensor(b)))


# -------------------------------------------------------------------------- model
@keras.saving.register_keras_serializable(package="zoo")
class TraVeLGAN(SpectrogramTranslation, AdversarialModel):
    """MelGAN-VC / TraVeLGAN: waveform in domain A -> waveform in domain B.

    ``fit`` takes paired batches ``(a, b)`` of waveform crops ``[batch, samples]``
    (one per domain, drawn independently: the pairing is unsupervised).

    Args:
        sample_rate, n_fft, hop_length, n_mels, fmin, fmax, min_db, ref_db,
            griffin_lim_iters, mel_inversion_iters: the spectral front-end (see
            ``SpectralFrontEnd``).
        chunk_frames: frames per generator chunk (a multiple of 4).
        num_chunks: chunks per training crop (crops must give at least
            ``num_chunks * chunk_frames`` frames).
        generator_channels, critic_channels: convolution widths.
        siamese_dim: siamese latent size.
        travel_weight, identity_weight, margin: loss weights and margin delta
            (``identity_weight`` and ``margin`` default to 0.5 and 2.0 for
            ``"melgan_vc"``, 0.0 and 10.0 for ``"travelgan"``).
        variant: ``"melgan_vc"`` (hinge GAN, first/last-chunk TraVeL,
            ``max(0, margin - ||t||)^2``) or ``"travelgan"`` (the original: sigmoid
            cross-entropy GAN, all-pairs TraVeL, ``max(0, margin - ||t||^2)``);
            see the module docstring.
        max_chunks: chunks converted per generator call by :meth:`convert`
            (bounds memory on long inputs).

    Example:
    >>> model = TraVeLGAN(n_fft=256, hop_length=64, n_mels=32, chunk_frames=8,
    ...                   generator_channels=16, critic_channels=16, siamese_dim=8)
    >>> model.build()
    >>> model.convert(np.zeros(4000, "float32")).shape
    (4000,)
    """

    def __init__(self, sample_rate=16000, n_fft=1152, hop_length=192, n_mels=192, fmin=0.0,
                 fmax=None, min_db=-100.0, ref_db=0.0, griffin_lim_iters=32,
                 mel_inversion_iters=30, chunk_frames=24,
                 num_chunks=3, generator_channels=256, critic_channels=512, siamese_dim=128,
                 travel_weight=10.0, identity_weight=None, margin=None, max_chunks=256,
                 variant="melgan_vc", **kwargs):
        super().__init__(**kwargs)
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        check_positive(generator_channels=generator_channels, critic_channels=critic_channels,
                       siamese_dim=siamese_dim)
        self.variant = variant
        original = variant == "travelgan"
        if identity_weight is None:
            identity_weight = 0.0 if original else 0.5
        if margin is None:
            margin = 10.0 if original else 2.0
        if int(chunk_frames) < 4 or int(chunk_frames) % 4:
            raise ValueError(f"chunk_frames must be a positive multiple of 4, got {chunk_frames}")
        if int(num_chunks) < 2:
            raise ValueError(f"num_chunks must be >= 2 (the TraVeL loss needs two chunks), "
                             f"got {num_chunks}")
        if int(max_chunks) < 1:
            raise ValueError(f"max_chunks must be >= 1, got {max_chunks}")
        self.frontend = SpectralFrontEnd(sample_rate, n_fft, hop_length, n_mels, fmin, fmax,
                                         min_db, ref_db, griffin_lim_iters, mel_inversion_iters,
                                         name="frontend")
        self.chunk_frames, self.num_chunks = int(chunk_frames), int(num_chunks)
        self.generator_channels, self.critic_channels = int(generator_channels), int(critic_channels)
        self.siamese_dim = int(siamese_dim)
        self.travel_weight, self.identity_weight = float(travel_weight), float(identity_weight)
        self.margin, self.max_chunks = float(margin), int(max_chunks)
        self.generator = self._build_generator()
        self.critic = self._build_critic()
        self.siamese = self._build_siamese()

    # ----------------------------------------------------------------- networks
    def _down_path(self, x, sn, name):
        conv = SNConv1D if sn else kl.Conv1D
        c = self.generator_channels
        h1 = conv(c, 3, padding="same", use_bias=False, name=f"{name}_conv1")(x)
        h1 = kl.LeakyReLU(0.2)(kl.BatchNormalization(name=f"{name}_bn1")(h1))
        h2 = conv(c, 9, strides=2, padding="same", use_bias=False, name=f"{name}_conv2")(h1)
        h2 = kl.LeakyReLU(0.2)(kl.BatchNormalization(name=f"{name}_bn2")(h2))
        h3 = conv(c, 7, strides=2, padding="same", use_bias=False, name=f"{name}_conv3")(h2)
        h3 = kl.LeakyReLU(0.2)(kl.BatchNormalization(name=f"{name}_bn3")(h3))
        return h1, h2, h3

    def _build_generator(self):
        m, c = self.frontend.n_mels, self.generator_channels
        x = keras.Input((None, m))
        h1, h2, h3 = self._down_path(x, True, "down")
        u = SNConv1D(c, 7, padding="same", use_bias=False, name="up_conv1")(kl.UpSampling1D(2)(h3))
        u = kl.LeakyReLU(0.2)(kl.BatchNormalization(name="up_bn1")(u))
        u = kl.Concatenate()([u, h2])
        u = SNConv1D(c, 9, padding="same", use_bias=False, name="up_conv2")(kl.UpSampling1D(2)(u))
        u = kl.Concatenate()([kl.LeakyReLU(0.2)(u), h1])
        y = SNConv1D(m, 1, use_bias=False, activation="tanh", name="to_mel")(u)
        return keras.Model(x, y, name="generator")

    def _build_critic(self):
        c = self.critic_channels
        x = keras.Input((self.num_chunks * self.chunk_frames, self.frontend.n_mels))
        h = SNConv1D(c, 3, padding="same", use_bias=False, name="conv1")(x)
        h = SNConv1D(c, 9, strides=2, padding="same", use_bias=False, name="conv2")(kl.LeakyReLU(0.2)(h))
        h = SNConv1D(c, 7, strides=2, padding="same", use_bias=False, name="conv3")(kl.LeakyReLU(0.2)(h))
        y = SNDense(1, name="score")(kl.Flatten()(kl.LeakyReLU(0.2)(h)))
        return keras.Model(x, y, name="discriminator")

    def _build_siamese(self):
        x = keras.Input((self.chunk_frames, self.frontend.n_mels))
        _, _, h = self._down_path(x, False, "siamese")
        y = kl.Dense(self.siamese_dim, name="vector")(kl.Flatten()(h))
        return keras.Model(x, y, name="siamese")

    def build(self, input_shape=None):
        self.frontend(ops.zeros((1, 2 * self.frontend.n_fft)))
        self.generator.build((None, None, self.frontend.n_mels))
        self.built = True

    # --------------------------------------------------------------- features
    @property
    def crop_frames(self):
        """Frames of a training crop that are used: ``num_chunks * chunk_frames``."""
        return self.num_chunks * self.chunk_frames

    def translate_chunks(self, features, training=False):
        """``G`` on features of any width (padded with silence to a multiple of 4)."""
        frames = features.shape[1] if features.shape[1] is not None else ops.shape(features)[1]
        out = self.generator(pad_to_multiple(features, 4, value=self.SILENCE), training=training)
        return out[:, :frames]

    def _crop_chunks(self, waveform):
        """Training crop -> ``(joined [B, W, M], chunks [B * num_chunks, w, M])``."""
        feats = self.frontend(ops.convert_to_tensor(waveform, "float32"))
        if feats.shape[1] is not None and feats.shape[1] < self.crop_frames:
            raise ValueError(
                f"training crops give {feats.shape[1]} frames; TraVeLGAN needs at least "
                f"{self.crop_frames} (num_chunks * chunk_frames): crop_length >= "
                f"{(self.crop_frames - 1) * self.frontend.hop_length}")
        joined = feats[:, : self.crop_frames]
        return joined, ops.reshape(joined, (-1, self.chunk_frames, self.frontend.n_mels))

    def _join(self, chunks):
        return ops.reshape(chunks, (-1, self.crop_frames, self.frontend.n_mels))

    # ----------------------------------------------------------------- losses
    def objectives(self):
        return [
            Objective("discriminator", self.critic, self.discriminator_loss,
                      metrics=("real_score", "fake_score"), role="discriminator"),
            Objective("generator", [self.generator, self.siamese], self.generator_loss,
                      metrics=("adversarial", "travel", "margin", "identity")),
        ]

    def discriminator_loss(self, data, training=False):
        a, b = self.split_domains(data)
        _, a_chunks = self._crop_chunks(a)
        b_joined, _ = self._crop_chunks(b)
        fake = ops.stop_gradient(self._join(self.generator(a_chunks, training=training)))
        real_score = self.critic(b_joined, training=training)
        fake_score = self.critic(fake, training=training)
        if self.variant == "travelgan":
            loss = nonsaturating_discriminator_loss(real_score, fake_score)
        else:
            loss = hinge_discriminator_loss(real_score, fake_score, scale=0.5)
        return loss, {"real_score": ops.mean(real_score), "fake_score": ops.mean(fake_score)}

    def generator_loss(self, data, training=False):
        a, b = self.split_domains(data)
        _, a_chunks = self._crop_chunks(a)
        _, b_chunks = self._crop_chunks(b)
        n = self.num_chunks
        g_a = self.generator(a_chunks, training=training)
        if self.variant == "travelgan":
            return self._original_generator_loss(a_chunks, b_chunks, g_a, training)
        g_b = self.generator(b_chunks, training=training)
        adversarial = hinge_generator_loss(self.critic(self._join(g_a), training=training))
        shape = (-1, n, self.chunk_frames, self.frontend.n_mels)
        a_by_crop, g_by_crop = ops.reshape(a_chunks, shape), ops.reshape(g_a, shape)
        pair = ops.concatenate([a_by_crop[:, 0], a_by_crop[:, n - 1],
                                g_by_crop[:, 0], g_by_crop[:, n - 1]], axis=0)
        s_a1, s_a3, s_g1, s_g3 = ops.split(self.siamese(pair, training=training), 4, axis=0)
        travel = travel_loss(s_a1, s_a3, s_g1, s_g3)
        margin = margin_loss(s_a1, s_a3, self.margin)
        identity = identity_loss(b_chunks, g_b)
        loss = adversarial + self.travel_weight * (travel + margin) + self.identity_weight * identity
        return loss, {"adversarial": adversarial, "travel": travel, "margin": margin,
                      "identity": identity}

    def _original_generator_loss(self, a_chunks, b_chunks, g_a, training):
        """Original TraVeLGAN: non-saturating GAN + all-pairs TraVeL and margin on chunks."""
        adversarial = nonsaturating_generator_loss(self.critic(self._join(g_a), training=training))
        s = self.siamese(ops.concatenate([a_chunks, g_a], axis=0), training=training)
        s_a, s_g = ops.split(s, 2, axis=0)
        travel = pairwise_travel_loss(s_a, s_g)
        margin = pairwise_margin_loss(s_a, self.margin)
        loss = adversarial + self.travel_weight * (travel + margin)
        if self.identity_weight:
            identity = identity_loss(b_chunks, self.generator(b_chunks, training=training))
            loss = loss + self.identity_weight * identity
        else:  # not computed (no G(b) pass); logged as 0
            identity = ops.zeros_like(adversarial)
        return loss, {"adversarial": adversarial, "travel": travel, "margin": margin,
                      "identity": identity}

    def call(self, waveform, training=False):
        """Waveforms -> converted waveforms (the in-graph :meth:`translate`)."""
        return self.translate(waveform)

    def get_config(self):
        return {**super().get_config(), **self.frontend.arguments(),
                "chunk_frames": self.chunk_frames, "num_chunks": self.num_chunks,
                "generator_channels": self.generator_channels,
                "critic_channels": self.critic_channels, "siamese_dim": self.siamese_dim,
                "travel_weight": self.travel_weight, "identity_weight": self.identity_weight,
                "margin": self.margin, "max_chunks": self.max_chunks, "variant": self.variant}

