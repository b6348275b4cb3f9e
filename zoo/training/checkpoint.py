"""Atomic checkpoints: a crash or Ctrl-C mid-write never loses the previous one.

Every write goes to a temporary file in the same folder, is flushed, then
replaces the target with ``os.replace`` (atomic on POSIX and Windows).
"""
import json
import os
import tempfile
from pathlib import Path

import numpy as np


def sync_backend_state(model):
    """Make ``model``'s variables current (JAX's ``fit`` keeps them in a pytree)."""
    sync = getattr(model, "jax_state_sync", None)
    if sync is not None:
        sync()


def atomic_write_text(path, text):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_save_model(model, path):
    """``model.save(path)`` (a ``.keras`` file with optimizer state), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.stem}.tmp.keras"
    try:
        model.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def weights_finite(model):
    """True when every variable of ``model`` is finite (no NaN/Inf)."""
    for variable in model.variables:
        value = np.asarray(variable.numpy() if hasattr(variable, "numpy") else variable)
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            return False
    return True


def read_state(run_dir):
    path = Path(run_dir) / "state.json"
    return json.loads(path.read_text()) if path.is_file() else None


def write_state(run_dir, **state):
    atomic_write_text(Path(run_dir) / "state.json", json.dumps(state, indent=2))
