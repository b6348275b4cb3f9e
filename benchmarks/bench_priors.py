"""Sampling speed of the autoregressive priors, against naive re-running sampling.

Usage::

    KERAS_BACKEND=jax python benchmarks/bench_priors.py [--quick] [--runs 3]

Models are the default recipes' priors (untrained weights: speed does not depend on
them) over untrained default VQ-VAEs; codes per second (batch 4 counts 4 sequences):

* ``wavenet``: the cached sampler (one streamed step through each layer per code, one
  compiled loop) against the naive sampler (the whole network re-run over the sequence
  for every code, also one compiled loop; it draws the same codes, tested); on torch
  also the cached sampler with ``torch.compile``d steps against its eager steps, with
  the first call's time (the compilation);
* ``pixelcnn``: the compiled raster loop (per row the vertical stacks over the rows
  above, per code the horizontal stacks over the columns to its left) against the
  keras.io VQ-VAE example's sampler (a Python loop calling the network on the whole map
  once per code and sampling on the host; timed over the map's first two rows, as its
  cost per code does not depend on the position); on torch also the loop with
  ``torch.compile``d steps against its eager steps.

Records go to ``benchmarks/results/priors_<backend>.json``.
"""
import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks._common import (BACKEND, block, median_time, no_grad,  # noqa: E402
                                results_path, run_device, script_report, set_torch_threads)
from benchmarks._records import record  # noqa: E402


def _prior(name):
    """The default recipe's prior over its untrained default VQ-VAE."""
    import keras

    from zoo import registry

    keras.utils.set_random_seed(0)
    vq = registry.build(registry.load_recipe(registry.model_class(name).prerequisites["vqvae"]))
    recipe = registry.load_recipe(name)
    recipe["model_config"]["vqvae"] = vq
    return registry.build(recipe)


def keras_io_pixelcnn_sampler(prior, num, rows, limit=None):
    """The keras.io VQ-VAE example's sampling loop: predict the whole map for every
    code, sample on the host (numpy), write it back; ``limit``: stop after that many
    positions (its cost per code does not depend on the position)."""
    import keras

    cols = prior.vqvae.frontend.n_mels // prior.vqvae.downsampling
    codes = np.zeros((num, rows, cols), "int32")
    rng = np.random.default_rng(0)
    for p in range(rows * cols if limit is None else limit):
        i, j = divmod(p, cols)
        logits = keras.ops.convert_to_numpy(prior.logits(codes))[:, i, j]
        q = np.exp(logits - logits.max(-1, keepdims=True))
        q /= q.sum(-1, keepdims=True)
        codes[:, i, j] = [rng.choice(len(r), p=r) for r in q]
    return codes


def compiled_steps_record(name, prior, draw, codes, eager_seconds, runs, settings):
    """Torch: a prior's draw with ``torch.compile``d steps against the same draw's eager
    steps (``eager_seconds``), with the first call's time (the compilation)."""
    t0 = time.perf_counter()
    block(draw())
    first = time.perf_counter() - t0
    stepped = median_time(lambda: block(draw()), runs)
    return record(name, codes / stepped, "codes/s", reference=codes / eager_seconds,
                  reference_name=f"the same loop, eager steps (the default below "
                                 f"{prior.COMPILE_STEPS_FROM} codes)",
                  settings={**settings, "first_call_seconds": round(first, 2)})


def run(quick=False, runs=None):
    runs = runs or (1 if quick else 3)
    records = []
    num = 4
    with no_grad():
        wavenet = _prior("wavenet")
        wavenet.build()
        steps = 64 if quick else 250  # 250 codes = 1 s at 64 samples per code, 16 kHz
        cached = median_time(lambda: block(wavenet.sample_codes(num, steps, seed=0)), runs)
        naive = median_time(lambda: block(wavenet.sample_codes_naive(num, steps, seed=0)), runs)
        settings = {"batch": num, "codes": steps, "runs": runs, "layers": wavenet.num_layers,
                    "filters": wavenet.filters, "receptive_field": wavenet.receptive_field}
        records.append(record("wavenet prior: cached sampling", num * steps / cached,
                              "codes/s", reference=num * steps / naive,
                              reference_name="naive re-running sampling (compiled)",
                              settings=settings))
        if BACKEND == "torch":  # JAX and TF compile the whole loop anyway
            records.append(compiled_steps_record(
                "wavenet prior: cached sampling, torch.compile'd steps", wavenet,
                lambda: wavenet.sample_codes(num, steps, seed=0, compile_steps=True),
                num * steps, cached, runs, settings))

        pixelcnn = _prior("pixelcnn")
        pixelcnn.build()
        rows = 2 if quick else 32  # the recipe: 16 rows x 64 mel regions per second
        cols = pixelcnn.vqvae.frontend.n_mels // pixelcnn.vqvae.downsampling
        codes = num * rows * cols
        kept = median_time(lambda: block(pixelcnn.sample_codes(
            num, rows, seed=0, compile_steps=False)), runs)
        limit = min(rows, 2) * cols
        t0 = time.perf_counter()
        keras_io_pixelcnn_sampler(pixelcnn, num, rows, limit=limit)
        eager = time.perf_counter() - t0
        settings = {"batch": num, "rows": rows, "columns": cols, "runs": runs,
                    "layers": pixelcnn.num_layers, "filters": pixelcnn.filters,
                    "context": list(pixelcnn.context), "reference_positions_timed": limit}
        records.append(record("pixelcnn prior: compiled raster loop, rows above kept",
                              codes / kept, "codes/s", reference=num * limit / eager,
                              reference_name="keras.io example's per-code predict loop over "
                                             "the whole map",
                              settings=settings))
        if BACKEND == "torch":
            records.append(compiled_steps_record(
                "pixelcnn prior: raster loop, rows above kept, torch.compile'd steps", pixelcnn,
                lambda: pixelcnn.sample_codes(num, rows, seed=0, compile_steps=True),
                codes, kept, runs, settings))
    return records


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--no-json", action="store_true")
    args = parser.parse_args(argv)
    set_torch_threads()
    print(f"prior sampling; backend {BACKEND}; {run_device()}", flush=True)
    records = run(args.quick, args.runs)
    script_report(records, "priors", args.quick, None if args.no_json else results_path("priors"))


if __name__ == "__main__":
    main()
