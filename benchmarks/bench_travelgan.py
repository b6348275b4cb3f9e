"""TraVeLGAN (MelGAN-VC) speed: training steps/s and conversion audio-seconds/s vs a TF reference.

For the current KERAS_BACKEND, measures in one run:
  * ours, training and ``convert`` of the recipe model -- ``bench_models.run_model("travelgan")``
    (the suite's ``model:travelgan``): ``compile_from_recipe`` then ``fit`` on paired waveform
    batches ``(a, b)`` of the recipe's crops from its data pipeline; one step = one batch =
    one critic update, the generator+siamese updating on every 3rd step
    (``discriminator_steps = 3``, consecutive mode); the spectral front-end (STFT + mel + dB)
    of both domains is inside the step.
  * reference, training -- :func:`reference_rates`: a compact plain-TensorFlow transcription
    of MelGAN-VC (REFERENCE.md): SN U-Net generator, SN critic, siamese; hinge + TraVeL +
    margin + identity; Adam 2e-4 / 0.5; same step counting, at the same config. It takes
    PRECOMPUTED mel crops (no front-end in the step). Written with raw tf ops (tf.Variable,
    tf.nn.conv1d, hand-written Adam and one-iteration spectral norm), so it runs with
    TensorFlow whatever the Keras backend; skipped with a note when TF is absent.
  * conversion -- :func:`run`: ``convert`` of the shipped ``weights="timbre"`` model and the
    "mel-only" path (front-end + generator on 50 %-overlap chunks + cross-fade, no
    Griffin-Lim) of it and of the recipe model, in x real time (median after a warm-up);
    reference: tf.signal STFT + mel + generator on non-overlapping chunks at the matching
    configuration. The reference's waveform inversion (2000 Adam iterations on the mel) is
    NOT timed; ``convert`` includes Griffin-Lim.

``--quick`` uses the recipe's tiny config (3 steps, 2 s of audio); without it the recipe's
reference settings (batch 16, 192 mels x 72 frames). ``run(quick)`` is the suite's entry point
(``python -m benchmarks``).

Usage:
    KERAS_BACKEND=jax taskset -c 1 python benchmarks/bench_travelgan.py [--steps 9] [--quick] [--json out.json]
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


# ------------------------------------------------------------------ reference (plain TF)
def build_reference(tf, n_mels=192, gen_ch=256, critic_ch=512, siamese_dim=128, chunk=24,
                    num_chunks=3, lr=2e-4, beta_1=0.5, beta_2=0.999, travel_w=10.0,
                    identity_w=0.5, margin=2.0, seed=0):
    """MelGAN-VC networks and train steps in raw TensorFlow. Returns a namespace of tf.functions."""
    rng = np.random.default_rng(seed)
    trainable = {"g": [], "c": [], "s": []}

    def var(group, shape, init="glorot"):
        if init == "glorot":
            fan = np.prod(shape[:-1]) + shape[-1]
            value = rng.uniform(-1, 1, shape) * np.sqrt(6.0 / fan)
        else:
            value = np.full(shape, init)
        v = tf.Variable(value.astype("float32"))
        trainable[group].append(v)
        return v

    def conv_params(group, k, cin, cout, sn):
        w = var(group, (k, cin, cout))
        u = tf.Variable(rng.normal(size=(1, cout)).astype("float32"), trainable=False) if sn else None
        return w, u

    def sn_weight(w, u, training):
        if u is None:
            return w
        mat = tf.reshape(w, (-1, w.shape[-1]))
        v = tf.math.l2_normalize(tf.matmul(u, mat, transpose_b=True))
        u_new = tf.math.l2_normalize(tf.matmul(v, mat))
        if training:
            u.assign(tf.stop_gradient(u_new))
        sigma = tf.reduce_sum(tf.matmul(tf.stop_gradient(v), mat) * tf.stop_gradient(u_new))
        return w / sigma

    def bn_params(group, c):
        return var(group, (c,), 1.0), var(group, (c,), 0.0)

    def bn(x, p, training):
        gamma, beta = p
        if training:
            mean, variance = tf.nn.moments(x, axes=[0, 1])
        else:  # moving statistics at their initial values (speed only)
            mean, variance = 0.0, 1.0
        return tf.nn.batch_normalization(x, mean, variance, beta, gamma, 1e-3)

    lrelu = lambda x: tf.nn.leaky_relu(x, 0.2)  # noqa: E731

    def conv(x, p, stride=1, training=False):
        return tf.nn.conv1d(x, sn_weight(*p, training), stride, "SAME")

    def down_params(group, sn):
        return [conv_params(group, 3, n_mels, gen_ch, sn), bn_params(group, gen_ch),
                conv_params(group, 9, gen_ch, gen_ch, sn), bn_params(group, gen_ch),
                conv_params(group, 7, gen_ch, gen_ch, sn), bn_params(group, gen_ch)]

    def down(x, p, training):
        h1 = lrelu(bn(conv(x, p[0], 1, training), p[1], training))
        h2 = lrelu(bn(conv(h1, p[2], 2, training), p[3], training))
        h3 = lrelu(bn(conv(h2, p[4], 2, training), p[5], training))
        return h1, h2, h3

    gp = down_params("g", True) + [conv_params("g", 7, gen_ch, gen_ch, True), bn_params("g", gen_ch),
                                   conv_params("g", 9, 2 * gen_ch, gen_ch, True),
                                   conv_params("g", 1, 2 * gen_ch, n_mels, True)]
    frames = num_chunks * chunk
    cp = [conv_params("c", 3, n_mels, critic_ch, True), conv_params("c", 9, critic_ch, critic_ch, True),
          conv_params("c", 7, critic_ch, critic_ch, True),
          conv_params("c", 1, (frames // 4) * critic_ch, 1, True), var("c", (1,), 0.0)]
    sp = down_params("s", False) + [var("s", ((chunk // 4) * gen_ch, siamese_dim)),
                                     var("s", (siamese_dim,), 0.0)]

    def generator(x, training):
        h1, h2, h3 = down(x, gp[:6], training)
        u = lrelu(bn(conv(tf.repeat(h3, 2, axis=1), gp[6], 1, training), gp[7], training))
        u = tf.concat([u, h2], -1)
        u = lrelu(conv(tf.repeat(u, 2, axis=1), gp[8], 1, training))
        return tf.tanh(conv(tf.concat([u, h1], -1), gp[9], 1, training))

    def critic(x, training):
        h = lrelu(conv(x, cp[0], 1, training))
        h = lrelu(conv(h, cp[1], 2, training))
        h = lrelu(conv(h, cp[2], 2, training))
        w = tf.reshape(sn_weight(*cp[3], training), (-1, 1))
        return tf.matmul(tf.reshape(h, (tf.shape(h)[0], -1)), w) + cp[4]

    def siamese(x, training):
        _, _, h = down(x, sp[:6], training)
        return tf.matmul(tf.reshape(h, (tf.shape(h)[0], -1)), sp[6]) + sp[7]

    class Adam:
        def __init__(self, variables):
            self.vars = variables
            self.m = [tf.Variable(tf.zeros_like(v)) for v in variables]
            self.v = [tf.Variable(tf.zeros_like(v)) for v in variables]
            self.t = tf.Variable(0.0)

        def apply(self, grads):
            t = self.t.assign_add(1.0)
            scale = lr * tf.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
            for var_, g, m, v in zip(self.vars, grads, self.m, self.v):
                m.assign(beta_1 * m + (1 - beta_1) * g)
                v.assign(beta_2 * v + (1 - beta_2) * tf.square(g))
                var_.assign_sub(scale * m / (tf.sqrt(v) + 1e-7))

    d_vars, g_vars = trainable["c"], trainable["g"] + trainable["s"]
    d_opt, g_opt = Adam(d_vars), Adam(g_vars)

    def chunks(x):
        return tf.reshape(x, (-1, chunk, n_mels))

    def join(x):
        return tf.reshape(x, (-1, frames, n_mels))

    @tf.function
    def d_step(a, b):
        with tf.GradientTape() as tape:
            fake = tf.stop_gradient(join(generator(chunks(a), True)))
            loss = 0.5 * (tf.reduce_mean(tf.nn.relu(1 - critic(b, True)))
                          + tf.reduce_mean(tf.nn.relu(1 + critic(fake, True))))
        d_opt.apply(tape.gradient(loss, d_vars))
        return loss

    @tf.function
    def g_step(a, b):
        with tf.GradientTape() as tape:
            g_a = generator(chunks(a), True)
            g_b = generator(chunks(b), True)
            adversarial = -tf.reduce_mean(critic(join(g_a), True))
            a4 = tf.reshape(a, (-1, num_chunks, chunk, n_mels))
            g4 = tf.reshape(g_a, (-1, num_chunks, chunk, n_mels))
            s = siamese(tf.concat([a4[:, 0], a4[:, -1], g4[:, 0], g4[:, -1]], 0), True)
            s_a1, s_a3, s_g1, s_g3 = tf.split(s, 4, 0)
            t, t_g = s_a1 - s_a3, s_g1 - s_g3
            travel = (tf.reduce_mean(tf.square(t - t_g))
                      - tf.reduce_mean(tf.reduce_sum(tf.math.l2_normalize(t, -1)
                                                     * tf.math.l2_normalize(t_g, -1), -1)))
            norm = tf.sqrt(tf.reduce_sum(tf.square(t), -1) + 1e-12)
            margin_l = tf.reduce_mean(tf.square(tf.nn.relu(margin - norm)))
            identity = tf.reduce_mean(tf.abs(g_b - chunks(b)))
            loss = adversarial + travel_w * (travel + margin_l) + identity_w * identity
        g_opt.apply(tape.gradient(loss, g_vars))
        return loss

    @tf.function(reduce_retracing=True)
    def generate(mel_chunks):
        return generator(mel_chunks, False)

    n_params = int(sum(np.prod(v.shape) for v in trainable["g"]))
    return d_step, g_step, generate, n_params


def reference_convert_fn(tf, generate, sample_rate, n_fft, hop, n_mels, chunk):
    """tf.signal STFT + HTK mel + dB -> [-1, 1], then the generator on 24-frame chunks."""
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
        return generate(tf.reshape(feats, (-1, chunk, n_mels))).numpy()

    return convert


# ------------------------------------------------------------------- reference figures
def _reference_for(tf, mc, train=None):
    """The reference networks (and, with ``train``, train steps) at a model config."""
    train = train or {}
    return build_reference(
        tf, mc["n_mels"], mc["generator_channels"], mc["critic_channels"], mc["siamese_dim"],
        mc["chunk_frames"], mc["num_chunks"], float(train.get("learning_rate", 2e-4)),
        float(train.get("beta_1", 0.5)), float(train.get("beta_2", 0.999)),
        mc["travel_weight"], mc["identity_weight"], mc["margin"])


def _reference_convert_rate(tf, mc, seconds, runs, generate=None):
    """x real time of the reference's front-end + generator on ``seconds`` of noise."""
    if generate is None:
        _, _, generate, _ = _reference_for(tf, mc)
    convert = reference_convert_fn(tf, generate, mc["sample_rate"], mc["n_fft"],
                                   mc["hop_length"], mc["n_mels"], mc["chunk_frames"])
    wave = _noise(seconds, mc["sample_rate"])
    return real_time_factor(seconds, _median_time(lambda: convert(wave), runs))


