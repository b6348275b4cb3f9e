"""Shared helpers of the benchmark scripts: timing, compilation, device description."""
import contextlib
import os
import platform
import statistics
import time
from pathlib import Path

import keras

BACKEND = keras.backend.backend()


def device_description():
    """CPU model and logical CPU count (GPU name when a backend sees one)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs"


def block(x):
    """Wait for the result (JAX dispatches asynchronously) and return it as numpy."""
    return keras.ops.convert_to_numpy(x)


def compiled(fn):
    """The backend's graph compiler around a pure tensor function (None for torch)."""
    if BACKEND == "jax":
        import jax

        return jax.jit(fn)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, reduce_retracing=True)
    return None


def no_grad():
    if BACKEND == "torch":
        import torch

        return torch.no_grad()
    return contextlib.nullcontext()


def median_time(fn, runs, warmup=True):
    """Median wall time of ``runs`` calls of ``fn`` (after one warm-up call)."""
    if warmup:
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
