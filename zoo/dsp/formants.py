"""Formant frequencies by LPC."""
import numpy as np

from zoo.dsp.signal import check_sr as _check_sr
from zoo.dsp.signal import mono as _mono
from zoo.dsp.signal import resample_poly as _resample


def formants_lpc(x, sr, num_formants=3, order=None, max_freq=5500.0, per_frame=False,
                 frame_seconds=0.025, hop_seconds=0.010, max_bandwidth=400.0, min_freq=90.0,
                 preemphasis=50.0):
    """Formant frequencies by LPC root solving (the classic Praat-like recipe).

    The signal is resampled to ``2 * max_freq`` (when ``sr`` is higher),
    pre-emphasised above ``preemphasis`` Hz (``y[n] - exp(-2 pi 50 / sr) y[n-1]``
    for the default 50 Hz, as Praat), cut into
    Hamming-windowed frames; per frame ``librosa.lpc`` (Burg) of ``order``
    gives a polynomial whose complex roots ``r`` (upper half plane) are
    resonances at ``angle(r) sr / (2 pi)`` Hz with bandwidth
    ``-ln|r| sr / pi`` Hz. Resonances in ``(min_freq, nyquist - 50)`` with
    bandwidth below ``max_bandwidth`` are candidates; the lowest
    ``num_formants`` are F1, F2, .... Frames whose energy is more than 40 dB
    below the loudest frame are skipped.

    Args:
        x: waveform ``[samples]``.
        sr: sample rate, Hz.
        num_formants: formants returned (F1..Fk).
        order: LPC order; ``None`` uses Praat's ``2 * max(5, num_formants)``
            (10: five resonances below ``max_freq``).
        max_freq: highest formant searched, Hz (Praat's "maximum formant";
            5500 suits adult female voices, 5000 male).
        per_frame: return a ``[frames, num_formants]`` track instead of one
            utterance-level estimate.
        frame_seconds, hop_seconds: analysis frame and hop.
        max_bandwidth: widest resonance accepted as a formant, Hz.
        min_freq: lowest resonance accepted, Hz.
        preemphasis: pre-emphasis corner in Hz; 0 or ``None`` disables it
            (for signals that are already all-pole, e.g. filtered white noise).

    Returns:
        ``per_frame=False``: float64 ``[num_formants]``, the per-formant median
        over the frames where it was found (no NaN). ``per_frame=True``:
        float64 ``[frames, num_formants]`` with NaN where a formant was not
        found or the frame was skipped.

    Raises:
        ValueError: silent input, a signal shorter than one frame, or (for the
            utterance-level estimate) a formant found in no frame.

    Example:
    >>> from zoo.data import render_vowel
    >>> x = render_vowel(120.0, (500.0, 1500.0, 2500.0), 1.0, 16000)
    >>> np.round(formants_lpc(x, 16000), -2)  # doctest: +SKIP
    array([ 500., 1500., 2500.])
    """
    import librosa

    sr = _check_sr(sr)
    x = _mono(x, "x")
    if not np.any(x):
        raise ValueError("x is silent: no formants to estimate.")
    if sr > 2.0 * max_freq * 1.0001:
        x, sr = _resample(x, sr, 2.0 * max_freq)
    if order is None:
        order = 2 * max(5, int(num_formants))
    if preemphasis:
        x = np.append(x[0], x[1:] - np.exp(-2 * np.pi * float(preemphasis) / sr) * x[:-1])
    frame = max(order + 2, int(round(frame_seconds * sr)))
    hop = max(1, int(round(hop_seconds * sr)))
    if len(x) < frame:
        raise ValueError(f"x has {len(x)} samples at {sr:g} Hz, fewer than one frame ({frame}).")
    frames = librosa.util.frame(x, frame_length=frame, hop_length=hop, axis=0)
    frames = frames * np.hamming(frame)
    energy = np.sum(frames ** 2, axis=1)
    keep = energy > 1e-4 * energy.max()
    nyq = sr / 2.0
    track = np.full((len(frames), num_formants), np.nan)
    for t in np.flatnonzero(keep):
        a = librosa.lpc(frames[t], order=order)
        if not np.all(np.isfinite(a)):
            continue
        roots = np.roots(a)
        roots = roots[np.imag(roots) > 0]
        freqs = np.angle(roots) * sr / (2 * np.pi)
        bws = -np.log(np.abs(roots)) * sr / np.pi
        ok = (freqs > min_freq) & (freqs < nyq - 50.0) & (bws < max_bandwidth)
        found = np.sort(freqs[ok])[:num_formants]
        track[t, :len(found)] = found
    if per_frame:
        return track
    out = np.empty(num_formants)
    for i in range(num_formants):
        col = track[:, i][np.isfinite(track[:, i])]
        if col.size == 0:
            raise ValueError(f"F{i + 1} was found in no frame; lower num_formants or raise order.")
        out[i] = np.median(col)
    return out
