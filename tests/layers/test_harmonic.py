import librosa
import numpy as np
import pytest
from keras import ops

from layers import HarmonicSynth, upsample_frames, yin

SR = 16000


def vibrato_tone(seconds=1.0, f0=220.0, cents=18.0, rate=5.0, partials=7):
    """A harmonic tone with vibrato (and its true f0 per sample), faded in."""
    t = np.arange(int(SR * seconds)) / SR
    f = f0 * 2.0 ** (cents / 1200.0 * np.sin(2 * np.pi * rate * t))
    phase = 2 * np.pi * np.cumsum(f) / SR
    x = sum(0.6 ** k * np.sin(k * phase) for k in range(1, partials + 1))
    x[:3000] *= np.linspace(0.0, 1.0, 3000)
    return x.astype("float32"), f


def test_yin_matches_librosa_and_tracks_a_vibrato():
    x, f = vibrato_tone()
    f0, aperiodicity = (ops.convert_to_numpy(a)[0] for a in yin(x[None], SR, 50.0, 1000.0,
                                                                  frame_length=1024,
                                                                  hop_length=64))
    ref = librosa.yin(x, fmin=50.0, fmax=1000.0, sr=SR, frame_length=1024, hop_length=64,
                      center=True, pad_mode="constant")
    assert f0.shape == ref.shape
    np.testing.assert_allclose(1200 * np.log2(f0 / ref), 0.0, atol=0.05)  # cents
    # and the vibrato itself (away from the zero-padded ends), within 10 cents
    inner = slice(8, -8)
    true = f[np.minimum(np.arange(len(f0)) * 64, len(f) - 1)][inner]
    assert np.max(np.abs(1200 * np.log2(f0[inner] / true))) < 10.0
    assert np.median(aperiodicity) < 0.1
    noise = np.random.default_rng(0).standard_normal((1, 8192)).astype("float32")
    assert np.median(ops.convert_to_numpy(yin(noise, SR)[1])) > 0.5
    with pytest.raises(ValueError, match="frame_length"):
        yin(x[None], SR, frame_length=1000, hop_length=64)


def test_upsample_frames_is_linear_interpolation_between_frame_centres():
    rng = np.random.default_rng(1)
    controls = rng.normal(size=(2, 9, 3)).astype("float32")
    out = ops.convert_to_numpy(upsample_frames(controls, 16))
    centres, n = np.arange(9) * 16 + 7.5, np.arange(9 * 16)
    ref = np.stack([np.stack([np.interp(n, centres, controls[b, :, c]) for c in range(3)], -1)
                    for b in range(2)])
    np.testing.assert_allclose(out, ref, atol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(upsample_frames(controls[..., 0], 16)),
                               ref[..., 0], atol=1e-5)


def test_harmonic_synth_is_the_numpy_oscillator_bank_and_silences_aliases():
    hop, frames, count = 64, 40, 6
    rng = np.random.default_rng(0)
    f0 = np.linspace(200.0, 300.0, frames, dtype="float32")[None]
    amps = rng.uniform(0.0, 1.0, (1, frames, count)).astype("float32")
    synth = HarmonicSynth(SR, hop)
    out = ops.convert_to_numpy(synth(f0, amps))[0]
    # transcription: controls interpolated between frame centres, phase a running sum
    centres, n = np.arange(frames) * hop + (hop - 1) / 2, np.arange(frames * hop)
    f_up = np.interp(n, centres, f0[0])
    phase = np.concatenate([[0.0], np.cumsum(f_up / SR)[:-1]])
    ref = sum(np.interp(n, centres, amps[0, :, k]) * np.sin(2 * np.pi * (k + 1) * phase)
              for k in range(count))
    np.testing.assert_allclose(out, ref, atol=2e-3)
    # at 3 kHz only harmonics 1 and 2 lie below the 8 kHz Nyquist
    high = ops.convert_to_numpy(synth(np.full((1, frames), 3000.0, "float32"),
                                      np.ones((1, frames, count), "float32")))[0]
    spectrum = np.abs(np.fft.rfft(high[:2048] * np.hanning(2048)))
    assert spectrum[np.fft.rfftfreq(2048, 1 / SR) > 6500].sum() < 1e-3 * spectrum.sum()
    assert HarmonicSynth.from_config(synth.get_config()).get_config() == synth.get_config()
    with pytest.raises(ValueError, match="hop_length"):
        HarmonicSynth(SR, 0)
