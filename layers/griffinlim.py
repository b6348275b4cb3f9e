"""Back to audio: exact inverse STFT, fast Griffin-Lim, mel -> linear.

Everything here is ``keras.ops``, batched, and runs inside an exported graph.
``keras.ops.istft`` is off by up to ~0.3 at the signal edges on TensorFlow, so
:func:`istft` is our own overlap-add (exact on all three backends, the
counterpart of ``layers.spectral.stft_magnitude`` / ``keras.ops.stft`` with a
periodic Hann window and ``center=True``; it requires ``n_fft % hop_length == 0``).
"""
import keras
import numpy as np
from keras import ops

__all__ = ["istft", "griffin_lim", "GriffinLim", "ISTFTHead", "mel_to_linear", "hann_window",
           "invert_mel_by_gradient"]


def hann_window(n):
    """Periodic Hann window of length ``n`` (librosa's / scipy's ``get_window('hann')``)."""
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype("float32")


def _overlap_add(frames, hop_length):
    """Overlap-add ``[batch, frames, n_fft]`` at ``hop_length`` -> ``[batch, samples]``."""
    n_fft = frames.shape[-1]
    ratio = n_fft // hop_length
    num_frames = frames.shape[1]  # static when known, so traced loops keep their shapes
    if num_frames is None:
        num_frames = ops.shape(frames)[1]
    chunks = ops.reshape(frames, (-1, num_frames, ratio, hop_length))
    out = 0.0
    for j in range(ratio):  # chunk j of frame t lands in output segment t + j
        out = out + ops.pad(chunks[:, :, j, :], ((0, 0), (j, ratio - 1 - j), (0, 0)))
    return ops.reshape(out, (-1, (num_frames + ratio - 1) * hop_length))


def _inverse_envelope(frames, n_fft, hop_length):
    """``1 / max(envelope, 1e-8)``, the envelope being the overlap-added squared window
    over ``frames``' frame count (``[batch, frames, ...]``); shared by every istft of a
    Griffin-Lim loop."""
    window_sq = ops.convert_to_tensor(np.square(hann_window(n_fft)))
    return 1.0 / ops.maximum(
        _overlap_add(ops.zeros_like(frames[:1, :, :1]) + window_sq, hop_length), 1e-8)


