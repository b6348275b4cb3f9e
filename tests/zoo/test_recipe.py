"""The recipe schema: every shipped recipe validates, typos and bad values are one-line
errors naming the key (exit 2 from the CLI, before any data is decoded), presets load
by name."""
import keras
import numpy as np
import pytest

import zoo
from zoo import registry
from zoo.cli import main
from zoo.errors import ZooError
from zoo.recipe import closest


@pytest.mark.parametrize("name", registry.list_recipes())
def test_every_shipped_recipe_validates_with_and_without_tiny(name):
    for tiny in (False, True):
        recipe = registry.load_recipe(name, tiny=tiny)
        assert set(recipe) == {"model", "model_config", "data", "train", "tune", "recipe"}
        assert recipe["train"]["batch_size"] > 0 and recipe["data"]["crop_length"] > 0


def _cli_error(capsys, *argv):
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_misspelt_key_is_named_with_the_closest_valid_key(capsys, tmp_path):
    err = _cli_error(capsys, "train", "vae", "--set", "train.lerning_rate=1e-3",
                     "--out", str(tmp_path / "run"))
    assert "lerning_rate" in err and "did you mean 'learning_rate'" in err
    assert "recipes/vae.toml" in err
    assert not (tmp_path / "run").exists()  # nothing written
    err = _cli_error(capsys, "train", "vae", "--set", "model_config.latnt_dim=8",
                     "--out", str(tmp_path / "run"))
    assert "latnt_dim" in err and "'latent_dim'" in err
    err = _cli_error(capsys, "train", "vae", "--set", "trian.steps=3")
    assert "'trian'" in err and "'train'" in err


@pytest.mark.parametrize("assignment, key", [
    ("train.learning_rate=abc", "learning_rate"),
    ("train.batch_size=0", "batch_size"),
    ("train.steps=-5", "steps"),
    ("data.val_fraction=1.5", "val_fraction"),
    ("model_config.latent_dim=-3", "latent_dim"),
    ("model_config.n_fft=0", "n_fft"),
    ("model_config.variational=maybe", "variational"),
    ("train.discriminator_steps_mode=sometimes", "discriminator_steps_mode"),
])
def test_bad_values_are_one_line_errors_naming_the_key(capsys, tmp_path, assignment, key):
    err = _cli_error(capsys, "train", "vae", "--set", assignment, "--out", str(tmp_path / "r"))
    assert key in err, err
    assert not (tmp_path / "r").exists()


def test_bad_recipe_file_and_tune_entries(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('model = "vae"\n[train]\nsteps = "many"\n')
    with pytest.raises(ZooError, match=r"bad.toml: train.steps.*'many'"):
        registry.load_recipe(bad)
    bad.write_text('model = "vae"\n[tiny.train]\nbatchsize = 2\n')
    with pytest.raises(ZooError, match=r"\[tiny\].*batchsize.*batch_size"):
        registry.load_recipe(bad)
    bad.write_text('model = "vae"\n[tune]\nlatent_dm = { type = "choice", values = [8] }\n')
    with pytest.raises(ZooError, match=r"tune.latent_dm.*latent_dim"):
        registry.load_recipe(bad)
    bad.write_text('model = "vae"\n[tune]\nbeta = { type = "float", min = 0.0, max = 1.0, '
                   'sampling = "log" }\n')
    with pytest.raises(ZooError, match=r"tune.beta.*min > 0"):
        registry.load_recipe(bad)
    bad.write_text('model = "vae"\nmodle_config = {}\n')
    with pytest.raises(ZooError, match="modle_config.*model_config"):
        registry.load_recipe(bad)
    bad.write_text('model = "vea"\n')
    with pytest.raises(ZooError, match="registered model"):
        registry.load_recipe(bad)


def test_per_objective_optimizer_keys_are_checked_against_the_model(tmp_path):
    recipe = registry.load_recipe("travelgan", tiny=True, overrides={
        "train": {"generator_learning_rate": 1e-4}})
    assert recipe["train"]["generator_learning_rate"] == 1e-4
    with pytest.raises(ZooError, match="generator_beta_1"):
        registry.load_recipe("travelgan", overrides={"train": {"generator_beta_1": 2.0}})
    with pytest.raises(ZooError, match="genrator"):
        from zoo.training.trainer import compile_model

        model = registry.build(registry.load_recipe("travelgan", tiny=True))
        compile_model(model, {**recipe["train"], "genrator_learning_rate": 1e-4})


def test_final_learning_rate_is_a_cosine_decay_over_the_steps():
    """lr(t) = final + (lr - final) (1 + cos(pi t / steps)) / 2, then final; per objective
    as ``<objective>_final_learning_rate``."""
    from zoo.engine import adam_from_recipe
    from zoo.training.trainer import compile_model

    optimizer = adam_from_recipe({"learning_rate": 1e-3, "final_learning_rate": 1e-4,
                                  "steps": 100})
    for t in (0, 25, 50, 100, 150):
        optimizer.iterations.assign(t)
        expected = 1e-4 + 9e-4 * (1 + np.cos(np.pi * min(t, 100) / 100)) / 2
        np.testing.assert_allclose(float(keras.ops.convert_to_numpy(optimizer.learning_rate)),
                                   expected, rtol=1e-5)
    recipe = registry.load_recipe("travelgan", tiny=True, overrides={
        "train": {"generator_final_learning_rate": 1e-5, "final_learning_rate": 2e-5}})
    model = registry.build(recipe)
    compile_model(model, recipe["train"])  # no objective "generator_final" or "final"
    with pytest.raises(ZooError, match="train.final_learning_rate"):
        registry.load_recipe("vae", overrides={"train": {"final_learning_rate": -1.0}})


def test_out_naming_a_file_is_an_error(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("x")
    err = _cli_error(capsys, "train", "vae", "--tiny", "--out", str(target))
    assert "file.txt" in err and "is a file" in err


def test_presets_load_by_recipe_name():
    v1 = zoo.load("rave_v1")
    assert type(v1).__name__ == "RAVE"
    assert v1.get_config()["latent_dim"] == registry.load_recipe("rave_v1")["model_config"][
        "latent_dim"]
    vowels = zoo.load("vae_vowels")
    assert vowels.likelihood == registry.load_recipe("vae_vowels")["model_config"]["likelihood"]
    with pytest.raises(ZooError, match="neither a registered model"):
        zoo.load("no_such_preset")


def test_closest():
    assert closest("lerning_rate", ["learning_rate", "beta_1"]) == "learning_rate"
    assert closest("zzz", ["learning_rate"]) is None
