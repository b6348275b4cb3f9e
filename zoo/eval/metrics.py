"""Objective audio metrics on numpy waveforms (outside models, any backend).

Every function takes mono waveforms as array-likes (``[samples]``; singleton
axes such as ``[1, samples]`` are squeezed) and computes in float64 with
numpy, scipy and librosa; nothing here imports Keras or a deep-learning
backend. They are meant for evaluation and benchmarks: run a model, convert
its output with ``keras.ops.convert_to_numpy``, then score it here.

Conventions shared by all metrics:

* **Sample rate.** Each function takes one ``sr``; both signals must already
  be at that rate (resample first, e.g. with ``librosa.resample``).
* **Different lengths.** Frame-aligned spectral metrics
  (:func:`multiscale_spectral_distance`, :func:`log_spectral_distance`,
  :func:`mel_distance`, and :func:`mel_cepstral_distortion` with
  ``align="none"``) compare the first ``min(len(x), len(y))`` samples of both
  signals. :func:`si_sdr` trims the same way only when the lengths differ by at
  most 1 % of the longer one, and raises ``ValueError`` naming both lengths
  otherwise. f0 metrics compare the first ``min`` frames of both contours.
  ``mel_cepstral_distortion(align="dtw")`` needs no trimming.
* **Silence.** Spectral metrics stay finite on silent clips (their logarithms
  and ratios are floored). Metrics that are undefined on silence (SI-SDR
  with a silent or constant reference or estimate, every f0 metric but
  :func:`voicing_agreement`) raise ``ValueError`` rather than return NaN.
* **Bad input.** Empty, multi-channel or non-finite signals raise
  ``ValueError``.
"""

import math

import numpy as np

from zoo.dsp import dtw_path, f0_contour, formants_lpc, mcep_alpha, mel_cepstra
from zoo.dsp.signal import check_sr as _check_sr
from zoo.dsp.signal import magnitude as _magnitude
from zoo.dsp.signal import mono as _mono

__all__ = [
    "multiscale_spectral_distance",
    "log_spectral_distance",
    "mel_distance",
    "si_sdr",
    "mel_cepstral_distortion",
    "mcep_alpha",
    "f0_contour",
    "f0_error_cents",
    "f0_correlation",
    "voicing_agreement",
    "f0_metrics",
    "formants_lpc",
    "relative_formant_error",
    "real_time_factor",
    "frechet_distance",
    "frechet_distance_gaussians",
]

#: Floor under ratio denominators (as in ``layers.losses``).
_TINY = 1e-20

#: |SI-SDR| cap in dB: a perfect (or orthogonal) estimate gives +300 (-300), not inf.
SI_SDR_CAP_DB = 300.0

#: ``10 / ln 10``: natural-log units -> dB.
_DB = 10.0 / math.log(10.0)


# ------------------------------------------------------------------------ helpers
def _pair(x, y, names=("x", "y")):
    """Both signals as float64 1-D, trimmed to the shorter length."""
    x, y = _mono(x, names[0]), _mono(y, names[1])
    n = min(len(x), len(y))
    return x[:n], y[:n]


def _check_length(n, n_fft, what="n_fft"):
    if n < n_fft:
        raise ValueError(
            f"signals of {n} samples are shorter than {what}={n_fft}; "
            "use a smaller FFT size or longer clips."
        )


