"""UNIT training speed beside a plain-Keras transcription of its networks and step.

``bench_models`` measures ours (``model:unit``, ``model:unit_avb``: ``compile_from_recipe``
then ``fit`` on paired waveform crops from the recipe's data pipeline, the front-end of
both domains inside the step) and calls :func:`reference_rates` for ``unit``
(``bench_models.MEASURED``): the reference is the UNIT networks at the same size written
as a keras.io example would, in plain Keras on TensorFlow (functional models of stock
layers, a ``tf.function`` train step with two ``tf.GradientTape`` s, two Adam
optimizers with weight decay), trained on precomputed random mel crops (no front-end
in its step). It runs in a subprocess with ``KERAS_BACKEND=tensorflow`` whatever the
backend of the calling process, so a JAX or torch run gets its figure in the same run.

Usage (the reference alone)::

    python benchmarks/bench_unit.py --reference CONFIG_JSON [--steps 10 --warmup 2 --runs 3]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NAME = "plain-Keras (TF) UNIT transcription"


def reference_rates(recipe, model, *, steps, warmup, runs, seconds):
    """``{"train": (steps/s, name, note)}`` of the plain-Keras reference at ``model``'s
    configuration and the recipe's batch, measured in a TensorFlow subprocess (``{}``
    when TensorFlow is not installed)."""
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None:
        print("    reference skipped: TensorFlow is not installed", flush=True)
        return {}
    config = {"model_config": model.get_config(), "batch_size": recipe["train"]["batch_size"],
              "crop_frames": model.frontend.num_frames(recipe["data"]["crop_length"]),
              "learning_rate": recipe["train"]["learning_rate"],
              "weight_decay": recipe["train"].get("weight_decay") or 0.0}
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, __file__, "--reference", json.dumps(config),
                          "--steps", str(steps), "--warmup", str(max(warmup, 1)),
                          "--runs", str(runs)], env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"plain-Keras UNIT reference failed: {out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {"train": (result["steps_per_second"], NAME,
                      f"reference: tf.function step on precomputed mel crops "
                      f"[{config['batch_size']}, {result['frames']}, {result['n_mels']}] (ours: "
                      f"waveforms, STFT + mel inside the step); {result['params']} parameters "
                      f"(ours {model.count_params()})")}


# ---------------------------------------------------------------- the reference
def _networks(keras, mc):
    """UNIT's networks in stock Keras layers, the sizes of ``mc`` (a UNIT config)."""
    L = keras.layers
    c, m, latent = mc["channels"], mc["n_mels"], mc["latent_dim"]

    def leaky(x):
        return L.LeakyReLU(0.2)(x)

    def res(x, i):
        h = L.Conv1D(c, 3, padding="same", dilation_rate=2 ** i)(leaky(x))
        return L.Add()([x, L.Conv1D(c, 1)(leaky(h))])

    def encoder():
        x = keras.Input((None, m))
        h = leaky(L.Conv1D(c, 7, padding="same")(x))
        for _ in range(mc["num_downsamples"]):
            h = leaky(L.Conv1D(c, 4, strides=2, padding="same")(h))
        for i in range(mc["private_blocks"]):
            h = res(h, i)
        return keras.Model(x, h)

    def shared_encoder():
        x = keras.Input((None, c))
        h = x
        for i in range(mc["shared_blocks"]):
            h = res(h, i)
        return keras.Model(x, L.Conv1D(latent, 1)(leaky(h)))

    def shared_generator():
        z = keras.Input((None, latent))
        h = L.Conv1D(c, 1)(z)
        for i in range(mc["shared_blocks"]):
            h = res(h, i)
        return keras.Model(z, h)

    def generator():
        x = keras.Input((None, c))
        h = x
        for i in range(mc["private_blocks"]):
            h = res(h, i)
        for _ in range(mc["num_downsamples"]):
            h = leaky(L.Conv1D(c, 5, padding="same")(L.UpSampling1D(2)(h)))
        return keras.Model(x, L.Conv1D(m, 7, padding="same", activation="tanh")(h))

    def discriminator():
        x = keras.Input((None, m))
        outs, h0 = [], x
        for s in range(mc["discriminator_scales"]):
            if s:
                h0 = L.AveragePooling1D(3, strides=2, padding="same")(h0)
            h, ch = h0, mc["discriminator_channels"]
            for _ in range(mc["discriminator_layers"]):
                h = leaky(L.Conv1D(ch, 4, strides=2, padding="same")(h))
                ch = min(2 * ch, 512)
            outs.append(L.Conv1D(1, 3, padding="same")(h))
        return keras.Model(x, outs)

    return ([encoder(), encoder()], shared_encoder(), shared_generator(),
            [generator(), generator()], [discriminator(), discriminator()])


