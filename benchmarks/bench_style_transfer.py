"""Style transfer speed: our compiled loss-and-gradient (one function per backend, driven
by scipy's L-BFGS) against the same objective run eagerly, the keras.io way.

Usage::

    KERAS_BACKEND=jax python benchmarks/bench_style_transfer.py [--seconds 10] [--filters 4096]
        [--iterations 10] [--runs 3]

On ``--seconds`` of 22.05 kHz audio (a brass melody as content, a reed melody as style,
``zoo.data.render_timbre``) with the recipe's settings (n_fft 1024, hop 256, one random layer
of width 11; 4096 filters by default, the reference's) it measures, after a warm-up:

* one evaluation of loss + gradient: ours (``zoo.engine.compile_value_and_grad``:
  ``jax.jit`` / ``tf.function``; torch runs its autograd eagerly) beside the identical
  objective uncompiled (TF: an eager ``GradientTape``, as the keras.io neural style
  transfer example; JAX: ``jax.value_and_grad`` without ``jit``; torch: the same
  eager autograd, so a ratio near 1 by construction);
* L-BFGS iterations per second (scipy, ``--iterations`` of them, averaged; an iteration
  may evaluate more than once) beside eager evaluations per second, and the seconds
  for 300 iterations extrapolated from both (in the records' settings);
* the roofline: the matrix-product FLOPs of one evaluation (closed form) and the rate
  of the dominant convolution alone, compiled, in the same run, so the most
  evaluations per second any compiled form could reach here, beside the eager loop.

Records go to ``benchmarks/results/style_transfer_<backend>.json``.
"""
import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks._common import (BACKEND, median_time, results_path, run_device,  # noqa: E402
                                script_report, set_torch_threads)
from benchmarks._records import record  # noqa: E402

SR = 22050


def signals(seconds):
    """(content, style): a brass and a reed melody of ``seconds`` at 22.05 kHz."""
    from zoo.data import render_timbre, timbre_melodies

    melodies = list(timbre_melodies(4, seed=0).values())
    out = []
    for domain, notes in (("brass", melodies[0]), ("reed", melodies[1])):
        wave = np.zeros(0, np.float32)
        while wave.size < seconds * SR:
            wave = np.concatenate([wave, render_timbre(notes, domain, SR)])
        out.append(wave[:int(seconds * SR)].astype("float32"))
    return out


def eager_value_and_grad(fn):
    """The same ``fn(x, *constants) -> (loss, aux)`` differentiated without compilation."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        def call(x, *constants):
            x = tf.convert_to_tensor(x)
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss, _ = fn(x, *constants)
            return float(loss), tape.gradient(loss, x).numpy()
        return call
    if BACKEND == "jax":
        import jax

        grad_fn = jax.value_and_grad(fn, has_aux=True)

        def call(x, *constants):
            with jax.disable_jit():
                (loss, _), grad = grad_fn(x, *constants)
            return float(loss), np.asarray(grad)
        return call
    from zoo.engine import compile_value_and_grad  # torch: autograd is eager already

    inner = compile_value_and_grad(fn)
    return lambda x, *constants: inner(x, *constants)[:2]


def objective_flops(frames, bins, filters, widths):
    """Multiply-adds x 2 of one loss + gradient evaluation, counting only the matrix
    products: per branch the convolution, its input gradient (the kernels are fixed,
    so no weight gradient), the Gram matrix and its gradient (one product)."""
    return sum(4.0 * frames * bins * w * filters + 4.0 * frames * filters ** 2 for w in widths)


def conv_rate(frames, bins, filters, width, runs, dtype="float32"):
    """FLOP/s of the dominant operation alone: one compiled 'same' convolution of the
    objective's shape on this backend (its practical peak here), in ``dtype``."""
    import keras
    from keras import ops

    rng = np.random.default_rng(0)
    x = ops.cast(rng.standard_normal((1, frames, bins)).astype("float32"), dtype)
    k = ops.cast(rng.standard_normal((width, bins, filters)).astype("float32"), dtype)
    conv = lambda a, b: ops.conv(a, b, padding="same")  # noqa: E731
    if keras.backend.backend() == "jax":
        import jax

        conv = jax.jit(conv)
    elif keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        conv = tf.function(conv)
    run_once = lambda: ops.convert_to_numpy(conv(x, k))  # noqa: E731
    run_once()
    return 2.0 * frames * bins * width * filters / median_time(run_once, runs)


