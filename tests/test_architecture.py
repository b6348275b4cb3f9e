"""The package's import layers (pyproject's ``[tool.importlinter]`` contracts) hold, and
the check really fails when a forbidden import is added."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = shutil.which("lint-imports", path=os.path.dirname(sys.executable)) or shutil.which(
    "lint-imports")

pytestmark = pytest.mark.skipif(LINT is None, reason="import-linter is not installed")


def _lint(root):
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([LINT, "--config", str(root / "pyproject.toml")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def test_import_contracts_hold():
    proc = _lint(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


@pytest.mark.parametrize("module, forbidden", [
    ("zoo/engine/model.py", "zoo.models.vae"),       # the engine importing a model
    ("zoo/models/vae.py", "zoo.training.trainer"),   # a model importing the trainer
    ("layers/spectral.py", "zoo.errors"),            # layers importing the zoo
])
def test_a_forbidden_import_breaks_the_contract(tmp_path, module, forbidden):
    for name in ("zoo", "layers"):
        shutil.copytree(ROOT / name, tmp_path / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with open(tmp_path / module, "a") as f:
        f.write(f"\nimport {forbidden}  # noqa: E402,F401\n")
    proc = _lint(tmp_path)
    assert proc.returncode != 0, proc.stdout
    assert "BROKEN" in proc.stdout and forbidden.rsplit(".", 1)[0] in proc.stdout
