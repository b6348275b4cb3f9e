"""Adversarial Variational Bayes (Mescheder, Nowozin & Geiger 2017, "Adversarial Variational
Bayes: Unifying Variational Autoencoders and Generative Adversarial Networks").

The spectrogram VAE of :mod:`zoo.models.vae` (same front-end, encoder / decoder, and
the same sampling, reconstruction and interpolation API), with the analytic KL term
replaced by a learned discriminator ``T(x, z)`` (:class:`layers.LatentCritic`):

* ``adversary`` objective: the logistic loss on ``(x, z ~ q(z|x))`` (label 1) against
  ``(x, z ~ p(z) = N(0, I))`` (label 0). Its optimum is
  ``T*(x, z) = log q(z|x) - log p(z)`` (per latent frame: the critic scores each
  latent frame, so the estimate of a sequence's KL is the sum of per-frame terms,
  exact when the posterior factorises over frames, as the Gaussian one does).
* ``vae`` objective: ``E_q[-log p(x|z)] + beta * E_eps[T(x, z(x, eps))]``, the ELBO
  with ``T`` in place of ``KL(q(z|x) || p(z))``, per spectrogram frame, ``beta``
  warmed up over ``kl_warmup_steps`` batches.

Encoders (``encoder``):

* ``"implicit"`` (default): noise ``eps ~ N(0, I)`` (``noise_dim`` channels per
  frame) is concatenated to the features at the encoder's input, which outputs ``z``:
  ``q(z|x)`` has no closed form, which is what AVB is for. ``encode`` returns the
  posterior mean estimated from ``moment_samples`` draws with a fixed seed
  (deterministic).
* ``"gaussian"``: the VAE's ``N(mu(x), sigma(x)^2)``. The critic's estimate can then be
  checked against the closed-form KL (:meth:`AdversarialVAE.kl_report`).

``adaptive_contrast=True`` (the paper's Section 3.3): the critic compares the
normalised code ``(z - mu(x)) / sigma(x)`` with ``N(0, I)`` (``mu``, ``sigma``: the
posterior's moments, estimated from ``moment_samples`` draws for the implicit
encoder, exact for the Gaussian one) and the KL estimate becomes
``T(x, z~) + log r(z|x) - log p(z)`` with ``r = N(mu, sigma^2)``, which removes from
the critic's task everything a Gaussian explains.
"""
import keras
import numpy as np
from keras import ops

from layers import LatentCritic, gaussian_kl, nonsaturating_discriminator_loss
from zoo.engine import AdversarialModel, Objective, check_positive
from zoo.models.chunking import pad_to_multiple
from zoo.models.vae import SpectrogramVAE

__all__ = ["AdversarialVAE", "ENCODERS"]

ENCODERS = ("implicit", "gaussian")
_LOG_2PI = float(np.log(2.0 * np.pi))


def _gaussian_log_density(z, mean, log_var):
    """``log N(z; mean, exp(log_var))`` summed over the last axis."""
    return -0.5 * ops.sum(_LOG_2PI + log_var + ops.square(z - mean) * ops.exp(-log_var), axis=-1)


