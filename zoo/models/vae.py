"""Spectrogram autoencoder and VAE (Kingma & Welling 2014, "Auto-Encoding Variational Bayes";
Itakura-Saito likelihood after Fevotte et al. 2009 and Sadok et al. 2023).

Waveform -> log-mel front-end -> 1-D convolutional encoder over time (mel bands as
channels, ``2 ** num_downsamples`` frames per latent vector) -> Gaussian posterior ->
transposed-convolution decoder -> likelihood:

* ``likelihood="gaussian"``: N(x; mu, scale^2) on normalised log-mel features.
* ``likelihood="itakura_saito"``: the decoder output, read on the same normalised
  log scale as the features, is the variance of a zero-mean complex Gaussian per mel
  bin; the negative log-likelihood of the power mel is then the Itakura-Saito
  divergence (Fevotte et al.), as in the source-filter VAE. It is computed in the log
  domain so no ``exp`` can overflow.

The ELBO weight on the KL term warms up linearly from 0 to ``beta`` over
``kl_warmup_steps`` training steps (counted by a non-trainable variable, so it is
part of checkpoints and of JAX's training state). ``variational=False`` gives the
plain autoencoder (``ae``): deterministic latent, no KL.

Losses are reported per spectrogram frame.
"""
import keras
import numpy as np
from keras import layers as kl
from keras import ops

from layers import gaussian_kl, itakura_saito_log
from zoo.engine import Capability, ZooModel, check_positive, inference, replica_loss
from zoo.models.chunking import pad_to_multiple
from zoo.models.spectral import SpectralFrontEnd


