"""Tests of the audio data pipeline (zoo.data): cache, crops, splits, loaders, bad input."""

import importlib.util
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from zoo.data import AudioDataset, SkippedAudioWarning, load_audio, load_dataset, write_audio
from zoo.data import pipeline
from zoo.errors import AudioFileError, ZooError

SR = 16000
CROP = 2048
ROOT = Path(__file__).resolve().parents[2]


def _has_tf():
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


def _noise(seed, seconds, sr=SR):
    return (0.5 * np.random.default_rng(seed).standard_normal(int(seconds * sr))).clip(-1, 1)


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


@pytest.fixture
def parallel_folder(tmp_path):
    """Two domains with the same file names; domain b is domain a negated (same lengths)."""
    root = tmp_path / "parallel"
    for j in range(6):
        y = _noise(j, 0.4 + 0.1 * j)
        write_audio(root / "a" / f"clip{j}.wav", y, SR, subtype="FLOAT")
        write_audio(root / "b" / f"clip{j}.wav", -y, SR, subtype="FLOAT")
    (root / "labels.csv").write_text(
        "file,speaker,gain,weight\n"
        "a/clip0.wav,alice,3,0.5\n"
        "b/clip1.wav,bob,,1e-3\n"
        "a/missing.wav,nobody,1,1\n"
    )
    (root / "notes.txt").write_text("not audio")
    return root


def _decode_counter(monkeypatch):
    calls = []
    original = pipeline._decode_file

    def counting(path, sample_rate):
        calls.append(Path(path).name)
        return original(path, sample_rate)

    monkeypatch.setattr(pipeline, "_decode_file", counting)
    return calls


# --------------------------------------------------------------------------- structure


def test_domains_files_and_labels(parallel_folder, cache):
    ds = load_dataset(parallel_folder, SR, CROP, cache_dir=cache, progress=False)
    assert isinstance(ds, AudioDataset)
    assert ds.domains == ["a", "b"]
    assert (ds.sample_rate, ds.crop_length, ds.num_skipped) == (SR, CROP, 0)
    assert ds.source == str(parallel_folder)
    every = ds.files("train") + ds.files("val")
    assert sorted(every) == sorted(f"{d}/clip{j}.wav" for d in "ab" for j in range(6))
    assert all(f.startswith("a/") for f in ds.files("all", domain="a"))
    assert ds.labels == {
        "a/clip0.wav": {"speaker": "alice", "gain": 3, "weight": 0.5},
        "b/clip1.wav": {"speaker": "bob", "gain": None, "weight": 1e-3},
    }


def test_single_domain_folder_and_no_labels(tmp_path, cache):
    root = tmp_path / "speech"
    for j in range(3):
        write_audio(root / f"x{j}.flac" if j else root / "sub" / "x0.wav", _noise(j, 0.3), SR)
    ds = load_dataset(root, SR, CROP, cache_dir=cache, progress=False)
    assert ds.domains == ["speech"]
    assert sorted(ds.files("all")) == ["sub/x0.wav", "x1.flac", "x2.flac"]
    assert ds.labels == {}


def test_bad_labels_file(parallel_folder, cache):
    (parallel_folder / "labels.csv").write_text("name,speaker\na/clip0.wav,x\n")
    with pytest.raises(ZooError, match="file"):
        load_dataset(parallel_folder, SR, CROP, cache_dir=cache, progress=False)


# --------------------------------------------------------------------------- batches


def test_batches_deterministic(parallel_folder, cache):
    ds = load_dataset(parallel_folder, SR, CROP, cache_dir=cache, progress=False, seed=3)
    x = ds.batch(0, 8)
    assert x.shape == (8, CROP) and x.dtype == np.float32
    np.testing.assert_array_equal(x, ds.batch(0, 8))
    np.testing.assert_array_equal(x, ds.batch(0, 8, seed=3))
    assert not np.array_equal(x, ds.batch(1, 8))
    assert not np.array_equal(x, ds.batch(0, 8, seed=4))
    assert not np.array_equal(x, ds.batch(0, 8, split="val"))
    # a second dataset object with the same seed draws the same batches
    ds2 = load_dataset(parallel_folder, SR, CROP, cache_dir=cache, progress=False, seed=3)
    np.testing.assert_array_equal(ds2.batch(5, 8, paired=True)[1], ds.batch(5, 8, paired=True)[1])

    a, b = ds.batch(2, 4, paired=True)
    assert a.shape == b.shape == (4, CROP) and a.dtype == b.dtype == np.float32
    crops, dom = ds.batch(2, 6, with_domain=True)
    assert crops.shape == (6, CROP) and dom.dtype == np.int32 and dom.shape == (6,)
    assert set(dom.tolist()) <= {0, 1}
    with pytest.raises(ValueError):
        ds.batch(0, 4, paired=True, with_domain=True)


