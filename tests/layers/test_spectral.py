"""Spectral front-end layers against librosa (settings stated in each test)."""
import keras
import librosa
import numpy as np
import pytest
from keras import ops

from layers import AmplitudeToDB, DBNormalization, MelScale, STFTMagnitude, stft_magnitude

SR = 16000


@pytest.fixture(scope="module")
def signal():
    rng = np.random.default_rng(1)
    t = np.arange(SR) / SR
    x = 0.5 * np.sin(2 * np.pi * 440 * t) + 0.1 * rng.standard_normal(SR)
    return x.astype("float32")


@pytest.mark.parametrize("n_fft,hop,power", [(512, 128, 1.0), (1152, 192, 2.0), (256, 64, 2.0)])
def test_stft_matches_librosa(signal, n_fft, hop, power):
    # librosa.stft(center=True, pad_mode="reflect"), periodic Hann window.
    ours = ops.convert_to_numpy(STFTMagnitude(n_fft, hop, power=power)(signal[None]))[0]
    ref = np.abs(librosa.stft(signal, n_fft=n_fft, hop_length=hop, pad_mode="reflect")) ** power
    assert ours.shape == ref.T.shape
    np.testing.assert_allclose(ours, ref.T, rtol=1e-3, atol=1e-3 * ref.max())


@pytest.mark.parametrize("htk,norm", [(True, None), (False, "slaney")])
def test_mel_matches_librosa(signal, htk, norm):
    # librosa.feature.melspectrogram(power=2, center=True, pad_mode="reflect")
    mel = MelScale(SR, 512, 64, htk=htk, norm=norm)
    ours = ops.convert_to_numpy(mel(stft_magnitude(signal[None], 512, 128, power=2.0)))[0]
    ref = librosa.feature.melspectrogram(y=signal, sr=SR, n_fft=512, hop_length=128, n_mels=64,
                                         htk=htk, norm=norm, pad_mode="reflect", power=2.0)
    np.testing.assert_allclose(ours, ref.T, rtol=2e-3, atol=1e-4 * ref.max())


def test_mel_pseudo_inverse_recovers_smooth_spectrum():
    mel = MelScale(SR, 512, 128)
    spectrum = np.exp(-np.linspace(0, 4, 257)).astype("float32")[None, None]  # smooth envelope
    back = ops.convert_to_numpy(mel.inverse(mel(spectrum)))
    band = slice(10, 250)  # away from the edges of the filterbank support
    err = np.abs(back[..., band] - spectrum[..., band]) / spectrum[..., band]
    assert np.median(err) < 0.05
    assert back.min() >= 0.0


def test_mel_nnls_refinement_approaches_librosa_nnls(signal):
    """Multiplicative NNLS updates after the pseudo-inverse: non-negative, the mel
    residual falls with more updates towards ``librosa.util.nnls``'s (an independent
    L-BFGS-B solver, which reaches ~0 on a real spectrogram)."""
    mel = MelScale(SR, 512, 64)
    power = stft_magnitude(signal[None], 512, 128, power=2.0)
    target = ops.convert_to_numpy(mel(power))[0]  # [frames, 64]
    fb = mel.filterbank  # [bins, mels]

    def residual(linear):
        return float(np.linalg.norm(linear @ fb - target))

    residuals = [residual(ops.convert_to_numpy(mel.inverse(target[None], iterations=n))[0])
                 for n in (0, 10, 100)]
    assert residuals[0] > residuals[1] > residuals[2]
    assert ops.convert_to_numpy(mel.inverse(target[None], iterations=10)).min() >= 0.0
    reference = librosa.util.nnls(fb.T, target.T).T
    # here: 7.0 % of |target| for the pseudo-inverse, 1.3 % after 100 updates, ~0 for librosa
    assert residuals[2] < 0.25 * residuals[0]
    assert residuals[2] < 0.02 * np.linalg.norm(target)
    assert residual(reference) <= residuals[2]


def test_power_to_db_matches_librosa(signal):
    s = np.abs(librosa.stft(signal, n_fft=512)) ** 2
    for top_db in (None, 80.0):
        ours = ops.convert_to_numpy(AmplitudeToDB(ref=2.0, top_db=top_db)(s[None]))[0]
        ref = librosa.power_to_db(s, ref=2.0, top_db=top_db)
        np.testing.assert_allclose(ours, ref, atol=1e-3)
    layer = AmplitudeToDB()
    np.testing.assert_allclose(ops.convert_to_numpy(layer.inverse(layer(s[None])))[0],
                               np.maximum(s, 1e-10), rtol=1e-4)


def test_db_normalization_range_and_inverse():
    layer = DBNormalization(min_db=-100.0, ref_db=20.0)
    db = np.array([-200.0, -80.0, -30.0, 20.0, 60.0], "float32")
    y = ops.convert_to_numpy(layer(db))
    # (db - 20 + 100) / 100 clipped to [0, 1], then to [-1, 1]
    expected = np.clip((db - 20 + 100) / 100, 0, 1) * 2 - 1
    np.testing.assert_allclose(y, expected, atol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(layer.inverse(y))[1:4], db[1:4], atol=1e-4)


@pytest.mark.parametrize("layer", [STFTMagnitude(256, 64, power=2.0), MelScale(8000, 256, 20, fmax=3000.0),
                                   AmplitudeToDB(top_db=60.0), DBNormalization(-80.0, 10.0)])
def test_serialization_round_trip(layer):
    clone = layer.__class__.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer)


def test_gradient_is_finite_through_silence():
    from tests.layers._grad import grad

    fe = lambda x: ops.sum(DBNormalization()(AmplitudeToDB()(MelScale(SR, 256, 16)(
        stft_magnitude(x, 256, 64, power=1.0)))))
    g = grad(fe, np.zeros((1, 1024), "float32"))
    assert np.all(np.isfinite(g))
