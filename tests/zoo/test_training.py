"""zoo train: checkpoints, resume, divergence, run folders, both data loaders."""
import json

import keras
import numpy as np
import pytest

from zoo import registry
from zoo.errors import TrainingDiverged, ZooError
from zoo.training.trainer import _segments, train

FAST = {"train": {"validation_steps": 1}}


def weights(model):
    return [np.array(keras.ops.convert_to_numpy(v)) for v in model.weights]


def test_segments_cover_steps_once():
    assert _segments(0, 6, 2) == [(0, 6, 0, 3, 2)]
    assert _segments(3, 9, 2) == [(3, 1, 1, 2, 1), (4, 4, 2, 4, 2), (8, 1, 4, 5, 1)]
    for start, total, spe in [(0, 7, 3), (5, 23, 4), (4, 5, 10)]:
        steps = [s for seg in _segments(start, total, spe) for s in range(seg[0], seg[0] + seg[1])]
        assert steps == list(range(start, total))


def test_run_folder_contents(tmp_path):
    result = train("vae", tiny=True, out=tmp_path / "run", verbose=0, overrides=FAST)
    run = result.run_dir
    for name in ("recipe.json", "checkpoint.keras", "state.json", "model.keras", "history.csv"):
        assert (run / name).is_file(), name
    assert json.loads((run / "state.json").read_text())["step"] == 4
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_001", "epoch_002"]
    epoch = run / "samples" / "epoch_002"
    assert (epoch / "spectrogram_0.png").stat().st_size > 1000
    assert {p.name for p in epoch.glob("*.wav")} >= {"input_0.wav", "reconstruction_0.wav"}
    if keras.backend.backend() == "tensorflow" or _has_tf():
        assert any((run / "logs").rglob("events.out.tfevents*"))
    reloaded = registry.load_saved(run)
    for a, b in zip(weights(result.model), weights(reloaded)):
        np.testing.assert_array_equal(a, b)


def _has_tf():
    try:
        import tensorflow  # noqa: F401
        return True
    except ImportError:
        return False


