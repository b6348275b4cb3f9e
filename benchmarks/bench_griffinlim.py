"""Fast Griffin-Lim (ours, keras.ops, batched) against ``librosa.griffinlim``.

Usage::

    KERAS_BACKEND=jax python benchmarks/bench_griffinlim.py [--quick] [--runs 3] [--iters 32]

Same n_fft, hop, iterations, momentum (0.99) and zero-phase initialisation on both
sides, on 10 s (``--quick``: 4 s) of a music-like test signal at 16 kHz. Reports speed
as x real time (audio seconds per second; batch 8 counts 8 clips) for ours eager, ours
compiled (``jax.jit`` / ``tf.function``; torch runs eagerly) and (not with ``--quick``)
ours on a batch of 8, each beside librosa's, with the spectral convergence
``||S(x_hat)| - |S|| / ||S||`` of both in the settings. Records go to
``benchmarks/results/griffinlim_<backend>.json``; ``run(quick)`` is the suite's entry point
(``python -m benchmarks``).
"""
import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import librosa  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks._common import (BACKEND, block, compiled, median_time, no_grad,  # noqa: E402
                                results_path, run_device, script_report, set_torch_threads)
from benchmarks._records import record  # noqa: E402
from layers import griffin_lim  # noqa: E402
from zoo.eval.metrics import real_time_factor  # noqa: E402

SR = 16000


def test_signal(seconds=10.0, seed=0):
    """Notes of a few harmonic tones with decaying envelopes plus a little noise."""
    from zoo.data import render_timbre

    rng = np.random.default_rng(seed)
    notes, total = [], 0.0
    while total < seconds:
        dur = float(rng.uniform(0.2, 0.6))
        notes.append((int(rng.integers(50, 75)), dur))
        total += dur
    x = render_timbre(notes, "brass", SR, seed=seed)[: int(seconds * SR)]
    return np.pad(x, (0, int(seconds * SR) - len(x))).astype("float32")


def spectral_convergence(wave, mag, n_fft, hop):
    rebuilt = np.abs(librosa.stft(wave, n_fft=n_fft, hop_length=hop, pad_mode="reflect"))
    return float(np.linalg.norm(rebuilt - mag) / np.linalg.norm(mag))


def run(quick=False, runs=None, iters=32, n_fft=1024, hop=256, seconds=None):
    """Records: ours (eager, compiled, batch 8) in x real time against ``librosa.griffinlim``.

    Quick mode: 4 s of audio, 2 runs, no batch of 8; full mode: 10 s, 3 runs (``seconds`` and
    ``runs`` override either). Settings carry the spectral convergence of ours and of librosa
    (they should match).
    """
    runs = runs or (2 if quick else 3)
    seconds = seconds or (4.0 if quick else 10.0)
    x = test_signal(seconds)
    mag = np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop, pad_mode="reflect"))
    length = len(x)

    def librosa_gl():
        return librosa.griffinlim(mag, n_iter=iters, hop_length=hop, n_fft=n_fft, init=None,
                                  length=length, pad_mode="reflect", momentum=0.99)

    batch1 = mag.T[None].copy()
    batch8 = np.repeat(batch1, 8, axis=0)

    def ours(m):
        return griffin_lim(m, n_fft, hop, iters, length=length)

    jit = compiled(ours)
    ref = seconds / median_time(librosa_gl, runs)
    ref_sc = spectral_convergence(librosa_gl(), mag, n_fft, hop)
    records = []
    with no_grad():
        cases = [("eager", ours, batch1)]
        if jit is not None:
            cases += [("compiled", jit, batch1)] + ([] if quick else [("compiled", jit, batch8)])
        elif not quick:
            cases += [("eager", ours, batch8)]
        for mode, fn, m in cases:
            t = median_time(lambda: block(fn(m)), runs)
            wave = block(fn(m))[0]
            records.append(record(
                f"griffin-lim, {mode}, batch {len(m)}", real_time_factor(seconds * len(m), t),
                "x real time", reference=ref, reference_name="librosa.griffinlim (batch 1)",
                settings={"iterations": iters, "n_fft": n_fft, "hop": hop, "batch": len(m),
                          "audio_s": seconds, "sample_rate": SR, "runs": runs,
                          "spectral_convergence": round(spectral_convergence(wave, mag, n_fft,
                                                                             hop), 4),
                          "reference_spectral_convergence": round(ref_sc, 4)}))
    return records


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 s of audio, 2 runs, batch 1 only")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--iters", type=int, default=32)
    parser.add_argument("--n-fft", type=int, default=1024)
    parser.add_argument("--hop", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--no-json", action="store_true")
    args = parser.parse_args(argv)
    set_torch_threads()
    print(f"Griffin-Lim, {args.iters} iterations, n_fft {args.n_fft}, hop {args.hop}; "
          f"backend {BACKEND}; {run_device()}", flush=True)
    records = run(args.quick, args.runs, args.iters, args.n_fft, args.hop, args.seconds)
    script_report(records, "griffinlim", args.quick,
                  None if args.no_json else results_path("griffinlim"))


if __name__ == "__main__":
    main()
