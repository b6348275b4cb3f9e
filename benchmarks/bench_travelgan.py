"""TraVeLGAN (MelGAN-VC) speed: training steps/s and conversion audio-seconds/s vs a TF reference.

For the current KERAS_BACKEND, measures in one run:
  * ours, training and ``convert`` of the recipe model -- ``bench_models.run_model("travelgan")``
    (the suite's ``model:travelgan``): ``compile_from_recipe`` then ``fit`` on paired waveform
    batches ``(a, b)`` of the recipe's crops from its data pipeline; one step = one batch =
    one critic update, the generator+siamese updating on every 3rd step
    (``discriminator_steps = 3``, consecutive mode); the spectral front-end (STFT + mel + dB)
    of both domains is inside the step.
  * reference, training -- :func:`reference_rates`: the MelGAN-VC notebook's networks and
    ``tf.function`` steps as it builds them (``benchmarks/_melganvc_reference.py``: Keras 2
    layers via ``tf_keras``, its spectral-norm layers, ``(mels, frames, 1)`` images,
    ``Adam(lr, 0.5)``, ``train_all`` every 3rd batch and ``train_d`` otherwise), at the same
    config; its parameter counts equal the notebook's at 192 mels. It takes PRECOMPUTED mel
    crops (no front-end in the step). It runs beside the zoo whatever the Keras backend;
    skipped with a note when TensorFlow or tf_keras is absent (``pip install tf_keras``).
  * conversion -- :func:`run`: ``convert`` of the shipped ``weights="timbre"`` model and the
    "mel-only" path (front-end + generator on 50 %-overlap chunks + cross-fade, no
    Griffin-Lim) of it and of the recipe model, in x real time (median after a warm-up);
    reference: tf.signal STFT + mel + the notebook's generator on non-overlapping chunks at
    the matching configuration. The reference's waveform inversion (2000 Adam iterations on the mel) is
    NOT timed; ``convert`` includes Griffin-Lim.

``--quick`` uses the recipe's tiny config (3 steps, 2 s of audio); without it the recipe's
reference settings (batch 16, 192 mels x 72 frames). ``run(quick)`` is the suite's entry point
(``python -m benchmarks``).

Usage:
    KERAS_BACKEND=jax taskset -c 1 python benchmarks/bench_travelgan.py [--steps 9] [--quick] [--json out.json]
    taskset -c 1 python benchmarks/bench_travelgan.py --reference-only   # the reference alone
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks._common import (BACKEND, TF_REFERENCE_SKIPPED, block, compiled,  # noqa: E402
                                no_grad, results_path, run_device, script_report,
                                set_torch_threads, tf_references)
from benchmarks._common import median_time as _median_time  # noqa: E402
from benchmarks._records import record  # noqa: E402
from zoo.eval.metrics import real_time_factor  # noqa: E402

AUDIO_SECONDS = 10.0


# ------------------------------------------------------------------ reference (MelGAN-VC)
REFERENCE_NAME = "MelGAN-VC notebook networks and steps (tf_keras, tf.function)"


def _reference_for(mc, train=None):
    """The notebook's networks, optimisers and steps at a model config
    (``benchmarks/_melganvc_reference.py``)."""
    from benchmarks._melganvc_reference import build

    train = train or {}
    return build(mc["n_mels"], mc["chunk_frames"], mc["num_chunks"], mc["generator_channels"],
                 mc["critic_channels"], mc["siamese_dim"], float(train.get("learning_rate", 2e-4)),
                 float(train.get("beta_1", 0.5)), mc["travel_weight"], mc["identity_weight"],
                 mc["margin"])


def reference_convert_fn(tf, generate, sample_rate, n_fft, hop, n_mels, chunk):
    """tf.signal STFT + HTK mel + dB -> [-1, 1], then the notebook's generator on
    non-overlapping 24-frame chunks (its ``(mels, frames, 1)`` layout), joined."""
    mel_w = tf.signal.linear_to_mel_weight_matrix(n_mels, n_fft // 2 + 1, sample_rate, 0.0,
                                                  sample_rate / 2)

    @tf.function
    def features(wave):
        spec = tf.abs(tf.signal.stft(wave, n_fft, hop, n_fft, pad_end=True)) ** 2
        db = 10.0 * tf.math.log(tf.matmul(spec, mel_w) + 1e-10) / np.log(10.0) - 20.0
        return tf.clip_by_value(db, -100.0, 0.0) / 50.0 + 1.0

    def convert(wave):
        feats = features(wave[None])[0]
        pad = (-feats.shape[0]) % chunk
        feats = tf.pad(feats, [[0, pad], [0, 0]], constant_values=-1.0)
        chunks = tf.transpose(tf.reshape(feats, (-1, chunk, n_mels)), (0, 2, 1))[..., None]
        out = generate(chunks)                                  # [n, mels, chunk, 1]
        return tf.reshape(tf.transpose(out[..., 0], (0, 2, 1)), (-1, n_mels)).numpy()

    return convert


# ------------------------------------------------------------------- reference figures
def _reference_convert_rate(tf, mc, seconds, runs, generate=None):
    """x real time of the reference's front-end + generator on ``seconds`` of noise."""
    if generate is None:
        generate = _reference_for(mc)["generate"]
    convert = reference_convert_fn(tf, generate, mc["sample_rate"], mc["n_fft"],
                                   mc["hop_length"], mc["n_mels"], mc["chunk_frames"])
    wave = _noise(seconds, mc["sample_rate"])
    return real_time_factor(seconds, _median_time(lambda: convert(wave), runs))


