"""UNIT and UNIT+AVB: shared blocks are one set of variables, each objective owns its
networks, resume is exact, tiny configs learn against the unconverted-input baseline,
conversion runs both ways, and bad arguments fail in one line."""
import keras
import numpy as np
import pytest
import soundfile as sf
from keras import ops

from zoo import cli, registry
from zoo.data import load_dataset
from zoo.errors import ZooError
from zoo.models.unit import UNIT
from zoo.models.unit_avb import UNITAVB

SR = 16000


def numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


def tiny(name, **overrides):
    keras.utils.set_random_seed(0)
    return registry.build(registry.load_recipe(name, tiny=True), **overrides)


def features(model, seed=0, frames=24):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (2, frames, model.frontend.n_mels)).astype("float32")


# ------------------------------------------------------------------ structure
@pytest.mark.parametrize("name", ["unit", "unit_avb"])
def test_shared_blocks_are_the_same_variables_in_both_branches(name):
    """Moving a shared variable changes both domains' codes (and both generators'
    outputs); moving a private one changes only its own domain."""
    model = tiny(name)
    x = features(model)

    def codes():
        return [numpy(model.encode_domain(x, d)) for d in (0, 1)]

    def outputs(z):
        return [numpy(model.generate(z, d)) for d in (0, 1)]

    z = numpy(model.encode_domain(x, 0))
    before, out_before = codes(), outputs(z)
    shared = model.shared_encoder.trainable_variables[0]
    shared.assign(numpy(shared) + 0.1)
    after = codes()
    assert all(not np.allclose(a, b) for a, b in zip(before, after))
    private = model.encoders[0].trainable_variables[0]
    private.assign(numpy(private) + 0.1)
    moved = codes()
    assert not np.allclose(moved[0], after[0]) and np.array_equal(moved[1], after[1])
    gen_shared = model.shared_generator.trainable_variables[0]
    gen_shared.assign(numpy(gen_shared) + 0.1)
    assert all(not np.allclose(a, b) for a, b in zip(out_before, outputs(z)))


@pytest.mark.parametrize("name", ["unit", "unit_avb"])
def test_mirrored_init_starts_translation_as_reconstruction(name):
    """With ``mirrored_init`` domain B's private encoder and generator start as copies of
    A's (their own variables): A -> B conversion then equals A -> A reconstruction, the
    private tie is zero, and moving B's copy leaves A's alone and costs its squared
    distance. Without it the two conversions differ."""
    model = tiny(name, mirrored_init=True)
    x = features(model)
    for nets in (model.encoders, model.generators):
        a, b = (n.trainable_variables for n in nets)
        assert all(np.array_equal(numpy(u), numpy(v)) for u, v in zip(a, b))
        assert not {id(v) for v in a} & {id(v) for v in b}
    z = model.encode_domain(x, 0)
    np.testing.assert_allclose(numpy(model.translate_chunks(x, source=0, target=1)),
                               numpy(model.translate_chunks(x, source=0, target=0)), atol=1e-6)
    assert float(numpy(model.private_tie())) == 0.0
    moved = model.generators[1].trainable_variables[0]
    moved.assign(numpy(moved) + 0.1)
    assert not np.allclose(numpy(model.generate(z, 1)), numpy(model.generate(z, 0)))
    # the tie is the squared distance between the copies: 0.1^2 per moved element
    np.testing.assert_allclose(float(numpy(model.private_tie())),
                               0.01 * np.prod(moved.shape), rtol=1e-4)
    plain = tiny(name, mirrored_init=False)
    assert not np.allclose(numpy(plain.translate_chunks(x, source=0, target=1)),
                           numpy(plain.translate_chunks(x, source=0, target=0)))


