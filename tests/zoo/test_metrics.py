"""Objective metrics (zoo.eval.metrics) against hand-computed values, independent
numpy/scipy transcriptions of their formulas, and librosa."""

import inspect
import os
import subprocess
import sys
from pathlib import Path

import librosa
import numpy as np
import pytest
import scipy.fft
import scipy.signal
from keras import ops

from layers import losses as L
from zoo.data import render_vowel
from zoo.eval import (
    f0_contour,
    f0_correlation,
    f0_error_cents,
    formants_lpc,
    log_spectral_distance,
    mcep_alpha,
    mel_cepstral_distortion,
    mel_distance,
    multiscale_spectral_distance,
    real_time_factor,
    relative_formant_error,
    si_sdr,
    voicing_agreement,
)

SR = 16000
# librosa.stft builds its last frames from a tail segment that np.pad-reflects
# with a wrap when the segment is exactly n_fft // 2 long (e.g. 8192 samples, n_fft
# 512, hop 256): the frame's final sample then differs, weighted by the Hann
# window's last value (~4e-5). Transcriptions therefore agree to ~1e-6, not 1e-12.
RTOL = 1e-5
ROOT = Path(__file__).resolve().parents[2]


def _noise(n, seed=0):
    return np.random.default_rng(seed).standard_normal(n)


def _tone(freq, seconds=0.5, sr=SR):
    return 0.5 * np.sin(2 * np.pi * freq * np.arange(int(seconds * sr)) / sr)