# ----------------------------------------------------------------------- spectral
def multiscale_spectral_distance(x, y, sr=None, scales=(2048, 1024, 512, 256, 128),
                                 overlap=0.75, eps=1e-7):
    """Multiscale STFT-magnitude distance (RAVE's reference form), summed over scales.

    For each FFT size ``n`` in ``scales`` (Hann window ``n``, hop
    ``int(n * (1 - overlap))``, centred reflect-padded frames; ``X``, ``Y`` the
    STFT magnitudes of ``x``, ``y``)::

        mean((X - Y)^2) / mean(X^2) + mean|log(X + eps) - log(Y + eps)|

    (natural log). The distance is 0 for identical signals and, like RAVE's,
    asymmetric (``x`` is the reference in the ratio). It is the numpy twin of
    the in-graph ``layers.losses.multiscale_spectral_distance(form="rave")``
    evaluated on one example; the ratio denominator is floored at 1e-20, so a
    silent reference gives a large but finite value.

    Args:
        x: reference waveform ``[samples]``.
        y: compared waveform ``[samples]``; both are trimmed to the shorter.
        sr: sample rate; accepted for a uniform signature, the distance does
            not depend on it.
        scales: FFT sizes; the signals must be at least ``max(scales)`` long.
        overlap: frame overlap in ``[0, 1)``.
        eps: offset inside the logarithms.

    Returns:
        float: the distance (0 for identical signals).

    Example:
    >>> x = np.random.default_rng(0).standard_normal(16000)
    >>> round(multiscale_spectral_distance(x, 0.5 * x, scales=(512, 128)), 3)  # 2 (1/4 + ln 2)
    1.886
    """
    if sr is not None:
        _check_sr(sr)
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1); got {overlap}.")
    x, y = _pair(x, y)
    _check_length(len(x), max(scales), "max(scales)")
    total = 0.0
    for n in scales:
        hop = max(1, int(n * (1 - overlap)))
        mx, my = _magnitude(x, n, hop), _magnitude(y, n, hop)
        lin = np.mean((mx - my) ** 2) / max(np.mean(mx ** 2), _TINY)
        log_l1 = np.mean(np.abs(np.log(mx + eps) - np.log(my + eps)))
        total += lin + log_l1
    return float(total)


def log_spectral_distance(x, y, n_fft=1024, hop=256, eps=1e-10):
    """Log-spectral distance in dB: RMS over frequency of the dB difference,
    averaged over frames.

    ``LSD = mean_t sqrt(mean_f (10 log10((|X|^2 + eps) / (|Y|^2 + eps)))^2)``
    with ``X``, ``Y`` the STFTs (Hann window ``n_fft``, centred reflect-padded
    frames) of ``x`` and ``y``. Symmetric; 0 for identical signals; finite on
    silence (the ``eps`` power floor). The numpy twin of
    ``layers.losses.log_spectral_distance``.

    Args:
        x, y: waveforms ``[samples]``; trimmed to the shorter, which must be at
            least ``n_fft`` long.
        n_fft: FFT size.
        hop: hop length in samples.
        eps: power floor inside the logarithm.

    Returns:
        float: the distance in dB.

    Example:
    >>> x = np.random.default_rng(0).standard_normal(4096)
    >>> round(log_spectral_distance(x, 2.0 * x), 2)  # 20 log10(2)
    6.02
    """
    x, y = _pair(x, y)
    _check_length(len(x), n_fft)
    px, py = _magnitude(x, n_fft, hop, 2.0), _magnitude(y, n_fft, hop, 2.0)
    db = _DB * (np.log(px + eps) - np.log(py + eps))
    return float(np.mean(np.sqrt(np.mean(db ** 2, axis=0))))


def _log_mel(x, sr, n_mels, n_fft, hop, fmin, fmax, eps):
    import librosa

    mag = _magnitude(x, n_fft, hop)
    fb = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    return np.log(np.maximum(fb @ mag, eps))


def mel_distance(x, y, sr, n_mels=80, n_fft=1024, hop=256, fmin=0.0, fmax=None, eps=1e-5):
    """Mean absolute difference of log-mel spectrograms (the HiFi-GAN mel L1).

    ``mean |ln(max(M_x, eps)) - ln(max(M_y, eps))|`` over mel bands and frames,
    where ``M`` is librosa's default (Slaney-style, area-normalised) mel
    filterbank applied to the STFT *magnitude* (Hann window ``n_fft``, centred
    reflect-padded frames): natural logarithm, values clamped at ``eps = 1e-5``
    (so silence is finite and two silent clips are at distance 0).

    Args:
        x, y: waveforms ``[samples]``; trimmed to the shorter, which must be at
            least ``n_fft`` long.
        sr: sample rate of both, Hz.
        n_mels: mel bands.
        n_fft: FFT size.
        hop: hop length in samples.
        fmin, fmax: filterbank range in Hz (``fmax=None``: ``sr / 2``).
        eps: clamp under the mel magnitudes before the logarithm.

    Returns:
        float: the distance in natural-log (neper) units.

    Example:
    >>> x = np.random.default_rng(0).standard_normal(16000)
    >>> round(mel_distance(x, 2.0 * x, sr=16000), 3)  # ln 2
    0.693
    """
    sr = _check_sr(sr)
    x, y = _pair(x, y)
    _check_length(len(x), n_fft)
    mx = _log_mel(x, sr, n_mels, n_fft, hop, fmin, fmax, eps)
    my = _log_mel(y, sr, n_mels, n_fft, hop, fmin, fmax, eps)
    return float(np.mean(np.abs(mx - my)))


