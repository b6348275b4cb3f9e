"""Gated PixelCNN prior over a trained VQ-VAE's 2-D code maps (van den Oord et al. 2016,
"Conditional Image Generation with PixelCNN Decoders"; phase 2 of van den Oord et al.
2017, "Neural Discrete Representation Learning").

The prior holds its VQ-VAE frozen (as RAVE's second stage freezes its encoder): it reads
waveforms like every other zoo model, encodes them to codes inside, and learns
``p(code[i, j] | codes before it in raster order)``, rows being time (code frames) and
columns mel regions, so sampling runs forward in time. Network: an embedding of the
codes, one gated masked layer with mask 'A' and ``num_layers - 1`` with mask 'B'
(``layers.GatedMaskedConv2D``: vertical and horizontal stacks, no blind spot), then two
1x1 convolutions to ``K`` logits.

Reported: ``bits_per_code`` (the negative log-likelihood in bits), beside ``log2 K``
(uniform) in :meth:`PixelCNNPrior.bits_report`. Sampling draws every code of a
``[num, rows, columns]`` map in raster order inside one compiled loop (Gumbel-max
with noise drawn up front, so a seed fixes the result on every backend), then the
VQ-VAE decodes the codes to audio.
"""
import math

import keras
from keras import layers as kl
from keras import ops

from layers import GatedMaskedConv2D
from zoo.engine import Capability, ZooModel, check_positive, inference, replica_loss
from zoo.files import run_model_file
from zoo.models.vqvae import SpectrogramVQVAE


def frozen_vqvae(vqvae):
    """The VQ-VAE a prior models, frozen: a path (a run folder or ``.keras`` file of a
    trained ``vqvae``), a saved config (``keras.saving.serialize_keras_object``, as a
    saved prior stores it; its weights then load with the prior's) or a plain dict of
    ``SpectrogramVQVAE`` arguments (an untrained VQ-VAE: tests and smoke runs)."""
    if vqvae is None:
        raise ValueError("model_config.vqvae: the prior needs a trained VQ-VAE; train one "
                         "(zoo train vqvae --out runs/vq) and pass --set "
                         "model_config.vqvae='\"runs/vq\"'")
    if isinstance(vqvae, SpectrogramVQVAE):
        model = vqvae
    elif isinstance(vqvae, dict):
        model = (keras.saving.deserialize_keras_object(vqvae) if "class_name" in vqvae
                 else SpectrogramVQVAE(**vqvae))
    else:
        try:
            path = run_model_file(vqvae)
        except FileNotFoundError as err:
            raise ValueError(f"model_config.vqvae: {err}") from None
        model = keras.saving.load_model(path)
    if not isinstance(model, SpectrogramVQVAE):
        raise ValueError(f"model_config.vqvae: {vqvae!r} holds a {type(model).__name__}, "
                         "not a vqvae")
    if model.num_quantizers != 1:
        raise ValueError(f"model_config.vqvae: the PixelCNN prior models one codebook; this "
                         f"VQ-VAE has {model.num_quantizers} (train it with num_quantizers = 1)")
    _freeze(model)
    return model


def _freeze(model):
    """``model.trainable = False`` down to every sub-layer. Keras skips the propagation
    when the flag is already False (as a model deserialised from a frozen config is),
    so it is set True first."""
    model.trainable = True
    model.trainable = False


