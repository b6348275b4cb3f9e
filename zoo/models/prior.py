"""What the autoregressive priors over a VQ-VAE's codes share (phase 2 of van den Oord
et al. 2017): a frozen VQ-VAE read from a run, waveforms encoded to codes inside the
model, the cross-entropy objective in bits per code, seeded Gumbel-max sampling and
the decoding of sampled codes to audio.

A prior subclasses :class:`CodePrior` and defines ``vqvae_class`` (the layout it
models) and ``prerequisites`` (the recipe that trains that layout), ``logits(codes)`` (causal in its order), ``code_shape(num_samples_audio)``
and ``sample_codes(num, rows, seed, temperature)`` (an ``@inference`` loop).
"""
import math

import keras
from keras import ops

from zoo.engine import (Capability, ServingInput, ZooModel, check_positive, inference,
                        replica_loss)
from zoo.engine.domains import DomainLabels
from zoo.files import run_model_file


def load_frozen(vqvae, vqvae_class):
    """The VQ-VAE a prior models, frozen: a path (a run folder or ``.keras`` file of a
    trained one), a saved config (``keras.saving.serialize_keras_object``, as a saved
    prior stores it; its weights then load with the prior's) or a plain dict of
    ``vqvae_class`` arguments (an untrained VQ-VAE: tests and smoke runs)."""
    name = vqvae_class.__name__
    if vqvae is None:
        raise ValueError("model_config.vqvae: the prior needs a trained VQ-VAE; train one "
                         "(e.g. zoo train vqvae --out runs/vq) and pass --set "
                         "model_config.vqvae=runs/vq")
    if isinstance(vqvae, keras.Model):
        model = vqvae
    elif isinstance(vqvae, dict):
        model = (keras.saving.deserialize_keras_object(vqvae) if "class_name" in vqvae
                 else vqvae_class(**vqvae))
    else:
        try:
            path = run_model_file(vqvae)
        except FileNotFoundError as err:
            raise ValueError(f"model_config.vqvae: {err}") from None
        model = keras.saving.load_model(path)
    if not isinstance(model, vqvae_class):
        raise ValueError(f"model_config.vqvae: {vqvae!r} holds a {type(model).__name__}; "
                         f"this prior models a {name}")
    if model.num_quantizers != 1:
        raise ValueError(f"model_config.vqvae: the prior models one codebook; this VQ-VAE "
                         f"has {model.num_quantizers} (train it with num_quantizers = 1)")
    freeze(model)
    return model


def freeze(model):
    """``model.trainable = False`` down to every sub-layer. Keras skips the propagation
    when the flag is already False (as a model deserialised from a frozen config is),
    so it is set True first."""
    model.trainable = True
    model.trainable = False


def gumbel_noise(shape, seed):
    """Gumbel(0, 1) noise: ``argmax(logits / T + noise)`` samples ``softmax(logits / T)``."""
    uniform = keras.random.uniform(shape, 1e-9, 1.0, seed=int(seed))
    return -ops.log(-ops.log(uniform))


