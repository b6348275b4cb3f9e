"""RAVE: a realtime waveform VAE with a 16-band PQMF and two-stage training.

Signal path (reimplemented from Caillon & Esling 2021, "RAVE: A variational
autoencoder for fast and high-quality neural audio synthesis")::

    waveform [B, T] -> PQMF analysis -> bands [B, T/M, M]
      -> encoder: conv k7 -> per ratio r: LeakyReLU, conv k=2r+1 stride r (channels x2)
         -> LeakyReLU, conv k3 -> mean, scale;  std = softplus(scale) + 1e-4
      -> z [B, T / (M prod(ratios)), latent_dim]
      -> decoder: conv k7 -> per ratio (reversed): LeakyReLU, upsample x r + conv k=2r
         (channels / 2), residual units (dilations 1, 3, 5)
         -> waveform head (tanh) x loudness head (2 sigmoid(x)^2.3 + 1e-7)
            + filtered-noise head (stage 2): white noise in each band x a learned
              per-band envelope (a 16-band filter, 2 sigmoid(x - 5)^2.3)
      -> bands [B, T/M, M] -> PQMF synthesis -> waveform [B, T]

That is the ``light`` layout (the default). ``layout="v1"`` and ``"v2"`` follow the
reference's two layouts (recipes ``rave_v1``, ``rave_v2``, parameter counts within
0.5 % of the reference's 17.6M and 31.5M): v1's encoder head is a grouped conv k5,
its decoder runs the stages in ratio order with residual layers of two k3 convs
(dilated, then not); v2 puts residual dilated units (k3 + 1x1, per-stage dilations)
before each strided conv k=2r of the encoder and after each upsampling of the
decoder. The light layout at v1's sizes (channels capped at 512) has 10.3M
parameters: it drops the second k3 conv of each decoder unit, the encoder's last
doubling of channels, and the largest decoder stage (it mirrors the encoder, so the
stride-2 stage comes first, at the widest channels).

Differences from the reference, on purpose (every layout):

* the light layout upsamples by "repeat r, then a convolution of width 2r" (no
  checkerboard pattern; ``layers.upsample_conv1d``: one width-3 convolution at the input
  rate, 3 / 2r of the multiplies of the repeated form); v1 and v2 use the reference's
  transposed convolution of width 2r, stride r (``layers.transposed_upsample_conv1d``:
  one width-2 convolution at the input rate, so 2 / 3 of the light form's multiplies,
  causal or centred as PyTorch's ``padding=r // 2``). The same parameters either way,
  and both stream exactly;
* no BatchNorm in the encoder (a frozen encoder must be frozen exactly, and batch
  statistics break offline/streaming equality), convolutions keep their biases, and
  every layout has the same three small heads (the reference v1's noise generator
  is three strided convs, v2's head an amplitude-modulated waveform conv): together
  under 0.3 % of the parameters;
* the KL keeps its 1/2 (the reference's is twice the KL: halve ``beta`` to compare);
* the feature-matching weight is applied once (the reference applies it twice,
  effectively 100 in v1; set ``feature_matching_weight`` to reproduce that);
* ``causal=True`` makes every convolution and the PQMF causal, so ``stream_*``
  processing block by block equals offline processing to float tolerance for any
  block that is a multiple of the compression ratio, strides included (the
  reference's cached convolutions lose the stride phase in the encoder and flip a
  sign in decoder streaming).

Training: **stage 1** (steps ``< warmup``) trains encoder + decoder with the
multiscale spectral distance on the 16 bands and on the full-band signal plus
``beta(step)`` times the KL; **stage 2** freezes the encoder (``trainable=False``:
its variables leave the optimizer), enables the noise head and trains the decoder
with the spectral distance + hinge adversarial loss + feature matching against a
multiscale (v1) or multiscale + multi-period (v2) discriminator. The stage is part
of the compile config, so a checkpoint from either side of the switch resumes into
the right stage; the trainer splits ``fit`` at the switch and recompiles once
(``zoo.training.trainer``), which frees the stage-1 step before the stage-2 step is
built, so peak memory is that of the larger step, not of both.

Latent fidelity: :meth:`fit_latent_pca` runs a PCA of posterior means over clips;
:func:`fidelity_dims` gives the smallest dimension count whose cumulative explained
variance reaches a fidelity ``f``. The PCA is stored in the model (non-trainable
weights), so exports can keep the first ``r`` principal dimensions
(``encode_pca``) and decode from ``r`` dimensions, drawing the rest from the prior
(``decode_pca``).
"""
import math

import keras
import numpy as np
from keras import ops

from layers import (PQMF, CausalConv1D, ResidualBlock1D, fold_transposed_kernel,
                    fold_upsample_kernel, gaussian_kl, transposed_upsample_conv1d,
                    upsample_conv1d)
from layers.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from layers.losses import feature_matching, hinge_discriminator_loss, multiscale_spectral_distance
from zoo.engine import (AdversarialModel, Capability, Objective, check_positive, inference,
                        weight_constant)
from zoo.models.chunking import pad_to_multiple
from zoo.models.latent import LatentFidelity, fidelity_dims, latent_pca


def _leaky(x):
    return ops.leaky_relu(x, 0.2)


def _conv(filters, kernel, causal, strides=1, name=None, groups=1):
    """A causal (streamable) or centred ('same') 1-D convolution."""
    if causal:
        return CausalConv1D(filters, kernel, strides=strides, groups=groups, name=name)
    return keras.layers.Conv1D(filters, kernel, strides=strides, padding="same", groups=groups,
                               name=name)


