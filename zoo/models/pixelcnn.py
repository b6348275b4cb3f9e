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
JAX and TF; on torch each step is one ``torch.compile``d graph for long draws;
Gumbel-max with noise drawn up front, so a seed fixes the result on every backend), each
step running the network over the code's context window only, then the VQ-VAE decodes
the codes to audio.
"""
import keras
from keras import layers as kl
from keras import ops

from layers import GatedMaskedConv2D, apply_built
from zoo.engine import check_positive, inference, step_loop
from zoo.engine.domains import domain_names
from zoo.models.prior import CodePrior, gumbel_noise
from zoo.models.vqvae import SpectrogramVQVAE


def _lookup(embedding, indices):
    """A built ``Embedding``'s rows at int ``indices`` (its ``call``, without a layer call)."""
    return ops.take(embedding.embeddings, ops.convert_to_tensor(indices, "int32"), axis=0)


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
    # codes (num x positions) from which torch compiles the step: compiling took about 16 s
    # and saved 1.1 ms per code (bench_priors, 2 CPU cores), repaid from about 14,000
    COMPILE_STEPS_FROM = 16384

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
        # built here and applied through their weights and ``call`` (no layer calls): the
        # same network, and sampling steps compile on torch as one graph
        features = (None, None, None, self.filters)
        for layer in [self.embedding, *self.label_embeddings]:
            layer.build((None,))
        for layer in [*self.stacks, self.head]:
            layer.build(features)

    # ---------------------------------------------------------------- the prior
    def logits(self, codes, labels=None):
        """Codes ``[B, rows, columns]`` (and int32 domain ``labels`` ``[B]`` of a
        conditioned prior) -> logits ``[B, rows, columns, K]``; position ``(i, j)`` sees
        only the codes before it in raster order."""
        return self._head(self._features(codes, labels))

    def _features(self, codes, labels):
        """The gated stacks' causal output ``[B, rows, columns, filters]``."""
        h = _lookup(self.embedding, codes)
        conditions = ([_lookup(emb, labels) for emb in self.label_embeddings] if self.domains
                      else [None] * self.num_layers)
        v, h = self.stacks[0].call(h, condition=conditions[0])
        for stack, condition in zip(self.stacks[1:], conditions[1:]):
            v, h = stack.call([v, h], condition=condition)
        return h

    def _head(self, h):
        for layer in self.head.layers:
            h = apply_built(layer, h)
        return h

    def code_shape(self, num_samples_audio):
        """``(rows, columns)`` of the code map of ``num_samples_audio`` samples."""
        vq = self.vqvae
        samples = max(int(num_samples_audio), vq.frontend.n_fft)  # as the VQ-VAE pads
        rows = -(-vq.frontend.num_frames(samples) // vq.downsampling)
        return rows, vq.frontend.n_mels // vq.downsampling

    @property
    def context(self):
        """``(above, left, right)``: how far a position's logits can see: rows above its
        own, and columns left and right of it (the rows above reach ``right`` columns to
        the right and ``left - 1`` to the left; its own row, ``left`` columns to the
        left). Each gated layer's vertical stack widens the view by ``kernel_size // 2``
        rows up and columns both ways, and the horizontal stack reads it one row down;
        the horizontal stack reaches ``kernel_size // 2`` further left per layer, one
        more through the first layer's mask 'A' (``GatedMaskedConv2D``; tested by
        perturbation)."""
        reach = self.num_layers * (self.kernel_size // 2)
        return reach + 1, reach + 1, reach

    def window_logits(self, codes, position, labels=None):
        """Logits ``[B, K]`` at raster ``position`` (an int or 0-d int32 tensor) of code
        maps ``[B, rows, columns]``, equal to ``logits(codes)[:, i, j]`` but computed over
        the position's window only: its :attr:`context` (rows above by columns left and
        right, moved inside the map at its edges). This is what a sampling step runs."""
        num, rows, columns = (int(d) for d in codes.shape)
        above, left_reach, right_reach = self.context
        height = min(rows, above + 1)
        width = min(columns, left_reach + right_reach + 1)
        position = ops.convert_to_tensor(position, "int32")
        i, j = position // columns, position % columns
        top = ops.clip(i - (height - 1), 0, rows - height)
        left = ops.clip(j - left_reach, 0, columns - width)
        offsets = ops.reshape(ops.arange(height, dtype="int32")[:, None] * columns
                              + ops.arange(width, dtype="int32")[None, :], (-1,))
        seen = ops.take(ops.reshape(codes, (num, rows * columns)),
                        top * columns + left + offsets, axis=1)
        h = ops.reshape(self._features(ops.reshape(seen, (num, height, width)), labels),
                        (num, height * width, self.filters))
        return self._head(ops.take(h, (i - top) * width + (j - left), axis=1))

    @inference
    def sample_codes(self, num, rows, seed=0, temperature=None, label=None,
                     compile_steps=None):
        """Draw code maps ``[num, rows, columns]`` in raster order, one loop
        (``label``: the domain index of a conditioned prior).

        Each step runs the network over the code's window only (:meth:`window_logits`),
        not over the whole map: the same logits (tested), at a cost that does not grow
        with the length drawn. ``compile_steps`` (torch; JAX and TF compile the whole
        loop anyway): each step as one ``torch.compile``d graph
        (:func:`zoo.engine.step_loop`); ``None`` compiles draws of at least
        ``COMPILE_STEPS_FROM`` codes."""
        columns = self.vqvae.frontend.n_mels // self.vqvae.downsampling
        positions = rows * columns
        temperature = float(temperature or self.temperature)
        if compile_steps is None:
            compile_steps = num * positions >= self.COMPILE_STEPS_FROM
        gumbel = gumbel_noise((num, positions, self.num_codes), seed)
        labels = self.label_array(None if label is None else ops.full((num,), label, "int32"),
                                  num)

        def draw(p, flat):
            logits = self.window_logits(ops.reshape(flat, (num, rows, columns)), p, labels)
            scores = logits / temperature + ops.take(gumbel, p, axis=1)
            new = ops.cast(ops.argmax(scores, axis=-1), "int32")
            return ops.where((ops.arange(positions, dtype="int32") == p)[None, :],
                             new[:, None], flat)

        flat = step_loop(0, positions, draw, ops.zeros((num, positions), "int32"),
                         compile_steps)
        return ops.reshape(flat, (num, rows, columns))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "num_layers": self.num_layers,
                "kernel_size": self.kernel_size, "domains": list(self.domains)}
