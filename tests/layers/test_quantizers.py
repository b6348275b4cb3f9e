"""Vector quantisers against numpy brute force and numpy transcriptions of the updates."""
import keras
import numpy as np
import pytest
from keras import ops

from tests.layers._grad import grad
from layers.quantizers import ResidualVectorQuantizer, VectorQuantizer, code_statistics

RNG = np.random.default_rng(0)
# One codebook size and input size throughout: JAX compiles each eager op per shape.
K, D, SHAPE = 8, 3, (2, 8, 3)


def _np(x):
    return ops.convert_to_numpy(ops.stop_gradient(x))


def _brute_force(x, codes):
    d = ((x[..., None, :] - codes) ** 2).sum(-1)
    return d.argmin(-1)


@pytest.mark.parametrize("shape", [SHAPE, (2, 2, 4, D)])
def test_lookup_matches_brute_force_and_losses(shape):
    vq = VectorQuantizer(K, D, beta=0.25, seed=1)
    x = RNG.normal(size=shape).astype("float32")
    q, idx = vq(x)
    codes = _np(vq.codes)
    expected = _brute_force(x, codes)
    assert idx.shape == shape[:-1] and "int" in str(idx.dtype)
    np.testing.assert_array_equal(_np(idx), expected)
    np.testing.assert_allclose(_np(q), codes[expected], rtol=1e-6, atol=1e-6)
    mse = ((x - codes[expected]) ** 2).mean()
    np.testing.assert_allclose(float(_np(vq.losses[0])), 1.25 * mse, rtol=1e-5)


def test_straight_through_gradient():
    vq = VectorQuantizer(K, D, beta=0.5, seed=2)
    x = RNG.normal(size=SHAPE).astype("float32")
    up = RNG.normal(size=x.shape).astype("float32")
    vq(x)
    q = _np(vq.codes)[_brute_force(x, _np(vq.codes))]

    g = grad(lambda t: ops.multiply(vq(t, training=True)[0], up), x)
    np.testing.assert_allclose(g, up, rtol=1e-6, atol=1e-6)

    def with_loss(t):  # commitment reaches the encoder; the codebook loss does not
        out = ops.sum(ops.multiply(vq(t)[0], up))
        return out + vq.losses[0]

    g = grad(with_loss, x)
    np.testing.assert_allclose(g, up + 2 * 0.5 * (x - q) / x.size, rtol=1e-5, atol=1e-6)