LAYOUTS = ("light", "v1", "v2")


def stage_dilations(dilations, num_stages):
    """Residual-unit dilations per stage (encoder order): a flat list is used for every
    stage, a list of lists gives each stage its own (RAVE v2: ``[[1, 3, 9]] * 3 + [[1, 3]]``)."""
    dilations = list(dilations)
    if dilations and all(isinstance(d, (list, tuple)) for d in dilations):
        if len(dilations) != num_stages:
            raise ValueError(f"dilations: {len(dilations)} lists for {num_stages} ratios")
        return tuple(tuple(int(x) for x in d) for d in dilations)
    return (tuple(int(d) for d in dilations),) * num_stages


def dilations_config(dilations):
    """``dilations`` as plain lists (one list, or one per stage) for ``get_config``."""
    return [list(d) if isinstance(d, (list, tuple)) else int(d) for d in dilations]


def _widths(capacity, num_stages, max_channels):
    """Channels at the band rate, then after each downsampling stage (doubling, capped)."""
    widths = [int(capacity)]
    for _ in range(num_stages):
        widths.append(min(widths[-1] * 2, int(max_channels)))
    return widths


# --------------------------------------------------------------------------- networks
@keras.saving.register_keras_serializable(package="zoo")
class RaveEncoder(keras.layers.Layer):
    """PQMF bands ``[B, F, M]`` -> ``(mean, std)`` ``[B, F / prod(ratios), latent_dim]``.

    ``layout``: ``"light"`` (conv k7, per ratio r a conv k=2r+1 stride r, head conv k3),
    ``"v1"`` (RAVE v1: the same stages, head a grouped conv k5, groups 2: mean and scale
    from separate halves of the channels) or ``"v2"`` (RAVE v2: before each strided conv
    k=2r, residual dilated units with the stage's ``dilations``; head conv k3).
    """

    def __init__(self, capacity, latent_dim, ratios, max_channels, causal, layout="light",
                 dilations=(), **kwargs):
        super().__init__(**kwargs)
        self.capacity, self.latent_dim, self.ratios = int(capacity), int(latent_dim), tuple(ratios)
        self.max_channels, self.causal, self.layout = int(max_channels), bool(causal), layout
        self.dilations = stage_dilations(dilations, len(self.ratios)) if layout == "v2" else ()
        widths = _widths(self.capacity, len(self.ratios), self.max_channels)
        # the layers in signal order: convolutions and (v2) residual units
        self.convs = [_conv(self.capacity, 7, causal, name="conv_in")]
        for i, r in enumerate(self.ratios):
            if layout == "v2":
                self.convs += [ResidualBlock1D(3, d, causal=causal, name=f"res_{i}_{j}")
                               for j, d in enumerate(self.dilations[i])]
            kernel = 2 * r if layout == "v2" else 2 * r + 1
            self.convs.append(_conv(widths[i + 1], kernel, causal, strides=r, name=f"down_{i}"))
        self.head = (_conv(2 * self.latent_dim, 5, causal, name="head", groups=2)
                     if layout == "v1" else _conv(2 * self.latent_dim, 3, causal, name="head"))

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.convs + [self.head]:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)

    def _split(self, h):
        mean, scale = ops.split(h, 2, axis=-1)
        return mean, ops.softplus(scale) + 1e-4

    def _apply(self, layer, h, first):
        """Residual units take their input as is; convolutions after the first take
        LeakyReLU of it."""
        return h if first or isinstance(layer, ResidualBlock1D) else _leaky(h)

    def call(self, bands):
        h = bands
        for i, layer in enumerate(self.convs):
            h = layer(self._apply(layer, h, i == 0))
        return self._split(self.head(_leaky(h)))

    def initial_state(self, batch_size):
        return [layer.initial_state(batch_size) for layer in self.convs + [self.head]]

    def stream(self, bands, state):
        h, new = bands, []
        for i, (layer, st) in enumerate(zip(self.convs + [self.head], state)):
            h, s = layer.stream(self._apply(layer, h, i == 0), st)
            new.append(s)
        return self._split(h), new

    def get_config(self):
        return {**super().get_config(), "capacity": self.capacity, "latent_dim": self.latent_dim,
                "ratios": list(self.ratios), "max_channels": self.max_channels,
                "causal": self.causal, "layout": self.layout,
                "dilations": dilations_config(self.dilations)}