def run(seconds=10.0, filters=4096, iterations=10, runs=3):
    import keras
    from keras import ops

    import zoo

    model = zoo.load("style_transfer", filters=filters)
    content, style = signals(seconds)
    spec = np.asarray(ops.convert_to_numpy(model.spectrogram(content[None])))
    grams = [np.asarray(ops.convert_to_numpy(g)) for g in model.style_statistics(style)]
    kernels = [k for stack in model.kernels() for k in stack]
    feats = [np.asarray(ops.convert_to_numpy(f)) for f in model.features(ops.convert_to_tensor(spec))]
    tensors = [ops.convert_to_tensor(t) for t in [feats[-1]] + grams + kernels]
    weights = np.asarray([model.content_weight, model.style_weight], np.float32)
    x = (spec + 1e-3 * np.random.default_rng(0).standard_normal(spec.shape)).astype("float32")
    extractor = model.extractor()
    ours = model._compiled_objective(extractor)
    eager = eager_value_and_grad(model.objective(extractor))
    x_t = ops.convert_to_tensor(x)
    t_ours = median_time(lambda: ours(x_t, weights, *tensors), runs)
    t_eager = median_time(lambda: eager(x_t, weights, *tensors), runs)
    loss_ours, grad_ours, _ = ours(x_t, weights, *tensors)
    loss_eager, grad_eager = eager(x_t, weights, *tensors)
    agree = float(np.max(np.abs(grad_ours - grad_eager)) / max(np.max(np.abs(grad_eager)), 1e-30))
    start = time.perf_counter()
    model._optimise(extractor, spec[0], spec[0], grams, (model.content_weight,
                                                         model.style_weight),
                    iterations, "lbfgs", None, 0)
    per_iteration = (time.perf_counter() - start) / iterations
    settings = {"audio_s": seconds, "sample_rate": SR, "n_fft": model.n_fft,
                "hop_length": model.hop_length, "filters": filters, "widths": list(model.widths),
                "frames": int(spec.shape[1]), "runs": runs, "lbfgs_iterations": iterations,
                "gradient_max_relative_difference": agree,
                "loss_ours": loss_ours, "loss_eager": loss_eager, "keras": keras.__version__}
    eager_name = {"tensorflow": "eager tf.GradientTape (keras.io NST way)",
                  "jax": "jax.value_and_grad without jit",
                  "torch": "eager torch autograd (same as ours)"}[BACKEND]
    settings["seconds_300_iterations_ours"] = 300 * per_iteration
    settings["seconds_300_iterations_eager"] = 300 * t_eager
    # the roofline: could any compiled form reach 3x the eager loop on this machine?
    flops = objective_flops(int(spec.shape[1]), int(spec.shape[2]), filters, model.widths)
    peak = conv_rate(int(spec.shape[1]), int(spec.shape[2]), filters, max(model.widths), runs)
    bf16 = conv_rate(int(spec.shape[1]), int(spec.shape[2]), filters, max(model.widths), runs,
                     "bfloat16")
    roof = {**settings, "gflop_per_evaluation": flops / 1e9, "conv_gflops": peak / 1e9,
            "conv_gflops_bfloat16": bf16 / 1e9,
            "gflops_ours": flops / t_ours / 1e9, "gflops_eager": flops / t_eager / 1e9,
            "evaluations_per_s_needed_for_3x": 3.0 / t_eager}
    print(f"roofline: {flops / 1e9:.1f} GFLOP per evaluation; the convolution alone runs at "
          f"{peak / 1e9:.0f} GFLOP/s here -> at most {peak / flops:.1f} evaluations/s; "
          f"ours {1 / t_ours:.1f} ({flops / t_ours / 1e9:.0f} GFLOP/s), eager "
          f"{1 / t_eager:.1f} ({flops / t_eager / 1e9:.0f} GFLOP/s); 3x eager needs "
          f"{3 / t_eager:.1f}; in bfloat16 the convolution runs at {bf16 / 1e9:.0f} GFLOP/s",
          flush=True)
    return [
        record("style transfer: evaluations/s ceiling at the convolution's own rate",
               peak / flops, "1/s", settings=roof, reference=1.0 / t_eager,
               reference_name=eager_name,
               note="ceiling = conv GFLOP/s / GFLOP per evaluation (matrix products only); "
                    "3x the eager loop is reachable only if this ratio >= 3"),
        record("style transfer: loss + gradient evaluations", 1.0 / t_ours, "1/s",
               settings=settings, reference=1.0 / t_eager, reference_name=eager_name,
               note="same objective and inputs; ratio = speed-up"),
        record("style transfer: L-BFGS iterations (scipy + compiled objective)",
               1.0 / per_iteration, "1/s", settings=settings, reference=1.0 / t_eager,
               reference_name=eager_name + ", one evaluation per iteration",
               note="300 iterations: see seconds_300_iterations_* in settings"),
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--filters", type=int, default=4096)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--torch-threads", type=int, default=None)
    parser.add_argument("--no-json", action="store_true")
    args = parser.parse_args(argv)
    set_torch_threads(args.torch_threads)
    print(f"backend {BACKEND}; {run_device()}", flush=True)
    records = run(args.seconds, args.filters, args.iterations, args.runs)
    script_report(records, "style_transfer", False,
                  None if args.no_json else results_path("style_transfer"))


if __name__ == "__main__":
    main()
