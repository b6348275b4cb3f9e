"""Run by test_distribute.py in a fresh process (the device count is fixed when the
backend starts): trains each model for a few steps on one device and data-parallel on
two CPU devices at the same global batch and prints the losses and weight sums as JSON."""
import json
import sys

import keras
import numpy as np
from keras import ops

from zoo.engine import AdversarialModel, Objective, backend
from zoo.training.trainer import train

STEPS = 4


@keras.saving.register_keras_serializable(package="test_distribute")
class PairGAN(AdversarialModel):
    """Deterministic two-objective model: a Dense "generator" maps each real vector to a
    fake one, a Dense critic tells them apart (hinge losses, per-sample means)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.generator = keras.Sequential([keras.layers.Dense(8, activation="tanh"),
                                           keras.layers.Dense(4)], name="generator")
        self.discriminator = keras.Sequential([keras.layers.Dense(8, activation="tanh"),
                                               keras.layers.Dense(1)], name="discriminator")

    def build(self, input_shape=None):
        self.generator.build((None, 4))
        self.discriminator.build((None, 4))
        self.built = True

    def call(self, x, training=False):
        return self.generator(x, training=training)

    def objectives(self):
        return [Objective("discriminator", "discriminator", self.critic_loss,
                          role="discriminator"),
                Objective("generator", self.generator, self.generator_loss)]

    def critic_loss(self, real, training):
        fake = ops.stop_gradient(self.generator(real, training=training))
        return (ops.mean(ops.relu(1.0 - self.discriminator(real)))
                + ops.mean(ops.relu(1.0 + self.discriminator(fake)))), {}

    def generator_loss(self, real, training):
        return -ops.mean(self.discriminator(self.generator(real, training=training))), {}


def weight_sum(model):
    return float(sum(np.sum(np.asarray(ops.convert_to_numpy(v), "float64"))
                     for v in model.trainable_weights))


def run_gan(distributed):
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).standard_normal((8 * STEPS, 4)).astype("float32") + 2.0
    context = backend.current().data_parallel(2) if distributed else None
    with context or _null():
        model = PairGAN()
        model.build()
        model.compile_from_recipe({"learning_rate": 1e-2, "beta_1": 0.5})
        hist = model.fit(x, batch_size=8, epochs=1, shuffle=False, verbose=0)
        model.sync_state()
    return hist.history["loss"][-1], weight_sum(model)


class _null:
    def __enter__(self):
        return 1

    def __exit__(self, *exc):
        return False


def run_zoo(name, distributed, out):
    result = train(name, tiny=True, steps=STEPS, out=out, verbose=0, samples=False,
                   distribute="data" if distributed else None, devices=2 if distributed else None,
                   overrides={"train": {"steps_per_epoch": STEPS, "checkpoint_every": STEPS,
                                        "batch_size": 4}})
    loss, weights = result.history["loss"][-1], weight_sum(result.model)
    keras.backend.clear_session()
    return loss, weights


def main(out, names):
    report = {"devices": None}
    for name in names:
        for distributed in (True, False):
            key = f"{name}/{'data' if distributed else 'single'}"
            if name == "gan":
                report[key] = run_gan(distributed)
            else:
                report[key] = run_zoo(name, distributed, f"{out}/{key}")
            if distributed and report["devices"] is None:
                report["devices"] = len(keras.distribution.list_devices())
    # a data-parallel run resumes like any other
    resumed = train(out=f"{out}/{names[0]}/data", resume=True, steps=STEPS + 2, verbose=0,
                    samples=False, distribute="data")
    report["resumed_step"] = resumed.step
    print("RESULT " + json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2].split(","))
