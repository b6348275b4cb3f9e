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
Gumbel-max with noise drawn up front, so a seed fixes the result on every backend), then
the VQ-VAE decodes the codes to audio. A code's logits see only a few rows above it and
columns around it (:attr:`PixelCNNPrior.context`), so per row the vertical stacks run
once over the rows above, and per code the horizontal stacks over the columns to its
left: a cost per code that does not grow with the map.
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
    # codes (num x positions) from which torch compiles the step: compiling took about 11 s
    # and saved 0.87 ms per code (bench_priors, 2 CPU cores), repaid from about 12,600
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
        conditions = self._conditions(labels)
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

    def _conditions(self, labels):
        return ([_lookup(emb, labels) for emb in self.label_embeddings] if self.domains
                else [None] * self.num_layers)

    def rows_above(self, codes, row, labels=None):
        """What each gated layer's horizontal stack reads from the rows above ``row``
        (an int or 0-d int32 tensor) of code maps ``[B, rows, columns]``: per layer,
        ``[B, 1, columns, 2 * filters]``. Only the vertical stacks' window of rows above
        (``context[0]`` rows, moved inside the map at its top) is computed: a sampler
        runs this once per row, then :meth:`logits_at` once per code."""
        num, rows, columns = (int(d) for d in codes.shape)
        height = min(rows, self.context[0])
        row = ops.convert_to_tensor(row, "int32")
        top = ops.clip(row - height, 0, rows - height)  # the window ends at row - 1
        seen = ops.take(codes, top + ops.arange(height, dtype="int32"), axis=1)
        previous = ops.maximum(row - 1 - top, 0)
        exists = ops.cast(row > 0, self.embedding.embeddings.dtype)  # zeros above row 0
        v, above = _lookup(self.embedding, seen), []
        for stack, condition in zip(self.stacks, self._conditions(labels)):
            v_feat = stack.vertical(v)
            above.append(stack.to_horizontal(ops.take(v_feat, previous, axis=1)[:, None]
                                             * exists))
            v = stack.vertical_output(v_feat, condition)
        return above

    def logits_at(self, row_codes, column, above, labels=None):
        """Logits ``[B, K]`` at ``column`` (an int or 0-d int32 tensor) of a row whose
        codes are ``row_codes`` ``[B, columns]`` (those left of ``column`` count) and
        whose :meth:`rows_above` are ``above``: equal to ``logits(codes)[:, row,
        column]``, computed over the row's ``context[1] + 1`` columns up to ``column``
        (moved inside the row at its left edge) through the horizontal stacks only."""
        num, columns = (int(d) for d in row_codes.shape)
        width = min(columns, self.context[1] + 1)
        column = ops.convert_to_tensor(column, "int32")
        left = ops.clip(column - (width - 1), 0, columns - width)
        window = left + ops.arange(width, dtype="int32")
        h = _lookup(self.embedding, ops.take(row_codes, window, axis=1))[:, None]
        for stack, from_above, condition in zip(self.stacks, above, self._conditions(labels)):
            h = stack.horizontal(h, ops.take(from_above, window, axis=2), condition)
        return self._head(ops.take(h[:, 0], column - left, axis=1))

    @inference
    def sample_codes(self, num, rows, seed=0, temperature=None, label=None,
                     compile_steps=None):
        """Draw code maps ``[num, rows, columns]`` in raster order, a loop over rows
        around a loop over the row's codes (``label``: the domain index of a
        conditioned prior).

        Per row the vertical stacks run once over the rows above (:meth:`rows_above`),
        and per code the horizontal stacks over the columns to its left
        (:meth:`logits_at`), never the whole network over the whole map: the same
        logits (tested), at a cost per code that does not grow with the length drawn.
        ``compile_steps`` (torch; JAX and TF compile the whole loop anyway): each code's
        step as one ``torch.compile``d graph (:func:`zoo.engine.step_loop`); ``None``
        compiles draws of at least ``COMPILE_STEPS_FROM`` codes."""
        columns = self.vqvae.frontend.n_mels // self.vqvae.downsampling
        temperature = float(temperature or self.temperature)
        if compile_steps is None:
            compile_steps = num * rows * columns >= self.COMPILE_STEPS_FROM
        gumbel = ops.reshape(gumbel_noise((num, rows * columns, self.num_codes), seed),
                             (num, rows, columns, self.num_codes))
        labels = self.label_array(None if label is None else ops.full((num,), label, "int32"),
                                  num)

        def draw_row(i, maps):
            above = self.rows_above(maps, i, labels)
            noise = ops.take(gumbel, i, axis=1)

            def draw(j, row):
                scores = (self.logits_at(row, j, above, labels) / temperature
                          + ops.take(noise, j, axis=1))
                new = ops.cast(ops.argmax(scores, axis=-1), "int32")
                return ops.where((ops.arange(columns, dtype="int32") == j)[None, :],
                                 new[:, None], row)

            row = step_loop(0, columns, draw, ops.zeros((num, columns), "int32"),
                            compile_steps)
            return ops.where((ops.arange(rows, dtype="int32") == i)[None, :, None],
                             row[:, None, :], maps)

        return ops.fori_loop(0, rows, draw_row, ops.zeros((num, rows, columns), "int32"))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "num_layers": self.num_layers,
                "kernel_size": self.kernel_size, "domains": list(self.domains)}
