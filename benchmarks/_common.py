"""Shared helpers of the benchmark scripts (they import Keras): timing, compilation, device
description, peak memory, torch threads, and completing and reporting records."""
import contextlib
import os
import statistics
import time
from pathlib import Path

import keras

from benchmarks._records import cpu_name, environment, text_table, usable_cpus
from zoo.files import atomic_write_text

BACKEND = keras.backend.backend()


def device_description():
    """CPU model and logical CPU count (GPU name when a backend sees one)."""
    gpu = gpu_name()
    cpu = f"{cpu_name()}, {os.cpu_count()} logical CPUs"
    return f"{gpu} (host: {cpu})" if gpu else cpu


def gpu_name():
    """Name of the first GPU the current backend computes on, or None on CPU."""
    try:
        if BACKEND == "torch":
            import torch

            return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        if BACKEND == "jax":
            import jax

            dev = jax.devices()[0]
            return dev.device_kind if dev.platform == "gpu" else None
        if BACKEND == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if gpus:
                return tf.config.experimental.get_device_details(gpus[0]).get("device_name",
                                                                              gpus[0].name)
    except Exception:  # a broken driver must not stop a CPU benchmark
        return None
    return None


def backend_version():
    """Version of the backend library (tensorflow, jax or torch)."""
    import importlib

    return importlib.import_module(BACKEND).__version__


class PeakMemory:
    """Peak memory over a ``with`` block, in MiB, above the level at entry.

    ``host_mib``: the process's resident-set high-water mark (Linux ``VmHWM``, reset at entry
    through ``/proc/self/clear_refs``) minus its RSS at entry. Where the reset is not possible it
    falls back to the ``resource.getrusage`` high-water mark, which can only show peaks above
    every earlier one (then ``host_exact`` is False). ``device_mib``: the backend's GPU peak
    allocation above the allocation at entry, when computing on a GPU (else None; JAX cannot
    reset its peak, so there it is the peak since the process started, above the entry level).
    The host figure depends on what ran before in the process (memory freed earlier is reused).
    """

    def __enter__(self):
        self.host_exact = _reset_hwm()
        self._rss0 = _status_kib("VmRSS")
        self._hwm0 = None if self.host_exact else _maxrss_kib()
        self._dev0 = _device_bytes(reset=True)
        return self

    def __exit__(self, *exc):
        if self.host_exact:
            peak = _status_kib("VmHWM")
        else:
            peak = max(_maxrss_kib(), self._rss0 or 0)
        self.host_mib = max(0.0, (peak - (self._rss0 or 0)) / 1024.0)
        end = _device_bytes(reset=False)
        self.device_mib = (None if end is None or self._dev0 is None
                           else max(0.0, (end[1] - self._dev0[0]) / 2 ** 20))
        return False


def _status_kib(key):
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def _reset_hwm():
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _status_kib("VmHWM") is not None


def _maxrss_kib():
    import resource

    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _device_bytes(reset):
    """(bytes in use, peak bytes) on the first GPU, resetting the peak where the backend can;
    None on CPU or when the backend keeps no statistics."""
    if gpu_name() is None:
        return None
    try:
        if BACKEND == "torch":
            import torch

            if reset:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            return torch.cuda.memory_allocated(), torch.cuda.max_memory_allocated()
        if BACKEND == "jax":
            import jax

            stats = jax.devices()[0].memory_stats() or {}
            return stats.get("bytes_in_use", 0), stats.get("peak_bytes_in_use", 0)
        if BACKEND == "tensorflow":
            import tensorflow as tf

            if reset:
                tf.config.experimental.reset_memory_stats("GPU:0")
            info = tf.config.experimental.get_memory_info("GPU:0")
            return info["current"], info["peak"]
    except Exception:
        return None
    return None


def set_torch_threads(threads=None):
    """On torch, ``torch.set_num_threads`` (default: the CPUs this process may use, so that
    ``taskset -c 1`` gives one thread instead of OpenMP threads spin-waiting on a shared core);
    returns the thread count in use (None on other backends)."""
    if BACKEND != "torch":
        return None
    import torch

    torch.set_num_threads(int(threads or usable_cpus()))
    return torch.get_num_threads()


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


#: untimed calls before a measurement: the steady state. JAX's ``@inference`` compiles a
#: call shape's faster (Winograd) version on its third call (``zoo/engine/backend/jax.py``).
WARM_UP_CALLS = 3


def median_time(fn, runs, warmup=True):
    """Median wall time of ``runs`` calls of ``fn`` (after :data:`WARM_UP_CALLS` warm-up
    calls)."""
    for _ in range(WARM_UP_CALLS if warmup else 0):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def tf_references(quick):
    """Whether to measure raw-TensorFlow references (bench_travelgan's MelGAN-VC) here: under any
    Keras backend in full mode, only under TensorFlow in quick mode (loading and tracing them
    costs about as much as the quick measurement they serve)."""
    return not quick or BACKEND == "tensorflow"


TF_REFERENCE_SKIPPED = "quick mode measures the TensorFlow reference in the tensorflow run only"


def run_device():
    """The device description records carry: the machine and the CPUs this process may use."""
    return f"{device_description()}; {usable_cpus()} CPUs usable by this process"


def finish(records, benchmark, quick):
    """Complete records in place with the suite item's name, the environment and (torch) the
    thread count in their settings; returns them."""
    env = environment(BACKEND, backend_version(), keras.__version__, run_device(), quick)
    threads = None
    if BACKEND == "torch":
        import torch

        threads = torch.get_num_threads()
    for r in records:
        r.setdefault("benchmark", benchmark)
        r.update(env)
        if threads is not None:
            r["settings"].setdefault("torch_threads", threads)
    return records


def script_report(records, benchmark, quick, json_path=None):
    """What a benchmark script does with its records: complete them, print them as a table
    and, with ``json_path``, write them there as JSON."""
    import json

    finish(records, benchmark, quick)
    print(text_table(records))
    if json_path:
        path = Path(json_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({"records": records}, indent=2) + "\n")
        print(f"wrote {path}")
    return records


def results_path(stem):
    """``benchmarks/results/<stem>_<backend>.json``: where a script writes by default."""
    return Path(__file__).resolve().parent / "results" / f"{stem}_{BACKEND}.json"
