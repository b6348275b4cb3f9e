"""Gated PixelCNN prior over a trained VQ-VAE's 2-D code maps (van den Oord et al. 2016,
"Conditional Image Generation with PixelCNN Decoders"; phase 2 of van den Oord et al.
2017, "Neural Discrete Representation Learning").

The prior holds its VQ-VAE frozen (as RAVE's second stage freezes its encoder): it reads
waveforms like every other zoo model, encodes them to codes inside, and learns
``p(code[i, j] | codes before it in raster order)``, rows being time (code frames) and
columns mel regions, so sampling runs forward in time. Network: an embedding of the
codes, one gated masked layer with mask 'A' and ``num_layers - 1`` with mask 'B'
(``layers.GatedMaskedConv2D``: vertical and horizontal stacks, no blind spot), then two
1x1 convolutions to ``K`` logits. With ``domains`` the prior is conditioned on a domain
label (the conditional gated PixelCNN: a learned per-layer embedding of the label is
added to both stacks' pre-gate features), trained on the data's domain folders and
sampled one domain at a time (``zoo sample --domain``).

Reported: ``bits_per_code`` (the negative log-likelihood in bits), beside ``log2 K``
(uniform) in :meth:`PixelCNNPrior.bits_report`. Sampling draws every code of a
``[num, rows, columns]`` map in raster order inside one ``ops.fori_loop`` (compiled on
JAX and TF; Gumbel-max with noise drawn up front, so a seed fixes the result on every
backend), then the VQ-VAE decodes the codes to audio.
"""
import keras
from keras import layers as kl
from keras import ops

from layers import GatedMaskedConv2D
from zoo.engine import check_positive, inference
from zoo.engine.domains import domain_names
from zoo.models.prior import CodePrior, gumbel_noise
from zoo.models.vqvae import SpectrogramVQVAE


@keras.saving.register_keras_serializable(package="zoo")
class PixelCNNPrior(CodePrior):
    """Autoregressive prior over a frozen spectrogram VQ-VAE's codes.

    Args:
        vqvae: the VQ-VAE (see :func:`zoo.models.prior.load_frozen`).
        filters: channels of the gated stacks.
        num_layers: gated masked layers (the first has mask 'A').
        kernel_size: odd width of the masked convolutions.
        temperature: default sampling temperature (logits divided by it).
        domains: domain names to condition on (the data's domain folders, sorted);
            empty for an unconditional prior.

    Example:
    >>> prior = PixelCNNPrior(vqvae="runs/vq")          # doctest: +SKIP
    >>> audio = prior.sample(4, 4 * 16000, seed=0)      # [4, 64000]
    """

    vqvae_class = SpectrogramVQVAE

    def __init__(self, vqvae=None, filters=64, num_layers=8, kernel_size=3, temperature=1.0,
                 domains=(), **kwargs):
        super().__init__(vqvae=vqvae, temperature=temperature, **kwargs)
        self.domains = domain_names(domains) if len(domains) else ()
        check_positive(filters=filters, num_layers=num_layers)
        if int(kernel_size) % 2 == 0 or int(kernel_size) < 1:
            raise ValueError(f"kernel_size must be an odd positive int, got {kernel_size}")
        self.filters, self.num_layers = int(filters), int(num_layers)
        self.kernel_size = int(kernel_size)
        self.embedding = kl.Embedding(self.num_codes, self.filters, name="embedding")
        self.stacks = [GatedMaskedConv2D(self.filters, self.kernel_size, "A" if i == 0 else "B",
                                         name=f"gated_{i}") for i in range(self.num_layers)]
        self.head = keras.Sequential([kl.ReLU(), kl.Conv2D(self.filters, 1), kl.ReLU(),
                                      kl.Conv2D(self.num_codes, 1)], name="head")
        self.label_embeddings = [kl.Embedding(len(self.domains), 2 * self.filters,
                                              name=f"label_{i}")
                                 for i in range(self.num_layers)] if self.domains else []

    # ---------------------------------------------------------------- the prior
    def logits(self, codes, labels=None):
        """Codes ``[B, rows, columns]`` (and int32 domain ``labels`` ``[B]`` of a
        conditioned prior) -> logits ``[B, rows, columns, K]``; position ``(i, j)`` sees
        only the codes before it in raster order."""
        h = self.embedding(ops.convert_to_tensor(codes, "int32"))
        conditions = ([emb(labels) for emb in self.label_embeddings] if self.domains
                      else [None] * self.num_layers)
        v, h = self.stacks[0](h, condition=conditions[0])
        for stack, condition in zip(self.stacks[1:], conditions[1:]):
            v, h = stack([v, h], condition=condition)
        return self.head(h)

    def code_shape(self, num_samples_audio):
        """``(rows, columns)`` of the code map of ``num_samples_audio`` samples."""
        vq = self.vqvae
        samples = max(int(num_samples_audio), vq.frontend.n_fft)  # as the VQ-VAE pads
        rows = -(-vq.frontend.num_frames(samples) // vq.downsampling)
        return rows, vq.frontend.n_mels // vq.downsampling

    @inference
    def sample_codes(self, num, rows, seed=0, temperature=None, label=None):
        """Draw code maps ``[num, rows, columns]`` in raster order, one ``ops.fori_loop``
        (``label``: the domain index of a conditioned prior)."""
        columns = self.vqvae.frontend.n_mels // self.vqvae.downsampling
        positions = rows * columns
        temperature = float(temperature or self.temperature)
        gumbel = gumbel_noise((num, positions, self.num_codes), seed)
        labels = self.label_array(None if label is None else ops.full((num,), label, "int32"),
                                  num)

        def draw(p, flat):
            logits = ops.reshape(self.logits(ops.reshape(flat, (num, rows, columns)), labels),
                                 (num, positions, self.num_codes))
            scores = ops.take(logits, p, axis=1) / temperature + ops.take(gumbel, p, axis=1)
            new = ops.cast(ops.argmax(scores, axis=-1), "int32")
            here = ops.arange(positions) == p
            return ops.where(here[None, :], new[:, None], flat)

        flat = ops.fori_loop(0, positions, draw, ops.zeros((num, positions), "int32"))
        return ops.reshape(flat, (num, rows, columns))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "num_layers": self.num_layers,
                "kernel_size": self.kernel_size, "domains": list(self.domains)}
