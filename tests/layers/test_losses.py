"""Losses against numpy/scipy/librosa transcriptions of their formulas, on any backend."""
import inspect

import keras
import librosa
import numpy as np
import pytest
from keras import ops

from layers import losses as L
from tests.layers._grad import grad


def _np(x):
    return np.asarray(ops.convert_to_numpy(x), dtype="float64")


def _rng(seed=0):
    return np.random.default_rng(seed)


# ----------------------------------------------------------------- numpy references
def _mag(x, n_fft, hop):
    """|librosa.stft| of the last axis, [..., frames, bins]."""
    s = librosa.stft(x.astype("float64"), n_fft=n_fft, hop_length=hop, window="hann",
                     center=True, pad_mode="reflect")
    return np.swapaxes(np.abs(s), -1, -2)


def _mss_ref(x, y, scales, overlap, form, eps, per_example):
    x = x[:, None] if x.ndim == 2 else np.transpose(x, (0, 2, 1))
    y = y[:, None] if y.ndim == 2 else np.transpose(y, (0, 2, 1))
    out = 0.0
    for n in scales:
        hop = int(n * (1 - overlap))
        X, Y = _mag(x, n, hop), _mag(y, n, hop)
        groups = [(X[b], Y[b]) for b in range(len(X))] if per_example else [(X, Y)]
        vals = []
        for a, c in groups:
            log_l1 = np.mean(np.abs(np.log(a + eps) - np.log(c + eps)))
            if form == "rave":
                vals.append(np.mean((a - c) ** 2) / np.mean(a ** 2) + log_l1)
            elif form == "seed":
                vals.append(np.linalg.norm((a - c).ravel()) / np.linalg.norm(a.ravel())
                            + np.log(np.sum(np.abs(a - c)) + eps))
            else:
                vals.append(np.linalg.norm((a - c).ravel()) / np.linalg.norm(a.ravel()) + log_l1)
        out = out + np.array(vals)
    return out if per_example else out[0]


def _gram_ref(f):
    f = f.reshape(f.shape[0], -1, f.shape[-1])
    return np.stack([fb.T @ fb for fb in f])


# ------------------------------------------------------------------------- spectral
@pytest.mark.parametrize("form", ["rave", "seed", "frobenius"])
@pytest.mark.parametrize("channels", [None, 3])
def test_multiscale_spectral_distance_matches_librosa(form, channels):
    shape = (2, 2048) if channels is None else (2, 2048, channels)
    x = _rng(1).standard_normal(shape).astype("float32")
    y = (x + 0.3 * _rng(2).standard_normal(shape)).astype("float32")
    scales = (512, 128)
    for per_example in (False, True):
        got = _np(L.multiscale_spectral_distance(x, y, scales, 0.75, form, 1e-7, per_example))
        ref = _mss_ref(x, y, scales, 0.75, form, 1e-7, per_example)
        assert got.shape == np.shape(ref)
        np.testing.assert_allclose(got, ref, rtol=2e-4, atol=2e-4)
    loss = L.MultiScaleSpectralLoss(scales=scales, form=form)
    np.testing.assert_allclose(_np(loss(x, y)), _mss_ref(x, y, scales, 0.75, form, 1e-7, False),
                               rtol=2e-4, atol=2e-4)


def test_multiscale_spectral_defaults_and_overlap():
    loss = L.MultiScaleSpectralLoss()
    assert loss.scales == [2048, 1024, 512, 256, 128] and loss.overlap == 0.75
    assert loss.form == "rave" and loss.eps == 1e-7
    x = _rng(3).standard_normal((2, 2048)).astype("float32")
    y = (0.5 * x).astype("float32")
    # Halving: relative squared L2 = 1/4 and log L1 ~= log 2 per scale.
    loss = L.MultiScaleSpectralLoss(scales=(512, 128))
    assert float(_np(loss(x, y))) == pytest.approx(2 * (0.25 + np.log(2)), rel=1e-4)
    assert float(_np(loss(x, x))) == pytest.approx(0.0, abs=1e-6)
    got = _np(L.multiscale_spectral_distance(x, y, (512,), overlap=0.5))
    np.testing.assert_allclose(got, _mss_ref(x, y, (512,), 0.5, "rave", 1e-7, False), rtol=2e-4)
    with pytest.raises(ValueError, match="form"):
        L.MultiScaleSpectralLoss(form="l2")


