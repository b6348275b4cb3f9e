"""Sampling, masked/causal convolutions and residual blocks against numpy references."""
import keras
import numpy as np
import pytest
from keras import ops

from layers.blocks import (CausalConv1D, GatedMaskedConv2D, GaussianSampler, MaskedConv2D,
                           ResidualBlock1D, ResidualBlock2D, reparameterize,
                           upsample_conv1d)
from tests.layers._grad import grad

RNG = np.random.default_rng(0)
# Few distinct shapes (JAX compiles each eager op, and each initialiser, per shape):
# 2-D inputs (5, 5, 4) with 4 or 8 filters; 1-D inputs (T, 2). Weights come from numpy.


def _init(shape, dtype=None):
    return RNG.normal(0.0, 0.5, size=shape).astype("float32")


def _randomize(model):
    model.set_weights([_init(w.shape) for w in model.get_weights()])


def _np(x):
    return ops.convert_to_numpy(ops.stop_gradient(x))


def _causal_conv_np(x, kernel, bias, stride=1, dilation=1, pad=None):
    """y[n] = sum_m xp[n*stride + m*dilation] @ kernel[m] + bias, xp = x zero-padded by
    `pad` (default: (k-1)*dilation on the left, i.e. causal)."""
    k = kernel.shape[0]
    xp = np.pad(x, ((0, 0), pad or ((k - 1) * dilation, 0), (0, 0)))
    n_out = -(-x.shape[1] // stride)
    return np.stack([sum(xp[:, n * stride + m * dilation] @ kernel[m] for m in range(k))
                     for n in range(n_out)], axis=1) + bias


def _leaky(x, slope=0.2):
    return np.where(x > 0, x, slope * x)


def test_reparameterize_statistics_and_gradients():
    mean = RNG.normal(size=20000).astype("float32")
    log_var = RNG.normal(size=20000).astype("float32")
    z = _np(reparameterize(mean, log_var, keras.random.SeedGenerator(1)))
    eps = (z - mean) / np.exp(0.5 * log_var)
    assert abs(eps.mean()) < 0.03 and abs(eps.std() - 1) < 0.03
    eps = (_np(reparameterize(mean, log_var, 7)) - mean) / np.exp(0.5 * log_var)
    np.testing.assert_allclose(grad(lambda m: reparameterize(m, log_var, 7), mean), 1.0)
    np.testing.assert_allclose(grad(lambda lv: reparameterize(mean, lv, 7), log_var),
                               0.5 * np.exp(0.5 * log_var) * eps, rtol=1e-4, atol=1e-6)


def test_gaussian_sampler_modes():
    mean = RNG.normal(size=(4, 3)).astype("float32")
    log_var = np.full((4, 3), -1.0, "float32")
    layer = GaussianSampler(seed=3)
    np.testing.assert_array_equal(_np(layer([mean, log_var])), mean)
    z1, z2 = (_np(layer([mean, log_var], training=True)) for _ in range(2))
    assert not np.allclose(z1, mean) and not np.allclose(z1, z2)
    assert not np.allclose(_np(GaussianSampler(True)([mean, log_var])), mean)


def _dependence(apply, shape):
    """dep[p, i, j]: whether output (i, j) changes when input pixel p is perturbed.

    Identical rows of a batch can differ by float rounding (up to ~1e-6 on some CPU
    kernels) where a real dependence moves the output by O(1), so "changes" means by
    more than 1e-4 of the largest change."""
    h, w, c = shape
    x = RNG.normal(size=(1, h, w, c)).astype("float32")
    batch = np.repeat(x, h * w + 1, axis=0)
    for p in range(h * w):
        batch[p + 1, p // w, p % w] += 1.0
    y = _np(apply(batch))
    change = np.abs(y[1:] - y[:1]).sum(-1)
    return (change > 1e-4 * change.max()).reshape(h * w, h * w)


@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_masked_conv_is_causal_in_raster_order(mask_type):
    init = _init
    first = MaskedConv2D(4, 3, mask_type=mask_type, kernel_initializer=init)
    second = MaskedConv2D(4, 3, mask_type="B", kernel_initializer=init)
    dep = _dependence(lambda x: second(first(x)), (5, 5, 4))
    p, o = np.meshgrid(np.arange(25), np.arange(25), indexing="ij")
    allowed = p < o if mask_type == "A" else p <= o
    assert not dep[~allowed].any()
    assert dep[11, 12] and dep[12 - 5, 12] and dep[12 - 4, 12]  # left, above, upper right
    expected = np.array([[1, 1, 1], [1, mask_type == "B", 0], [0, 0, 0]], "float32")
    np.testing.assert_array_equal(first.kernel_mask[..., 0, 0], expected)


def test_gated_masked_conv_is_causal_without_blind_spot():
    first = GatedMaskedConv2D(4, 3, "A", kernel_initializer=_init)
    second = GatedMaskedConv2D(4, 3, "B", kernel_initializer=_init)
    dep = _dependence(lambda x: second(first(x))[1], (5, 5, 4))
    p, o = np.meshgrid(np.arange(25), np.arange(25), indexing="ij")
    assert not dep[p >= o].any()
    out = 3 * 5 + 2  # (3, 2) sees (2, 3), (1, 4) above-right and (3, 1), (3, 0) on its left
    assert all(dep[q, out] for q in (2 * 5 + 3, 1 * 5 + 4, 3 * 5 + 1, 3 * 5 + 0))


def test_gated_masked_conv_condition_is_a_pre_gate_bias_and_keeps_causality():
    """Zero kernels: both outputs are the closed-form gate of the condition alone (plus
    the residual for mask 'B'); random kernels with a condition: still causal."""
    x = RNG.normal(size=(2, 5, 5, 4)).astype("float32")
    c = RNG.normal(size=(2, 8)).astype("float32")
    gate = np.tanh(c[:, :4]) / (1 + np.exp(-c[:, 4:]))  # tanh(a) * sigmoid(b), [2, 4]
    zero = GatedMaskedConv2D(4, 3, "B", kernel_initializer="zeros")
    v, h = (_np(t) for t in zero([x, x], condition=c))
    np.testing.assert_allclose(v, np.broadcast_to(gate[:, None, None], v.shape), atol=1e-6)
    np.testing.assert_allclose(h, x, atol=1e-6)  # h_out has zero kernels: residual only
    first = GatedMaskedConv2D(4, 3, "A", kernel_initializer=_init)
    second = GatedMaskedConv2D(4, 3, "B", kernel_initializer=_init)
    dep = _dependence(lambda t: second(first(t, condition=c[:1]), condition=c[:1])[1], (5, 5, 4))
    p, o = np.meshgrid(np.arange(25), np.arange(25), indexing="ij")
    assert not dep[p >= o].any()
    assert not np.allclose(_np(first(x[:1], condition=c[:1])[1]), _np(first(x[:1])[1]))


@pytest.mark.parametrize("kernel_size, strides, dilation", [(3, 1, 3), (4, 2, 1), (1, 2, 1)])
def test_causal_conv_matches_numpy_and_streams(kernel_size, strides, dilation):
    layer = CausalConv1D(3, kernel_size, strides=strides, dilation_rate=dilation,
                         kernel_initializer=_init, bias_initializer=_init)
    x = RNG.normal(size=(2, 48, 2)).astype("float32")
    y = _np(layer(x))
    kernel, bias = layer.get_weights()
    np.testing.assert_allclose(y, _causal_conv_np(x, kernel, bias, strides, dilation),
                               rtol=1e-5, atol=1e-5)
    assert tuple(layer.compute_output_shape((None, 48, 2))) == (None, 48 // strides, 3)
    late = x.copy()
    late[:, 20:] += 1.0  # outputs n with n * strides < 20 must not move; n * strides = 20 must
    y_late = _np(layer(late))
    np.testing.assert_array_equal(y_late[:, : 20 // strides], y[:, : 20 // strides])
    assert not np.allclose(y_late[:, 20 // strides], y[:, 20 // strides])

    state, outs, start = layer.initial_state(2), [], 0
    # the last 10 samples one stride at a time (the one-frame matrix-product path)
    for size in (8, 16, 2, 4, 8) + (strides,) * (10 // strides):
        out, state = layer.stream(x[:, start:start + size], state)
        outs.append(_np(out))
        start += size
    np.testing.assert_allclose(np.concatenate(outs, axis=1), y, rtol=1e-5, atol=1e-5)
    if strides > 1:
        with pytest.raises(ValueError, match="multiple"):
            layer.stream(x[:, :3], layer.initial_state(2))


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("ratio", [1, 2, 4, 5])
def test_upsample_conv1d_equals_repeat_then_conv(causal, ratio):
    """The polyphase form equals "repeat each frame `ratio` times, then a width-2r
    convolution" computed by Keras' own (causal or 'same') Conv1D with the same
    weights, and (causal) streams block by block to the offline output."""
    x = RNG.normal(size=(2, 9, 3)).astype("float32")
    conv = CausalConv1D(4, 2 * ratio, bias_initializer="random_normal") if causal else (
        keras.layers.Conv1D(4, 2 * ratio, padding="same", bias_initializer="random_normal"))
    ref = _np(conv(np.repeat(x, ratio, axis=1)))
    y = _np(upsample_conv1d(x, conv.kernel, conv.bias, ratio, causal))
    assert y.shape == (2, 9 * ratio, 4)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    if causal:
        state, outs = np.zeros((2, 2, 3), "float32"), []
        for start, size in ((0, 4), (4, 1), (5, 4)):
            out, state = upsample_conv1d(x[:, start:start + size], conv.kernel, conv.bias,
                                         ratio, True, state=state)
            outs.append(_np(out))
        np.testing.assert_allclose(np.concatenate(outs, axis=1), y, rtol=1e-5, atol=1e-5)
    else:
        with pytest.raises(ValueError, match="causal"):
            upsample_conv1d(x, conv.kernel, conv.bias, ratio, False, state=np.zeros((2, 2, 3)))


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("ratio", [1, 2, 4, 5])
def test_transposed_upsample_equals_the_transposed_convolution(causal, ratio):
    """The polyphase form equals the definition of a transposed convolution of width 2r,
    stride r (``y[n] = sum_j x[j] w[n + s - r j] + b``, s = 0 causal, r // 2 centred as
    PyTorch's ``ConvTranspose1d(padding=r // 2)``), computed here in numpy, and
    (causal) streams block by block to the offline output."""
    from layers.blocks import transposed_upsample_conv1d

    x = RNG.normal(size=(2, 9, 3)).astype("float32")
    w = RNG.normal(size=(2 * ratio, 3, 4)).astype("float32")
    b = RNG.normal(size=(4,)).astype("float32")
    shift = 0 if causal else ratio // 2
    ref = np.zeros((2, 9 * ratio, 4)) + b
    for n in range(9 * ratio):
        for j in range(9):
            m = n + shift - ratio * j
            if 0 <= m < 2 * ratio:
                ref[:, n] += x[:, j] @ w[m]
    y = _np(transposed_upsample_conv1d(x, w, b, ratio, causal))
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    if causal:
        state, outs = np.zeros((2, 1, 3), "float32"), []
        for start, size in ((0, 4), (4, 1), (5, 4)):
            out, state = transposed_upsample_conv1d(x[:, start:start + size], w, b, ratio,
                                                    True, state=state)
            outs.append(_np(out))
        np.testing.assert_allclose(np.concatenate(outs, axis=1), y, rtol=1e-5, atol=1e-5)
    else:
        with pytest.raises(ValueError, match="causal"):
            transposed_upsample_conv1d(x, w, b, ratio, False, state=np.zeros((2, 1, 3)))


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("k2", [1, 3])  # 1x1 projection (RAVE v2), k3 conv (RAVE v1)
def test_residual_block_1d(causal, k2):
    block = ResidualBlock1D(kernel_size=3, dilation_rate=2, causal=causal, kernel_initializer=_init,
                            output_kernel_size=k2)
    x = RNG.normal(size=(2, 32, 2)).astype("float32")
    y = _np(block(x))
    (k1, b1), (kp, bp) = block.conv.get_weights(), block.proj.get_weights()
    assert kp.shape == (k2, 2, 2)
    if causal:
        ref = x + _causal_conv_np(_leaky(_causal_conv_np(_leaky(x), k1, b1, 1, 2)), kp, bp)
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
        state, outs = block.initial_state(2), []
        for start in range(0, 32, 8):
            out, state = block.stream(x[:, start:start + 8], state)
            outs.append(_np(out))
        np.testing.assert_allclose(np.concatenate(outs, axis=1), y, rtol=1e-5, atol=1e-5)
    else:  # centred: (k - 1) * d / 2 zeros on each side
        h = _leaky(_causal_conv_np(_leaky(x), k1, b1, 1, 2, (2, 2)))
        ref = x + _causal_conv_np(h, kp, bp, 1, 1, ((k2 - 1) // 2, (k2 - 1) // 2))
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
        with pytest.raises(ValueError):
            block.initial_state(2)


def test_residual_block_2d():
    x = RNG.normal(size=(2, 5, 5, 4)).astype("float32")
    block = ResidualBlock2D(instance_norm=True, kernel_initializer=_init)
    block(x)
    assert block.shortcut is None and len(block.norms) == 2
    block.norms[1].set_weights([np.zeros(4, "float32"), np.zeros(4, "float32")])
    np.testing.assert_allclose(_np(block(x)), x, atol=1e-6)  # branch off -> identity
    wide = ResidualBlock2D(filters=8, negative_slope=0.0, kernel_initializer=_init)
    y = _np(wide(x))
    assert y.shape == (2, 5, 5, 8) and wide.shortcut is not None
    wide.conv2.set_weights([np.zeros_like(w) for w in wide.conv2.get_weights()])
    k, b = wide.shortcut.get_weights()
    np.testing.assert_allclose(_np(wide(x)), x @ k[0, 0] + b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "make, shapes",
    [
        (lambda: GaussianSampler(sample_at_inference=False, seed=1), [(3,), (3,)]),
        (lambda: MaskedConv2D(4, 3, mask_type="A", use_bias=False, kernel_initializer="zeros"),
         [(5, 5, 4)]),
        (lambda: GatedMaskedConv2D(4, 3, "A", kernel_initializer="zeros"), [(5, 5, 4)]),
        (lambda: CausalConv1D(3, 3, dilation_rate=2, activation="tanh", kernel_initializer="zeros"),
         [(16, 2)]),
        (lambda: ResidualBlock1D(3, dilation_rate=3, causal=True, kernel_initializer="zeros"),
         [(16, 2)]),
        (lambda: ResidualBlock1D(3, negative_slope=0.1, kernel_initializer="zeros"), [(16, 2)]),
        (lambda: ResidualBlock2D(filters=8, instance_norm=True, kernel_initializer="zeros"),
         [(5, 5, 4)]),
    ],
)
def test_serialization_roundtrip(make, shapes, tmp_path):
    layer = make()
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    inputs = [keras.Input(s) for s in shapes]
    xs = [RNG.normal(size=(2,) + s).astype("float32") for s in shapes]
    if len(inputs) == 1:
        inputs, xs = inputs[0], xs[0]
    model = keras.Model(inputs, layer(inputs))
    _randomize(model)  # zeros-initialised (cheap on JAX), then weights a reload must restore
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    for a, b in zip(keras.tree.flatten(loaded(xs)), keras.tree.flatten(model(xs))):
        np.testing.assert_allclose(_np(a), _np(b), rtol=1e-6, atol=1e-6)
