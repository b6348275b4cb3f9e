"""Harmonic-plus-noise pieces: pitch estimation (YIN) and a harmonic oscillator bank.

A decoder that predicts one STFT frame per step (``layers.ISTFTHead``) has to invent
each frame's phases, and a tone whose phases do not advance coherently from frame to
frame comes out smeared. An oscillator bank (DDSP, Engel et al. 2020, "DDSP:
Differentiable Digital Signal Processing") integrates the fundamental frequency
sample by sample instead, so every harmonic's phase is continuous by construction and
a decoder only predicts ``f0`` and the harmonics' amplitudes at its frame rate.

* :func:`yin` estimates ``f0`` with YIN (de Cheveigne & Kawahara 2002) inside a graph
  (the same difference function, cumulative-mean normalisation, first trough under
  the threshold and parabolic refinement as ``librosa.yin``, checked against it in
  ``tests/layers/test_harmonic.py``); a model can use it as a training target.
* :func:`upsample_frames` interpolates frame-rate controls linearly to the sample rate.
* :class:`HarmonicSynth`: ``f0 [B, T]`` and amplitudes ``[B, T, K]`` -> waveform
  ``[B, T * hop]``, ``sum_k a_k(n) sin(2 pi k phi(n))`` with ``phi`` the running sum of
  ``f0 / sample_rate``; harmonics at or above Nyquist are silenced.

Everything is ``keras.ops``: it runs and differentiates on TensorFlow, JAX and PyTorch.
"""
import math

import keras
import numpy as np
from keras import ops

__all__ = ["yin", "upsample_frames", "HarmonicSynth", "exp_sigmoid"]

_register = keras.saving.register_keras_serializable(package="layers")


def _steps(x):
    """Length of axis 1: static when known (traced loops keep their shapes), else dynamic."""
    return x.shape[1] if x.shape[1] is not None else ops.shape(x)[1]


def _frames(x, frame_length, hop_length):
    """``[B, samples]`` -> ``[B, 1 + (samples - frame_length) // hop, frame_length]``
    (``frame_length`` a multiple of ``hop_length``; no copy per frame in the graph)."""
    ratio = frame_length // hop_length
    chunks = _steps(x) // hop_length
    x = ops.reshape(x[:, : chunks * hop_length], (-1, chunks, hop_length))
    count = chunks - ratio + 1
    return ops.concatenate([x[:, j: j + count] for j in range(ratio)], axis=-1)


