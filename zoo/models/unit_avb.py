"""The Adversarial Variational Bayes generative translation network of seed 000: UNIT with
the analytic KL terms replaced by AVB's learned KL discriminators.

:class:`UNITAVB` is :class:`zoo.models.unit.UNIT` with the slides' "our architecture":

* ResNet generators whose middle layers are shared between the domains (UNIT's shared
  blocks, unchanged);
* implicit encoders: ``noise_dim`` channels of ``N(0, I)`` noise are appended to each
  encoder's input and the code is ``mu(x, eps) + N(0, I)``, so ``q_d(z|x)`` is a
  Gaussian mixture with no closed-form KL (conversion uses the noise-free mean);
* discriminators with a shared final layer: ``D_A`` and ``D_B`` have their own
  convolutions but the same last (logit) layer at every scale;
* two KL discriminators ``T_A(x, z)``, ``T_B(x, z)`` (:class:`layers.LatentCritic`), one
  per posterior, trained with the logistic loss on ``(x_d, z ~ q_d(z|x_d))`` against
  ``(x_d, z ~ N(0, I))`` (objective ``kl_discriminator``). Every KL term of the UNIT
  objective (VAE and cycle) becomes ``mean T_d(x, z) / latent_dim``, the estimate of
  ``log q_d(z|x) - log p(z)`` per latent element (UNIT's analytic term is per element
  too, so the seed's lambda1 and lambda3 keep their meaning). The cycle term
  ``KL(q_2(z|x_1^{1->2}))`` is scored by ``T_B`` on the translated features.
"""
import keras
from keras import ops

from layers import LatentCritic, nonsaturating_discriminator_loss
from zoo.engine import Objective, check_positive
from zoo.models.chunking import pad_to_multiple
from zoo.models.unit import UNIT

__all__ = ["UNITAVB"]


@keras.saving.register_keras_serializable(package="zoo")
class UNITAVB(UNIT):
    """UNIT + AVB (seed 000): waveforms of domain A <-> domain B.

    Args:
        noise_dim: noise channels appended to each encoder's input.
        critic_channels: width of the KL discriminators ``T_A``, ``T_B``.
        **kwargs: :class:`~zoo.models.unit.UNIT` arguments.
    """

    def __init__(self, noise_dim=8, critic_channels=64, **kwargs):
        check_positive(noise_dim=noise_dim, critic_channels=critic_channels)
        self.noise_dim = int(noise_dim)  # read while UNIT builds the encoders
        super().__init__(**kwargs)
        self.critic_channels = int(critic_channels)
        self.kl_critics = [LatentCritic(self.critic_channels, self.num_downsamples,
                                        name=f"kl_critic_{d}") for d in ("a", "b")]

    def encoder_noise_channels(self):
        return self.noise_dim

    def _build_discriminators(self):
        shared = [keras.layers.Conv1D(1, 3, padding="same", name=f"discriminator_logits_{s}")
                  for s in range(self.discriminator_scales)]
        return [self._discriminator(d, shared_logits=shared) for d in ("a", "b")]

    def build_extra(self, features, z):
        for critic in self.kl_critics:
            critic(features, z)

    def sample_posterior(self, features, d, training=False):
        """``(z, mu)``: ``z = mu(x, eps) + N(0, I)`` with input noise ``eps``; ``mu`` is
        the noise-free mean."""
        x = pad_to_multiple(features, self.time_compression, value=self.SILENCE)
        noise = keras.random.normal(tuple(ops.shape(x)[:2]) + (self.noise_dim,),
                                    seed=self.seed_generator)
        code = self.encode_domain(x, d, noise=noise, training=training)
        z = code + keras.random.normal(ops.shape(code), seed=self.seed_generator)
        return z, code

    def kl_term(self, features, z, mu, d, training=False):
        """``mean T_d(x, z) / latent_dim``: the critic's KL estimate per latent element."""
        x = pad_to_multiple(features, self.time_compression, value=self.SILENCE)
        return ops.mean(self.kl_critics[d](x, z, training=training)) / self.latent_dim

    def objectives(self):
        unit = super().objectives()
        return unit[:1] + [
            Objective("kl_discriminator", self.kl_critics, self.kl_discriminator_loss,
                      metrics=("kl_critic_accuracy",), role="discriminator")] + unit[1:]

    def kl_discriminator_loss(self, data, training=False):
        """Logistic loss of ``T_d``: posterior draws (label 1) vs prior draws (label 0)."""
        a, b = self.split_domains(data)
        loss, accuracy = 0.0, 0.0
        for d, wave in enumerate((a, b)):
            x = self._domain_features(wave)
            z = ops.stop_gradient(self.sample_posterior(x, d, training=training)[0])
            prior = keras.random.normal(ops.shape(z), seed=self.seed_generator)
            t_q = self.kl_critics[d](x, z, training=training)
            t_p = self.kl_critics[d](x, prior, training=training)
            loss = loss + nonsaturating_discriminator_loss(t_q, t_p)
            accuracy = accuracy + 0.25 * (ops.mean(ops.cast(t_q > 0, "float32"))
                                          + ops.mean(ops.cast(t_p < 0, "float32")))
        return loss, {"kl_critic_accuracy": accuracy}

    def get_config(self):
        return {**super().get_config(), "noise_dim": self.noise_dim,
                "critic_channels": self.critic_channels}
