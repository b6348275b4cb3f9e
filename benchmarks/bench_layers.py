"""Throughput of the PQMF bank and the multiscale spectral loss on the current Keras backend.

Usage::

    KERAS_BACKEND=jax python benchmarks/bench_layers.py [--quick] [--runs 5] [--no-json]

For a 16-band PQMF on 2^18 samples at batch 1 and 8 it times analysis and
synthesis (eager and compiled: ``jax.jit`` / ``tf.function``; torch runs eagerly
under ``no_grad``) and, in the same run, a scipy reference: per-band polyphase
``scipy.signal.upfirdn`` (decimating analysis, interpolating synthesis) with the
same filters. It then times the RAVE multiscale spectral distance (5 scales,
2048..128, hop n/4) at batch 8 x 131072 samples (RAVE's training crop) against
a numpy/librosa transcription. Each figure is the median of ``--runs`` timed
runs after one warm-up call; records (see ``benchmarks/_records.py``) go to
``benchmarks/results/layers_<backend>.json``. ``run(quick)`` is the suite's entry point
(``python -m benchmarks``). Torch uses as many threads as the process has CPUs
(``taskset -c 1``: one; two OpenMP threads spin-wait on a shared core).
"""
import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402
from scipy import signal  # noqa: E402

from layers.losses import multiscale_spectral_distance  # noqa: E402
from layers.pqmf import PQMF  # noqa: E402
from benchmarks._common import (BACKEND, block, compiled, median_time, no_grad,  # noqa: E402
                                results_path, run_device, script_report, set_torch_threads)
from benchmarks._records import record  # noqa: E402


def scipy_analysis(pq, x):
    m = pq.num_bands
    n_frames = x.shape[-1] // m
    out = np.empty((x.shape[0], n_frames, m), dtype=x.dtype)
    for b in range(x.shape[0]):
        for k in range(m):
            out[b, :, k] = signal.upfirdn(pq.analysis_filters[k], x[b], down=m)[:n_frames]
    return out


def scipy_synthesis(pq, bands):
    m = pq.num_bands
    n = bands.shape[1] * m
    out = np.zeros((bands.shape[0], n))
    for b in range(bands.shape[0]):
        for k in range(m):
            out[b] += signal.upfirdn(pq.synthesis_filters[k], bands[b, :, k], up=m)[:n]
    return out * m


def numpy_mss(x, y, scales=(2048, 1024, 512, 256, 128), eps=1e-7):
    import librosa

    total = 0.0
    for n in scales:
        sx = np.abs(librosa.stft(x, n_fft=n, hop_length=n // 4, center=True, pad_mode="reflect"))
        sy = np.abs(librosa.stft(y, n_fft=n, hop_length=n // 4, center=True, pad_mode="reflect"))
        total += np.mean((sx - sy) ** 2) / np.mean(sx ** 2)
        total += np.mean(np.abs(np.log(sx + eps) - np.log(sy + eps)))
    return total


def bench_pqmf(runs, n, batches=(1, 8)):
    """Records: 16-band PQMF analysis and synthesis of ``n`` samples at each batch size, eager
    and compiled, against scipy ``upfirdn`` per band, in Msamples/s."""
    pq = PQMF(16)
    ana, syn = compiled(pq.analysis), compiled(pq.synthesis)
    records = []
    for batch in batches:
        x = np.random.default_rng(0).standard_normal((batch, n)).astype("float32")
        xt = ops.convert_to_tensor(x)
        bands = pq.analysis(xt)
        bands_np = block(bands)
        msamples = batch * n / 1e6
        t_ref_a = median_time(lambda: scipy_analysis(pq, x), runs)
        t_ref_s = median_time(lambda: scipy_synthesis(pq, bands_np), runs)
        with no_grad():
            cases = [("analysis", "eager", lambda: block(pq.analysis(xt)), t_ref_a),
                     ("synthesis", "eager", lambda: block(pq.synthesis(bands)), t_ref_s)]
            if ana is not None:
                cases += [("analysis", "compiled", lambda: block(ana(xt)), t_ref_a),
                          ("synthesis", "compiled", lambda: block(syn(bands)), t_ref_s)]
            for op, mode, fn, t_ref in cases:
                t = median_time(fn, runs)
                records.append(record(
                    f"pqmf16 {op}, {mode}, batch {batch}", msamples / t, "Msamples/s",
                    reference=msamples / t_ref, reference_name="scipy.signal.upfirdn per band",
                    settings={"batch": batch, "samples": n, "runs": runs}))
    return records


def bench_mss(runs, batch, n):
    """Records: the RAVE multiscale spectral distance of ``batch`` x ``n`` samples, eager and
    compiled, against numpy + librosa.stft, in Msamples/s (checked equal first)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((batch, n)).astype("float32")
    y = (x + 0.1 * rng.standard_normal((batch, n))).astype("float32")
    xt, yt = ops.convert_to_tensor(x), ops.convert_to_tensor(y)
    ref_runs = max(1, runs // 2)
    t_ref = median_time(lambda: numpy_mss(x, y), ref_runs)

    def fn(a, b):
        return multiscale_spectral_distance(a, b)

    check = float(block(fn(xt, yt)))
    ref_val = numpy_mss(x, y)
    assert abs(check - ref_val) < 1e-3 * max(1.0, abs(ref_val)), (check, ref_val)
    jit = compiled(fn)
    msamples = batch * n / 1e6
    records = []
    with no_grad():
        cases = [("eager", lambda: block(fn(xt, yt)))]
        if jit is not None:
            cases.append(("compiled", lambda: block(jit(xt, yt))))
        for mode, f in cases:
            t = median_time(f, runs)
            records.append(record(
                f"multiscale spectral distance (5 scales), {mode}", msamples / t, "Msamples/s",
                reference=msamples / t_ref, reference_name="numpy + librosa.stft",
                settings={"batch": batch, "samples": n, "runs": runs, "reference_runs": ref_runs}))
    return records


def run(quick=False, runs=None, pqmf_samples=None, mss_batch=None, mss_samples=None):
    """Records of the PQMF and multiscale-spectral-distance benchmarks.

    Quick mode: 3 runs, PQMF on 8 x 2^16 samples, the distance on 2 x 32768 samples; full mode:
    5 runs, PQMF on 1 x and 8 x 2^18 samples, the distance on 8 x 131072 (RAVE's training
    batch). Arguments override either.
    """
    runs = runs or (3 if quick else 5)
    return (bench_pqmf(runs, pqmf_samples or (2 ** 16 if quick else 2 ** 18),
                       (8,) if quick else (1, 8))
            + bench_mss(runs, mss_batch or (2 if quick else 8),
                        mss_samples or (32768 if quick else 131072)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, 3 runs")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--pqmf-samples", type=int, default=None)
    parser.add_argument("--mss-batch", type=int, default=None)
    parser.add_argument("--mss-samples", type=int, default=None)
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch.set_num_threads (default: the CPUs this process may use; "
                             "on an oversubscribed CPU, 1 avoids OpenMP spin-waiting)")
    parser.add_argument("--no-json", action="store_true")
    args = parser.parse_args(argv)
    set_torch_threads(args.torch_threads)
    print(f"backend {BACKEND} (keras {keras.__version__}); {run_device()}", flush=True)
    records = run(args.quick, args.runs, args.pqmf_samples, args.mss_batch, args.mss_samples)
    script_report(records, "layers", args.quick,
                  None if args.no_json else results_path("layers"))


if __name__ == "__main__":
    main()