def _noise(seconds, sample_rate, seed=1):
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * sample_rate))
            ).astype("float32")


def _import_tf():
    """TensorFlow, when it and ``tf_keras`` (the reference's Keras 2) are importable."""
    from benchmarks._melganvc_reference import available

    found, why = available()
    if found is None:
        print(f"    reference skipped: {why}", flush=True)
        return None
    return found[0]


def reference_rates(recipe, model, *, steps, warmup, runs, seconds):
    """The reference's training steps/s and conversion x real time at a recipe's config.

    ``bench_models`` calls this for ``travelgan`` (see ``bench_models.MEASURED``). Training:
    the notebook's loop, ``train_all`` on every ``discriminator_steps``-th batch (its
    ``gupt``) and ``train_d`` on the others, counted as ours (one batch = one step);
    ``warmup`` steps, then the median over ``runs`` runs of ``steps`` steps, on
    precomputed random mel crops. Conversion: front-end + generator on ``seconds`` of
    noise. Returns ``{}`` when TensorFlow or tf_keras cannot be imported.
    """
    tf = _import_tf()
    if tf is None:
        return {}
    mc, train = model.get_config(), recipe["train"]
    bs, k = int(train["batch_size"]), int(train.get("discriminator_steps", 1))
    ref = _reference_for(mc, train)
    frames = mc["num_chunks"] * mc["chunk_frames"]
    rng = np.random.default_rng(0)
    batches = [tuple(tf.constant(rng.uniform(-1, 1, (bs, mc["n_mels"], frames, 1))
                                 .astype("float32")) for _ in range(2)) for _ in range(3)]
    position = [0]

    def ref_steps(n):
        loss = None
        for _ in range(n):
            i = position[0]
            xa, xb = batches[i % len(batches)]
            loss = (ref["train_all"] if i % k == 0 else ref["train_d"])(xa, xb)[0]
            position[0] += 1
        return float(loss)  # waits for the last step

    ref_steps(warmup)
    rates = []
    for _ in range(runs):
        t0 = time.perf_counter()
        ref_steps(steps)
        rates.append(steps / (time.perf_counter() - t0))
    params = ref["params"]
    return {
        "train": (statistics.median(rates), REFERENCE_NAME,
                  f"reference: the notebook's train_all / train_d on precomputed mel crops "
                  f"[{bs}, {mc['n_mels']}, {frames}, 1] (ours: waveforms, STFT+mel inside the "
                  f"step); parameters G / C / S {params['generator']} / {params['critic']} / "
                  f"{params['siamese']}"),
        "inference": (_reference_convert_rate(tf, mc, seconds, min(runs, 3), ref["generate"]),
                      REFERENCE_NAME + " (front-end + generator)",
                      "ours includes 50%-overlap chunks, cross-fade and Griffin-Lim "
                      f"({mc['griffin_lim_iters']} it.); the reference's waveform inversion "
                      "(2000 Adam iterations) is not timed"),
    }


def mel_only_rate(model, seconds, runs):
    """x real time of our front-end + generator on 50%-overlap chunks + cross-fade (compiled
    features + convert_features), without Griffin-Lim."""
    fn = lambda w: model.convert_features(model.features(w))  # noqa: E731
    fn = compiled(fn) or fn
    x = _noise(seconds, model.get_config()["sample_rate"])[None]

    def once():
        with no_grad():
            return block(fn(x))
    return real_time_factor(seconds, _median_time(once, runs))