@keras.saving.register_keras_serializable(package="zoo")
class AdversarialVAE(SpectrogramVAE, AdversarialModel):
    """AVB on spectrograms: waveform in, waveform out, ``T(x, z)`` for the KL.

    Args:
        encoder: ``"implicit"`` (noise at the encoder's input) or ``"gaussian"``.
        noise_dim: noise channels per frame of the implicit encoder.
        adaptive_contrast: compare normalised codes with ``N(0, I)`` (module docstring).
        moment_samples: posterior draws for the implicit encoder's mean (``encode``) and
            for adaptive contrast's moments.
        critic_channels: width of ``T(x, z)``.
        **kwargs: :class:`~zoo.models.vae.SpectrogramVAE` arguments (front-end,
            ``latent_dim``, ``channels``, ``num_downsamples``, ``kernel_size``,
            ``likelihood``, ``gaussian_scale``, ``beta``, ``kl_warmup_steps``, ``seed``).

    Example:
    >>> avb = AdversarialVAE(latent_dim=8, channels=32, critic_channels=32)
    >>> avb.reconstruct(np.zeros((1, 16384), "float32")).shape
    (1, 16384)
    """

    def __init__(self, encoder="implicit", noise_dim=16, adaptive_contrast=False,
                 moment_samples=8, critic_channels=128, **kwargs):
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {encoder!r}")
        if not kwargs.pop("variational", True):
            raise ValueError("AdversarialVAE is variational (variational=False is the 'ae')")
        check_positive(noise_dim=noise_dim, moment_samples=moment_samples,
                       critic_channels=critic_channels)
        # read by _build_encoder, which SpectrogramVAE.__init__ calls
        self.encoder_type, self.noise_dim = encoder, int(noise_dim)
        super().__init__(variational=True, **kwargs)
        self.adaptive_contrast = bool(adaptive_contrast)
        self.moment_samples, self.critic_channels = int(moment_samples), int(critic_channels)
        self.critic = LatentCritic(self.critic_channels, self.num_downsamples, name="critic")

    # ----------------------------------------------------------------- networks
    def _build_encoder(self):
        if self.encoder_type == "gaussian":
            return super()._build_encoder()
        stack = self._conv(self.channels)
        for _ in range(self.num_downsamples):
            stack += self._conv(self.channels, 4, strides=2) + self._conv(self.channels)
        return keras.Sequential(stack + [keras.layers.Conv1D(self.latent_dim, 1)],
                                name="encoder")

    def build(self, input_shape=None):
        super().build(input_shape)
        features = ops.zeros((1, 8 * self.time_compression, self.frontend.n_mels))
        self.critic(features, ops.zeros((1, 8, self.latent_dim)))
        self.built = True

    def _create_trackers(self):
        """None: the objectives report reconstruction and the KL estimate."""

    @property
    def metrics(self):
        return AdversarialModel.metrics.fget(self)  # the objectives' trackers

    # ---------------------------------------------------------------- posterior
    def _padded(self, features):
        return pad_to_multiple(features, self.time_compression, value=-1.0)

    def posterior_draws(self, features, num, seed=None, training=False):
        """``num`` draws ``z ~ q(z|x)`` ``[num, B, latent_frames, latent_dim]`` and the
        posterior's moments ``(mean, log_var)`` (exact for the Gaussian encoder,
        estimated from the draws for the implicit one)."""
        seed = self.seed_generator if seed is None else seed
        x = self._padded(features)
        if self.encoder_type == "gaussian":
            mean, log_var = ops.split(self.encoder(x, training=training), 2, axis=-1)
            log_var = ops.clip(log_var, -30.0, 20.0)
            eps = keras.random.normal((num,) + tuple(ops.shape(mean)), seed=seed)
            return mean + ops.exp(0.5 * log_var) * eps, mean, log_var
        batch, frames = ops.shape(x)[0], ops.shape(x)[1]
        tiled = ops.tile(x, (num, 1, 1))
        noise = keras.random.normal((num * batch, frames, self.noise_dim), seed=seed)
        z = self.encoder(ops.concatenate([tiled, noise], axis=-1), training=training)
        z = ops.reshape(z, (num, batch, -1, self.latent_dim))
        mean = ops.mean(z, axis=0)
        variance = ops.mean(ops.square(z - mean), axis=0)
        return z, mean, ops.log(variance + 1e-4)

    def encode_features(self, features, condition=None):
        """Normalised log-mel -> posterior ``(mean, log_var)``: exact (Gaussian encoder)
        or from ``moment_samples`` draws with a fixed seed (implicit; deterministic)."""
        if self.encoder_type == "gaussian":
            return super().encode_features(features, condition)
        _, mean, log_var = self.posterior_draws(features, self.moment_samples, seed=0)
        return mean, log_var

    def feature_map_input(self, features):
        """The encoder's input for :meth:`feature_maps`: with zero noise (implicit encoder)."""
        x = self._padded(features)
        if self.encoder_type == "gaussian":
            return x
        noise = ops.zeros(tuple(ops.shape(x)[:2]) + (self.noise_dim,), dtype=x.dtype)
        return ops.concatenate([x, noise], axis=-1)

    # ----------------------------------------------------------------- KL terms
    def _critic_codes(self, z, mean, log_var):
        """What the critic sees of a posterior draw: ``z`` or, with adaptive contrast,
        ``(z - mean) / sigma``."""
        if not self.adaptive_contrast:
            return z
        return (z - mean) * ops.exp(-0.5 * log_var)

    def kl_estimate(self, features, z, mean, log_var, training=False):
        """The critic's estimate of ``log q(z|x) - log p(z)`` summed over latent dims,
        per latent frame ``[B, latent_frames]`` (with adaptive contrast
        ``T(x, z~) + log r(z|x) - log p(z)``)."""
        t = self.critic(self._padded(features), self._critic_codes(z, mean, log_var),
                        training=training)
        if not self.adaptive_contrast:
            return t
        zeros = ops.zeros_like(mean)
        return t + _gaussian_log_density(z, mean, log_var) - _gaussian_log_density(z, zeros, zeros)

    def kl_weight(self):
        """``beta`` times the warm-up ramp over ``kl_warmup_steps`` trained batches."""
        if self.kl_warmup_steps <= 0:
            return ops.convert_to_tensor(self.beta)
        step = ops.cast(self.adversarial_step, "float32")
        return self.beta * ops.minimum(1.0, step / float(self.kl_warmup_steps))

    # ----------------------------------------------------------------- losses
    def objectives(self):
        return [
            Objective("adversary", self.critic, self.adversary_loss,
                      metrics=("critic_accuracy",), role="discriminator"),
            Objective("vae", [self.encoder, self.decoder], self.vae_loss,
                      metrics=("reconstruction", "kl_estimate", "feature_mse")),
        ]

    def _features(self, data):
        waveform = ops.convert_to_tensor(self._unpack(data), "float32")
        power = self.frontend.power_mel(waveform)
        return self.frontend.normalized_log(power), power

    def adversary_loss(self, data, training=False):
        """Logistic loss of ``T``: posterior draws against prior draws (module docstring)."""
        features, _ = self._features(data)
        z, mean, log_var = self.posterior_draws(features, 1, training=training)
        z = ops.stop_gradient(z[0])
        codes = ops.stop_gradient(self._critic_codes(z, mean, log_var))
        prior = keras.random.normal(ops.shape(z), seed=self.seed_generator)
        x = self._padded(features)
        t_q = self.critic(x, codes, training=training)
        t_p = self.critic(x, prior, training=training)
        accuracy = 0.5 * (ops.mean(ops.cast(t_q > 0, "float32"))
                          + ops.mean(ops.cast(t_p < 0, "float32")))
        return nonsaturating_discriminator_loss(t_q, t_p), {"critic_accuracy": accuracy}

    def vae_loss(self, data, training=False):
        """Reconstruction NLL + ``beta`` x the critic's KL estimate, per spectrogram frame."""
        features, power = self._features(data)
        frames = features.shape[1] or ops.shape(features)[1]
        count = ops.cast(ops.shape(features)[0] * frames, "float32")
        z, mean, log_var = self.posterior_draws(features, 1, training=training)
        z = z[0]
        decoded = self.decode_features(z)[:, :frames]
        nll, mse = self.reconstruction_nll(features, power, decoded)
        kl = ops.sum(self.kl_estimate(features, z, mean, log_var, training=training)) / count
        reconstruction = nll / count
        return reconstruction + self.kl_weight() * kl, {
            "reconstruction": reconstruction, "kl_estimate": kl, "feature_mse": mse}

    def call(self, inputs, training=False):
        """Waveforms -> the VAE's dict (features, decoded, posterior moments)."""
        return super().call(inputs, training=False)

    # ----------------------------------------------------------------- analysis
    def kl_report(self, waveform, draws=8, seed=0):
        """The critic's KL estimate beside the closed form, nats per latent frame.

        Returns ``{"estimate": float, "analytic": float or None}``: the mean over the
        clips' latent frames and ``draws`` posterior draws of the estimate, and (Gaussian
        encoder) the mean of ``KL(N(mu, sigma^2) || N(0, I))``.
        """
        waveform = ops.convert_to_tensor(waveform, "float32")
        features = self.frontend(self.frontend.pad_input(waveform))
        z, mean, log_var = self.posterior_draws(features, int(draws), seed=int(seed))
        estimates = [ops.convert_to_numpy(self.kl_estimate(features, z[i], mean, log_var))
                     for i in range(int(draws))]
        report = {"estimate": float(np.mean(estimates)), "analytic": None}
        if self.encoder_type == "gaussian":
            report["analytic"] = float(np.mean(ops.convert_to_numpy(gaussian_kl(mean, log_var))))
        return report

    def get_config(self):
        return {**super().get_config(), "encoder": self.encoder_type,
                "noise_dim": self.noise_dim, "adaptive_contrast": self.adaptive_contrast,
                "moment_samples": self.moment_samples, "critic_channels": self.critic_channels}