def _locate(crop, waves):
    """(file, start) where ``crop`` is an exact substring of a cached waveform."""
    hits = []
    for name, w in waves.items():
        for s in np.flatnonzero(w[: len(w) - len(crop) + 1] == crop[0]):
            if np.array_equal(w[s:s + len(crop)], crop):
                hits.append((name, int(s)))
    return hits


def test_crops_lie_inside_files_and_respect_split(parallel_folder, cache):
    ds = load_dataset(parallel_folder, SR, CROP, cache_dir=cache, progress=False)
    waves = {f: ds.waveform(f) for f in ds.files("all")}
    assert all(w.dtype == np.float32 for w in waves.values())
    assert max(np.abs(w).max() for w in waves.values()) == pytest.approx(0.95, abs=1e-6)
    crops, dom = ds.batch(0, 16, with_domain=True)
    starts = []
    for crop, d in zip(crops, dom):
        hits = _locate(crop, waves)
        assert hits, "crop is not a substring of any cached file"
        name, start = hits[0]
        assert name in ds.files("train") and name.startswith(ds.domains[d] + "/")
        starts.append(start)
    assert len(set(starts)) > 8  # random positions, not always the file start
    for crop in ds.batch(0, 8, split="val"):
        assert _locate(crop, waves)[0][0] in ds.files("val")
    for d, part in enumerate(ds.batch(1, 8, paired=True)):
        for crop in part:
            assert _locate(crop, waves)[0][0].startswith(ds.domains[d] + "/")


def test_split_by_file(parallel_folder, cache):
    ds = load_dataset(parallel_folder, SR, CROP, cache_dir=cache, progress=False, val_fraction=0.34)
    train, val = set(ds.files("train")), set(ds.files("val"))
    assert train and val and not train & val
    assert train | val == set(ds.files("all"))
    # 2 of 6 per domain, and the same names in both domains (parallel ground truth kept aside)
    val_a = {f.split("/")[1] for f in ds.files("val", domain="a")}
    val_b = {f.split("/")[1] for f in ds.files("val", domain="b")}
    assert len(val_a) == 2 and val_a == val_b
    other = load_dataset(parallel_folder, SR, CROP, cache_dir=cache, progress=False,
                         val_fraction=0.34, seed=11)
    assert other.files("val") != ds.files("val") or other.files("train") != ds.files("train")

    none = load_dataset(parallel_folder, SR, CROP, cache_dir=cache, progress=False, val_fraction=0)
    assert none.files("val") == []
    with pytest.raises(ZooError, match="No val files"):
        none.batch(0, 2, split="val")
    assert none.clips(3).shape == (3, CROP)  # falls back to train


def test_clips_fixed_and_aligned_across_parallel_domains(parallel_folder, cache):
    ds = load_dataset(parallel_folder, SR, CROP, cache_dir=cache, progress=False)
    a = ds.clips(5, domain="a", split="all")
    b = ds.clips(5, domain="b", split="all")
    assert a.shape == (5, CROP) and a.dtype == np.float32
    np.testing.assert_array_equal(a, ds.clips(5, domain="a", split="all"))
    np.testing.assert_array_equal(b, -a)  # b is a negated, so aligned clips are exact opposites
    assert not np.array_equal(a, ds.clips(5, domain="a", split="all", seed=1))
    assert ds.clips(4).shape == (4, CROP)


def test_disk_reads_match_memory(parallel_folder, cache):
    mem = load_dataset(parallel_folder, SR, CROP, cache_dir=cache, progress=False)
    disk = load_dataset(parallel_folder, SR, CROP, cache_dir=cache, progress=False, memory_limit=0)
    assert mem.in_memory and not disk.in_memory
    for i in range(3):
        np.testing.assert_array_equal(mem.batch(i, 4), disk.batch(i, 4))
    np.testing.assert_array_equal(mem.waveform("a/clip3.wav"), disk.waveform("a/clip3.wav"))
    np.testing.assert_array_equal(mem.clips(3), disk.clips(3))


