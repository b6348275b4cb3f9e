"""Keras 3 multi-backend model zoo for generative audio.

``zoo.load("vae")`` builds a registered model from its default recipe,
``zoo.load("rave_v1")`` from any shipped recipe (a preset, as keras-hub's
``from_preset``), ``zoo.load("runs/my_run")`` restores a trained run, ``zoo.list_models()`` lists
what is registered. Nothing heavy is imported until it is used.
"""
__version__ = "0.1.0"

from zoo.errors import ZooError  # noqa: F401


def list_models():
    """Names of every registered model, sorted."""
    from zoo import registry

    return registry.list_models()


def load(name_or_path, weights=None, warm_up_block=2048, **overrides):
    """Build a registered model, or restore a saved run / ``.keras`` file.

    Args:
        name_or_path: a registry name (see :func:`list_models`), a recipe name
            (a preset: ``"rave_v1"``, ``"vae_vowels"``), a run folder written by
            ``zoo train``, or a ``.keras`` file.
        weights: name of shipped weights in ``saved_models/`` (e.g. ``"timbre"``).
        warm_up_block: a model that streams (a causal RAVE) has its ``stream``
            compiled at load for blocks of this many samples at batch 1
            (:meth:`~zoo.engine.ZooModel.warm_up_stream`), so the first block comes
            out as fast as the next ones; ``None`` leaves it to the first call (offline
            use, or another block size: a new block size compiles on its first call).
        **overrides: constructor arguments replacing the recipe's ``[model]`` values.

    Returns:
        A ``keras.Model``.
    """
    from zoo import registry

    model = registry.load(name_or_path, weights=weights, **overrides)
    if warm_up_block and getattr(model, "supports", None) and model.supports("stream"):
        model.warm_up_stream(warm_up_block)
    return model
