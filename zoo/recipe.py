"""The recipe schema: every key, its type and its default, written once.

A recipe is a TOML file (``recipes/<model>[_<dataset>].toml``)::

    model = "vae"            # registry name of the model class
    [model_config]           # the model's constructor arguments
    [data]                   # DataSection
    [train]                  # TrainSection
    [tiny.model_config]      # overrides for tests and `zoo train --tiny`
    [tiny.data]  [tiny.train]
    [tune]                   # keras-tuner search space (TuneEntry per key)

:func:`validate` checks a parsed recipe (after ``[tiny]`` and ``--set`` overrides):
an unknown key or a bad value raises one :class:`~zoo.errors.ZooError` line that
names the recipe, the key and, for a misspelling, the closest valid key. The
``[model_config]`` keys are checked against the model's constructor signature,
their types against its defaults; ranges are checked by the constructor itself.
Validated with pydantic.
"""
import difflib
import inspect
import re
from typing import Annotated, Any, Dict, List, Literal, Optional, Union

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from zoo.errors import ZooError

#: ``[train]`` keys an optimizer reads; ``<objective>_<key>`` and
#: ``discriminator_<key>`` override them per objective (adversarial models). Longest
#: first, so ``generator_final_learning_rate`` reads as ``generator`` + its key.
OPTIMIZER_KEYS = ("final_learning_rate", "learning_rate", "beta_1", "beta_2", "clipnorm",
                  "weight_decay")


def optimizer_key(key):
    """``(prefix, key)`` of a ``[train]`` optimizer key (prefix ``""`` for a plain key),
    or ``None`` when ``key`` is no optimizer key."""
    for suffix in OPTIMIZER_KEYS:
        if key == suffix:
            return "", suffix
        if key.endswith("_" + suffix):
            return key[: -len(suffix) - 1], suffix
    return None