# --------------------------------------------------------------------------- loaders


def _as_list(out):
    return list(out) if isinstance(out, tuple) else [out]


@pytest.mark.skipif(not _has_tf(), reason="TensorFlow not installed")
@pytest.mark.parametrize("mode", [{}, {"paired": True}, {"with_domain": True}])
def test_tf_and_py_loaders_give_identical_batches(parallel_folder, cache, mode):
    ds = load_dataset(parallel_folder, SR, CROP, cache_dir=cache, progress=False)
    tf_ds = ds.batches(4, start_step=5, num_steps=3, loader="tf", **mode)
    py_ds = ds.batches(4, start_step=5, num_steps=3, loader="py", **mode)
    import tensorflow as tf

    assert isinstance(tf_ds, tf.data.Dataset)
    tf_batches = list(tf_ds.as_numpy_iterator())
    assert len(tf_batches) == 3 and py_ds.num_batches == 3
    for k, tb in enumerate(tf_batches):
        expected = _as_list(ds.batch(5 + k, 4, **mode))
        for got_tf, got_py, want in zip(_as_list(tb), _as_list(py_ds[k]), expected):
            np.testing.assert_array_equal(got_tf, want)
            np.testing.assert_array_equal(got_py, want)
            assert got_tf.dtype == want.dtype
    # endless tf.data stream continues the same sequence
    endless = ds.batches(4, loader="tf", **mode).take(2)
    for k, tb in enumerate(endless.as_numpy_iterator()):
        np.testing.assert_array_equal(_as_list(tb)[0], _as_list(ds.batch(k, 4, **mode))[0])


def test_py_loader_forced(parallel_folder, cache):
    import keras

    ds = load_dataset(parallel_folder, SR, CROP, cache_dir=cache, progress=False)
    py_ds = ds.batches(3, num_steps=4, loader="py", workers=2)
    assert isinstance(py_ds, keras.utils.PyDataset)
    assert py_ds.num_batches == 4
    np.testing.assert_array_equal(py_ds[2], ds.batch(2, 3))
    with pytest.raises(IndexError):
        py_ds[4]
    endless = ds.batches(3, start_step=7, loader="py")
    assert endless.num_batches is None
    np.testing.assert_array_equal(endless[1], ds.batch(8, 3))
    with pytest.raises(ValueError):
        ds.batches(3, loader="nope")


