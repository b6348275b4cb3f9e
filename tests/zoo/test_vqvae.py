"""The spectrogram VQ-VAE: it learns (beats the mean-spectrum baseline on held-out clips,
with most codes in use), codes are integers that decode to what `reconstruct` gives,
residual VQ trades levels for error, the bitrate is the closed form, and the exported
SavedModel takes int32 codes."""
import math

import keras
import numpy as np
import pytest
from keras import ops

import zoo
from tests.zoo.test_vae import error_vs_mean_baseline, result_recipe_source
from zoo.data import load_dataset
from zoo.training.trainer import train

TINY = dict(channels=16, code_dim=8, num_codes=32, n_fft=512, hop_length=128, n_mels=32,
            griffin_lim_iters=2, mel_inversion_iters=30, seed=0)


def _clips(batch=2, length=4096, seed=0):
    t = np.arange(length) / 16000.0
    rng = np.random.default_rng(seed)
    f0 = rng.uniform(150, 600, size=(batch, 1))
    return (0.3 * np.sin(2 * np.pi * f0 * t) + 0.01 * rng.standard_normal((batch, length))
            ).astype("float32")


def test_vqvae_learns_and_uses_its_codebook(tmp_path):
    """120 steps on builtin:timbre: held-out log-mel error below half the mean-spectrum
    baseline's, and most of the codebook in use on held-out clips (dead-code restart)."""
    result = train("vqvae", tiny=True, steps=120, out=tmp_path / "run", verbose=0,
                   samples=False, overrides={
                       "train": {"steps_per_epoch": 120, "batch_size": 8, "learning_rate": 2e-3,
                                 "validation_steps": 1},
                       "model_config": {"channels": 32}})
    model = result.model
    model.likelihood = "gaussian"  # what error_vs_mean_baseline compares
    dataset = load_dataset(result_recipe_source(tmp_path / "run"), model.sample_rate, 4096,
                           progress=False)
    error, baseline = error_vs_mean_baseline(model, dataset)
    assert error < 0.5 * baseline, (error, baseline)
    codes = ops.convert_to_numpy(model.encode(dataset.clips(16, split="val", seed=2)))
    assert len(np.unique(codes)) >= 0.6 * model.num_codes
    assert 1.0 <= result.history["val_perplexity"][-1] <= model.num_codes


def test_codes_restarted_counts_the_codes_a_batch_left_unused():
    """All EMA usages start at the threshold (1): after one step exactly the codes no
    vector of the batch chose fall below it and are restarted."""
    model = zoo.load("vqvae", **TINY)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = _clips(batch=8)
    unused = model.num_codes - len(np.unique(ops.convert_to_numpy(model.encode(x))))
    assert unused > 0
    history = model.fit(x, batch_size=8, epochs=1, verbose=0).history
    assert history["codes_restarted"] == [float(unused)]


