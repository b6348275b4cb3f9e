"""Style transfer: Gram statistics and random features against numpy, the optimisation
transfers style on a tiny config (a domain classifier calls the result the style's
domain, pitch kept), texture synthesis of a requested length, bad inputs."""
import numpy as np
import pytest

import zoo
from zoo.cli import main
from zoo.data import load_dataset, write_audio
from zoo.eval import f0_error_cents
from zoo.eval.classifier import clips_of, domain_classifier
from zoo.models.style_transfer import random_features, random_kernels, style_distance

SR = 16000


def numpy(x):
    import keras

    return np.asarray(keras.ops.convert_to_numpy(x))


def tiny(**overrides):
    return zoo.load("style_transfer", **{"sample_rate": SR, "n_fft": 512, "hop_length": 128,
                                         "filters": 64, "griffin_lim_iters": 16, **overrides})


def _conv_same_np(x, kernel):
    """'same' 1-D correlation: x [T, C], kernel [w, C, F] -> [T, F] (Keras' padding split)."""
    w = kernel.shape[0]
    left = (w - 1) // 2
    xp = np.pad(x, ((left, w - 1 - left), (0, 0)))
    return np.stack([np.einsum("wc,wcf->f", xp[t:t + w], kernel) for t in range(x.shape[0])])


def test_random_features_match_numpy_and_depend_only_on_the_seed():
    k1 = random_kernels(20, 16, (3, 5), depth=2, seed=7)
    k2 = random_kernels(20, 16, (3, 5), depth=2, seed=7)
    for a, b in zip(sum(k1, []), sum(k2, [])):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(k1[0][0], random_kernels(20, 16, (3, 5), 2, seed=8)[0][0])
    # He-style scale of the reference: std = sqrt(2) sqrt(2 / ((in + filters) width))
    big = random_kernels(513, 256, (11,), 1, seed=0)[0][0]
    assert big.std() == pytest.approx(np.sqrt(2) * np.sqrt(2 / ((513 + 256) * 11)), rel=0.01)
    x = np.random.default_rng(0).standard_normal((1, 30, 20)).astype("float32")
    feats = [numpy(f) for f in random_features(x, k1)]
    h = x[0]
    for i, kernel in enumerate(k1[0]):  # branch 0, both layers
        h = np.maximum(_conv_same_np(h, kernel), 0.0)
        np.testing.assert_allclose(feats[i][0], h, rtol=1e-4, atol=1e-4)
    assert len(feats) == 4 and feats[2].shape == (1, 30, 16)


def test_style_distance_is_the_normalised_gram_error():
    rng = np.random.default_rng(1)
    feats = [rng.standard_normal((1, 12, 5)).astype("float32"),
             rng.standard_normal((1, 12, 3)).astype("float32")]
    targets = [rng.standard_normal((5, 5)).astype("float32"),
               rng.standard_normal((3, 3)).astype("float32")]
    expected = sum(np.sum(((f[0].T @ f[0]) / 12 - a) ** 2) for f, a in zip(feats, targets))
    got = float(numpy(style_distance([t[None] for t in targets], feats)))
    assert got == pytest.approx(float(expected), rel=1e-5)


@pytest.fixture(scope="module")
def timbre():
    return load_dataset("builtin:timbre", SR, 16000, progress=False)


def test_style_transfers_on_a_tiny_config(timbre):
    """Brass content + reed style: the classifier calls the result reed, the pitch stays,
    and the style distance falls by more than 10x from the initialisation."""
    classifier = domain_classifier(timbre)
    reed = classifier.domain_index("reed")
    model = tiny(filters=128, iterations=40)
    brass, reeds = timbre.files("val", domain="brass"), timbre.files("val", domain="reed")
    content = timbre.waveform(brass[0])[:2 * SR]
    style = timbre.waveform(reeds[1])[:2 * SR]
    result = model.stylize(content, style)
    assert result.audio.shape == content.shape
    first, last = result.style_distance
    assert last < first / 10
    styles = [h[2] for h in result.history]
    assert styles[-1] < styles[0]
    p_out = classifier.predict_proba(clips_of(result.audio, SR))[:, reed]
    p_in = classifier.predict_proba(clips_of(content, SR))[:, reed]
    assert np.mean(p_in > 0.5) == 0.0 and np.mean(p_out > 0.5) >= 0.75
    assert f0_error_cents(content, result.audio, SR, fmin=80, fmax=900) < 50


