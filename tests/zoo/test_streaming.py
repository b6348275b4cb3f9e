"""Block-wise processing of long files (``zoo.data.streaming``).

Checked against independent references: a per-sample function must come out
exactly; a recursive filter (scipy's ``lfilter`` over the whole signal) must show
no seam at block boundaries; the reading / resampling path must match librosa's
whole-file resampling; peak memory (tracemalloc) must not grow with the file's length.
"""
import tracemalloc

import librosa
import numpy as np
import pytest
import scipy.signal
import soundfile as sf

from zoo.data.streaming import process_file, process_stream, windows
from zoo.errors import AudioFileError, ZooError


def _pieces(x, size):
    return [x[i:i + size] for i in range(0, len(x), size)]


@pytest.mark.parametrize("length", [1, 999, 1000, 1250, 1251, 1500, 1501, 7777])
def test_windows_tile_the_stream_at_the_block_hop(length):
    x = np.arange(length, dtype=np.float32)
    out = list(windows(_pieces(x, 97), block=1000, overlap=250))
    assert [last for _, last in out] == [False] * (len(out) - 1) + [True]
    for i, (w, last) in enumerate(out):
        np.testing.assert_array_equal(w, x[i * 1000:i * 1000 + 1250])
        assert last or len(w) == 1250
        assert i == 0 or len(w) > 250  # every later window reaches past the crossfade
    assert (len(out) - 1) * 1000 + len(out[-1][0]) == length


@pytest.mark.parametrize("block,overlap", [(1000, 400), (1600, 300), (10000, 2000)])
def test_crossfaded_blocks_match_the_whole_signal(block, overlap):
    rng = np.random.default_rng(0)
    x = (0.3 * rng.standard_normal(7123)).astype(np.float32)
    scaled = np.concatenate(list(process_stream(_pieces(x, 333), lambda w: 0.5 * w,
                                                block, overlap)))
    assert len(scaled) == len(x)
    np.testing.assert_allclose(scaled, 0.5 * x, atol=1e-6)  # the fades sum to one
    # A filter with memory: each window starts from rest, but the crossfade hides it.
    b, a = scipy.signal.butter(4, 0.1)
    filtered = np.concatenate(list(process_stream(
        _pieces(x, 333), lambda w: scipy.signal.lfilter(b, a, w), block, overlap)))
    reference = scipy.signal.lfilter(b, a, x)
    assert np.max(np.abs(filtered - reference)) < 1e-3 * np.max(np.abs(reference))


def test_process_file_mixes_resamples_and_writes_like_the_whole_file(tmp_path):
    rng = np.random.default_rng(1)
    x = (0.3 * rng.standard_normal(22050 * 3 + 17)).astype(np.float32)
    sf.write(tmp_path / "in.wav", np.stack([x, 0.5 * x], 1), 22050, subtype="FLOAT")
    seconds = process_file(tmp_path / "in.wav", tmp_path / "out.wav", lambda w: w, 16000,
                           output_rate=24000, block_seconds=0.5, progress=False,
                           subtype="FLOAT")
    y, rate = sf.read(tmp_path / "out.wav", dtype="float32")
    reference = librosa.resample(
        librosa.resample(0.75 * x, orig_sr=22050, target_sr=16000, res_type="soxr_hq"),
        orig_sr=16000, target_sr=24000, res_type="soxr_hq")
    assert rate == 24000 and abs(len(y) - len(reference)) <= 2
    assert seconds == pytest.approx(len(y) / 24000)
    n = min(len(y), len(reference))
    assert np.max(np.abs(y[:n] - reference[:n])) < 1e-3


def test_peak_memory_does_not_grow_with_the_file(tmp_path):
    rate, peaks = 8000, []
    for seconds in (16, 256):  # both longer than one soundfile read
        x = np.sin(np.arange(seconds * rate) * 0.05).astype(np.float32) * 0.5
        sf.write(tmp_path / f"{seconds}.wav", x, rate)
        tracemalloc.start()
        process_file(tmp_path / f"{seconds}.wav", tmp_path / f"{seconds}-out.wav",
                     lambda w: np.tanh(2 * w), rate, block_seconds=1.0, progress=False)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert sf.info(tmp_path / f"{seconds}-out.wav").frames == seconds * rate
    # 256 s of float32 is 8 MB; processing holds a read buffer and about one block.
    assert peaks[1] < 1.2 * peaks[0] and peaks[1] < 256 * rate, peaks


def test_bad_arguments_and_failures_keep_the_destination(tmp_path):
    sf.write(tmp_path / "in.wav", np.zeros(4000, np.float32), 8000)
    with pytest.raises(AudioFileError, match="nope.wav"):
        process_file(tmp_path / "nope.wav", tmp_path / "o.wav", lambda w: w, 8000)
    with pytest.raises(ZooError, match="^block_seconds"):
        process_file(tmp_path / "in.wav", tmp_path / "o.wav", lambda w: w, 8000,
                     block_seconds=0)
    (tmp_path / "o.wav").write_bytes(b"old")

    def fails(w):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        process_file(tmp_path / "in.wav", tmp_path / "o.wav", fails, 8000, progress=False)
    assert (tmp_path / "o.wav").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav", "o.wav"]


def test_outputs_past_4_gib_are_rf64_and_read_back(tmp_path, monkeypatch):
    """A plain WAV header holds 32-bit sizes: 2 h of 16 kHz PCM-16 (230 MB) stays WAV,
    20 h of 48 kHz float (13.8 GB) must be RF64. With the limit lowered, a real write
    takes the RF64 path and reads back sample for sample."""
    from zoo.data import audio

    assert audio.wav_format(2 * 3600 * 16000, "PCM_16") == "WAV"
    assert audio.wav_format(20 * 3600 * 48000, "FLOAT") == "RF64"
    assert audio.wav_format(2 ** 31, "PCM_16") == "RF64"  # 4 GiB of data exactly
    assert audio.wav_format(2 ** 30, "PCM_16", channels=2) == "RF64"
    monkeypatch.setattr(audio, "WAV_LIMIT_BYTES", 1000)
    x = np.sin(np.arange(4000) * 0.05).astype(np.float32) * 0.5
    sf.write(tmp_path / "in.wav", x, 8000, subtype="FLOAT")
    process_file(tmp_path / "in.wav", tmp_path / "out.wav", lambda w: w, 8000,
                 block_seconds=0.2, progress=False, subtype="FLOAT")
    assert sf.info(str(tmp_path / "out.wav")).format == "RF64"
    y, rate = sf.read(tmp_path / "out.wav", dtype="float32")
    assert rate == 8000
    np.testing.assert_allclose(y, x, atol=1e-6)
    # write_audio takes the same path for in-memory results
    audio.write_audio(tmp_path / "mem.wav", np.stack([x, x], 1), 8000, subtype="FLOAT")
    assert sf.info(str(tmp_path / "mem.wav")).format == "RF64"
    np.testing.assert_allclose(sf.read(tmp_path / "mem.wav", dtype="float32")[0][:, 1], x,
                               atol=1e-6)
