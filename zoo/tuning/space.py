"""A recipe's ``[tune]`` table as a keras-tuner search space, and back.

Each ``[tune]`` entry (validated by :class:`zoo.recipe.TuneEntry`) becomes one
keras-tuner hyperparameter of the same name::

    learning_rate = { type = "float", min = 1e-4, max = 3e-3, sampling = "log" }  # hp.Float
    latent_dim    = { type = "choice", values = [8, 16, 32] }                    # hp.Choice
    channels      = { type = "int", min = 32, max = 128, step = 32 }             # hp.Int
    variational   = { type = "boolean" }                                         # hp.Boolean
    beta = { type = "float", min = 0.1, max = 2.0, parent = "variational",
             parent_values = [true] }                      # hp.conditional_scope

A bare key is a model constructor argument if the model has one of that name,
else a ``[train]`` key; ``train.KEY``, ``data.KEY`` and ``model_config.KEY`` say
so explicitly (:func:`zoo.recipe.tune_target`).
"""
import itertools

from zoo.errors import ZooError
from zoo.recipe import tune_target

#: keras-tuner's own hyperparameters (Hyperband's), not recipe values.
RESERVED_PREFIX = "tuner/"


def _ordered(tune):
    """``[tune]`` keys with every parent before its children."""
    done, order = set(), []

    def visit(key, path=()):
        if key in done:
            return
        if key in path:
            raise ZooError(f"tune.{key}: its parent chain loops ({' -> '.join(path + (key,))})")
        parent = tune[key].get("parent")
        if parent:
            visit(parent, path + (key,))
        done.add(key)
        order.append(key)

    for key in tune:
        visit(key)
    return order


def _declare_one(hp, key, entry):
    kind = entry["type"]
    if kind == "choice":
        hp.Choice(key, list(entry["values"]))
    elif kind == "boolean":
        hp.Boolean(key)
    elif kind == "int":
        step = int(entry["step"]) if entry.get("step") else None
        hp.Int(key, int(entry["min"]), int(entry["max"]), step=step, sampling=entry["sampling"])
    else:
        hp.Float(key, float(entry["min"]), float(entry["max"]), step=entry.get("step"),
                 sampling=entry["sampling"])


def declare(hp, tune):
    """Declare the ``[tune]`` entries on a ``keras_tuner.HyperParameters`` (conditional
    entries inside ``hp.conditional_scope(parent, parent_values)``)."""
    for key in _ordered(tune):
        entry = tune[key]
        if entry.get("parent"):
            with hp.conditional_scope(entry["parent"], list(entry["parent_values"])):
                _declare_one(hp, key, entry)
        else:
            _declare_one(hp, key, entry)
    return hp


def _plain(value):
    """numpy scalars from keras-tuner -> Python numbers (TOML- and JSON-safe)."""
    return value.item() if hasattr(value, "item") else value


def active_values(hp, tune):
    """``{key: value}`` of the ``[tune]`` entries active in a trial's hyperparameters."""
    return {key: _plain(hp.get(key)) for key in tune
            if key in hp.values and hp.is_active(key)}


def overrides(values, model_args):
    """``{key: value}`` of ``[tune]`` keys -> ``{section: {name: value}}`` recipe overrides."""
    out = {}
    for key, value in values.items():
        if key.startswith(RESERVED_PREFIX):
            continue
        section, name = tune_target(key, model_args)
        out.setdefault(section, {})[name] = value
    return out


def corner_values(entry):
    """Values that exercise an entry's whole range: every choice, both ends of a range."""
    kind = entry["type"]
    if kind == "choice":
        return list(entry["values"])
    if kind == "boolean":
        return [False, True]
    if kind == "int":
        return [int(entry["min"]), int(entry["max"])]
    return [float(entry["min"]), float(entry["max"])]


def check(recipe, tune, model_args, validate):
    """Check that every value each entry can take gives a valid recipe, before any trial.

    ``validate(recipe, overrides, label)`` is the registry's override check (it raises
    one ZooError line); the message is re-worded to name the ``[tune]`` entry.
    """
    for key, entry in tune.items():
        for value in corner_values(entry):
            try:
                validate(recipe, overrides({key: value}, model_args), f"tune.{key}")
            except ZooError as err:
                raise ZooError(f"{recipe['recipe']}: tune.{key} = {value!r} makes an invalid "
                               f"recipe: {str(err).split(': ', 1)[-1]}") from None
    # choice entries of one section combined must also be valid together (small spaces only)
    choices = [(k, corner_values(e)) for k, e in tune.items() if not e.get("parent")]
    combos = 1
    for _, values in choices:
        combos *= len(values)
    if 1 < combos <= 64:
        for combo in itertools.product(*(v for _, v in choices)):
            values = dict(zip((k for k, _ in choices), combo))
            try:
                validate(recipe, overrides(values, model_args), "[tune]")
            except ZooError as err:
                shown = ", ".join(f"{k} = {v!r}" for k, v in values.items())
                raise ZooError(f"{recipe['recipe']}: [tune] values {shown} together make an "
                               f"invalid recipe: {str(err).split(': ', 1)[-1]}") from None
