"""Spectral front-end as Keras layers: STFT magnitude/power, mel, dB, normalisation.

The front-end runs *inside* models, so it runs on the accelerator, gradients flow
through it, and an exported model takes raw waveforms ``[batch, samples]``.

Conventions (tested against librosa in ``tests/layers/test_spectral.py``):

* ``stft_magnitude`` equals ``abs(librosa.stft(x, n_fft, hop_length, win_length,
  window="hann", center=True, pad_mode="reflect")) ** power`` transposed to
  ``[..., frames, bins]`` (periodic Hann window, as librosa).
* ``MelScale`` uses ``librosa.filters.mel`` weights; the default here is the HTK
  scale with no area normalisation (MelGAN-VC's setting). librosa's own default is
  Slaney scale with Slaney norm: pass ``htk=False, norm="slaney"`` to match it.
* ``AmplitudeToDB`` equals ``librosa.power_to_db(S, ref=ref, amin=amin,
  top_db=None)`` (for ``multiplier=10``).
"""
import keras
import numpy as np
from keras import ops

__all__ = [
    "stft_magnitude",
    "STFTMagnitude",
    "MelScale",
    "AmplitudeToDB",
    "DBNormalization",
    "mel_filterbank",
]

_register = keras.saving.register_keras_serializable(package="layers")


def stft_magnitude(x, n_fft, hop_length, win_length=None, center=True, power=1.0):
    """Magnitude (``power=1``) or power (``power=2``) STFT of the last axis.

    Args:
        x: waveforms ``[..., samples]``.
        n_fft: FFT size.
        hop_length: hop between frames in samples.
        win_length: Hann window length (defaults to ``n_fft``).
        center: reflect-pad by ``n_fft // 2`` so frame t is centred at t * hop.
        power: exponent applied to the magnitude.

    Returns:
        ``[..., frames, n_fft // 2 + 1]`` with ``frames = 1 + samples // hop``
        when ``center`` is true.

    Example:
    >>> stft_magnitude(ops.zeros((2, 1024)), 256, 64).shape
    (2, 17, 129)
    """
    win_length = win_length or n_fft
    real, imag = ops.stft(
        x, sequence_length=win_length, sequence_stride=hop_length, fft_length=n_fft,
        window="hann", center=center,
    )
    power_spec = ops.square(real) + ops.square(imag)
    if power == 2.0:
        return power_spec
    # sqrt has an infinite gradient at 0: floor the power before the root.
    return ops.power(ops.maximum(power_spec, 1e-20), power / 2.0)


def mel_filterbank(sample_rate, n_fft, n_mels, fmin=0.0, fmax=None, htk=True, norm=None):
    """Mel filterbank ``[n_fft // 2 + 1, n_mels]`` (float32), via ``librosa.filters.mel``."""
    import librosa

    weights = librosa.filters.mel(
        sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm
    )
    return np.ascontiguousarray(weights.T.astype("float32"))


