"""Fast Griffin-Lim (ours, keras.ops, batched) against ``librosa.griffinlim``.

Usage::

    KERAS_BACKEND=jax python benchmarks/bench_griffinlim.py [--runs 3] [--iters 32]

Same n_fft, hop, iterations, momentum (0.99) and zero-phase initialisation on both
sides, on 10 s of a music-like test signal at 16 kHz. Prints spectral convergence
``||S(x_hat)| - |S|| / ||S||`` and seconds per 10 s of audio for librosa, ours
eager and ours compiled (``jax.jit`` / ``tf.function``; torch runs eagerly), and
ours on a batch of 8 (per 10 s of audio). Results go to
``benchmarks/results/griffinlim_<backend>.json``.
"""
import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import librosa  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks._common import BACKEND, block, compiled, device_description, median_time, no_grad  # noqa: E402
from layers import griffin_lim  # noqa: E402

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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--iters", type=int, default=32)
    parser.add_argument("--n-fft", type=int, default=1024)
    parser.add_argument("--hop", type=int, default=256)
    parser.add_argument("--no-json", action="store_true")
    args = parser.parse_args(argv)
    n_fft, hop, iters = args.n_fft, args.hop, args.iters

    x = test_signal()
    mag = np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop, pad_mode="reflect"))
    length = len(x)
    per10s = length / SR / 10.0

    def librosa_gl():
        return librosa.griffinlim(mag, n_iter=iters, hop_length=hop, n_fft=n_fft, init=None,
                                  length=length, pad_mode="reflect", momentum=0.99)

    batch1 = mag.T[None].copy()
    batch8 = np.repeat(batch1, 8, axis=0)

    def ours(m):
        return griffin_lim(m, n_fft, hop, iters, length=length)

    jit = compiled(ours)
    rows = []
    t = median_time(librosa_gl, args.runs)
    ref_time = t / per10s
    rows.append(("librosa.griffinlim", 1, ref_time, spectral_convergence(librosa_gl(), mag, n_fft, hop)))
    with no_grad():
        cases = [("ours eager", ours, batch1)]
        if jit is not None:
            cases += [("ours compiled", jit, batch1), ("ours compiled", jit, batch8)]
        else:
            cases += [("ours eager", ours, batch8)]
        for name, fn, m in cases:
            t = median_time(lambda: block(fn(m)), args.runs)
            wave = block(fn(m))[0]
            rows.append((name, len(m), t / per10s / len(m),
                         spectral_convergence(wave, mag, n_fft, hop)))

    print(f"Griffin-Lim, {iters} iterations, n_fft {n_fft}, hop {hop}, 10 s at {SR} Hz; "
          f"backend {BACKEND}; {device_description()}")
    print(f"{'method':<22}{'batch':>6}{'s / 10 s audio':>16}{'x librosa':>11}{'spectral conv.':>16}")
    for name, batch, sec, sc in rows:
        print(f"{name:<22}{batch:>6}{sec:>16.3f}{ref_time / sec:>11.2f}{sc:>16.4f}")
    if not args.no_json:
        out = Path(__file__).parent / "results" / f"griffinlim_{BACKEND}.json"
        out.write_text(json.dumps({
            "backend": BACKEND, "device": device_description(), "n_fft": n_fft, "hop": hop,
            "iterations": iters, "rows": [dict(zip(("method", "batch", "seconds_per_10s",
                                                    "spectral_convergence"), r)) for r in rows]},
            indent=2))
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
