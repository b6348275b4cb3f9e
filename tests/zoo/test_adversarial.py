"""The adversarial engine: schedules, optimizer state, checkpoints, resume, learning.

A tiny 1-D GAN (noise -> Dense generator -> samples; spectral-norm Dense critic, hinge
losses from ``layers``) is trained with ``fit`` on numpy data drawn from N(3, 0.5^2).
"""
import json
import warnings

import keras
import numpy as np
import pytest
from keras import ops

from layers import SNDense, hinge_discriminator_loss, hinge_generator_loss
from zoo.engine import AdversarialModel, Objective

NOISE = 4
BATCH = 16


@keras.saving.register_keras_serializable(package="test_adversarial")
class TinyGAN(AdversarialModel):
    """Noise -> 1-D samples. ``d_calls`` counts training calls of the critic loss."""

    def __init__(self, units=16, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.units, self.seed = units, seed
        self.generator = keras.Sequential(
            [keras.layers.Dense(units, activation="relu"), keras.layers.Dense(1)], name="generator")
        self.discriminator = keras.Sequential(
            [SNDense(units), keras.layers.LeakyReLU(0.2), keras.layers.Dense(1)],
            name="discriminator")
        self.noise = keras.random.SeedGenerator(seed)
        self.d_calls = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                       name="d_calls")

    def build(self, input_shape=None):
        self.generator.build((None, NOISE))
        self.discriminator.build((None, 1))
        self.built = True

    def call(self, noise, training=False):
        return self.generator(noise, training=training)

    def objectives(self):
        return [Objective("discriminator", "discriminator", self.discriminator_loss,
                          metrics=("real_score", "fake_score"), role="discriminator"),
                Objective("generator", self.generator, self.generator_loss)]

    def _fake(self, real, training):
        z = keras.random.normal((ops.shape(real)[0], NOISE), seed=self.noise)
        return self.generator(z, training=training)

    def discriminator_loss(self, real, training):
        fake = ops.stop_gradient(self._fake(real, training))
        r = self.discriminator(real, training=training)
        f = self.discriminator(fake, training=training)
        if training:
            self.d_calls.assign_add(1.0)
        return hinge_discriminator_loss(r, f), {"real_score": ops.mean(r), "fake_score": ops.mean(f)}

    def generator_loss(self, real, training):
        return hinge_generator_loss(self.discriminator(self._fake(real, training), training=training))

    def get_config(self):
        return {**super().get_config(), "units": self.units, "seed": self.seed}


RECIPE = {"learning_rate": 3e-3, "beta_1": 0.0, "discriminator_learning_rate": 1e-2}


def data(batches, batch=BATCH, seed=0):
    return (3.0 + 0.5 * np.random.default_rng(seed).standard_normal((batches * batch, 1))).astype(
        "float32")


def make(recipe=None, **overrides):
    model = TinyGAN(name="gan")
    model.build()
    model.compile_from_recipe({**RECIPE, **(recipe or {}), **overrides})
    return model


def iterations(model):
    return {name: int(ops.convert_to_numpy(model.objective_optimizer(name).iterations))
            for name in ("discriminator", "generator")}


def numpy(v):
    return np.asarray(ops.convert_to_numpy(v))


def sn_u(model):
    return numpy(model.discriminator.layers[0].sn_u)


def seed_state(model):
    return numpy(model.noise.state)


def optimizer_state(model):
    return {name: [numpy(v) for v in model.objective_optimizer(name).variables]
            for name in ("discriminator", "generator")}


