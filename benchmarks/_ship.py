"""Shipping trained weights: ``saved_models/<name>_<weights>/`` with a ``metadata.json``."""
import datetime
import json
import shutil
from pathlib import Path

SAVED_MODELS = Path(__file__).resolve().parents[1] / "saved_models"


def ship_weights(model, registry_name, weights, **metadata):
    """Write ``saved_models/<registry_name>_<weights>/model.keras`` (the weights without
    optimizer or compile state, :func:`zoo.registry.without_training_state`) and a
    ``metadata.json`` of the fields every shipped model carries (class, backend, Keras
    version, rate, date, config) plus ``metadata`` (data, licences, steps, figures).

    Returns:
        The folder written.
    """
    import keras

    from zoo.files import atomic_save_model, atomic_write_text
    from zoo.registry import without_training_state

    folder = SAVED_MODELS / f"{registry_name}_{weights}"
    atomic_save_model(without_training_state(model), folder / "model.keras")
    meta = {
        "model": type(model).__name__, "registry_name": registry_name, "weights": weights,
        "trained_on_backend": keras.backend.backend(), "keras_version": keras.__version__,
        "sample_rate": int(model.sample_rate),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config": model.get_config(), **metadata,
    }
    atomic_write_text(folder / "metadata.json",
                      json.dumps(meta, indent=2, default=float) + "\n")
    shutil.rmtree(folder / "saved_model", ignore_errors=True)  # a stale export
    print(f"shipped {folder}")
    return folder