def yin(waveform, sample_rate, fmin=50.0, fmax=1000.0, frame_length=1024, hop_length=64,
        threshold=0.1, center=True):
    """YIN fundamental frequency of each frame, and how aperiodic the frame is.

    As ``librosa.yin`` (0.11): frame ``t`` (zero-padded by ``frame_length // 2`` when
    ``center``, so centred at ``t * hop_length``) gives the difference function
    ``d(tau) = 2 (r(0) - r(tau)) - sum_{m < tau} x_m^2`` from its autocorrelation ``r``
    (through an FFT), normalised by its cumulative mean; the period is the first local
    minimum below ``threshold`` in ``[sample_rate / fmax, sample_rate / fmin]`` (else
    the global minimum), refined by parabolic interpolation.

    Args:
        waveform: ``[batch, samples]``.
        sample_rate: Hz.
        fmin, fmax: the pitch range in Hz.
        frame_length: analysis frame (a multiple of ``hop_length``, longer than
            ``sample_rate / fmin``).
        hop_length: samples between frames.
        threshold: trough threshold of the normalised difference.
        center: zero-pad so frame ``t`` is centred at ``t * hop_length``.

    Returns:
        ``(f0, aperiodicity)``, each ``[batch, frames]``: Hz, and the normalised
        difference at the chosen period (near 0 for a periodic frame, about 1 for
        noise; silent frames give 0 too, so gate by energy where that matters).

    Example:
    >>> t = np.arange(16000) / 16000
    >>> f0, ap = yin(np.sin(2 * np.pi * 220 * t)[None].astype("float32"), 16000)
    """
    frame_length, hop_length = int(frame_length), int(hop_length)
    min_period = int(math.floor(sample_rate / fmax))
    max_period = min(int(math.ceil(sample_rate / fmin)), frame_length - 1)
    if frame_length % hop_length or min_period < 1 or max_period <= min_period + 1:
        raise ValueError(f"yin needs frame_length ({frame_length}) a multiple of hop_length "
                         f"({hop_length}) and a period range sample_rate / fmax .. "
                         f"sample_rate / fmin ({sample_rate / fmax:.1f} .. "
                         f"{sample_rate / fmin:.1f}) within the frame")
    x = ops.convert_to_tensor(waveform, "float32")
    if center:
        x = ops.pad(x, ((0, 0), (frame_length // 2, frame_length // 2)))
    frames = _frames(x, frame_length, hop_length)                       # [B, T, L]
    n_fft = 1 << (2 * frame_length - 1).bit_length()
    re, im = ops.rfft(ops.pad(frames, ((0, 0), (0, 0), (0, n_fft - frame_length))))
    acf = ops.irfft((re * re + im * im, ops.zeros_like(re)), n_fft)[..., : max_period + 1]
    energy = ops.cumsum(ops.square(frames[..., :max_period]), axis=-1)  # sum_{m <= k}
    diff = 2.0 * (acf[..., :1] - acf[..., 1:]) - energy                  # d(1..max_period)
    taus = ops.arange(1, max_period + 1, dtype="float32")
    cumulative_mean = ops.cumsum(diff, axis=-1) / taus
    tiny = float(np.finfo(np.float32).tiny)
    cmnd = diff[..., min_period - 1:] / (cumulative_mean[..., min_period - 1:] + tiny)
    # troughs: lower than the left neighbour, not higher than the right one
    left = ops.concatenate([cmnd[..., :1], cmnd[..., :-1]], axis=-1)
    right = ops.concatenate([cmnd[..., 1:], cmnd[..., -1:]], axis=-1)
    is_trough = ops.logical_and(cmnd < left, cmnd <= right)
    first_left = cmnd[..., 0] < cmnd[..., 1]
    is_trough = ops.concatenate([first_left[..., None], is_trough[..., 1:]], axis=-1)
    below = ops.logical_and(is_trough, cmnd < threshold)
    any_below = ops.any(below, axis=-1)
    index = ops.where(any_below, ops.argmax(ops.cast(below, "int32"), axis=-1),
                      ops.argmin(cmnd, axis=-1))
    index = ops.cast(index, "int32")
    # parabolic refinement from the neighbours (none at the range's ends)
    last = cmnd.shape[-1] - 1
    at = ops.take_along_axis(cmnd, index[..., None], axis=-1)[..., 0]
    lo = ops.take_along_axis(cmnd, ops.maximum(index - 1, 0)[..., None], axis=-1)[..., 0]
    hi = ops.take_along_axis(cmnd, ops.minimum(index + 1, last)[..., None], axis=-1)[..., 0]
    curvature, slope = hi + lo - 2.0 * at, 0.5 * (hi - lo)
    interior = ops.logical_and(index > 0, index < last)
    usable = ops.logical_and(interior, ops.abs(slope) < ops.abs(curvature))
    shift = ops.where(usable, -slope / ops.where(usable, curvature, 1.0), 0.0)
    period = ops.cast(index + min_period, "float32") + shift
    return float(sample_rate) / period, at


def upsample_frames(controls, hop_length):
    """Frame-rate controls ``[B, T]`` or ``[B, T, C]`` -> ``[B, T * hop, ...]``, linearly
    interpolated between frame centres (frame ``t``'s value sits at sample
    ``t * hop + (hop - 1) / 2``; held flat beyond the first and last centre)."""
    hop = int(hop_length)
    x = ops.convert_to_tensor(controls)
    squeeze = len(x.shape) == 2
    if squeeze:
        x = x[..., None]
    prev = ops.concatenate([x[:, :1], x[:, :-1]], axis=1)
    nxt = ops.concatenate([x[:, 1:], x[:, -1:]], axis=1)
    offset = (np.arange(hop, dtype="float32") + 0.5) / hop - 0.5           # [-0.5, 0.5)
    back = ops.convert_to_tensor(np.minimum(offset, 0.0)[None, None, :, None])
    ahead = ops.convert_to_tensor(np.maximum(offset, 0.0)[None, None, :, None])
    x4, prev4, nxt4 = x[:, :, None], prev[:, :, None], nxt[:, :, None]
    out = x4 + back * (x4 - prev4) + ahead * (nxt4 - x4)                  # [B, T, hop, C]
    out = ops.reshape(out, (-1, _steps(x) * hop, x.shape[-1]))
    return out[..., 0] if squeeze else out


def exp_sigmoid(x, exponent=10.0, max_value=2.0, threshold=1e-7):
    """DDSP's amplitude nonlinearity ``max_value * sigmoid(x) ** log(exponent) +
    threshold``: positive, bounded, with a gradient over decades of level."""
    return max_value * ops.power(ops.sigmoid(x), float(np.log(exponent))) + threshold


@_register
class HarmonicSynth(keras.layers.Layer):
    """Additive synthesiser: ``K`` harmonics of a time-varying fundamental.

    ``f0`` and the amplitudes are interpolated linearly from the frame rate to the
    sample rate (:func:`upsample_frames`); the phase ``phi(n)`` (in cycles) is the
    running sum of ``f0 / sample_rate``, accumulated per frame and wrapped so it keeps
    its precision over long signals; the output is ``sum_k a_k(n) sin(2 pi k phi(n))``
    with every harmonic at or above ``sample_rate / 2`` silenced.

    Args:
        sample_rate: Hz.
        hop_length: samples per frame of the controls.
        **kwargs: base ``Layer`` arguments.

    Call arguments:
        f0: ``[batch, frames]`` fundamental in Hz.
        amplitudes: ``[batch, frames, K]`` linear amplitude of harmonics ``1..K``.

    Returns:
        ``[batch, frames * hop_length]``.

    Example:
    >>> synth = HarmonicSynth(16000, 64)
    >>> synth(ops.full((1, 10), 220.0), ops.ones((1, 10, 8))).shape
    (1, 640)
    """

    def __init__(self, sample_rate=16000, hop_length=64, **kwargs):
        super().__init__(**kwargs)
        self.sample_rate, self.hop_length = int(sample_rate), int(hop_length)
        if self.sample_rate < 1 or self.hop_length < 1:
            raise ValueError(f"HarmonicSynth needs a positive sample_rate and hop_length, got "
                             f"{sample_rate}, {hop_length}")

    def phase(self, f0):
        """Cycles ``[batch, frames, hop]`` of the fundamental (starting at 0)."""
        hop = self.hop_length
        f0_up = upsample_frames(ops.convert_to_tensor(f0, "float32"), hop)
        step = ops.reshape(f0_up / float(self.sample_rate), (-1, _steps(f0), hop))
        within = ops.cumsum(step, axis=-1) - step                        # exclusive
        totals = within[..., -1] + step[..., -1]
        starts = ops.cumsum(totals, axis=1) - totals
        return ops.mod(starts, 1.0)[..., None] + within

    def call(self, f0, amplitudes):
        f0 = ops.convert_to_tensor(f0, "float32")
        amplitudes = ops.convert_to_tensor(amplitudes, "float32")
        count = amplitudes.shape[-1]
        harmonics = ops.arange(1, count + 1, dtype="float32")
        audible = ops.cast(f0[..., None] * harmonics < 0.5 * self.sample_rate, "float32")
        amps = upsample_frames(amplitudes * audible, self.hop_length)    # [B, N, K]
        cycles = ops.reshape(self.phase(f0), (-1, _steps(f0) * self.hop_length, 1))
        waves = ops.sin((2.0 * np.pi) * cycles * harmonics)
        return ops.sum(amps * waves, axis=-1)

    def compute_output_shape(self, f0_shape, amplitudes_shape=None):
        frames = f0_shape[1]
        return (f0_shape[0], None if frames is None else frames * self.hop_length)

    def get_config(self):
        return {**super().get_config(), "sample_rate": self.sample_rate,
                "hop_length": self.hop_length}