def test_classifier_features_are_its_log_mel_statistics_and_transfer_style(timbre):
    """The domain classifier as the feature extractor: its frame maps and statistics
    equal librosa's log-mel standardised as the classifier does; the result moves
    towards the true reed rendering (mel distance, independent of the classifier)."""
    import librosa

    from zoo.eval import mel_distance

    classifier = domain_classifier(timbre)
    spec = classifier.frame_feature_spec()
    n = spec["n_mels"]
    brass = timbre.files("val", domain="brass")[0]
    content = timbre.waveform(brass)[:2 * SR]
    model = tiny(iterations=30)
    ex = model.extractor(classifier)
    params = ex.params()
    maps = ex.maps(ex.spectrogram(content[None]), params)
    mel = librosa.feature.melspectrogram(y=content, sr=SR, n_fft=spec["n_fft"],
                                         hop_length=spec["hop_length"], n_mels=n,
                                         pad_mode="reflect")
    logmel = np.log(mel.T.astype(np.float64) + 1e-6)
    np.testing.assert_allclose(numpy(maps[0])[0], (logmel - spec["mean"][:n]) / spec["std"][:n],
                               atol=2e-3)
    expected = (np.concatenate([logmel.mean(0), logmel.std(0)]) - spec["mean"]) / spec["std"]
    np.testing.assert_allclose(numpy(ex.statistics(maps, params)[0])[0], expected, atol=2e-3)

    style = timbre.waveform(timbre.files("val", domain="reed")[1])[:2 * SR]
    true_reed = timbre.waveform(brass.replace("brass", "reed", 1))[:2 * SR]
    result = model.stylize(content, style, feature_model=classifier)
    assert result.style_distance[1] < result.style_distance[0] / 10
    assert mel_distance(true_reed, result.audio, SR) < mel_distance(true_reed, content, SR)
    assert f0_error_cents(content, result.audio, SR, fmin=80, fmax=900) < 50
    with pytest.raises(ValueError, match="sample_rate=16000"):
        zoo.load("style_transfer").stylize(content, style, feature_model=classifier)


def test_texture_synthesis_has_the_requested_length(timbre):
    style = timbre.waveform(timbre.files("val", domain="reed")[0])[:SR]
    result = tiny(iterations=5).stylize(None, style, seconds=1.5)
    assert result.audio.shape == (int(1.5 * SR),) and np.all(np.isfinite(result.audio))
    assert result.style_distance[1] < result.style_distance[0]


def test_long_content_is_optimised_in_segments():
    """Segments crossfade into one spectrogram of the content's length."""
    t = np.arange(3 * SR) / SR
    content = (0.3 * np.sin(2 * np.pi * 220 * t)).astype("float32")
    style = (0.3 * np.sign(np.sin(2 * np.pi * 330 * t[:SR]))).astype("float32")
    result = tiny(iterations=3, segment_seconds=1.0).stylize(content, style)
    assert result.audio.shape == content.shape
    assert result.spectrogram.shape[0] == 1 + content.size // 128


def test_adam_and_noise_start_also_run():
    t = np.arange(SR) / SR
    x = (0.3 * np.sin(2 * np.pi * 220 * t)).astype("float32")
    result = tiny(iterations=5).stylize(x, x[::-1].copy(), optimizer="adam", init="noise",
                                        phase="random")
    assert len(result.history) == 6 and result.audio.shape == x.shape


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    t = np.arange(SR) / SR
    write_audio(tmp_path / "ok.wav", 0.3 * np.sin(2 * np.pi * 220 * t), SR)
    write_audio(tmp_path / "silent.wav", np.zeros(SR), SR)
    write_audio(tmp_path / "short.wav", 0.3 * np.ones(100), SR)
    for content, style, word, extra in (
            ("silent.wav", "ok.wav", "silent", []),
            ("ok.wav", "short.wav", "samples long", []),
            ("ok.wav", "ok.wav", "not both", ["--classifier", "x", "--feature-model", "y"]),
            ("ok.wav", "ok.wav", str(tmp_path / "none"), ["--classifier", str(tmp_path / "none")])):
        code = main(["stylize", str(tmp_path / content), str(tmp_path / style),
                     str(tmp_path / "out.wav"), "--iterations", "2", "--filters", "16", *extra])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and word in err[0], err
    assert not (tmp_path / "out.wav").exists()


def test_cli_writes_audio_and_a_spectrogram_png(tmp_path, capsys):
    t = np.arange(SR) / SR
    write_audio(tmp_path / "c.wav", 0.3 * np.sin(2 * np.pi * 220 * t), SR)
    write_audio(tmp_path / "s.wav", 0.3 * np.sign(np.sin(2 * np.pi * 330 * t)), SR)
    tiny(widths=[3, 11]).save(tmp_path / "st.keras")
    code = main(["stylize", str(tmp_path / "c.wav"), str(tmp_path / "s.wav"),
                 str(tmp_path / "out.wav"), "--iterations", "3", "--model",
                 str(tmp_path / "st.keras")])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "out.wav").stat().st_size > 1000
    assert (tmp_path / "out.png").stat().st_size > 1000
    assert "style distance" in capsys.readouterr().out


def test_a_trained_models_feature_maps_can_replace_the_random_ones(tmp_path, capsys):
    """Features from a zoo model that supports FEATURE_MAPS (a spectrogram VAE): the
    representation becomes its log-mel front-end; the style distance still falls."""
    vae = zoo.load("vae", n_mels=32, channels=16, latent_dim=4)
    t = np.arange(SR) / SR
    content = (0.3 * np.sin(2 * np.pi * 220 * t)).astype("float32")
    style = (0.3 * np.sign(np.sin(2 * np.pi * 330 * t))).astype("float32")
    result = tiny(iterations=8).stylize(content, style, feature_model=vae)
    assert result.audio.shape == content.shape and np.all(np.isfinite(result.audio))
    assert result.spectrogram.shape[1] == 32  # the VAE's mel bands
    assert result.style_distance[1] < result.style_distance[0]
    with pytest.raises(zoo.ZooError, match="cannot provide features"):
        tiny().stylize(content, style, feature_model=tiny())
