"""Every registered model: training steps/s, samples/s and peak memory; inference x real time.

Runs over ``zoo.registry.list_models()``, so a model is benchmarked the moment it is
registered, with no code here. For each model, on the current Keras backend:

* training -- the model its recipe describes (``--quick``: the recipe's ``[tiny]`` config),
  compiled from the recipe's ``[train]`` section as ``zoo train`` does, then ``fit`` on batches
  from the recipe's own data pipeline (``[data]`` source and crop length, one crop batch per
  domain for translation models, ``loader="py"``; drawn while training, as ``zoo train`` does).
  One warm-up ``fit`` of one schedule period (every objective of an adversarial model runs,
  so every branch is compiled), then ``runs`` timed ``fit`` calls of ``steps`` batches (a
  whole number of periods); the figure is the median over the runs, timed from the first
  batch to the end of training (``fit``'s set-up is not counted). ``samples/s`` counts the
  audio samples of every input crop (batch x crop length x domains) per second. Peak memory:
  the host RSS high-water mark during warm-up and timed runs above the RSS before them (and
  the GPU peak, on a GPU; see ``benchmarks._common.PeakMemory``).
* inference -- the first of ``reconstruct``, ``convert`` or ``sample`` the model has, on
  ``seconds`` of white noise at the recipe's sample rate, batch 1 (``sample``: one clip of that
  length); median of ``runs`` calls after a warm-up, as x real time (audio seconds per second).

References: a transcription measured in the same run where one exists (``MEASURED``: the
raw-TensorFlow MelGAN-VC of ``bench_travelgan.py`` for ``travelgan`` and the plain-Keras UNIT of
``bench_unit.py`` for ``unit``, when TensorFlow can be
imported; in quick mode only in the TensorFlow run), else a published figure (``PUBLISHED``,
from REFERENCE.md), marked as not measured here.

Usage::

    KERAS_BACKEND=jax taskset -c 1 python benchmarks/bench_models.py [--quick] [--models vae,ae]
"""
import argparse
import importlib
import math
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks._common import (BACKEND, TF_REFERENCE_SKIPPED, PeakMemory, block,  # noqa: E402
                                median_time, no_grad, results_path, run_device, script_report,
                                set_torch_threads, tf_references)
from benchmarks._records import record  # noqa: E402
from zoo.engine import Fitting  # noqa: E402
from zoo.eval.metrics import real_time_factor  # noqa: E402

#: model -> "module:function" returning references measured in this run:
#: ``fn(recipe, model, steps=, warmup=, runs=, seconds=)`` -> {"train": (steps/s, name, note),
#: "inference": (x real time, name, note)} (either key may be missing; {} when unavailable).
MEASURED = {"travelgan": "benchmarks.bench_travelgan:reference_rates",
            "unit": "benchmarks.bench_unit:reference_rates"}

#: model -> {"train" | "inference": (value in the record's unit, what it is)}: published figures.
PUBLISHED = {
    "rave": {"inference": (985e3 / 48e3, "RAVE v1 synthesis on a laptop CPU: 985 kHz = 20.5x "
                                         "real time at 48 kHz (Caillon & Esling 2021)")},
}

#: inference methods in order of preference: name -> call on a model and a [samples] waveform
INFERENCE = {
    "reconstruct": lambda model, wave: model.reconstruct(wave[None]),
    "convert": lambda model, wave: model.convert(wave[None]),
    "sample": lambda model, wave: model.sample(1, int(wave.shape[-1])),
    "stylize": lambda model, wave: model.stylize(wave, wave[::-1].copy()).audio,
}


def schedule_period(model):
    """Batches after which an adversarial model's objective schedule repeats (1 otherwise)."""
    try:
        schedule = model.schedule
    except (AttributeError, RuntimeError):
        return 1
    return math.lcm(*(int(s["every"]) for s in schedule.values())) if schedule else 1