def test_objectives_own_their_networks():
    model = tiny("unit_avb")
    model.compile_from_recipe(registry.load_recipe("unit_avb", tiny=True)["train"])
    owned = {name: {id(v) for v in vs} for name, vs in model._adversarial.var_lists.items()}
    assert list(owned) == ["discriminator", "kl_discriminator", "generator"]

    def ids(*nets):
        return {id(v) for net in nets for v in net.trainable_variables}

    assert owned["discriminator"] == ids(*model.discriminators)
    assert owned["kl_discriminator"] == ids(*model.kl_critics)
    assert owned["generator"] == ids(*model.encoders, model.shared_encoder,
                                     model.shared_generator, *model.generators)
    # the discriminators' last layers are one layer: the same variables, counted once
    a, b = model.discriminators
    assert all(la is lb for la, lb in zip(a.logits, b.logits))
    shared = ids(*a.logits)
    assert shared and shared <= ids(a) and shared <= ids(b)
    assert len(ids(a) | ids(b)) == len(ids(a)) + len(ids(b)) - len(shared)
    # plain UNIT keeps separate discriminators and has no KL critics
    unit = tiny("unit")
    assert not ids(unit.discriminators[0]) & ids(unit.discriminators[1])
    assert [o.name for o in unit.objectives()] == ["discriminator", "generator"]


def test_generator_loss_is_the_seed_weighting():
    model = tiny("unit")
    rng = np.random.default_rng(1)
    a, b = (0.1 * rng.standard_normal((2, 1536)).astype("float32") for _ in range(2))
    model.kl_term = lambda *args, **kw: ops.convert_to_tensor(0.0)  # isolate the other terms
    loss, logs = model.generator_loss((a, b), training=False)
    logs = {k: float(numpy(v)) for k, v in logs.items()}
    expected = 10 * logs["gan"] + 100 * logs["reconstruction"] + 100 * logs["cycle"]
    np.testing.assert_allclose(float(numpy(loss)), expected, rtol=1e-5)


# --------------------------------------------------------------------- resume
def test_resume_is_exact(tmp_path):
    """1 batch + save/load + 1 batch == 2 uninterrupted batches (two objectives with
    their own optimizers, posterior noise in both losses: the seed state is part of the
    checkpoint). UNIT+AVB's third objective is the same engine path."""
    rng = np.random.default_rng(3)
    a, b = (0.1 * rng.standard_normal((4, 1024)).astype("float32") for _ in range(2))

    def fresh():  # eager on TF / torch, where tracing costs more than these 4 steps; the
        # jitted step's resume is the engine's own test (test_adversarial.py)
        model = tiny("unit", private_blocks=0, discriminator_scales=1)  # small graph
        model.compile(optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5),
                      run_eagerly=keras.backend.backend() != "jax")
        return model

    straight, first = fresh(), fresh()
    first.set_weights(straight.get_weights())
    straight.fit((a, b), batch_size=2, epochs=1, shuffle=False, verbose=0)
    first.fit((a[:2], b[:2]), batch_size=2, epochs=1, shuffle=False, verbose=0)
    first.save(tmp_path / "checkpoint.keras")
    resumed = keras.saving.load_model(tmp_path / "checkpoint.keras")
    resumed.fit((a[2:], b[2:]), batch_size=2, epochs=1, shuffle=False, verbose=0)
    for var, x, y in zip(straight.weights, straight.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5, err_msg=var.path)


# ------------------------------------------------------------------- learning
def _mean_spectrum_gap(x, target):
    return float(np.mean(np.abs(x.mean(axis=(0, 1)) - target)))