def _measure(config, steps, warmup, runs):
    import keras
    import numpy as np
    import tensorflow as tf

    mc = config["model_config"]
    encoders, shared_e, shared_g, generators, discriminators = _networks(keras, mc)
    gen_vars = [v for net in (*encoders, shared_e, shared_g, *generators)
                for v in net.trainable_variables]
    dis_vars = [v for net in discriminators for v in net.trainable_variables]
    opt = {k: keras.optimizers.Adam(config["learning_rate"], beta_1=0.5, beta_2=0.999,
                                    weight_decay=config["weight_decay"] or None)
           for k in ("g", "d")}
    w0, w1, w2, w3, w4 = (mc[k] for k in ("gan_weight", "kl_weight", "reconstruction_weight",
                                          "cycle_kl_weight", "cycle_weight"))
    bce = keras.losses.BinaryCrossentropy(from_logits=True)

    def encode(x, d):
        mu = shared_e(encoders[d](x, training=True), training=True)
        return mu + tf.random.normal(tf.shape(mu)), mu

    def generate(z, d):
        return generators[d](shared_g(z, training=True), training=True)

    def gan_d(real, fake):
        return sum(bce(tf.ones_like(r), r) + bce(tf.zeros_like(f), f) for r, f in zip(real, fake))

    def gan_g(fake):
        return sum(bce(tf.ones_like(f), f) for f in fake)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            crossed = [generate(encode(x[0], 0)[0], 1), generate(encode(x[1], 1)[0], 0)]
            d_loss = w0 * sum(gan_d(discriminators[d](x[d], training=True),
                                    discriminators[d](tf.stop_gradient(crossed[1 - d]),
                                                      training=True)) for d in (0, 1))
        opt["d"].apply_gradients(zip(tape.gradient(d_loss, dis_vars), dis_vars))
        with tf.GradientTape() as tape:
            loss = 0.0
            for d in (0, 1):
                z, mu = encode(x[d], d)
                to_other = generate(z, 1 - d)
                z_back, mu_back = encode(to_other, 1 - d)
                loss += w0 * gan_g(discriminators[1 - d](to_other, training=True))
                loss += (w1 + w3) * 0.5 * tf.reduce_mean(mu ** 2)
                loss += w3 * 0.5 * tf.reduce_mean(mu_back ** 2)
                loss += w2 * tf.reduce_mean(tf.abs(generate(z, d) - x[d]))
                loss += w4 * tf.reduce_mean(tf.abs(generate(z_back, d) - x[d]))
        opt["g"].apply_gradients(zip(tape.gradient(loss, gen_vars), gen_vars))
        return loss

    frames = -(-config["crop_frames"] // 2 ** mc["num_downsamples"]) * 2 ** mc["num_downsamples"]
    rng = np.random.default_rng(0)
    batches = [tf.constant(rng.uniform(-1, 1, (2, config["batch_size"], frames, mc["n_mels"]))
                           .astype("float32")) for _ in range(3)]

    def run_steps(n):
        loss = None
        for i in range(n):
            loss = step(batches[i % 3])
        return float(loss)

    run_steps(warmup)
    rates = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run_steps(steps)
        rates.append(steps / (time.perf_counter() - t0))
    params = sum(int(np.prod(v.shape)) for v in gen_vars + dis_vars)
    return {"steps_per_second": statistics.median(rates), "frames": frames,
            "n_mels": mc["n_mels"], "params": params}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", required=True, help="JSON config (see reference_rates)")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    print(json.dumps(_measure(json.loads(args.reference), args.steps, args.warmup, args.runs)))


if __name__ == "__main__":
    main()
