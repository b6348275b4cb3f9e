"""The model contract's own rules: declared capabilities need their methods (checked at
class definition), ``require`` is a one-line error, and a model fitted in closed form
(``Fitting.CLOSED_FORM``) trains, saves and loads through the same ``zoo train``."""
import keras
import numpy as np
import pytest
from keras import ops

import zoo
from zoo import registry
from zoo.engine import Capability, Fitting, ZooModel, inference
from zoo.errors import ZooError
from zoo.training.trainer import train


def test_declaring_a_capability_without_its_methods_fails_at_class_definition():
    with pytest.raises(TypeError, match="does not define convert"):
        class Broken(ZooModel):  # noqa: F841
            capabilities = {Capability.CONVERT}
    with pytest.raises(TypeError, match="fit_closed_form"):
        class NoFit(ZooModel):  # noqa: F841
            fitting = Fitting.CLOSED_FORM
    with pytest.raises(ValueError):
        class Unknown(ZooModel):  # noqa: F841
            capabilities = {"teleport"}


@keras.saving.register_keras_serializable(package="zoo_tests")
class MeanSpectrum(ZooModel):
    """A closed-form model for the test: the mean magnitude spectrum of the training audio."""

    fitting = Fitting.CLOSED_FORM

    def __init__(self, sample_rate=16000, n_fft=256, **kwargs):
        super().__init__(**kwargs)
        self._sample_rate, self.n_fft = int(sample_rate), int(n_fft)
        self.mean_spectrum = self.add_weight(shape=(n_fft // 2 + 1,), initializer="zeros",
                                             trainable=False, name="mean_spectrum")

    @property
    def sample_rate(self):
        return self._sample_rate

    def fit_closed_form(self, dataset, context):
        clips = dataset.clips(8, seed=context.seed)
        frames = np.lib.stride_tricks.sliding_window_view(clips, self.n_fft, axis=1)
        spectrum = np.abs(np.fft.rfft(frames[:, ::self.n_fft // 2], axis=-1)).mean(axis=(0, 1))
        self.mean_spectrum.assign(spectrum.astype("float32"))
        return {"loss": float(spectrum.mean())}

    def build(self, input_shape=None):
        self.built = True

    def call(self, waveform):
        """The mean spectrum, once per input clip."""
        batch = ops.shape(ops.convert_to_tensor(waveform))[0]
        return ops.broadcast_to(self.mean_spectrum, (batch, self.n_fft // 2 + 1))

    def serving_endpoints(self):
        return {"forward": (self.call, [(None, None)])}

    def get_config(self):
        return {**super().get_config(), "sample_rate": self._sample_rate, "n_fft": self.n_fft}


def test_closed_form_model_trains_through_zoo_train(tmp_path, monkeypatch):
    monkeypatch.setitem(registry._MODELS, "mean_spectrum", f"{__name__}:MeanSpectrum")
    recipe = tmp_path / "mean_spectrum.toml"
    recipe.write_text('model = "mean_spectrum"\n[model_config]\nn_fft = 256\n'
                      '[data]\ncrop_length = 4096\n')
    result = train(str(recipe), steps=1, out=tmp_path / "run", verbose=0)
    spectrum = np.asarray(keras.ops.convert_to_numpy(result.model.mean_spectrum))
    assert spectrum.shape == (129,) and spectrum.max() > 0  # it was fitted
    restored = zoo.load(tmp_path / "run")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(restored.mean_spectrum), spectrum)
    assert (tmp_path / "run" / "state.json").is_file()


def test_require_is_a_one_line_error():
    model = zoo.load("ae", **{"latent_dim": 4, "channels": 8, "n_mels": 16})
    assert not model.supports(Capability.SAMPLE)  # a deterministic autoencoder
    with pytest.raises(ZooError, match=r"SpectrogramVAE cannot sample from a prior \(it can:"):
        model.require(Capability.SAMPLE, "sample from a prior")


class Accumulator(ZooModel):
    """An ``@inference`` method with a nested state argument, as ``stream`` has."""

    def build(self, input_shape=None):
        self.built = True

    @inference
    def step(self, x, state):
        total = ops.convert_to_tensor(state["total"]) + ops.sum(x)
        return total, {"total": total, "count": ops.convert_to_tensor(state["count"]) + 1}


def test_inference_state_that_went_through_a_compiled_call_reuses_its_function():
    """``jax.jit`` returns dicts with sorted keys; the state returned by one call must
    find the function compiled for the state it was given (no recompilation per
    call: that cost a user's second streaming block a full compile)."""
    model = Accumulator()
    model.build()
    x = np.ones((2, 3), "float32")
    state = {"total": np.zeros((), "float32"), "count": np.zeros((), "int32")}  # unsorted
    for expected in (6.0, 12.0, 18.0):
        total, state = model.step(x, state)
        assert float(ops.convert_to_numpy(total)) == expected
    assert int(ops.convert_to_numpy(state["count"])) == 3
    if keras.backend.backend() != "torch":  # torch runs eagerly: nothing is compiled
        assert len(model._inference_cache) == 1, list(model._inference_cache)


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="JAX's compilation cache")
def test_jax_compilation_cache_lives_in_the_zoo_cache_and_can_be_turned_off(tmp_path):
    """A fresh process writes what it compiles under ``$ZOO_CACHE_DIR/jax``, a second
    one reads it back (JAX counts the hits), and ``ZOO_JAX_CACHE=0`` writes nothing."""
    import os
    import subprocess
    import sys

    script = ("import numpy as np, jax\n"
              "from jax._src import monitoring\n"
              "hits = []\n"
              "monitoring.register_event_listener(lambda e, **k: hits.append(e) "
              "if e == '/jax/compilation_cache/cache_hits' else None)\n"
              "from zoo import registry\n"
              "m = registry.build(registry.load_recipe('ae', tiny=True))\n"
              "m.reconstruct(np.zeros((1, 4096), 'float32'))\n"
              "print('hits', len(hits))\n")

    def run(**env):
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             env={**os.environ, "ZOO_CACHE_DIR": str(tmp_path), **env},
                             timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        return int(out.stdout.split("hits")[-1])

    assert run(ZOO_JAX_CACHE="0") == 0 and not (tmp_path / "jax").exists()
    cold = run()  # (identical computations within one process may already hit)
    entries = len(list((tmp_path / "jax").iterdir()))
    assert entries > 0
    assert run() > cold
    assert len(list((tmp_path / "jax").iterdir())) == entries  # nothing compiled anew


def _reference_conv(x, kernel, strides, padding, dilation):
    """numpy's 1-D convolution (cross-correlation, Keras' 'same' split: the odd sample
    at the end), any groups."""
    w, cig, co = kernel.shape
    groups = x.shape[-1] // cig
    if padding == "same":
        out = -(-x.shape[1] // strides)
        total = max((out - 1) * strides + (w - 1) * dilation + 1 - x.shape[1], 0)
        x = np.pad(x, ((0, 0), (total // 2, total - total // 2), (0, 0)))
    span = (w - 1) * dilation + 1
    steps = range(0, x.shape[1] - span + 1, strides)
    y = np.zeros((x.shape[0], len(steps), co))
    per = co // groups
    for g in range(groups):
        xs = x[..., g * cig:(g + 1) * cig]
        for i, t in enumerate(steps):
            taps = xs[:, t:t + span:dilation]                     # [B, w, cig]
            y[:, i, g * per:(g + 1) * per] = np.einsum("bwc,wco->bo", taps,
                                                       kernel[..., g * per:(g + 1) * per])
    return y


@pytest.mark.parametrize("strides, padding, dilation, groups, channels",
                         [(1, "valid", 1, 1, 8), (1, "same", 1, 1, 8), (1, "same", 3, 1, 8),
                          (2, "same", 1, 1, 8), (3, "valid", 1, 2, 8), (1, "same", 2, 4, 8),
                          (2, "same", 1, 2, 256), (1, "same", 2, 1, 1024)])
def test_conv1d_matches_numpy_with_and_without_gradients(strides, padding, dilation, groups,
                                                         channels):
    """``ops.conv`` on 1-D channels-last inputs (on torch: the engine's copy-free
    ``conv1d_channels_last``) against numpy, for strides, dilations, groups and both
    paddings (even kernel: the odd 'same' sample), on few channels and on the wide
    ones torch runs channels-first; the kernel gradient against a
    finite-difference-free closed form (d sum(y) / d kernel = sums of the input taps);
    an in-place write to the kernel is seen by the next no-gradient call."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 23, channels)).astype("float32")
    kernel = (rng.standard_normal((4, channels // groups, 12))
              / np.sqrt(channels / 8)).astype("float32")
    want = _reference_conv(x.astype("float64"), kernel.astype("float64"), strides, padding,
                           dilation)
    var = keras.Variable(kernel)
    with _inference_mode():  # (torch keeps the reordered kernel between such calls)
        got = ops.convert_to_numpy(ops.conv(x, var, strides, padding, dilation_rate=dilation))
        np.testing.assert_allclose(got, want, atol=1e-4)
        var.assign(2 * kernel)               # the kept kernel must not be reused
        got = ops.convert_to_numpy(ops.conv(x, var, strides, padding, dilation_rate=dilation))
        np.testing.assert_allclose(got, 2 * want, atol=2e-4)
    # gradients flow to the input through the same path (checked by linearity:
    # d sum(conv(x)) / dx . x == sum(conv(x)) for a bias-free convolution)
    grad = _input_gradient(lambda t: ops.sum(ops.conv(t, kernel, strides, padding,
                                                      dilation_rate=dilation)), x)
    np.testing.assert_allclose(np.sum(grad * x), want.sum(), rtol=1e-4, atol=1e-3)


class WideConv(ZooModel):
    """An ``@inference`` width-3 convolution from 256 channels (as RAVE v1's decoder
    residual units), which JAX runs as Winograd F(4, 3) from a shape's third call."""

    def __init__(self, dilation=1, padding="same", **kwargs):
        super().__init__(**kwargs)
        self.conv = keras.layers.Conv1D(8, 3, dilation_rate=dilation, padding=padding,
                                        use_bias=False)

    def build(self, input_shape=None):
        self.conv.build((None, None, 256))
        self.built = True

    @inference
    def apply(self, x):
        return self.conv(x)


@pytest.mark.parametrize("length, dilation, padding", [(301, 1, "same"), (257, 5, "same"),
                                                       (300, 3, "valid")])
def test_inference_convolution_matches_numpy(length, dilation, padding, monkeypatch):
    """A compiled ``@inference`` width-3 convolution from 256 channels against numpy, for
    lengths that are not a multiple of the Winograd block, dilations and both
    paddings, over repeated calls; after the kernel is assigned anew the output follows
    it. On JAX the first two calls of a shape run XLA's convolution and the third
    compiles the Winograd version (checked), whose filters are derived from the kernel
    once per weights."""
    calls = []
    if keras.backend.backend() == "jax":
        from zoo.engine.backend import jax as engine_jax

        winograd = engine_jax.winograd_conv1d
        monkeypatch.setattr(engine_jax, "winograd_conv1d",
                            lambda *args: calls.append(1) or winograd(*args))
    model = WideConv(dilation, padding)
    model.build()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, length, 256)).astype("float32")
    kernel = ops.convert_to_numpy(model.conv.kernel).astype("float64")
    want = _reference_conv(x.astype("float64"), kernel, 1, padding, dilation)
    tolerance = 1e-5 * np.abs(want).max()
    for call in range(3):
        np.testing.assert_allclose(ops.convert_to_numpy(model.apply(x)), want, atol=tolerance)
        if call == 1:
            assert not calls, "Winograd compiled before the shape's third call"
    model.conv.kernel.assign(-2 * kernel.astype("float32"))
    np.testing.assert_allclose(ops.convert_to_numpy(model.apply(x)), -2 * want,
                               atol=2 * tolerance)
    if keras.backend.backend() == "jax":
        assert calls, "the Winograd path was not taken"


def _reference_conv_gradients(x, kernel, strides, padding, cotangent):
    """numpy: d sum(cotangent * conv(x)) / d(x, kernel) for an ungrouped, undilated 1-D
    convolution (the adjoint of :func:`_reference_conv`, output by output)."""
    w, length, low = kernel.shape[0], x.shape[1], 0
    if padding == "same":
        total = max((cotangent.shape[1] - 1) * strides + w - length, 0)
        low = total // 2
        x = np.pad(x, ((0, 0), (low, total - low), (0, 0)))
    dx, dk = np.zeros_like(x), np.zeros_like(kernel)
    for i in range(cotangent.shape[1]):
        t = i * strides
        dx[:, t:t + w] += np.einsum("bo,wco->bwc", cotangent[:, i], kernel)
        dk += np.einsum("bwc,bo->wco", x[:, t:t + w], cotangent[:, i])
    return dx[:, low:low + length], dk


@pytest.mark.parametrize("length, width, strides, padding",
                         [(12, 7, 2, "same"), (12, 9, 2, "same"), (23, 4, 3, "same"),
                          (30, 8, 4, "valid"), (24, 3, 1, "same")])
def test_conv1d_gradients_match_numpy(length, width, strides, padding):
    """Input and kernel gradients of ``ops.conv`` against numpy's adjoint, for strided
    convolutions whose output is shorter than the kernel (12 frames, width 7 or 9,
    stride 2: TraVeLGAN's down path, where JAX takes the input gradient in polyphase
    form instead of XLA's slow one), an odd stride, 'valid' and a stride-1 control."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, length, 5)).astype("float32")
    kernel = rng.standard_normal((width, 5, 6)).astype("float32")
    out = _reference_conv(x.astype("float64"), kernel.astype("float64"), strides, padding, 1)
    cotangent = rng.standard_normal(out.shape).astype("float32")
    want_dx, want_dk = _reference_conv_gradients(x.astype("float64"), kernel.astype("float64"),
                                                 strides, padding, cotangent)
    got_dx, got_dk = _gradients(lambda t, k: ops.sum(ops.multiply(cotangent,
                                                                  ops.conv(t, k, strides, padding))),
                                x, kernel)
    np.testing.assert_allclose(got_dx, want_dx, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got_dk, want_dk, rtol=1e-4, atol=1e-4)


def _gradients(fn, *arrays):
    """The gradients of the scalar ``fn(*arrays)`` with respect to each array, as numpy,
    on the current backend."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        argnums = tuple(range(len(arrays)))
        return tuple(np.asarray(g) for g in jax.grad(fn, argnums=argnums)(*arrays))
    if backend == "tensorflow":
        import tensorflow as tf

        tensors = [tf.constant(a) for a in arrays]
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            y = fn(*tensors)
        return tuple(g.numpy() for g in tape.gradient(y, tensors))
    import torch

    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    fn(*tensors).backward()
    return tuple(t.grad.numpy() for t in tensors)


def _inference_mode():
    if keras.backend.backend() == "torch":
        import torch

        return torch.no_grad()
    import contextlib

    return contextlib.nullcontext()


def _input_gradient(fn, x):
    return _gradients(fn, x)[0]


def test_weight_constant_follows_the_weights():
    """A derived weight kept for eager inference is recomputed after the weights change
    (assign), on every backend; the decoder's folded upsampling kernels with it."""
    from zoo.engine import weight_constant

    owner = keras.layers.Layer()
    var = keras.Variable(np.ones((3,), "float32"))
    calls = []

    def double(w):
        calls.append(1)
        return 2 * ops.convert_to_tensor(w)

    first = ops.convert_to_numpy(weight_constant(owner, "d", double, var))
    var.assign(np.full((3,), 5.0, "float32"))
    second = ops.convert_to_numpy(weight_constant(owner, "d", double, var))
    np.testing.assert_array_equal(first, [2, 2, 2])
    np.testing.assert_array_equal(second, [10, 10, 10])
    if keras.backend.backend() == "torch":     # kept between calls outside autograd
        import torch

        with torch.no_grad():
            weight_constant(owner, "d", double, var)
            n = len(calls)
            weight_constant(owner, "d", double, var)
            assert len(calls) == n
    model = registry.build(registry.load_recipe("rave", tiny=True))
    z = np.random.default_rng(0).standard_normal((1, 3, model.latent_dim)).astype("float32")
    before = ops.convert_to_numpy(model.decode(z, noise=False))
    up = model.decoder.ups[0]
    up.kernel.assign(ops.convert_to_numpy(up.kernel) * 0.0)
    after = ops.convert_to_numpy(model.decode(z, noise=False))
    assert not np.allclose(before, after)