@pytest.mark.parametrize("loader", ["py", "auto"])
def test_fit_consumes_batches(parallel_folder, cache, loader):
    import keras

    ds = load_dataset(parallel_folder, SR, CROP, cache_dir=cache, progress=False)
    model = keras.Sequential([keras.Input((CROP,)), keras.layers.Dense(2)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    data = ds.batches(4, num_steps=None if loader == "auto" else 2, with_domain=True, loader=loader)
    history = model.fit(data, steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0])


def test_without_tensorflow_in_subprocess(parallel_folder, cache):
    """zoo.data imports and serves batches when TensorFlow cannot be imported."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        backend = next((b for b in ("jax", "torch") if importlib.util.find_spec(b)), None)
        if backend is None:
            pytest.skip("needs JAX or torch to run Keras without TensorFlow")
    ds = load_dataset(parallel_folder, SR, CROP, cache_dir=cache, progress=False)
    expected = ds.batch(1, 3)
    code = f"""
import sys, json
sys.modules["tensorflow"] = None
import numpy as np
import zoo.data
import keras
ds = zoo.data.load_dataset({str(parallel_folder)!r}, {SR}, {CROP}, cache_dir={str(cache)!r}, progress=True)
b = ds.batches(3, num_steps=2)
assert isinstance(b, keras.utils.PyDataset), type(b)
try:
    ds.batches(3, loader="tf")
    raise AssertionError("loader='tf' should fail without TensorFlow")
except zoo.ZooError:
    pass
print(json.dumps({{"batch": b[1].tolist(), "backend": keras.backend.backend(),
                  "tf": sys.modules.get("tensorflow") is not None}}))
"""
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["backend"] == backend and result["tf"] is False
    np.testing.assert_array_equal(np.array(result["batch"], dtype=np.float32), expected)


# --------------------------------------------------------------------------- audio I/O


def test_resampling_48k_stereo_sine(tmp_path, cache):
    sr_in, seconds = 48000, 1.0
    t = np.arange(int(sr_in * seconds)) / sr_in
    sine = np.sin(2 * np.pi * 1000 * t)
    stereo = np.stack([0.5 * sine, 0.3 * sine], axis=1)
    path = tmp_path / "sine" / "tone.wav"
    write_audio(path, stereo, sr_in)
    assert sf.info(str(path)).channels == 2

    y = load_audio(path, SR)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - SR * seconds) <= 1
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    freqs = np.fft.rfftfreq(len(y), 1 / SR)
    assert abs(freqs[np.argmax(spectrum)] - 1000) <= 1.0
    assert np.max(np.abs(y[1000:-1000])) == pytest.approx(0.4, abs=0.01)  # channel mean
    # the pipeline caches the same signal peak-normalised to 0.95
    ds = load_dataset(path.parent, SR, 4096, cache_dir=cache, progress=False, val_fraction=0)
    w = ds.waveform("tone.wav")
    assert np.max(np.abs(w)) == pytest.approx(0.95, abs=1e-6)
    np.testing.assert_allclose(w, y * (0.95 / np.max(np.abs(y))), atol=1e-6)
    assert np.max(np.abs(load_audio(path, SR, normalize=True))) == pytest.approx(0.95, abs=1e-6)


def test_write_audio_atomic_roundtrip(tmp_path):
    path = tmp_path / "deep" / "er" / "x.wav"
    y = np.linspace(-1, 1, 1000, dtype=np.float32)
    assert write_audio(path, y, 8000, subtype="FLOAT") == path
    back, sr = sf.read(str(path), dtype="float32")
    assert sr == 8000
    np.testing.assert_array_equal(back, y)
    write_audio(path, 2 * y, 8000)  # PCM_16 clips, replaces the file
    back, _ = sf.read(str(path), dtype="float32")
    assert np.max(back) <= 1.0 and len(back) == 1000
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.wav"]  # no temp files left


def test_load_audio_errors_name_the_file(tmp_path):
    bad = tmp_path / "garbage.wav"
    bad.write_bytes(b"RIFF" + os.urandom(200))
    with pytest.raises(AudioFileError, match="garbage.wav.*unreadable"):
        load_audio(bad, SR)
    with pytest.raises(AudioFileError, match="nothing.wav.*no such file"):
        load_audio(tmp_path / "nothing.wav", SR)
    write_audio(tmp_path / "zero.wav", np.zeros(100), SR)
    assert load_audio(tmp_path / "zero.wav", SR).shape == (100,)
    with pytest.raises(AudioFileError, match="zero.wav.*silent"):
        load_audio(tmp_path / "zero.wav", SR, normalize=True)


# --------------------------------------------------------------------------- cache


def test_cache_reused_and_invalidated_by_mtime(parallel_folder, cache, monkeypatch):
    calls = _decode_counter(monkeypatch)
    first = load_dataset(parallel_folder, SR, CROP, cache_dir=cache, progress=False)
    assert len(calls) == 12
    second = load_dataset(parallel_folder, SR, CROP, cache_dir=cache, progress=False)
    assert len(calls) == 12  # nothing decoded again
    np.testing.assert_array_equal(first.batch(0, 4), second.batch(0, 4))
    # another rate is another cache entry
    load_dataset(parallel_folder, 8000, 1024, cache_dir=cache, progress=False)
    assert len(calls) == 24

    target = parallel_folder / "a" / "clip2.wav"
    new = _noise(99, 0.6)
    write_audio(target, new, SR, subtype="FLOAT")
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    third = load_dataset(parallel_folder, SR, CROP, cache_dir=cache, progress=False)
    assert calls[24:] == ["clip2.wav"]
    w = third.waveform("a/clip2.wav")
    np.testing.assert_allclose(w, new * (0.95 / np.abs(new).max()), atol=1e-6)
    # cache files are complete, no temporary files left behind
    leftovers = [p for p in cache.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_progress_bar_only_when_decoding(parallel_folder, cache, capsys):
    load_dataset(parallel_folder, SR, CROP, cache_dir=cache, progress=True)
    assert "Decoding 12 audio files" in capsys.readouterr().out
    load_dataset(parallel_folder, SR, CROP, cache_dir=cache, progress=True)
    assert capsys.readouterr().out == ""


def test_cache_dir_from_environment(parallel_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "envcache"))
    load_dataset(parallel_folder, SR, CROP, progress=False)
    assert list((tmp_path / "envcache" / "decoded").rglob("*.f32"))


# --------------------------------------------------------------------------- bad input


@pytest.fixture
def messy_folder(tmp_path):
    root = tmp_path / "messy"
    for j in range(3):
        write_audio(root / f"good{j}.wav", _noise(j, 0.5), SR)
    (root / "garbage.wav").write_bytes(b"this is not audio at all" * 20)
    (root / "empty.wav").write_bytes(b"")
    sf.write(str(root / "noframes.wav"), np.zeros((0, 1)), SR)
    write_audio(root / "silent.wav", np.zeros(SR), SR)
    nan = _noise(7, 0.5)
    nan[100:200] = np.nan
    sf.write(str(root / "nan.wav"), nan, SR, subtype="FLOAT")
    write_audio(root / "short.wav", _noise(8, 0.05), SR)
    return root


BAD = {"garbage.wav": "unreadable", "empty.wav": "empty", "noframes.wav": "empty",
       "silent.wav": "silent", "nan.wav": "NaN", "short.wav": "too short"}


def _check_skip_warnings(record, root):
    messages = [str(w.message) for w in record if issubclass(w.category, SkippedAudioWarning)]
    for name, reason in BAD.items():
        about = [m for m in messages if name in m]
        assert len(about) == 1, (name, messages)
        assert str(root / name) in about[0] and reason in about[0]
    summary = [m for m in messages if m.startswith("Skipped")]
    assert len(summary) == 1 and f"Skipped {len(BAD)} of {len(BAD) + 3}" in summary[0]
    assert str(root) in summary[0]
    assert len(messages) == len(BAD) + 1


def test_bad_files_skipped_with_one_warning_each(messy_folder, cache, monkeypatch):
    calls = _decode_counter(monkeypatch)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ds = load_dataset(messy_folder, SR, 4000, cache_dir=cache, progress=False, val_fraction=0)
    _check_skip_warnings(record, messy_folder)
    assert ds.num_skipped == len(BAD)
    assert sorted(ds.files()) == ["good0.wav", "good1.wav", "good2.wav"]
    assert {name for name, _ in ds.skipped} == set(BAD)
    assert ds.batch(0, 4).shape == (4, 4000)
    # second load: the failures are cached too, yet still reported
    n = len(calls)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        load_dataset(messy_folder, SR, 4000, cache_dir=cache, progress=False, val_fraction=0)
    _check_skip_warnings(record, messy_folder)
    assert len(calls) == n


def test_no_usable_file_is_an_error_naming_the_folder(messy_folder, cache):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ZooError, match=str(messy_folder)):
            load_dataset(messy_folder, SR, 10 * SR, cache_dir=cache, progress=False)


def test_domain_without_usable_file_is_an_error(tmp_path, cache):
    root = tmp_path / "two"
    write_audio(root / "ok" / "x.wav", _noise(0, 0.5), SR)
    write_audio(root / "dead" / "x.wav", np.zeros(SR), SR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ZooError, match=f"{root / 'dead'}"):
            load_dataset(root, SR, CROP, cache_dir=cache, progress=False)


def test_missing_or_empty_folder(tmp_path, cache):
    with pytest.raises(ZooError, match="not found.*nowhere"):
        load_dataset(tmp_path / "nowhere", SR, CROP, cache_dir=cache)
    (tmp_path / "textonly").mkdir()
    (tmp_path / "textonly" / "readme.txt").write_text("hi")
    with pytest.raises(ZooError, match="No audio files found in .*textonly"):
        load_dataset(tmp_path / "textonly", SR, CROP, cache_dir=cache)
    with pytest.raises(ZooError, match="Unknown built-in dataset"):
        load_dataset("builtin:nothing", SR, CROP, cache_dir=cache)
