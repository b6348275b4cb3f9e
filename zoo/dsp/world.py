"""WORLD analysis / synthesis (pyworld) and SPTK-style mel-cepstra of its envelopes.

:func:`sp2mc` / :func:`mc2sp` follow SPTK's definitions as pysptk implements them
(``pysptk.sp2mc`` / ``pysptk.mc2sp``): the mel-cepstrum of a power spectrum is the
real cepstrum of its log, frequency-warped by an all-pass of constant ``alpha``
(:func:`freqt`, SPTK's recursion). They are written here in numpy, vectorised over
frames.
"""
import functools
import importlib.metadata
import sys
import threading
import types

import numpy as np


_IMPORT_LOCK = threading.Lock()


@functools.cache
def _pyworld():
    """``import pyworld``, once; pyworld 0.3.x reads its version through ``pkg_resources``,
    which setuptools >= 81 no longer ships: a two-line stand-in serves it then.

    The lock matters: analysis runs in threads, and a second thread importing while
    the first retries with the stand-in would see a half-initialised module."""
    with _IMPORT_LOCK:
        return _import_pyworld()


def _import_pyworld():
    try:
        import pyworld
    except ModuleNotFoundError as err:
        if err.name != "pkg_resources":
            raise
        stub = types.ModuleType("pkg_resources")
        stub.get_distribution = lambda name: types.SimpleNamespace(
            version=importlib.metadata.version(name))
        sys.modules.setdefault("pkg_resources", stub)
        sys.modules.pop("pyworld", None)
        import pyworld
    return pyworld


F0_METHODS = ("harvest", "dio")


def world_f0(x, sr, frame_period=5.0, f0_floor=60.0, f0_ceil=600.0, method="harvest"):
    """WORLD f0 contour and frame times: Harvest (robust; about 0.4 s per second of
    audio here), or DIO + StoneMask (fast; octave errors on low, breathy voices)."""
    pw = _pyworld()
    x = np.ascontiguousarray(x, dtype=np.float64)
    if method == "harvest":
        return pw.harvest(x, sr, f0_floor=f0_floor, f0_ceil=f0_ceil, frame_period=frame_period)
    if method != "dio":
        raise ValueError(f"f0 method must be one of {F0_METHODS}, got {method!r}")
    f0, t = pw.dio(x, sr, f0_floor=f0_floor, f0_ceil=f0_ceil, frame_period=frame_period)
    return pw.stonemask(x, f0, t, sr), t


def world_analysis(x, sr, frame_period=5.0, f0_floor=60.0, f0_ceil=600.0, fft_size=None,
                   f0_method="harvest"):
    """WORLD parameters of a waveform: ``(f0 [frames], power envelope [frames, bins],
    aperiodicity [frames, bins])`` (:func:`world_f0`, CheapTrick, D4C)."""
    pw = _pyworld()
    x = np.ascontiguousarray(x, dtype=np.float64)
    f0, t = world_f0(x, sr, frame_period, f0_floor, f0_ceil, f0_method)
    # one FFT size for both (CheapTrick's default follows f0_floor, D4C's does not)
    fft_size = int(fft_size or pw.get_cheaptrick_fft_size(sr, f0_floor))
    sp = pw.cheaptrick(x, f0, t, sr, f0_floor=f0_floor, fft_size=fft_size)
    ap = pw.d4c(x, f0, t, sr, fft_size=fft_size)
    return f0, sp, ap


def world_synthesis(f0, sp, ap, sr, frame_period=5.0):
    """Waveform (float64) from WORLD parameters."""
    pw = _pyworld()
    c = np.ascontiguousarray
    return pw.synthesize(c(f0, dtype=np.float64), c(sp, dtype=np.float64),
                         c(ap, dtype=np.float64), sr, frame_period)


def freqt(c, order, alpha):
    """Frequency warping of cepstra (SPTK ``freqt``): ``c [..., m1 + 1]`` ->
    ``[..., order + 1]`` through the all-pass ``(z^-1 - alpha) / (1 - alpha z^-1)``."""
    c = np.asarray(c, np.float64)
    lead = c.shape[:-1]
    c = c.reshape(-1, c.shape[-1])
    b = 1.0 - alpha * alpha
    g = np.zeros((c.shape[0], order + 1))
    for i in range(c.shape[1] - 1, -1, -1):
        d = g.copy()
        g[:, 0] = c[:, i] + alpha * d[:, 0]
        if order >= 1:
            g[:, 1] = b * d[:, 0] + alpha * d[:, 1]
        for j in range(2, order + 1):
            g[:, j] = d[:, j - 1] + alpha * (d[:, j] - g[:, j - 1])
    return g.reshape(*lead, order + 1)


def sp2mc(power, order, alpha):
    """Mel-cepstrum ``[frames, order + 1]`` (c0 first) of power spectra ``[frames, bins]``
    (``pysptk.sp2mc``)."""
    log = np.log(np.maximum(np.asarray(power, np.float64), 1e-300))
    c = np.fft.irfft(log, axis=-1)
    bins = log.shape[-1]
    c = c[..., :bins].copy()
    c[..., 0] /= 2.0
    c[..., bins - 1] /= 2.0
    return freqt(c, order, alpha)


def mc2sp(mc, alpha, fft_size):
    """Power spectra ``[frames, fft_size // 2 + 1]`` of mel-cepstra (``pysptk.mc2sp``)."""
    c = freqt(mc, fft_size // 2, -alpha)
    c[..., 0] *= 2.0
    sym = np.concatenate([c, c[..., -2:0:-1]], axis=-1)
    return np.exp(np.fft.rfft(sym, axis=-1).real)
