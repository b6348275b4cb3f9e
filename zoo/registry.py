"""Registry: model name -> model class + default recipe; presets; loading runs.

A recipe is a TOML file in the ``recipes`` package (shipped as package data, so
it is found after ``pip install``) named ``<model>[_<dataset>].toml``; its schema
is :mod:`zoo.recipe`. Recipe names are presets, as in keras-hub:
``zoo.load("rave_v1")`` builds the model ``rave_v1.toml`` describes.

A new model is one module (or folder) in ``zoo/models``, one recipe and one line in
``_MODELS`` (or :func:`register` from outside the package).
"""
import copy
import importlib
import importlib.resources
import json
from pathlib import Path

from zoo.errors import ZooError
from zoo.files import RUN_CHECKPOINT, RUN_FINAL, run_model_file  # noqa: F401 (re-exported)

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
    "style_transfer": "zoo.models.style_transfer:StyleTransfer",
    "gmm_vc": "zoo.models.gmm_vc:GMMVoiceConversion",
    "cvae": "zoo.models.cvae:ConditionalVAE",
    "vqvae": "zoo.models.vqvae:SpectrogramVQVAE",
    "vqvae_waveform": "zoo.models.vqvae:WaveformVQVAE",
    "pixelcnn": "zoo.models.pixelcnn:PixelCNNPrior",
    "wavenet": "zoo.models.wavenet:WaveNetPrior",
    "sfvae": "zoo.models.sfvae:SourceFilterVAE",
    "avb": "zoo.models.avb:AdversarialVAE",
    "unit": "zoo.models.unit:UNIT",
    "unit_avb": "zoo.models.unit_avb:UNITAVB",
}

# name -> shipped weights (saved_models/<name>_<weights>/) that conversion uses by default.
DEFAULT_WEIGHTS = {"travelgan": "instruments", "vae": "instruments", "sfvae": "speech"}


def register(name, target):
    """Register a model class under ``name`` (``"package.module:Class"``); its default
    recipe is ``recipes/<name>.toml`` (or pass recipe paths to ``zoo train``)."""
    if ":" not in target:
        raise ValueError(f"target must be 'module:Class', got {target!r}")
    _MODELS[name] = target


def default_weights(name):
    """The shipped weights a bare registry name converts/evaluates with (or None)."""
    return DEFAULT_WEIGHTS.get(name)

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


def _read_recipe(name_or_path):
    """``(parsed TOML, origin)`` of a recipe name or ``.toml`` path."""
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
        return tomllib.loads(text), origin
    except tomllib.TOMLDecodeError as err:
        raise ZooError(f"{origin}: invalid TOML: {err}") from None


def load_recipe(name_or_path, tiny=False, overrides=None):
    """Read and validate a recipe by name (``"vae"``, ``"vae_vowels"``) or ``.toml`` path.

    Args:
        name_or_path: recipe name or file path.
        tiny: apply the recipe's ``[tiny]`` overrides (seconds-long runs for tests).
        overrides: ``{section: {key: value}}`` applied last (``zoo train --set``).

    Returns:
        A dict with keys ``model``, ``model_config``, ``data``, ``train``, ``tune``,
        ``recipe`` (:func:`zoo.recipe.validate`: defaults filled).

    Raises:
        ZooError: unknown recipe, invalid TOML, unknown key or bad value (one line).
    """
    recipe, origin = _read_recipe(name_or_path)
    if recipe.get("model") not in _MODELS:
        raise ZooError(f"{origin}: 'model' must name a registered model ({', '.join(list_models())}),"
                       f" got {recipe.get('model')!r}")
    tiny_overrides = recipe.pop("tiny", {})
    validated = validate_recipe(recipe, origin)
    # [tiny] is checked even when unused, so a typo there is found at once
    tiny_recipe = validate_recipe(_merge(recipe, tiny_overrides), f"{origin} [tiny]")
    if tiny:
        validated = {**tiny_recipe, "recipe": origin}
    return with_overrides(validated, overrides)


def validate_recipe(recipe, origin=None):
    """:func:`zoo.recipe.validate` with the class ``recipe["model"]`` names."""
    from zoo.recipe import validate

    return validate(recipe, model_class(recipe["model"]), origin)


