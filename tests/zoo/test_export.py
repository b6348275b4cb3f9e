"""Export to a TF SavedModel and serve it from a fresh process that has only TensorFlow."""
import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import zoo
from zoo.export import export

SERVE = textwrap.dedent("""
    import sys
    for name in ("keras", "zoo", "layers", "jax", "torch"):
        sys.modules[name] = None  # prove the SavedModel needs nothing but TensorFlow
    import numpy as np, tensorflow as tf
    model = tf.saved_model.load(sys.argv[1])
    x = np.load(sys.argv[2])
    np.save(sys.argv[3], model.encode(tf.constant(x)).numpy())
    np.save(sys.argv[4], model.forward(tf.constant(x)).numpy())
    z = model.decode(tf.zeros((1, 3, int(sys.argv[5])))).numpy()
    short = model.forward(tf.zeros((1, 100))).numpy()
    print(z.shape, short.shape)
""")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    pytest.importorskip("tensorflow")
    tmp = tmp_path_factory.mktemp("export")
    model = zoo.load("vae", channels=16, latent_dim=4, n_mels=16, griffin_lim_iters=4)
    out = export(model, tmp / "vae_export", metadata={"note": "test"}, verbose=False)
    return model, out


def test_export_writes_savedmodel_keras_and_metadata(exported):
    model, out = exported
    assert (out / "saved_model" / "saved_model.pb").is_file()
    assert (out / "model.keras").is_file()
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["trained_on_backend"] == keras.backend.backend()
    assert meta["sample_rate"] == 16000 and meta["note"] == "test"
    assert set(meta["signatures"]) == {"forward", "encode", "decode"}
    assert meta["config"] == json.loads(json.dumps(model.get_config()))


def test_tensorflow_only_process_serves_same_outputs(exported, tmp_path):
    model, out = exported
    x = (np.random.default_rng(0).standard_normal((2, 5003)) * 0.1).astype("float32")
    np.save(tmp_path / "x.npy", x)
    proc = subprocess.run(
        [sys.executable, "-c", SERVE, str(out / "saved_model"), str(tmp_path / "x.npy"),
         str(tmp_path / "enc.npy"), str(tmp_path / "fwd.npy"), str(model.latent_dim)],
        capture_output=True, text=True, env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    # decode: (3 latents * frames per latent - 1) frames * hop samples
    length = (3 * model.time_compression - 1) * model.frontend.hop_length
    assert f"(1, {length}) (1, 100)" in proc.stdout
    served_z = np.load(tmp_path / "enc.npy")
    served_y = np.load(tmp_path / "fwd.npy")
    np.testing.assert_allclose(served_z, keras.ops.convert_to_numpy(model.encode(x)), atol=1e-4)
    ours = keras.ops.convert_to_numpy(model.reconstruct(x))
    assert served_y.shape == x.shape
    # Griffin-Lim iterates, so float differences between backends grow a little.
    rel = np.linalg.norm(served_y - ours) / np.linalg.norm(ours)
    assert rel < 0.1, rel


def test_export_replaces_existing_folder_atomically(exported, tmp_path):
    """A real ``zoo export`` SIGKILLed mid-write leaves the old folder as it was; the
    next export replaces it and removes the killed one's temporary folder."""
    import os
    import signal
    from pathlib import Path

    model, out = exported
    target = tmp_path / "target"
    target.mkdir()
    (target / "old.txt").write_text("old")
    helper = Path(__file__).with_name("_killed_training.py")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run([sys.executable, str(helper), "after:model.keras#1", "export",
                           str(out / "model.keras"), "--to", str(target)],
                          env=env, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
    assert [p.name.startswith(".target.tmp") for p in tmp_path.glob(".target*")] == [True]
    export(model, target, verbose=False)
    assert not (target / "old.txt").exists() and (target / "saved_model").is_dir()
    assert not list(tmp_path.glob(".target*"))  # no temporary folders left behind


def test_export_bad_inputs(tmp_path):
    with pytest.raises(zoo.ZooError, match="not a run folder"):
        export(tmp_path, tmp_path / "out", verbose=False)
    with pytest.raises(zoo.ZooError, match="file not found"):
        export(tmp_path / "missing.keras", tmp_path / "out", verbose=False)