@pytest.fixture(scope="module")
def trained():
    """k=3 critic updates per generator update on consecutive batches, 12 batches."""
    keras.utils.set_random_seed(0)
    model = make(discriminator_steps=3)
    before = {"weights": [numpy(v) for v in model.trainable_variables],
              "sn_u": sn_u(model), "seed": seed_state(model)}
    history = model.fit(data(12), batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    return model, history.history, before


def test_schedule_counts_state_and_metrics(trained):
    model, history, before = trained
    assert model.schedule == {"discriminator": {"every": 1, "at": [0], "repeats": 1},
                              "generator": {"every": 3, "at": [2], "repeats": 1}}
    # Discriminator on every batch, generator on batches 2, 5, 8, 11.
    assert iterations(model) == {"discriminator": 12, "generator": 4}
    assert int(numpy(model.optimizer.iterations)) == 12
    assert int(numpy(model.adversarial_step)) == 12
    # Non-trainable state written inside a loss persists (JAX carries it in fit's state).
    assert float(numpy(model.d_calls)) == 12.0
    assert not np.allclose(sn_u(model), before["sn_u"])
    assert not np.array_equal(seed_state(model), before["seed"])
    changed = {var.path for old, var in zip(before["weights"], model.trainable_variables)
               if not np.allclose(old, numpy(var))}
    # Every variable of both networks moves, except perhaps the critic's output bias: its
    # hinge gradient -P(D(x) < 1) + P(D(G(z)) > -1) is exactly 0 while all margins are active.
    exempt = model.discriminator.layers[-1].bias.path
    assert {v.path for v in model.trainable_variables} - changed <= {exempt}
    assert set(history) == {"loss", "discriminator_loss", "generator_loss", "real_score",
                            "fake_score"}
    assert all(np.isfinite(v[0]) for v in history.values())


@pytest.mark.parametrize("recipe, batches, expected", [
    ({"discriminator_steps": 2, "discriminator_steps_mode": "same_batch"}, 6,
     {"discriminator": 12, "generator": 6}),
    ({"schedule": {"discriminator": {"every": 4, "at": 0},
                   "generator": {"every": 4, "at": [1, 2, 3]}}}, 8,
     {"discriminator": 2, "generator": 6}),
])
def test_other_schedules(recipe, batches, expected):
    model = make(recipe)
    model.fit(data(batches), batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    assert iterations(model) == expected
    # A scheduled-out objective is not run at all: its loss-side state stays put.
    assert float(numpy(model.d_calls)) == expected["discriminator"]
    assert int(numpy(model.optimizer.iterations)) == batches


def test_gan_learns_the_data_mean():
    model = make()
    z = np.random.default_rng(1).standard_normal((2000, NOISE)).astype("float32")
    start = float(np.mean(numpy(model(z))))
    model.fit(data(250, batch=64), batch_size=64, epochs=1, shuffle=False, verbose=0)
    end = float(np.mean(numpy(model(z))))
    assert abs(start - 3.0) > 1.5
    assert abs(end - 3.0) < 0.3, (start, end)


def test_keras_round_trip_is_exact(trained, tmp_path):
    model, _, _ = trained
    path = tmp_path / "gan.keras"
    model.save(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = keras.saving.load_model(path)
    assert not [w for w in caught if "Skipping variable loading" in str(w.message)]
    assert type(loaded) is TinyGAN and loaded.schedule == model.schedule
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    z = np.random.default_rng(2).standard_normal((8, NOISE)).astype("float32")
    np.testing.assert_array_equal(numpy(model(z)), numpy(loaded(z)))
    assert iterations(loaded) == {"discriminator": 12, "generator": 4}
    for name, values in optimizer_state(model).items():
        restored = optimizer_state(loaded)[name]
        assert len(values) == len(restored) > 2  # iterations, learning rate, moments
        for a, b in zip(values, restored):
            np.testing.assert_array_equal(a, b)
    lr = loaded.objective_optimizer("discriminator").learning_rate
    np.testing.assert_allclose(numpy(lr), 1e-2, rtol=1e-6)
    # test_step: every loss, no update.
    weights = loaded.get_weights()
    logs = loaded.evaluate(data(2), batch_size=BATCH, verbose=0, return_dict=True)
    assert {"loss", "discriminator_loss", "generator_loss", "real_score"} <= set(logs)
    assert iterations(loaded) == {"discriminator": 12, "generator": 4}
    for a, b, var in zip(weights, loaded.get_weights(), loaded.weights):
        if not var.path.endswith("seed_generator_state"):
            np.testing.assert_array_equal(a, b)


def test_resume_equals_uninterrupted(tmp_path):
    x = data(12, seed=3)
    recipe = {"discriminator_steps": 4}  # generator on batches 3, 7, 11: crosses the cut
    straight = make(recipe)
    first = make(recipe)
    first.set_weights(straight.get_weights())
    straight.fit(x, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)

    first.fit(x[:6 * BATCH], batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    first.save(tmp_path / "checkpoint.keras")
    resumed = keras.saving.load_model(tmp_path / "checkpoint.keras")
    resumed.fit(x[6 * BATCH:], batch_size=BATCH, epochs=1, shuffle=False, verbose=0)

    assert iterations(resumed) == iterations(straight) == {"discriminator": 12, "generator": 3}
    for var, a, b in zip(straight.weights, straight.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=var.path)
    for name, values in optimizer_state(straight).items():
        for a, b in zip(values, optimizer_state(resumed)[name]):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_compile_from_recipe_and_config():
    model = make({"beta_1": 0.5, "discriminator_beta_2": 0.9, "generator_clipnorm": 1.0,
                  "discriminator_steps": 5, "schedule": {"discriminator": {"repeats": 2}}})
    d, g = model.objective_optimizer("discriminator"), model.objective_optimizer("generator")
    assert (float(d.beta_1), float(d.beta_2), d.clipnorm) == (0.5, 0.9, None)
    assert (float(g.beta_1), float(g.beta_2), g.clipnorm) == (0.5, 0.999, 1.0)
    np.testing.assert_allclose(numpy(g.learning_rate), 3e-3, rtol=1e-6)
    assert model.schedule == {"discriminator": {"every": 1, "at": [0], "repeats": 2},
                              "generator": {"every": 5, "at": [4], "repeats": 1}}
    config = json.loads(json.dumps(model.get_compile_config()))
    fresh = TinyGAN(name="gan")
    fresh.build()
    fresh.compile_from_config(config)
    assert fresh.schedule == model.schedule
    assert len(fresh.optimizer.variables) == len(model.optimizer.variables)
    assert fresh.objective_optimizer("generator").get_config() == g.get_config()


class _Misdeclared(TinyGAN):
    def __init__(self, case="overlap", **kwargs):
        super().__init__(**kwargs)
        self.case = case

    def objectives(self):
        d = Objective("discriminator", "discriminator", self.discriminator_loss,
                      metrics=("real_score", "fake_score"))
        if self.case == "overlap":
            return [d, Objective("generator", "", self.generator_loss)]
        return [d]  # the generator's variables belong to no objective


@pytest.mark.parametrize("case, message", [("overlap", "trained by both"),
                                           ("orphan", "belong to no objective")])
def test_misdeclared_objectives_fail_at_compile(case, message):
    model = _Misdeclared(case=case)
    model.build()
    with pytest.raises(ValueError, match=message):
        model.compile(optimizer="adam")


def test_bad_compile_arguments():
    model = TinyGAN()
    with pytest.raises(ValueError, match="missing"):
        model.compile(optimizer={"generator": "adam"})
    with pytest.raises(ValueError, match="residues"):
        model.compile(schedule={"generator": {"every": 2, "at": 2}})
    with pytest.raises(ValueError, match="unknown objectives"):
        model.compile(schedule={"critic": {"every": 2}})
