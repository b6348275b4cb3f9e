"""Long audio files processed block by block in constant memory.

:func:`process_file` runs a waveform -> waveform function (a model's ``convert`` or
``reconstruct``) over a file of any length: it reads the file in pieces
(``soundfile``), mixes to mono and resamples to the model's rate on the fly
(``soxr.ResampleStream``), hands the function overlapping windows of
``block + overlap`` samples at a hop of ``block``, crossfades each window's first
``overlap`` samples with the previous window's last ones (``sin^2`` / ``cos^2``
weights, which sum to one, so a function that treats every window alike leaves no
seam), resamples the result to the output rate on the fly and appends it to a
temporary WAV that replaces the destination only when complete. Peak memory
depends on the block length, not on the file's.

A file no longer than one window is processed in one call, exactly as in memory.

Example:
    >>> from zoo.data.streaming import process_file
    >>> process_file("concert.flac", "converted.wav", model.convert, model.sample_rate,
    ...              block_seconds=60.0)
"""
from pathlib import Path

import numpy as np

from zoo.data.audio import audio_error, check_audio_path, load_audio, wav_format
from zoo.errors import ZooError
from zoo.files import atomic_write_bytes

#: Samples read from the input per ``soundfile`` call (at the file's own rate).
READ_FRAMES = 1 << 16


def _file_pieces(path, sample_rate):
    """Generator: first the number of samples to expect at ``sample_rate`` (an
    estimate, for the progress bar), then float32 mono pieces of ``path`` resampled to
    ``sample_rate``, in order."""
    import soundfile as sf
    import soxr

    try:
        handle = sf.SoundFile(str(path))
    except Exception:  # not libsndfile's: decode in memory (load_audio names problems)
        wave = load_audio(path, sample_rate)
        yield len(wave)
        for start in range(0, len(wave), READ_FRAMES):
            yield wave[start:start + READ_FRAMES]
        return
    with handle:
        rate = handle.samplerate
        if handle.frames == 0:
            raise audio_error(path, "empty", "empty (no audio frames)")
        yield int(round(handle.frames * sample_rate / rate))
        stream = (soxr.ResampleStream(rate, sample_rate, 1, dtype="float32", quality="HQ")
                  if rate != sample_rate else None)
        while True:
            data = handle.read(READ_FRAMES, dtype="float32", always_2d=True)
            last = len(data) < READ_FRAMES
            if not np.all(np.isfinite(data)):
                raise audio_error(path, "non-finite", "contains NaN or infinite samples")
            mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
            if stream is not None:
                mono = stream.resample_chunk(np.ascontiguousarray(mono), last=last)
            if len(mono):
                yield np.asarray(mono, np.float32)
            if last:
                return


def windows(pieces, block, overlap):
    """Group an iterable of 1-D pieces into windows of ``block + overlap`` samples
    at a hop of ``block``.

    Yields ``(window, last)``. Every window but the last has ``block + overlap``
    samples; the last has ``overlap + 1`` to ``block + overlap`` (or fewer when it is
    the only one). Holds at most ``block + 2 overlap`` samples plus one piece.
    """
    buffered, size, done = [], 0, False
    pieces = iter(pieces)
    while True:
        while size < block + 2 * overlap and not done:
            piece = next(pieces, None)
            if piece is None:
                done = True
            elif len(piece):
                buffered.append(piece)
                size += len(piece)
        buf = np.concatenate(buffered) if buffered else np.zeros(0, np.float32)
        if done and size <= block + overlap:
            if size or not buffered:
                yield buf, True
            return
        yield buf[:block + overlap], False
        buffered, size = [buf[block:]], size - block


def crossfade(overlap):
    """Fade-in weights ``sin^2(pi (n + 1/2) / (2 overlap))``; the fade-out is ``1 - w``."""
    n = np.arange(overlap, dtype=np.float64)
    return (np.sin(np.pi * (n + 0.5) / (2 * overlap)) ** 2).astype(np.float32)


