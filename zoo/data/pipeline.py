"""Audio folders -> on-disk cache of decoded waveforms -> random crops -> batches.

The flow:

1. :func:`load_dataset` scans a folder (or generates a built-in one), one
   domain per sub-folder, and reads an optional ``labels.csv``.
2. Every file is decoded once -- mono, resampled with soxr, peak-normalised to
   0.95 -- into a cache keyed by the file's absolute path, modification time,
   size and the sample rate. Later loads read the cache and decode nothing;
   touching a file invalidates its entry. Unusable files (unreadable, empty,
   silent, NaN/Inf, shorter than one crop) are skipped with one warning per
   file and a summary.
3. :meth:`AudioDataset.batch` draws random fixed-length crops; its output is a
   pure function of ``(seed, split, step)``. :meth:`AudioDataset.batches`
   serves those batches through ``tf.data`` when TensorFlow is importable, or
   through a ``keras.utils.PyDataset`` otherwise: the same seed gives the same
   batches either way.

TensorFlow is imported only when a ``tf.data`` pipeline is requested, so this
module works on JAX/PyTorch installs without it.
"""

import csv
import hashlib
import os
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from zoo.files import atomic_write_bytes
from zoo.data.audio import (
    PEAK_LEVEL,
    SILENCE_THRESHOLD,
    AUDIO_EXTENSIONS,
    audio_error,
    is_audio_file,
    load_audio,
)
from zoo.data.cache import cache_paths, cache_root, decoded_key
from zoo.errors import AudioFileError, ZooError

#: Waveforms are held in memory when their total size is below this many bytes
#: (override with ``ZOO_DATA_MEMORY_LIMIT``); larger datasets read each crop
#: from the cache file on disk. Both give identical batches.
DEFAULT_MEMORY_LIMIT = 4 * 2**30

_SPLITS = {"train": 1, "val": 2}


class SkippedAudioWarning(UserWarning):
    """An audio file was left out of a dataset; the message names it and says why."""


# --------------------------------------------------------------------------- scanning


def _walk_audio(folder):
    """Audio files under ``folder`` (recursive, hidden entries skipped), sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(Path(dirpath) / f for f in filenames if is_audio_file(f))
    return sorted(found)


def scan_folder(root):
    """Finds the domains of an audio folder.

    A folder holding audio files directly is one domain named after the folder
    (files in its sub-folders belong to it too). Otherwise each sub-folder that
    contains audio (at any depth) is a domain, in sorted order.

    Returns:
        list of ``(domain_name, domain_folder, [relative posix paths])``, the
        paths relative to ``root``.

    Raises:
        ZooError: the folder is missing or holds no audio file.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise ZooError(f"Audio folder not found: {root}")
    if not root.is_dir():
        raise ZooError(f"Expected a folder of audio files, got a file: {root}")
    root = root.resolve()

    def rel(p):
        return p.relative_to(root).as_posix()

    if any(p.is_file() and is_audio_file(p) for p in root.iterdir()):
        return [(root.name, root, [rel(p) for p in _walk_audio(root)])]
    domains = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = _walk_audio(sub)
        if files:
            domains.append((sub.name, sub, [rel(p) for p in files]))
    if not domains:
        exts = ", ".join(sorted(AUDIO_EXTENSIONS)[:8])
        raise ZooError(f"No audio files found in {root} (looked for {exts}, ...)")
    return domains