def test_ema_update_matches_numpy():
    d, eps, k = 0.9, 1e-5, K
    vq = VectorQuantizer(k, D, use_ema=True, ema_decay=d, epsilon=eps, seed=3)
    x = RNG.normal(size=SHAPE).astype("float32")
    vq.build(x.shape)
    assert not vq.codebook.trainable and len(vq.trainable_weights) == 0
    codes, size, embed = _np(vq.codebook), _np(vq.cluster_size), _np(vq.embed_sum)
    np.testing.assert_array_equal(size, np.ones(k))
    np.testing.assert_array_equal(embed, codes)
    for _ in range(2):
        q, idx = vq(x, training=True)
        expected = _brute_force(x, codes).reshape(-1)
        np.testing.assert_array_equal(_np(idx).reshape(-1), expected)
        np.testing.assert_allclose(_np(q).reshape(-1, 3), codes[expected], atol=1e-6)
        onehot = np.eye(k)[expected]
        size = d * size + (1 - d) * onehot.sum(0)
        embed = d * embed + (1 - d) * onehot.T @ x.reshape(-1, 3)
        n = size.sum()
        codes = embed / ((size + eps) / (n + k * eps) * n)[:, None]
        np.testing.assert_allclose(_np(vq.cluster_size), size, rtol=1e-5)
        np.testing.assert_allclose(_np(vq.embed_sum), embed, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(_np(vq.codebook), codes, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(_np(vq.losses[0])),
                               0.25 * ((x - _np(q)) ** 2).mean(), rtol=1e-5)


def test_inference_leaves_state_alone():
    vq = VectorQuantizer(K, D, use_ema=True, dead_code_threshold=1.0, kmeans_init=True, seed=4)
    x = RNG.normal(size=SHAPE).astype("float32")
    vq(x)
    before = [_np(w).copy() for w in vq.weights]
    vq(x, training=False)
    for b, w in zip(before, vq.weights):
        np.testing.assert_array_equal(_np(w), b)


@pytest.mark.parametrize("use_ema", [True, False])
def test_dead_codes_restart_from_batch(use_ema):
    vq = VectorQuantizer(K, D, use_ema=use_ema, dead_code_threshold=1.0, seed=5)
    x = (20.0 + 0.1 * RNG.normal(size=SHAPE)).astype("float32")
    vq.build(x.shape)
    used = _brute_force(x, _np(vq.codes))
    dead = ~np.isin(np.arange(K), used)
    assert dead.sum() >= 4  # the batch sits far from the initial codes
    vq(x, training=True)
    codes, size = _np(vq.codes), _np(vq.cluster_size)
    flat = x.reshape(-1, D)
    dist = np.sqrt(((codes[dead][:, None] - flat[None]) ** 2).sum(-1)).min(1)
    np.testing.assert_allclose(dist, 0.0, atol=1e-5)  # each dead code is a batch vector
    np.testing.assert_allclose(size[dead], 1.0)
    counts = np.bincount(used.reshape(-1), minlength=K)
    np.testing.assert_allclose(size[~dead], 0.99 + 0.01 * counts[~dead], rtol=1e-6)


@pytest.mark.parametrize("use_ema", [False, True])
def test_kmeans_init_moves_codes_onto_data(use_ema):
    # K well separated clusters (cube corners), two points each, in shuffled order.
    centres = 8.0 * np.array([[i >> 2 & 1, i >> 1 & 1, i & 1] for i in range(K)]) - 4.0
    x = centres[RNG.permutation(np.arange(16) % K)] + 0.1 * RNG.normal(size=(16, D))
    x = x.reshape(SHAPE).astype("float32")
    vq = VectorQuantizer(K, D, use_ema=use_ema, kmeans_init=True, seed=6)
    vq.build(x.shape)
    err0 = ((x - _np(vq(x)[0])) ** 2).mean()
    assert float(_np(vq.initialized)) == 0.0
    vq(x, training=True)
    assert float(_np(vq.initialized)) == 1.0
    codes = _np(vq.codes)
    q, idx = (_np(t) for t in vq(x))
    assert ((x - q) ** 2).mean() < 0.01 * err0  # k-means++ finds the four clusters
    if not use_ema:  # Lloyd fixed point: each code is the mean of its cluster
        flat, idx = x.reshape(-1, D), idx.reshape(-1)
        for k in np.unique(idx):
            np.testing.assert_allclose(codes[k], flat[idx == k].mean(0), atol=1e-4)
        vq(x + 1.0, training=True)  # initialised once only
        np.testing.assert_array_equal(_np(vq.codes), codes)


def test_residual_vq_reduces_error_and_is_straight_through():
    x = RNG.normal(size=SHAPE).astype("float32")
    rvq = ResidualVectorQuantizer(3, K, D, kmeans_init=True, seed=7)
    rvq(x, training=True)
    q, idx = (_np(t) for t in rvq(x))
    assert idx.shape == SHAPE[:-1] + (3,)
    residual, errors = x, []
    for s, stage in enumerate(rvq.stages):
        codes = _np(stage.codes)
        i = _brute_force(residual, codes)
        np.testing.assert_array_equal(idx[..., s], i)
        residual = residual - codes[i]
        errors.append((residual ** 2).mean())
    np.testing.assert_allclose(q, x - residual, atol=1e-5)
    assert errors[2] < errors[1] < errors[0] < (x ** 2).mean()
    up = RNG.normal(size=x.shape).astype("float32")
    g = grad(lambda t: ops.multiply(rvq(t)[0], up), x)
    np.testing.assert_allclose(g, up, rtol=1e-6, atol=1e-6)
    stats = rvq.code_statistics(idx)
    assert tuple(stats["perplexity"].shape) == (3,)


def test_code_statistics_match_numpy():
    idx = np.array([[0, 0, 1], [2, 2, 2], [5, 0, 2]], "int32")
    stats = code_statistics(idx, 8)
    counts = np.bincount(idx.reshape(-1), minlength=8)
    p = counts[counts > 0] / counts.sum()
    np.testing.assert_allclose(float(_np(stats["perplexity"])), np.exp(-(p * np.log(p)).sum()),
                               rtol=1e-5)
    np.testing.assert_allclose(float(_np(stats["usage"])), 4 / 8)
    np.testing.assert_array_equal(_np(stats["counts"]), counts)
    vq = VectorQuantizer(K, D)
    np.testing.assert_allclose(_np(vq.code_statistics(idx)["perplexity"]),
                               _np(stats["perplexity"]))


def test_ema_kmeans_dead_codes_under_fit():
    """All state updates survive the compiled train step (JAX stateless path, tf.function)."""
    inputs = keras.Input(SHAPE[1:])
    vq = VectorQuantizer(K, D, use_ema=True, dead_code_threshold=1.0, kmeans_init=True, seed=8)
    q, _ = vq(keras.layers.Dense(D)(inputs))
    model = keras.Model(inputs, q)
    model.compile(optimizer="adam", loss="mse")
    x = RNG.normal(size=(4,) + SHAPE[1:]).astype("float32")
    size0, codes0 = _np(vq.cluster_size).copy(), _np(vq.codebook).copy()
    model.fit(x, x, batch_size=2, epochs=1, verbose=0)
    assert float(_np(vq.initialized)) == 1.0
    assert not np.allclose(_np(vq.cluster_size), size0)
    assert not np.allclose(_np(vq.codebook), codes0)
    assert np.isfinite(model.evaluate(x, x, verbose=0))


@pytest.mark.parametrize(
    "make",
    [
        lambda: VectorQuantizer(K, D, beta=0.5, seed=1),
        lambda: VectorQuantizer(K, D, use_ema=True, dead_code_threshold=1.0, kmeans_init=True,
                                kmeans_iterations=3, seed=2),
        lambda: ResidualVectorQuantizer(2, K, D, use_ema=True, kmeans_init=True, seed=3),
    ],
)
def test_serialization_roundtrip(make, tmp_path):
    layer = make()
    x = RNG.normal(size=SHAPE).astype("float32")
    for _ in range(3):
        layer(x, training=True)
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    inputs = keras.Input(shape=x.shape[1:])
    model = keras.Model(inputs, layer(inputs))
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    for a, b in zip(loaded(x), model(x)):
        np.testing.assert_array_equal(_np(a), _np(b))
