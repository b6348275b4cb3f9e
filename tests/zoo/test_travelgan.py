"""TraVeLGAN (MelGAN-VC): losses vs numpy, shapes, any-length conversion, training, saving, CLI."""
import keras
import numpy as np
import pytest
import soundfile as sf
from keras import ops

from zoo import cli, registry
from zoo.data import load_dataset
from layers import MelScale, invert_mel_by_gradient
from layers.spectral import stft_magnitude
from zoo.models.chunking import chunk_layout, crossfade_window, frame, overlap_add
from zoo.models.travelgan import (TraVeLGAN, identity_loss, margin_loss,
                                  pairwise_margin_loss, pairwise_travel_loss, travel_loss)

TINY = registry.load_recipe("travelgan", tiny=True)
SR = 16000


def tiny_model(**overrides):
    keras.utils.set_random_seed(0)
    return registry.build(TINY, **overrides)


def numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


@pytest.fixture(scope="module")
def trained():
    """Three batches (3 critic updates, 1 generator + siamese update) on builtin:timbre."""
    model = tiny_model()
    model.compile_from_recipe(TINY["train"])
    before = {net.name: [numpy(v) for v in net.trainable_variables]
              for net in (model.generator, model.critic, model.siamese)}
    ds = load_dataset("builtin:timbre", SR, TINY["data"]["crop_length"], progress=False)
    data = ds.batches(2, num_steps=3, paired=True, loader="py")
    history = model.fit(data, epochs=1, steps_per_epoch=3, shuffle=False, verbose=0)
    return model, history.history, before


# ------------------------------------------------------------------ losses vs numpy
def _np_losses(s1, s3, g1, g3, delta):
    t, tg = s1 - s3, g1 - g3
    cos = np.sum(t * tg, -1) / (np.linalg.norm(t, axis=-1) * np.linalg.norm(tg, axis=-1))
    travel = np.mean((t - tg) ** 2) - np.mean(cos)
    margin = np.mean(np.maximum(0.0, delta - np.linalg.norm(t, axis=-1)) ** 2)
    return travel, margin