@_register
class STFTMagnitude(keras.layers.Layer):
    """STFT magnitude or power spectrogram of waveforms.

    Args:
        n_fft: FFT size.
        hop_length: hop in samples.
        win_length: Hann window length (defaults to ``n_fft``).
        power: 1 for magnitude, 2 for power.
        center: centre frames by reflect padding (librosa's default).

    Returns:
        ``[batch, frames, n_fft // 2 + 1]`` from ``[batch, samples]``.

    Example:
    >>> STFTMagnitude(512, 128, power=2.0)(ops.zeros((1, 16000))).shape
    (1, 126, 257)
    """

    def __init__(self, n_fft=1024, hop_length=256, win_length=None, power=1.0, center=True,
                 **kwargs):
        super().__init__(**kwargs)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.win_length = int(win_length) if win_length else None
        self.power = float(power)
        self.center = bool(center)

    def call(self, waveform):
        return stft_magnitude(
            ops.cast(waveform, "float32"), self.n_fft, self.hop_length, self.win_length,
            self.center, self.power,
        )

    def num_frames(self, num_samples):
        """Frames produced for ``num_samples`` input samples."""
        if self.center:
            return 1 + num_samples // self.hop_length
        return 1 + (num_samples - self.n_fft) // self.hop_length

    def compute_output_shape(self, input_shape):
        n = input_shape[-1]
        frames = None if n is None else self.num_frames(n)
        return tuple(input_shape[:-1]) + (frames, self.n_fft // 2 + 1)

    def get_config(self):
        return {**super().get_config(), "n_fft": self.n_fft, "hop_length": self.hop_length,
                "win_length": self.win_length, "power": self.power, "center": self.center}


@_register
class MelScale(keras.layers.Layer):
    """Linear-frequency spectrogram ``[..., bins]`` -> mel spectrogram ``[..., n_mels]``.

    ``inverse`` maps back with the clipped pseudo-inverse of the filterbank, refined by
    ``iterations`` multiplicative non-negative least-squares updates (Lee & Seung 2001:
    ``x <- x * (y F^T) / (x F F^T)``, which keep ``x >= 0`` and do not increase
    ``||x F - y||``): the in-graph counterpart of
    ``librosa.feature.inverse.mel_to_stft``'s NNLS (``layers.griffinlim.mel_to_linear``
    calls librosa's own).

    Args:
        sample_rate: sampling rate in Hz.
        n_fft: FFT size of the input spectrogram.
        n_mels: number of mel bands.
        fmin, fmax: frequency range (``fmax`` defaults to Nyquist).
        htk: HTK mel scale (True) or Slaney (False).
        norm: ``None`` or ``"slaney"`` (area normalisation), as librosa.

    Example:
    >>> MelScale(16000, 512, 64)(ops.ones((1, 10, 257))).shape
    (1, 10, 64)
    """

    def __init__(self, sample_rate=16000, n_fft=1024, n_mels=80, fmin=0.0, fmax=None,
                 htk=True, norm=None, **kwargs):
        super().__init__(**kwargs)
        self.sample_rate = int(sample_rate)
        self.n_fft = int(n_fft)
        self.n_mels = int(n_mels)
        self.fmin = float(fmin)
        self.fmax = None if fmax is None else float(fmax)
        self.htk = bool(htk)
        self.norm = norm
        self.filterbank = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax, htk, norm)
        self.pseudo_inverse = np.linalg.pinv(self.filterbank).astype("float32")

    def call(self, spectrogram):
        return ops.matmul(spectrogram, ops.convert_to_tensor(self.filterbank))

    def inverse(self, mel, iterations=0):
        """Mel -> linear spectrogram: the clipped pseudo-inverse, then ``iterations``
        multiplicative NNLS updates (0: the pseudo-inverse alone)."""
        linear = ops.relu(ops.matmul(mel, ops.convert_to_tensor(self.pseudo_inverse)))
        if iterations <= 0:
            return linear
        fb = ops.convert_to_tensor(self.filterbank)
        target = ops.matmul(ops.relu(mel), ops.transpose(fb))  # y F^T, [..., bins]
        # bins with next to no energy in their frame barely move (a ratio of two
        # near-zeros would amplify float rounding); a zero never moves at all
        eps = 1e-6 * ops.max(target, axis=-1, keepdims=True) + 1e-30
        linear = linear + eps
        for _ in range(int(iterations)):
            linear = linear * (target + eps) / (
                ops.matmul(ops.matmul(linear, fb), ops.transpose(fb)) + eps)
        return linear

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.n_mels,)

    def get_config(self):
        return {**super().get_config(), "sample_rate": self.sample_rate, "n_fft": self.n_fft,
                "n_mels": self.n_mels, "fmin": self.fmin, "fmax": self.fmax, "htk": self.htk,
                "norm": self.norm}


@_register
class AmplitudeToDB(keras.layers.Layer):
    """Power (``multiplier=10``) or amplitude (``multiplier=20``) to decibels.

    ``multiplier * log10(max(S, amin)) - multiplier * log10(ref)``; ``top_db``
    (optional) floors the output at ``max - top_db`` per example, as librosa.

    Example:
    >>> float(AmplitudeToDB()(ops.ones((1, 1)) * 100.0)[0, 0])
    20.0
    """

    def __init__(self, multiplier=10.0, ref=1.0, amin=1e-10, top_db=None, **kwargs):
        super().__init__(**kwargs)
        self.multiplier = float(multiplier)
        self.ref = float(ref)
        self.amin = float(amin)
        self.top_db = None if top_db is None else float(top_db)

    def call(self, s):
        scale = self.multiplier / np.log(10.0)
        db = scale * ops.log(ops.maximum(s, self.amin)) - self.multiplier * np.log10(
            max(self.ref, self.amin))
        if self.top_db is not None:
            axes = tuple(range(1, len(db.shape)))
            peak = ops.max(db, axis=axes, keepdims=True)
            db = ops.maximum(db, peak - self.top_db)
        return db

    def inverse(self, db):
        """Decibels back to power/amplitude (``librosa.db_to_power`` for multiplier 10)."""
        return self.ref * ops.power(10.0, db / self.multiplier)

    def get_config(self):
        return {**super().get_config(), "multiplier": self.multiplier, "ref": self.ref,
                "amin": self.amin, "top_db": self.top_db}


@_register
class DBNormalization(keras.layers.Layer):
    """Map decibels to [-1, 1] as MelGAN-VC: subtract ``ref_db``, map [min_db, 0] to [-1, 1].

    ``y = clip((db - ref_db - min_db) / -min_db, 0, 1) * 2 - 1``; ``inverse`` undoes
    it (values below ``min_db`` come back as ``min_db``).

    Example:
    >>> float(DBNormalization(min_db=-100.0, ref_db=20.0)(ops.ones((1,)) * 20.0)[0])
    1.0
    """

    def __init__(self, min_db=-100.0, ref_db=20.0, clip=True, **kwargs):
        super().__init__(**kwargs)
        self.min_db = float(min_db)
        self.ref_db = float(ref_db)
        self.clip = bool(clip)

    def call(self, db):
        y = (db - self.ref_db - self.min_db) / -self.min_db
        if self.clip:
            y = ops.clip(y, 0.0, 1.0)
        return y * 2.0 - 1.0

    def inverse(self, y):
        return (y + 1.0) / 2.0 * -self.min_db + self.min_db + self.ref_db

    def get_config(self):
        return {**super().get_config(), "min_db": self.min_db, "ref_db": self.ref_db,
                "clip": self.clip}
