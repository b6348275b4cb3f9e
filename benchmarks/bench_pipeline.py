"""Throughput of the data pipeline: crops per second on builtin:timbre.

Compares, in one run and on the same files:
  * ``tf.data``   -- ``AudioDataset.batches(loader="tf")`` (parallel map + prefetch),
  * ``PyDataset`` -- ``AudioDataset.batches(loader="py")``, indexed directly (what
                     ``fit`` does with one worker) and, when available, through
                     Keras' threaded enqueuer with several workers,
  * ``librosa``   -- the reference: per batch, ``librosa.load(path, sr=...)``
                     of each crop's file, then a random crop.

Each figure is the median of several timed runs after a warm-up; ratios are
against the librosa loop measured in the same run. ``run(quick)`` is the suite's entry point
(``python -m benchmarks``).

Usage:
    KERAS_BACKEND=jax python benchmarks/bench_pipeline.py [--quick] [--steps 40] [--runs 5] \
        [--json out.json]
"""

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks._common import median_time, run_device, script_report  # noqa: E402
from benchmarks._records import record  # noqa: E402


def run(quick=False, batch_size=16, crop_length=16384, sample_rate=16000, steps=None, runs=None,
        workers=4, cache_dir=None):
    """Records: crops/s of each loader against the librosa loop measured in the same run.

    Quick mode: 20 batches per run, 3 runs; full mode: 40 batches, 5 runs (``steps``/``runs``
    override either). Each loader's iterator is built once, as in training; one warm-up run.
    """
    import librosa

    from zoo.data import load_dataset

    steps = steps or (20 if quick else 40)
    runs = runs or (3 if quick else 5)
    bs, crop = batch_size, crop_length
    ds = load_dataset("builtin:timbre", sample_rate, crop, cache_dir=cache_dir, progress=False)
    files = [ds.root / f for f in ds.files("train")]
    total = steps * (runs + 1)  # warm-up + timed runs, from one iterator

    # -- librosa reference: decode every crop's file at every step
    def librosa_batches():
        rng = np.random.default_rng(0)
        for _ in range(total):
            batch = np.empty((bs, crop), dtype=np.float32)
            for j in range(bs):
                y, _ = librosa.load(files[rng.integers(len(files))], sr=sample_rate, mono=True)
                s = rng.integers(0, len(y) - crop + 1)
                batch[j] = y[s:s + crop]
            yield batch

    # -- PyDataset indexed in the calling thread (what fit does with one worker)
    def py_direct():
        data = ds.batches(bs, num_steps=total, loader="py")
        return (data[k] for k in range(total))

    methods = {"PyDataset (direct)": py_direct}

    # -- PyDataset through Keras' threaded enqueuer (what fit uses with workers > 1)
    try:
        from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

        def py_workers():
            data = ds.batches(bs, num_steps=total, loader="py", workers=workers)
            return PyDatasetAdapter(data, shuffle=False).get_numpy_iterator()

        methods[f"PyDataset ({workers} worker threads)"] = py_workers
    except ImportError:
        pass

    # -- tf.data
    try:
        import tensorflow as tf  # noqa: F401

        def tf_data():
            return iter(ds.batches(bs, num_steps=total, loader="tf"))

        methods["tf.data"] = tf_data
    except ImportError:
        print("TensorFlow not importable: tf.data skipped")

    def crops_per_s(make):
        iterator = make()  # built once, as in training; the warm-up run is not timed

        def consume():
            for _ in range(steps):
                next(iterator)

        consume()  # one warm-up run (a loader has no compiled tiers to warm up)
        return bs * steps / median_time(consume, runs, warmup=False)

    ref = crops_per_s(librosa_batches)
    settings = {"dataset": "builtin:timbre", "batch_size": bs, "crop_length": crop,
                "sample_rate": sample_rate, "steps_per_run": steps, "runs": runs,
                "files": len(files), "in_memory": ds.in_memory}
    return [record(f"data pipeline: {name}", crops_per_s(make), "crops/s", reference=ref,
                   reference_name="librosa.load loop", settings=settings)
            for name, make in methods.items()]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 batches per run, 3 runs")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--crop-length", type=int, default=16384)
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--steps", type=int, default=None, help="batches per timed run (40)")
    parser.add_argument("--runs", type=int, default=None, help="timed runs (5)")
    parser.add_argument("--workers", type=int, default=4, help="PyDataset enqueuer threads")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--json", default=None, help="also write the records to this file")
    args = parser.parse_args(argv)
    print(f"data pipeline on builtin:timbre; {run_device()}", flush=True)
    records = run(args.quick, args.batch_size, args.crop_length, args.sample_rate, args.steps,
                  args.runs, args.workers, args.cache_dir)
    return script_report(records, "pipeline", args.quick, args.json)


if __name__ == "__main__":
    main()