@keras.saving.register_keras_serializable(package="zoo")
class RaveDecoder(keras.layers.Layer):
    """Latents ``[B, L, latent_dim]`` -> ``(bands, loudness amplitude, noise envelope)``
    at the band rate: ``[B, L prod(ratios), M]``, ``[B, ., 1]``, ``[B, ., M]``.

    Per stage: LeakyReLU, upsampling by r (channels halved: repeat r then conv k=2r in
    the light layout, a transposed conv k=2r stride r in v1 and v2), then residual
    units (``dilations``: one list, or one per ratio in encoder order).
    ``layout``: ``"light"`` (stages in reversed ratio order, units a dilated k3 conv +
    1x1), ``"v1"`` (RAVE v1: stages in ratio order, units a dilated k3 conv + a k3 conv)
    or ``"v2"`` (RAVE v2: reversed order, input conv k3 instead of k7).
    """

    def __init__(self, capacity, num_bands, ratios, dilations, max_channels, causal,
                 layout="light", **kwargs):
        super().__init__(**kwargs)
        self.capacity, self.num_bands, self.ratios = int(capacity), int(num_bands), tuple(ratios)
        self.max_channels, self.causal, self.layout = int(max_channels), bool(causal), layout
        per_stage = stage_dilations(dilations, len(self.ratios))
        per_stage_given = any(isinstance(d, (list, tuple)) for d in dilations)
        self.dilations = per_stage if per_stage_given else per_stage[0]
        widths = _widths(self.capacity, len(self.ratios), self.max_channels)
        order = list(range(len(self.ratios)))
        if layout != "v1":
            order = order[::-1]  # mirror the encoder
        self.up_ratios = tuple(self.ratios[i] for i in order)
        self.conv_in = _conv(widths[-1], 3 if layout == "v2" else 7, causal, name="conv_in")
        self.ups, self.res = [], []
        for i, stage in enumerate(order):
            out, r = widths[-2 - i], self.ratios[stage]
            # weights of the width-2r conv after a repeat, run as upsample_conv1d
            self.ups.append(_conv(out, 2 * r, causal, name=f"up_{i}"))
            self.res.append([ResidualBlock1D(3, d, causal=causal, name=f"res_{i}_{j}",
                                             output_kernel_size=3 if layout == "v1" else 1)
                             for j, d in enumerate(per_stage[stage])])
        self.wave = _conv(self.num_bands, 7, causal, name="wave")
        self.loudness = _conv(1, 7, causal, name="loudness")
        self.noise = _conv(self.num_bands, 3, causal, name="noise")

    def build(self, input_shape):
        shape = tuple(input_shape)
        self.conv_in.build(shape)
        shape = self.conv_in.compute_output_shape(shape)
        for r, up, blocks in zip(self.up_ratios, self.ups, self.res):
            shape = (shape[0], None if shape[1] is None else shape[1] * r, shape[2])
            up.build(shape)
            shape = up.compute_output_shape(shape)
            for b in blocks:
                b.build(shape)
        for head in (self.wave, self.loudness, self.noise):
            head.build(shape)

    def _heads(self, h, stream_state=None):
        h = _leaky(h)
        outs, new = [], []
        for i, head in enumerate((self.wave, self.loudness, self.noise)):
            if stream_state is None:
                outs.append(head(h))
            else:
                y, s = head.stream(h, stream_state[i])
                outs.append(y)
                new.append(s)
        wave, loud, noise = outs
        amplitude = 2.0 * ops.power(ops.sigmoid(loud), 2.3) + 1e-7
        envelope = 2.0 * ops.power(ops.sigmoid(noise - 5.0), 2.3)
        return (ops.tanh(wave), amplitude, envelope), new

    @property
    def transposed(self):
        """Whether the upsampling is RAVE's transposed convolution (the v1 and v2
        layouts) rather than "repeat, then convolve" (light)."""
        return self.layout in ("v1", "v2")

    def _upsample(self, i, h, state=None):
        """Stage ``i``'s upsampling of ``h``, with its polyphase kernel folded once per
        weights at eager inference (``weight_constant``)."""
        r, up = self.up_ratios[i], self.ups[i]
        causal = self.causal or state is not None
        if self.transposed:
            folded = weight_constant(self, f"up{i}",
                                     lambda k: fold_transposed_kernel(k, r, causal), up.kernel)
            return transposed_upsample_conv1d(h, up.kernel, up.bias, r, causal, state=state,
                                              folded=folded)
        folded = weight_constant(self, f"up{i}", lambda k: fold_upsample_kernel(k, r), up.kernel)
        return upsample_conv1d(h, up.kernel, up.bias, r, causal, state=state, folded=folded)

    def call(self, z):
        h = self.conv_in(z)
        for i, blocks in enumerate(self.res):
            h = self._upsample(i, _leaky(h))
            for b in blocks:
                h = b(h)
        return self._heads(h)[0]

    def initial_state(self, batch_size):
        state = [self.conv_in.initial_state(batch_size)]
        # the upsampling's state: its last input frame (transposed) or two (repeated)
        frames = 1 if self.transposed else 2
        for up, blocks in zip(self.ups, self.res):
            state.append(ops.zeros((batch_size, frames, up.kernel.shape[1]), self.compute_dtype))
            state += [b.initial_state(batch_size) for b in blocks]
        return state + [c.initial_state(batch_size) for c in (self.wave, self.loudness, self.noise)]

    def stream(self, z, state):
        it, new = iter(state), []
        h, s = self.conv_in.stream(z, next(it))
        new.append(s)
        for i, blocks in enumerate(self.res):
            h, s = self._upsample(i, _leaky(h), state=next(it))
            new.append(s)
            for b in blocks:
                h, s = b.stream(h, next(it))
                new.append(s)
        out, heads = self._heads(h, [next(it) for _ in range(3)])
        return out, new + heads

    def get_config(self):
        return {**super().get_config(), "capacity": self.capacity, "num_bands": self.num_bands,
                "ratios": list(self.ratios), "dilations": dilations_config(self.dilations),
                "max_channels": self.max_channels, "causal": self.causal, "layout": self.layout}