def test_losses_match_numpy():
    rng = np.random.default_rng(0)
    s1, s3, g1, g3 = (rng.standard_normal((4, 5)).astype("float32") for _ in range(4))
    s3[0] = s1[0] + 0.1  # a short t: the margin is active for some rows only
    travel, margin = _np_losses(s1, s3, g1, g3, 2.0)
    np.testing.assert_allclose(numpy(travel_loss(s1, s3, g1, g3)), travel, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(numpy(margin_loss(s1, s3, 2.0)), margin, rtol=1e-5, atol=1e-6)
    assert 0 < margin
    # Identical transformation vectors: no distance, cosine 1.
    np.testing.assert_allclose(numpy(travel_loss(s1, s3, s1 + 1.0, s3 + 1.0)), -1.0, atol=1e-5)
    b, gb = rng.uniform(-1, 1, (2, 8, 3)), rng.uniform(-1, 1, (2, 8, 3))
    np.testing.assert_allclose(numpy(identity_loss(b.astype("float32"), gb.astype("float32"))),
                               np.mean(np.abs(gb - b)), rtol=1e-5)


def test_generator_objective_weights_losses():
    model = tiny_model()
    rng = np.random.default_rng(1)
    crop = TINY["data"]["crop_length"]
    a, b = (0.1 * rng.standard_normal((2, crop)).astype("float32") for _ in range(2))
    loss, logs = model.generator_loss((a, b), training=False)
    logs = {k: float(numpy(v)) for k, v in logs.items()}
    expected = logs["adversarial"] + 10 * (logs["travel"] + logs["margin"]) + 0.5 * logs["identity"]
    np.testing.assert_allclose(float(numpy(loss)), expected, rtol=1e-5)


# ------------------------------------------------------------------------ shapes
@pytest.mark.parametrize("frames", [8, 24, 40, 13, 1])
def test_generator_keeps_feature_shape(frames):
    model = tiny_model()
    x = np.random.default_rng(0).uniform(-1, 1, (3, frames, 32)).astype("float32")
    y = numpy(model.translate_chunks(x))
    assert y.shape == x.shape and np.all(np.abs(y) <= 1.0)
    assert numpy(model.convert_features(x)).shape == x.shape


def test_chunking_and_crossfade_reconstruct_identity():
    """Framing at 50 % overlap + windowed overlap-add is exact: no seams from the joins."""
    model = tiny_model()
    w, h = model.chunk_frames, model.chunk_frames // 2
    np.testing.assert_allclose(crossfade_window(w)[:h] + crossfade_window(w)[h:], 1.0)
    for frames in (8, 29, 100):
        n, padded = chunk_layout(frames, w, h)
        x = np.random.default_rng(frames).uniform(-1, 1, (2, padded, 32)).astype("float32")
        chunks = numpy(frame(x, w, h, n)).reshape(2, n, w, 32)
        y = numpy(overlap_add(chunks, h, crossfade_window(w)))
        np.testing.assert_allclose(y, x, atol=1e-6)


@pytest.mark.parametrize("seconds", [0.3, 7.3, 60.0])
def test_convert_any_length(seconds):
    model = tiny_model()
    n = int(round(seconds * SR))
    t = np.arange(n) / SR
    x = (0.3 * np.sin(2 * np.pi * 220.0 * t)).astype("float32")
    y = model.convert(x, max_chunks=64)
    assert y.shape == x.shape and y.dtype == np.float32 and np.all(np.isfinite(y))
    if seconds < 1:  # batched, memory-bounded and in-graph conversion agree
        batch = np.stack([x, 0.5 * x])
        yb = model.convert(batch, max_chunks=3)
        assert yb.shape == batch.shape
        np.testing.assert_allclose(yb[0], y, atol=1e-4)
        # in-graph vs chunk-batched paths: different float summation orders through
        # Griffin-Lim, amplified by its iterations (torch with one thread differs by
        # ~1e-4, TF graphs by up to 1.3e-3 in a few samples); the bulk agrees far closer
        in_graph = numpy(model.translate(batch))
        np.testing.assert_allclose(in_graph, yb, atol=5e-3)
        assert np.mean(np.abs(in_graph - yb)) < 1e-4


def test_convert_very_short_input():
    model = tiny_model()
    assert model.convert(np.zeros(10, "float32")).shape == (10,)
    with pytest.raises(ValueError, match="samples"):
        model.convert(np.zeros((0,), "float32"))


# ---------------------------------------------------------------------- training
def test_training_updates_every_network_and_logs_all_losses(trained):
    model, history, before = trained
    for key in ("loss", "discriminator_loss", "generator_loss", "real_score", "fake_score",
                "adversarial", "travel", "margin", "identity"):
        assert key in history and np.isfinite(history[key][-1]), key
    for net in (model.generator, model.critic, model.siamese):
        # Every kernel moves (the critic's output bias legitimately gets zero gradient
        # from the hinge loss while both margins are active).
        changed = {v.path: not np.array_equal(a, numpy(v))
                   for a, v in zip(before[net.name], net.trainable_variables)
                   if "kernel" in v.path}
        assert changed and all(changed.values()), f"{net.name}: {changed}"
    assert model.schedule["generator"] == {"every": 3, "at": [2], "repeats": 1}


def test_keras_round_trip_is_exact(trained, tmp_path):
    model, _, _ = trained
    path = tmp_path / "travelgan.keras"
    model.save(path)
    restored = registry.load_saved(path)
    assert type(restored) is TraVeLGAN and restored.get_config() == model.get_config()
    for a, b in zip(model.variables, restored.variables):
        np.testing.assert_array_equal(numpy(a), numpy(b))
    x = (0.1 * np.random.default_rng(0).standard_normal(5000)).astype("float32")
    np.testing.assert_array_equal(model.convert(x), restored.convert(x))


# --------------------------------------------------------------------------- CLI
def test_cli_convert(trained, tmp_path, capsys):
    model, _, _ = trained
    saved = tmp_path / "m.keras"
    model.save(saved)
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"not audio at all")
    assert cli.main(["convert", str(saved), str(bad), str(tmp_path / "o.wav")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "broken.wav" in err
    # Stereo 22.05 kHz in, 8 kHz out: same duration.
    wav = tmp_path / "in.wav"
    sf.write(wav, 0.2 * np.random.default_rng(0).standard_normal((6615, 2)), 22050)
    out = tmp_path / "out.wav"
    assert cli.main(["convert", str(saved), str(wav), str(out), "--sample-rate", "8000"]) == 0
    y, rate = sf.read(out)
    assert rate == 8000 and y.ndim == 1 and abs(len(y) - 2400) <= 2


# ------------------------------------------------- original TraVeLGAN variant
ORIGINAL = registry.load_recipe("travelgan_original", tiny=True)


def _np_pairwise(sx, sg, delta):
    """Numpy transcription: all ordered pairs i != j, t_ij = s_i - s_j."""
    n = len(sx)
    dist, cos, margin = [], [], []
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            t, tg = sx[i] - sx[j], sg[i] - sg[j]
            dist.append(np.mean((t - tg) ** 2))
            cos.append(t @ tg / (np.linalg.norm(t) * np.linalg.norm(tg)))
            margin.append(max(0.0, delta - np.sum(t ** 2)))
    return np.mean(dist) - np.mean(cos), np.mean(margin)


def test_pairwise_travel_and_original_margin_match_numpy():
    rng = np.random.default_rng(3)
    sx, sg = (rng.standard_normal((5, 4)).astype("float32") for _ in range(2))
    sx[1] = sx[0] + 0.3  # some pairs inside the margin, some outside
    for delta in (10.0, 3.0):
        travel, margin = _np_pairwise(sx.astype("float64"), sg.astype("float64"), delta)
        np.testing.assert_allclose(numpy(pairwise_travel_loss(sx, sg)), travel, rtol=1e-5,
                                   atol=1e-6)
        np.testing.assert_allclose(numpy(pairwise_margin_loss(sx, delta)), margin, rtol=1e-5,
                                   atol=1e-6)
    assert 0 < float(numpy(pairwise_margin_loss(sx, 3.0))) < 3.0
    # Same transformation vectors: distance 0, cosine 1 for every pair.
    np.testing.assert_allclose(numpy(pairwise_travel_loss(sx, sx + 2.0)), -1.0, atol=1e-5)


def test_original_variant_config_and_objective():
    keras.utils.set_random_seed(0)
    model = registry.build(ORIGINAL)
    assert model.variant == "travelgan" and model.identity_weight == 0.0 and model.margin == 10.0
    assert TraVeLGAN(variant="travelgan", n_fft=256, hop_length=64, n_mels=32, chunk_frames=8,
                     generator_channels=8, critic_channels=8, siamese_dim=4).margin == 10.0
    assert tiny_model().get_config()["variant"] == "melgan_vc"
    with pytest.raises(ValueError, match="variant"):
        TraVeLGAN(variant="cyclegan")
    rng = np.random.default_rng(1)
    crop = ORIGINAL["data"]["crop_length"]
    a, b = (0.1 * rng.standard_normal((2, crop)).astype("float32") for _ in range(2))
    loss, logs = model.generator_loss((a, b), training=False)
    logs = {k: float(numpy(v)) for k, v in logs.items()}
    assert logs["identity"] == 0.0
    np.testing.assert_allclose(float(numpy(loss)),
                               logs["adversarial"] + 10 * (logs["travel"] + logs["margin"]),
                               rtol=1e-5)
    # Non-saturating losses, all pairs of the batch's chunks.
    _, a_chunks = model._crop_chunks(a)
    g_a = model.generator(a_chunks, training=False)
    fake = model.critic(model._join(g_a), training=False)
    np.testing.assert_allclose(logs["adversarial"],
                               np.mean(np.logaddexp(0.0, -numpy(fake))), rtol=1e-5)
    sx, sg = numpy(model.siamese(a_chunks)), numpy(model.siamese(g_a))
    travel, margin = _np_pairwise(sx.astype("float64"), sg.astype("float64"), 10.0)
    np.testing.assert_allclose(logs["travel"], travel, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(logs["margin"], margin, rtol=1e-4, atol=1e-5)


def test_original_variant_trains():
    keras.utils.set_random_seed(0)
    model = registry.build(ORIGINAL)
    model.compile_from_recipe(ORIGINAL["train"])
    assert model.schedule["generator"]["every"] == 1  # 1:1 critic/generator updates
    nets = (model.generator, model.critic, model.siamese)
    before = {n.name: [numpy(v) for v in n.trainable_variables] for n in nets}
    ds = load_dataset("builtin:timbre", SR, ORIGINAL["data"]["crop_length"], progress=False)
    data = ds.batches(2, num_steps=2, paired=True, loader="py")
    history = model.fit(data, epochs=1, steps_per_epoch=2, shuffle=False, verbose=0).history
    for key in ("discriminator_loss", "generator_loss", "adversarial", "travel", "margin"):
        assert np.isfinite(history[key][-1]), key
    for net in nets:
        moved = [not np.array_equal(a, numpy(v))
                 for a, v in zip(before[net.name], net.trainable_variables) if "kernel" in v.path]
        assert moved and all(moved), net.name


# ------------------------------------------------------- gradient mel inversion
def test_gradient_mel_inversion_reduces_mel_error():
    mel = MelScale(SR, 256, 32, htk=True, norm=None)
    t = np.arange(2048) / SR
    x = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 1250 * t)).astype("float32")
    target = numpy(mel(stft_magnitude(x[None], 256, 64, power=2.0)))

    def error(w):
        return float(np.mean(np.abs(numpy(mel(stft_magnitude(w[None], 256, 64, power=2.0)))
                                    - target[0])))

    start = invert_mel_by_gradient(target[0], mel, 256, 64, 2048, iterations=0)
    assert start.shape == (2048,) and start.dtype == np.float32
    out = invert_mel_by_gradient(target[0], mel, 256, 64, 2048, iterations=300,
                                 learning_rate=0.01)
    assert out.shape == (2048,) and np.all(np.isfinite(out))
    assert error(out) < 0.2 * error(start), (error(start), error(out))  # ~0.1 measured


def test_convert_with_gradient_inversion():
    model = tiny_model()
    x = (0.1 * np.random.default_rng(0).standard_normal(3000)).astype("float32")
    y = model.convert(x, inversion="gradient", iterations=5)
    assert y.shape == x.shape and y.dtype == np.float32 and np.all(np.isfinite(y))
    yb = model.convert(np.stack([x, x]), inversion="gradient", iterations=5)
    assert yb.shape == (2, 3000)
    with pytest.raises(ValueError, match="inversion"):
        model.convert(x, inversion="nnls")


# ------------------------------------------------------------------ bad training data
def _noise(path, seconds, sr, channels=1, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (int(seconds * sr),) if channels == 1 else (int(seconds * sr), channels)
    sf.write(path, 0.1 * np.random.default_rng(seed).standard_normal(shape), sr)


def _bad_folders(root):
    """{case: (data folder, text the error must contain)}."""
    for i in range(2):
        _noise(root / "one_domain" / "brass" / f"a{i}.wav", 1.5, SR, seed=i)
        _noise(root / "unusable" / "brass" / f"a{i}.wav", 1.5, SR, seed=i)
        (root / "unusable" / "reed").mkdir(parents=True, exist_ok=True)
        (root / "unusable" / "reed" / f"b{i}.wav").write_bytes(b"not audio")
    return {"missing": (root / "nowhere", "not found"),
            "one_domain": (root / "one_domain", "one sub-folder per domain"),
            "unusable": (root / "unusable" / "reed", "No usable audio")}


@pytest.mark.parametrize("case", ["missing", "one_domain", "unusable"])
def test_train_on_bad_domain_folders_fails_in_one_line(case, tmp_path, capsys):
    """A missing data folder, a missing second domain and a domain whose files all
    fail to decode each stop `zoo train travelgan` with one line naming the folder,
    before any run folder is written."""
    folder, text = _bad_folders(tmp_path)[case]
    data = folder.parent if case == "unusable" else folder
    run = tmp_path / "run"
    assert cli.main(["train", "travelgan", "--tiny", "--data", str(data), "--steps", "1",
                     "--out", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and text in err and str(folder) in err, err
    assert not run.exists()


def test_train_on_stereo_48k_domains(tmp_path):
    """Stereo 48 kHz domain folders are mixed down and resampled to the model's rate."""
    from zoo.training.trainer import train

    for domain, seed in (("brass", 0), ("reed", 10)):
        for i in range(3):
            _noise(tmp_path / "data" / domain / f"m{i}.wav", 1.0, 48000, channels=2, seed=seed + i)
    result = train("travelgan", str(tmp_path / "data"), steps=2, tiny=True, batch_size=2,
                   out=tmp_path / "run", verbose=0, samples=False)
    assert result.step == 2
    model = registry.load_saved(result.run_dir)
    out = model.convert(np.zeros(SR // 2, "float32"))
    assert np.asarray(ops.convert_to_numpy(out)).shape == (SR // 2,)


def test_segmented_griffin_lim_matches_whole_inversion(trained):
    """Long inputs are inverted in overlapping, cross-faded segments (bounded memory):
    the result has the input's length, no silent tail and no energy dips at the joins,
    and its spectrogram is close to that of inverting the whole input at once."""
    model, _, _ = trained
    x = np.concatenate([load_dataset("builtin:timbre", SR, 16000, progress=False).waveform(f)
                        for f in ("brass/mel_000.wav", "brass/mel_001.wav")])
    x = x[: int(7.3 * SR) + 77]
    whole = model.convert(x, segment_seconds=60.0)
    parts = model.convert(x, segment_seconds=2.0)  # 4+ segments, 3+ joins
    assert parts.shape == whole.shape == x.shape
    mag = lambda y: numpy(stft_magnitude(y[None], 1024, 256))[0]  # noqa: E731
    a, b = mag(whole), mag(parts)
    assert np.linalg.norm(a - b) / np.linalg.norm(a) < 0.1
    energy = (b ** 2).sum(-1) / np.maximum((a ** 2).sum(-1), 1e-9)
    loud = (a ** 2).sum(-1) > 1e-3 * (a ** 2).sum(-1).max()
    assert energy[loud].min() > 0.7
    assert np.abs(parts[-256:]).max() > 0 or np.abs(whole[-256:]).max() == 0