class CodePrior(DomainLabels, ZooModel):
    """Base of the autoregressive priors: a frozen ``vqvae`` and what every prior does
    with it (see the module docstring). A prior with ``domains`` (PixelCNN) is
    conditioned on a domain label: it trains on ``(crops, labels)`` and samples one
    domain at a time (``sample(..., domain=...)``, default the first).

    Args:
        vqvae: the VQ-VAE (see :func:`load_frozen`).
        temperature: default sampling temperature (logits divided by it).
    """

    capabilities = {Capability.SAMPLE, Capability.EXAMPLES, Capability.DOMAIN_LABELS,
                    Capability.LIKELIHOOD}
    prerequisites = {"vqvae": "vqvae"}  # subclasses: the recipe of their VQ-VAE layout
    vqvae_class = None

    def __init__(self, vqvae=None, temperature=1.0, **kwargs):
        super().__init__(**kwargs)
        check_positive(temperature=temperature)
        self.vqvae = load_frozen(vqvae, self.vqvae_class)
        self.temperature = float(temperature)
        self.num_codes = self.vqvae.num_codes
        self.bits_tracker = keras.metrics.Mean(name="bits_per_code")

    def active_capabilities(self):
        """Domain labels only for a prior conditioned on ``domains``."""
        caps = type(self).capabilities
        return caps if self.domains else caps - {Capability.DOMAIN_LABELS}

    def label_array(self, labels, batch):
        """Validated int32 labels ``[batch]``; None for an unconditional prior."""
        if not self.domains:
            if labels is not None:
                raise ValueError(f"labels: {type(self).__name__} is not conditioned on domains")
            return None
        if labels is None:
            raise ValueError(f"labels: this prior is conditioned on domains {list(self.domains)}; "
                             "pass their int32 indices")
        return ops.broadcast_to(ops.reshape(ops.cast(labels, "int32"), (-1,)), (batch,))

    def codes_of(self, waveform):
        """Waveforms ``[B, samples]`` -> the frozen VQ-VAE's integer codes."""
        return ops.stop_gradient(self.vqvae.encode(ops.convert_to_tensor(waveform, "float32")))

    def _bits(self, codes, logits, axis=None):
        nats = keras.losses.sparse_categorical_crossentropy(codes, logits, from_logits=True)
        return ops.mean(nats, axis=axis) / math.log(2.0)

    @inference
    def log_likelihood(self, waveform, labels=None):
        """Bits per code of each waveform's codes ``[B]`` (the exported ``forward``);
        ``labels``: domain indices ``[B]`` of a conditioned prior."""
        codes = self.codes_of(waveform)
        axes = tuple(range(1, len(codes.shape)))
        labels = self.label_array(labels, ops.shape(codes)[0])
        return self._bits(codes, self.logits(codes, labels), axis=axes)

    def sample(self, num_samples, num_samples_audio, seed=None, temperature=None, domain=None,
               compile_steps=None):
        """Waveforms ``[num_samples, num_samples_audio]`` decoded from sampled codes;
        ``domain`` (name or index) of a conditioned prior, default its first;
        ``compile_steps``: a prior whose ``sample_codes`` takes it (the WaveNet's
        torch step compilation; None: its own default)."""
        rows = self.code_shape(num_samples_audio)[0]
        if domain is not None or self.domains:
            options = {"label": self.index(0 if domain is None else domain)}
        else:
            options = {}
        if compile_steps is not None:
            options["compile_steps"] = bool(compile_steps)
        codes = self.sample_codes(int(num_samples), rows, seed=0 if seed is None else int(seed),
                                  temperature=float(temperature or self.temperature), **options)
        return self.vqvae.decode(codes, length=int(num_samples_audio))

    def bits_report(self, bits_per_code):
        """``bits_per_code`` beside log2 K (a uniform prior) as one line."""
        return f"{bits_per_code:.3f} bits per code (uniform: {math.log2(self.num_codes):.3f})"

    @property
    def sample_rate(self):
        return self.vqvae.sample_rate

    def audio_examples(self, clips):
        """Prior samples as long as the clips, beside the clips."""
        clips = ops.convert_to_tensor(clips, "float32")
        return {"input": clips,
                "prior_sample": self.sample(int(clips.shape[0]), int(clips.shape[1]), seed=0)}

    def serving_endpoints(self):
        """``forward``: bits per code of each waveform (and label) under the prior."""
        if self.domains:
            return {"forward": (self.log_likelihood,
                                [(None, None), ServingInput((None,), "int32")])}
        return {"forward": (self.log_likelihood, [(None, None)])}

    # ----------------------------------------------------------------- training
    def call(self, inputs, training=False):
        waveform, labels = self.split_inputs(inputs)
        codes = self.codes_of(waveform)
        labels = self.label_array(labels, ops.shape(codes)[0])
        return {"codes": codes, "logits": self.logits(codes, labels)}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if y_pred is None:
            y_pred = self(x, training=training)
        bits = self._bits(y_pred["codes"], y_pred["logits"])
        self.bits_tracker.update_state(bits)
        return replica_loss(bits * math.log(2.0))  # nats

    @property
    def metrics(self):
        return super().metrics + [self.bits_tracker]

    def build(self, input_shape=None):
        self.vqvae.build()
        freeze(self.vqvae)  # again: variables created by build start trainable
        zeros = ops.zeros((1, 4096))
        self.call((zeros, ops.zeros((1,), "int32")) if self.domains else zeros)
        self.built = True

    def get_config(self):
        return {**super().get_config(),
                "vqvae": keras.saving.serialize_keras_object(self.vqvae),
                "temperature": self.temperature}