def with_overrides(recipe, overrides, sections=None, label="--set"):
    """A validated copy of ``recipe`` with ``overrides`` (``{section: {key: value}}``).

    Args:
        sections: the sections that may change (default: all); a resumed run
            keeps its model, so only ``train`` and ``data`` may change there.
        label: how messages name the overrides' origin.
    """
    if not overrides:
        return recipe
    from zoo.recipe import SECTIONS

    for section in overrides:
        if section not in SECTIONS:
            raise ZooError(f"unknown recipe section {section!r} ({', '.join(SECTIONS)})")
        if sections is not None and section not in sections:
            raise ZooError(f"a resumed run keeps its model; only {' and '.join(sections)} "
                           f"values can change (got {section}.*)")
    keys = ", ".join(f"{s}.{k}" for s, v in overrides.items() for k in v)
    return validate_recipe(_merge(recipe, overrides), f"{recipe['recipe']} with {label} {keys}")


def build(recipe, **overrides):
    """Build the model a recipe describes, with constructor ``overrides``."""
    cls = model_class(recipe["model"])
    if overrides:
        recipe = with_overrides(recipe, {"model_config": overrides})
    try:
        model = cls(**recipe["model_config"])
    except (TypeError, ValueError, ZeroDivisionError) as err:
        raise ZooError(f"{recipe.get('recipe', recipe['model'])}: model_config: {err}") from None
    model.build()
    return model


def load(name_or_path, weights=None, **overrides):
    """See :func:`zoo.load`."""

    path = Path(str(name_or_path))
    if path.suffix == ".keras" or path.is_dir():
        if overrides or weights:
            raise ZooError("overrides and weights apply to registry names, not saved runs")
        return load_saved(path)
    name = str(name_or_path)
    if weights is not None:
        if name not in _MODELS:
            raise ZooError(f"weights apply to registered models ({', '.join(list_models())}); "
                           f"got {name!r}")
        return load_saved(shipped_weights(name, weights))
    if name not in _MODELS and name not in list_recipes():
        raise ZooError(f"{name!r} is neither a registered model ({', '.join(list_models())}), "
                       f"a recipe ({', '.join(list_recipes())}) nor a run folder or .keras file")
    return build(load_recipe(name), **overrides)


def load_for_use(name_or_path, weights=None):
    """A model ready to convert or evaluate: a run folder or ``.keras`` file as saved; a
    registry name with ``weights``, else with its shipped default weights (an untrained
    model cannot convert), else untrained.

    Returns:
        ``(model, label)``: the label says what was loaded, for reports.
    """
    path = Path(str(name_or_path))
    if path.is_dir() or path.suffix == ".keras":
        return load_saved(path), str(path)
    name = str(name_or_path)
    weights = weights or (default_weights(name) if name in _MODELS else None)
    return (load(name, weights=weights),
            f"{name} ({f'weights {weights}' if weights else 'untrained'})")


def shipped_weights(name, weights):
    """Path of ``saved_models/<name>_<weights>/model.keras``."""
    root = importlib.resources.files("saved_models")
    candidate = root / f"{name}_{weights}" / RUN_FINAL
    if not candidate.is_file():
        available = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith(name))
        raise ZooError(f"no shipped weights {weights!r} for {name!r}; available: "
                       f"{', '.join(available) or 'none'}")
    return Path(str(candidate))


def without_training_state(model):
    """A fresh model of ``model``'s config holding its weights, without optimizer or
    compile state: what shipped weights should be (a quarter of the size for an
    adversarial model, and loading it compiles nothing)."""
    import numpy as np

    fresh = type(model).from_config(model.get_config())
    if [w.path for w in fresh.weights] != [w.path for w in model.weights]:
        raise ZooError(f"{type(model).__name__}: a model built from its config has other "
                       "weights than the trained one; save it with model.save instead")
    for target, value in zip(fresh.weights, model.get_weights()):
        target.assign(np.asarray(value))
    fresh.built = True  # every variable exists (models build in their constructor)
    return fresh


def load_saved(path):
    """Load a ``.keras`` file, or a run folder's final model (else its last checkpoint)."""
    import keras

    for model_name in _MODELS:  # register every model class with Keras' deserialiser
        model_class(model_name)
    try:
        path = run_model_file(path)
    except FileNotFoundError as err:
        raise ZooError(str(err)) from None
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
