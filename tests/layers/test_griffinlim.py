"""Inverse STFT, fast Griffin-Lim and mel inversion against librosa."""
import librosa
import numpy as np
import pytest
from keras import ops

from layers import (GriffinLim, ISTFTHead, MelScale, griffin_lim, istft, mel_to_linear,
                    stft_magnitude)

SR = 16000


def chirp(seconds=1.0):
    t = np.arange(int(SR * seconds)) / SR
    return (0.5 * np.sin(2 * np.pi * (200 * t + 300 * t ** 2)) * np.exp(-t)).astype("float32")


def spectral_convergence(wave, magnitude, n_fft, hop):
    rebuilt = np.abs(librosa.stft(wave, n_fft=n_fft, hop_length=hop, pad_mode="reflect")).T
    return np.linalg.norm(rebuilt - magnitude) / np.linalg.norm(magnitude)


@pytest.mark.parametrize("n_fft,hop", [(512, 128), (1152, 192)])
def test_istft_inverts_stft_exactly_including_edges(n_fft, hop):
    x = np.random.default_rng(0).standard_normal((2, 9000)).astype("float32")
    real, imag = ops.stft(x, n_fft, hop, n_fft, center=True)
    y = ops.convert_to_numpy(istft(real, imag, n_fft, hop, length=9000))
    np.testing.assert_allclose(y, x, atol=1e-4)  # keras.ops.istft is off by ~0.3 at the edges on TF


def test_istft_rejects_hop_not_dividing_nfft():
    with pytest.raises(ValueError, match="multiple"):
        istft(np.zeros((1, 3, 257), "float32"), np.zeros((1, 3, 257), "float32"), 512, 100)


def test_istft_head_is_librosa_istft_of_its_projected_spectrum():
    # The projection is set to the identity, so the inputs are the head's raw outputs
    # (log-magnitudes, then phases); the waveform must be librosa's inverse STFT
    # (periodic Hann, centred) of exp(log-magnitude) * e^{i phase}.
    n_fft, hop, frames = 256, 64, 12
    bins = n_fft // 2 + 1
    rng = np.random.default_rng(0)
    features = rng.normal(size=(2, frames, 2 * bins)).astype("float32")
    features[..., :bins] = np.minimum(features[..., :bins], 3.0) - 2.0
    head = ISTFTHead(n_fft, hop)
    head.build((None, frames, 2 * bins))
    head.projection.set_weights([np.eye(2 * bins, dtype="float32"),
                                 np.zeros(2 * bins, "float32")])
    out = ops.convert_to_numpy(head(features))
    assert out.shape == (2, frames * hop)
    spectrum = np.exp(features[..., :bins]) * np.exp(1j * features[..., bins:])
    ref = np.stack([librosa.istft(s.T, hop_length=hop, n_fft=n_fft, window="hann",
                                  center=True, length=frames * hop) for s in spectrum])
    np.testing.assert_allclose(out, ref, atol=2e-4 * np.abs(ref).max())
    # the magnitude ceiling: a huge log-magnitude is clipped to log(max_magnitude)
    loud = features.copy()
    loud[..., :bins] = 50.0
    real, imag = head.spectrum(loud)
    np.testing.assert_allclose(np.hypot(ops.convert_to_numpy(real), ops.convert_to_numpy(imag)),
                               100.0, rtol=1e-4)
    assert ISTFTHead.from_config(head.get_config()).get_config() == head.get_config()
    with pytest.raises(ValueError, match="multiple of hop_length"):
        ISTFTHead(250, 64)


def test_griffin_lim_matches_librosa_quality():
    # Same n_fft, hop, iterations, momentum 0.99 and zero-phase init as librosa.griffinlim.
    x = chirp()
    n_fft, hop, iters = 512, 128, 32
    mag = np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop, pad_mode="reflect")).T
    ours = ops.convert_to_numpy(griffin_lim(mag[None], n_fft, hop, iters, length=len(x)))[0]
    ref = librosa.griffinlim(mag.T, n_iter=iters, hop_length=hop, n_fft=n_fft, init=None,
                             length=len(x), pad_mode="reflect")
    sc_ours = spectral_convergence(ours, mag, n_fft, hop)
    sc_ref = spectral_convergence(ref, mag, n_fft, hop)
    sc_zero_phase = spectral_convergence(ops.convert_to_numpy(
        griffin_lim(mag[None], n_fft, hop, 0, length=len(x)))[0], mag, n_fft, hop)
    assert sc_ours < 1.1 * sc_ref + 1e-3, (sc_ours, sc_ref)
    assert sc_ours < 0.5 * sc_zero_phase  # the iterations actually retrieve phase


def test_griffin_lim_is_batched_and_layer_serialises():
    x = np.stack([chirp(0.5), chirp(0.5)[::-1].copy()])
    mag = stft_magnitude(x, 256, 64)
    layer = GriffinLim(256, 64, n_iter=8)
    out = ops.convert_to_numpy(layer(mag, length=x.shape[1]))
    single = ops.convert_to_numpy(layer(mag[1:], length=x.shape[1]))
    np.testing.assert_allclose(out[1:], single, atol=5e-3)  # GL amplifies float differences
    assert GriffinLim.from_config(layer.get_config()).get_config() == layer.get_config()


@pytest.mark.parametrize("method", ["pinv", "nnls"])
def test_mel_to_linear_against_librosa(method):
    x = chirp()
    mel_layer = MelScale(SR, 512, 128, htk=True, norm=None)
    power = np.abs(librosa.stft(x, n_fft=512, hop_length=128, pad_mode="reflect")).T ** 2
    mel = ops.convert_to_numpy(mel_layer(power[None]))
    ours = np.asarray(ops.convert_to_numpy(mel_to_linear(mel, mel_layer, method)))[0]
    ref = librosa.feature.inverse.mel_to_stft(mel[0].T, sr=SR, n_fft=512, power=2.0, htk=True,
                                              norm=None).T ** 2  # librosa returns magnitude
    assert ours.shape == power.shape and ours.min() >= 0
    # Both inversions explain the mel spectrogram: re-projecting gives it back.
    remel = ops.convert_to_numpy(mel_layer(ours[None]))[0]
    rel = np.linalg.norm(remel - mel[0]) / np.linalg.norm(mel[0])
    assert rel < (0.05 if method == "nnls" else 0.35), rel
    if method == "nnls":
        np.testing.assert_allclose(ours, ref, rtol=0.05, atol=1e-3 * ref.max())
