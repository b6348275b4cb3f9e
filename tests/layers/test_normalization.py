"""Spectral and instance normalisation against numpy (SVD, moments) and plain Keras layers."""
import keras
import numpy as np
import pytest
from keras import ops

from tests.layers._grad import grad
from layers.normalization import (InstanceNormalization, SNConv1D, SNConv2D, SNConv2DTranspose,
                                  SNDense)

RNG = np.random.default_rng(0)


def _matrix_with_spectrum(rows, cols, spectrum):
    """A [rows, cols] matrix whose singular values are `spectrum` (a clear gap)."""
    u, _ = np.linalg.qr(RNG.normal(size=(rows, cols)))
    v, _ = np.linalg.qr(RNG.normal(size=(cols, cols)))
    return (u * np.asarray(spectrum)) @ v.T


def _np_sigma(matrix, u):
    u = u.reshape(-1) / np.linalg.norm(u)
    return np.linalg.norm(matrix @ u)


def _to_matrix(kernel, out_axis):
    return np.moveaxis(kernel, out_axis, -1).reshape(-1, kernel.shape[out_axis])


def _np(x):
    return ops.convert_to_numpy(x)


def _roundtrip(layer, x, tmp_path):
    """get_config -> from_config, and a .keras round trip with identical outputs."""
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    inputs = keras.Input(shape=x.shape[1:])
    model = keras.Model(inputs, layer(inputs))
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(_np(loaded(x)), _np(model(x)), rtol=1e-6, atol=1e-6)