def process_stream(pieces, process, block, overlap, pad=True):
    """Apply ``process`` to overlapping windows of a stream and crossfade them.

    Args:
        pieces: iterable of 1-D float32 arrays (the input, in order).
        process: ``[samples] -> [samples]`` numpy function (same length out).
        block: hop between windows, in samples.
        overlap: crossfade length, in samples (``< block``).
        pad: zero-pad a short last window to the full window length before
            ``process`` (one compiled shape), then trim its output.

    Yields:
        Output pieces; together exactly as long as the input.
    """
    if not 0 < overlap < block:
        raise ValueError(f"overlap ({overlap}) must be positive and shorter than the block "
                         f"({block})")
    fade = crossfade(overlap)
    tail = None
    for window, last in windows(pieces, block, overlap):
        n = len(window)
        if n == 0:
            return
        padded = window
        if pad and (tail is not None or not last) and n < block + overlap:
            padded = np.pad(window, (0, block + overlap - n))
        out = np.asarray(process(padded), np.float32).reshape(-1)[:n]
        if len(out) != n:
            raise ValueError(f"process returned {len(out)} samples for a window of {n}")
        if tail is not None:
            k = min(overlap, n)
            out[:k] = out[:k] * fade[:k] + tail[:k] * (1.0 - fade[:k])
        if last:
            yield out
            return
        yield out[:block]
        tail = out[block:]


def process_file(source, destination, process, sample_rate, output_rate=None,
                 block_seconds=60.0, overlap_seconds=None, progress=True, subtype="PCM_16"):
    """Process an audio file of any length in constant memory (module docstring).

    Args:
        source: input file (anything ``soundfile`` reads; other formats are decoded
            in memory).
        destination: output WAV, written atomically (replaced only when complete);
            RF64 when it would pass 4 GiB (:func:`zoo.data.audio.wav_format`).
        process: ``[samples] -> [samples]`` at ``sample_rate`` (e.g. ``model.convert``).
        sample_rate: the rate ``process`` works at.
        output_rate: rate of the output file (default ``sample_rate``).
        block_seconds: hop between windows; peak memory grows with it.
        overlap_seconds: crossfade between consecutive windows (and the context each
            window has beyond its block); default ``min(2, block_seconds / 4)``.
        progress: show a progress bar (seconds of input).
        subtype: WAV sample format (``"PCM_16"``, ``"PCM_24"``, ``"FLOAT"``).

    Returns:
        Seconds of audio written.

    Raises:
        AudioFileError: the input is missing, empty, unreadable or not finite.
        ZooError: ``block_seconds`` / ``overlap_seconds`` out of range (one line
            naming the argument).
    """
    import soundfile as sf
    import soxr

    source, sample_rate = Path(source), int(sample_rate)
    output_rate = int(output_rate or sample_rate)
    if not block_seconds > 0 or block_seconds * sample_rate < 8:
        raise ZooError(f"block_seconds: must be positive (at least 8 samples), got "
                       f"{block_seconds}")
    if overlap_seconds is None:
        overlap_seconds = min(2.0, block_seconds / 4)
    block = int(round(block_seconds * sample_rate))
    overlap = int(round(overlap_seconds * sample_rate))
    if not 0 < overlap < block:
        raise ZooError(f"overlap_seconds: must be positive and below block_seconds "
                       f"({block_seconds}), got {overlap_seconds}")
    check_audio_path(source)
    pieces = _file_pieces(source, sample_rate)
    expected = next(pieces)
    bar = None
    if progress:
        import keras

        bar = keras.utils.Progbar(max(expected, 1) / sample_rate, unit_name="s")
    written = [0]

    def write(tmp):
        stream = (soxr.ResampleStream(sample_rate, output_rate, 1, dtype="float32", quality="HQ")
                  if output_rate != sample_rate else None)
        done = 0
        frames = int(np.ceil(expected * output_rate / sample_rate)) + output_rate
        with sf.SoundFile(tmp, "w", samplerate=output_rate, channels=1, subtype=subtype,
                          format=wav_format(frames, subtype)) as out:
            def emit(y, last=False):
                if stream is not None:
                    y = stream.resample_chunk(np.ascontiguousarray(y, np.float32), last=last)
                if subtype.upper().startswith("PCM"):
                    y = np.clip(y, -1.0, 1.0)
                out.write(np.asarray(y, np.float32))
                written[0] += len(y)

            for y in process_stream(pieces, process, block, overlap):
                emit(y)
                done += len(y)
                if bar is not None:
                    bar.update(min(done, expected) / sample_rate)
            if stream is not None:
                emit(np.zeros(0, np.float32), last=True)

    atomic_write_bytes(destination, write)
    return written[0] / output_rate
