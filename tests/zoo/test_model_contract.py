"""The model contract, checked for every registered model on the current backend
(tiny recipes): config == constructor arguments, ``from_config`` and ``.keras`` round
trips, every declared capability on inputs of any length, streaming == offline.

A new model is covered by registering it (keras-hub's ``run_serialization_test`` and
timm's registry-driven tests are the models for this file).
"""
import keras
import numpy as np
import pytest

import zoo
from zoo import registry
from zoo.engine import Capability, ZooModel
from zoo.recipe import constructor_arguments

BASE_KEYS = {"name", "trainable", "dtype"}
LENGTHS = (300, 4099)  # shorter than most FFT windows; not a multiple of any stride


def tiny(name):
    recipe = registry.load_recipe(name, tiny=True)
    keras.utils.set_random_seed(0)
    return registry.build(recipe)


def numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


@pytest.fixture(scope="module", params=zoo.list_models())
def model(request):
    return tiny(request.param)


def test_declares_the_contract(model):
    assert isinstance(model, ZooModel)
    assert model.active_capabilities() <= type(model).capabilities
    assert "forward" in model.serving_endpoints()
    assert isinstance(model.sample_rate, int) and model.sample_rate > 0


def test_config_is_exactly_the_constructor_arguments(model):
    config = model.get_config()
    assert set(config) - BASE_KEYS == set(constructor_arguments(type(model)))
    clone = type(model).from_config(config)
    assert clone.get_config() == config


def test_keras_file_round_trip_is_exact(model, tmp_path):
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)  # safe mode on
    assert type(restored) is type(model) and restored.get_config() == model.get_config()
    assert len(restored.variables) == len(model.variables)
    for a, b in zip(model.variables, restored.variables):
        np.testing.assert_array_equal(numpy(a), numpy(b), err_msg=a.path)
    if model.supports(Capability.ENCODE):
        x = _signal(2048, model.sample_rate)
        np.testing.assert_array_equal(numpy(model.encode(x[None])), numpy(restored.encode(x[None])))


def _signal(n, sr, seed=0):
    t = np.arange(n) / sr
    noise = np.random.default_rng(seed).standard_normal(n)
    return (0.3 * np.sin(2 * np.pi * 220.0 * t) + 0.01 * noise).astype("float32")


@pytest.mark.parametrize("length", LENGTHS)
def test_every_capability_takes_any_length(model, length):
    x = _signal(length, model.sample_rate)
    checked = 0
    if model.supports(Capability.RECONSTRUCT):
        y = numpy(model.reconstruct(np.stack([x, 0.5 * x])))
        assert y.shape == (2, length) and np.all(np.isfinite(y))
        checked += 1
    if model.supports(Capability.CONVERT):
        y = model.convert(x)
        assert y.shape == (length,) and np.all(np.isfinite(y))
        y = model.convert(x, sample_rate=2 * model.sample_rate)  # rate in = rate out
        assert abs(len(y) - length) <= 1
        checked += 1
    if model.supports(Capability.ENCODE):
        z = numpy(model.encode(x[None]))
        assert z.shape[0] == 1 and z.shape[1] >= 1 and np.all(np.isfinite(z))
        assert np.all(np.isfinite(numpy(model.decode(z))))
        checked += 1
    if model.supports(Capability.SAMPLE):
        y = numpy(model.sample(2, length, seed=1))
        assert y.shape[0] == 2 and y.shape[1] >= length and np.all(np.isfinite(y))
        checked += 1
    if model.supports(Capability.LIKELIHOOD):
        labels = [np.zeros(2, "int32")] if model.supports(Capability.DOMAIN_LABELS) else []
        bits = numpy(model.log_likelihood(np.stack([x, 0.5 * x]), *labels))
        codes = numpy(model.codes_of(x[None]))
        assert bits.shape == (2,) and np.all((bits > 0) & np.isfinite(bits))
        assert codes.dtype.kind == "i" and codes.min() >= 0 and codes.max() < model.num_codes
        checked += 1
    if model.supports(Capability.INTERPOLATE):
        y = numpy(model.interpolate(x, 0.5 * x, 3))
        assert y.shape[0] == 3 and np.all(np.isfinite(y))
        checked += 1
    if model.supports(Capability.FEATURE_MAPS):
        maps = model.feature_maps(model.frontend(model.frontend.pad_input(x[None])))
        assert maps and all(len(m.shape) == 3 and m.shape[0] == 1 for m in maps)
        checked += 1
    if model.supports(Capability.STYLIZE):
        style = _signal(max(length, 2048), model.sample_rate, seed=3)[::-1].copy()
        if length < model.n_fft:
            with pytest.raises(ValueError, match="content is .* samples long"):
                model.stylize(x, style, iterations=2)
        else:
            y = model.stylize(x, style, iterations=2).audio
            assert y.shape == (length,) and np.all(np.isfinite(y))
        checked += 1
    if model.supports(Capability.EDIT):  # no factor moved: the model's own resynthesis
        y = model.edit(x)
        assert y.shape == (length,) and np.all(np.isfinite(y))
        checked += 1
    assert checked, "the model declares no capability this test can exercise"


def test_streaming_equals_offline_where_declared(model):
    if not model.supports(Capability.STREAM):
        pytest.skip(f"{type(model).__name__} does not stream")
    block = 2 * model.stream_block
    x = np.stack([_signal(4 * block, model.sample_rate, seed=s) for s in (1, 2)])
    offline = numpy(model.streaming_reference(x))
    state, parts = model.initial_state(2), []
    for i in range(0, x.shape[1], block):
        y, state = model.stream(x[:, i:i + block], state)
        parts.append(numpy(y))
    streamed = np.concatenate(parts, axis=1)
    np.testing.assert_allclose(streamed, offline, atol=1e-5 * max(1e-3, np.abs(offline).max()))
