"""Vector-quantised VAEs (van den Oord et al. 2017, "Neural Discrete Representation
Learning"; residual VQ after Zeghidour et al. 2021, "SoundStream"; dead-code restart
after Dhariwal et al. 2020, "Jukebox"), in two layouts sharing
:class:`VectorQuantisedAutoencoder` (codebooks, code lookup, metrics, bitrate):

* :class:`WaveformVQVAE` (``vqvae_waveform``): strided 1-D convolutions straight from
  the waveform (64x by default, K = 512 as in the paper's audio experiments) to a 1-D
  code sequence and back, trained with the multiscale spectral loss (RAVE's form). The
  decoder stays at the code rate and ends in an inverse-STFT head (Vocos) by default or
  in a harmonic-plus-noise head (DDSP, ``decoder="harmonic"``), or mirrors the encoder
  with transposed convolutions (``decoder="transposed"``).
* :class:`SpectrogramVQVAE` (``vqvae``), below.

Spectrogram layout: waveform -> log-mel front-end -> 2-D convolutional encoder over (frames, mel bands),
``num_downsamples`` stride-2 stages in both axes -> a 2-D map of ``code_dim`` vectors
-> nearest-neighbour codebook (``layers.VectorQuantizer``; several codebooks in
residual with ``num_quantizers > 1``) -> transposed-convolution decoder back to the
log-mel spectrogram -> waveform by the front-end's inversion (Griffin-Lim).

The codebook follows exponential moving averages by default (``use_ema``) and codes
whose EMA usage falls below ``dead_code_threshold`` are moved to random encoder
outputs of the batch. The loss is the mean squared error of the normalised log-mel
features plus the quantiser's commitment (and, without EMA, codebook) terms.

``encode`` returns int32 codes ``[B, frames / 2**d, n_mels / 2**d]`` (a trailing axis of
``num_quantizers`` with residual VQ), ``decode`` takes them; with residual VQ,
``levels`` chooses how many codebooks to decode, i.e. the bitrate, at inference.
Logged: ``reconstruction``, ``vq_loss``, ``perplexity`` and ``code_usage`` (share of
the first codebook's codes used in the batch) and ``codes_restarted`` (dead codes
moved during the epoch, all codebooks).
"""
import math

import keras
from keras import layers as kl
from keras import ops

from layers import (HarmonicSynth, ISTFTHead, ResidualBlock1D, ResidualVectorQuantizer,
                    VectorQuantizer, code_statistics, exp_sigmoid, multiscale_spectral_distance,
                    yin)
from zoo.engine import (Capability, ServingInput, ZooModel, check_positive, inference,
                        replica_loss)
from zoo.models.chunking import pad_to_length, pad_to_multiple
from zoo.models.spectral import SpectralFrontEnd