@pytest.mark.parametrize("model_name", ["ae", "vae"])
def test_resume_continues_from_the_same_step(tmp_path, model_name):
    """4 steps + resume to 8 == 8 uninterrupted steps: same data, same optimizer state."""
    straight = train(model_name, tiny=True, steps=8, out=tmp_path / "straight", verbose=0,
                     samples=False, overrides=FAST)
    train(model_name, tiny=True, steps=3, out=tmp_path / "split", verbose=0, samples=False,
          overrides=FAST)
    resumed = train(out=tmp_path / "split", resume=True, steps=8, verbose=0, samples=False)
    assert int(keras.ops.convert_to_numpy(resumed.model.optimizer.iterations)) == 8
    assert json.loads((tmp_path / "split" / "state.json").read_text())["step"] == 8
    for a, b in zip(weights(straight.model), weights(resumed.model)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_nan_loss_stops_with_message_and_keeps_last_good_checkpoint(tmp_path):
    class Poison(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.seen == 2:  # after the checkpoint at step 2, poison the weights
                var = self.model.decoder.trainable_weights[0]
                var.assign(keras.ops.full(var.shape, float("nan")))
            self.seen += 1

    poison = Poison()
    poison.seen = 0
    with pytest.raises(TrainingDiverged, match=r"step \d.*last good checkpoint.*step 2"):
        train("vae", tiny=True, steps=6, out=tmp_path / "run", verbose=0, samples=False,
              callbacks=[poison], overrides=FAST)
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["step"] == 2
    model = registry.load_saved(tmp_path / "run" / "checkpoint.keras")
    assert all(np.all(np.isfinite(w)) for w in weights(model))


def test_existing_run_is_never_overwritten(tmp_path):
    train("vae", tiny=True, steps=2, out=tmp_path / "run", verbose=0, samples=False, overrides=FAST)
    before = (tmp_path / "run" / "checkpoint.keras").read_bytes()
    with pytest.raises(ZooError, match="already holds a run"):
        train("vae", tiny=True, steps=2, out=tmp_path / "run", verbose=0)
    assert (tmp_path / "run" / "checkpoint.keras").read_bytes() == before


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(ZooError, match="nothing to resume"):
        train(out=tmp_path / "empty", resume=True)


def test_unknown_names_and_bad_overrides(tmp_path):
    with pytest.raises(ZooError, match="unknown recipe"):
        train("no_such_model", out=tmp_path / "a")
    with pytest.raises(ZooError, match="unknown key model_config.'nope'"):
        train("vae", tiny=True, out=tmp_path / "b", overrides={"model_config": {"nope": 1}})
    with pytest.raises(ZooError, match="No such|not found|does not exist|missing"):
        train("vae", tiny=True, data=tmp_path / "missing_folder", out=tmp_path / "c")


def test_tf_data_and_pydataset_loaders_train_identically(tmp_path):
    pytest.importorskip("tensorflow")
    a = train("ae", tiny=True, steps=2, out=tmp_path / "tf", verbose=0, samples=False,
              loader="tf", overrides=FAST)
    b = train("ae", tiny=True, steps=2, out=tmp_path / "py", verbose=0, samples=False,
              loader="py", overrides=FAST)
    for x, y in zip(weights(a.model), weights(b.model)):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)


def test_trains_without_tensorflow_on_jax_and_torch(tmp_path):
    """GPU machines often have only JAX or torch: block TensorFlow and train."""
    import os
    import subprocess
    import sys
    import textwrap

    backend = keras.backend.backend()
    if backend == "tensorflow":
        pytest.skip("this check is for the JAX and torch backends")
    code = textwrap.dedent(f"""
        import sys
        sys.modules["tensorflow"] = None  # import tensorflow now raises ImportError
        from zoo.training.trainer import train
        r = train("vae", tiny=True, steps=2, out={str(tmp_path / 'run')!r}, verbose=0,
                  overrides={{"train": {{"validation_steps": 1}}}})
        import keras, numpy as np
        y = keras.ops.convert_to_numpy(r.model.reconstruct(np.zeros((1, 3000), "float32")))
        assert "tensorflow" not in [m.split(".")[0] for m in sys.modules if sys.modules[m]]
        print("ok", r.step, y.shape)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "KERAS_BACKEND": backend})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ok 2 (1, 3000)" in proc.stdout
    assert (tmp_path / "run" / "samples" / "epoch_001" / "spectrogram_0.png").is_file()


def test_resume_of_a_complete_run_finishes_and_a_stale_state_is_caught(tmp_path, capsys):
    """A kill after the last checkpoint (no model.keras) resumes to a finished run; a kill
    between checkpoint.keras and state.json resumes from the checkpoint's own step."""
    run = tmp_path / "run"
    train("ae", tiny=True, steps=4, out=run, verbose=0, samples=False, overrides=FAST)
    (run / "model.keras").unlink()
    done = train(out=run, resume=True, steps=4, verbose=1, samples=False)
    assert done.step == 4 and (run / "model.keras").is_file()
    assert "is complete (step 4)" in capsys.readouterr().out
    state = json.loads((run / "state.json").read_text())
    (run / "state.json").write_text(json.dumps({**state, "step": 2}))  # the kill's leftover
    resumed = train(out=run, resume=True, steps=6, verbose=1, samples=False)
    assert "holds step 4; resuming from 4" in capsys.readouterr().out
    assert resumed.step == 6
    assert int(keras.ops.convert_to_numpy(resumed.model.optimizer.iterations)) == 6
    # a kill between the first checkpoint.keras and the first state.json (seen in the
    # distributed tune test): the checkpoint's own step count resumes it
    (run / "state.json").unlink()
    again = train(out=run, resume=True, steps=8, verbose=1, samples=False)
    assert "no state.json (killed while checkpointing); the checkpoint holds step 6" in (
        capsys.readouterr().out)
    assert again.step == 8 and json.loads((run / "state.json").read_text())["step"] == 8


def test_sigkill_at_any_write_resumes_to_the_uninterrupted_result(tmp_path, capsys):
    """A real training process is SIGKILLed three times (while writing a checkpoint,
    between checkpoint.keras and state.json, before the final model.keras), resumed
    after each kill, and ends with the weights of a run that was never interrupted,
    a model.keras that loads in safe mode, and no temporary files left behind."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    run = tmp_path / "run"
    args = ["--steps", "6", "--out", str(run), "--set", "train.checkpoint_every=2",
            "--set", "train.validation_steps=1", "--set", "train.num_samples=0"]
    helper = Path(__file__).with_name("_killed_training.py")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    for point, command in [("before:checkpoint.keras#2", ["train", "ae", "--tiny"]),
                           ("after:checkpoint.keras#1", ["train", "--resume"]),
                           ("before:model.keras#1", ["train", "--resume"])]:
        proc = subprocess.run([sys.executable, str(helper), point, *command, *args],
                              env=env, capture_output=True, text=True)
        assert proc.returncode == -signal.SIGKILL, (point, proc.stderr[-3000:])
        assert not (run / "model.keras").exists()
    done = train(out=run, resume=True, steps=6, verbose=1, samples=False)
    assert "is complete (step 6)" in capsys.readouterr().out
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []
    straight = train("ae", tiny=True, steps=6, out=tmp_path / "straight", verbose=0,
                     samples=False, overrides={"train": {"checkpoint_every": 2,
                                                         "validation_steps": 1}})
    reloaded = registry.load_saved(run)  # model.keras, Keras safe mode
    for a, b, c in zip(weights(straight.model), weights(done.model), weights(reloaded)):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(c, b)
