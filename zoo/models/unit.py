"""UNIT: unsupervised image-to-image translation networks (Liu, Breuel & Kautz 2017), on
spectrograms, with the losses and weights of seed 000's slides.

Two coupled VAE-GANs share one latent space. On normalised log-mel features
``[batch, frames, n_mels]`` (1-D convolutions along time, mel bands as channels):

* encoders ``E_d = E_shared o E_private_d`` (d in A, B): a width-7 convolution,
  ``num_downsamples`` stride-2 convolutions and ``private_blocks`` residual blocks per
  domain, then ``shared_blocks`` residual blocks and a 1x1 convolution to the latent
  mean ``mu`` that both domains share (the same variables: the shared high-level
  layers of UNIT). The posterior is ``q_d(z|x) = N(mu, I)``.
* generators ``G_d = G_private_d o G_shared``: a 1x1 convolution and ``shared_blocks``
  residual blocks shared by both domains, then per domain ``private_blocks`` residual
  blocks, upsampling convolutions and a width-7 convolution to ``n_mels`` with tanh.
* discriminators ``D_A``, ``D_B``: multiscale patch discriminators
  (:class:`layers.SpectrogramPatchDiscriminator`).

Losses, with ``x_1``, ``x_2`` the two domains' features, ``z_1 ~ q_1(z|x_1)``,
``x_1^{1->2} = G_2(z_1)`` (and symmetrically), lambda0..lambda4 = ``gan_weight``,
``kl_weight``, ``reconstruction_weight``, ``cycle_kl_weight``, ``cycle_weight``:

* GAN (discriminators and generators): ``lambda0 (log D_1(x_1) + log(1 - D_1(G_1(z_2))))``
  and symmetrically; the generators use the non-saturating form.
* VAE: ``lambda1 KL(q_1(z|x_1) || N(0, I)) - lambda2 log p_{G_1}(x_1|z_1)``.
* cycle consistency: ``lambda3 KL(q_1(z|x_1)) + lambda3 KL(q_2(z|x_1^{1->2}))
  - lambda4 log p_{G_1}(x_1 | z_2 ~ q_2(z|x_1^{1->2}))``, and symmetrically.

**Pitch.** Nothing in these losses ties a brass note's pitch to the same reed pitch:
with mel bands as channels the private first and last layers may map any band pattern
to any code, and the GAN, VAE and cycle terms are as happy with a conversion that plays
another melody in the same rhythm (measured by ``benchmarks/eval_unit_pitch.py``: the
converted f0 contour of a trained ``unit`` is uncorrelated or anti-correlated with its
source's). ``mirrored_init`` starts domain B's private encoder and generator as copies
of A's, so that training begins from a conversion that is A's reconstruction (same
pitch) and has only the timbre to learn; ``private_tie_weight`` adds
``private_tie_weight * sum ||w_A - w_B||^2`` over the private variables to the generator
loss, so that B's side stays near A's (alone, the mirrored start drifted away from the
identity in 1 of 3 seeds). Both are off by default (the seed's networks and losses); the
recipes turn them on.

``log p_G(x|z)`` is a Laplace likelihood: the mean absolute error. The KL of
``N(mu, I)`` from ``N(0, I)`` is ``mu^2 / 2`` per latent element; both the KL and the
L1 terms are means over elements (so the seed's weights keep their balance at any
size). :meth:`UNIT.kl_term` is the hook the UNIT+AVB subclass
(:mod:`zoo.models.unit_avb`) replaces with learned KL discriminators.

Conversion (any length, bounded memory) is :class:`SpectrogramTranslation`'s, in
both directions: ``convert(wave, target="B")`` (A -> B, the default),
``target="A"`` (B -> A), and ``reconstruct(wave, domain)`` (A -> A); the latent code
is the posterior mean.
"""
import keras
from keras import layers as kl
from keras import ops

from layers import (ResidualBlock1D, SpectrogramPatchDiscriminator,
                    nonsaturating_discriminator_loss, nonsaturating_generator_loss)
from zoo.engine import AdversarialModel, Capability, Objective, check_positive, inference
from zoo.models.chunking import pad_to_multiple
from zoo.models.spectral import SpectralFrontEnd
from zoo.models.translation import SpectrogramTranslation

