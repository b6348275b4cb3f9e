"""Features back to audio for spectrogram models: Griffin-Lim on overlapping segments
(bounded memory for inputs of hours) and gradient inversion of the power mel.

``layers`` keeps the primitive operations (``griffin_lim``, ``istft``,
``invert_mel_by_gradient``); this module applies them to a model's front-end.
"""
import numpy as np
from keras import ops

from layers import invert_mel_by_gradient
from zoo.models.chunking import crossfade_window

#: Frames shared by consecutive Griffin-Lim segments.
GL_OVERLAP_FRAMES = 32


def griffin_lim_segments(to_waveform, features, length, hop_length, n_fft, segment_frames,
                         overlap=GL_OVERLAP_FRAMES, fill=-1.0):
    """Waveforms ``[batch, length]`` from features by Griffin-Lim on overlapping segments.

    Segments of ``segment_frames`` frames overlap by ``overlap`` frames and are
    cross-faded in the middle half of the overlap, away from each segment's less
    accurate edges; every segment has one shape (one compilation). Inputs no longer
    than one segment are inverted whole.

    Args:
        to_waveform: ``(features [batch, frames, C], num_samples) -> [batch, num_samples]``
            (compiled by the caller).
        features: numpy ``[batch, frames, C]``.
        length: output samples.
        hop_length, n_fft: of the front-end.
        segment_frames: frames per segment (at least ``4 * overlap`` are used).
        overlap: frames shared by consecutive segments.
        fill: feature value padding the last segment (silence).

    Returns:
        float32 numpy ``[batch, length]``.
    """
    hop = hop_length
    seg = max(int(segment_frames), 4 * overlap)
    batch, frames = features.shape[0], features.shape[1]
    if frames <= seg:
        return np.asarray(ops.convert_to_numpy(
            to_waveform(features, max(length, n_fft))))[:, :length]
    # A segment of ``seg`` frames spans (seg - 1) * hop samples (centred frames), and
    # consecutive segments share (overlap - 1) * hop samples.
    q, span, shared = overlap // 4, (seg - 1) * hop, (overlap - 1) * hop
    fade = shared - 2 * q * hop
    ramp_up = np.concatenate([np.zeros(q * hop), crossfade_window(2 * fade)[:fade],
                              np.ones(q * hop)]).astype("float32")
    out = np.zeros((batch, length), "float32")
    norm = np.zeros(length, "float32")
    for start in range(0, frames, seg - overlap):
        last = start * hop + span >= length
        part = features[:, start:start + seg]
        part = np.pad(part, ((0, 0), (0, seg - part.shape[1]), (0, 0)), constant_values=fill)
        wave = np.asarray(ops.convert_to_numpy(to_waveform(part, span)))
        weight = np.ones(span, "float32")
        if start > 0:
            weight[:shared] = ramp_up
        if not last:
            weight[-shared:] = ramp_up[::-1]
        a = start * hop
        b = min(a + span, length)
        out[:, a:b] += wave[:, :b - a] * weight[:b - a]
        norm[a:b] += weight[:b - a]
        if last:
            break
    return out / np.maximum(norm, 1e-6)


def gradient_inversion(frontend, features, length, iterations=2000, learning_rate=0.003, seed=0):
    """Normalised log-mel features -> waveforms ``[batch, length]`` by Adam on the L1
    error of the power mel (the MelGAN-VC reference's inversion; slow)."""
    target = np.asarray(ops.convert_to_numpy(frontend.to_power_mel(features)), "float32")
    y = invert_mel_by_gradient(target, frontend.mel, frontend.n_fft, frontend.hop_length,
                               max(length, frontend.n_fft), iterations=iterations,
                               learning_rate=learning_rate, seed=seed,
                               power_scale=frontend.power_scale)
    return np.asarray(y)[:, :length]