class VectorQuantisedAutoencoder(ZooModel):
    """What both VQ-VAE layouts share: the codebook(s), code lookup by level, the loss's
    quantiser terms and metrics, bitrate arithmetic and the shared config.

    Subclasses build ``encoder``/``decoder``, define ``code_rate`` (code positions per
    second), ``reconstruct``/``encode``/``decode`` and return ``{"codes": ...}`` from
    ``call``; :meth:`quantiser_terms` adds the quantiser's losses and logs the metrics.
    """

    def __init__(self, code_dim=64, num_codes=512, num_quantizers=1, beta=0.25, use_ema=True,
                 ema_decay=0.99, dead_code_threshold=1.0, kmeans_init=False, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        check_positive(code_dim=code_dim, num_codes=num_codes, num_quantizers=num_quantizers)
        if beta < 0 or dead_code_threshold < 0:
            raise ValueError("beta and dead_code_threshold must be >= 0, got "
                             f"{beta}, {dead_code_threshold}")
        if not 0.0 < ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), got {ema_decay}")
        self.code_dim, self.num_codes = int(code_dim), int(num_codes)
        self.num_quantizers, self.beta = int(num_quantizers), float(beta)
        self.use_ema, self.ema_decay = bool(use_ema), float(ema_decay)
        self.dead_code_threshold, self.kmeans_init = float(dead_code_threshold), bool(kmeans_init)
        self.seed = seed
        vq = dict(num_codes=self.num_codes, code_dim=self.code_dim, beta=self.beta,
                  use_ema=self.use_ema, ema_decay=self.ema_decay,
                  dead_code_threshold=self.dead_code_threshold, kmeans_init=self.kmeans_init,
                  seed=seed, name="quantizer")
        self.quantizer = (VectorQuantizer(**vq) if self.num_quantizers == 1 else
                          ResidualVectorQuantizer(num_stages=self.num_quantizers, **vq))
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.vq_tracker = keras.metrics.Mean(name="vq_loss")
        self.perplexity_tracker = keras.metrics.Mean(name="perplexity")
        self.usage_tracker = keras.metrics.Mean(name="code_usage")
        self.restarts_tracker = keras.metrics.Sum(name="codes_restarted")

    @property
    def stages(self):
        """The quantiser of each codebook, in residual order."""
        q = self.quantizer
        return list(q.stages) if isinstance(q, ResidualVectorQuantizer) else [q]

    def lookup(self, codes, levels=None):
        """Integer codes -> the summed code vectors of the first ``levels`` codebooks."""
        codes = ops.convert_to_tensor(codes, "int32")
        if self.num_quantizers == 1:
            return ops.take(self.stages[0].codes, codes, axis=0)
        levels = self._levels(levels)
        return sum(ops.take(stage.codes, codes[..., s], axis=0)
                   for s, stage in enumerate(self.stages[:levels]))

    def _levels(self, levels):
        if levels is None:
            return self.num_quantizers
        if not 1 <= int(levels) <= self.num_quantizers:
            raise ValueError(f"levels must be in 1..{self.num_quantizers}, got {levels}")
        return int(levels)

    def code_axes(self):
        """Trailing shape of ``encode``'s codes after batch and time (``()`` or the
        mel regions), plus the residual level axis with several codebooks."""
        return self.code_grid() + ((self.num_quantizers,) if self.num_quantizers > 1 else ())

    def code_grid(self):
        """Code positions per time step besides time (``()`` for a 1-D code sequence)."""
        return ()

    @property
    def code_rate(self):
        """Code positions per second (all positions of a time step counted)."""
        raise NotImplementedError

    def bitrate(self, levels=None):
        """Bits per second of the codes with ``levels`` codebooks (all by default):
        code positions per second x levels x log2(K)."""
        return self.code_rate * self._levels(levels) * math.log2(self.num_codes)

    def bitrate_report(self):
        """Lines for ``zoo info``: bits per second and compression against 16-bit PCM
        at the model's rate, per number of codebooks."""
        pcm = 16 * self.sample_rate
        lines = []
        for levels in range(1, self.num_quantizers + 1):
            bits = self.bitrate(levels)
            lines.append(f"{levels} codebook(s) of {self.num_codes}: {bits / 1000:.2f} kbit/s, "
                         f"{pcm / bits:.1f}x smaller than 16-bit PCM at {self.sample_rate} Hz")
        return lines

    def audio_examples(self, clips):
        """Input clips and their reconstructions (and with one codebook, for residual VQ)."""
        clips = ops.convert_to_tensor(clips, "float32")
        out = {"input": clips, "reconstruction": self.reconstruct(clips)}
        if self.num_quantizers > 1:
            out["reconstruction_1_codebook"] = self.reconstruct(clips, levels=1)
        return out

    def serving_endpoints(self):
        """Exported signatures: waveforms in and out, int32 codes for ``encode`` /
        ``decode`` (so a server can store and send codes)."""
        return {
            "forward": (self.reconstruct, [(None, None)]),
            "encode": (self.encode, [(None, None)]),
            "decode": (self.decode, [ServingInput((None, None) + self.code_axes(), "int32")]),
        }

    def quantiser_terms(self, y_pred, reconstruction, training):
        """``reconstruction`` + the quantiser's losses (as the replica's loss); logs
        the reconstruction, the VQ loss, the first codebook's perplexity and usage,
        and (training) the codes restarted."""
        losses = self.losses  # the quantiser's commitment (and codebook) terms
        vq_loss = ops.sum(ops.stack(losses)) if losses else ops.convert_to_tensor(0.0)
        first = y_pred["codes"] if self.num_quantizers == 1 else y_pred["codes"][..., 0]
        stats = code_statistics(first, self.num_codes)
        self.reconstruction_tracker.update_state(reconstruction)
        self.vq_tracker.update_state(vq_loss)
        self.perplexity_tracker.update_state(stats["perplexity"])
        self.usage_tracker.update_state(stats["usage"])
        if training and self.dead_code_threshold > 0:
            # a restarted code's EMA usage is set to exactly the threshold
            self.restarts_tracker.update_state(sum(
                ops.sum(ops.cast(ops.convert_to_tensor(s.cluster_size)
                                 == self.dead_code_threshold, "float32"))
                for s in self.stages))
        return replica_loss(reconstruction + vq_loss)

    @property
    def metrics(self):
        return super().metrics + [self.reconstruction_tracker, self.vq_tracker,
                                  self.perplexity_tracker, self.usage_tracker,
                                  self.restarts_tracker]

    def get_config(self):
        return {**super().get_config(), "code_dim": self.code_dim, "num_codes": self.num_codes,
                "num_quantizers": self.num_quantizers, "beta": self.beta,
                "use_ema": self.use_ema, "ema_decay": self.ema_decay,
                "dead_code_threshold": self.dead_code_threshold,
                "kmeans_init": self.kmeans_init, "seed": self.seed}