def test_log_spectral_distance_matches_numpy():
    x = _rng(4).standard_normal((2, 3, 2048)).astype("float32")
    y = (x * np.linspace(0.5, 2.0, 2048)).astype("float32")
    got = _np(L.log_spectral_distance(x, y, 512, 128))
    px, py = _mag(x, 512, 128) ** 2, _mag(y, 512, 128) ** 2
    db = 10 * np.log10((px + 1e-10) / (py + 1e-10))
    ref = np.mean(np.sqrt(np.mean(db ** 2, axis=-1)), axis=-1)
    assert got.shape == (2, 3)
    np.testing.assert_allclose(got, ref, rtol=1e-3)


@pytest.mark.parametrize("form", ["rave", "seed", "frobenius"])
def test_spectral_gradients_finite_at_zero(form):
    zeros = np.zeros((2, 2048), "float32")
    # Example 0: silent target and prediction; example 1: silent prediction only.
    target = ops.convert_to_tensor(np.stack([zeros[0], _rng(5).standard_normal(2048)]),
                                   "float32")
    for per_example in (True, False):
        for t in (target, ops.convert_to_tensor(zeros)):
            # One scale: each new STFT shape costs seconds of op compilation on eager JAX.
            g = grad(lambda p, t=t: L.multiscale_spectral_distance(
                t, p, (256,), form=form, per_example=per_example), zeros)
            assert np.all(np.isfinite(g))
    g = grad(lambda p: L.log_spectral_distance(ops.convert_to_tensor(zeros), p, 256, 64), zeros)
    assert np.all(np.isfinite(g))
    g = grad(lambda p: L.log_spectral_distance(p, p, 256, 64), zeros)
    assert np.all(np.isfinite(g))


