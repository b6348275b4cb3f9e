"""Throughput of the data pipeline: crops per second on builtin:timbre.

Compares, in one run and on the same files:
  * ``tf.data``   -- ``AudioDataset.batches(loader="tf")`` (parallel map + prefetch),
  * ``PyDataset`` -- ``AudioDataset.batches(loader="py")``, indexed directly (what
                     ``fit`` does with one worker) and, when available, through
                     Keras' threaded enqueuer with several workers,
  * ``librosa``   -- the reference: per batch, ``librosa.load(path, sr=...)``
                     of each crop's file, then a random crop.

Each figure is the median of several timed runs after a warm-up; ratios are
against the librosa loop measured in the same run.

Usage:
    KERAS_BACKEND=jax python benchmarks/bench_pipeline.py [--steps 40] [--runs 5] [--json out.json]
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks._common import device_description  # noqa: E402


def timed(fn, runs):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--crop-length", type=int, default=16384)
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--steps", type=int, default=40, help="batches per timed run")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=4, help="PyDataset enqueuer threads")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)

    import keras
    import librosa

    from zoo.data import load_dataset

    bs, crop, steps = args.batch_size, args.crop_length, args.steps
    ds = load_dataset("builtin:timbre", args.sample_rate, crop, cache_dir=args.cache_dir)
    files = [ds.root / f for f in ds.files("train")]
    results = {}

    total = steps * (args.runs + 1)  # warm-up + timed runs, from one iterator

    # -- librosa reference: decode every crop's file at every step
    def librosa_batches():
        rng = np.random.default_rng(0)
        for _ in range(total):
            batch = np.empty((bs, crop), dtype=np.float32)
            for j in range(bs):
                y, _ = librosa.load(files[rng.integers(len(files))], sr=args.sample_rate, mono=True)
                s = rng.integers(0, len(y) - crop + 1)
                batch[j] = y[s:s + crop]
            yield batch

    # -- PyDataset indexed in the calling thread (what fit does with one worker)
    def py_direct():
        data = ds.batches(bs, num_steps=total, loader="py")
        return (data[k] for k in range(total))

    methods = {"librosa.load loop": librosa_batches, "PyDataset (direct)": py_direct}

    # -- PyDataset through Keras' threaded enqueuer (what fit uses with workers > 1)
    try:
        from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

        def py_workers():
            data = ds.batches(bs, num_steps=total, loader="py", workers=args.workers)
            return PyDatasetAdapter(data, shuffle=False).get_numpy_iterator()

        methods[f"PyDataset ({args.workers} worker threads)"] = py_workers
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

    for name, make in methods.items():
        iterator = make()  # built once, as in training; the warm-up run is not timed

        def consume():
            for _ in range(steps):
                next(iterator)

        consume()
        median, times = timed(consume, args.runs)
        results[name] = {"crops_per_s": bs * steps / median,
                         "runs_s": [round(t, 4) for t in times]}

    ref = results["librosa.load loop"]["crops_per_s"]
    info = {
        "dataset": "builtin:timbre", "batch_size": bs, "crop_length": crop,
        "sample_rate": args.sample_rate, "steps_per_run": steps, "runs": args.runs,
        "files": len(files), "in_memory": ds.in_memory,
        "keras_backend": keras.backend.backend(), "keras": keras.__version__,
        "device": device_description(), "python": platform.python_version(),
    }
    print(f"data pipeline on {info['dataset']}: batch {bs} x {crop} samples at "
          f"{args.sample_rate} Hz; median of {args.runs} runs x {steps} batches")
    print(f"backend {info['keras_backend']}, device: {info['device']}")
    print(f"{'method':<32}{'crops/s':>12}{'x librosa':>12}")
    for name, r in results.items():
        r["ratio_vs_librosa"] = r["crops_per_s"] / ref
        print(f"{name:<32}{r['crops_per_s']:>12.0f}{r['ratio_vs_librosa']:>12.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"info": info, "results": results}, indent=2))
    return results


if __name__ == "__main__":
    main()
