"""Padding, chunking and overlap-add along the time axis, in ``keras.ops``.

One implementation serves graph callers (inside ``call``, ``fit`` and exported
signatures, where lengths may be dynamic tensors) and array callers (numpy in,
tensors out: convert with ``keras.ops.convert_to_numpy``). Time is axis 1
throughout: waveforms ``[batch, samples]``, features ``[batch, frames, channels]``.
"""
import numpy as np
from keras import ops


def _length(x, axis=1):
    """Static length of ``axis`` when known, else a scalar tensor."""
    n = x.shape[axis]
    return n if n is not None else ops.shape(x)[axis]


def _pad_axis(x, before, after, axis, value):
    pads = [(0, 0)] * len(x.shape)
    pads[axis] = (before, after)
    return ops.pad(x, pads, constant_values=value)


def pad_to_multiple(x, multiple, axis=1, value=0.0):
    """Pad ``x`` at the end of ``axis`` to the next multiple of ``multiple``.

    Args:
        x: array or tensor.
        multiple: positive int.
        axis: the time axis.
        value: fill value (``-1.0`` is silence for normalised log-mel features).
    """
    x = ops.convert_to_tensor(x)
    return _pad_axis(x, 0, (-_length(x, axis)) % int(multiple), axis, value)


def pad_to_length(x, minimum, axis=1, value=0.0):
    """Pad ``x`` at the end of ``axis`` to at least ``minimum`` entries (e.g. one FFT
    window, which reflect padding needs)."""
    x = ops.convert_to_tensor(x)
    n = _length(x, axis)
    missing = max(int(minimum) - n, 0) if isinstance(n, int) else ops.maximum(minimum - n, 0)
    return _pad_axis(x, 0, missing, axis, value)


def crossfade_window(width):
    """``sin^2(pi (n + 1/2) / width)``: positive, and sums to 1 at 50 % overlap."""
    n = np.arange(width, dtype=np.float64)
    return np.sin(np.pi * (n + 0.5) / width) ** 2


def chunk_layout(frames, width, hop):
    """``(number of chunks, padded length)`` covering ``frames`` with chunks of ``width``
    at ``hop``; ``frames`` is an int (Python arithmetic) or a scalar tensor."""
    if isinstance(frames, (int, np.integer)):
        n = max(0, -(-(int(frames) - width) // hop)) + 1
    else:
        n = ops.maximum(0, (frames - width + hop - 1) // hop) + 1
    return n, (n - 1) * hop + width


def frame(x, width, hop, n):
    """``[B, L, C]`` (``L >= (n - 1) hop + width``) -> ``[B * n, width, C]`` chunks at ``hop``."""
    x = ops.convert_to_tensor(x)
    index = ops.reshape(ops.arange(n) * hop, (n, 1)) + ops.reshape(ops.arange(width), (1, width))
    chunks = ops.take(x, ops.reshape(index, (-1,)), axis=1)
    return ops.reshape(chunks, (-1, width, x.shape[-1]))


def overlap_add(chunks, hop, window):
    """Weighted overlap-add, normalised by the summed window (a crossfade: no seams).

    Args:
        chunks: ``[B, n, width, C]``; ``width`` a multiple of ``hop``.
        hop: chunk hop.
        window: ``[width]`` positive weights (e.g. :func:`crossfade_window`).

    Returns:
        ``[B, (n - 1) hop + width, C]``: at every frame, the window-weighted mean of
        the chunks that cover it.
    """
    chunks = ops.convert_to_tensor(chunks)
    width = chunks.shape[2]
    if width % hop:
        raise ValueError(f"chunk width {width} must be a multiple of the hop {hop}")
    k = width // hop
    win = ops.reshape(ops.convert_to_tensor(np.asarray(window, "float32")), (1, 1, width, 1))
    weighted = chunks * win
    norm_chunks = ops.ones_like(chunks[:1, :, :1, :1]) * win
    total, norm = 0.0, 0.0
    for i in range(k):  # piece i of chunk j lands in block j + i
        piece = slice(i * hop, (i + 1) * hop)
        total = total + _pad_axis(weighted[:, :, piece], i, k - 1 - i, 1, 0.0)
        norm = norm + _pad_axis(norm_chunks[:, :, piece], i, k - 1 - i, 1, 0.0)
    out = total / norm
    return ops.reshape(out, (ops.shape(chunks)[0], -1, chunks.shape[-1]))
