"""WaveNet prior over a trained waveform VQ-VAE's 1-D codes (van den Oord et al. 2016,
"WaveNet: A Generative Model for Raw Audio"; phase 2 of van den Oord et al. 2017), with
cached ("fast WaveNet", Paine et al. 2016) sampling.

Network: the codes shifted right by one (a start token first) are embedded, then
``num_layers`` gated residual layers: a causal dilated convolution (kernel 2, dilation
``2 ** (i % dilation_cycle)``, ``layers.CausalConv1D``) -> ``tanh(a) * sigmoid(b)`` ->
1x1 convolutions to the residual stream and to a skip sum; the skip sum -> ReLU -> 1x1
-> ReLU -> 1x1 gives ``K`` logits (the 1x1 convolutions run as the matrix products
they are). The logits at step ``t`` see codes ``< t`` only.

Sampling keeps each causal convolution's last inputs as state
(``CausalConv1D.stream``), so a new code costs one step through each layer instead of
a pass over the whole sequence; all steps run in one ``ops.fori_loop`` (compiled on JAX
and TF), with Gumbel-max noise drawn up front (a seed fixes the codes on every backend).
"""
import keras
from keras import layers as kl
from keras import ops

from layers import CausalConv1D, apply_built, gated_activation
from zoo.engine import check_positive, inference, step_loop
from zoo.models.prior import CodePrior, gumbel_noise
from zoo.models.vqvae import WaveformVQVAE


@keras.saving.register_keras_serializable(package="zoo")
class WaveNetPrior(CodePrior):
    """Autoregressive prior over a frozen waveform VQ-VAE's code sequence.

    Args:
        vqvae: the VQ-VAE (see :func:`zoo.models.prior.load_frozen`).
        filters: channels of the residual and skip streams.
        num_layers: gated residual layers.
        dilation_cycle: dilations run 1, 2, ..., ``2 ** (dilation_cycle - 1)``, repeated.
        temperature: default sampling temperature (logits divided by it).

    Example:
    >>> prior = WaveNetPrior(vqvae="runs/vqw")          # doctest: +SKIP
    >>> audio = prior.sample(4, 4 * 16000, seed=0)      # [4, 64000]
    """

    vqvae_class = WaveformVQVAE
    prerequisites = {"vqvae": "vqvae_waveform"}
    COMPILE_STEPS_FROM = 32768  # codes (num x steps) from which torch compiles the step

    def __init__(self, vqvae=None, filters=64, num_layers=10, dilation_cycle=5,
                 temperature=1.0, **kwargs):
        super().__init__(vqvae=vqvae, temperature=temperature, **kwargs)
        check_positive(filters=filters, num_layers=num_layers, dilation_cycle=dilation_cycle)
        self.filters, self.num_layers = int(filters), int(num_layers)
        self.dilation_cycle = int(dilation_cycle)
        f = self.filters
        # index num_codes is the start token (what precedes the first code)
        self.embedding = kl.Embedding(self.num_codes + 1, f, name="embedding")
        self.dilated = [CausalConv1D(2 * f, 2, dilation_rate=2 ** (i % self.dilation_cycle),
                                     name=f"dilated_{i}") for i in range(self.num_layers)]
        # the last layer feeds only the skip sum
        self.residual = [kl.Conv1D(f, 1, name=f"residual_{i}")
                         for i in range(self.num_layers - 1)]
        self.skip = [kl.Conv1D(f, 1, name=f"skip_{i}") for i in range(self.num_layers)]
        self.head = keras.Sequential([kl.ReLU(), kl.Conv1D(f, 1), kl.ReLU(),
                                      kl.Conv1D(self.num_codes, 1)], name="head")
        for layer in self.residual + self.skip + [self.head]:  # applied as products
            layer.build((None, None, f))

    @property
    def receptive_field(self):
        """Codes each prediction sees (the current one excluded)."""
        return 1 + sum(conv.context for conv in self.dilated)

    # ---------------------------------------------------------------- the prior
    def _gated_stack(self, h, convolve):
        """The gated residual layers on embedded inputs ``h``; ``convolve(i, x)`` runs
        dilated convolution ``i`` (offline, or one streamed step)."""
        skips = 0.0
        for i in range(self.num_layers):
            g = gated_activation(convolve(i, h))
            if i < len(self.residual):
                h = h + apply_built(self.residual[i], g)
            skips = skips + apply_built(self.skip[i], g)
        for layer in self.head.layers:
            skips = apply_built(layer, skips)
        return skips

    def logits(self, codes, labels=None):
        """Codes ``[B, T]`` -> logits ``[B, T, K]``; step ``t`` sees codes ``< t`` only
        (``labels``: None, the WaveNet prior is not conditioned on domains)."""
        codes = ops.convert_to_tensor(codes, "int32")
        start = ops.full((ops.shape(codes)[0], 1), self.num_codes, "int32")
        h = self.embedding(ops.concatenate([start, codes[:, :-1]], axis=1))
        return self._gated_stack(h, lambda i, x: self.dilated[i](x))

    def code_shape(self, num_samples_audio):
        """``(codes,)`` for ``num_samples_audio`` samples."""
        return (-(-int(num_samples_audio) // self.vqvae.hop),)

    @inference
    def sample_codes(self, num, steps, seed=0, temperature=None, compile_steps=None):
        """Draw code sequences ``[num, steps]``: one cached step per code, one loop.

        ``compile_steps`` (torch; JAX and TF compile the whole loop anyway): run each step
        as one ``torch.compile``d graph (:func:`zoo.engine.step_loop`). ``None`` compiles
        draws of at least ``COMPILE_STEPS_FROM`` codes, where the compilation (about
        12-17 s on 2 CPU cores) is repaid (5.7-8.3x eager per step)."""
        temperature = float(temperature or self.temperature)
        if compile_steps is None:
            compile_steps = num * steps >= self.COMPILE_STEPS_FROM
        gumbel = gumbel_noise((num, steps, self.num_codes), seed)
        states = [conv.initial_state(num) for conv in self.dilated]

        def step(t, carry):
            codes, previous, states = carry
            new_states = list(states)

            def convolve(i, x):
                y, new_states[i] = self.dilated[i].stream(x, states[i])
                return y

            logits = self._gated_stack(self.embedding(previous[:, None]), convolve)[:, 0]
            scores = logits / temperature + ops.take(gumbel, t, axis=1)
            new = ops.cast(ops.argmax(scores, axis=-1), "int32")
            codes = ops.where((ops.arange(steps) == t)[None, :], new[:, None], codes)
            return codes, new, new_states

        carry = (ops.zeros((num, steps), "int32"), ops.full((num,), self.num_codes, "int32"),
                 states)
        return step_loop(0, steps, step, carry, compile_steps)[0]

    @inference
    def sample_codes_naive(self, num, steps, seed=0, temperature=None):
        """The same draw re-running the whole network over the sequence for every code
        (no cache): the reference the cached loop must equal, and its speed baseline."""
        temperature = float(temperature or self.temperature)
        gumbel = gumbel_noise((num, steps, self.num_codes), seed)

        def step(t, codes):
            scores = (ops.take(self.logits(codes), t, axis=1) / temperature
                      + ops.take(gumbel, t, axis=1))
            new = ops.cast(ops.argmax(scores, axis=-1), "int32")
            return ops.where((ops.arange(steps) == t)[None, :], new[:, None], codes)

        return ops.fori_loop(0, steps, step, ops.zeros((num, steps), "int32"))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "num_layers": self.num_layers,
                "dilation_cycle": self.dilation_cycle}
