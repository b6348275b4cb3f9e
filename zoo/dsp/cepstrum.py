"""Mel-cepstra and the all-pass warping constant (SPTK's definitions)."""
import numpy as np

from zoo.dsp.signal import check_sr as _check_sr
from zoo.dsp.signal import magnitude as _magnitude


def mcep_alpha(sr, num_points=1000):
    """All-pass warping constant ``alpha`` that best approximates the mel scale.

    A transcription of ``pysptk.util.mcepalpha``: the ``alpha`` in
    ``arange(0, 1, 0.001)`` minimising the mean squared difference between the
    normalised all-pass warped frequency axis and the normalised mel scale
    ``ln(1 + f / 1000)`` (0.41 at 16 kHz, 0.455 at 22.05 kHz, 0.544 at 44.1 kHz).

    Args:
        sr: sample rate in Hz.
        num_points: points on ``[0, sr / 2)`` compared.

    Returns:
        float: ``alpha``.

    Example:
    >>> mcep_alpha(16000)
    0.41
    """
    sr = _check_sr(sr)
    f = (sr / 2.0) / num_points * np.arange(num_points)
    mel = np.log1p(f / 1000.0)
    mel = mel / mel[-1]
    omega = np.pi / num_points * np.arange(num_points)
    alphas = np.arange(0.0, 1.0, 0.001)[:, None]
    num = (1 - alphas ** 2) * np.sin(omega)
    den = (1 + alphas ** 2) * np.cos(omega) - 2 * alphas
    with np.errstate(divide="ignore", invalid="ignore"):
        warp = np.arctan(num / den)
    warp = np.where(warp < 0, warp + np.pi, warp)
    warp = warp / warp[:, -1:]
    dist = np.mean((warp - mel) ** 2, axis=1)
    return round(float(alphas[int(np.argmin(dist)), 0]), 3)


def mel_cepstra(x, sr, order, n_fft, hop, n_mels, method, alpha):
    """Mel-cepstra ``[frames, order + 1]`` (c0 first) of a waveform.

    ``method="mfcc"``: orthonormal DCT-II of the log power mel spectrum (librosa,
    Slaney filterbank of ``n_mels`` bands); ``method="sptk"``: ``pysptk.mcep``
    mel-cepstral analysis with all-pass constant ``alpha`` on Blackman-windowed
    frames (needs pysptk); ``method="world"``: SPTK's mel-cepstrum (:func:`zoo.dsp.world.sp2mc`)
    of WORLD's CheapTrick envelope at a ``hop`` frame period, what voice-conversion
    toolkits (sprocket) compare. See :func:`zoo.eval.mel_cepstral_distortion`.
    """
    import librosa

    if method == "world":
        from zoo.dsp.world import sp2mc, world_analysis

        _, sp, _ = world_analysis(x, sr, frame_period=1000.0 * hop / sr, fft_size=n_fft,
                                  f0_method="dio")  # the envelope only
        return sp2mc(sp, order, alpha)
    if method == "mfcc":
        power = _magnitude(x, n_fft, hop, 2.0)
        fb = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)
        log_mel = np.log(np.maximum(fb @ power, 1e-10))
        c = librosa.feature.mfcc(S=log_mel, n_mfcc=order + 1, dct_type=2, norm="ortho")
        return c.T
    try:
        import pysptk
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "method='sptk' needs pysptk (pip install pysptk); method='mfcc' needs nothing."
        ) from err
    from scipy.signal import get_window

    padded = np.pad(x, n_fft // 2, mode="reflect")
    frames = librosa.util.frame(padded, frame_length=n_fft, hop_length=hop, axis=0)
    frames = frames * get_window("blackman", n_fft)
    return np.stack([
        pysptk.mcep(np.ascontiguousarray(f), order=order, alpha=alpha, etype=1, eps=1e-8)
        for f in frames
    ])