# ------------------------------------------------- independent transcriptions
def _stft_mag(x, n_fft, hop):
    """|STFT| [bins, frames] by hand: reflect pad, frame, periodic Hann, rfft."""
    xp = np.pad(np.asarray(x, dtype=np.float64), n_fft // 2, mode="reflect")
    frames = 1 + (len(xp) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    win = scipy.signal.get_window("hann", n_fft)  # periodic
    return np.abs(np.fft.rfft(xp[idx] * win, axis=1)).T


def _mss_ref(x, y, scales, overlap=0.75, eps=1e-7):
    total = 0.0
    for n in scales:
        hop = int(n * (1 - overlap))
        X, Y = _stft_mag(x, n, hop), _stft_mag(y, n, hop)
        total += np.mean((X - Y) ** 2) / np.mean(X ** 2)
        total += np.mean(np.abs(np.log(X + eps) - np.log(Y + eps)))
    return total


def _cepstra_ref(x, sr, n_fft, hop, n_mels, order):
    mel = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels) @ _stft_mag(x, n_fft, hop) ** 2
    c = scipy.fft.dct(np.log(np.maximum(mel, 1e-10)), type=2, norm="ortho", axis=0)
    return c[1:order + 1].T


# -------------------------------------------------------------------- spectral
def test_multiscale_spectral_distance_reference_values():
    x = _noise(8192)
    y = x + 0.3 * _noise(8192, 1)
    scales = (1024, 256, 64)
    assert multiscale_spectral_distance(x, y, scales=scales) == pytest.approx(
        _mss_ref(x, y, scales), rel=RTOL)
    # Defaults: RAVE scales 2048..128, overlap 0.75.
    assert multiscale_spectral_distance(x, y) == pytest.approx(
        _mss_ref(x, y, (2048, 1024, 512, 256, 128)), rel=RTOL)
    assert multiscale_spectral_distance(x, x) == 0.0
    # Halving: per scale 1/4 + ln 2 (exactly, up to eps).
    assert multiscale_spectral_distance(x, 0.5 * x, scales=(512, 128)) == pytest.approx(
        2 * (0.25 + np.log(2)), rel=1e-5)
    # Overlap 0.5 changes the hop.
    assert multiscale_spectral_distance(x, y, scales=(512,), overlap=0.5) == pytest.approx(
        _mss_ref(x, y, (512,), 0.5), rel=RTOL)


def test_multiscale_spectral_distance_matches_in_graph_loss():
    x = np.stack([_noise(4096, 0), 0.1 * _noise(4096, 1)]).astype("float32")
    y = (x + 0.5 * np.stack([_noise(4096, 2), np.sin(np.arange(4096) / 7.0)])).astype("float32")
    scales = (2048, 256)  # two scales keep JAX's first-call compilation short
    graph = ops.convert_to_numpy(L.multiscale_spectral_distance(x, y, scales, per_example=True))
    for b in range(2):
        assert multiscale_spectral_distance(x[b], y[b], scales=scales) == pytest.approx(
            float(graph[b]), rel=1e-3)
    # Same defaults as the in-graph version.
    ours = inspect.signature(multiscale_spectral_distance).parameters
    theirs = inspect.signature(L.multiscale_spectral_distance).parameters
    for name in ("scales", "overlap", "eps"):
        assert ours[name].default == theirs[name].default


def test_log_spectral_distance():
    x = _noise(8192)
    y = x * np.linspace(0.5, 2.0, 8192)
    px, py = _stft_mag(x, 512, 128) ** 2, _stft_mag(y, 512, 128) ** 2
    db = 10 * np.log10((px + 1e-10) / (py + 1e-10))
    ref = np.mean(np.sqrt(np.mean(db ** 2, axis=0)))
    assert log_spectral_distance(x, y, 512, 128) == pytest.approx(ref, rel=RTOL)
    assert log_spectral_distance(x, y, 512, 128) == pytest.approx(
        log_spectral_distance(y, x, 512, 128), rel=1e-12)
    assert log_spectral_distance(x, 2.0 * x) == pytest.approx(20 * np.log10(2.0), rel=1e-6)
    assert log_spectral_distance(x, x) == 0.0
    graph = ops.convert_to_numpy(L.log_spectral_distance(x[None].astype("float32"),
                                                         y[None].astype("float32"), 512, 128))
    assert log_spectral_distance(x, y, 512, 128) == pytest.approx(float(graph[0]), rel=1e-3)


def test_mel_distance():
    x = _noise(SR)
    y = x * np.linspace(0.2, 1.0, SR) + 0.1 * _noise(SR, 3)
    fb = librosa.filters.mel(sr=SR, n_fft=1024, n_mels=80)
    mx = np.log(np.maximum(fb @ _stft_mag(x, 1024, 256), 1e-5))
    my = np.log(np.maximum(fb @ _stft_mag(y, 1024, 256), 1e-5))
    assert mel_distance(x, y, SR) == pytest.approx(np.mean(np.abs(mx - my)), rel=RTOL)
    assert mel_distance(x, 2.0 * x, SR) == pytest.approx(np.log(2.0), rel=1e-9)
    assert mel_distance(x, x, SR) == 0.0
    assert mel_distance(x, y, SR) == pytest.approx(mel_distance(y, x, SR), rel=1e-12)
    assert mel_distance(x, y, SR, n_mels=40, n_fft=512, hop=128) == pytest.approx(
        mel_distance(y, x, SR, n_mels=40, n_fft=512, hop=128))


def test_spectral_metrics_trim_to_shorter_and_stay_finite_on_silence():
    x = _noise(6000)
    longer = np.concatenate([x, _noise(1000, 5)])
    assert multiscale_spectral_distance(x, longer) == 0.0
    assert log_spectral_distance(longer, x) == 0.0
    assert mel_distance(x, longer, SR) == 0.0
    assert mel_cepstral_distortion(x, longer, SR, align="none") == 0.0
    silent = np.zeros(6000)
    for value in (
        multiscale_spectral_distance(silent, x), multiscale_spectral_distance(x, silent),
        log_spectral_distance(silent, x), mel_distance(silent, x, SR),
        mel_cepstral_distortion(silent, x, SR),
        mel_cepstral_distortion(silent, x, SR, align="none"),
    ):
        assert np.isfinite(value) and value > 0
    assert multiscale_spectral_distance(silent, silent) == 0.0
    assert log_spectral_distance(silent, silent) == 0.0
    assert mel_distance(silent, silent, SR) == 0.0
    assert mel_cepstral_distortion(silent, silent, SR) == 0.0


def test_bad_input_is_reported():
    x = _noise(4096)
    with pytest.raises(ValueError, match="mono"):
        multiscale_spectral_distance(np.stack([x, x]), x)
    with pytest.raises(ValueError, match="NaN"):
        mel_distance(np.full(4096, np.nan), x, SR)
    with pytest.raises(ValueError, match="empty"):
        si_sdr([], x)
    with pytest.raises(ValueError, match="1000 samples.*2048"):
        multiscale_spectral_distance(x[:1000], x[:1000])
    with pytest.raises(ValueError, match="sr"):
        mel_distance(x, x, sr=0)
    with pytest.raises(ValueError, match="overlap"):
        multiscale_spectral_distance(x, x, overlap=1.0)
    # [1, samples] is squeezed to mono.
    assert log_spectral_distance(x[None], x) == 0.0


# ---------------------------------------------------------------------- SI-SDR
def test_si_sdr_closed_form_and_invariances():
    s = _noise(SR)
    s -= s.mean()
    n = _noise(SR, 1)
    n -= n.mean()
    n -= (n @ s) / (s @ s) * s  # orthogonal to s: the projection of s + n on s is s
    n *= np.sqrt(0.01 * (s @ s) / (n @ n))  # noise power 1 % of the signal's: 20 dB
    assert si_sdr(s, s + n) == pytest.approx(20.0, abs=1e-9)
    for scale in (1e-3, 0.5, 7.0, -2.0):
        assert si_sdr(s, scale * (s + n)) == pytest.approx(20.0, abs=1e-9)
    assert si_sdr(s + 3.0, s + n - 1.0) == pytest.approx(20.0, abs=1e-9)  # zero-mean
    # Independent noise: the correlation form 10 log10(rho^2 / (1 - rho^2)).
    e = s + 0.7 * _noise(SR, 2)
    rho = np.corrcoef(s, e)[0, 1]
    assert si_sdr(s, e) == pytest.approx(10 * np.log10(rho ** 2 / (1 - rho ** 2)), rel=1e-9)
    assert si_sdr(s, 2.5 * s) == 300.0  # perfect: capped, not inf


def test_si_sdr_lengths_and_silence():
    s = _noise(1000)
    e = s + 0.1 * _noise(1000, 1)
    assert si_sdr(s, np.append(e, [0.1] * 10)) == pytest.approx(si_sdr(s, e))  # within 1 %
    with pytest.raises(ValueError, match=r"1000 samples.*1011"):
        si_sdr(s, np.append(e, [0.1] * 11))
    with pytest.raises(ValueError, match="reference is silent"):
        si_sdr(np.zeros(1000), e)
    with pytest.raises(ValueError, match="estimate is silent"):
        si_sdr(s, np.full(1000, 0.3))


# ------------------------------------------------------------------------- MCD
def test_mel_cepstral_distortion_reference_and_identities():
    x = render_vowel(140.0, (600.0, 1200.0, 2500.0), 0.5, SR)
    y = render_vowel(160.0, (400.0, 2000.0, 2800.0), 0.5, SR)
    cx, cy = _cepstra_ref(x, SR, 1024, 256, 80, 24), _cepstra_ref(y, SR, 1024, 256, 80, 24)
    ref = np.mean(10 / np.log(10) * np.sqrt(2 * np.sum((cx - cy) ** 2, axis=1)))
    got = mel_cepstral_distortion(x, y, SR, align="none")
    assert got == pytest.approx(ref, rel=RTOL)
    assert mel_cepstral_distortion(y, x, SR, align="none") == pytest.approx(got, rel=1e-12)
    assert mel_cepstral_distortion(x, y, SR) == pytest.approx(mel_cepstral_distortion(y, x, SR),
                                                              rel=1e-9)
    assert mel_cepstral_distortion(x, x, SR) == 0.0
    # c0 (energy) is excluded: a gain change is invisible where no mel power hits the
    # 1e-10 floor (noise; not the synthetic vowel, whose top bands, 7.5-8 kHz, lie near it).
    noise = _noise(8192)
    assert mel_cepstral_distortion(noise, 3.0 * noise, SR, align="none") == pytest.approx(
        0.0, abs=1e-9)
    assert mel_cepstral_distortion(x, y, SR, order=12, n_mels=40) < got


def test_mel_cepstral_distortion_dtw_aligns_a_time_stretched_copy():
    vowels = [(500.0, 1500.0, 2500.0), (300.0, 2200.0, 3000.0), (750.0, 1100.0, 2500.0),
              (350.0, 900.0, 2300.0)]

    def sentence(seconds):
        return np.concatenate([render_vowel(150.0, f, seconds, SR) for f in vowels])

    x, stretched = sentence(0.25), sentence(0.4)
    aligned = mel_cepstral_distortion(x, stretched, SR)
    unaligned = mel_cepstral_distortion(x, stretched, SR, align="none")
    assert aligned < 0.4 * unaligned
    path_pairs = mel_cepstral_distortion(stretched, x, SR)
    assert path_pairs == pytest.approx(aligned, rel=1e-6)


def test_mel_cepstral_distortion_options():
    x = _noise(4096)
    with pytest.raises(ValueError, match="alpha"):
        mel_cepstral_distortion(x, x, SR, alpha=0.42)
    with pytest.raises(ValueError, match="align"):
        mel_cepstral_distortion(x, x, SR, align="linear")
    with pytest.raises(ValueError, match="n_mels"):
        mel_cepstral_distortion(x, x, SR, order=40, n_mels=30)
    with pytest.raises(ValueError, match="fewer than n_fft"):
        mel_cepstral_distortion(x[:500], x, SR)
    # pysptk.util.mcepalpha's values.
    assert [mcep_alpha(sr) for sr in (8000, 16000, 22050, 44100, 48000)] == [
        0.312, 0.41, 0.455, 0.544, 0.554]


def test_mel_cepstral_distortion_sptk():
    pysptk = pytest.importorskip("pysptk")
    x = render_vowel(140.0, (600.0, 1200.0, 2500.0), 0.25, SR)
    y = render_vowel(160.0, (400.0, 2000.0, 2800.0), 0.25, SR)

    def mc(sig):
        frames = librosa.util.frame(np.pad(sig.astype(np.float64), 512, mode="reflect"),
                                    frame_length=1024, hop_length=256, axis=0)
        frames = frames * scipy.signal.get_window("blackman", 1024)  # periodic
        return np.stack([pysptk.mcep(f.copy(), 24, 0.41, etype=1, eps=1e-8) for f in frames])

    cx, cy = mc(x)[:, 1:], mc(y)[:, 1:]
    ref = np.mean(10 / np.log(10) * np.sqrt(2 * np.sum((cx - cy) ** 2, axis=1)))
    assert mel_cepstral_distortion(x, y, SR, align="none", method="sptk") == pytest.approx(
        ref, rel=1e-6)
    assert mel_cepstral_distortion(x, x, SR, method="sptk") == 0.0


# -------------------------------------------------------------------------- f0
def test_f0_of_a_tone_and_one_semitone_error():
    tone = _tone(220.0)
    f0, voiced = f0_contour(tone, SR)
    ref_f0, ref_voiced, _ = librosa.pyin(tone, fmin=50, fmax=1000, sr=SR, frame_length=2048,
                                         hop_length=512)
    np.testing.assert_array_equal(voiced, ref_voiced)
    np.testing.assert_allclose(f0[voiced], ref_f0[ref_voiced])
    assert voiced.mean() > 0.9 and np.all(np.isnan(f0[~voiced]))
    assert np.median(f0[voiced]) == pytest.approx(220.0, rel=0.01)
    up = _tone(220.0 * 2 ** (1 / 12))
    assert f0_error_cents(tone, up, SR) == pytest.approx(100.0, abs=5.0)
    assert f0_error_cents(up, tone, SR) == pytest.approx(100.0, abs=5.0)
    assert f0_error_cents(tone, 0.3 * tone, SR) == pytest.approx(0.0, abs=1.0)


def test_f0_correlation_and_voicing_agreement():
    t = np.arange(int(0.75 * SR)) / SR
    rise = 0.5 * np.sin(2 * np.pi * np.cumsum(180.0 + 160.0 * t) / SR)
    fall = 0.5 * np.sin(2 * np.pi * np.cumsum(300.0 - 160.0 * t) / SR)
    assert f0_correlation(rise, 0.5 * rise, SR) > 0.99
    assert f0_correlation(rise, fall, SR) < -0.99
    with pytest.raises(ValueError, match="constant"):
        f0_correlation(_tone(220.0), _tone(220.0), SR)
    tone = _tone(220.0, 0.75)
    half = tone.copy()
    half[len(half) // 2:] = 0.0
    agreement = voicing_agreement(tone, half, SR)
    assert 0.35 < agreement < 0.65
    assert voicing_agreement(tone, tone, SR) == 1.0
    assert voicing_agreement(np.zeros(SR // 2), np.zeros(SR // 2), SR) == 1.0


def test_f0_metrics_raise_on_silent_or_unvoiced_input():
    tone, silent = _tone(220.0), np.zeros(SR // 2)
    for fn in (f0_error_cents, f0_correlation):
        with pytest.raises(ValueError, match="estimate is silent or unvoiced"):
            fn(tone, silent, SR)
        with pytest.raises(ValueError, match="reference is silent or unvoiced"):
            fn(silent, tone, SR)
    first, second = tone.copy(), tone.copy()
    first[len(tone) // 2 - 2048:] = 0.0
    second[:len(tone) // 2 + 2048] = 0.0
    with pytest.raises(ValueError, match="no frames voiced in both signals"):
        f0_error_cents(first, second, SR)


# -------------------------------------------------------------------- formants
@pytest.mark.parametrize("f0,formants,sr", [
    (120.0, (500.0, 1500.0, 2500.0), 16000),
    (100.0, (300.0, 900.0, 2400.0), 16000),
    (150.0, (700.0, 1200.0, 2600.0), 22050),  # resampled to 11 kHz first
])
def test_formants_lpc_recovers_synthetic_vowels(f0, formants, sr):
    x = render_vowel(f0, formants, 0.5, sr)
    est = formants_lpc(x, sr)
    assert est.shape == (3,)
    assert np.all(relative_formant_error(est, formants) < 10.0), est
    track = formants_lpc(x, sr, num_formants=2, per_frame=True)
    assert track.ndim == 2 and track.shape[1] == 2
    assert np.nanmedian(track[:, 0]) == pytest.approx(est[0], rel=1e-6)


def test_formants_lpc_all_pole_resonances():
    # Noise through three known 2-pole resonators at 11 kHz (no resampling).
    sr = 11000
    y = _noise(sr // 2)
    for freq, bw in ((600.0, 80.0), (1700.0, 100.0), (2900.0, 150.0)):
        r = np.exp(-np.pi * bw / sr)
        y = scipy.signal.lfilter([1.0], [1.0, -2 * r * np.cos(2 * np.pi * freq / sr), r * r], y)
    est = formants_lpc(y, sr, order=6, preemphasis=None)
    np.testing.assert_allclose(est, [600.0, 1700.0, 2900.0], rtol=0.03)


def test_formants_lpc_errors():
    with pytest.raises(ValueError, match="silent"):
        formants_lpc(np.zeros(SR // 2), SR)
    with pytest.raises(ValueError, match="fewer than one frame"):
        formants_lpc(_noise(100), SR)


def test_relative_formant_error():
    np.testing.assert_allclose(relative_formant_error([550.0, 1350.0, 2500.0],
                                                      [500.0, 1500.0, 2500.0]), [10.0, 10.0, 0.0])
    assert relative_formant_error(450.0, 500.0) == pytest.approx(10.0)
    assert isinstance(relative_formant_error(450.0, 500.0), float)
    with pytest.raises(ValueError, match="positive"):
        relative_formant_error([500.0], [0.0])
    with pytest.raises(ValueError, match="finite"):
        relative_formant_error([np.nan], [500.0])


# ----------------------------------------------------------------------- speed
def test_real_time_factor():
    assert real_time_factor(10.0, 0.5) == 20.0
    assert real_time_factor(1.0, 4.0) == 0.25
    with pytest.raises(ValueError, match="positive"):
        real_time_factor(1.0, 0.0)
    with pytest.raises(ValueError, match="non-negative"):
        real_time_factor(-1.0, 1.0)


def test_importing_zoo_eval_is_light():
    code = ("import sys, zoo.eval; heavy = [m for m in ('keras', 'tensorflow', 'jax', 'torch') "
            "if m in sys.modules]; assert not heavy, heavy")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=env)
