"""Input checks and small signal helpers shared by the DSP features and the metrics."""
from fractions import Fraction

import numpy as np


def mono(x, name="x"):
    """float64 1-D copy of ``x``; ValueError if empty, multi-channel or non-finite."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim > 1:
        a = np.squeeze(a)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a mono waveform [samples]; got shape {np.shape(x)}.")
    if a.size == 0:
        raise ValueError(f"{name} is empty.")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf.")
    return a


def check_sr(sr):
    if sr is None or not np.isscalar(sr) or not np.isfinite(sr) or sr <= 0:
        raise ValueError(f"sr must be a positive sample rate in Hz; got {sr!r}.")
    return float(sr)


def magnitude(x, n_fft, hop, power=1.0):
    """``|STFT|**power`` ``[bins, frames]``: periodic Hann window ``n_fft``, centred
    reflect-padded frames (``librosa.stft``), as ``layers.spectral.stft_magnitude``."""
    import librosa

    s = np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop, window="hann", center=True,
                            pad_mode="reflect"))
    return s if power == 1.0 else s ** power


def resample_poly(x, sr, target):
    """``x`` at ``target`` Hz (polyphase, scipy); the rate actually reached."""
    from scipy.signal import resample_poly

    ratio = Fraction(target / sr).limit_denominator(1000)
    up, down = ratio.numerator, ratio.denominator
    return resample_poly(x, up, down), sr * up / down
