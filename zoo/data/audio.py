"""Reading and writing audio files.

:func:`load_audio` turns anything ``soundfile`` reads into a float32 mono
waveform at the requested rate; :func:`write_audio` writes a WAV file
atomically. Both report bad input as :class:`zoo.errors.AudioFileError`, whose
message names the file and the problem.
"""

from pathlib import Path

import numpy as np

from zoo.errors import AudioFileError
from zoo.files import atomic_write_bytes

#: File name extensions (lower case, without the dot) treated as audio when
#: scanning folders. Everything libsndfile decodes except headerless RAW.
AUDIO_EXTENSIONS = frozenset(
    {
        "wav", "wave", "flac", "ogg", "oga", "opus", "mp3", "aif", "aiff",
        "aifc", "au", "snd", "caf", "w64", "rf64", "voc", "sd2",
    }
)

#: Peak level the data pipeline normalises every file to.
PEAK_LEVEL = 0.95

#: Files whose peak lies below this (about -80 dBFS) count as silent.
SILENCE_THRESHOLD = 1e-4


def audio_error(path, kind, problem):
    """An :class:`AudioFileError` with ``path``, ``kind`` and ``problem`` attributes."""
    err = AudioFileError(f"{path}: {problem}")
    err.path, err.kind, err.problem = str(path), kind, problem
    return err


def check_audio_path(path):
    """Raise :class:`AudioFileError` when ``path`` is missing or has 0 bytes."""
    path = Path(path)
    if not path.is_file():
        raise audio_error(path, "missing", "no such file")
    if path.stat().st_size == 0:
        raise audio_error(path, "empty", "empty file (0 bytes)")


def is_audio_file(path):
    """Whether ``path`` has an audio extension and is not a hidden file."""
    path = Path(path)
    return (
        not path.name.startswith(".")
        and path.suffix[1:].lower() in AUDIO_EXTENSIONS
    )


def resample(waveform, orig_sr, target_sr):
    """Resamples a 1-D float waveform with soxr (``librosa.resample``, ``soxr_hq``)."""
    if int(orig_sr) == int(target_sr):
        return np.asarray(waveform, dtype=np.float32)
    import librosa

    return librosa.resample(
        np.asarray(waveform, dtype=np.float32),
        orig_sr=int(orig_sr),
        target_sr=int(target_sr),
        res_type="soxr_hq",
    ).astype(np.float32, copy=False)


_TFIO = []


def tfio_reader():
    """``tensorflow-io``'s audio reader when its native ops load here, else ``None``.

    tensorflow-io's last release (0.37.1) loads its ops only with TensorFlow 2.17
    (numpy < 2), which current JAX cannot share an environment with, so it is an
    optional extra (``pip install audio-zoo[tfio]``). The probe runs once: import,
    then decode a tiny WAV. When it works, :func:`load_audio` uses it for files
    soundfile cannot read; otherwise soundfile is the only decoder.
    """
    if not _TFIO:
        reader = None
        try:
            import io

            import soundfile as sf
            import tensorflow_io as tfio

            buf = io.BytesIO()
            sf.write(buf, np.zeros(16, "float32"), 8000, format="WAV")
            tfio.audio.decode_wav(buf.getvalue(), dtype="int16")  # loads the native ops

            def reader(path):
                tensor = tfio.audio.AudioIOTensor(str(path))
                return tensor.to_tensor().numpy().astype("float32"), int(tensor.rate.numpy())
        except Exception:  # not installed, or its ops do not load with this TensorFlow
            reader = None
        _TFIO.append(reader)
    return _TFIO[0]


def load_audio(path, sample_rate, *, normalize=False):
    """Loads an audio file as a float32 mono waveform at ``sample_rate``.

    Channels are averaged, then the signal is resampled with soxr (the
    ``soxr_hq`` setting of ``librosa.resample``).

    Args:
        path: the file (anything ``soundfile`` reads: WAV, FLAC, OGG, MP3, ...).
        sample_rate: target rate in Hz.
        normalize: scale the peak to 0.95 (a silent file then raises).

    Returns:
        float32 numpy array of shape ``[samples]``.

    Raises:
        AudioFileError: the file is missing, unreadable, has no audio frames,
            contains NaN/Inf, or (with ``normalize=True``) is silent. The message
            names the file and the problem.

    Example:
        >>> y = load_audio("take1.flac", 16000, normalize=True)
    """
    import soundfile as sf

    path = Path(path)
    check_audio_path(path)
    try:
        data, orig_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # libsndfile errors come in several classes
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        data = _read_with_tfio(path)
        if data is None:
            raise audio_error(path, "unreadable", f"unreadable audio ({reason})") from None
        data, orig_sr = data
    if data.shape[0] == 0:
        raise audio_error(path, "empty", "empty (no audio frames)")
    if not np.all(np.isfinite(data)):
        raise audio_error(path, "non-finite", "contains NaN or infinite samples")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    y = resample(mono, orig_sr, sample_rate)
    if normalize:
        peak = float(np.max(np.abs(y))) if y.size else 0.0
        if peak < SILENCE_THRESHOLD:
            raise audio_error(path, "silent", f"silent (peak {peak:.1e}, below {SILENCE_THRESHOLD:g})")
        y = y * np.float32(PEAK_LEVEL / peak)
    return np.ascontiguousarray(y, dtype=np.float32)


def _read_with_tfio(path):
    reader = tfio_reader()
    if reader is None:
        return None
    try:
        data, rate = reader(path)
    except Exception:
        return None
    return (data if data.ndim == 2 else data[:, None]), rate


#: Bytes per sample of the WAV subtypes the writers here and in ``zoo.data.streaming``.
_SAMPLE_BYTES = {"PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}

#: Largest data chunk a plain RIFF/WAV header can describe (its sizes are 32-bit).
WAV_LIMIT_BYTES = 2 ** 32 - 1 - 1024


def wav_format(frames, subtype="PCM_16", channels=1):
    """``"WAV"``, or ``"RF64"`` when ``frames`` of ``subtype`` exceed a 32-bit RIFF size.

    RF64 (EBU Tech 3306) is WAV with 64-bit sizes; libsndfile, ffmpeg, sox and every DAW
    read it. Files that fit stay plain WAV, which every reader knows.
    """
    size = int(frames) * int(channels) * _SAMPLE_BYTES.get(str(subtype).upper(), 4)
    return "RF64" if size > WAV_LIMIT_BYTES else "WAV"


def write_audio(path, waveform, sample_rate, *, subtype="PCM_16"):
    """Writes a WAV file atomically, creating parent folders (RF64 past 4 GiB).

    Args:
        path: destination file.
        waveform: ``[samples]`` or ``[samples, channels]`` float array in [-1, 1]
            (clipped for integer subtypes).
        sample_rate: rate in Hz.
        subtype: ``"PCM_16"`` (default), ``"PCM_24"`` or ``"FLOAT"``.

    Returns:
        The path written.
    """
    import soundfile as sf

    y = np.asarray(waveform, dtype=np.float32)
    if y.ndim not in (1, 2):
        raise ValueError(f"waveform must be [samples] or [samples, channels], got shape {y.shape}")
    if subtype.upper().startswith("PCM"):
        y = np.clip(y, -1.0, 1.0)
    return atomic_write_bytes(
        path,
        lambda tmp: sf.write(tmp, y, int(sample_rate), subtype=subtype,
                             format=wav_format(len(y), subtype, y.shape[1] if y.ndim == 2 else 1)),
    )