def istft(real, imag, n_fft, hop_length, length=None, center=True, inverse_envelope=None):
    """Inverse STFT by windowed overlap-add with window-envelope normalisation.

    Args:
        real, imag: ``[batch, frames, n_fft // 2 + 1]`` (as ``keras.ops.stft`` returns).
        n_fft: FFT size (= window length, periodic Hann).
        hop_length: hop; must divide ``n_fft``.
        length: trim or zero-pad the output to this many samples.
        center: the STFT was centred (``n_fft // 2`` samples padded on each side).
        inverse_envelope: the window normalisation for this frame count, when the caller
            keeps it across calls (:func:`griffin_lim`); computed here otherwise.

    Returns:
        Waveforms ``[batch, samples]``.

    Example:
    >>> r, i = ops.stft(ops.ones((1, 4096)), 512, 128, 512)
    >>> istft(r, i, 512, 128, length=4096).shape
    (1, 4096)
    """
    if n_fft % hop_length:
        raise ValueError(f"istft needs n_fft ({n_fft}) to be a multiple of hop_length ({hop_length})")
    window = ops.convert_to_tensor(hann_window(n_fft))
    frames = ops.irfft((real, imag), fft_length=n_fft) * window
    if inverse_envelope is None:
        inverse_envelope = _inverse_envelope(frames, n_fft, hop_length)
    signal = _overlap_add(frames, hop_length) * inverse_envelope
    if center:
        signal = signal[:, n_fft // 2:]
    if length is not None:
        have = signal.shape[1]
        if have is not None and isinstance(length, int):
            missing = max(length - have, 0)  # static shapes (JAX tracing, eager)
        else:
            missing = ops.maximum(length - ops.shape(signal)[1], 0)
        signal = ops.pad(signal, ((0, 0), (0, missing)))[:, :length]
    return signal


def griffin_lim(magnitude, n_fft, hop_length, n_iter=32, momentum=0.99, length=None,
                init="zeros", seed=None):
    """Fast Griffin-Lim (Perraudin et al. 2013): phase retrieval with momentum.

    The update is librosa's: ``angles = rebuilt - momentum / (1 + momentum) * previous``,
    normalised to unit modulus. ``momentum=0`` is the classic algorithm. The loop carries
    ``magnitude * angles`` (one scale per bin instead of a division by the modulus and
    a multiplication by the magnitude) and the window normalisation of the inverse
    STFT is computed once.

    Args:
        magnitude: ``[batch, frames, n_fft // 2 + 1]`` STFT magnitudes.
        n_fft, hop_length: STFT settings of ``magnitude`` (centred, periodic Hann).
        n_iter: iterations.
        momentum: fast Griffin-Lim momentum (0.99 as librosa).
        length: output samples (default ``(frames - 1) * hop_length``).
        init: ``"zeros"`` (zero phase, deterministic), ``"random"`` phase, or the
            initial phase itself in radians (a tensor shaped like ``magnitude``,
            e.g. another signal's STFT phase).
        seed: int or ``keras.random.SeedGenerator`` for ``init="random"``.

    Returns:
        Waveforms ``[batch, samples]``.
    """
    magnitude = ops.cast(magnitude, "float32")
    if length is None:
        frames = magnitude.shape[1]
        frames = ops.shape(magnitude)[1] if frames is None else frames
        length = (frames - 1) * hop_length
    if not isinstance(init, str):
        phase = ops.cast(init, "float32")
        angle_re, angle_im = ops.cos(phase), ops.sin(phase)
    elif init == "random":
        phase = keras.random.uniform(ops.shape(magnitude), 0.0, 2.0 * np.pi, seed=seed)
        angle_re, angle_im = ops.cos(phase), ops.sin(phase)
    elif init == "zeros":
        angle_re, angle_im = ops.ones_like(magnitude), ops.zeros_like(magnitude)
    else:
        raise ValueError(f"init must be 'zeros' or 'random', got {init!r}")
    blend = momentum / (1.0 + momentum)
    inverse_envelope = _inverse_envelope(magnitude, n_fft, hop_length)

    def step(_, state):
        spec_re, spec_im, prev_re, prev_im = state
        wave = istft(spec_re, spec_im, n_fft, hop_length, length,
                     inverse_envelope=inverse_envelope)
        re, im = ops.stft(wave, n_fft, hop_length, n_fft, center=True)
        new_re, new_im = re - blend * prev_re, im - blend * prev_im
        # magnitude * new / |new| (librosa's |new| + 1e-16: the same but at |new| ~ 1e-16)
        scale = magnitude * ops.rsqrt(ops.square(new_re) + ops.square(new_im) + 1e-32)
        return new_re * scale, new_im * scale, re, im

    zeros = ops.zeros_like(magnitude)
    spec_re, spec_im, _, _ = ops.fori_loop(
        0, n_iter, step, (magnitude * angle_re, magnitude * angle_im, zeros, zeros))
    return istft(spec_re, spec_im, n_fft, hop_length, length, inverse_envelope=inverse_envelope)


@keras.saving.register_keras_serializable(package="layers")
class GriffinLim(keras.layers.Layer):
    """Layer form of :func:`griffin_lim`: magnitudes ``[batch, frames, bins]`` -> waveforms.

    Args:
        n_fft, hop_length: STFT settings.
        n_iter: iterations (32 is a good speed/quality trade-off with momentum).
        momentum: fast Griffin-Lim momentum.

    Example:
    >>> GriffinLim(512, 128, n_iter=4)(ops.ones((1, 9, 257))).shape
    (1, 1024)
    """

    def __init__(self, n_fft=1024, hop_length=256, n_iter=32, momentum=0.99, **kwargs):
        super().__init__(**kwargs)
        self.n_fft, self.hop_length = int(n_fft), int(hop_length)
        self.n_iter, self.momentum = int(n_iter), float(momentum)

    def call(self, magnitude, length=None):
        return griffin_lim(magnitude, self.n_fft, self.hop_length, self.n_iter, self.momentum,
                           length=length)

    def get_config(self):
        return {**super().get_config(), "n_fft": self.n_fft, "hop_length": self.hop_length,
                "n_iter": self.n_iter, "momentum": self.momentum}


@keras.saving.register_keras_serializable(package="layers")
class ISTFTHead(keras.layers.Layer):
    """Features at the frame rate -> waveform through a predicted STFT (Vocos's head,
    Siuzdak 2023): a 1x1 projection to ``n_fft // 2 + 1`` log-magnitudes ``m`` and as
    many phases ``p`` per frame, then :func:`istft` of ``exp(min(m, log(max_magnitude)))
    * e^{i p}``. No upsampling layers: one frame per input step, ``hop_length`` samples
    each, so a decoder can stay at its code rate.

    Args:
        n_fft: FFT size of the synthesis (a multiple of ``hop_length``; Vocos uses 4x).
        hop_length: samples per input step.
        max_magnitude: ceiling of the magnitudes (Vocos: 100), which keeps an
            untrained head from exploding.
        **kwargs: base ``Layer`` arguments.

    Call arguments:
        inputs: ``[batch, frames, channels]``.
        length: output samples (default ``frames * hop_length``).

    Returns:
        Waveforms ``[batch, length]``.

    Example:
    >>> ISTFTHead(256, 64)(ops.ones((1, 10, 32))).shape
    (1, 640)
    """

    def __init__(self, n_fft=256, hop_length=64, max_magnitude=100.0, **kwargs):
        super().__init__(**kwargs)
        self.n_fft, self.hop_length = int(n_fft), int(hop_length)
        if self.n_fft < 1 or self.hop_length < 1 or self.n_fft % self.hop_length:
            raise ValueError(f"ISTFTHead needs n_fft ({n_fft}) to be a positive multiple of "
                             f"hop_length ({hop_length})")
        self.max_magnitude = float(max_magnitude)
        self.bins = self.n_fft // 2 + 1
        self.projection = keras.layers.Dense(2 * self.bins, name="projection",
                                             dtype=self.dtype_policy)

    def build(self, input_shape):
        self.projection.build(input_shape)

    def spectrum(self, inputs):
        """``(real, imag)`` of the predicted STFT, each ``[batch, frames, bins]``."""
        out = ops.cast(self.projection(inputs), "float32")
        log_magnitude = ops.minimum(out[..., : self.bins], float(np.log(self.max_magnitude)))
        magnitude, phase = ops.exp(log_magnitude), out[..., self.bins:]
        return magnitude * ops.cos(phase), magnitude * ops.sin(phase)

    def call(self, inputs, length=None):
        if length is None:
            frames = inputs.shape[1]
            length = (frames if frames is not None else ops.shape(inputs)[1]) * self.hop_length
        real, imag = self.spectrum(inputs)
        return istft(real, imag, self.n_fft, self.hop_length, length=length)

    def compute_output_shape(self, input_shape):
        frames = input_shape[1]
        return (input_shape[0], None if frames is None else frames * self.hop_length)

    def get_config(self):
        return {**super().get_config(), "n_fft": self.n_fft, "hop_length": self.hop_length,
                "max_magnitude": self.max_magnitude}


def mel_to_linear(mel, mel_scale, method="pinv"):
    """Mel spectrogram ``[..., n_mels]`` -> linear ``[..., bins]`` (same power as the input).

    Args:
        mel: mel spectrogram (a tensor for ``"pinv"``, array-like for ``"nnls"``).
        mel_scale: the ``layers.MelScale`` that produced it.
        method: ``"pinv"`` (clipped pseudo-inverse, in-graph) or ``"nnls"``
            (non-negative least squares via ``librosa.util.nnls``; numpy, outside
            the graph, slower and more accurate).

    Returns:
        The linear-frequency spectrogram.
    """
    if method == "pinv":
        return mel_scale.inverse(mel)
    if method == "nnls":
        import librosa

        mel = np.asarray(ops.convert_to_numpy(mel), dtype="float32")
        flat = mel.reshape(-1, mel.shape[-1]).T  # [n_mels, N]
        linear = librosa.util.nnls(mel_scale.filterbank.T, flat)  # [bins, N]
        return linear.T.reshape(mel.shape[:-1] + (-1,)).astype("float32")
    raise ValueError(f"method must be 'pinv' or 'nnls', got {method!r}")


def invert_mel_by_gradient(target_power_mel, mel_scale, n_fft, hop_length, length,
                           iterations=2000, learning_rate=0.003, seed=0, power_scale=1.0):
    """Mel -> waveform by gradient descent (MelGAN-VC's inversion): slow, no phase model.

    A waveform, initialised with small Gaussian noise, is optimised with Adam so
    that the power mel of its STFT (centred, periodic Hann, as
    ``layers.spectral.stft_magnitude``), ``mel_scale(|STFT|^2) * power_scale``,
    matches ``target_power_mel`` in mean absolute error. It runs as Keras itself:
    a tiny ``keras.Model`` whose only trainable weight is the waveform, compiled
    with ``Adam(learning_rate)`` and fit for ``iterations`` steps on a dummy input,
    so the gradients are the backend's own and there is no backend dispatch code.
    Eager/outside an exported graph (it trains); numpy in, numpy out.

    Args:
        target_power_mel: ``[batch, frames, n_mels]`` (or ``[frames, n_mels]``) power mel.
        mel_scale: the ``layers.MelScale`` that maps ``[..., n_fft // 2 + 1]`` to mels.
        n_fft, hop_length: STFT settings (window = ``n_fft``).
        length: samples of the waveform to optimise (``frames = 1 + length // hop``).
        iterations: Adam steps (the reference uses 2000).
        learning_rate: Adam learning rate (the reference uses 0.003).
        seed: seed of the initial noise.
        power_scale: factor applied to ``mel_scale(|STFT|^2)`` before comparison
            (``SpectralFrontEnd.power_scale`` for its calibrated power mel).

    Returns:
        float32 numpy waveforms ``[batch, length]`` (``[length]`` for a 2-D target).
    """
    target = np.asarray(ops.convert_to_numpy(target_power_mel), dtype="float32")
    single = target.ndim == 2
    target = target[None] if single else target
    batch, length = target.shape[0], int(length)
    frames = 1 + length // hop_length
    if target.shape[1] != frames:
        raise ValueError(f"target has {target.shape[1]} frames; a waveform of {length} samples "
                         f"at hop {hop_length} gives {frames}")
    filterbank = np.asarray(mel_scale.filterbank, dtype="float32")
    init = (1e-3 * np.random.default_rng(seed).standard_normal((batch, length))).astype("float32")

    class _Waveform(keras.Model):
        def __init__(self):
            super().__init__(name="waveform_inversion")
            self.wave = self.add_weight(shape=(batch, length), name="waveform",
                                        initializer=keras.initializers.Constant(init))

        def call(self, _):
            real, imag = ops.stft(self.wave, n_fft, hop_length, n_fft, window="hann", center=True)
            power = ops.square(real) + ops.square(imag)
            return ops.matmul(power, ops.convert_to_tensor(filterbank)) * power_scale

    def mel_l1(y_true, y_pred):
        return ops.mean(ops.abs(y_pred - y_true))

    model = _Waveform()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=mel_l1)
    dummy = np.zeros((batch, 1), "float32")

    def data():
        while True:
            yield dummy, target

    if iterations > 0:
        model.fit(data(), steps_per_epoch=int(iterations), epochs=1, shuffle=False, verbose=0)
    wave = np.asarray(ops.convert_to_numpy(model.wave), dtype="float32")
    return wave[0] if single else wave