class _TrainTimer(keras.callbacks.Callback):
    """Wall time from the first batch of a ``fit`` to the end of training (results ready)."""

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0:
            self.start = time.perf_counter()

    def on_train_end(self, logs=None):
        block(self.model.trainable_variables[0])  # JAX: wait for the last step
        self.seconds = time.perf_counter() - self.start


def measure_training(model, recipe, steps, runs):
    """Train ``runs`` x ``steps`` batches after a warm-up period; returns (median steps/s,
    PeakMemory, settings)."""
    from zoo.training.trainer import is_paired, recipe_dataset

    dataset = recipe_dataset(recipe)
    paired = is_paired(model)
    batch = int(recipe["train"].get("batch_size", 16))
    seed = int(recipe["data"].get("seed", 0))
    period = schedule_period(model)
    steps = period * max(1, -(-steps // period))
    timer = _TrainTimer()

    def fit(start, n, callbacks=()):
        data = dataset.batches(batch, start_step=start, num_steps=n, seed=seed, loader="py",
                               paired=paired)
        model.fit(data, epochs=1, steps_per_epoch=n, verbose=0, shuffle=False,
                  callbacks=list(callbacks))

    rates = []
    with PeakMemory() as memory:
        fit(0, period)
        for i in range(runs):
            fit(period + i * steps, steps, [timer])
            rates.append(steps / timer.seconds)
    domains = len(dataset.domains) if paired else 1
    settings = {"batch_size": batch, "crop_length": dataset.crop_length, "domains": domains,
                "steps_per_run": steps, "runs": runs, "warmup_steps": period,
                "data": f"{recipe['data']['source']}, recipe pipeline",
                "params": int(model.count_params())}
    return statistics.median(rates), memory, settings


def measure_inference(model, sample_rate, seconds, runs):
    """(x real time, method name): median of ``runs`` calls after a warm-up, or (None, None)
    when the model has none of the :data:`INFERENCE` methods."""
    for name, call in INFERENCE.items():
        if model.supports(name):
            break
    else:
        return None, None
    wave = (0.1 * np.random.default_rng(0).standard_normal(int(seconds * sample_rate))
            ).astype("float32")

    def once():
        with no_grad():
            return block(call(model, wave))

    return real_time_factor(seconds, median_time(once, runs)), name


def _reference(name, metric, measured, tiny):
    """(value, name, published?, note) of a model's reference for ``metric``, or None."""
    if metric in measured:
        value, ref_name, note = measured[metric]
        return value, ref_name, False, note
    if metric in PUBLISHED.get(name, {}):
        value, ref_name = PUBLISHED[name][metric]
        return value, ref_name, True, "published figure, not measured here" + (
            "; this record is of the tiny config, not comparable" if tiny else "")
    return None


def run_model(name, quick=False, tiny=None, steps=None, runs=None, seconds=None,
              references=None):
    """Records of one registered model (see the module docstring).

    Args:
        name: registry name.
        quick: few steps and short audio; also selects the tiny config unless ``tiny`` says.
        tiny: the recipe's ``[tiny]`` config (default: ``quick``).
        steps: timed batches per run (default 3 quick, 10 full; rounded up to whole periods).
        runs: timed runs (default 3 quick, 5 full; inference: 3).
        seconds: inference audio length (default 2 quick, 10 full).
        references: measure the ``MEASURED`` reference too (default: in full mode, and in
            quick mode under TensorFlow only: ``benchmarks._common.tf_references``).
    """
    from zoo import registry
    from zoo.training.trainer import compile_model

    tiny = quick if tiny is None else tiny
    steps = steps or (3 if quick else 10)
    runs = runs or (3 if quick else 5)
    seconds = seconds or (2.0 if quick else 10.0)
    recipe = registry.load_recipe(name, tiny=tiny)
    keras.utils.set_random_seed(int(recipe["data"].get("seed", 0)))
    for key, prerequisite in registry.model_class(name).prerequisites.items():
        if key not in recipe["model_config"]:  # e.g. a prior's VQ-VAE: untrained, same speed
            recipe["model_config"][key] = registry.build(registry.load_recipe(prerequisite,
                                                                               tiny=tiny))
    model = registry.build(recipe)
    config = {"model": name, "config": "tiny" if tiny else "recipe"}
    trains = model.fitting is Fitting.GRADIENT
    if trains:
        compile_model(model, recipe["train"])
        rate, memory, settings = measure_training(model, recipe, steps, runs)
        settings = {**config, **settings}
        samples = settings["batch_size"] * settings["crop_length"] * settings["domains"]
    else:  # fitted in closed form or not at all: inference only
        settings = {**config, "params": int(model.count_params())}
    sample_rate = int(getattr(model, "sample_rate", recipe["model_config"].get("sample_rate",
                                                                               16000)))
    rtf, method = measure_inference(model, sample_rate, seconds, min(runs, 3))

    measured = {}
    references = tf_references(quick) if references is None else references
    missing = None
    if name in MEASURED and not references:
        missing = f"reference not measured: {TF_REFERENCE_SKIPPED}"
        print(f"    {name}: {missing}", flush=True)
    if references and name in MEASURED:
        module, fn = MEASURED[name].split(":")
        measured = getattr(importlib.import_module(module), fn)(
            recipe, model, steps=settings["steps_per_run"], warmup=settings["warmup_steps"],
            runs=runs, seconds=seconds)

    def with_ref(rec_name, value, unit, metric, settings, scale=1.0):
        ref = _reference(name, metric, measured, tiny)
        kwargs = {"note": missing}
        if ref is not None:
            kwargs = {"reference": ref[0] * scale, "reference_name": ref[1],
                      "published": ref[2], "note": ref[3]}
        return record(rec_name, value, unit, settings=settings, **kwargs)

    records = [] if not trains else [
        with_ref(f"{name}: training", rate, "steps/s", "train", settings),
        with_ref(f"{name}: training", rate * samples, "samples/s", "train", settings,
                 scale=samples),
        record(f"{name}: training peak memory (host RSS above start)", memory.host_mib, "MiB",
               settings={**settings, "exact_high_water_mark": memory.host_exact}),
    ]
    if trains and memory.device_mib is not None:
        records.append(record(f"{name}: training peak memory (GPU)", memory.device_mib, "MiB",
                              settings=settings))
    if method is not None:
        records.append(with_ref(
            f"{name}: inference ({method})", rtf, "x real time", "inference",
            {**config, "params": settings["params"], "method": method, "audio_s": seconds,
             "batch": 1, "sample_rate": sample_rate, "input": "white noise",
             "runs": min(runs, 3)}))
    return records


def run(quick=False, models=None, **kwargs):
    """Records of every registered model (or of ``models``); see :func:`run_model`."""
    from zoo.registry import list_models

    records = []
    for name in models or list_models():
        print(f"  model {name} ...", flush=True)
        records += run_model(name, quick, **kwargs)
    return records


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny configs, few steps")
    parser.add_argument("--models", default=None, help="comma-separated registry names")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--torch-threads", type=int, default=None)
    parser.add_argument("--no-json", action="store_true")
    parser.add_argument("--json", help="write the records here instead of "
                        "results/models_<backend>.json (e.g. when measuring a few models)")
    args = parser.parse_args(argv)
    set_torch_threads(args.torch_threads)
    print(f"backend {BACKEND} (keras {keras.__version__}); {run_device()}", flush=True)
    records = run(args.quick, args.models.split(",") if args.models else None,
                  steps=args.steps, runs=args.runs, seconds=args.seconds)
    script_report(records, "models", args.quick,
                  None if args.no_json else (args.json or results_path("models")))


if __name__ == "__main__":
    main()
