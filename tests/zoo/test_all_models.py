"""Every registered model, on the current backend: build, one training step, save/load, export.

Runs over ``zoo.list_models()`` so a new model is covered the moment it is registered.
"""
import keras
import numpy as np
import pytest

import zoo
from zoo import registry
from zoo.engine import Fitting
from zoo.export import export
from zoo.training.trainer import train


@pytest.mark.parametrize("name", zoo.list_models())
def test_model_trains_saves_loads_exports(name, tmp_path):
    if registry.model_class(name).fitting is Fitting.NONE:
        return _untrained_model_saves_and_exports(name, tmp_path)
    result = train(name, tiny=True, steps=1, out=tmp_path / "run", verbose=0, samples=False,
                   overrides={"train": {"validation_steps": 1}})
    model = result.model
    before = [np.array(keras.ops.convert_to_numpy(v)) for v in model.trainable_weights]
    assert result.step == 1 and np.isfinite(result.history["loss"][0])

    restored = zoo.load(tmp_path / "run")
    assert type(restored) is type(model)
    assert restored.get_config() == model.get_config()
    for a, b in zip(before, restored.trainable_weights):
        np.testing.assert_array_equal(a, keras.ops.convert_to_numpy(b))

    if not _has_tf():
        pytest.skip("SavedModel export needs TensorFlow")
    out = export(tmp_path / "run", tmp_path / "export", verbose=False)
    assert (out / "saved_model" / "saved_model.pb").is_file()


@pytest.mark.parametrize("name", zoo.list_models())
def test_default_recipe_builds_and_declares_serving(name):
    recipe = registry.load_recipe(name)
    assert recipe["model"] == name
    for key in registry.model_class(name).prerequisites:  # another run to point at
        with pytest.raises(zoo.ZooError, match=f"model_config.{key}: "):
            registry.build(recipe)
        recipe = registry.load_recipe(name, tiny=True)
    model = registry.build(recipe)
    assert model.count_params() > 0 or model.fitting is Fitting.NONE  # nothing learned
    assert "forward" in model.serving_endpoints()


def _untrained_model_saves_and_exports(name, tmp_path):
    """A model with nothing to fit: ``zoo train`` refuses in one line; the built model
    saves, loads and exports."""
    with pytest.raises(zoo.ZooError, match="nothing to train"):
        train(name, tiny=True, steps=1, out=tmp_path / "run", verbose=0)
    model = registry.build(registry.load_recipe(name, tiny=True))
    model.save(tmp_path / "model.keras")
    assert zoo.load(tmp_path / "model.keras").get_config() == model.get_config()
    if _has_tf():
        out = export(model, tmp_path / "export", verbose=False)
        assert (out / "saved_model" / "saved_model.pb").is_file()


def _has_tf():
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True