@keras.saving.register_keras_serializable(package="zoo")
class SpectrogramVAE(ZooModel):
    """Spectrogram (variational) autoencoder that takes and returns waveforms.

    Args:
        sample_rate, n_fft, hop_length, n_mels, fmin, fmax, min_db, ref_db,
            griffin_lim_iters, mel_inversion_iters: the spectral front-end (see
            ``SpectralFrontEnd``).
        latent_dim: channels of the latent sequence.
        channels: convolution width.
        num_downsamples: stride-2 stages (time compression ``2 ** num_downsamples``).
        kernel_size: convolution width in frames.
        variational: Gaussian posterior + KL (VAE) or deterministic (AE).
        likelihood: ``"gaussian"`` or ``"itakura_saito"``.
        gaussian_scale: fixed standard deviation of the Gaussian likelihood.
        beta: KL weight after warm-up.
        kl_warmup_steps: linear warm-up length (0 disables warm-up).
        seed: seed of the posterior / prior sampling.

    Example:
    >>> vae = SpectrogramVAE(latent_dim=8, channels=32)
    >>> vae.reconstruct(np.zeros((1, 16384), "float32")).shape
    (1, 16384)
    """

    capabilities = {Capability.RECONSTRUCT, Capability.ENCODE, Capability.SAMPLE,
                    Capability.INTERPOLATE, Capability.EXAMPLES, Capability.FEATURE_MAPS}

    def __init__(self, sample_rate=16000, n_fft=512, hop_length=128, n_mels=64, fmin=0.0,
                 fmax=None, min_db=-100.0, ref_db=0.0, griffin_lim_iters=32,
                 mel_inversion_iters=30, latent_dim=16,
                 channels=128, num_downsamples=2, kernel_size=5, variational=True,
                 likelihood="gaussian", gaussian_scale=0.1, beta=1.0, kl_warmup_steps=1000,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        check_positive(latent_dim=latent_dim, channels=channels, kernel_size=kernel_size,
                       gaussian_scale=gaussian_scale)
        if int(num_downsamples) < 0 or beta < 0 or kl_warmup_steps < 0:
            raise ValueError("num_downsamples, beta and kl_warmup_steps must be >= 0, got "
                             f"{num_downsamples}, {beta}, {kl_warmup_steps}")
        if likelihood not in ("gaussian", "itakura_saito"):
            raise ValueError(f"likelihood must be 'gaussian' or 'itakura_saito', got {likelihood!r}")
        self.frontend = SpectralFrontEnd(sample_rate, n_fft, hop_length, n_mels, fmin, fmax,
                                         min_db, ref_db, griffin_lim_iters, mel_inversion_iters,
                                         name="frontend")
        self.latent_dim, self.channels = int(latent_dim), int(channels)
        self.num_downsamples, self.kernel_size = int(num_downsamples), int(kernel_size)
        self.variational, self.likelihood = bool(variational), likelihood
        self.gaussian_scale, self.beta = float(gaussian_scale), float(beta)
        self.kl_warmup_steps, self.seed = int(kl_warmup_steps), seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.encoder = self._build_encoder()
        self.decoder = self._build_decoder()
        self.train_steps = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                           dtype="float32", name="train_steps",
                                           aggregation="only_first_replica")
        self._create_trackers()

    def _create_trackers(self):
        """The loss trackers ``compute_loss`` updates (subclasses trained otherwise skip them)."""
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.mse_tracker = keras.metrics.Mean(name="feature_mse")

    # ----------------------------------------------------------------- networks
    def _conv(self, filters, kernel=None, strides=1, transpose=False, activation="leaky"):
        cls = kl.Conv1DTranspose if transpose else kl.Conv1D
        act = (lambda: kl.LeakyReLU(0.2)) if activation == "leaky" else (lambda: kl.Identity())
        return [cls(filters, kernel or self.kernel_size, strides=strides, padding="same"), act()]

    def _build_encoder(self):
        stack = self._conv(self.channels)
        for _ in range(self.num_downsamples):
            stack += self._conv(self.channels, 4, strides=2) + self._conv(self.channels)
        out = 2 * self.latent_dim if self.variational else self.latent_dim
        stack += [kl.Conv1D(out, 1)]
        return keras.Sequential(stack, name="encoder")

    def _build_decoder(self):
        stack = self._conv(self.channels)
        for _ in range(self.num_downsamples):
            stack += self._conv(self.channels, 4, strides=2, transpose=True) + self._conv(self.channels)
        stack += [kl.Conv1D(self.frontend.n_mels, self.kernel_size, padding="same")]
        return keras.Sequential(stack, name="decoder")

    @property
    def time_compression(self):
        """Spectrogram frames per latent vector."""
        return 2 ** self.num_downsamples

    def active_capabilities(self):
        """A deterministic autoencoder (``variational=False``) has no prior to sample."""
        caps = super().active_capabilities()
        return caps if self.variational else caps - {Capability.SAMPLE}

    # ---------------------------------------------------------------- interface
    def encode_features(self, features, condition=None):
        """Normalised log-mel ``[B, F, n_mels]`` -> ``(z_mean, z_log_var)`` ``[B, ceil(F/k), latent]``.

        ``condition`` is for conditional subclasses (a domain label); ignored here."""
        h = self.encoder(self.conditioned(
            pad_to_multiple(features, self.time_compression, value=-1.0), condition))
        if not self.variational:
            return h, ops.zeros_like(h)
        z_mean, z_log_var = ops.split(h, 2, axis=-1)
        return z_mean, ops.clip(z_log_var, -30.0, 20.0)

    def feature_maps(self, features):
        """The encoder's activations (after each LeakyReLU) for normalised log-mel
        ``features`` ``[B, F, n_mels]``: learned feature maps, e.g. for style transfer."""
        h = self.feature_map_input(features)
        maps = []
        for layer in self.encoder.layers:
            h = layer(h)
            if isinstance(layer, kl.LeakyReLU):
                maps.append(h)
        return maps

    def feature_map_input(self, features):
        """What :meth:`feature_maps` feeds the encoder's first layer."""
        return self.conditioned(pad_to_multiple(features, self.time_compression, value=-1.0), None)

    def decode_features(self, z, condition=None):
        """Latents -> decoder output (normalised log-mel, or log-variance for IS)."""
        return self.decoder(self.conditioned(z, condition))

    def conditioned(self, sequence, condition):
        """The encoder's or decoder's input ``[B, frames, C]`` with the condition appended
        (conditional subclasses); unchanged here."""
        return sequence

    def split_inputs(self, inputs):
        """Model inputs -> ``(waveform, condition)`` (``condition`` None here)."""
        return inputs, None

    @inference
    def encode(self, waveform):
        """Waveforms ``[B, samples]`` -> posterior means ``[B, latent_frames, latent_dim]``."""
        return self.encode_features(self.frontend(self.frontend.pad_input(waveform)))[0]

    @inference
    def decode(self, z, length=None):
        """Latents -> waveforms (via the mel pseudo-inverse and fast Griffin-Lim).

        With ``length`` the output has exactly that many samples; otherwise
        ``(frames - 1) * hop_length``.
        """
        decoded = self.decode_features(z)
        if length is None:
            return self.output_to_waveform(decoded)
        # at least one FFT window is inverted, then cut (lengths below n_fft / 2 too)
        return self.waveform_of_length(decoded[:, : self.frontend.num_frames(length)], length)

    def output_to_waveform(self, decoded, length=None):
        return self.frontend.to_waveform(decoded, length)

    @inference
    def reconstruct(self, waveform):
        """Waveforms -> reconstructed waveforms of the same length (posterior mean)."""
        waveform = ops.convert_to_tensor(waveform, "float32")
        length = waveform.shape[1] or ops.shape(waveform)[1]
        features = self.frontend(self.frontend.pad_input(waveform))
        decoded = self.decode_features(self.encode_features(features)[0])
        decoded = decoded[:, : features.shape[1] or ops.shape(features)[1]]
        return self.waveform_of_length(decoded, length)

    def waveform_of_length(self, decoded, length):
        """Decoder output -> waveforms of exactly ``length`` samples."""
        return self.frontend.to_waveform_of_length(decoded, length)

    def sample(self, num_samples, num_samples_audio, seed=None):
        """Draw waveforms of ``num_samples_audio`` samples from the prior."""
        latent_frames = -(-self.frontend.num_frames(num_samples_audio) // self.time_compression)
        z = keras.random.normal((num_samples, latent_frames, self.latent_dim),
                                seed=seed if seed is not None else self.seed_generator)
        return self.decode(z, length=num_samples_audio)

    def interpolate(self, waveform_a, waveform_b, steps=5):
        """Decode ``steps`` points on the line between the latents of two waveforms."""
        za, zb = self.encode(waveform_a[None]), self.encode(waveform_b[None])
        alphas = np.linspace(0.0, 1.0, steps)
        z = ops.concatenate([za * (1.0 - float(a)) + zb * float(a) for a in alphas], axis=0)
        return self.decode(z, length=int(waveform_a.shape[-1]))

    @property
    def sample_rate(self):
        return self.frontend.sample_rate

    def audio_examples(self, clips):
        """Input clips, their reconstructions and (VAE) prior samples, for listening."""
        clips = ops.convert_to_tensor(clips, "float32")
        out = {"input": clips, "reconstruction": self.reconstruct(clips)}
        if self.variational:
            out["prior_sample"] = self.sample(int(clips.shape[0]), int(clips.shape[1]), seed=0)
        return out

    def serving_endpoints(self):
        """Exported signatures: name -> (function, input shapes). Any batch and length."""
        return {
            "forward": (self.reconstruct, [(None, None)]),
            "encode": (self.encode, [(None, None)]),
            "decode": (self.decode, [(None, None, self.latent_dim)]),
        }

    # ----------------------------------------------------------------- training
    def call(self, inputs, training=False):
        waveform, condition = self.split_inputs(inputs)
        waveform = ops.convert_to_tensor(waveform, "float32")
        power = self.frontend.power_mel(waveform)
        features = self.frontend.normalized_log(power)
        z_mean, z_log_var = self.encode_features(features, condition)
        if self.variational and training:
            eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
            z = z_mean + ops.exp(0.5 * z_log_var) * eps
        else:
            z = z_mean
        frames = features.shape[1] or ops.shape(features)[1]
        decoded = self.decode_features(z, condition)[:, :frames]
        if training:
            self.train_steps.assign_add(1.0)
        return {"features": features, "power_mel": power, "decoded": decoded,
                "z_mean": z_mean, "z_log_var": z_log_var}

    def kl_weight(self):
        """Current KL weight (``beta`` times the warm-up ramp)."""
        if not self.variational:
            return ops.convert_to_tensor(0.0)
        if self.kl_warmup_steps <= 0:
            return ops.convert_to_tensor(self.beta)
        return self.beta * ops.minimum(1.0, self.train_steps / float(self.kl_warmup_steps))

    def reconstruction_nll(self, features, power_mel, decoded):
        """``(summed negative log-likelihood, feature MSE)`` of a decoder output.

        ``features`` / ``power_mel``: the front-end's normalised log-mel and power mel
        of the input; ``decoded``: the decoder output cut to the same frames."""
        if self.likelihood == "gaussian":
            nll = ops.sum(ops.square(features - decoded)) / (2.0 * self.gaussian_scale ** 2)
            return nll, ops.mean(ops.square(features - decoded))
        # Both sides floored at the power the features clip to (-1), so bins far below
        # the normalisation range cannot dominate the ratio.
        floor = self.frontend.power_floor
        log_variance = ops.logaddexp(
            self.frontend.normalize.inverse(decoded) * (np.log(10.0) / 10.0),
            ops.full_like(decoded, float(np.log(floor))))
        nll = ops.sum(itakura_saito_log(ops.log(power_mel + floor), log_variance))
        return nll, ops.mean(ops.square(features - ops.clip(decoded, -1.0, 1.0)))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if y_pred is None:
            y_pred = self(x, training=training)
        features, decoded = y_pred["features"], y_pred["decoded"]
        frames = ops.cast(ops.shape(features)[0] * ops.shape(features)[1], "float32")
        nll, mse = self.reconstruction_nll(features, y_pred["power_mel"], decoded)
        reconstruction = nll / frames
        kl = ops.sum(gaussian_kl(y_pred["z_mean"], y_pred["z_log_var"])) / frames
        self.reconstruction_tracker.update_state(reconstruction)
        self.kl_tracker.update_state(kl)
        self.mse_tracker.update_state(mse)
        return replica_loss(reconstruction + self.kl_weight() * kl)

    @property
    def metrics(self):
        return super().metrics + [self.reconstruction_tracker, self.kl_tracker, self.mse_tracker]

    def build(self, input_shape=None):
        self.call(ops.zeros((1, 4 * self.frontend.n_fft)))
        self.built = True

    def get_config(self):
        return {**super().get_config(), **self.frontend.arguments(),
                "latent_dim": self.latent_dim, "channels": self.channels,
                "num_downsamples": self.num_downsamples, "kernel_size": self.kernel_size,
                "variational": self.variational, "likelihood": self.likelihood,
                "gaussian_scale": self.gaussian_scale, "beta": self.beta,
                "kl_warmup_steps": self.kl_warmup_steps, "seed": self.seed}