def read_labels(path):
    """Parses a ``labels.csv``: column ``file`` plus any other columns.

    Values that parse as int or float become numbers; empty cells become None;
    anything else stays a string.

    Returns:
        dict ``relative posix path -> {column: value}``.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            fields = [c.strip() for c in (reader.fieldnames or [])]
            if "file" not in fields:
                raise ZooError(f"{path}: labels file needs a 'file' column (found {fields})")
            out = {}
            for row in reader:
                row = {(k or "").strip(): v for k, v in row.items()}
                name = (row.pop("file") or "").strip()
                if not name:
                    continue
                key = Path(name).as_posix()
                while key.startswith("./"):
                    key = key[2:]
                out[key] = {k: _parse_value(v) for k, v in row.items() if k}
            return out
    except (OSError, csv.Error, UnicodeDecodeError) as err:
        raise ZooError(f"{path}: cannot read labels ({err})") from None


def _parse_value(text):
    if text is None:
        return None
    text = text.strip()
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


# --------------------------------------------------------------------------- cache


def _decode_file(path, sample_rate):
    """Decodes one file for the cache: mono, resampled, peak 0.95 (raises AudioFileError)."""
    y = load_audio(path, sample_rate)
    peak = float(np.max(np.abs(y)))
    if peak < SILENCE_THRESHOLD:
        raise audio_error(path, "silent", f"silent (peak {peak:.1e}, below {SILENCE_THRESHOLD:g})")
    return (y * np.float32(PEAK_LEVEL / peak)).astype("<f4")


def _decode_to_cache(path, sample_rate, wave_file, skip_file):
    """Decodes ``path`` into ``wave_file``; on failure records the reason in ``skip_file``."""
    try:
        y = _decode_file(path, sample_rate)
    except AudioFileError as err:
        kind = getattr(err, "kind", "unreadable")
        problem = getattr(err, "problem", str(err))
        atomic_write_bytes(skip_file, lambda t: Path(t).write_text(f"{kind}\t{problem}"))
        return None
    atomic_write_bytes(wave_file, lambda t: y.tofile(t))
    return wave_file


def _read_skip(skip_file):
    kind, _, problem = skip_file.read_text().partition("\t")
    return kind, problem


# --------------------------------------------------------------------------- dataset


class AudioDataset:
    """Decoded audio files with seeded random crops.

    Built by :func:`load_dataset`; see there for the arguments.

    Attributes:
        domains: domain names (sorted sub-folder names, or the folder's name).
        sample_rate, crop_length, source: as given to :func:`load_dataset`.
        root: the folder the files were read from.
        labels: ``relative path -> {column: value}`` from ``labels.csv`` (``{}``
            when there is none), for usable files only.
        num_skipped: how many files were left out; ``skipped`` lists
            ``(relative path, reason)``.
        seed: the default seed of :meth:`batch` and of the train/val split.
    """

    def __init__(self, *, source, root, sample_rate, crop_length, domains, entries,
                 labels, skipped, val_fraction, seed, memory_limit=None):
        self.source = source
        self.root = Path(root)
        self.sample_rate = int(sample_rate)
        self.crop_length = int(crop_length)
        self.domains = list(domains)
        self.labels = labels
        self.skipped = list(skipped)
        self.num_skipped = len(self.skipped)
        self.val_fraction = float(val_fraction)
        self.seed = int(seed)

        # entries: list of (relative path, domain index, within-domain key, cache file, length)
        entries = sorted(entries, key=lambda e: (e[1], e[2]))
        self._paths = [e[0] for e in entries]
        self._index = {p: k for k, p in enumerate(self._paths)}
        self._domain = np.array([e[1] for e in entries], dtype=np.int32)
        self._keys = [e[2] for e in entries]
        self._cache_files = [str(e[3]) for e in entries]
        self._lengths = np.array([e[4] for e in entries], dtype=np.int64)

        self._is_val = self._split_by_file()

        if memory_limit is None:
            memory_limit = int(os.environ.get("ZOO_DATA_MEMORY_LIMIT", DEFAULT_MEMORY_LIMIT))
        self.in_memory = int(self._lengths.sum()) * 4 <= memory_limit
        self._waves = (
            [np.fromfile(f, dtype="<f4") for f in self._cache_files] if self.in_memory else None
        )
        self._pools = {}

    # ----------------------------------------------------------------- split

    def _split_by_file(self):
        """Marks validation files: per domain, the ``round(val_fraction * n)`` files
        whose within-domain name hashes lowest under the seed.

        Ranking by name means parallel domains (same file names) put the same
        names in validation; each domain keeps at least one training file and
        gets at least one validation file when it has two or more.
        """
        is_val = np.zeros(len(self._paths), dtype=bool)
        if self.val_fraction <= 0:
            return is_val

        def rank(key):
            return hashlib.blake2b(f"{self.seed}\0{key}".encode(), digest_size=8).digest()

        for d in range(len(self.domains)):
            idx = np.flatnonzero(self._domain == d)
            n = len(idx)
            n_val = int(round(self.val_fraction * n))
            n_val = max(n_val, 1 if n >= 2 else 0)
            n_val = min(n_val, n - 1)
            order = sorted(idx, key=lambda k: rank(self._keys[k]))
            is_val[order[:n_val]] = True
        return is_val

    def _select(self, split, domain=None):
        if split not in ("train", "val", "all"):
            raise ValueError(f"split must be 'train', 'val' or 'all', got {split!r}")
        mask = np.ones(len(self._paths), dtype=bool)
        if split != "all":
            mask = self._is_val if split == "val" else ~self._is_val
        if domain is not None:
            mask = mask & (self._domain == self._domain_index(domain))
        return np.flatnonzero(mask)

    def _domain_index(self, domain):
        if isinstance(domain, (int, np.integer)):
            if not 0 <= domain < len(self.domains):
                raise ValueError(f"domain index {domain} out of range for {self.domains}")
            return int(domain)
        try:
            return self.domains.index(domain)
        except ValueError:
            raise ValueError(f"unknown domain {domain!r}; domains are {self.domains}") from None

    def files(self, split="train", domain=None):
        """Relative paths of the usable files in ``split`` ("train", "val" or "all"),
        optionally of one domain (name or index)."""
        return [self._paths[k] for k in self._select(split, domain)]

    # ----------------------------------------------------------------- reading

    def _read(self, k, start, n):
        if self._waves is not None:
            return self._waves[k][start:start + n]
        fd = os.open(self._cache_files[k], os.O_RDONLY)
        try:
            buf = os.pread(fd, 4 * n, 4 * int(start))
        finally:
            os.close(fd)
        return np.frombuffer(buf, dtype="<f4")

    def waveform(self, relative_path):
        """The whole cached (mono, resampled, normalised) float32 waveform of a file."""
        key = Path(relative_path).as_posix()
        if key not in self._index:
            raise KeyError(f"{relative_path!r} is not a usable file of {self.root}")
        k = self._index[key]
        return np.array(self._read(k, 0, int(self._lengths[k])), dtype=np.float32)

    def _pool(self, split, domain):
        """(file indices, cumulative crop-position counts) for sampling; cached."""
        cache_key = (split, domain)
        if cache_key not in self._pools:
            idx = self._select(split, domain)
            if len(idx) == 0:
                where = f" of domain {self.domains[domain]!r}" if domain is not None else ""
                raise ZooError(
                    f"No {split} files{where} in {self.root} "
                    f"({len(self._paths)} usable files, val_fraction={self.val_fraction})"
                )
            weights = self._lengths[idx] - self.crop_length + 1
            self._pools[cache_key] = (idx, np.cumsum(weights))
        return self._pools[cache_key]

    def _draw(self, rng, pool, n):
        idx, cum = pool
        pick = np.searchsorted(cum, rng.random(n) * cum[-1], side="right")
        pick = np.minimum(pick, len(idx) - 1)
        files = idx[pick]
        starts = rng.integers(0, self._lengths[files] - self.crop_length + 1)
        out = np.empty((n, self.crop_length), dtype=np.float32)
        for j, (k, s) in enumerate(zip(files, starts)):
            out[j] = self._read(k, s, self.crop_length)
        return out, self._domain[files]

    # ----------------------------------------------------------------- batches

    def batch(self, i, batch_size, *, split="train", seed=None, paired=False, with_domain=False,
              shard=None):
        """Batch number ``i``: random crops, a pure function of ``(seed, split, i)``.

        Crops are drawn uniformly over all audio of the split (a file is picked
        with probability proportional to its number of crop positions, then a
        start position uniformly), always lying entirely inside the file.

        Args:
            i: step number (>= 0).
            batch_size: crops per batch.
            split: "train" or "val".
            seed: defaults to the dataset's seed.
            paired: return one ``[batch_size, crop_length]`` array per domain (a
                tuple, in ``domains`` order), each drawn independently from that
                domain.
            with_domain: return ``(crops, domain_index)`` with int32 domain indices;
                ``"input"``: ``((crops, domain_index),)``, the pair as the model's input
                (Keras then passes no target).
            shard: ``(index, count)``: only this process's rows of the global batch
                (``batch_size / count`` of them) in multi-process training; the
                global batch is the one a single process draws.

        Returns:
            float32 ``[batch_size, crop_length]``; a tuple of those when
            ``paired``; ``(crops, int32 [batch_size])`` when ``with_domain``.
        """
        if paired and with_domain:
            raise ValueError("paired=True and with_domain=True cannot be combined")
        if split not in _SPLITS:
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        seed = self.seed if seed is None else int(seed)
        rng = np.random.default_rng([seed, _SPLITS[split], int(i)])
        if shard is not None:
            index, count = shard
            rows = slice(index * batch_size // count, (index + 1) * batch_size // count)
            full = self.batch(i, batch_size, split=split, seed=seed, paired=paired,
                              with_domain=with_domain)
            if with_domain == "input":
                return ((full[0][0][rows], full[0][1][rows]),)
            return tuple(a[rows] for a in full) if isinstance(full, tuple) else full[rows]
        if paired:
            return tuple(
                self._draw(rng, self._pool(split, d), batch_size)[0]
                for d in range(len(self.domains))
            )
        crops, dom = self._draw(rng, self._pool(split, None), batch_size)
        if with_domain == "input":
            return ((crops, dom.astype(np.int32)),)
        if with_domain:
            return crops, dom.astype(np.int32)
        return crops

    def batches(self, batch_size, *, split="train", start_step=0, num_steps=None, seed=None,
                paired=False, with_domain=False, loader="auto", workers=1, shard=None):
        """A stream of :meth:`batch` ``(start_step + k)`` for ``k = 0, 1, ...``.

        Args:
            batch_size, split, seed, paired, with_domain, shard: as for :meth:`batch`.
            start_step: first step number (resume a run at its step).
            num_steps: number of batches; None = endless (give ``fit`` a
                ``steps_per_epoch``).
            loader: "tf" (``tf.data`` with a parallel map and prefetch), "py"
                (``keras.utils.PyDataset``) or "auto" ("tf" when TensorFlow can
                be imported).
            workers: PyDataset worker threads (ignored by tf.data, which tunes
                its own parallelism). One is best for in-memory data: a batch
                is a few array slices, cheaper than Keras' thread hand-off
                (see benchmarks/bench_pipeline.py); more can help when crops
                are read from disk (datasets above ``memory_limit``).

        Returns:
            A ``tf.data.Dataset`` or a ``keras.utils.PyDataset``, both usable
            directly by ``model.fit``. Pass ``shuffle=False`` to ``fit`` with a
            finite PyDataset to keep the step order (the batches are random
            already).
        """
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if int(start_step) < 0:
            raise ValueError(f"start_step must be >= 0, got {start_step}")
        if num_steps is not None and int(num_steps) < 0:
            raise ValueError(f"num_steps must be >= 0 or None, got {num_steps}")
        if paired and with_domain:
            raise ValueError("paired=True and with_domain=True cannot be combined")
        if split not in _SPLITS:
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        # Fail here, not in a worker thread, when the split is empty.
        for d in (range(len(self.domains)) if paired else [None]):
            self._pool(split, d)
        kwargs = dict(batch_size=int(batch_size), split=split,
                      seed=self.seed if seed is None else int(seed),
                      paired=paired, with_domain=with_domain)
        if shard is not None:
            index, count = (int(v) for v in shard)
            if not 0 <= index < count or int(batch_size) % count:
                raise ValueError(f"shard {shard!r} does not split batch_size {batch_size}")
            kwargs["shard"] = (index, count)
        if loader == "auto":
            loader = "tf" if _import_tensorflow() is not None else "py"
        if loader == "tf":
            tf = _import_tensorflow()
            if tf is None:
                raise ZooError("loader='tf' needs TensorFlow, which cannot be imported; use loader='py'")
            return self._tf_batches(tf, int(start_step), num_steps, kwargs)
        if loader == "py":
            cls = _py_dataset_class()
            return cls(self, int(start_step), num_steps, kwargs, workers=int(workers))
        raise ValueError(f"loader must be 'auto', 'tf' or 'py', got {loader!r}")

    def _output_layout(self, kwargs):
        """dtypes of the flat outputs of :meth:`batch`, and how to pack them."""
        if kwargs["paired"]:
            return ["float32"] * len(self.domains), "tuple"
        if kwargs["with_domain"] == "input":
            return ["float32", "int32"], "input"
        if kwargs["with_domain"]:
            return ["float32", "int32"], "tuple"
        return ["float32"], "single"

    def _tf_batches(self, tf, start_step, num_steps, kwargs):
        dtypes, packing = self._output_layout(kwargs)
        bs, crop = kwargs["batch_size"], self.crop_length
        if kwargs.get("shard"):
            bs //= kwargs["shard"][1]
        shapes = [[bs, crop] if d == "float32" else [bs] for d in dtypes]

        def np_batch(i):
            out = self.batch(int(i), **kwargs)
            if packing == "input":
                out = out[0]
            return list(out) if isinstance(out, tuple) else [out]

        def fn(i):
            outs = tf.numpy_function(np_batch, [i], [getattr(tf, d) for d in dtypes], stateful=False)
            for t, s in zip(outs, shapes):
                t.set_shape(s)
            if packing == "input":
                return (tuple(outs),)
            return tuple(outs) if packing == "tuple" else outs[0]

        if num_steps is None:
            steps = tf.data.Dataset.counter(start=start_step, dtype=tf.int64)
        else:
            steps = tf.data.Dataset.range(start_step, start_step + int(num_steps))
        ds = steps.map(fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return ds.prefetch(tf.data.AUTOTUNE)

    # ----------------------------------------------------------------- fixed clips

    def clips(self, n, *, split="val", seed=0, domain=None):
        """``n`` fixed crops for samples and evaluation, float32 ``[n, crop_length]``.

        Files are taken in turn in order of their within-domain name (then
        domain), each crop at a seeded position (a fraction of the file's crop
        range that depends only on ``seed`` and the clip number). So for
        parallel domains -- same names, same lengths, as in ``builtin:timbre``
        -- ``clips(n, domain=a)`` and ``clips(n, domain=b)`` are aligned pairs.
        Falls back to the training split when ``split="val"`` is empty.
        """
        idx = self._select(split, domain)
        if len(idx) == 0 and split == "val":
            idx = self._select("train", domain)
        if len(idx) == 0:
            raise ZooError(f"No files to draw clips from in {self.root}")
        idx = sorted(idx, key=lambda k: (self._keys[k], int(self._domain[k])))
        fractions = np.random.default_rng([int(seed), 0x636C6970]).random(int(n))
        out = np.empty((int(n), self.crop_length), dtype=np.float32)
        for j in range(int(n)):
            k = idx[j % len(idx)]
            span = int(self._lengths[k]) - self.crop_length + 1
            out[j] = self._read(k, int(fractions[j] * span), self.crop_length)
        return out

    def __len__(self):
        return len(self._paths)

    def __repr__(self):
        return (
            f"AudioDataset(source={self.source!r}, domains={self.domains}, "
            f"files={len(self._paths)} ({int(self._is_val.sum())} val), skipped={self.num_skipped}, "
            f"sample_rate={self.sample_rate}, crop_length={self.crop_length})"
        )


# --------------------------------------------------------------------------- loaders


def _import_tensorflow():
    """TensorFlow, or None when it cannot be imported."""
    try:
        import tensorflow as tf
    except ImportError:
        return None
    return tf


_PY_DATASET_CLASS = None


def _py_dataset_class():
    """Defines the PyDataset subclass on first use (keeps ``keras`` out of import time)."""
    global _PY_DATASET_CLASS
    if _PY_DATASET_CLASS is None:
        import keras

        class CropBatches(keras.utils.PyDataset):
            """``dataset.batch(start_step + k)`` for k in range(num_steps) (endless if None)."""

            def __init__(self, dataset, start_step, num_steps, batch_kwargs, workers=1):
                super().__init__(workers=workers, use_multiprocessing=False,
                                 max_queue_size=max(10, 2 * workers))
                self.dataset = dataset
                self.start_step = start_step
                self.steps = num_steps
                self.batch_kwargs = batch_kwargs

            @property
            def num_batches(self):
                return None if self.steps is None else int(self.steps)

            def __getitem__(self, index):
                if self.steps is not None and not 0 <= index < self.steps:
                    raise IndexError(f"batch index {index} out of range(0, {self.steps})")
                return self.dataset.batch(self.start_step + int(index), **self.batch_kwargs)

        CropBatches.__qualname__ = "CropBatches"
        _PY_DATASET_CLASS = CropBatches
    return _PY_DATASET_CLASS


def load_dataset(source, sample_rate, crop_length, *, val_fraction=0.1, seed=0,
                 cache_dir=None, progress=True, memory_limit=None):
    """Loads an audio dataset for training.

    Args:
        source: ``"builtin:timbre"``, ``"builtin:vowels"`` (generated on first
            use, see :mod:`zoo.data.builtin`) or a folder. A folder holding audio
            files directly is one domain named after it; otherwise each
            sub-folder with audio is a domain (sorted names). An optional
            ``labels.csv`` at the root has a ``file`` column (path relative to
            the root) and any other columns.
        sample_rate: rate in Hz every file is resampled to.
        crop_length: samples per crop; shorter files are skipped.
        val_fraction: share of files (per domain) held out for validation;
            parallel domains hold out the same file names.
        seed: seed of the split and default seed of the batches.
        cache_dir: cache folder (default ``$ZOO_CACHE_DIR`` or
            ``~/.cache/audio-zoo``).
        progress: show a progress bar while decoding new files.
        memory_limit: bytes of decoded audio held in memory; larger datasets
            read crops from the cache files (default 4 GiB or
            ``$ZOO_DATA_MEMORY_LIMIT``).

    Returns:
        An :class:`AudioDataset`.

    Raises:
        ZooError: missing folder, no audio, no usable file, bad labels file.

    Example:
        >>> ds = load_dataset("builtin:timbre", 16000, 16384)
        >>> x = ds.batch(0, 16)                       # float32 [16, 16384]
        >>> a, b = ds.batch(0, 16, paired=True)       # one array per domain
        >>> model.fit(ds.batches(16), steps_per_epoch=100)
    """
    sample_rate = int(sample_rate)
    crop_length = int(crop_length)
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if crop_length <= 0:
        raise ValueError(f"crop_length must be positive, got {crop_length}")
    if not 0 <= float(val_fraction) < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    cache = cache_root(cache_dir)

    if isinstance(source, str) and source.startswith("builtin:"):
        from zoo.data.builtin import builtin_path

        root = builtin_path(source.split(":", 1)[1], cache_dir=cache)
    else:
        root = Path(source)
    domains = scan_folder(root)
    root = Path(root).expanduser().resolve()

    # Look up the cache; decode what is missing.
    jobs = []  # (relative path, domain index, key, absolute path, wave file, skip file)
    for d, (_, folder, rels) in enumerate(domains):
        for rel in rels:
            path = root / rel
            key = Path(rel).relative_to(folder.relative_to(root)).as_posix()
            wave_file, skip_file = cache_paths(cache, decoded_key(path, sample_rate))
            jobs.append((rel, d, key, path, wave_file, skip_file))
    todo = [j for j in jobs if not j[4].exists() and not j[5].exists()]
    if todo:
        _decode_all(todo, sample_rate, progress)

    entries, skipped = [], []
    for rel, d, key, path, wave_file, skip_file in jobs:
        if wave_file.exists():
            length = wave_file.stat().st_size // 4
            if length >= crop_length:
                entries.append((rel, d, key, wave_file, length))
                continue
            kind, problem = "too short", (
                f"too short ({length} samples at {sample_rate} Hz, "
                f"crop_length is {crop_length})")
        else:
            kind, problem = _read_skip(skip_file)
        skipped.append((rel, kind, problem))
        warnings.warn(f"Skipping audio file {path}: {problem}", SkippedAudioWarning, stacklevel=2)

    if skipped:
        kinds = Counter(k for _, k, _ in skipped)
        detail = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        warnings.warn(
            f"Skipped {len(skipped)} of {len(jobs)} audio files in {root} ({detail})",
            SkippedAudioWarning, stacklevel=2)
    if not entries:
        raise ZooError(
            f"No usable audio file in {root}: all {len(jobs)} files were skipped "
            f"(crop_length {crop_length} at {sample_rate} Hz)")
    used = {e[1] for e in entries}
    for d, (name, folder, _) in enumerate(domains):
        if d not in used:
            raise ZooError(f"No usable audio file in {folder} (domain {name!r}): all were skipped")

    labels = {}
    labels_file = root / "labels.csv"
    if labels_file.is_file():
        all_labels = read_labels(labels_file)
        usable = {e[0] for e in entries}
        labels = {k: v for k, v in all_labels.items() if k in usable}
    return AudioDataset(
        source=str(source), root=root, sample_rate=sample_rate, crop_length=crop_length,
        domains=[name for name, _, _ in domains], entries=entries, labels=labels,
        skipped=[(r, p) for r, _, p in skipped], val_fraction=val_fraction, seed=seed,
        memory_limit=memory_limit)


def _decode_all(todo, sample_rate, progress):
    bar = None
    if progress:
        import keras

        print(f"Decoding {len(todo)} audio files at {sample_rate} Hz into the cache")
        bar = keras.utils.Progbar(len(todo), unit_name="file")
    workers = max(1, min(8, os.cpu_count() or 1, len(todo)))

    def work(job):
        _decode_to_cache(job[3], sample_rate, job[4], job[5])

    if workers == 1:
        for n, job in enumerate(todo, 1):
            work(job)
            if bar is not None:
                bar.update(n)
        return
    with ThreadPoolExecutor(workers) as pool:
        for n, _ in enumerate(pool.map(work, todo), 1):
            if bar is not None:
                bar.update(n)