SECTIONS = ("model_config", "data", "train")
TOP_LEVEL = ("model", *SECTIONS, "tiny", "tune", "recipe")

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
Beta = Annotated[float, Field(ge=0, lt=1)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataSection(_Section):
    """``[data]``: where training audio comes from and how it is cropped."""

    source: str = "builtin:timbre"    #: ``builtin:NAME`` or a folder of audio
    crop_length: PositiveInt = 16384  #: samples per training crop
    val_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.1  #: files held out
    seed: int = 0                     #: split, crop and initialisation seed


class ScheduleEntry(_Section):
    """One objective's schedule: runs where ``step % every in at``, ``repeats`` times."""

    every: Optional[PositiveInt] = None
    at: Optional[Union[Annotated[int, Field(ge=0)], List[Annotated[int, Field(ge=0)]]]] = None
    repeats: Optional[PositiveInt] = None


class TrainSection(_Section):
    """``[train]``: optimisation, length, checkpoints, logging.

    Adversarial models also read ``discriminator_<key>`` and ``<objective>_<key>``
    for ``key`` in learning_rate, final_learning_rate, beta_1, beta_2, clipnorm,
    weight_decay (per-objective optimizers); those are the only extra keys accepted.
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    batch_size: PositiveInt = 16
    steps: Optional[PositiveInt] = None            #: total steps (default: one epoch)
    steps_per_epoch: PositiveInt = 100
    checkpoint_every: Optional[PositiveInt] = None  #: default: every epoch
    learning_rate: PositiveFloat = 1e-3
    final_learning_rate: Optional[PositiveFloat] = None  #: cosine decay to it over `steps`
    beta_1: Beta = 0.9
    beta_2: Beta = 0.999
    clipnorm: Optional[PositiveFloat] = None
    weight_decay: Optional[Annotated[float, Field(ge=0)]] = None  #: decoupled (AdamW-style)
    num_samples: Annotated[int, Field(ge=0)] = 3   #: audio examples per epoch
    validation_steps: PositiveInt = 4
    pca_clips: PositiveInt = 32                    #: clips for latent PCA (rave)
    discriminator_steps: Optional[PositiveInt] = None
    discriminator_steps_mode: Literal["consecutive", "same_batch"] = "consecutive"
    schedule: Dict[str, ScheduleEntry] = Field(default_factory=dict)
    jit_compile: Union[bool, Literal["auto"]] = "auto"


class TuneEntry(_Section):
    """One ``[tune]`` search dimension, as keras-tuner's ``HyperParameters`` has them.

    ``type = "choice"`` with ``values``; ``"int"``/``"float"`` with ``min``, ``max``,
    optional ``step`` and ``sampling`` (linear, log, reverse_log); ``"boolean"``.
    ``parent``/``parent_values`` make it conditional on another entry.
    """

    type: Literal["choice", "int", "float", "boolean"]
    values: Optional[List[Union[bool, int, float, str]]] = None
    min: Optional[float] = None
    max: Optional[float] = None
    step: Optional[PositiveFloat] = None
    sampling: Literal["linear", "log", "reverse_log"] = "linear"
    parent: Optional[str] = None
    parent_values: Optional[List[Union[bool, int, float, str]]] = None

    @pydantic.model_validator(mode="after")
    def _complete(self):
        if self.type == "choice" and not self.values:
            raise ValueError("type 'choice' needs a non-empty 'values' list")
        if self.type in ("int", "float"):
            if self.min is None or self.max is None or self.min >= self.max:
                raise ValueError(f"type {self.type!r} needs min < max")
            if self.sampling != "linear" and self.min <= 0:
                raise ValueError(f"{self.sampling} sampling needs min > 0")
        if (self.parent is None) != (self.parent_values is None):
            raise ValueError("'parent' and 'parent_values' go together")
        return self


_SECTION_SCHEMAS = {"data": DataSection, "train": TrainSection}


# ------------------------------------------------------------------ helpers
def closest(name, candidates):
    """The closest valid key to a misspelt ``name`` (or None)."""
    match = difflib.get_close_matches(str(name), list(candidates), n=1, cutoff=0.6)
    return match[0] if match else None


def _unknown(origin, where, key, candidates):
    hint = closest(key, candidates)
    suggestion = f"; did you mean {hint!r}?" if hint else f" (valid: {', '.join(sorted(candidates))})"
    return ZooError(f"{origin}: unknown key {where}{key!r}{suggestion}")


def _first_error(origin, section, err):
    e = err.errors()[0]
    loc = ".".join(str(p) for p in e["loc"])
    value = e.get("input")
    shown = "" if isinstance(value, dict) else f" (got {value!r})"
    return ZooError(f"{origin}: {section}.{loc}: {e['msg']}{shown}")


def constructor_parameters(cls):
    """``{name: inspect.Parameter}`` of a model class's constructor (``**kwargs``
    excluded).

    A constructor that passes ``**kwargs`` on to its parent's (a subclass adding
    arguments, e.g. the conditional VAE) also accepts the parent's arguments, up to the
    first class outside the zoo (Keras' own ``name``, ``dtype`` ... are not recipe keys).
    """
    out = {}
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        if not klass.__module__.startswith(("zoo", "tests", "__main__")) and out:
            break
        params = inspect.signature(klass.__init__).parameters
        for n, p in params.items():
            if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                out.setdefault(n, p)
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            break
    return out


def constructor_arguments(cls):
    """``{name: default}`` of a model class's constructor (:func:`constructor_parameters`)."""
    return {n: p.default for n, p in constructor_parameters(cls).items()}


def _value_type(default, annotation=inspect.Parameter.empty):
    """The pydantic type of a constructor argument: its annotation where it has one (an
    argument taking one value or a list, for instance), else the type of its default."""
    if annotation is not inspect.Parameter.empty:
        return annotation
    if isinstance(default, bool):
        return pydantic.StrictBool
    if isinstance(default, int):
        return int
    if isinstance(default, float):
        return float
    if isinstance(default, str):
        return str
    if isinstance(default, (list, tuple)):
        return List[Any]
    return Any


def _check_model_config(origin, cls, values):
    params = constructor_parameters(cls)
    for key in values:
        if key not in params:
            raise _unknown(origin, "model_config.", key, params)
    fields = {k: (_value_type(params[k].default, params[k].annotation), ...) for k in values}
    schema = pydantic.create_model(f"{cls.__name__}Config", **fields)
    try:
        parsed = schema(**values)
    except pydantic.ValidationError as err:
        raise _first_error(origin, "model_config", err) from None
    return {k: (list(v) if isinstance(values[k], (list, tuple)) else getattr(parsed, k))
            for k, v in values.items()}


def _check_train_extras(origin, train):
    known = set(TrainSection.model_fields)
    for key, value in list(train.items()):
        if key in known:
            continue
        suffix = (optimizer_key(key) or (None, None))[1]
        if suffix is None:
            raise _unknown(origin, "train.", key, known)
        try:
            train[key] = pydantic.TypeAdapter(
                Beta if suffix.startswith("beta") else PositiveFloat).validate_python(value)
        except pydantic.ValidationError as err:
            raise ZooError(f"{origin}: train.{key}: {err.errors()[0]['msg']} "
                           f"(got {value!r})") from None


def tune_target(key, model_args):
    """``(section, name)`` a ``[tune]`` key sets: ``"train.learning_rate"`` or a bare
    name (a constructor argument, else a ``[train]`` key)."""
    section, dot, name = key.partition(".")
    if dot:
        return section, name
    return ("model_config" if key in model_args else "train"), key


# ------------------------------------------------------------------ validation
def validate(recipe, cls, origin=None):
    """Check a parsed recipe and fill the ``[data]``/``[train]`` defaults.

    Args:
        recipe: dict with ``model`` and any of the sections (``[tiny]`` applied or not).
        cls: the model class ``recipe["model"]`` names.
        origin: where the recipe came from, for messages (default ``recipe["recipe"]``).

    Returns:
        A new dict: ``model``, ``model_config`` (as given, type-checked), ``data`` and
        ``train`` (every key, defaults filled), ``tune`` (validated), ``recipe``.

    Raises:
        ZooError: one line naming the recipe and the key.
    """
    origin = origin or recipe.get("recipe", "recipe")
    for key in recipe:
        if key not in TOP_LEVEL:
            raise _unknown(origin, "", key, TOP_LEVEL)
    out = {"model": recipe["model"], "recipe": origin}
    for section in (*SECTIONS, "tune"):
        value = recipe.get(section, {})
        if not isinstance(value, dict):
            raise ZooError(f"{origin}: [{section}] must be a table, got {value!r}")
    out["model_config"] = _check_model_config(origin, cls, dict(recipe.get("model_config", {})))
    for section, schema in _SECTION_SCHEMAS.items():
        values = dict(recipe.get(section, {}))
        if section == "train":
            _check_train_extras(origin, values)
        else:
            for key in values:
                if key not in schema.model_fields:
                    raise _unknown(origin, f"{section}.", key, schema.model_fields)
        try:
            out[section] = schema(**values).model_dump()
        except pydantic.ValidationError as err:
            err0 = err.errors()[0]
            if err0["type"] == "extra_forbidden":
                loc = ".".join(str(p) for p in err0["loc"])
                raise ZooError(f"{origin}: unknown key {section}.{loc}") from None
            raise _first_error(origin, section, err) from None
    out["tune"] = validate_tune(recipe.get("tune", {}), cls, origin)
    return out


def validate_tune(tune, cls, origin):
    """Check a ``[tune]`` table: each entry a :class:`TuneEntry` whose key names a
    constructor argument or a ``[train]``/``[data]`` key."""
    args = constructor_arguments(cls)
    out = {}
    for key, entry in tune.items():
        section, name = tune_target(key, args)
        valid = {"model_config": args, "train": TrainSection.model_fields,
                 "data": DataSection.model_fields}.get(section)
        if valid is None:
            raise ZooError(f"{origin}: tune.{key}: section {section!r} is not tunable "
                           "(model_config, train, data)")
        if name not in valid:
            if "." not in key:  # a bare key may name either section
                valid = {**args, **TrainSection.model_fields}
            hint = closest(name, valid)
            raise ZooError(f"{origin}: tune.{key}: {name!r} is not a {section} key"
                           + (f"; did you mean {hint!r}?" if hint else ""))
        if not isinstance(entry, dict):
            raise ZooError(f"{origin}: tune.{key}: expected a table like "
                           "{ type = \"choice\", values = [...] }, got " f"{entry!r}")
        try:
            out[key] = TuneEntry(**entry).model_dump(exclude_none=True)
        except pydantic.ValidationError as err:
            e = err.errors()[0]
            loc = ".".join(str(p) for p in e["loc"])
            raise ZooError(f"{origin}: tune.{key}{'.' + loc if loc else ''}: "
                           f"{e['msg'].removeprefix('Value error, ')}") from None
    for key, entry in out.items():
        if entry.get("parent") and entry["parent"] not in out:
            raise ZooError(f"{origin}: tune.{key}: parent {entry['parent']!r} is not a "
                           "[tune] entry")
    return out


def parse_assignment(item):
    """``"train.learning_rate=3e-4"`` -> ``("train", "learning_rate", 0.0003)``; values
    are TOML (``3e-4``, ``true``, ``[4, 4, 2]``, ``"x"``), else a bare string."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    key, sep, value = item.partition("=")
    section, dot, name = key.strip().partition(".")
    if not sep or not dot or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ZooError(f"--set {item!r}: expected SECTION.KEY=VALUE, e.g. "
                       "train.learning_rate=3e-4")
    if section not in SECTIONS:
        hint = closest(section, SECTIONS)
        raise ZooError(f"--set {item!r}: unknown section {section!r}"
                       + (f"; did you mean {hint!r}?" if hint else f" ({', '.join(SECTIONS)})"))
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value  # a bare string
    return section, name, parsed
