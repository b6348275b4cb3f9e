"""Registry: model name -> model class + default recipe; recipes; loading runs.

A recipe is a TOML file in the ``recipes`` package (shipped as package data, so
it is found after ``pip install``) named ``<model>[_<dataset>].toml``::

    model = "vae"            # registry name of the model class
    [model_config]           # constructor arguments
    [data]                   # source, crop_length, val_fraction, seed
    [train]                  # batch_size, steps, learning_rate, ...
    [tiny.*]                 # overrides for tests / --tiny
    [tune]                   # keras-tuner search space

A new model is one module in ``zoo/models``, one recipe and one line in ``_MODELS``.
"""
import copy
import importlib
import importlib.resources
import json
from pathlib import Path

from zoo.errors import ZooError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

# name -> "module:Class". The default recipe of a model is recipes/<name>.toml.
_MODELS = {
    "ae": "zoo.models.vae:SpectrogramVAE",
    "vae": "zoo.models.vae:SpectrogramVAE",
    "travelgan": "zoo.models.travelgan:TraVeLGAN",
    "rave": "zoo.models.rave:RAVE",
}

# name -> shipped weights (saved_models/<name>_<weights>/) that conversion uses by default.
DEFAULT_WEIGHTS = {"travelgan": "timbre"}

RUN_CHECKPOINT = "checkpoint.keras"
RUN_FINAL = "model.keras"
RUN_RECIPE = "recipe.json"


def list_models():
    """Registered model names, sorted."""
    return sorted(_MODELS)


def list_recipes():
    """Names of the shipped recipes (file stems), sorted."""
    root = importlib.resources.files("recipes")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml"))


def model_class(name):
    """The ``keras.Model`` subclass registered as ``name``."""
    if name not in _MODELS:
        raise ZooError(f"unknown model {name!r}; registered: {', '.join(list_models())}")
    module, cls = _MODELS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def _merge(base, override):
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_recipe(name_or_path, tiny=False):
    """Read a recipe by name (``"vae"``, ``"vae_vowels"``) or by path to a ``.toml`` file.

    Args:
        name_or_path: recipe name or file path.
        tiny: apply the recipe's ``[tiny]`` overrides (seconds-long runs for tests).

    Returns:
        A dict with keys ``model``, ``model_config``, ``data``, ``train``, ``tune``.
    """
    path = Path(str(name_or_path))
    if path.suffix == ".toml":
        if not path.is_file():
            raise ZooError(f"recipe file not found: {path}")
        text, origin = path.read_text(), str(path)
    else:
        resource = importlib.resources.files("recipes") / f"{name_or_path}.toml"
        if not resource.is_file():
            raise ZooError(f"unknown recipe {name_or_path!r}; shipped: {', '.join(list_recipes())}")
        text, origin = resource.read_text(), f"recipes/{name_or_path}.toml"
    try:
        recipe = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ZooError(f"{origin}: invalid TOML: {err}") from None
    if "model" not in recipe or recipe["model"] not in _MODELS:
        raise ZooError(f"{origin}: 'model' must name a registered model ({', '.join(list_models())})")
    for section in ("model_config", "data", "train", "tune"):
        recipe.setdefault(section, {})
    tiny_overrides = recipe.pop("tiny", {})
    if tiny:
        recipe = _merge(recipe, tiny_overrides)
    recipe["recipe"] = origin
    return recipe


def build(recipe, **overrides):
    """Build the model a recipe describes, with constructor ``overrides``."""
    cls = model_class(recipe["model"])
    config = {**recipe["model_config"], **overrides}
    try:
        model = cls(**config)
    except (TypeError, ValueError) as err:
        raise ZooError(f"{recipe['model']}: bad model option: {err}") from None
    model.build()
    return model


def load(name_or_path, weights=None, **overrides):
    """See :func:`zoo.load`."""
    import keras

    path = Path(str(name_or_path))
    if path.suffix == ".keras" or path.is_dir():
        if overrides or weights:
            raise ZooError("overrides and weights apply to registry names, not saved runs")
        return load_saved(path)
    if name_or_path not in _MODELS:
        raise ZooError(f"{name_or_path!r} is neither a registered model "
                       f"({', '.join(list_models())}) nor a run folder or .keras file")
    if weights is not None:
        return load_saved(shipped_weights(name_or_path, weights))
    return build(load_recipe(name_or_path), **overrides)


def shipped_weights(name, weights):
    """Path of ``saved_models/<name>_<weights>/model.keras``."""
    root = importlib.resources.files("saved_models")
    candidate = root / f"{name}_{weights}" / RUN_FINAL
    if not candidate.is_file():
        available = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith(name))
        raise ZooError(f"no shipped weights {weights!r} for {name!r}; available: "
                       f"{', '.join(available) or 'none'}")
    return Path(str(candidate))


def load_saved(path):
    """Load a ``.keras`` file, or a run folder's final model (else its last checkpoint)."""
    import keras

    for model_name in _MODELS:  # register every model class with Keras' deserialiser
        model_class(model_name)
    path = Path(path)
    if path.is_dir():
        for name in (RUN_FINAL, RUN_CHECKPOINT):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise ZooError(f"{path}: not a run folder (no {RUN_FINAL} or {RUN_CHECKPOINT})")
    if not path.is_file():
        raise ZooError(f"{path}: file not found")
    try:
        return keras.saving.load_model(path)
    except Exception as err:  # corrupt or foreign file
        raise ZooError(f"{path}: cannot load model: {type(err).__name__}: {err}") from None


def run_recipe(run_dir):
    """The resolved recipe a run was trained with."""
    path = Path(run_dir) / RUN_RECIPE
    if not path.is_file():
        raise ZooError(f"{run_dir}: not a run folder (no {RUN_RECIPE})")
    return json.loads(path.read_text())