# ------------------------------------------------------------------------------ model
@keras.saving.register_keras_serializable(package="zoo")
class RAVE(AdversarialModel):
    """Realtime audio VAE (RAVE) on raw waveforms, trained in two stages.

    Args:
        sample_rate: audio rate (the recipes use 16 kHz on CPU, 44.1/48 kHz for v1/v2).
        num_bands: PQMF bands ``M`` (16).
        attenuation: PQMF prototype stopband attenuation in dB (100).
        capacity: channels of the first encoder layer / last decoder layer; doubled
            per stride up to ``max_channels``.
        max_channels: channel cap.
        latent_dim: latent channels (128 in the reference).
        ratios: encoder strides (``(4, 4, 4, 2)`` in v1: compression
            ``M * prod(ratios) = 2048``).
        dilations: dilations of the residual units of each stage: one list for every
            stage, or one list per ratio (v2: ``[[1, 3, 9], [1, 3, 9], [1, 3, 9], [1, 3]]``).
        causal: causal convolutions and PQMF (streamable) or centred ones.
        layout: ``"light"`` (decoder units a dilated k3 conv + a 1x1 conv, no residual
            units in the encoder), ``"v1"`` or ``"v2"``: the reference's encoder and
            decoder layouts, at its parameter count with the recipes ``rave_v1``
            (17.6M) and ``rave_v2`` (31.5M); see :class:`RaveEncoder`,
            :class:`RaveDecoder`. The light layout of ``rave_v1``'s sizes has 10.3M.
        beta: KL weight after warm-up.
        beta_start: KL weight at step 0; with ``beta_warmup_steps > 0`` it moves
            log-linearly to ``beta`` (v2: 1e-6 -> 5e-2 over 20k steps).
        beta_warmup_steps: warm-up length (0: constant ``beta``).
        warmup: first step of stage 2 (adversarial fine-tuning, frozen encoder).
        discriminator: ``"multiscale"`` (v1) or ``"multiscale+period"`` (v2).
        disc_capacity, disc_layers, disc_max_channels, num_scales, periods:
            discriminator sizes.
        disc_grouped: grouped strided convolutions in the multiscale discriminator
            (the reference; slow to train on TensorFlow CPU, see ``ScaleDiscriminator``).
        feature_matching_weight, adversarial_weight: stage-2 generator loss weights.
        spectral_scales: FFT sizes of the multiscale spectral distance (full band;
            the bands use the sizes that fit their length).
        spectral_eps: offset inside its log-magnitude term (1e-7 in the reference;
            on synthetic audio with digital silence and empty upper bands that term
            is dominated by matching a -140 dB floor and training stalls: a single
            batch overfits 28.7 -> 22.6 in 150 steps with 1e-7 but falls steadily
            with 1e-3, so the CPU recipe uses 1e-3).
        noise: enable the filtered-noise head in stage 2.
        latent_fidelity: fidelity used by ``encode_pca``/``decode_pca`` and export.
        seed: seed of posterior sampling and noise.

    Example:
    >>> model = RAVE(capacity=8, latent_dim=4, ratios=(2, 2))
    >>> model.reconstruct(np.zeros((1, 4096), "float32")).shape
    (1, 4096)
    """

    capabilities = {Capability.RECONSTRUCT, Capability.ENCODE, Capability.SAMPLE,
                    Capability.INTERPOLATE, Capability.STREAM, Capability.STAGES,
                    Capability.LATENT_PCA, Capability.EXAMPLES}

    def __init__(self, sample_rate=16000, num_bands=16, attenuation=100, capacity=16,
                 max_channels=512, latent_dim=16, ratios=(4, 4, 2), dilations=(1, 3, 5),
                 causal=True, layout="light", beta=0.1, beta_start=None, beta_warmup_steps=0, warmup=1000000,
                 discriminator="multiscale", disc_capacity=16, disc_layers=4, disc_max_channels=1024, disc_grouped=True,
                 num_scales=3, periods=(2, 3, 5, 7, 11), feature_matching_weight=10.0, adversarial_weight=1.0,
                 spectral_scales=(2048, 1024, 512, 256, 128), spectral_eps=1e-7, noise=True, latent_fidelity=0.95,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        check_positive(sample_rate=sample_rate, num_bands=num_bands, capacity=capacity,
                       max_channels=max_channels, latent_dim=latent_dim, disc_capacity=disc_capacity,
                       disc_layers=disc_layers, num_scales=num_scales)
        if not ratios or any(int(r) < 1 for r in ratios):
            raise ValueError(f"ratios must be positive integers, got {list(ratios)}")
        if discriminator not in ("multiscale", "multiscale+period"):
            raise ValueError(f"discriminator must be 'multiscale' or 'multiscale+period', "
                             f"got {discriminator!r}")
        self._sample_rate = int(sample_rate)
        self.num_bands, self.attenuation = int(num_bands), attenuation
        self.capacity, self.max_channels, self.latent_dim = (int(capacity), int(max_channels),
                                                             int(latent_dim))
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        self.layout = layout
        self.ratios = tuple(int(r) for r in ratios)
        stage_dilations(dilations, len(self.ratios))  # checks a per-stage list's length
        self.dilations = tuple(tuple(int(x) for x in d) if isinstance(d, (list, tuple)) else int(d)
                               for d in dilations)
        self.causal = bool(causal)
        self.beta, self.beta_warmup_steps = float(beta), int(beta_warmup_steps)
        self.beta_start = None if beta_start is None else float(beta_start)
        self.warmup = int(warmup)
        self.discriminator_kind = discriminator
        self.disc_capacity, self.disc_layers, self.num_scales = (int(disc_capacity),
                                                                 int(disc_layers), int(num_scales))
        self.disc_max_channels, self.disc_grouped = int(disc_max_channels), bool(disc_grouped)
        self.periods = tuple(int(p) for p in periods)
        self.feature_matching_weight = float(feature_matching_weight)
        self.adversarial_weight = float(adversarial_weight)
        self.spectral_scales = tuple(int(s) for s in spectral_scales)
        self.spectral_eps = float(spectral_eps)
        self.noise, self.latent_fidelity, self.seed = bool(noise), float(latent_fidelity), seed

        self.pqmf = PQMF(self.num_bands, attenuation, causal=self.causal, name="pqmf")
        self.encoder = RaveEncoder(capacity, latent_dim, self.ratios, max_channels, self.causal,
                                   layout=layout, dilations=self.dilations, name="encoder")
        self.decoder = RaveDecoder(capacity, num_bands, self.ratios, self.dilations, max_channels,
                                   self.causal, layout=layout, name="decoder")
        self.discriminators = [MultiScaleDiscriminator(num_scales, disc_capacity, disc_layers,
                                                       self.disc_max_channels, self.disc_grouped,
                                                       name="discriminator_scales")]
        if discriminator == "multiscale+period":
            self.discriminators.append(MultiPeriodDiscriminator(self.periods, disc_capacity,
                                                                disc_layers,
                                                                min(self.disc_max_channels, 512),
                                                                name="discriminator_periods"))
        self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")
        self.stage = 1
        self._recipe_train = None

    # ------------------------------------------------------------------ build
    def build(self, input_shape=None):
        self.pqmf.build((None, None))
        self.encoder.build((None, None, self.num_bands))
        self.decoder.build((None, None, self.latent_dim))
        for d in self.discriminators:
            d.build((None, None))
        d = self.latent_dim
        self.pca_mean = self.add_weight(shape=(d,), initializer="zeros", trainable=False,
                                        name="pca_mean")
        self.pca_components = self.add_weight(shape=(d, d), initializer="identity",
                                              trainable=False, name="pca_components")
        self.pca_variance = self.add_weight(shape=(d,), initializer="ones", trainable=False,
                                            name="pca_variance")
        self.built = True
        self.set_stage(self.stage)

    # ---------------------------------------------------------------- properties
    @property
    def sample_rate(self):
        return self._sample_rate

    @property
    def compression(self):
        """Waveform samples per latent frame: ``num_bands * prod(ratios)``."""
        return self.num_bands * math.prod(self.ratios)

    @property
    def delay_frames(self):
        """Band frames the causal model's output lags its input by.

        A causal strided encoder sees band frame ``n`` only in latent frame
        ``ceil(n / R)`` (``R = prod(ratios)``), and the decoder emits that latent's
        frames from ``R * ceil(n / R)`` on, so a causal RAVE can only reproduce frame
        ``n`` up to ``R - 1`` frames later; training targets are delayed by that much
        (a causal model asked for zero delay must predict up to ``R - 1`` frames of
        the future and learns noise). 0 for non-causal models.
        """
        return math.prod(self.ratios) - 1 if self.causal else 0

    @property
    def latency_samples(self):
        """Delay of the causal signal path: :attr:`delay_frames` band frames plus the
        causal PQMF's round-trip delay (0 for non-causal models)."""
        return self.delay_frames * self.num_bands + self.pqmf.delay if self.causal else 0

    # ---------------------------------------------------------------- offline
    def active_capabilities(self):
        """Streaming needs ``causal=True``."""
        caps = super().active_capabilities()
        return caps if self.causal else caps - {Capability.STREAM}

    def _pad(self, waveform):
        """Zero-pad ``[B, T]`` on the right to a multiple of :attr:`compression`."""
        return pad_to_multiple(ops.convert_to_tensor(waveform, "float32"), self.compression)

    def posterior(self, waveform):
        """Waveforms (length a multiple of :attr:`compression`) -> ``(mean, std)``."""
        return self.encoder(self.pqmf.analysis(waveform))

    def _mix_heads(self, bands, amplitude, envelope, noise):
        """Waveform bands x loudness, plus (``noise``) band-filtered white noise."""
        bands = bands * amplitude
        if noise:
            white = keras.random.uniform(ops.shape(bands), -1.0, 1.0, seed=self.seed_generator)
            bands = bands + white * envelope
        return bands

    def _decode_bands(self, z, noise):
        return self._mix_heads(*self.decoder(z), noise)

    @inference
    def encode(self, waveform):
        """Waveforms ``[B, T]`` -> posterior means ``[B, ceil(T / compression), latent_dim]``."""
        return self.posterior(self._pad(waveform))[0]

    @inference
    def decode(self, z, noise=None):
        """Latents ``[B, L, latent_dim]`` -> waveforms ``[B, L * compression]``.

        ``noise`` (default: on once stage 2 has started) adds the noise head's output.
        """
        return self.pqmf.synthesis(self._decode_bands(z, self._noise_on(noise)))

    def _noise_on(self, noise):
        return (self.noise and self.stage >= 2) if noise is None else bool(noise)

    @inference
    def reconstruct(self, waveform, noise=None):
        """Waveforms ``[B, T]`` -> reconstructions ``[B, T]`` through the posterior mean,
        aligned with the input (the causal path's delay is removed)."""
        waveform = ops.convert_to_tensor(waveform, "float32")
        t = waveform.shape[1] if waveform.shape[1] is not None else ops.shape(waveform)[1]
        d = self.latency_samples
        x = self._pad(ops.pad(waveform, ((0, 0), (0, d))) if d else waveform)
        y = self.decode(self.posterior(x)[0], noise=noise)
        return y[:, d:d + t]

    def sample(self, num_samples, num_samples_audio, seed=None, temperature=1.0):
        """Waveforms decoded from prior latents ``N(0, I)``."""
        frames = -(-int(num_samples_audio) // self.compression)
        z = keras.random.normal((int(num_samples), frames, self.latent_dim), stddev=temperature,
                                seed=seed if seed is not None else self.seed_generator)
        return self.decode(z)[:, :int(num_samples_audio)]

    def interpolate(self, waveform_a, waveform_b, steps=5):
        """Decode ``steps`` points between the latents of two waveforms."""
        za, zb = self.encode(waveform_a[None]), self.encode(waveform_b[None])
        n = min(za.shape[1], zb.shape[1])
        z = ops.concatenate([za[:, :n] * (1.0 - float(a)) + zb[:, :n] * float(a)
                             for a in np.linspace(0.0, 1.0, steps)], axis=0)
        return self.decode(z)[:, :int(waveform_a.shape[-1])]

    # ------------------------------------------------------------ latent PCA
    def latent_pca(self, clips, batch_size=8):
        """PCA of the posterior means of ``clips [N, T]`` (every latent frame a sample):
        ``(mean, components, explained variance)``; nothing is stored."""
        clips = np.asarray(clips, "float32")
        means = [np.asarray(ops.convert_to_numpy(self.encode(clips[i:i + batch_size])))
                 for i in range(0, len(clips), batch_size)]
        return latent_pca(np.concatenate(means).reshape(-1, self.latent_dim))

    def fit_latent_pca(self, clips, batch_size=8):
        """PCA of posterior means over ``clips [N, T]``, stored in the model (used by
        ``encode_pca``/``decode_pca`` and the exported ``encode``/``decode``).

        Returns:
            :meth:`fidelity_report`.
        """
        mean, comps, var = self.latent_pca(clips, batch_size)
        self.pca_mean.assign(mean.astype("float32"))
        self.pca_components.assign(comps.astype("float32"))
        self.pca_variance.assign(var.astype("float32"))
        return self.fidelity_report()

    def fidelity_report(self, fidelities=(0.9, 0.95, 0.99), variance=None):
        """Cumulative explained variance and the dimension counts at ``fidelities``
        (of the stored PCA, or of ``variance``)."""
        var = np.asarray(ops.convert_to_numpy(self.pca_variance) if variance is None
                         else variance, np.float64)
        return {"explained_variance": var.tolist(),
                "ratio": (np.cumsum(var) / max(var.sum(), 1e-30)).tolist(),
                "dims": {f: fidelity_dims(var, f) for f in fidelities}}

    @property
    def latent_dims(self):
        """Principal dimensions kept at ``latent_fidelity``."""
        return fidelity_dims(ops.convert_to_numpy(self.pca_variance), self.latent_fidelity)

    def encode_pca(self, waveform):
        """Waveforms -> the first :attr:`latent_dims` principal coordinates
        ``[B, L, latent_dims]`` of the posterior means."""
        return self._encode_pca(waveform, self.latent_dims)

    def _encode_pca(self, waveform, dims):
        z = self.encode(waveform)
        return ops.matmul(z - self.pca_mean, self.pca_components[:, :dims])

    def decode_pca(self, coords, seed=None):
        """Principal coordinates ``[B, L, r]`` -> waveforms; the remaining
        ``latent_dim - r`` coordinates are drawn from the prior ``N(0, 1)``."""
        coords = ops.convert_to_tensor(coords, "float32")
        r = coords.shape[-1]
        if r < self.latent_dim:
            base = ops.zeros_like(coords[..., :1]) + ops.zeros((self.latent_dim - r,))
            rest = keras.random.normal(ops.shape(base),
                                       seed=self.seed_generator if seed is None else seed)
            coords = ops.concatenate([coords, rest], axis=-1)
        z = ops.matmul(coords, ops.transpose(self.pca_components)) + self.pca_mean
        return self.decode(z)

    # -------------------------------------------------------------- streaming
    def _require_causal(self):
        if not self.causal:
            raise ValueError("RAVE streams only when built with causal=True")

    def initial_state(self, batch_size=1):
        """Zero streaming state: ``{"encoder": [...], "decoder": [...]}`` of tensors
        (PQMF analysis/synthesis state included)."""
        self._require_causal()
        a, s = self.pqmf.initial_state(batch_size)
        return {"encoder": [a] + self.encoder.initial_state(batch_size),
                "decoder": self.decoder.initial_state(batch_size) + [s]}

    @inference
    def stream_encode(self, block, state):
        """``block [B, n * compression]`` -> ``(posterior means [B, n, latent_dim], state)``."""
        self._require_causal()
        block = ops.convert_to_tensor(block, "float32")
        if block.shape[1] is not None and block.shape[1] % self.compression:
            raise ValueError(f"stream block length {block.shape[1]} is not a multiple of the "
                             f"compression ratio {self.compression}")
        bands, a = self.pqmf.analysis_stream(block, state[0])
        (mean, _), enc = self.encoder.stream(bands, state[1:])
        return mean, [a] + enc

    @inference
    def stream_decode(self, z, state, noise=False):
        """``z [B, n, latent_dim]`` -> ``(waveform block [B, n * compression], state)``."""
        self._require_causal()
        heads, dec = self.decoder.stream(ops.convert_to_tensor(z, "float32"), state[:-1])
        block, s = self.pqmf.synthesis_stream(self._mix_heads(*heads, noise), state[-1])
        return block, dec + [s]

    @property
    def stream_block(self):
        """Streaming blocks must be a multiple of this many samples."""
        return self.compression

    def streaming_reference(self, waveform):
        """The offline computation :meth:`stream` reproduces block by block (no noise)."""
        return self.decode(self.encode(waveform), noise=False)

    @inference
    def stream(self, block, state, noise=False):
        """Encode and decode one block: ``(output block, state)``; the output lags
        the input by :attr:`latency_samples`."""
        z, enc = self.stream_encode(block, state["encoder"])
        out, dec = self.stream_decode(z, state["decoder"], noise=noise)
        return out, {"encoder": enc, "decoder": dec}

    def _flat_state_shapes(self):
        state = self.initial_state(1)
        return [(None, *s.shape[1:]) for s in state["encoder"] + state["decoder"]]

    def _stream_flat(self, block, *flat):
        n_enc = len(self.encoder.convs) + 2  # pqmf analysis + encoder layers + head
        state = {"encoder": list(flat[:n_enc]), "decoder": list(flat[n_enc:])}
        out, new = self.stream(block, state)
        return (out, *new["encoder"], *new["decoder"])

    # --------------------------------------------------------------- training
    def set_stage(self, stage):
        """Stage 1 trains encoder + decoder; stage 2 the decoder and discriminators
        (encoder frozen). Recompile afterwards (the trainer does)."""
        if stage not in (1, 2):
            raise ValueError(f"stage must be 1 or 2, got {stage}")
        self.stage = int(stage)
        self.encoder.trainable = stage == 1
        self.decoder.trainable = True
        for d in self.discriminators:
            d.trainable = stage == 2

    def stage_description(self):
        if self.stage == 1:
            return "VAE: encoder + decoder, multiscale spectral distance + beta KL"
        return (f"adversarial: encoder frozen, decoder vs {self.discriminator_kind} "
                "discriminator, spectral distance + hinge + feature matching"
                + (", noise head on" if self.noise else ""))

    def stage_for_step(self, step):
        return 2 if int(step) >= self.warmup else 1

    def stage_boundaries(self):
        """Global steps where training must stop, switch stage and recompile."""
        return [self.warmup]

    def prepare_stage(self, step, train=None):
        """Enter the stage of global ``step``; recompile when it changes.

        Returns:
            True when the stage changed (and the model was recompiled).
        """
        stage = self.stage_for_step(step)
        if stage == self.stage and self.compiled:
            return False
        changed = stage != self.stage
        self.set_stage(stage)
        self.compile_from_recipe(train if train is not None else self._recipe_train or {})
        return changed

    def compile_from_recipe(self, train):
        self._recipe_train = dict(train)
        super().compile_from_recipe(train)

    def _pca_clips(self, context):
        return context.dataset.clips(int(context.train.get("pca_clips", 32)),
                                     seed=context.seed + 1)

    def training_callbacks(self, context):
        """Latent fidelity of validation clips at each epoch end of stage 1."""
        return [LatentFidelity(context.run_dir, self._pca_clips(context),
                               verbose=context.verbose, when=lambda: self.stage == 1)]

    def finish_training(self, context):
        """Store the latent PCA of the run's clips in the model (for export)."""
        self.fit_latent_pca(self._pca_clips(context))
        return True

    def get_compile_config(self):
        config = super().get_compile_config()
        if config:
            config["stage"] = self.stage
            config["recipe_train"] = self._recipe_train
        return config

    def compile_from_config(self, config):
        config = dict(config)
        self.set_stage(int(config.pop("stage", 1)))
        self._recipe_train = config.pop("recipe_train", None)
        super().compile_from_config(config)

    def objectives(self):
        if self.stage == 1:
            return [Objective("vae", [self.encoder, self.decoder], self._stage1_loss,
                              metrics=("spectral_distance", "kl", "beta"))]
        return [Objective("discriminator", list(self.discriminators), self._discriminator_loss,
                          metrics=("real_score", "fake_score"), role="discriminator"),
                Objective("generator", self.decoder, self._generator_loss,
                          metrics=("spectral_distance", "adversarial", "feature_matching"))]

    def kl_weight(self):
        """``beta(step)``: log-linear warm-up from ``beta_start`` (if given)."""
        if self.beta_start is None or self.beta_warmup_steps <= 0:
            return ops.convert_to_tensor(self.beta, "float32")
        t = ops.minimum(ops.cast(self.adversarial_step, "float32") / self.beta_warmup_steps, 1.0)
        lo, hi = math.log(self.beta_start), math.log(self.beta)
        return ops.exp(lo + (hi - lo) * t)

    def _band_scales(self, frames):
        if frames is None:  # length unknown while tracing: only the smallest size, which
            frames = 65     # fits any crop of two latent frames or more
        scales = tuple(s for s in self.spectral_scales if s // 2 < frames)
        return scales or (max(8, 1 << int(math.log2(max(frames, 16))) - 1),)

    def spectral_distance(self, bands_true, bands_pred):
        """Multiscale spectral distance on the bands plus on the full-band signals
        (targets: the bands and the PQMF round trip of the input)."""
        frames = bands_true.shape[1]
        d = multiscale_spectral_distance(bands_true, bands_pred, scales=self._band_scales(frames),
                                         eps=self.spectral_eps)
        full_true, full_pred = self.pqmf.synthesis(bands_true), self.pqmf.synthesis(bands_pred)
        return d + multiscale_spectral_distance(full_true, full_pred, scales=self._band_scales(
            full_true.shape[1]), eps=self.spectral_eps)

    def _batch(self, data):
        x = data[0] if isinstance(data, (tuple, list)) else data
        return self._pad(x)

    def _aligned(self, bands, pred):
        """(target, prediction) band frames with the causal delay removed."""
        d = self.delay_frames
        if not d:
            return bands, pred
        n = bands.shape[1] if bands.shape[1] is not None else ops.shape(bands)[1]
        return bands[:, :n - d], pred[:, d:]

    def _stage1_loss(self, data, training=False):
        x = self._batch(data)
        bands = self.pqmf.analysis(x)
        mean, std = self.encoder(bands)
        z = mean + std * keras.random.normal(ops.shape(mean), seed=self.seed_generator)
        pred = self._decode_bands(z, noise=False)
        distance = self.spectral_distance(*self._aligned(bands, pred))
        kl = ops.mean(gaussian_kl(mean, 2.0 * ops.log(std)))
        beta = self.kl_weight()
        return distance + beta * kl, {"spectral_distance": distance, "kl": kl, "beta": beta}

    def _fake(self, x, training):
        """Bands of the input and of its reconstruction (frozen encoder's sample)."""
        bands = self.pqmf.analysis(x)
        mean, std = self.encoder(bands)
        z = ops.stop_gradient(mean + std * keras.random.normal(ops.shape(mean),
                                                               seed=self.seed_generator))
        return self._aligned(bands, self._decode_bands(z, noise=self.noise))

    def _discriminate(self, waveform):
        return [f for d in self.discriminators for f in d(waveform)]

    def _discriminator_loss(self, data, training=False):
        x = self._batch(data)
        bands, fake_bands = self._fake(x, training)
        real = self.pqmf.synthesis(bands)
        fake = ops.stop_gradient(self.pqmf.synthesis(fake_bands))
        real_f, fake_f = self._discriminate(real), self._discriminate(fake)
        loss = 0.0
        for r, f in zip(real_f, fake_f):
            loss = loss + hinge_discriminator_loss(r[-1], f[-1])
        return loss, {"real_score": ops.mean(ops.stack([ops.mean(r[-1]) for r in real_f])),
                      "fake_score": ops.mean(ops.stack([ops.mean(f[-1]) for f in fake_f]))}

    def _generator_loss(self, data, training=False):
        x = self._batch(data)
        bands, fake_bands = self._fake(x, training)
        distance = self.spectral_distance(bands, fake_bands)
        real = self.pqmf.synthesis(bands)
        fake = self.pqmf.synthesis(fake_bands)
        real_f, fake_f = self._discriminate(real), self._discriminate(fake)
        adv = 0.0
        for f in fake_f:
            adv = adv - ops.mean(f[-1])
        fm = feature_matching([ops.stop_gradient(t) for r in real_f for t in r[:-1]],
                              [t for f in fake_f for t in f[:-1]])
        total = distance + self.adversarial_weight * adv + self.feature_matching_weight * fm
        return total, {"spectral_distance": distance, "adversarial": adv, "feature_matching": fm}

    def call(self, waveform, training=False):
        return self.reconstruct(waveform)

    # ---------------------------------------------------------------- serving
    def audio_examples(self, clips):
        clips = np.asarray(ops.convert_to_numpy(clips), "float32")
        return {"input": clips, "reconstruction": self.reconstruct(clips),
                "prior_sample": self.sample(len(clips), clips.shape[1], seed=0)}

    def serving_endpoints(self):
        """``forward``/``encode``/``decode`` on any length; ``encode`` returns the
        first :attr:`latent_dims` principal coordinates (``latent_fidelity``) and
        ``decode`` takes them (the rest drawn from the prior); causal models add
        ``stream`` (block, *state) -> (block, *state), blocks of any multiple of
        :attr:`compression`."""
        dims = self.latent_dims  # fixed at export time (a Python int, not traced)

        def encode(waveform):
            return self._encode_pca(waveform, dims)

        endpoints = {"forward": (self.reconstruct, [(None, None)]),
                     "encode": (encode, [(None, None)]),
                     "decode": (self.decode_pca, [(None, None, dims)])}
        if self.causal:
            endpoints["stream"] = (self._stream_flat,
                                   [(None, None)] + self._flat_state_shapes())
        return endpoints

    def get_config(self):
        return {**super().get_config(), "sample_rate": self._sample_rate,
                "num_bands": self.num_bands, "attenuation": self.attenuation,
                "capacity": self.capacity, "max_channels": self.max_channels,
                "latent_dim": self.latent_dim, "ratios": list(self.ratios),
                "dilations": dilations_config(self.dilations),
                "layout": self.layout, "causal": self.causal, "beta": self.beta,
                "beta_start": self.beta_start, "beta_warmup_steps": self.beta_warmup_steps,
                "warmup": self.warmup, "discriminator": self.discriminator_kind,
                "disc_capacity": self.disc_capacity, "disc_layers": self.disc_layers,
                "disc_max_channels": self.disc_max_channels, "disc_grouped": self.disc_grouped,
                "num_scales": self.num_scales, "periods": list(self.periods),
                "feature_matching_weight": self.feature_matching_weight,
                "adversarial_weight": self.adversarial_weight,
                "spectral_scales": list(self.spectral_scales),
                "spectral_eps": self.spectral_eps, "noise": self.noise,
                "latent_fidelity": self.latent_fidelity, "seed": self.seed}