def test_sn_dense_sigma_converges_and_inference_matches_numpy():
    layer = SNDense(3, kernel_initializer="zeros")  # weights set below (cheap init on JAX)
    layer.build((None, 5))
    w = _matrix_with_spectrum(5, 3, [3.0, 1.5, 0.5]).astype("float32")
    b = RNG.normal(size=3).astype("float32")
    layer.set_weights([w, b, _np(layer.sn_u)])
    x = RNG.normal(size=(4, 5)).astype("float32")

    u0 = _np(layer.sn_u).copy()
    layer(x)  # inference: u must not move
    np.testing.assert_array_equal(_np(layer.sn_u), u0)
    for _ in range(50):
        layer(x, training=True)
    u = _np(layer.sn_u)
    assert not np.allclose(u, u0)

    sigma = _np_sigma(w, u)
    assert abs(np.linalg.svd(w / sigma, compute_uv=False)[0] - 1.0) < 0.02
    np.testing.assert_allclose(_np(layer(x)), x @ (w / sigma) + b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_np(layer.effective_kernel()), w / sigma, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(_np(layer.sn_u), u)


@pytest.mark.parametrize(
    "cls, plain, shape, kwargs, out_axis",
    [
        (SNConv1D, keras.layers.Conv1D, (2, 9, 4), dict(filters=3, kernel_size=3), -1),
        (SNConv2D, keras.layers.Conv2D, (2, 6, 6, 4),
         dict(filters=3, kernel_size=3, strides=2), -1),
        (SNConv2DTranspose, keras.layers.Conv2DTranspose, (2, 4, 4, 4),
         dict(filters=3, kernel_size=3, strides=2, padding="same"), -2),
    ],
)
def test_sn_conv_effective_kernel(cls, plain, shape, kwargs, out_axis):
    layer = cls(**kwargs, kernel_initializer="zeros")
    layer.build(shape)
    kshape = tuple(layer.get_weights()[0].shape)
    out = kshape[out_axis]
    matrix = _matrix_with_spectrum(int(np.prod(kshape)) // out, out, [2.0, 1.0, 0.3])
    kernel = np.moveaxis(matrix.reshape(np.moveaxis(np.zeros(kshape), out_axis, -1).shape),
                         -1, out_axis).astype("float32")
    bias = RNG.normal(size=3).astype("float32")
    layer.set_weights([kernel, bias, _np(layer.sn_u)])
    x = RNG.normal(size=shape).astype("float32")

    u0 = _np(layer.sn_u).copy()
    layer(x, training=False)
    np.testing.assert_array_equal(_np(layer.sn_u), u0)
    for _ in range(50):
        layer(x, training=True)
    assert not np.allclose(_np(layer.sn_u), u0)

    sigma = _np_sigma(_to_matrix(kernel, out_axis), _np(layer.sn_u))
    effective = kernel / sigma
    assert abs(np.linalg.svd(_to_matrix(effective, out_axis), compute_uv=False)[0] - 1) < 0.02
    ref = plain(**kwargs, kernel_initializer="zeros")
    ref.build(shape)
    ref.set_weights([effective, bias])
    np.testing.assert_allclose(_np(layer(x)), _np(ref(x)), rtol=1e-5, atol=1e-5)


def test_sn_dense_in_fit_updates_u_and_converges():
    inputs = keras.Input((5,))
    sn = SNDense(3, name="sn", kernel_initializer="zeros")
    model = keras.Model(inputs, keras.layers.Dense(1, kernel_initializer="ones")(sn(inputs)))
    w = _matrix_with_spectrum(5, 3, [3.0, 1.5, 0.5]).astype("float32")
    sn.set_weights([w, np.zeros(3, "float32"), _np(sn.sn_u)])
    u0 = _np(sn.sn_u).copy()
    model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mse")
    x = RNG.normal(size=(64, 5)).astype("float32")
    model.fit(x, x[:, :1], batch_size=4, epochs=2, verbose=0, shuffle=False)
    u = _np(sn.sn_u)
    assert not np.allclose(u, u0)
    w = _np(sn.kernel)
    assert abs(np.linalg.svd(w / _np_sigma(w, u), compute_uv=False)[0] - 1.0) < 0.02


def test_sn_called_twice_in_one_backward_pass():
    """Two training calls in one graph (e.g. a discriminator on real and fake)."""
    layer = SNDense(3, kernel_initializer="zeros")
    x = RNG.normal(size=(4, 5)).astype("float32")
    layer.build(x.shape)
    layer.set_weights([RNG.normal(size=(5, 3)).astype("float32"), np.zeros(3, "float32"),
                       _np(layer.sn_u)])
    for _ in range(30):
        layer(x, training=True)
    g = grad(lambda t: layer(t, training=True) + layer(2.0 * t, training=True), x)
    expected = 3.0 * _np(layer.effective_kernel()).sum(axis=1)
    np.testing.assert_allclose(g, np.broadcast_to(expected, x.shape), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("shape, axis", [((2, 5, 6, 3), -1), ((2, 7, 3), -1), ((2, 3, 4, 5), 1)])
def test_instance_norm_matches_numpy(shape, axis):
    x = RNG.normal(2.0, 3.0, size=shape).astype("float32")
    layer = InstanceNormalization(axis=axis, epsilon=1e-3)
    layer.build(shape)
    c = shape[axis]
    gamma, beta = RNG.normal(size=c).astype("float32"), RNG.normal(size=c).astype("float32")
    layer.set_weights([gamma, beta])
    axes = tuple(a for a in range(1, len(shape)) if a != axis % len(shape))
    mean, var = x.mean(axes, keepdims=True), x.var(axes, keepdims=True)
    bshape = [1] * len(shape)
    bshape[axis] = c
    ref = (x - mean) / np.sqrt(var + 1e-3) * gamma.reshape(bshape) + beta.reshape(bshape)
    np.testing.assert_allclose(_np(layer(x)), ref, rtol=1e-4, atol=1e-4)
    plain = InstanceNormalization(center=False, scale=False)
    assert not plain.get_config()["center"] and plain(x).shape == x.shape
    assert len(plain.weights) == 0


@pytest.mark.parametrize(
    "layer, shape",
    [
        (lambda: SNDense(3, power_iterations=2, activation="tanh", kernel_initializer="zeros"),
         (2, 5)),
        (lambda: SNConv1D(3, 3, padding="same", kernel_initializer="zeros"), (2, 8, 2)),
        (lambda: SNConv2D(3, 3, use_bias=False, kernel_initializer="zeros"), (2, 5, 5, 2)),
        (lambda: SNConv2DTranspose(3, 2, strides=2, kernel_initializer="zeros"), (2, 3, 3, 2)),
        (lambda: InstanceNormalization(epsilon=1e-3), (2, 5, 5, 2)),
    ],
)
def test_serialization_roundtrip(layer, shape, tmp_path):
    layer = layer()
    x = RNG.normal(size=shape).astype("float32")
    layer.build(shape)  # zeros-initialised (cheap on JAX), then weights a reload must restore
    layer.set_weights([RNG.normal(size=w.shape).astype("float32") for w in layer.get_weights()])
    for _ in range(3):
        layer(x, training=True)
    _roundtrip(layer, x, tmp_path)