def _noise(seconds, sample_rate, seed=1):
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * sample_rate))
            ).astype("float32")


def _import_tf():
    try:
        import tensorflow as tf
    except ImportError:
        return None
    return tf


def reference_rates(recipe, model, *, steps, warmup, runs, seconds):
    """The reference's training steps/s and conversion x real time at a recipe's config.

    ``bench_models`` calls this for ``travelgan`` (see ``bench_models.MEASURED``). Training:
    ``warmup`` steps, then the median over ``runs`` runs of ``steps`` steps, counted as ours
    (one critic update per step, the generator+siamese on every ``discriminator_steps``-th),
    on precomputed random mel crops. Conversion: front-end + generator on ``seconds`` of noise.
    Returns ``{}`` when TensorFlow cannot be imported.
    """
    tf = _import_tf()
    if tf is None:
        print("    reference skipped: TensorFlow is not installed", flush=True)
        return {}
    mc, train = model.get_config(), recipe["train"]
    bs, k = int(train["batch_size"]), int(train.get("discriminator_steps", 1))
    d_step, g_step, generate, n_params = _reference_for(tf, mc, train)
    frames = mc["num_chunks"] * mc["chunk_frames"]
    rng = np.random.default_rng(0)
    batches = [tuple(tf.constant(rng.uniform(-1, 1, (bs, frames, mc["n_mels"])).astype("float32"))
                     for _ in range(2)) for _ in range(3)]
    position = [0]

    def ref_steps(n):
        loss = None
        for _ in range(n):
            i = position[0]
            xa, xb = batches[i % len(batches)]
            loss = d_step(xa, xb)
            if i % k == k - 1:
                loss = g_step(xa, xb)
            position[0] += 1
        return float(loss)  # waits for the last step

    ref_steps(warmup)
    rates = []
    for _ in range(runs):
        t0 = time.perf_counter()
        ref_steps(steps)
        rates.append(steps / (time.perf_counter() - t0))
    name = "raw-TF MelGAN-VC transcription"
    return {
        "train": (statistics.median(rates), name,
                  f"reference: tf.function steps on precomputed mel crops [{bs}, {frames}, "
                  f"{mc['n_mels']}] (ours: waveforms, STFT+mel inside the step), "
                  f"{n_params} generator parameters"),
        "inference": (_reference_convert_rate(tf, mc, seconds, min(runs, 3), generate),
                      name + " (front-end + generator)",
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
    """Records of the TraVeLGAN-specific conversions, each beside the raw-TF reference at the
    same configuration (random weights; TensorFlow needed for the reference):

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
            reference_name="raw-TF MelGAN-VC front-end + generator, same config",
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
    args = parser.parse_args(argv)
    from benchmarks.bench_models import run_model

    set_torch_threads()
    print(f"backend {BACKEND}; {run_device()}", flush=True)
    records = run_model("travelgan", args.quick, steps=args.steps or (3 if args.quick else 9),
                        runs=args.runs, references=True)
    records += run(args.quick, runs=args.runs, references=True)
    script_report(records, "travelgan", args.quick, args.json or results_path("travelgan_speed"))


if __name__ == "__main__":
    main()
