"""The WaveNet prior and the waveform VQ-VAE it models: causal logits (by perturbation),
cached sampling draws exactly the codes that re-running the network draws, the prior
learns codes better than their unigram with its VQ-VAE frozen, and the waveform VQ-VAE's
codes round-trip and its loss falls."""
import keras
import numpy as np
import pytest
from keras import ops

import zoo
from tests.zoo._priors import assert_prior_beats_unigram, dynamo_graphs
from zoo.training.trainer import train

VQ = dict(channels=16, code_dim=8, num_codes=32, seed=0)


def _prior(**kwargs):
    keras.utils.set_random_seed(0)
    prior = zoo.load("wavenet", vqvae=VQ, filters=16, num_layers=4, dilation_cycle=2, **kwargs)
    prior.build()
    return prior


def test_logits_never_see_the_current_or_later_codes():
    prior = _prior()
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 32, size=(1, 24)).astype("int32")
    base = ops.convert_to_numpy(prior.logits(codes))
    for t in (0, 5, 13, 23):
        changed = codes.copy()
        changed[:, t:] = rng.integers(0, 32, size=changed[:, t:].shape)
        out = ops.convert_to_numpy(prior.logits(changed))
        np.testing.assert_allclose(out[:, : t + 1], base[:, : t + 1], atol=1e-5)
    changed = codes.copy()
    changed[0, 3] = (codes[0, 3] + 1) % 32
    assert not np.allclose(ops.convert_to_numpy(prior.logits(changed))[0, 4], base[0, 4])
    assert prior.receptive_field == 1 + 2 * (1 + 2)  # dilations 1, 2, 1, 2 with kernel 2


def test_cached_sampling_draws_the_codes_naive_sampling_draws():
    prior = _prior()
    cached = ops.convert_to_numpy(prior.sample_codes(3, 20, seed=4, temperature=0.8))
    naive = ops.convert_to_numpy(prior.sample_codes_naive(3, 20, seed=4, temperature=0.8))
    assert cached.shape == (3, 20) and cached.min() >= 0 and cached.max() < 32
    np.testing.assert_array_equal(cached, naive)
    assert not np.array_equal(cached, ops.convert_to_numpy(prior.sample_codes(3, 20, seed=5)))
    audio = ops.convert_to_numpy(prior.sample(2, 1000, seed=1))
    assert audio.shape == (2, 1000) and np.all(np.isfinite(audio))


def test_compiled_steps_draw_the_codes_eager_steps_draw():
    """``compile_steps`` (a ``torch.compile``d step on torch; the whole loop is compiled
    anyway on JAX and TF) draws exactly the eager loop's codes, for two seeds through the
    one compiled step; on torch dynamo builds two graphs for all 24 steps (the first
    step's fresh states have other strides than the streamed ones), not one per step (an
    int index would be specialised into a graph per value)."""
    prior = _prior()
    graphs = dynamo_graphs()
    for seed in (4, 5):
        eager = ops.convert_to_numpy(prior.sample_codes(2, 12, seed=seed, compile_steps=False))
        compiled = ops.convert_to_numpy(prior.sample_codes(2, 12, seed=seed,
                                                           compile_steps=True))
        np.testing.assert_array_equal(compiled, eager)
    if keras.backend.backend() == "torch":
        assert dynamo_graphs() - graphs == 2


def test_prior_learns_codes_better_than_their_unigram_and_keeps_its_vqvae(tmp_path):
    """Trained 80 tiny steps through a k-means-initialised, saved VQ-VAE: fewer bits per
    held-out code than the unigram, the VQ-VAE frozen (``tests/zoo/_priors.py``)."""
    from zoo.models.vqvae import WaveformVQVAE

    assert_prior_beats_unigram(tmp_path, "wavenet", WaveformVQVAE, VQ, margin_bits=0.1,
                               model_config=None)


