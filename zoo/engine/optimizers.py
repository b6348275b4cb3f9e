"""Optimizers from a recipe's ``[train]`` section (one builder for every engine)."""
import keras

from zoo.recipe import optimizer_key


def adam_from_recipe(train, prefixes=(), name=None):
    """``keras.optimizers.Adam`` configured by ``train``.

    Args:
        train: the ``[train]`` mapping (``learning_rate``, ``beta_1``, ``beta_2``,
            ``clipnorm``, ``weight_decay``: Keras' decoupled decay, ``w -= lr * wd * w``;
            ``final_learning_rate``: a cosine decay from ``learning_rate`` to it over
            ``steps`` updates of this optimizer (``steps_per_epoch`` when ``steps`` is
            unset), constant after).
        prefixes: key prefixes tried first, most specific first: with
            ``("generator", "discriminator")`` the learning rate is
            ``generator_learning_rate``, else ``discriminator_learning_rate``, else
            ``learning_rate``.
        name: the optimizer's name.
    """
    def get(key, default):
        for k in [f"{p}_{key}" for p in prefixes] + [key]:
            if train.get(k) is not None:
                return train[k]
        return default

    clipnorm = get("clipnorm", None)
    decay = get("weight_decay", None)
    learning_rate, final = float(get("learning_rate", 1e-3)), get("final_learning_rate", None)
    if final is not None:
        steps = int(train.get("steps") or train.get("steps_per_epoch") or 1)
        learning_rate = keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps=steps, alpha=float(final) / learning_rate)
    return keras.optimizers.Adam(
        learning_rate=learning_rate, beta_1=float(get("beta_1", 0.9)),
        beta_2=float(get("beta_2", 0.999)), clipnorm=None if clipnorm is None else float(clipnorm),
        weight_decay=None if not decay else float(decay),
        **({"name": name} if name else {}))


def check_optimizer_keys(train, prefixes):
    """Raise ``ValueError`` for a ``<prefix>_<key>`` optimizer override in ``train`` whose
    prefix names no objective of the model (a typo would silently be ignored)."""
    import difflib

    for key in train:
        prefix, suffix = optimizer_key(key) or ("", None)
        if prefix and prefix not in prefixes:
            hint = difflib.get_close_matches(prefix, list(prefixes), n=1)
            raise ValueError(
                f"train.{key}: the model has no objective {prefix!r}"
                + (f"; did you mean '{hint[0]}_{suffix}'?" if hint else
                   f" (objectives: {', '.join(prefixes) or 'none'})"))