def test_codes_are_integers_that_decode_to_the_reconstruction():
    model = zoo.load("vqvae", **TINY)
    x = _clips()
    codes = ops.convert_to_numpy(model.encode(x))
    frames = model.frontend.num_frames(x.shape[1])
    assert codes.dtype == np.int32
    assert codes.shape == (2, -(-frames // 4), 32 // 4)
    assert codes.min() >= 0 and codes.max() < model.num_codes
    np.testing.assert_allclose(ops.convert_to_numpy(model.decode(codes, length=x.shape[1])),
                               ops.convert_to_numpy(model.reconstruct(x)), atol=1e-5)
    # the code vectors are the codebook's rows
    table = ops.convert_to_numpy(model.stages[0].codes)
    np.testing.assert_array_equal(ops.convert_to_numpy(model.lookup(codes)), table[codes])


def test_residual_levels_lower_the_latent_error_and_raise_the_bitrate():
    """With k-means-initialised residual codebooks, each further level brings the
    quantised code map closer to the encoder's output; bits per second grow by log2 K
    per level: positions/s = sr / hop / 2**d * n_mels / 2**d."""
    model = zoo.load("vqvae", **{**TINY, "num_quantizers": 3, "kmeans_init": True})
    x = _clips(batch=4)
    model(x, training=True)  # the first training batch initialises the codebooks
    features = model.frontend(model.frontend.pad_input(x))
    latent = ops.convert_to_numpy(model.encode_features(features))
    codes = ops.convert_to_numpy(model.encode(x))
    assert codes.shape[-1] == 3
    errors = [float(np.mean((ops.convert_to_numpy(model.lookup(codes, levels)) - latent) ** 2))
              for levels in (1, 2, 3)]
    assert errors[0] > errors[1] > errors[2], errors
    positions = 16000 / 128 / 4 * (32 / 4)
    for levels in (1, 2, 3):
        assert model.bitrate(levels) == pytest.approx(positions * levels * math.log2(32))
    assert "102.4x smaller" in model.bitrate_report()[1]  # 256000 / 2500 b/s
    with pytest.raises(ValueError, match="levels must be in 1..3"):
        model.lookup(codes, 4)


def test_per_resolution_widths_build_that_network_and_round_trip():
    """``channels`` as one width per resolution (finest first): the encoder's convs
    widen stage by stage and the decoder mirrors them; the config round-trips and the
    codes keep their shape."""
    model = zoo.load("vqvae", **{**TINY, "channels": [4, 8, 16]})
    x = _clips()
    codes = ops.convert_to_numpy(model.encode(x))
    convs = lambda net: [l.filters for l in net.layers if hasattr(l, "filters")]  # noqa: E731
    assert convs(model.encoder) == [4, 8, 8, 16, 16, 8]  # ... then code_dim
    assert convs(model.decoder) == [16, 8, 8, 4, 4, 1]
    assert codes.shape == ops.convert_to_numpy(zoo.load("vqvae", **TINY).encode(x)).shape
    clone = type(model).from_config(model.get_config())
    assert clone.get_config()["channels"] == [4, 8, 16]
    clone.build()
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(ops.convert_to_numpy(clone.encode(x)), codes)


def test_bad_settings_are_one_line_errors():
    with pytest.raises(Exception, match=r"n_mels \(34\) must be a multiple"):
        zoo.load("vqvae", **{**TINY, "n_mels": 34})
    for channels in ([8, 16], [8, 0, 16], 0):
        with pytest.raises(Exception, match="channels must be a positive int or 3 positive"):
            zoo.load("vqvae", **{**TINY, "channels": channels})
    with pytest.raises(Exception, match="ema_decay must be in"):
        zoo.load("vqvae", **{**TINY, "ema_decay": 1.0})


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="SavedModel served by TF")
def test_saved_model_decodes_int32_codes(tmp_path):
    import tensorflow as tf

    from zoo.export import write_saved_model

    model = zoo.load("vqvae", **TINY)
    x = _clips()
    write_saved_model(model, tmp_path / "sm")
    served = tf.saved_model.load(str(tmp_path / "sm"))
    codes = served.encode(tf.constant(x))
    assert codes.dtype == tf.int32
    np.testing.assert_array_equal(codes.numpy(), ops.convert_to_numpy(model.encode(x)))
    expected = ops.convert_to_numpy(model.decode(codes.numpy()))
    # Griffin-Lim in a graph vs eagerly: float rounding only
    np.testing.assert_allclose(served.decode(codes).numpy(), expected,
                               atol=0.02 * np.abs(expected).max())


def test_zoo_info_prints_the_bitrate(capsys):
    from tests.zoo.test_cli import run_cli

    code, out, _ = run_cli(capsys, "info", "vqvae")
    # the recipe: 16000 / 256 / 4 * (256 / 4) = 1000 code positions per second, 9 bits each
    assert code == 0 and "bitrate: 1 codebook(s) of 512: 9.00 kbit/s, 28.4x smaller" in out