@keras.saving.register_keras_serializable(package="zoo")
class WaveformVQVAE(VectorQuantisedAutoencoder):
    """VQ-VAE from waveform to a 1-D code sequence and back (no inversion step).

    Three decoders:

    * ``"istft"`` (default): a 7-wide convolution, dilated residual units
      (``decoder_dilations``) and a :class:`layers.ISTFTHead`, all at the code rate:
      each code's frame predicts one STFT frame (``istft_fft`` bins, hop = samples per
      code). Measured on ``builtin:timbre``, it learns far faster than the transposed
      stack, which must build every sample and its high-frequency floor with
      convolutions, but it has to invent every frame's phases, and tones come out
      smeared where those do not advance coherently from frame to frame;
    * ``"harmonic"``: the same trunk, ending in a harmonic-plus-noise head (DDSP):
      per code frame a fundamental ``f0`` and ``num_harmonics`` amplitudes drive a
      :class:`layers.HarmonicSynth` (phases integrated sample by sample, so coherent
      by construction), and an :class:`layers.ISTFTHead` adds the noise and whatever
      is not harmonic. The ``f0`` head learns from YIN's pitch of the input
      (:func:`layers.yin`, on frames YIN finds periodic, weighted by ``f0_weight``,
      in octaves) rather than through the spectral loss, whose gradient with respect
      to a frequency is of little use; logged as ``f0_error`` (cents). For
      monophonic pitched audio (instruments, voices);
    * ``"transposed"``: the encoder mirrored with transposed convolutions to the
      sample rate and a tanh output (the layout of earlier checkpoints, which load as
      such when their config names no decoder).

    Args:
        sample_rate: audio rate in Hz.
        channels: the encoder's convolution width (and the transposed decoder's).
        strides: the encoder's stride per stage (the product is the samples per code).
        scales: FFT sizes of the multiscale spectral loss.
        decoder: ``"istft"``, ``"harmonic"`` or ``"transposed"``.
        decoder_channels: width of the ``"istft"`` / ``"harmonic"`` decoder (default
            ``channels``).
        istft_fft: FFT size of their inverse-STFT head (default 4 x samples per code).
        decoder_dilations: dilations of the residual units of that trunk.
        num_harmonics: harmonics of the ``"harmonic"`` decoder's oscillator bank.
        f0_range: ``(fmin, fmax)`` in Hz of its ``f0`` head and of the YIN target.
        f0_weight: weight of the ``f0`` loss (absolute log2 error, octaves).
        code_dim, num_codes, num_quantizers, beta, use_ema, ema_decay,
            dead_code_threshold, kmeans_init, seed: the codebook (see
            :class:`VectorQuantisedAutoencoder`).

    Example:
    >>> vq = WaveformVQVAE(channels=32, num_codes=64)
    >>> codes = vq.encode(np.zeros((1, 16384), "float32"))   # int32 [1, 256]
    """

    capabilities = {Capability.RECONSTRUCT, Capability.ENCODE, Capability.EXAMPLES}
    decoders = ("istft", "harmonic", "transposed")

    #: YIN's normalised difference below which a frame is taken as periodic (its f0
    #: then trains the ``"harmonic"`` decoder's pitch head).
    voicing_threshold = 0.1

    def __init__(self, sample_rate=16000, channels=64, strides=(4, 4, 4),
                 scales=(2048, 1024, 512, 256, 128), decoder="istft", decoder_channels=None,
                 istft_fft=None, decoder_dilations=(1, 3, 9), num_harmonics=64,
                 f0_range=(50.0, 1000.0), f0_weight=10.0, **kwargs):
        super().__init__(**kwargs)
        check_positive(sample_rate=sample_rate, channels=channels)
        if not strides or any(int(s) < 1 for s in strides) or not scales:
            raise ValueError(f"strides and scales must be non-empty positive ints, got "
                             f"{strides}, {scales}")
        if decoder not in self.decoders:
            raise ValueError(f"decoder must be one of {self.decoders}, got {decoder!r}")
        self._sample_rate, self.channels = int(sample_rate), int(channels)
        self.strides, self.scales = [int(s) for s in strides], [int(n) for n in scales]
        self.hop = math.prod(self.strides)
        self.decoder_kind = decoder
        self.decoder_channels = int(decoder_channels or self.channels)
        self.istft_fft = int(istft_fft or 4 * self.hop)
        self.decoder_dilations = [int(d) for d in decoder_dilations]
        self.num_harmonics, self.f0_weight = int(num_harmonics), float(f0_weight)
        self.f0_range = [float(f) for f in f0_range]
        check_positive(decoder_channels=self.decoder_channels, istft_fft=self.istft_fft,
                       num_harmonics=self.num_harmonics)
        if len(self.f0_range) != 2 or not 0 < self.f0_range[0] < self.f0_range[1] <= sample_rate / 2:
            raise ValueError(f"f0_range must be (fmin, fmax) with 0 < fmin < fmax <= "
                             f"sample_rate / 2, got {f0_range}")
        if self.f0_weight < 0 or any(int(d) < 1 for d in self.decoder_dilations):
            raise ValueError(f"f0_weight must be >= 0 and decoder_dilations positive, got "
                             f"{f0_weight}, {decoder_dilations}")
        if self.istft_fft % self.hop:
            raise ValueError(f"istft_fft ({self.istft_fft}) must be a multiple of the samples "
                             f"per code ({self.hop})")
        act = (lambda: kl.LeakyReLU(0.2))
        enc = [kl.Conv1D(self.channels, 7, padding="same"), act()]
        for s in self.strides:
            enc += [kl.Conv1D(self.channels, 2 * s, strides=s, padding="same"), act(),
                    kl.Conv1D(self.channels, 3, padding="same"), act()]
        self.encoder = keras.Sequential(enc + [kl.Conv1D(self.code_dim, 1)], name="encoder")
        if decoder == "harmonic":
            self.decoder = keras.Sequential(self._trunk_layers(), name="decoder")
            self.f0_head = kl.Dense(1, name="f0_head")
            self.harmonic_head = kl.Dense(1 + self.num_harmonics, name="harmonic_head")
            self.synth = HarmonicSynth(self.sample_rate, self.hop, name="synth")
            self.noise_head = ISTFTHead(self.istft_fft, self.hop, name="noise_head")
            self.f0_tracker = keras.metrics.Mean(name="f0_error")
        elif decoder == "istft":
            self.decoder = keras.Sequential(
                self._trunk_layers() + [ISTFTHead(self.istft_fft, self.hop)], name="decoder")
        else:
            self.decoder = self._transposed_decoder()

    def _trunk_layers(self):
        """Code vectors -> features at the code rate: a 7-wide convolution and the
        dilated residual units (the ``"istft"`` and ``"harmonic"`` decoders' trunk)."""
        stack = [kl.Conv1D(self.decoder_channels, 7, padding="same")]
        stack += [ResidualBlock1D(3, dilation_rate=d) for d in self.decoder_dilations]
        return stack + [kl.LeakyReLU(0.2)]

    def _transposed_decoder(self):
        act = (lambda: kl.LeakyReLU(0.2))
        dec = [kl.Conv1D(self.channels, 7, padding="same"), act()]
        for s in reversed(self.strides):
            dec += [kl.Conv1DTranspose(self.channels, 2 * s, strides=s, padding="same"), act(),
                    kl.Conv1D(self.channels, 3, padding="same"), act()]
        return keras.Sequential(
            dec + [kl.Conv1D(1, 7, padding="same", activation="tanh")], name="decoder")

    @classmethod
    def from_config(cls, config):
        # Checkpoints from before the istft decoder name none and hold the transposed one.
        return cls(**{"decoder": "transposed", **config})

    @property
    def sample_rate(self):
        return self._sample_rate

    @property
    def code_rate(self):
        return self.sample_rate / self.hop

    def encode_waveform(self, waveform):
        """Waveforms ``[B, samples]`` -> continuous codes ``[B, ceil(samples / hop), D]``."""
        padded = pad_to_multiple(ops.convert_to_tensor(waveform, "float32"), self.hop)
        return self.encoder(padded[..., None])

    def decode_vectors(self, vectors):
        """Code vectors ``[B, T', D]`` -> waveforms ``[B, T' * hop]``."""
        if self.decoder_kind == "harmonic":
            return self._harmonic_parts(vectors)[0]
        out = self.decoder(vectors)
        return out if self.decoder_kind == "istft" else out[..., 0]

    def _harmonic_parts(self, vectors):
        """Code vectors -> ``(waveform, f0 [B, T'] in Hz, harmonic part, noise part)``."""
        features = self.decoder(vectors)
        fmin, fmax = self.f0_range
        f0 = fmin * ops.exp(ops.sigmoid(self.f0_head(features)[..., 0]) * math.log(fmax / fmin))
        controls = self.harmonic_head(features)
        amplitudes = (exp_sigmoid(controls[..., :1])
                      * ops.softmax(controls[..., 1:], axis=-1))
        harmonic = self.synth(ops.stop_gradient(f0), amplitudes)
        noise = self.noise_head(features)
        return harmonic + noise, f0, harmonic, noise

    def pitch_target(self, waveform):
        """YIN's f0 of ``waveform`` (Hz), one frame per code centred on its start, and
        where it is periodic (float mask): the ``"harmonic"`` decoder's pitch target.
        The analysis frame spans at least three periods of ``fmin``."""
        fmin, fmax = self.f0_range
        frame = self.hop * math.ceil(3 * self.sample_rate / fmin / self.hop)
        f0, aperiodicity = yin(waveform, self.sample_rate, fmin, fmax, frame_length=frame,
                               hop_length=self.hop)
        return f0, ops.cast(aperiodicity < self.voicing_threshold, "float32")

    @inference
    def encode(self, waveform):
        """Waveforms ``[B, samples]`` -> int32 codes ``[B, ceil(samples / hop)]``
        (``[..., levels]`` with residual VQ)."""
        return self.quantizer(self.encode_waveform(waveform), training=False)[1]

    @inference
    def decode(self, codes, length=None, levels=None):
        """Integer codes -> waveforms (``length`` samples, else ``hop`` per code)."""
        out = self.decode_vectors(self.lookup(codes, levels))
        return out if length is None else pad_to_length(out, int(length))[:, : int(length)]

    @inference
    def decode_parts(self, codes, levels=None):
        """``"harmonic"`` decoder: integer codes -> ``{"waveform", "f0" (Hz, one per
        code), "harmonic", "noise"}``: what the oscillator bank and the noise head
        each made, and the pitch the bank followed."""
        if self.decoder_kind != "harmonic":
            raise ValueError(f"decode_parts needs decoder='harmonic', this model's is "
                             f"{self.decoder_kind!r}")
        parts = self._harmonic_parts(self.lookup(codes, levels))
        return dict(zip(("waveform", "f0", "harmonic", "noise"), parts))

    @inference
    def reconstruct(self, waveform, levels=None):
        """Waveforms -> waveforms of the same length, through the codes."""
        waveform = ops.convert_to_tensor(waveform, "float32")
        length = waveform.shape[1] or ops.shape(waveform)[1]
        codes = self.quantizer(self.encode_waveform(waveform), training=False)[1]
        return self.decode_vectors(self.lookup(codes, levels))[:, :length]

    def call(self, inputs, training=False):
        waveform = ops.convert_to_tensor(inputs, "float32")
        quantized, codes = self.quantizer(self.encode_waveform(waveform), training=training)
        length = waveform.shape[1] or ops.shape(waveform)[1]
        if self.decoder_kind == "harmonic":
            decoded, f0 = self._harmonic_parts(quantized)[:2]
            return {"waveform": waveform, "decoded": decoded[:, :length], "codes": codes,
                    "f0": f0}
        return {"waveform": waveform, "decoded": self.decode_vectors(quantized)[:, :length],
                "codes": codes}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if y_pred is None:
            y_pred = self(x, training=training)
        reconstruction = multiscale_spectral_distance(y_pred["waveform"], y_pred["decoded"],
                                                      scales=self.scales)
        loss = self.quantiser_terms(y_pred, reconstruction, training)
        if self.decoder_kind != "harmonic":
            return loss
        return loss + self.f0_weight * self.pitch_loss(y_pred["waveform"], y_pred["f0"])

    def pitch_loss(self, waveform, f0):
        """Mean absolute log2 error of ``f0`` against YIN's on the periodic frames
        (octaves, as the replica's loss); logs ``f0_error`` in cents."""
        target, voiced = self.pitch_target(waveform)
        frames = f0.shape[1] if f0.shape[1] is not None else ops.shape(f0)[1]  # <= YIN's
        error = ops.abs(ops.log2(f0) - ops.log2(ops.maximum(target[:, :frames], 1e-3)))
        voiced = voiced[:, :frames]
        octaves = ops.sum(error * voiced) / ops.maximum(ops.sum(voiced), 1.0)
        self.f0_tracker.update_state(1200.0 * octaves)
        return replica_loss(octaves)

    def build(self, input_shape=None):
        self.call(ops.zeros((1, max(self.hop, max(self.scales)))))
        self.built = True

    def get_config(self):
        return {**super().get_config(), "sample_rate": self.sample_rate,
                "channels": self.channels, "strides": list(self.strides),
                "scales": list(self.scales), "decoder": self.decoder_kind,
                "decoder_channels": self.decoder_channels, "istft_fft": self.istft_fft,
                "decoder_dilations": list(self.decoder_dilations),
                "num_harmonics": self.num_harmonics, "f0_range": list(self.f0_range),
                "f0_weight": self.f0_weight}

    @property
    def metrics(self):
        extra = [self.f0_tracker] if self.decoder_kind == "harmonic" else []
        return super().metrics + extra


