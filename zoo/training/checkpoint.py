"""Run checkpoints: ``checkpoint.keras`` (model + optimizer + seed states) and
``state.json`` (the global step it holds), both written atomically through
:mod:`zoo.files`."""
import json
from pathlib import Path

from zoo.files import atomic_write_text


def read_state(run_dir):
    """``state.json`` of a run (``None`` when there is none)."""
    path = Path(run_dir) / "state.json"
    return json.loads(path.read_text()) if path.is_file() else None


def write_state(run_dir, **state):
    """Write ``state.json`` atomically."""
    atomic_write_text(Path(run_dir) / "state.json", json.dumps(state, indent=2))