__all__ = ["UNIT"]


@keras.saving.register_keras_serializable(package="zoo")
class UNIT(SpectrogramTranslation, AdversarialModel):
    """UNIT on spectrograms: waveforms of domain A <-> domain B.

    ``fit`` takes paired batches ``(a, b)`` of waveform crops (drawn independently: the
    translation is unsupervised).

    Args:
        sample_rate, n_fft, hop_length, n_mels, fmin, fmax, min_db, ref_db,
            griffin_lim_iters, mel_inversion_iters: the spectral front-end.
        channels: width of the encoders and generators.
        latent_dim: channels of the shared latent sequence.
        num_downsamples: stride-2 stages (``2 ** n`` frames per latent frame).
        private_blocks, shared_blocks: residual blocks per domain and shared ones.
        discriminator_channels, discriminator_layers, discriminator_scales: the
            multiscale patch discriminators.
        gan_weight, kl_weight, reconstruction_weight, cycle_kl_weight, cycle_weight:
            lambda0..lambda4 (seed 000: 10, 0.1, 100, 0.1, 100).
        chunk_frames: frames per conversion chunk (a multiple of ``2 ** num_downsamples``).
        max_chunks: chunks per network call when converting (bounds memory).
        mirrored_init: start B's private encoder and generator as copies of A's (own
            variables, equal values).
        private_tie_weight: weight of the squared distance between A's and B's private
            variables in the generator loss (:meth:`private_tie`; 0: none).
        domains: names of domains A and B (``convert``'s ``source`` / ``target``).
        seed: seed of the posterior sampling.

    Example:
    >>> unit = UNIT(n_fft=256, hop_length=64, n_mels=32, channels=16, latent_dim=8,
    ...             discriminator_channels=8)
    >>> unit.build()
    >>> unit.convert(np.zeros(4000, "float32"), target="A").shape
    (4000,)
    """

    capabilities = SpectrogramTranslation.capabilities | {Capability.RECONSTRUCT}
    bidirectional = True

    def __init__(self, sample_rate=16000, n_fft=1024, hop_length=256, n_mels=80, fmin=0.0,
                 fmax=None, min_db=-100.0, ref_db=0.0, griffin_lim_iters=32,
                 mel_inversion_iters=30, channels=128, latent_dim=32, num_downsamples=2,
                 private_blocks=1, shared_blocks=1, discriminator_channels=64,
                 discriminator_layers=3, discriminator_scales=2, gan_weight=10.0,
                 kl_weight=0.1, reconstruction_weight=100.0, cycle_kl_weight=0.1,
                 cycle_weight=100.0, chunk_frames=64, max_chunks=64, mirrored_init=False,
                 private_tie_weight=0.0, domains=("A", "B"), seed=None, **kwargs):
        super().__init__(**kwargs)
        check_positive(channels=channels, latent_dim=latent_dim, shared_blocks=shared_blocks,
                       discriminator_channels=discriminator_channels,
                       discriminator_layers=discriminator_layers,
                       discriminator_scales=discriminator_scales, max_chunks=max_chunks)
        weights = (gan_weight, kl_weight, reconstruction_weight, cycle_kl_weight, cycle_weight)
        if min(weights) < 0 or int(num_downsamples) < 0 or int(private_blocks) < 0:
            raise ValueError("loss weights, num_downsamples and private_blocks must be >= 0")
        domains = tuple(str(d) for d in domains)
        if len(domains) != 2 or domains[0] == domains[1]:
            raise ValueError(f"domains must be two distinct names, got {list(domains)}")
        self.frontend = SpectralFrontEnd(sample_rate, n_fft, hop_length, n_mels, fmin, fmax,
                                         min_db, ref_db, griffin_lim_iters, mel_inversion_iters,
                                         name="frontend")
        self.channels, self.latent_dim = int(channels), int(latent_dim)
        self.num_downsamples = int(num_downsamples)
        self.private_blocks, self.shared_blocks = int(private_blocks), int(shared_blocks)
        self.discriminator_channels = int(discriminator_channels)
        self.discriminator_layers = int(discriminator_layers)
        self.discriminator_scales = int(discriminator_scales)
        (self.gan_weight, self.kl_weight, self.reconstruction_weight, self.cycle_kl_weight,
         self.cycle_weight) = (float(w) for w in weights)
        if int(chunk_frames) < 1 or int(chunk_frames) % (2 * self.time_compression):
            raise ValueError(f"chunk_frames must be a positive multiple of "
                             f"{2 * self.time_compression}, got {chunk_frames}")
        self.chunk_frames, self.max_chunks = int(chunk_frames), int(max_chunks)
        self.mirrored_init = bool(mirrored_init)
        self.private_tie_weight = float(private_tie_weight)
        if self.private_tie_weight < 0:
            raise ValueError(f"private_tie_weight must be >= 0, got {private_tie_weight}")
        self.domains, self.seed = domains, seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.encoders = [self._build_private_encoder(d) for d in ("a", "b")]
        self.shared_encoder = self._build_shared_encoder()
        self.shared_generator = self._build_shared_generator()
        self.generators = [self._build_private_generator(d) for d in ("a", "b")]
        self.discriminators = self._build_discriminators()

    # ----------------------------------------------------------------- networks
    @property
    def time_compression(self):
        """Spectrogram frames per latent frame."""
        return 2 ** self.num_downsamples

    def encoder_noise_channels(self):
        """Noise channels appended to the encoders' input (0: none; UNIT+AVB's implicit
        encoders use them)."""
        return 0

    def _residual_blocks(self, h, count, prefix):
        for i in range(count):
            h = ResidualBlock1D(3, dilation_rate=2 ** i, name=f"{prefix}_res_{i}")(h)
        return h

    def _build_private_encoder(self, d):
        c = self.channels
        x = keras.Input((None, self.frontend.n_mels + self.encoder_noise_channels()))
        h = kl.LeakyReLU(0.2)(kl.Conv1D(c, 7, padding="same", name=f"enc_{d}_in")(x))
        for i in range(self.num_downsamples):
            h = kl.Conv1D(c, 4, strides=2, padding="same", name=f"enc_{d}_down_{i}")(h)
            h = kl.LeakyReLU(0.2)(h)
        h = self._residual_blocks(h, self.private_blocks, f"enc_{d}")
        return keras.Model(x, h, name=f"encoder_{d}")

    def _build_shared_encoder(self):
        x = keras.Input((None, self.channels))
        h = self._residual_blocks(x, self.shared_blocks, "enc_shared")
        mu = kl.Conv1D(self.latent_dim, 1, name="enc_shared_mu")(kl.LeakyReLU(0.2)(h))
        return keras.Model(x, mu, name="encoder_shared")

    def _build_shared_generator(self):
        z = keras.Input((None, self.latent_dim))
        h = kl.Conv1D(self.channels, 1, name="gen_shared_in")(z)
        h = self._residual_blocks(h, self.shared_blocks, "gen_shared")
        return keras.Model(z, h, name="generator_shared")

    def _build_private_generator(self, d):
        c = self.channels
        x = keras.Input((None, c))
        h = self._residual_blocks(x, self.private_blocks, f"gen_{d}")
        for i in range(self.num_downsamples):
            h = kl.UpSampling1D(2)(h)
            h = kl.LeakyReLU(0.2)(kl.Conv1D(c, 5, padding="same", name=f"gen_{d}_up_{i}")(h))
        y = kl.Conv1D(self.frontend.n_mels, 7, padding="same", activation="tanh",
                      name=f"gen_{d}_out")(h)
        return keras.Model(x, y, name=f"generator_{d}")

    def _discriminator(self, d, shared_logits=None):
        return SpectrogramPatchDiscriminator(
            self.discriminator_channels, self.discriminator_layers, self.discriminator_scales,
            shared_logits=shared_logits, name=f"discriminator_{d}")

    def _build_discriminators(self):
        """One multiscale discriminator per domain (UNIT+AVB shares their last layers)."""
        return [self._discriminator(d) for d in ("a", "b")]

    def build(self, input_shape=None):
        self.frontend(ops.zeros((1, 2 * self.frontend.n_fft)))
        frames = 2 * self.chunk_frames
        x = ops.zeros((1, frames, self.frontend.n_mels + self.encoder_noise_channels()))
        for d in (0, 1):
            h = self.encoders[d](x)
            mu = self.shared_encoder(h)
            self.generators[d](self.shared_generator(mu))
            self.discriminators[d](x[..., : self.frontend.n_mels])
        self.build_extra(x[..., : self.frontend.n_mels], mu)
        if self.mirrored_init:  # domain B's private networks start as copies of A's
            for nets in (self.encoders, self.generators):
                nets[1].set_weights(nets[0].get_weights())
        self.built = True

    def build_extra(self, features, z):
        """Build networks a subclass adds (UNIT+AVB's KL discriminators)."""

    # --------------------------------------------------------------- posterior
    def encode_domain(self, features, d, noise=None, training=False):
        """Posterior mean ``mu`` ``[B, frames / compression, latent]`` of domain ``d``'s
        features (padded with silence to a multiple of the compression)."""
        x = pad_to_multiple(features, self.time_compression, value=self.SILENCE)
        if self.encoder_noise_channels():
            if noise is None:  # inference: the noise-free code
                noise = ops.zeros(tuple(ops.shape(x)[:2]) + (self.encoder_noise_channels(),))
            x = ops.concatenate([x, noise], axis=-1)
        return self.shared_encoder(self.encoders[d](x, training=training), training=training)

    def sample_posterior(self, features, d, training=False):
        """``(z, mu)``: a draw ``z ~ q_d(z|x) = N(mu, I)`` and the mean."""
        mu = self.encode_domain(features, d, training=training)
        return mu + keras.random.normal(ops.shape(mu), seed=self.seed_generator), mu

    def generate(self, z, d, training=False):
        """Latents -> domain ``d``'s features."""
        return self.generators[d](self.shared_generator(z, training=training),
                                  training=training)

    def kl_term(self, features, z, mu, d, training=False):
        """``KL(q_d(z|x) || N(0, I))`` per latent element (mean): ``mean(mu^2) / 2``."""
        return 0.5 * ops.mean(ops.square(mu))

    # --------------------------------------------------------------- conversion
    def translate_chunks(self, features, training=False, source=0, target=1):
        """Features of domain ``source`` (any width) -> features of domain ``target``."""
        frames = features.shape[1] if features.shape[1] is not None else ops.shape(features)[1]
        out = self.generate(self.encode_domain(features, source, training=training), target,
                            training=training)
        return out[:, :frames]

    def reconstruct(self, waveform, domain="A"):
        """Waveforms of ``domain`` through its own encoder and generator (any length)."""
        return self.convert(waveform, source=domain, target=domain)

    def serving_endpoints(self):
        """``forward`` (A -> B) and ``backward`` (B -> A): waveforms of any length."""
        return {"forward": (self.translate, [(None, None)]),
                "backward": (self.translate_backward, [(None, None)])}

    @inference
    def translate_backward(self, waveform):
        """In-graph B -> A conversion (exported as ``backward``)."""
        return self.translate_pair(waveform, 1, 0)

    def audio_examples(self, clips):
        """Domain-A clips, their conversions to B and their reconstructions."""
        out = super().audio_examples(clips)
        out["reconstruction"] = self.reconstruct(out["input"])
        return out

    # ----------------------------------------------------------------- training
    def _domain_features(self, waveform):
        feats = self.frontend(ops.convert_to_tensor(waveform, "float32"))
        return pad_to_multiple(feats, self.time_compression, value=self.SILENCE)

    def objectives(self):
        return [
            Objective("discriminator", self.discriminators, self.discriminator_loss,
                      metrics=("real_score", "fake_score"), role="discriminator"),
            Objective("generator", [*self.encoders, self.shared_encoder, self.shared_generator,
                                    *self.generators], self.generator_loss,
                      metrics=("gan", "kl", "reconstruction", "cycle")
                      + (("private_tie",) if self.private_tie_weight else ())),
        ]

    def _cross(self, data, training):
        """Features of both domains, their posterior draws and translations."""
        a, b = self.split_domains(data)
        x = [self._domain_features(a), self._domain_features(b)]
        posts = [self.sample_posterior(x[d], d, training=training) for d in (0, 1)]
        crossed = [self.generate(posts[0][0], 1, training=training),   # x_1^{1->2}
                   self.generate(posts[1][0], 0, training=training)]   # x_2^{2->1}
        return x, posts, crossed

    def discriminator_loss(self, data, training=False):
        """``lambda0 [-log D_d(x_d) - log(1 - D_d(x^{other->d}))]`` summed over domains."""
        x, _, crossed = self._cross(data, training)
        loss, real, fake = 0.0, 0.0, 0.0
        for d, fake_x in ((0, crossed[1]), (1, crossed[0])):
            real_logits = self.discriminators[d](x[d], training=training)
            fake_logits = self.discriminators[d](ops.stop_gradient(fake_x), training=training)
            loss = loss + nonsaturating_discriminator_loss(real_logits, fake_logits)
            real = real + sum(ops.mean(r) for r in real_logits) / len(real_logits)
            fake = fake + sum(ops.mean(f) for f in fake_logits) / len(fake_logits)
        return self.gan_weight * loss, {"real_score": real / 2.0, "fake_score": fake / 2.0}

    def generator_loss(self, data, training=False):
        """GAN + VAE + cycle-consistency terms of both domains (module docstring).

        Logged unweighted: ``gan``, ``kl`` (posterior and cycle-posterior KLs),
        ``reconstruction`` and ``cycle`` (mean absolute errors), summed over domains, and
        ``private_tie`` when ``private_tie_weight`` is set."""
        x, posts, crossed = self._cross(data, training)
        gan = kl = weighted_kl = reconstruction = cycle = 0.0
        for d in (0, 1):
            other = 1 - d
            z, mu = posts[d]
            x_dd = self.generate(z, d, training=training)                 # reconstruction
            to_other = crossed[d]                                         # x_d^{d->other}
            z_back, mu_back = self.sample_posterior(to_other, other, training=training)
            x_cycle = self.generate(z_back, d, training=training)         # x_d^{d->o->d}
            gan = gan + nonsaturating_generator_loss(
                self.discriminators[other](to_other, training=training))
            kl_d = self.kl_term(x[d], z, mu, d, training=training)
            kl_cycle = self.kl_term(to_other, z_back, mu_back, other, training=training)
            kl = kl + kl_d + kl_cycle
            weighted_kl = (weighted_kl + (self.kl_weight + self.cycle_kl_weight) * kl_d
                           + self.cycle_kl_weight * kl_cycle)
            reconstruction = reconstruction + ops.mean(ops.abs(x_dd - x[d]))
            cycle = cycle + ops.mean(ops.abs(x_cycle - x[d]))
        loss = (self.gan_weight * gan + weighted_kl + self.reconstruction_weight * reconstruction
                + self.cycle_weight * cycle)
        logs = {"gan": gan, "kl": kl, "reconstruction": reconstruction, "cycle": cycle}
        if self.private_tie_weight:
            tie = self.private_tie()
            loss = loss + self.private_tie_weight * tie
            logs["private_tie"] = tie
        return loss, logs

    def private_tie(self):
        """Squared distance between A's and B's private variables, summed over all of
        them (``private_tie_weight`` keeps the two domains' band-to-code maps close)."""
        return sum(ops.sum(ops.square(a - b)) for nets in (self.encoders, self.generators)
                   for a, b in zip(nets[0].trainable_variables, nets[1].trainable_variables))

    def call(self, waveform, training=False):
        """Waveforms -> converted waveforms (the in-graph :meth:`translate`)."""
        return self.translate(waveform)

    def get_config(self):
        return {**super().get_config(), **self.frontend.arguments(),
                "channels": self.channels, "latent_dim": self.latent_dim,
                "num_downsamples": self.num_downsamples,
                "private_blocks": self.private_blocks, "shared_blocks": self.shared_blocks,
                "discriminator_channels": self.discriminator_channels,
                "discriminator_layers": self.discriminator_layers,
                "discriminator_scales": self.discriminator_scales,
                "gan_weight": self.gan_weight, "kl_weight": self.kl_weight,
                "reconstruction_weight": self.reconstruction_weight,
                "cycle_kl_weight": self.cycle_kl_weight, "cycle_weight": self.cycle_weight,
                "chunk_frames": self.chunk_frames, "max_chunks": self.max_chunks,
                "mirrored_init": self.mirrored_init,
                "private_tie_weight": self.private_tie_weight,
                "domains": list(self.domains), "seed": self.seed}