def run(quick=False, runs=None, seconds=None, references=None):
    """Records of the TraVeLGAN-specific conversions, each beside the MelGAN-VC notebook's
    generator at the same configuration (random weights; TensorFlow and tf_keras needed
    for the reference):

    * the shipped ``weights="timbre"`` model: ``convert`` (with Griffin-Lim) and mel-only;
    * the recipe model (quick: its tiny config): mel-only.

    Training and the recipe model's ``convert`` are ``bench_models``' (``model:travelgan``).
    Quick mode: 2 s of audio, 2 runs, the reference under the TensorFlow backend only (unless
    ``references``); full: 10 s, 3 runs.
    """
    import zoo
    from zoo import registry

    runs = runs or (2 if quick else 3)
    seconds = seconds or (2.0 if quick else AUDIO_SECONDS)
    references = tf_references(quick) if references is None else references
    tf = _import_tf() if references else None
    skipped = ("" if tf is not None else "; reference not measured: " + (
        "TensorFlow is not installed" if references else TF_REFERENCE_SKIPPED))
    recipe_model = registry.build(registry.load_recipe("travelgan", tiny=quick))
    timbre = zoo.load("travelgan", weights="timbre")
    tc = timbre.get_config()
    wave = _noise(seconds, tc["sample_rate"])
    cases = [
        ("travelgan weights=timbre: convert", timbre,
         lambda: real_time_factor(seconds, _median_time(lambda: timbre.convert(wave), runs))),
        ("travelgan weights=timbre: mel-only convert", timbre,
         lambda: mel_only_rate(timbre, seconds, runs)),
        (f"travelgan {'tiny' if quick else 'recipe'}: mel-only convert", recipe_model,
         lambda: mel_only_rate(recipe_model, seconds, runs)),
    ]
    ref_rates = {}
    records = []
    for name, model, measure in cases:
        mc = model.get_config()
        key = tuple(sorted((k, str(v)) for k, v in mc.items()))
        if tf is not None and key not in ref_rates:
            ref_rates[key] = _reference_convert_rate(tf, mc, seconds, runs)
        records.append(record(
            name, measure(), "x real time", reference=ref_rates.get(key),
            reference_name=REFERENCE_NAME + ": front-end + generator, same config",
            settings={"audio_s": seconds, "runs": runs, "n_mels": mc["n_mels"],
                      "n_fft": mc["n_fft"], "hop": mc["hop_length"],
                      "generator_channels": mc["generator_channels"],
                      "griffin_lim_iters": mc["griffin_lim_iters"]},
            note=("mel-only: ours on 50%-overlap chunks (about 2x the reference's generator "
                  "work), no waveform inversion on either side" if "mel-only" in name else
                  "ours includes Griffin-Lim; the reference's inversion is not timed")
            + skipped))
    return records


# ------------------------------------------------------------------------------ main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="the recipe's tiny config, 3 steps, 2 s of audio")
    parser.add_argument("--steps", type=int, default=None,
                        help="timed training steps per run (default 9, quick 3)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs (median)")
    parser.add_argument("--json", default=None,
                        help="output file (default: "
                             "benchmarks/results/travelgan_speed_<backend>.json)")
    parser.add_argument("--reference-only", action="store_true",
                        help="only the reference's training steps/s, in this fresh process "
                             "(no zoo model has trained in it: compare with the in-run figure)")
    args = parser.parse_args(argv)
    from benchmarks.bench_models import run_model

    set_torch_threads()
    print(f"backend {BACKEND}; {run_device()}", flush=True)
    if args.reference_only:
        from zoo import registry

        recipe = registry.load_recipe("travelgan", tiny=args.quick)
        rates = reference_rates(recipe, registry.build(recipe),
                                steps=args.steps or (3 if args.quick else 9),
                                warmup=3, runs=args.runs, seconds=2.0)
        if not rates:
            raise SystemExit("bench_travelgan: --reference-only needs TensorFlow and tf_keras")
        print(f"reference training: {rates['train'][0]:.3g} steps/s ({rates['train'][1]})")
        return
    records = run_model("travelgan", args.quick, steps=args.steps or (3 if args.quick else 9),
                        runs=args.runs, references=True)
    records += run(args.quick, runs=args.runs, references=True)
    script_report(records, "travelgan", args.quick, args.json or results_path("travelgan_speed"))


if __name__ == "__main__":
    main()
