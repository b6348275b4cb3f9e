"""Throughput of the PQMF bank and the multiscale spectral loss on the current Keras backend.

Usage::

    KERAS_BACKEND=jax python benchmarks/bench_layers.py [--runs 5] [--no-json]

For a 16-band PQMF on 2^18 samples at batch 1 and 8 it times analysis and
synthesis (eager and compiled: ``jax.jit`` / ``tf.function``; torch runs eagerly
under ``no_grad``) and, in the same run, a scipy reference: per-band polyphase
``scipy.signal.upfirdn`` (decimating analysis, interpolating synthesis) with the
same filters. It then times the RAVE multiscale spectral distance (5 scales,
2048..128, hop n/4) at batch 8 x 131072 samples (RAVE's training crop) against
a numpy/librosa transcription. Each figure is the median of ``--runs`` timed
runs after one warm-up call; results go to ``benchmarks/results/layers_<backend>.json``.
On a CPU shared with other work, torch's two OpenMP threads spin-wait: pass
``--torch-threads 1`` there.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402
from scipy import signal  # noqa: E402

from layers.losses import multiscale_spectral_distance  # noqa: E402
from layers.pqmf import PQMF  # noqa: E402
from benchmarks._common import BACKEND, block, compiled, median_time, no_grad  # noqa: E402,F401

_block = block


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


def bench_pqmf(runs, rows):
    pq = PQMF(16)
    n = 2 ** 18
    ana, syn = compiled(pq.analysis), compiled(pq.synthesis)
    for batch in (1, 8):
        x = np.random.default_rng(0).standard_normal((batch, n)).astype("float32")
        xt = ops.convert_to_tensor(x)
        bands = pq.analysis(xt)
        bands_np = _block(bands)
        samples = batch * n
        t_ref_a = median_time(lambda: scipy_analysis(pq, x), runs)
        t_ref_s = median_time(lambda: scipy_synthesis(pq, bands_np), runs)
        with no_grad():
            cases = [("analysis", "eager", lambda: _block(pq.analysis(xt)), t_ref_a),
                     ("synthesis", "eager", lambda: _block(pq.synthesis(bands)), t_ref_s)]
            if ana is not None:
                cases += [("analysis", "compiled", lambda: _block(ana(xt)), t_ref_a),
                          ("synthesis", "compiled", lambda: _block(syn(bands)), t_ref_s)]
            for op, mode, fn, t_ref in cases:
                t = median_time(fn, runs)
                rows.append({"what": f"pqmf16 {op}", "mode": mode, "batch": batch,
                             "samples": n, "seconds": t, "samples_per_s": samples / t,
                             "ref": "scipy.signal.upfirdn per band", "ref_seconds": t_ref,
                             "ref_samples_per_s": samples / t_ref, "speedup_vs_ref": t_ref / t})


def bench_mss(runs, rows, batch, n):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((batch, n)).astype("float32")
    y = (x + 0.1 * rng.standard_normal((batch, n))).astype("float32")
    xt, yt = ops.convert_to_tensor(x), ops.convert_to_tensor(y)
    t_ref = median_time(lambda: numpy_mss(x, y), max(1, runs // 2))

    def fn(a, b):
        return multiscale_spectral_distance(a, b)

    check = float(_block(fn(xt, yt)))
    ref_val = numpy_mss(x, y)
    assert abs(check - ref_val) < 1e-3 * max(1.0, abs(ref_val)), (check, ref_val)
    jit = compiled(fn)
    with no_grad():
        cases = [("eager", lambda: _block(fn(xt, yt)))]
        if jit is not None:
            cases.append(("compiled", lambda: _block(jit(xt, yt))))
        for mode, f in cases:
            t = median_time(f, runs)
            rows.append({"what": "multiscale spectral distance (5 scales)", "mode": mode,
                         "batch": batch, "samples": n, "seconds": t,
                         "samples_per_s": batch * n / t, "ref": "numpy + librosa.stft",
                         "ref_seconds": t_ref, "ref_samples_per_s": batch * n / t_ref,
                         "speedup_vs_ref": t_ref / t})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mss-batch", type=int, default=8)
    parser.add_argument("--mss-samples", type=int, default=131072)
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch.set_num_threads (on an oversubscribed CPU, 1 avoids "
                             "OpenMP spin-waiting: 2.7 ms instead of 48 ms here)")
    parser.add_argument("--no-json", action="store_true")
    args = parser.parse_args()
    if BACKEND == "torch" and args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)

    device = {"backend": BACKEND, "keras": keras.__version__, "machine": platform.machine(),
              "processor": platform.processor() or platform.machine(),
              "cpu_count": os.cpu_count(), "python": platform.python_version(),
              "torch_threads": args.torch_threads if BACKEND == "torch" else None}
    print(f"backend {BACKEND} (keras {keras.__version__}), {device['cpu_count']} CPUs, "
          f"median of {args.runs} runs after warm-up")
    rows = []
    bench_pqmf(args.runs, rows)
    bench_mss(args.runs, rows, args.mss_batch, args.mss_samples)

    header = (f"{'what':<42}{'mode':<10}{'batch':>6}{'samples':>9}{'ms':>10}"
              f"{'Msamples/s':>12}{'ref ms':>10}{'ref Ms/s':>10}{'x ref':>8}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['what']:<42}{r['mode']:<10}{r['batch']:>6}{r['samples']:>9}"
              f"{1e3 * r['seconds']:>10.1f}{r['samples_per_s'] / 1e6:>12.2f}"
              f"{1e3 * r['ref_seconds']:>10.1f}{r['ref_samples_per_s'] / 1e6:>10.2f}"
              f"{r['speedup_vs_ref']:>8.2f}")
    if not args.no_json:
        out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, f"layers_{BACKEND}.json")
        with open(path, "w") as f:
            json.dump({"device": device, "runs": args.runs, "results": rows}, f, indent=2)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