@keras.saving.register_keras_serializable(package="zoo")
class PixelCNNPrior(ZooModel):
    """Autoregressive prior over a frozen spectrogram VQ-VAE's codes.

    Args:
        vqvae: the VQ-VAE (see :func:`frozen_vqvae`).
        filters: channels of the gated stacks.
        num_layers: gated masked layers (the first has mask 'A').
        kernel_size: odd width of the masked convolutions.
        temperature: default sampling temperature (logits divided by it).

    Example:
    >>> prior = PixelCNNPrior(vqvae="runs/vq")          # doctest: +SKIP
    >>> audio = prior.sample(4, 4 * 16000, seed=0)      # [4, 64000]
    """

    capabilities = {Capability.SAMPLE, Capability.EXAMPLES}
    prerequisites = ("vqvae",)

    def __init__(self, vqvae=None, filters=64, num_layers=8, kernel_size=3, temperature=1.0,
                 **kwargs):
        super().__init__(**kwargs)
        check_positive(filters=filters, num_layers=num_layers, temperature=temperature)
        if int(kernel_size) % 2 == 0 or int(kernel_size) < 1:
            raise ValueError(f"kernel_size must be an odd positive int, got {kernel_size}")
        self.vqvae = frozen_vqvae(vqvae)
        self.filters, self.num_layers = int(filters), int(num_layers)
        self.kernel_size, self.temperature = int(kernel_size), float(temperature)
        self.num_codes = self.vqvae.num_codes
        self.embedding = kl.Embedding(self.num_codes, self.filters, name="embedding")
        self.stacks = [GatedMaskedConv2D(self.filters, self.kernel_size, "A" if i == 0 else "B",
                                         name=f"gated_{i}") for i in range(self.num_layers)]
        self.head = keras.Sequential([kl.ReLU(), kl.Conv2D(self.filters, 1), kl.ReLU(),
                                      kl.Conv2D(self.num_codes, 1)], name="head")
        self.bits_tracker = keras.metrics.Mean(name="bits_per_code")

    # ---------------------------------------------------------------- the prior
    def codes_of(self, waveform):
        """Waveforms ``[B, samples]`` -> the frozen VQ-VAE's codes ``[B, rows, columns]``."""
        vq = self.vqvae
        features = vq.frontend(vq.frontend.pad_input(waveform))
        return ops.stop_gradient(vq.quantizer(vq.encode_features(features), training=False)[1])

    def logits(self, codes):
        """Codes ``[B, rows, columns]`` -> logits ``[B, rows, columns, K]``; position
        ``(i, j)`` sees only the codes before it in raster order."""
        h = self.embedding(ops.convert_to_tensor(codes, "int32"))
        v, h = self.stacks[0](h)
        for stack in self.stacks[1:]:
            v, h = stack([v, h])
        return self.head(h)

    def nll_bits(self, codes):
        """Mean negative log-likelihood of ``codes`` in bits per code."""
        logits = self.logits(codes)
        nats = keras.losses.sparse_categorical_crossentropy(codes, logits, from_logits=True)
        return ops.mean(nats) / math.log(2.0)

    @inference
    def log_likelihood(self, waveform):
        """Bits per code of each waveform's codes ``[B]`` (the exported ``forward``)."""
        codes = self.codes_of(ops.convert_to_tensor(waveform, "float32"))
        logits = self.logits(codes)
        nats = keras.losses.sparse_categorical_crossentropy(codes, logits, from_logits=True)
        return ops.mean(nats, axis=(1, 2)) / math.log(2.0)

    def code_shape(self, num_samples_audio):
        """``(rows, columns)`` of the code map of ``num_samples_audio`` samples."""
        vq = self.vqvae
        samples = max(int(num_samples_audio), vq.frontend.n_fft)  # as the VQ-VAE pads
        rows = -(-vq.frontend.num_frames(samples) // vq.downsampling)
        return rows, vq.frontend.n_mels // vq.downsampling

    @inference
    def sample_codes(self, num, rows, seed=0, temperature=None):
        """Draw code maps ``[num, rows, columns]`` in raster order, one compiled loop."""
        columns = self.vqvae.frontend.n_mels // self.vqvae.downsampling
        positions = rows * columns
        temperature = float(temperature or self.temperature)
        uniform = keras.random.uniform((num, positions, self.num_codes), 1e-9, 1.0,
                                       seed=int(seed))
        gumbel = -ops.log(-ops.log(uniform))

        def draw(p, flat):
            logits = ops.reshape(self.logits(ops.reshape(flat, (num, rows, columns))),
                                 (num, positions, self.num_codes))
            scores = ops.take(logits, p, axis=1) / temperature + ops.take(gumbel, p, axis=1)
            new = ops.cast(ops.argmax(scores, axis=-1), "int32")
            here = ops.arange(positions) == p
            return ops.where(here[None, :], new[:, None], flat)

        flat = ops.fori_loop(0, positions, draw, ops.zeros((num, positions), "int32"))
        return ops.reshape(flat, (num, rows, columns))

    def sample(self, num_samples, num_samples_audio, seed=None, temperature=None):
        """Waveforms ``[num_samples, num_samples_audio]`` decoded from sampled codes."""
        rows, _ = self.code_shape(num_samples_audio)
        codes = self.sample_codes(int(num_samples), rows, seed=0 if seed is None else int(seed),
                                  temperature=temperature)
        return self.vqvae.decode(codes, length=int(num_samples_audio))

    def bits_report(self, bits_per_code):
        """``bits_per_code`` beside log2 K (a uniform prior) as one line."""
        return (f"{bits_per_code:.3f} bits per code (uniform: {math.log2(self.num_codes):.3f})")

    @property
    def sample_rate(self):
        return self.vqvae.sample_rate

    def audio_examples(self, clips):
        """Prior samples as long as the clips, beside the clips."""
        clips = ops.convert_to_tensor(clips, "float32")
        n = int(clips.shape[0])
        return {"input": clips, "prior_sample": self.sample(n, int(clips.shape[1]), seed=0)}

    def serving_endpoints(self):
        """``forward``: bits per code of each waveform under the prior."""
        return {"forward": (self.log_likelihood, [(None, None)])}

    # ----------------------------------------------------------------- training
    def call(self, inputs, training=False):
        codes = self.codes_of(ops.convert_to_tensor(inputs, "float32"))
        return {"codes": codes, "logits": self.logits(codes)}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if y_pred is None:
            y_pred = self(x, training=training)
        nats = ops.mean(keras.losses.sparse_categorical_crossentropy(
            y_pred["codes"], y_pred["logits"], from_logits=True))
        self.bits_tracker.update_state(nats / math.log(2.0))
        return replica_loss(nats)

    @property
    def metrics(self):
        return super().metrics + [self.bits_tracker]

    def build(self, input_shape=None):
        self.vqvae.build()
        _freeze(self.vqvae)  # again: variables created by build start trainable
        self.call(ops.zeros((1, 4 * self.vqvae.frontend.n_fft)))
        self.built = True

    def get_config(self):
        return {**super().get_config(),
                "vqvae": keras.saving.serialize_keras_object(self.vqvae),
                "filters": self.filters, "num_layers": self.num_layers,
                "kernel_size": self.kernel_size, "temperature": self.temperature}
