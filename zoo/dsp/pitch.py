"""Fundamental frequency (f0) contours."""
import numpy as np

from zoo.dsp.signal import check_sr as _check_sr
from zoo.dsp.signal import mono as _mono


def f0_contour(x, sr, fmin=50.0, fmax=1000.0, frame_length=2048, hop_length=512):
    """f0 contour by probabilistic YIN (``librosa.pyin``).

    Args:
        x: waveform ``[samples]``.
        sr: sample rate, Hz.
        fmin, fmax: search range in Hz.
        frame_length: analysis frame in samples (``2 * sr / fmin`` or more).
        hop_length: hop in samples; frame ``t`` is centred at ``t * hop_length``.

    Returns:
        ``(f0, voiced)``: float64 ``[frames]`` in Hz, **NaN in unvoiced frames**
        (librosa's convention, convenient for plotting), and the boolean voiced
        flags ``[frames]``. The f0 metrics below use only voiced frames and
        never return NaN.

    Example:
    >>> t = np.arange(16000) / 16000
    >>> f0, voiced = f0_contour(np.sin(2 * np.pi * 220 * t), sr=16000)
    >>> abs(float(np.median(f0[voiced])) - 220.0) < 2.2  # pyin's grid: 0.1 semitone
    True
    """
    import librosa

    sr = _check_sr(sr)
    x = _mono(x, "x")
    f0, voiced, _ = librosa.pyin(x, fmin=fmin, fmax=fmax, sr=sr, frame_length=frame_length,
                                 hop_length=hop_length)
    return np.asarray(f0, dtype=np.float64), np.asarray(voiced, dtype=bool)


def voicing(x, sr, fmin=60.0, fmax=500.0, frame_length=1024, hop_length=256, within_db=30.0,
            quantile=0.9):
    """How voiced a sound is: pyin's voiced probability exceeded by the top
    ``1 - quantile`` of the frames within ``within_db`` of the loudest (silences left out).

    pyin's Viterbi voiced flags call narrow-band noise voiced (noise through a 50 Hz wide
    formant resonance rings near F1), while its per-frame probability stays at its floor
    (0.01) on such noise and is 0.3-0.8 on a gliding voice; a high quantile, not the
    median, because gliding speech has many frames of middling probability.

    Returns:
        float in [0, 1]: about 0.01 for whispered or noise-like sound, above 0.3 for voice.

    Example:
    >>> t = np.arange(16000) / 16000
    >>> voicing(np.sin(2 * np.pi * 150 * t), 16000) > 0.5
    True
    >>> voicing(np.random.default_rng(0).standard_normal(16000), 16000) < 0.05
    True
    """
    import librosa

    sr = _check_sr(sr)
    x = _mono(x, "x")
    _, _, prob = librosa.pyin(x, fmin=fmin, fmax=fmax, sr=sr, frame_length=frame_length,
                              hop_length=hop_length)
    rms = librosa.feature.rms(y=x, frame_length=frame_length, hop_length=hop_length)[0]
    level = 20 * np.log10(rms[:len(prob)] + 1e-12)
    return float(np.quantile(prob[level >= level.max() - within_db], quantile))