def si_sdr(reference, estimate):
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al., 2019).

    Both signals are made zero-mean; with ``a = <s, s_hat> / <s, s>``::

        SI-SDR = 10 log10(|a s|^2 / |s_hat - a s|^2)

    which equals ``10 log10(rho^2 / (1 - rho^2))`` for the correlation
    coefficient ``rho`` of the two. Higher is better; it is invariant to
    rescaling ``estimate`` (not symmetric). The result is clipped to
    ``[-300, 300]`` dB, so a perfect estimate gives 300.0 rather than inf.

    Args:
        reference: clean waveform ``[samples]``.
        estimate: estimated waveform ``[samples]``. If the lengths differ by at
            most 1 % of the longer, both are trimmed to the shorter; otherwise
            ``ValueError``.

    Returns:
        float: SI-SDR in dB.

    Raises:
        ValueError: lengths differ by more than 1 %, or either signal is
            silent (constant), where SI-SDR is undefined.

    Example:
    >>> s = np.sin(np.linspace(0, 100, 8000))
    >>> si_sdr(s, 3.0 * s)  # perfect up to scale: capped at +300 dB
    300.0
    """
    s, e = _mono(reference, "reference"), _mono(estimate, "estimate")
    if len(s) != len(e):
        if abs(len(s) - len(e)) > 0.01 * max(len(s), len(e)):
            raise ValueError(
                f"reference has {len(s)} samples and estimate {len(e)}: they differ by more "
                "than 1 %; align them first."
            )
        n = min(len(s), len(e))
        s, e = s[:n], e[:n]
    reference_raw, estimate_raw = s, e
    s = s - s.mean()
    e = e - e.mean()
    ss, ee = float(s @ s), float(e @ e)
    if ss <= 0.0 or np.all(reference_raw == reference_raw[0]):
        raise ValueError("reference is silent (constant): SI-SDR is undefined.")
    if ee <= 0.0 or np.all(estimate_raw == estimate_raw[0]):
        raise ValueError("estimate is silent (constant): SI-SDR is undefined.")
    target = (float(s @ e) / ss) * s
    noise = e - target
    t_pow, n_pow = float(target @ target), float(noise @ noise)
    cap = 10.0 ** (SI_SDR_CAP_DB / 10.0)
    if n_pow * cap <= t_pow:
        return SI_SDR_CAP_DB
    if t_pow * cap <= n_pow:
        return -SI_SDR_CAP_DB
    return float(10.0 * np.log10(t_pow / n_pow))


# -------------------------------------------------------------------------- MCD
def mel_cepstral_distortion(x, y, sr, order=24, alpha=None, align="dtw", n_fft=1024, hop=256,
                            n_mels=80, method="mfcc"):
    """Mel-cepstral distortion in dB, c0 (energy) excluded.

    Per frame pair ``MCD = 10 / ln 10 * sqrt(2 * sum_{d=1..order} (c_d - c'_d)^2)``,
    averaged over frame pairs: with ``align="dtw"`` the pairs of the optimal
    ``librosa.sequence.dtw`` path (Euclidean cost on ``c_1..c_order``), so
    unaligned takes of the same content are compared; with ``align="none"``
    frame ``t`` with frame ``t`` after trimming both signals to the shorter.
    Symmetric, 0 for identical signals, finite on silence.

    The mel-cepstra ``c`` depend on ``method``:

    * ``"mfcc"`` (default; numpy/librosa only): the orthonormal DCT-II of the
      natural-log *power* mel spectrum (librosa's Slaney mel filterbank with
      ``n_mels`` bands, power floored at 1e-10; ``librosa.feature.mfcc`` with
      ``dct_type=2, norm="ortho"``). This is **not** SPTK's mel-generalised
      cepstrum: the values are only comparable with other values of this
      function (same ``sr``, ``n_fft``, ``n_mels``, ``order``), not with
      published MCDs, which they exceed many times over.
    * ``"sptk"``: ``pysptk.mcep`` (mel-cepstral analysis, periodic-Blackman-windowed
      frames of ``n_fft`` samples) with warping ``alpha`` (``None``:
      :func:`mcep_alpha` of ``sr``), the usual definition in TTS/VC papers.
      Needs the optional package ``pysptk``.
    * ``"world"``: the same mel-cepstrum of WORLD's CheapTrick envelope (pyworld;
      frame period ``hop``), as voice-conversion toolkits (sprocket) measure it:
      :func:`zoo.dsp.world.sp2mc`.

    Args:
        x, y: waveforms ``[samples]`` at ``sr``, each at least ``n_fft`` long.
        sr: sample rate, Hz.
        order: cepstral order (coefficients ``c_1..c_order`` are compared).
        alpha: all-pass warping constant for ``method="sptk"``; ``None`` picks
            it from ``sr``. Must be ``None`` for ``method="mfcc"``.
        align: ``"dtw"`` or ``"none"``.
        n_fft: FFT / analysis frame size.
        hop: hop length in samples.
        n_mels: mel bands for ``method="mfcc"`` (at least ``order + 1``).
        method: ``"mfcc"`` or ``"sptk"``.

    Returns:
        float: MCD in dB.

    Example:
    >>> x = np.random.default_rng(0).standard_normal(16000)
    >>> mel_cepstral_distortion(x, x, sr=16000)
    0.0
    """
    sr = _check_sr(sr)
    if align not in ("dtw", "none"):
        raise ValueError(f"align must be 'dtw' or 'none'; got {align!r}.")
    if method not in ("mfcc", "sptk", "world"):
        raise ValueError(f"method must be 'mfcc', 'sptk' or 'world'; got {method!r}.")
    if method == "mfcc":
        if alpha is not None:
            raise ValueError("alpha only applies to method='sptk' (mel filterbank cepstra).")
        if n_mels < order + 1:
            raise ValueError(f"n_mels={n_mels} must be at least order + 1 = {order + 1}.")
    elif alpha is None:
        alpha = mcep_alpha(sr)
    if align == "none":
        x, y = _pair(x, y)
    else:
        x, y = _mono(x, "x"), _mono(y, "y")
    for name, sig in (("x", x), ("y", y)):
        if len(sig) < n_fft:
            raise ValueError(f"{name} has {len(sig)} samples, fewer than n_fft={n_fft}.")
    cx = mel_cepstra(x, sr, order, n_fft, hop, n_mels, method, alpha)[:, 1:]
    cy = mel_cepstra(y, sr, order, n_fft, hop, n_mels, method, alpha)[:, 1:]
    if align == "dtw":
        path = dtw_path(cx, cy)
        cx, cy = cx[path[:, 0]], cy[path[:, 1]]
    per_frame = _DB * np.sqrt(2.0 * np.sum((cx - cy) ** 2, axis=1))
    return float(np.mean(per_frame))


# --------------------------------------------------------------------------- f0
def _contours(ref, est, sr, kw, need_voiced=True):
    """Contours of both signals, trimmed to the shorter frame count."""
    out = []
    for name, sig in (("reference", ref), ("estimate", est)):
        sig = _mono(sig, name)
        if need_voiced and not np.any(sig):
            raise ValueError(f"{name} is silent or unvoiced: no f0 to compare.")
        f0, voiced = f0_contour(sig, sr, **kw)
        if need_voiced and not voiced.any():
            raise ValueError(f"{name} is silent or unvoiced: no f0 to compare.")
        out.append((f0, voiced))
    n = min(len(out[0][0]), len(out[1][0]))
    (f_r, v_r), (f_e, v_e) = out
    return f_r[:n], v_r[:n], f_e[:n], v_e[:n]


def _common_voiced(ref, est, sr, kw):
    return _voiced_in_both(*_contours(ref, est, sr, kw))


def _voiced_in_both(f_r, v_r, f_e, v_e):
    both = v_r & v_e & np.isfinite(f_r) & np.isfinite(f_e) & (f_r > 0) & (f_e > 0)
    if not both.any():
        raise ValueError("no frames voiced in both signals.")
    return f_r[both], f_e[both]


def f0_error_cents(reference, estimate, sr, fmin=50.0, fmax=1000.0, frame_length=2048,
                   hop_length=512):
    """Median absolute f0 error in cents over frames voiced in both signals.

    ``median |1200 log2(f0_est / f0_ref)|`` over the frames that
    :func:`f0_contour` marks voiced in both (contours trimmed to the shorter).
    One semitone is 100 cents.

    Args:
        reference, estimate: waveforms ``[samples]`` at ``sr``.
        sr: sample rate, Hz.
        fmin, fmax, frame_length, hop_length: as in :func:`f0_contour`.

    Returns:
        float: cents (>= 0).

    Raises:
        ValueError: a signal is silent or unvoiced, or no frame is voiced in
            both.

    Example:
    >>> t = np.arange(16000) / 16000
    >>> a, b = np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 220 * 2 ** (1 / 12) * t)
    >>> round(f0_error_cents(a, b, sr=16000) / 10) * 10
    100
    """
    kw = dict(fmin=fmin, fmax=fmax, frame_length=frame_length, hop_length=hop_length)
    return _cents(*_common_voiced(reference, estimate, sr, kw))


def _cents(f_r, f_e):
    return float(np.median(np.abs(1200.0 * np.log2(f_e / f_r))))


def f0_correlation(reference, estimate, sr, fmin=50.0, fmax=1000.0, frame_length=2048,
                   hop_length=512):
    """Pearson correlation of the f0 contours (Hz) over frames voiced in both.

    Args:
        reference, estimate: waveforms ``[samples]`` at ``sr``.
        sr: sample rate, Hz.
        fmin, fmax, frame_length, hop_length: as in :func:`f0_contour`.

    Returns:
        float in ``[-1, 1]``.

    Raises:
        ValueError: a signal is silent or unvoiced, fewer than 2 frames are
            voiced in both, or either contour is constant there (correlation
            undefined; compare with :func:`f0_error_cents` instead).

    Example:
    >>> t = np.arange(32000) / 16000
    >>> glide = np.sin(2 * np.pi * np.cumsum(200 + 50 * t) / 16000)
    >>> f0_correlation(glide, 0.5 * glide, sr=16000) > 0.99
    True
    """
    kw = dict(fmin=fmin, fmax=fmax, frame_length=frame_length, hop_length=hop_length)
    return _correlation(*_common_voiced(reference, estimate, sr, kw))


def _correlation(f_r, f_e):
    if len(f_r) < 2:
        raise ValueError("fewer than 2 frames voiced in both signals: correlation undefined.")
    dr, de = f_r - f_r.mean(), f_e - f_e.mean()
    nr, ne = float(np.sqrt(dr @ dr)), float(np.sqrt(de @ de))
    if nr <= 1e-9 * abs(f_r.mean()) or ne <= 1e-9 * abs(f_e.mean()):
        raise ValueError("f0 is constant over the frames voiced in both: correlation undefined.")
    return float(np.clip((dr @ de) / (nr * ne), -1.0, 1.0))


def voicing_agreement(reference, estimate, sr, fmin=50.0, fmax=1000.0, frame_length=2048,
                      hop_length=512):
    """Fraction of frames whose voiced/unvoiced decisions agree.

    Uses :func:`f0_contour`'s voiced flags, contours trimmed to the shorter.
    Unlike the other f0 metrics it is defined on silence: two silent (all
    unvoiced) clips agree everywhere and score 1.0.

    Args:
        reference, estimate: waveforms ``[samples]`` at ``sr``.
        sr: sample rate, Hz.
        fmin, fmax, frame_length, hop_length: as in :func:`f0_contour`.

    Returns:
        float in ``[0, 1]``.

    Example:
    >>> t = np.arange(16000) / 16000
    >>> tone = np.sin(2 * np.pi * 220 * t)
    >>> voicing_agreement(tone, np.concatenate([tone[:8000], np.zeros(8000)]), sr=16000) < 0.8
    True
    """
    kw = dict(fmin=fmin, fmax=fmax, frame_length=frame_length, hop_length=hop_length)
    _, v_r, _, v_e = _contours(reference, estimate, sr, kw, need_voiced=False)
    return float(np.mean(v_r == v_e))


def f0_metrics(reference, estimate, sr, fmin=50.0, fmax=1000.0, frame_length=2048,
               hop_length=512):
    """:func:`f0_error_cents`, :func:`f0_correlation` and :func:`voicing_agreement`
    from one pyin pass per signal (pyin dominates their cost).

    Args:
        reference, estimate: waveforms ``[samples]`` at ``sr``.
        sr: sample rate, Hz.
        fmin, fmax, frame_length, hop_length: as in :func:`f0_contour`.

    Returns:
        ``(values, reasons)``: ``values`` maps ``"f0_error_cents"``,
        ``"f0_correlation"`` and ``"voicing_agreement"`` to the float each of
        those functions returns, or to ``None`` where it would raise
        ``ValueError`` (a silent or unvoiced signal, no frame voiced in both,
        a constant contour); ``reasons`` maps each ``None`` metric to that
        error's message. ``voicing_agreement`` is always defined.

    Example:
    >>> t = np.arange(16000) / 16000
    >>> values, reasons = f0_metrics(np.sin(2 * np.pi * 220 * t), np.zeros(16000), sr=16000)
    >>> values["f0_error_cents"], reasons["f0_error_cents"]
    (None, 'estimate is silent or unvoiced: no f0 to compare.')
    """
    kw = dict(fmin=fmin, fmax=fmax, frame_length=frame_length, hop_length=hop_length)
    contours = _contours(reference, estimate, sr, kw, need_voiced=False)
    f_r, v_r, f_e, v_e = contours
    values = {"f0_error_cents": None, "f0_correlation": None,
              "voicing_agreement": float(np.mean(v_r == v_e))}
    reasons = {}
    try:
        for name, voiced in (("reference", v_r), ("estimate", v_e)):
            if not voiced.any():
                raise ValueError(f"{name} is silent or unvoiced: no f0 to compare.")
        both = _voiced_in_both(*contours)
    except ValueError as err:
        reasons = {"f0_error_cents": str(err), "f0_correlation": str(err)}
        return values, reasons
    values["f0_error_cents"] = _cents(*both)
    try:
        values["f0_correlation"] = _correlation(*both)
    except ValueError as err:
        reasons["f0_correlation"] = str(err)
    return values, reasons


# ---------------------------------------------------------------------- formants
def relative_formant_error(estimated, target):
    """Relative formant error in percent: ``100 |f_hat - f_target| / f_target``.

    Elementwise (broadcasting), e.g. per formant ``delta F_i``; average the
    result for one number.

    Args:
        estimated: estimated formant frequencies, Hz.
        target: target formant frequencies, Hz (all > 0).

    Returns:
        float64 array of the broadcast shape (a float for scalars), percent.

    Raises:
        ValueError: a target is not positive, or a value is NaN/inf.

    Example:
    >>> relative_formant_error([550.0, 1350.0], [500.0, 1500.0])
    array([10., 10.])
    """
    est = np.asarray(estimated, dtype=np.float64)
    tgt = np.asarray(target, dtype=np.float64)
    if not (np.all(np.isfinite(est)) and np.all(np.isfinite(tgt))):
        raise ValueError("formant frequencies must be finite (a NaN marks a formant not found).")
    if np.any(tgt <= 0):
        raise ValueError("target formant frequencies must be positive.")
    err = 100.0 * np.abs(est - tgt) / tgt
    return float(err) if err.ndim == 0 else err


# ---------------------------------------------------------------- embeddings
def _gaussian_moments(e, name):
    e = np.asarray(e, dtype=np.float64)
    if e.ndim == 1:
        e = e[:, None]
    if e.ndim != 2:
        raise ValueError(f"{name} must be embeddings [items, dims]; got shape {np.shape(e)}.")
    if e.shape[0] < 2:
        raise ValueError(f"{name} has {e.shape[0]} item(s): a covariance needs at least 2.")
    if not np.all(np.isfinite(e)):
        raise ValueError(f"{name} contains NaN or inf.")
    return e.mean(axis=0), np.atleast_2d(np.cov(e, rowvar=False))


def frechet_distance_gaussians(mu1, sigma1, mu2, sigma2):
    """Frechet (2-Wasserstein) distance between two Gaussians, squared (FID's value).

    ``|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))``. The trace of the
    matrix square root is computed as ``sum sqrt(eig(S1^(1/2) S2 S1^(1/2)))``
    (the same eigenvalues as ``S1 S2``) with symmetric eigendecompositions, so
    singular covariances (fewer items than dimensions) need no ``eps`` and give
    no complex parts; rounding below 0 is clipped to 0.

    Args:
        mu1, mu2: means ``[dims]``.
        sigma1, sigma2: covariances ``[dims, dims]`` (symmetric positive
            semi-definite; symmetrised before use).

    Returns:
        float (>= 0; 0 for identical Gaussians).

    Example:
    >>> frechet_distance_gaussians([0.0], [[1.0]], [1.0], [[4.0]])  # (0-1)^2 + (1-2)^2
    2.0
    """
    mu1, mu2 = (np.atleast_1d(np.asarray(m, np.float64)) for m in (mu1, mu2))
    s1, s2 = (np.atleast_2d(np.asarray(s, np.float64)) for s in (sigma1, sigma2))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"shapes do not match: means {mu1.shape}, {mu2.shape}; covariances "
                         f"{s1.shape}, {s2.shape}.")
    if not all(np.all(np.isfinite(a)) for a in (mu1, mu2, s1, s2)):
        raise ValueError("means and covariances must be finite.")
    s1, s2 = 0.5 * (s1 + s1.T), 0.5 * (s2 + s2.T)
    w, v = np.linalg.eigh(s1)
    root1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    m = root1 @ s2 @ root1
    tr_sqrt = float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(0.5 * (m + m.T)), 0.0, None))))
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_sqrt)
    return max(value, 0.0)


def frechet_distance(x, y):
    """Frechet distance between Gaussians fitted to two sets of embeddings.

    Each set's mean and (unbiased, ``ddof=1``) covariance, then
    :func:`frechet_distance_gaussians`: FID's formula on any embedding, e.g.
    :meth:`zoo.eval.classifier.DomainClassifier.embed` of converted clips vs
    real target-domain clips. Small sets give a biased (too large) estimate;
    compare figures computed on sets of the same sizes.

    Args:
        x, y: embeddings ``[items, dims]`` (``[items]`` for 1-D), at least two
            items each, the same ``dims``.

    Returns:
        float (>= 0; 0 for a set against itself).

    Raises:
        ValueError: fewer than 2 items, non-finite values, different ``dims``.

    Example:
    >>> e = np.random.default_rng(0).standard_normal((100, 3))
    >>> frechet_distance(e, e)
    0.0
    """
    mu1, s1 = _gaussian_moments(x, "x")
    mu2, s2 = _gaussian_moments(y, "y")
    if mu1.shape != mu2.shape:
        raise ValueError(f"x has {mu1.shape[0]} dims and y {mu2.shape[0]}.")
    return frechet_distance_gaussians(mu1, s1, mu2, s2)


# ------------------------------------------------------------------------- speed
def real_time_factor(seconds_of_audio, seconds_of_compute):
    """Speed as seconds of audio produced per second of compute.

    ``seconds_of_audio / seconds_of_compute``: above 1 is faster than real
    time (e.g. 50.0 means "50x real time"). Note that speech-recognition
    papers often call the *inverse* (compute per audio second, lower is
    better) the RTF; this function uses the "x real time" convention.

    Args:
        seconds_of_audio: duration of the audio processed or generated, s.
        seconds_of_compute: wall-clock time it took, s (> 0).

    Returns:
        float.

    Example:
    >>> real_time_factor(10.0, 0.5)
    20.0
    """
    audio, compute = float(seconds_of_audio), float(seconds_of_compute)
    if not (np.isfinite(audio) and audio >= 0):
        raise ValueError(f"seconds_of_audio must be a finite non-negative number; got {audio}.")
    if not (np.isfinite(compute) and compute > 0):
        raise ValueError(f"seconds_of_compute must be a positive number; got {compute}.")
    return audio / compute
