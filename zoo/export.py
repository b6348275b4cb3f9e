"""Export to serving: TF SavedModel + ``.keras`` + ``metadata.json``.

The portable path: whatever backend trained the model, its ``.keras``
file is loaded under TensorFlow in a subprocess and exported there, so a fresh
process with only TensorFlow can serve it. Signatures take float32 waveforms
``[batch, samples]`` of any length; models list theirs in ``serving_endpoints()``
(``forward`` always, ``encode``/``decode`` where there is a latent).

Every write goes to a temporary folder that replaces the target only when complete
(:func:`zoo.files.atomic_folder`).
"""
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import keras

from zoo.engine import ServingInput
from zoo.errors import ZooError
from zoo.files import atomic_folder


def export(model_or_path, out_dir, metadata=None, verbose=True):
    """Write ``out_dir/{model.keras, saved_model/, metadata.json}``.

    Args:
        model_or_path: a model, a run folder or a ``.keras`` file.
        out_dir: destination folder (replaced atomically if it exists).
        metadata: extra fields for ``metadata.json`` (recipe, steps, metrics, ...).
        verbose: print where things were written.

    Returns:
        ``out_dir`` as a ``Path``.
    """
    from zoo import registry

    run_dir = None
    if isinstance(model_or_path, (str, Path)):
        path = Path(model_or_path)
        run_dir = path if path.is_dir() else None
        model = registry.load_saved(path)
    else:
        model = model_or_path
    try:
        endpoints = model.serving_endpoints()
    except NotImplementedError as err:
        raise ZooError(str(err)) from None
    out_dir = Path(out_dir)
    with atomic_folder(out_dir) as tmp:
        model.save(tmp / "model.keras")
        if keras.backend.backend() == "tensorflow":
            write_saved_model(model, tmp / "saved_model")
        else:
            _export_in_tensorflow_subprocess(tmp / "model.keras", tmp / "saved_model")
        info = {
            "model": type(model).__name__,
            "trained_on_backend": keras.backend.backend(),
            "keras_version": keras.__version__,
            "sample_rate": model.sample_rate,
            "capabilities": sorted(map(str, model.active_capabilities())),
            "signatures": {name: [{"shape": list(ServingInput.of(s).shape),
                                   "dtype": ServingInput.of(s).dtype} for s in specs]
                           for name, (_, specs) in endpoints.items()},
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "config": model.get_config(),
        }
        if run_dir is not None:
            info["run"] = str(run_dir)
            for name in ("recipe.json", "state.json"):
                if (run_dir / name).is_file():
                    info[name[:-5]] = json.loads((run_dir / name).read_text())
        info.update(metadata or {})
        (tmp / "metadata.json").write_text(json.dumps(info, indent=2, default=str))
    if verbose:
        print(f"exported {type(model).__name__} to {out_dir}/ "
              f"(saved_model/, model.keras, metadata.json)")
    return out_dir


def write_saved_model(model, path):
    """TF backend only: a SavedModel with one signature per ``model.serving_endpoints()``."""
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, (fn, specs) in model.serving_endpoints().items():
        signature = [tf.TensorSpec(spec.shape, spec.dtype, name=f"arg{i}")
                     for i, spec in enumerate(map(ServingInput.of, specs))]
        archive.add_endpoint(name, fn, input_signature=signature)
    archive.write_out(str(path), verbose=False)


def _export_in_tensorflow_subprocess(keras_file, saved_model_dir):
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    code = ("import sys, zoo.registry as r, zoo.export as e; "
            "e.write_saved_model(r.load_saved(sys.argv[1]), sys.argv[2])")
    proc = subprocess.run([sys.executable, "-c", code, str(keras_file), str(saved_model_dir)],
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise ZooError(f"SavedModel export under TensorFlow failed: {tail[0]}")