@pytest.fixture(scope="module", params=["unit", "unit_avb"])
def learned(request):
    """150 batches of 4 on builtin:timbre brass (A) / reed (B), tiny config; the held-out
    conversion's mean-spectrum gap to reed, relative to the unconverted input's, before
    training and after every 50 batches (a GAN's output wanders from batch to batch)."""
    recipe = registry.load_recipe(request.param, tiny=True)
    keras.utils.set_random_seed(0)
    model = registry.build(recipe)
    model.compile_from_recipe({**recipe["train"], "learning_rate": 1e-3})
    ds = load_dataset("builtin:timbre", SR, recipe["data"]["crop_length"], progress=False)
    clips = [ds.clips(16, split="val", seed=1, domain=d) for d in ds.domains[:2]]
    fa, fb = (numpy(model._domain_features(c)) for c in clips)
    target = fb.mean(axis=(0, 1))  # the reed domain's mean log-mel spectrum
    baseline = _mean_spectrum_gap(fa, target)  # the unconverted brass input's
    ratios = [_mean_spectrum_gap(numpy(model.translate_chunks(fa)), target) / baseline]
    batches = iter(ds.batches(4, num_steps=150, paired=True, loader="py", seed=0))
    for _ in range(3):
        model.fit(batches, epochs=1, steps_per_epoch=50, verbose=0)
        ratios.append(_mean_spectrum_gap(numpy(model.translate_chunks(fa)), target) / baseline)
    return model, (fa, fb), ratios


def test_tiny_models_learn_against_the_unconverted_input(learned):
    model, (fa, _), ratios = learned
    assert ratios[0] > 0.8, ratios  # untrained: no closer to reed than the input is
    assert np.mean(ratios[2:]) < 0.75, ratios  # trained (100, 150 batches): clearly closer
    # A -> A reconstructs the clip better than its own time-averaged spectrum does
    recon = numpy(model.translate_chunks(fa, source=0, target=0))
    flat = np.abs(fa - fa.mean(axis=1, keepdims=True)).mean()
    assert np.abs(recon - fa).mean() < 0.75 * flat


def test_conversion_both_ways_any_length_and_the_cli(learned, tmp_path, capsys):
    model = learned[0]
    x = (0.3 * np.sin(2 * np.pi * 220.0 * np.arange(7000) / SR)).astype("float32")
    forward, backward = model.convert(x), model.convert(x, target="A")
    recon = model.reconstruct(x[None])
    assert forward.shape == backward.shape == x.shape and recon.shape == (1, len(x))
    assert not np.allclose(forward, backward)
    np.testing.assert_allclose(model.convert(x, source="B"), backward, atol=1e-5)
    in_graph = numpy(model.translate_backward(x[None]))[0]
    assert np.mean(np.abs(in_graph - backward)) < 1e-3
    model.save(tmp_path / "unit.keras")
    sf.write(tmp_path / "in.wav", x, SR)
    cli.main(["convert", str(tmp_path / "unit.keras"), str(tmp_path / "in.wav"),
              str(tmp_path / "out.wav"), "--to", "A"])
    out, rate = sf.read(tmp_path / "out.wav", dtype="float32")
    assert rate == SR and out.shape == x.shape
    # the WAV round trip quantises the input to 16 bits, which Griffin-Lim amplifies a little
    assert np.mean(np.abs(out - np.clip(backward, -1, 1))) < 1e-3
    assert "wrote" in capsys.readouterr().out


# ----------------------------------------------------------------- bad input
def test_bad_arguments_are_one_line():
    model = tiny("unit")
    with pytest.raises(ZooError, match="target: unknown domain 'C'"):
        model.convert(np.zeros(2000, "float32"), target="C")
    with pytest.raises(ZooError, match="model_config: domains must be two distinct"):
        tiny("unit", domains=["x", "x"])
    with pytest.raises(ZooError, match="model_config: chunk_frames"):
        tiny("unit", chunk_frames=12)
    with pytest.raises(ZooError, match="model_config: noise_dim"):
        tiny("unit_avb", noise_dim=0)
    with pytest.raises(ZooError, match="model_config: private_tie_weight must be >= 0"):
        tiny("unit", private_tie_weight=-1.0)
    named = tiny("unit", domains=["brass", "reed"])
    assert named.conversion_pair("reed") == (1, 0) and named.conversion_pair(target="B") == (0, 1)
    travelgan = registry.build(registry.load_recipe("travelgan", tiny=True))
    with pytest.raises(ZooError, match="converts only"):
        travelgan.convert(np.zeros(2000, "float32"), target="A")
    assert isinstance(model, UNIT) and not isinstance(model, UNITAVB)
