"""TraVeLGAN (MelGAN-VC) speed: training steps/s and conversion audio-seconds/s vs a TF reference.

For the current KERAS_BACKEND, measures in one run:
  * ours, training -- ``zoo.load("travelgan")`` (recipes/travelgan.toml reference settings),
    ``compile_from_recipe`` then ``fit`` on paired waveform batches ``(a, b)`` of shape
    [16, crop_length]; steps/s over ``--steps`` steps after a warm-up ``fit``. One step = one
    batch = one critic update, the generator+siamese updating on every 3rd step
    (``discriminator_steps = 3``, consecutive mode). Includes the spectral front-end
    (STFT + mel + dB) of both domains inside the step.
  * reference, training -- a compact plain-TensorFlow transcription of MelGAN-VC
    (REFERENCE.md): SN U-Net generator, SN critic, siamese; hinge + TraVeL + margin +
    identity; Adam 2e-4 / 0.5; same step counting. It takes PRECOMPUTED mel crops
    [16, 72, 192] (no front-end in the step). Written with raw tf ops (tf.Variable,
    tf.nn.conv1d, hand-written Adam and one-iteration spectral norm), so it runs with
    TensorFlow whatever the Keras backend; skipped with a note when TF is absent.
  * conversion -- ``model.convert`` of a 10 s waveform (median of 3 after a warm-up), audio
    seconds per second, for the recipe model (random weights) and the shipped
    ``weights="timbre"`` model; reference: tf.signal STFT + mel + generator on
    non-overlapping 24-frame chunks, at the matching configuration. The reference's
    waveform inversion (2000 Adam iterations on the mel) is NOT timed; ours includes
    its 50 %-overlap chunking, cross-fade and Griffin-Lim.

Usage:
    KERAS_BACKEND=jax taskset -c 1 python benchmarks/bench_travelgan.py [--steps 9] [--quick] [--json out.json]
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks._common import BACKEND, block, compiled, device_description, no_grad  # noqa: E402
from benchmarks._common import median_time as _median_time  # noqa: E402

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


# ------------------------------------------------------------------------------ main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=9, help="timed training steps (batches)")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up steps (compilation)")
    parser.add_argument("--runs", type=int, default=3, help="conversion runs (median)")
    parser.add_argument("--quick", action="store_true", help="3 timed steps, 3 warm-up steps")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--json", default=None,
                        help="output file (default benchmarks/results/travelgan_speed_<backend>.json)")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.warmup = 3, 3

    import keras

    import zoo
    from zoo.registry import load_recipe

    recipe = load_recipe("travelgan")
    mc, train = recipe["model_config"], recipe["train"]
    bs, crop = int(train["batch_size"]), int(recipe["data"]["crop_length"])
    k = int(train.get("discriminator_steps", 1))
    rng = np.random.default_rng(0)
    rows, notes = [], []
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    device = f"{device_description()}, {affinity} usable by this process"
    print(f"backend: {BACKEND} | keras {keras.__version__} | device: {device}")
    print(f"recipe: batch {bs}, crop_length {crop}, {mc['n_mels']} mels x "
          f"{mc['num_chunks']} x {mc['chunk_frames']} frames, discriminator_steps {k}; "
          f"{args.steps} timed steps after {args.warmup} warm-up", flush=True)

    # ---------------------------------------------------------------- ours: training
    model = zoo.load("travelgan")
    model.compile_from_recipe(train)
    n_wave = (args.warmup + args.steps) * bs
    a = (0.1 * rng.standard_normal((n_wave, crop))).astype("float32")
    b = (0.1 * rng.standard_normal((n_wave, crop))).astype("float32")
    w = args.warmup * bs
    t0 = time.perf_counter()
    model.fit(a[:w], b[:w], batch_size=bs, epochs=1, shuffle=False, verbose=0)
    compile_s = time.perf_counter() - t0
    batch_times = []

    class _BatchTimer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.t = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            batch_times.append(time.perf_counter() - self.t)

    t0 = time.perf_counter()
    model.fit(a[w:], b[w:], batch_size=bs, epochs=1, shuffle=False, verbose=0,
              callbacks=[_BatchTimer()])
    ours_train = args.steps / (time.perf_counter() - t0)
    # steps args.warmup + i; the generator runs where step % k == k - 1
    gen = [t for i, t in enumerate(batch_times) if (args.warmup + i) % k == k - 1]
    crit = [t for i, t in enumerate(batch_times) if (args.warmup + i) % k != k - 1]
    step_split = {"critic_only_step_s": statistics.median(crit) if crit else None,
                  "generator_step_s": statistics.median(gen) if gen else None}
    print(f"ours: {ours_train:.3f} steps/s (warm-up fit {compile_s:.1f} s; median step: "
          f"critic-only {step_split['critic_only_step_s']}, with generator "
          f"{step_split['generator_step_s']} s)", flush=True)

    # -------------------------------------------------------------- ours: conversion
    wave = (0.1 * rng.standard_normal(int(AUDIO_SECONDS * mc["sample_rate"]))).astype("float32")
    ours_conv = AUDIO_SECONDS / _median_time(lambda: model.convert(wave), args.runs)
    timbre = zoo.load("travelgan", weights="timbre")
    tc = timbre.get_config()
    wave_t = (0.1 * rng.standard_normal(int(AUDIO_SECONDS * tc["sample_rate"]))).astype("float32")
    timbre_conv = AUDIO_SECONDS / _median_time(lambda: timbre.convert(wave_t), args.runs)
    print(f"ours convert: recipe {ours_conv:.2f}, timbre {timbre_conv:.2f} audio s/s", flush=True)

    def mel_only(m, x):
        """Front-end + generator on overlapping chunks + cross-fade, no Griffin-Lim."""
        fn = lambda w: m.convert_features(m.features(w))  # noqa: E731
        fn = compiled(fn) or fn
        x = x[None]

        def run():
            with no_grad():
                return block(fn(x))
        return AUDIO_SECONDS / _median_time(run, args.runs)

    ours_mel = mel_only(model, wave)
    timbre_mel = mel_only(timbre, wave_t)
    print(f"ours mel-only convert: recipe {ours_mel:.2f}, timbre {timbre_mel:.2f} audio s/s",
          flush=True)

    # ------------------------------------------------------------------- reference
    ref_train = ref_conv = ref_timbre_conv = None
    ref_params = None
    tf = None
    if not args.no_reference:
        try:
            import tensorflow as tf
        except ImportError:
            notes.append("reference skipped: TensorFlow is not installed")
    if tf is not None:
        d_step, g_step, generate, ref_params = build_reference(
            tf, mc["n_mels"], mc["generator_channels"], mc["critic_channels"], mc["siamese_dim"],
            mc["chunk_frames"], mc["num_chunks"], float(train["learning_rate"]),
            float(train["beta_1"]), float(train["beta_2"]), mc["travel_weight"],
            mc["identity_weight"], mc["margin"])
        frames = mc["num_chunks"] * mc["chunk_frames"]
        batches = [(tf.constant(rng.uniform(-1, 1, (bs, frames, mc["n_mels"])).astype("float32")),
                    tf.constant(rng.uniform(-1, 1, (bs, frames, mc["n_mels"])).astype("float32")))
                   for _ in range(3)]

        def ref_steps(n, start):
            loss = None
            for i in range(start, start + n):
                xa, xb = batches[i % len(batches)]
                loss = d_step(xa, xb)
                if i % k == k - 1:
                    loss = g_step(xa, xb)
            return float(loss)  # waits for the last step

        ref_steps(args.warmup, 0)
        t0 = time.perf_counter()
        ref_steps(args.steps, args.warmup)
        ref_train = args.steps / (time.perf_counter() - t0)
        convert = reference_convert_fn(tf, generate, mc["sample_rate"], mc["n_fft"],
                                       mc["hop_length"], mc["n_mels"], mc["chunk_frames"])
        ref_conv = AUDIO_SECONDS / _median_time(lambda: convert(wave), args.runs)
        _, _, generate_t, _ = build_reference(tf, tc["n_mels"], tc["generator_channels"],
                                              tc["critic_channels"], tc["siamese_dim"],
                                              tc["chunk_frames"], tc["num_chunks"])
        convert_t = reference_convert_fn(tf, generate_t, tc["sample_rate"], tc["n_fft"],
                                         tc["hop_length"], tc["n_mels"], tc["chunk_frames"])
        ref_timbre_conv = AUDIO_SECONDS / _median_time(lambda: convert_t(wave_t), args.runs)
        print(f"reference: {ref_train:.3f} steps/s, convert {ref_conv:.2f} / "
              f"{ref_timbre_conv:.2f} audio s/s", flush=True)

    # ----------------------------------------------------------------------- table
    def ratio(x, y):
        return None if y is None else x / y

    rows = [
        ("train, recipe (steps/s)", ours_train, ref_train),
        ("convert 10 s, recipe (audio s/s)", ours_conv, ref_conv),
        ("convert 10 s, weights=timbre (audio s/s)", timbre_conv, ref_timbre_conv),
        ("mel-only convert 10 s, recipe (audio s/s)", ours_mel, ref_conv),
        ("mel-only convert 10 s, timbre (audio s/s)", timbre_mel, ref_timbre_conv),
    ]
    print()
    print(f"TraVeLGAN speed -- backend {BACKEND}, {device}")
    print(f"{'measure':44s} {'ours':>10s} {'reference':>10s} {'ours/ref':>9s}")
    for name, ours, ref in rows:
        r = ratio(ours, ref)
        print(f"{name:44s} {ours:10.3f} {('%10.3f' % ref) if ref else '       n/a'} "
              f"{('%9.2f' % r) if r else '      n/a'}")
    notes += [
        f"one step = one batch of {bs}: one critic update, generator+siamese update every "
        f"{k} steps (both sides); variant {model.variant!r}",
        "ours trains on waveforms [16, %d] and computes STFT+mel+dB of both domains inside the "
        "step; the reference takes precomputed mel crops [16, %d, %d]"
        % (crop, mc["num_chunks"] * mc["chunk_frames"], mc["n_mels"]),
        "reference: raw TensorFlow ops (tf.function), one-iteration spectral norm, "
        "hand-written Adam, BatchNorm on batch statistics; %s generator parameters"
        % (ref_params if ref_params else "n/a"),
        "conversion: ours = front-end + generator on 50%%-overlap chunks + cross-fade + "
        "Griffin-Lim (%d iters); 'mel-only' rows stop before Griffin-Lim (ours: compiled "
        "features + convert_features, 50%%-overlap chunks: ~2x the generator work); reference = "
        "front-end + generator on non-overlapping chunks, its waveform inversion (2000 Adam "
        "iterations) not timed" % mc["griffin_lim_iters"],
        "weights=timbre: %d mels, n_fft %d, hop %d, generator %d ch; the reference row uses the "
        "same configuration with random weights"
        % (tc["n_mels"], tc["n_fft"], tc["hop_length"], tc["generator_channels"]),
    ]
    for n in notes:
        print(f"note: {n}")

    out = Path(args.json) if args.json else (
        Path(__file__).resolve().parent / "results" / f"travelgan_speed_{BACKEND}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "backend": BACKEND, "keras": keras.__version__, "device": device,
        "variant": model.variant, "quick": args.quick, "steps": args.steps, "warmup": args.warmup, "batch_size": bs,
        "crop_length": crop, "ours_step_times": step_split, "results": [
            {"measure": name, "ours": ours, "reference": ref, "ratio": ratio(ours, ref)}
            for name, ours, ref in rows],
        "notes": notes,
    }, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