def test_waveform_vqvae_codes_round_trip_and_its_loss_falls(tmp_path):
    model = zoo.load("vqvae_waveform", **VQ)
    x = np.random.default_rng(0).standard_normal((2, 3000)).astype("float32") * 0.1
    codes = ops.convert_to_numpy(model.encode(x))
    assert codes.dtype == np.int32 and codes.shape == (2, -(-3000 // 64))
    np.testing.assert_allclose(ops.convert_to_numpy(model.decode(codes, length=3000)),
                               ops.convert_to_numpy(model.reconstruct(x)), atol=1e-5)
    assert model.bitrate() == 16000 / 64 * 5  # 250 codes/s x log2(32) bits
    result = train("vqvae_waveform", tiny=True, steps=30, out=tmp_path / "run", verbose=0,
                   samples=False, overrides={"train": {"steps_per_epoch": 10,
                                                       "learning_rate": 2e-3,
                                                       # constant: the recipe decays to 1e-4
                                                       "final_learning_rate": 2e-3}})
    loss = result.history["reconstruction"]
    assert loss[-1] < 0.8 * loss[0], loss


def test_waveform_vqvae_decoders_and_checkpoints_from_before_the_istft_head(tmp_path):
    """The default decoder ends in an inverse-STFT head at the code rate (one frame of
    ``4 x hop`` bins per code); a config naming no decoder (checkpoints from before it)
    builds the transposed stack, which then reproduces that model's output exactly; a
    bad decoder or FFT size is a one-line error naming the argument."""
    from layers import ISTFTHead
    from zoo.models.vqvae import WaveformVQVAE

    x = np.random.default_rng(1).standard_normal((2, 2000)).astype("float32") * 0.1
    model = zoo.load("vqvae_waveform", **VQ)
    head = model.decoder.layers[-1]
    assert isinstance(head, ISTFTHead) and (head.n_fft, head.hop_length) == (256, 64)
    assert ops.convert_to_numpy(model.reconstruct(x)).shape == (2, 2000)
    old = zoo.load("vqvae_waveform", **VQ, decoder="transposed")
    config = old.get_config()
    for key in ("decoder", "decoder_channels", "istft_fft"):
        config.pop(key)
    clone = WaveformVQVAE.from_config(config)
    assert clone.decoder_kind == "transposed"
    clone.build()
    clone.set_weights(old.get_weights())
    np.testing.assert_array_equal(ops.convert_to_numpy(clone.reconstruct(x)),
                                  ops.convert_to_numpy(old.reconstruct(x)))
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.decoder_kind == "istft"
    np.testing.assert_allclose(ops.convert_to_numpy(loaded.reconstruct(x)),
                               ops.convert_to_numpy(model.reconstruct(x)), atol=1e-6)
    for bad, match in (({"decoder": "wavenet"}, "decoder must be one of"),
                       ({"istft_fft": 200}, r"istft_fft \(200\) must be a multiple")):
        with pytest.raises(Exception, match=match):
            zoo.load("vqvae_waveform", **VQ, **bad)


def test_harmonic_decoder_parts_pitch_target_and_round_trip(tmp_path):
    """``decoder="harmonic"``: the waveform is the oscillator bank's part plus the noise
    head's, ``f0`` stays in ``f0_range``, the pitch target is librosa's YIN at the code
    rate, a ``.keras`` round trip decodes the same, bad arguments are one-line errors."""
    import librosa

    model = zoo.load("vqvae_waveform", **VQ, decoder="harmonic", num_harmonics=16,
                     f0_range=(60.0, 900.0))
    x = np.random.default_rng(2).standard_normal((2, 2048)).astype("float32") * 0.1
    parts = {k: ops.convert_to_numpy(v) for k, v in model.decode_parts(model.encode(x)).items()}
    waveform, f0, harmonic, noise = (parts[k] for k in ("waveform", "f0", "harmonic", "noise"))
    assert waveform.shape == harmonic.shape == noise.shape == (2, 2048) and f0.shape == (2, 32)
    np.testing.assert_allclose(waveform, harmonic + noise, atol=1e-5)
    assert f0.min() >= 60.0 - 1e-3 and f0.max() <= 900.0 + 1e-3
    np.testing.assert_allclose(waveform, ops.convert_to_numpy(model.reconstruct(x)), atol=1e-5)
    t = np.arange(8192) / 16000
    tone = (np.sin(2 * np.pi * 330 * t) + 0.3 * np.sin(2 * np.pi * 660 * t)).astype("float32")
    target, voiced = (ops.convert_to_numpy(a)[0] for a in model.pitch_target(tone[None]))
    frame = 64 * int(np.ceil(3 * 16000 / 60.0 / 64))
    ref = librosa.yin(tone, fmin=60.0, fmax=900.0, sr=16000, frame_length=frame, hop_length=64)
    np.testing.assert_allclose(target, ref, rtol=1e-4)
    assert voiced[10:-10].min() == 1.0
    path = tmp_path / "h.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.decoder_kind == "harmonic" and loaded.num_harmonics == 16
    np.testing.assert_allclose(ops.convert_to_numpy(loaded.reconstruct(x)),
                               ops.convert_to_numpy(model.reconstruct(x)), atol=1e-5)
    for bad, match in (({"f0_range": (500.0, 100.0)}, "f0_range must be"),
                       ({"num_harmonics": 0}, "num_harmonics")):
        with pytest.raises(Exception, match=match):
            zoo.load("vqvae_waveform", **VQ, decoder="harmonic", **bad)
    with pytest.raises(Exception, match="decoder='harmonic'"):
        zoo.load("vqvae_waveform", **VQ).decode_parts(np.zeros((1, 4), "int32"))
