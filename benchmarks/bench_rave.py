"""RAVE speed: encode / decode throughput and one training step at the reference batch.

For the current KERAS_BACKEND and the recipes ``rave`` (CPU-sized, causal, 16 kHz) and
``rave_v1`` (reference capacity, 48 kHz), with random weights:

* encode and decode of one waveform of ``--seconds`` seconds (batch 1): samples/s and
  real-time factor (audio seconds per wall second), compiled (``jax.jit`` /
  ``tf.function``; torch eager under ``no_grad``), median of ``--runs`` after a warm-up;
  beside the published reference figure for v1 synthesis: 985 kHz on a laptop CPU
  (about 20x real time at 48 kHz), published, not measured here;
* streaming: one 2048-sample block through ``stream`` (encode + decode, compiled like
  the rest) for the causal ``rave``: compute time per block in ms, beside the block's own
  duration and the algorithmic latency (block + the causal path's delay);
* training: one stage-1 step and one stage-2 step (the adversarial stage, recompiled as
  the trainer does at the switch) at ``--batch`` x ``--crop`` (reference 8 x 131072):
  seconds per step and host peak memory (RSS high-water mark above the start) per stage,
  on random waveforms (the built-in clips are shorter than 131072 samples).

* beside RAVE's own code (``--reference auto``, the default, when its package is
  importable: ``benchmarks/_rave_reference.py``): ``rave_v1`` encode / decode and a
  causal ``rave_v1`` streaming 2048-sample blocks, each timed alternately with RAVE v1
  (v1.gin; v1 + causal.gin with cached convolutions for streaming) in this process,
  and (unless ``--no-train``) a stage-1 training step beside RAVE's own
  ``training_step`` (quick: 2 x 32768; else ``--batch`` x ``--crop``). Without it, the
  published synthesis figure stands in, marked "published".

Usage::

    KERAS_BACKEND=tensorflow python benchmarks/bench_rave.py [--quick] [--json out.json]
    PYTHONPATH=/path/to/rave-packages taskset -c 1 python benchmarks/bench_rave.py \
        --quick --recipes rave_v1 --no-train --reference rave
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks._common import (WARM_UP_CALLS, PeakMemory, block, compiled,  # noqa: E402
                                median_time, no_grad, results_path, script_report,
                                set_torch_threads)
from benchmarks._records import record  # noqa: E402

PUBLISHED_V1_SYNTHESIS = 985e3  # samples/s, laptop CPU (RAVE paper)
REFERENCE_NAME = "RAVE v1, its own code (acids-rave, torch eager, no_grad), same run"


def paired_times(ours, theirs, runs, warmup=WARM_UP_CALLS):
    """Medians of ``ours()`` and ``theirs()`` timed alternately (after ``warmup``
    untimed calls of each), so both see the same machine state."""
    for _ in range(warmup):
        ours(), theirs()
    a, b = [], []
    for _ in range(runs):
        for fn, times in ((ours, a), (theirs, b)):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return float(np.median(a)), float(np.median(b))


def reference_records(name, model, recipe, seconds, runs):
    """``rave_v1`` beside RAVE v1 run by its own code in this process (when installed:
    ``benchmarks/_rave_reference.py``): offline encode and decode of the same waveform
    length, and one 2048-sample block streamed (encode + decode) by our causal
    ``rave_v1`` and RAVE's v1 + causal config with cached convolutions. Every figure
    is a rate; the time ratio (ours / RAVE's) is 1 / ratio."""
    from benchmarks._rave_reference import RaveReference
    from zoo import registry

    ref = RaveReference(["v1"])
    sr = model.sample_rate
    n = int(seconds * sr) // model.compression * model.compression
    x = (0.1 * np.random.default_rng(0).standard_normal((1, n))).astype("float32")
    settings = {"recipe": name, "samples": n, "batch": 1, "runs": runs,
                "params_encoder_decoder": int(model.encoder.count_params()
                                              + model.decoder.count_params()),
                "reference_params_encoder_decoder": ref.params_encoder_decoder,
                "reference_configs": ref.configs}
    out = []
    with no_grad():
        z, rz = block(model.encode(x)), ref.encode(x)
        pairs = {"encode": paired_times(lambda: block(model.encode(x)), lambda: ref.encode(x),
                                        runs),
                 "decode": paired_times(lambda: block(model.decode(z, noise=False)),
                                        lambda: ref.decode(rz), runs)}
    for what, (ours, theirs) in pairs.items():
        out.append(record(f"{name}: {what} throughput vs RAVE's code", n / ours, "samples/s",
                          reference=n / theirs, reference_name=REFERENCE_NAME, settings=settings,
                          note=f"time ratio ours / RAVE = {ours / theirs:.2f}"))
    causal = registry.build(recipe, causal=True)
    stream_ref = RaveReference(["v1", "causal"], streaming=True)
    blk = 2048
    xb = x[:, :blk]
    state = causal.initial_state(1)

    def ours():
        nonlocal state
        y, state = causal.stream(xb, state)
        block(y)

    with no_grad():
        t_ours, t_ref = paired_times(ours, lambda: stream_ref.decode(stream_ref.encode(xb)),
                                     runs * 5)
    out.append(record(f"{name}: stream 2048-sample block (encode + decode) vs RAVE's code",
                      1.0 / t_ours, "blocks/s", reference=1.0 / t_ref,
                      reference_name=REFERENCE_NAME + ", causal config, cached convolutions",
                      settings={**settings, "block": blk, "causal": True},
                      note=f"{1000 * t_ours:.2f} ms vs {1000 * t_ref:.2f} ms per block; "
                           f"time ratio {t_ours / t_ref:.2f}"))
    return out


def reference_training_records(name, model, recipe, batch, crop, runs):
    """One stage-1 training step of ``rave_v1`` beside one call of RAVE's own
    ``training_step`` (v1.gin, its optimisers, phase 1: the multiband and full-band
    spectral distances and the KL) on the same random waveforms ``[batch, crop]``,
    timed alternately after a warm-up step each. A rate (steps/s)."""
    from benchmarks._rave_reference import RaveReference

    model.compile_from_recipe(recipe["train"])
    ref = RaveReference(["v1"], training=True)
    data = (0.1 * np.random.default_rng(1).standard_normal((batch, crop))).astype("float32")
    ours, theirs = paired_times(lambda: model.train_on_batch(data),
                                lambda: ref.train_step(data, stage=1), runs, warmup=1)
    return [record(f"{name}: training step, stage 1, vs RAVE's code", 1.0 / ours, "steps/s",
                   reference=1.0 / theirs,
                   reference_name="RAVE v1 training_step, its own code (torch eager), phase 1, "
                                  "same run",
                   settings={"recipe": name, "stage": 1, "batch": batch, "crop": crop,
                             "runs": runs},
                   note=f"{ours:.2f} s vs {theirs:.2f} s per step; time ratio "
                        f"{ours / theirs:.2f}")]


def inference_records(name, model, seconds, runs):
    sr = model.sample_rate
    n = int(seconds * sr) // model.compression * model.compression
    x = (0.1 * np.random.default_rng(0).standard_normal((1, n))).astype("float32")
    # the public calls, as users make them (``@inference`` compiles them)
    enc = model.encode
    dec = lambda z: model.decode(z, noise=False)  # noqa: E731
    out = []
    with no_grad():
        z = block(enc(x))
        t_enc = median_time(lambda: block(enc(x)), runs)
        t_dec = median_time(lambda: block(dec(z)), runs)
    settings = {"recipe": name, "samples": n, "sample_rate": sr, "batch": 1, "runs": runs,
                "params_encoder_decoder": int(model.encoder.count_params()
                                              + model.decoder.count_params()),
                "compression": model.compression, "causal": model.causal}
    for what, t in (("encode", t_enc), ("decode", t_dec)):
        ref = PUBLISHED_V1_SYNTHESIS if (name == "rave_v1" and what == "decode") else None
        out.append(record(f"{name}: {what} throughput", n / t, "samples/s", reference=ref,
                          reference_name="RAVE v1 synthesis, laptop CPU (paper)" if ref else None,
                          published=bool(ref), settings=settings))
        out.append(record(f"{name}: {what} real-time factor", n / sr / t, "x real time",
                          settings=settings))
    if model.causal:
        blk = 2048
        xb = x[:, :blk]

        def timed(stream):
            state = model.initial_state(1)

            def step():
                nonlocal state
                y, state = stream(xb, state)
                block(y)
            with no_grad():
                return median_time(step, runs * 3)

        block_settings = {**settings, "block": blk, "block_ms": 1000 * blk / sr,
                          "algorithmic_latency_ms": 1000 * (blk + model.latency_samples) / sr}
        out.append(record(f"{name}: stream 2048-sample block (encode + decode)",
                          1000 * timed(model.stream), "ms per block", settings=block_settings,
                          note="the public model.stream; lower is better; real time needs "
                               "ms per block < block_ms"))
        baked = compiled(lambda b, s: model.stream(b, s))
        if baked is not None:  # the weights become compile-time constants in this closure
            out.append(record(f"{name}: stream 2048-sample block, weights compiled in",
                              1000 * timed(baked), "ms per block", settings=block_settings,
                              note="not the public call: a jit/tf.function closure over the "
                                   "model, whose weights XLA/TF then treat as constants"))
    return out


def training_records(name, model, recipe, batch, crop, runs, stages=(1, 2)):
    sr = model.sample_rate
    # Random waveforms: the built-in clips are shorter than the reference crop (131072).
    data = (0.1 * np.random.default_rng(1).standard_normal((batch, crop))).astype("float32")
    out = []
    model.compile_from_recipe(recipe["train"])
    for stage in stages:
        if stage == 2:
            model.prepare_stage(model.warmup, recipe["train"])
        times = []
        with PeakMemory() as mem:
            for i in range(runs + 1):
                t0 = time.perf_counter()
                model.train_on_batch(data)
                times.append(time.perf_counter() - t0)
        settings = {"recipe": name, "stage": stage, "batch": batch, "crop": crop,
                    "sample_rate": sr, "runs": runs, "first_step_s": round(times[0], 2)}
        step = float(np.median(times[1:]))
        out.append(record(f"{name}: training step, stage {stage}", 1.0 / step, "steps/s",
                          settings=settings, note=f"{step:.2f} s per step"))
        out.append(record(f"{name}: training peak memory, stage {stage} (host RSS above start)",
                          mem.host_mib, "MiB", settings=settings,
                          note="includes compilation; lower is better"))
    return out


def run(quick=False, recipes=("rave", "rave_v1"), batch=8, crop=131072, train=True,
        train_runs=None, reference="auto", stages=(1, 2)):
    from benchmarks._rave_reference import load
    from zoo import registry

    set_torch_threads()
    records = []
    if reference != "off":
        rave, why = load()
        if rave is None and reference == "rave":
            raise SystemExit(f"--reference rave: RAVE's code is not importable ({why})")
        if rave is None:
            print(f"RAVE's own code is not importable ({why}): published figures only",
                  file=sys.stderr)
            reference = "off"
    for name in recipes:
        recipe = registry.load_recipe(name)
        model = registry.build(recipe)
        records += inference_records(name, model, 2.0 if quick else 10.0, 2 if quick else 3)
        if reference != "off" and name == "rave_v1":
            records += reference_records(name, model, recipe, 2.0 if quick else 10.0,
                                         3 if quick else 5)
            if train:  # RAVE's multiband distance needs >= 2048 samples per band
                b, c = (2, 32768) if quick else (batch, crop)
                records += reference_training_records(name, model, recipe, b, c,
                                                      train_runs or (2 if quick else 3))
        if train:
            b, c = (2, 16384) if quick else (batch, crop)
            records += training_records(name, model, recipe, b, c,
                                        train_runs or (1 if quick else 2), stages)
    return records


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--recipes", default="rave,rave_v1")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=131072)
    p.add_argument("--no-train", action="store_true")
    p.add_argument("--train-runs", type=int, help="timed training steps per stage (after one "
                   "warm-up step)")
    p.add_argument("--stages", default="1,2",
                   help="training stages timed for each recipe (e.g. 1: skip the slow "
                        "adversarial stage)")
    p.add_argument("--reference", choices=("auto", "rave", "off"), default="auto",
                   help="measure RAVE's own code beside rave_v1 in the same run: 'auto' when "
                        "it is importable (else the published figure only), 'rave' requires "
                        "it, 'off' skips it")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    try:
        stages = tuple(int(v) for v in args.stages.split(",") if v.strip())
    except ValueError:
        p.error(f"--stages {args.stages!r}: expected stage numbers, e.g. 1,2")
    if any(v not in (1, 2) for v in stages):
        p.error(f"--stages {args.stages!r}: RAVE has stages 1 and 2")
    records = run(args.quick, tuple(args.recipes.split(",")), args.batch, args.crop,
                  not args.no_train, args.train_runs, args.reference, stages)
    script_report(records, "rave", args.quick, args.json or results_path("rave"))


if __name__ == "__main__":
    main()