@keras.saving.register_keras_serializable(package="zoo")
class SpectrogramVQVAE(VectorQuantisedAutoencoder):
    """VQ-VAE over log-mel spectrograms with a 2-D code map; waveforms in and out.

    Args:
        sample_rate, n_fft, hop_length, n_mels, fmin, fmax, min_db, ref_db,
            griffin_lim_iters, mel_inversion_iters: the spectral front-end (see ``SpectralFrontEnd``);
            ``n_mels`` must be a multiple of ``2 ** num_downsamples``.
        channels: convolution width: one int for every resolution, or one per
            resolution, finest first (``num_downsamples + 1`` ints). Narrow
            full-resolution stages keep fine mel grids affordable: a batch-16 step of
            the recipe's ``[16, 32, 64]`` over 256 mels took 1.3 s on JAX's CPU
            convolutions, against 3.7 s for ``64`` everywhere over 64 mels.
        num_downsamples: stride-2 stages in time and frequency.
        code_dim, num_codes, num_quantizers, beta, use_ema, ema_decay,
            dead_code_threshold, kmeans_init, seed: the codebook (see
            :class:`VectorQuantisedAutoencoder`).

    Example:
    >>> vq = SpectrogramVQVAE(channels=32, num_codes=64)
    >>> codes = vq.encode(np.zeros((1, 16384), "float32"))   # int32 [1, 33, 16]
    >>> vq.decode(codes, length=16384).shape
    (1, 16384)
    """

    capabilities = {Capability.RECONSTRUCT, Capability.ENCODE, Capability.EXAMPLES}

    def __init__(self, sample_rate=16000, n_fft=512, hop_length=128, n_mels=64, fmin=0.0,
                 fmax=None, min_db=-100.0, ref_db=0.0, griffin_lim_iters=32,
                 mel_inversion_iters=30, channels: int | list[int] = 128,
                 num_downsamples=2, **kwargs):
        super().__init__(**kwargs)
        if int(num_downsamples) < 0:
            raise ValueError(f"num_downsamples must be >= 0, got {num_downsamples}")
        self.widths = self._stage_widths(channels, int(num_downsamples))
        if int(n_mels) % 2 ** int(num_downsamples):
            raise ValueError(f"n_mels ({n_mels}) must be a multiple of 2 ** num_downsamples "
                             f"({2 ** int(num_downsamples)})")
        self.frontend = SpectralFrontEnd(sample_rate, n_fft, hop_length, n_mels, fmin, fmax,
                                         min_db, ref_db, griffin_lim_iters, mel_inversion_iters,
                                         name="frontend")
        self.channels = channels if isinstance(channels, int) else list(self.widths)
        self.num_downsamples = int(num_downsamples)
        self.encoder = self._build_encoder()
        self.decoder = self._build_decoder()

    # ----------------------------------------------------------------- networks
    @staticmethod
    def _stage_widths(channels, num_downsamples):
        """``channels`` (one int, or one per resolution) -> a width per resolution,
        finest first."""
        widths = ([channels] * (num_downsamples + 1) if isinstance(channels, int)
                  else list(channels))
        if len(widths) != num_downsamples + 1 or not all(
                isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in widths):
            raise ValueError(f"channels must be a positive int or {num_downsamples + 1} positive "
                             f"ints (one per resolution, finest first), got {channels!r}")
        return widths

    def _conv(self, filters, kernel=3, strides=1, transpose=False):
        cls = kl.Conv2DTranspose if transpose else kl.Conv2D
        return [cls(filters, kernel, strides=strides, padding="same"), kl.LeakyReLU(0.2)]

    def _build_encoder(self):
        """Full resolution, then per stage a stride-2 4x4 conv and a 3x3 conv at that
        stage's width, then a 1x1 conv to ``code_dim``."""
        stack = self._conv(self.widths[0])
        for width in self.widths[1:]:
            stack += self._conv(width, 4, strides=2) + self._conv(width)
        return keras.Sequential(stack + [kl.Conv2D(self.code_dim, 1)], name="encoder")

    def _build_decoder(self):
        """The encoder's mirror: the coarsest width, then per stage a stride-2 4x4
        transposed conv and a 3x3 conv at the finer width, then a 3x3 conv to one map."""
        stack = self._conv(self.widths[-1])
        for width in reversed(self.widths[:-1]):
            stack += self._conv(width, 4, strides=2, transpose=True) + self._conv(width)
        return keras.Sequential(stack + [kl.Conv2D(1, 3, padding="same")], name="decoder")

    @property
    def downsampling(self):
        """Spectrogram frames (and mel bands) per code position."""
        return 2 ** self.num_downsamples

    def code_grid(self):
        return (self.frontend.n_mels // self.downsampling,)

    @property
    def code_rate(self):
        return (self.sample_rate / self.frontend.hop_length / self.downsampling
                * self.code_grid()[0])

    @property
    def sample_rate(self):
        return self.frontend.sample_rate

    # ---------------------------------------------------------------- interface
    def encode_features(self, features):
        """Normalised log-mel ``[B, F, n_mels]`` -> continuous code map ``[B, F', M', D]``."""
        padded = pad_to_multiple(features, self.downsampling, value=-1.0)
        return self.encoder(padded[..., None])

    def decode_features(self, quantized):
        """Code vectors ``[B, F', M', D]`` -> normalised log-mel ``[B, F' * 2**d, n_mels]``."""
        return self.decoder(quantized)[..., 0]

    @inference
    def encode(self, waveform):
        """Waveforms ``[B, samples]`` -> int32 codes ``[B, F', M']`` (``[..., levels]``
        with residual VQ)."""
        features = self.frontend(self.frontend.pad_input(waveform))
        return self.quantizer(self.encode_features(features), training=False)[1]

    @inference
    def decode(self, codes, length=None, levels=None):
        """Integer codes -> waveforms; ``levels`` codebooks of a residual VQ (all by
        default). With ``length`` the output has exactly that many samples."""
        decoded = self.decode_features(self.lookup(codes, levels))
        if length is None:
            return self.frontend.to_waveform(decoded)
        # the frames of the input as `reconstruct` pads it (at least one FFT window);
        # codes for fewer frames end in silence
        return self.frontend.to_waveform_of_length(decoded, int(length))

    @inference
    def reconstruct(self, waveform, levels=None):
        """Waveforms -> waveforms of the same length, through the codes."""
        waveform = ops.convert_to_tensor(waveform, "float32")
        length = waveform.shape[1] or ops.shape(waveform)[1]
        features = self.frontend(self.frontend.pad_input(waveform))
        codes = self.quantizer(self.encode_features(features), training=False)[1]
        decoded = self.decode_features(self.lookup(codes, levels))
        decoded = decoded[:, : features.shape[1] or ops.shape(features)[1]]
        return self.frontend.to_waveform_of_length(decoded, length)

    # ----------------------------------------------------------------- training
    def call(self, inputs, training=False):
        waveform = ops.convert_to_tensor(inputs, "float32")
        features = self.frontend(waveform)
        quantized, codes = self.quantizer(self.encode_features(features), training=training)
        frames = features.shape[1] or ops.shape(features)[1]
        return {"features": features, "decoded": self.decode_features(quantized)[:, :frames],
                "codes": codes}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if y_pred is None:
            y_pred = self(x, training=training)
        reconstruction = ops.mean(ops.square(y_pred["features"] - y_pred["decoded"]))
        return self.quantiser_terms(y_pred, reconstruction, training)

    def build(self, input_shape=None):
        self.call(ops.zeros((1, 4 * self.frontend.n_fft)))
        self.built = True

    def get_config(self):
        return {**super().get_config(), **self.frontend.arguments(),
                "channels": self.channels, "num_downsamples": self.num_downsamples}