def test_spectral_loss_trains_in_compiled_fit():
    model = keras.Sequential([keras.Input((2048,)), keras.layers.Dense(2048)])
    model.compile(optimizer="adam", loss=L.MultiScaleSpectralLoss(scales=(512, 128)))
    x = _rng(6).standard_normal((2, 2048)).astype("float32")
    history = model.fit(x, x, epochs=2, batch_size=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


# --------------------------------------------------------------------------- style
@pytest.mark.parametrize("shape", [(2, 7, 5), (2, 4, 3, 5)])
def test_gram_matrix_matches_numpy(shape):
    f = _rng(7).standard_normal(shape).astype("float32")
    ref = _gram_ref(f)
    np.testing.assert_allclose(_np(L.gram_matrix(f)), ref, rtol=1e-5, atol=1e-5)
    positions = np.prod(shape[1:-1])
    np.testing.assert_allclose(_np(L.gram_matrix(f, normalize=True)), ref / positions,
                               rtol=1e-5, atol=1e-5)


def test_style_loss_gatys_normalisation():
    rng = _rng(8)
    style = [rng.standard_normal((2, 9, 4)).astype("float32"),
             rng.standard_normal((2, 3, 5, 6)).astype("float32")]
    gen = [rng.standard_normal(s.shape).astype("float32") for s in style]
    weights = [0.3, 0.7]
    ref = 0.0
    for w, a, g in zip(weights, style, gen):
        n = a.shape[-1]
        m = np.prod(a.shape[1:-1])
        sq = np.sum((_gram_ref(g) - _gram_ref(a)) ** 2, axis=(1, 2))
        ref = ref + w * sq / (4 * n ** 2 * m ** 2)
    np.testing.assert_allclose(_np(L.style_loss(style, gen, weights)), ref, rtol=1e-4)
    loss = L.StyleLoss(layer_weights=weights)
    np.testing.assert_allclose(_np(loss(style, gen)), ref.mean(), rtol=1e-4)
    # Default weights 1/L; "positions" and "none" forms.
    eq = sum(np.sum((_gram_ref(g) - _gram_ref(a)) ** 2, axis=(1, 2))
             / (4 * a.shape[-1] ** 2 * np.prod(a.shape[1:-1]) ** 2) for a, g in zip(style, gen)) / 2
    np.testing.assert_allclose(_np(L.style_loss(style, gen)), eq, rtol=1e-4)
    pos = sum(np.sum((_gram_ref(g) / np.prod(g.shape[1:-1]) - _gram_ref(a) / np.prod(a.shape[1:-1]))
                     ** 2, axis=(1, 2)) for a, g in zip(style, gen))
    np.testing.assert_allclose(_np(L.style_loss(style, gen, [1, 1], "positions")), pos, rtol=1e-4)
    raw = sum(np.sum((_gram_ref(g) - _gram_ref(a)) ** 2, axis=(1, 2)) for a, g in zip(style, gen))
    np.testing.assert_allclose(_np(L.style_loss(style, gen, [1, 1], "none")), raw, rtol=1e-4)
    with pytest.raises(ValueError, match="normalization"):
        L.StyleLoss(normalization="bad")


def test_style_loss_broadcasts_one_style_excerpt_of_other_length():
    rng = _rng(9)
    a = rng.standard_normal((1, 20, 4)).astype("float32")
    g = rng.standard_normal((3, 12, 4)).astype("float32")
    ref = np.sum((_gram_ref(g) / 12 - _gram_ref(a) / 20) ** 2, axis=(1, 2)) / (4 * 16)
    np.testing.assert_allclose(_np(L.style_loss(a, g)), ref, rtol=1e-4)


def test_content_loss():
    rng = _rng(10)
    p = rng.standard_normal((2, 6, 5)).astype("float32")
    f = rng.standard_normal((2, 6, 5)).astype("float32")
    np.testing.assert_allclose(_np(L.content_loss(p, f)), 0.5 * np.sum((f - p) ** 2, axis=(1, 2)),
                               rtol=1e-5)
    np.testing.assert_allclose(_np(L.content_loss(p, f, "mean")),
                               np.mean((f - p) ** 2, axis=(1, 2)), rtol=1e-5)
    batch_mean = 0.5 * np.sum((f - p) ** 2) / 2
    np.testing.assert_allclose(_np(L.ContentLoss()(p, f)), batch_mean, rtol=1e-5)


def test_style_and_content_gradients():
    rng = _rng(11)
    a = rng.standard_normal((1, 10, 3)).astype("float32")
    g0 = rng.standard_normal((1, 10, 3)).astype("float32")
    got = grad(lambda g: L.style_loss(ops.convert_to_tensor(a), g, normalization="none"), g0)
    # d/dF sum (F^T F - A)^2 = 4 F (F^T F - A)
    ref = 4 * g0[0] @ (_gram_ref(g0)[0] - _gram_ref(a)[0])
    np.testing.assert_allclose(got[0], ref, rtol=1e-3, atol=1e-3)
    assert np.all(np.isfinite(grad(lambda g: L.style_loss(g, g), np.zeros_like(g0))))
    got = grad(lambda f: L.content_loss(ops.convert_to_tensor(a), f), g0)
    np.testing.assert_allclose(got, g0 - a, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- GAN
REAL = np.array([2.0, 0.5, -1.0], "float32")
FAKE = np.array([-2.0, 0.5, 1.0], "float32")


def test_hinge_losses_hand_computed():
    # relu(1 - real) = (0, .5, 2); relu(1 + fake) = (0, 1.5, 2)
    assert float(_np(L.hinge_discriminator_loss(REAL, FAKE))) == pytest.approx(2.5 / 3 + 3.5 / 3)
    assert float(_np(L.hinge_discriminator_loss(REAL, FAKE, scale=0.5))) == pytest.approx(1.0)
    assert float(_np(L.hinge_generator_loss(FAKE))) == pytest.approx(0.5 / 3)
    assert float(_np(L.discriminator_loss(REAL, FAKE))) == pytest.approx(2.0)
    # Lists (multi-scale discriminators) are summed.
    assert float(_np(L.hinge_discriminator_loss([REAL, REAL], [FAKE, FAKE]))) == pytest.approx(4.0)
    assert float(_np(L.generator_loss([FAKE, 2 * FAKE]))) == pytest.approx(1.5 / 3)


def test_nonsaturating_losses_hand_computed_and_stable():
    sp = lambda v: np.log1p(np.exp(v))  # noqa: E731
    ref_d = np.mean(sp(-REAL)) + np.mean(sp(FAKE))
    got = float(_np(L.nonsaturating_discriminator_loss(REAL, FAKE)))
    assert got == pytest.approx(ref_d, rel=1e-5)
    assert float(_np(L.generator_loss(FAKE, "nonsaturating"))) == pytest.approx(
        np.mean(sp(-FAKE)), rel=1e-5)
    # log(2) at the decision boundary; exact extremes without overflow.
    z = np.zeros(4, "float32")
    assert float(_np(L.discriminator_loss(z, z, "nonsaturating"))) == pytest.approx(2 * np.log(2))
    big = np.array([1000.0], "float32")
    assert float(_np(L.nonsaturating_discriminator_loss(big, -big))) == pytest.approx(0.0, abs=1e-6)
    assert float(_np(L.nonsaturating_discriminator_loss(-big, big))) == pytest.approx(2000.0)
    assert float(_np(L.nonsaturating_generator_loss(-big))) == pytest.approx(1000.0)
    g = grad(lambda f: L.nonsaturating_generator_loss(f), np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_allclose(g, [-1 / 3, -1 / 6, 0.0], atol=1e-6)


def test_least_squares_losses_hand_computed():
    # (real - 1)^2 = (1, .25, 4); fake^2 = (4, .25, 1); (fake - 1)^2 = (9, .25, 0)
    assert float(_np(L.least_squares_discriminator_loss(REAL, FAKE))) == pytest.approx(3.5)
    assert float(_np(L.generator_loss(FAKE, "least_squares"))) == pytest.approx(9.25 / 3)
    with pytest.raises(ValueError, match="kind"):
        L.discriminator_loss(REAL, FAKE, "wasserstein")


def test_feature_matching():
    rng = _rng(12)
    real = [rng.standard_normal((2, 8, 4)).astype("float32"),
            rng.standard_normal((2, 4, 16)).astype("float32")]
    fake = [rng.standard_normal(r.shape).astype("float32") for r in real]
    ref = sum(np.mean(np.abs(r - f)) for r, f in zip(real, fake))
    assert float(_np(L.feature_matching(real, fake))) == pytest.approx(ref, rel=1e-5)
    ref_rel = sum(np.mean(np.abs(r - f)) / np.mean(np.abs(r)) for r, f in zip(real, fake))
    got = float(_np(L.feature_matching(real, fake, relative=True)))
    assert got == pytest.approx(ref_rel, rel=1e-5)
    # Nested (several discriminators) flatten.
    nested = float(_np(L.feature_matching([real, real], [fake, fake])))
    assert nested == pytest.approx(2 * ref, rel=1e-5)
    zeros = np.zeros((2, 8, 4), "float32")
    zeros_t = ops.convert_to_tensor(zeros)
    g = grad(lambda f: L.feature_matching([zeros_t], [f], relative=True), zeros)
    assert np.all(np.isfinite(g))


# --------------------------------------------------------------------- serialisation
@pytest.mark.parametrize("cls, kwargs", [
    (L.StyleLoss, {"layer_weights": [0.2, 0.8], "normalization": "positions"}),
    (L.ContentLoss, {"form": "mean"}),
    (L.MultiScaleSpectralLoss, {"scales": [512, 128], "overlap": 0.5, "form": "seed",
                                "eps": 1e-5, "per_example": True}),
])
def test_loss_config_round_trip(cls, kwargs):
    loss = cls(**kwargs, name="my_loss", reduction="sum")
    config = loss.get_config()
    params = set(inspect.signature(cls.__init__).parameters) - {"self"}
    assert set(config) == params
    for k, v in kwargs.items():
        assert config[k] == v
    clone = cls.from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(restored, cls) and restored.get_config() == config
    defaults = cls().get_config()
    assert cls(**defaults).get_config() == defaults


def test_loss_classes_in_saved_model(tmp_path):
    model = keras.Sequential([keras.Input((512,)), keras.layers.Dense(512)])
    loss = L.MultiScaleSpectralLoss(scales=[512, 128], form="frobenius")
    model.compile(optimizer="adam", loss=loss)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.loss.get_config() == model.loss.get_config()


def test_functions_are_registered():
    for name in ("gram_matrix", "style_loss", "content_loss", "multiscale_spectral_distance",
                 "log_spectral_distance", "hinge_discriminator_loss", "feature_matching",
                 "discriminator_loss", "generator_loss"):
        assert keras.saving.get_registered_object(f"layers>{name}") is getattr(L, name)
    name = keras.saving.get_registered_name(L.MultiScaleSpectralLoss)
    assert name == "layers>MultiScaleSpectralLoss"
