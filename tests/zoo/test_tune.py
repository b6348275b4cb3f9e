"""`zoo tune`: the [tune] space as keras-tuner hyperparameters, a sweep that survives a
SIGKILL, its table and best recipe, distributed chief/worker search on loopback, and
one-line errors."""
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zoo.errors import ZooError

ROOT = Path(__file__).resolve().parents[2]


def _env():
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    for key in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        env.pop(key, None)
    return env


def _zoo(*args, log=None):
    return subprocess.Popen([sys.executable, "-m", "zoo.cli", *map(str, args)], env=_env(),
                            stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            cwd=ROOT)


def _wait_for(predicate, timeout, what, procs=()):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        for p in procs:
            assert p.poll() in (None, 0), f"a process exited with {p.returncode} while " \
                                          f"waiting for {what}"
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _results(out):
    with open(out / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def _events(out):
    """``[(trial, event)]`` from trials.log."""
    lines = (out / "trials.log").read_text().splitlines()
    return [(ln.split()[2], ln.split()[3]) for ln in lines]


# ------------------------------------------------------------------ the space
def test_space_declares_keras_tuner_hyperparameters_and_maps_back_to_recipe_sections():
    import keras_tuner

    from zoo.recipe import validate_tune
    from zoo.models.vae import SpectrogramVAE
    from zoo.tuning import space

    tune = validate_tune({
        "latent_dim": {"type": "choice", "values": [8, 16]},
        "channels": {"type": "int", "min": 16, "max": 64, "step": 16},
        "learning_rate": {"type": "float", "min": 1e-4, "max": 1e-2, "sampling": "log"},
        "variational": {"type": "boolean"},
        "beta": {"type": "float", "min": 0.1, "max": 2.0, "parent": "variational",
                 "parent_values": [True]},
        "data.crop_length": {"type": "choice", "values": [4096, 8192]},
    }, SpectrogramVAE, "test")
    hp = space.declare(keras_tuner.HyperParameters(), tune)
    assert set(hp.values) == set(tune) - {"beta"}  # beta waits for variational = True
    assert isinstance(hp.get("channels"), int) and hp.get("channels") % 16 == 0
    lr = hp.space[[p.name for p in hp.space].index("learning_rate")]
    assert lr.sampling == "log" and lr.min_value == pytest.approx(1e-4)
    hp.values["variational"] = True
    hp.ensure_active_values()  # as the oracle fills a newly active entry
    values = space.active_values(hp, tune)
    assert "beta" in values and 0.1 <= values["beta"] <= 2.0
    hp.values["variational"] = False
    assert "beta" not in space.active_values(hp, tune)  # conditional on variational
    from zoo.recipe import constructor_arguments

    over = space.overrides({**values, "tuner/epochs": 3}, constructor_arguments(SpectrogramVAE))
    assert set(over["model_config"]) == {"latent_dim", "channels", "variational", "beta"}
    assert set(over["train"]) == {"learning_rate"} and set(over["data"]) == {"crop_length"}


def test_every_shipped_gradient_recipe_has_a_valid_search_space():
    from zoo import registry
    from zoo.engine import Fitting
    from zoo.recipe import constructor_arguments
    from zoo.tuning import space

    for name in registry.list_recipes():
        recipe = registry.load_recipe(name)
        cls = registry.model_class(recipe["model"])
        if cls.fitting is not Fitting.GRADIENT:
            assert not recipe["tune"], name
            continue
        assert recipe["tune"], f"{name} has no [tune] space"
        space.check(recipe, recipe["tune"], constructor_arguments(cls),
                    lambda r, o, label: registry.with_overrides(r, o, label=label))


def _recipe(tmp_path, tune_lines):
    text = (ROOT / "recipes" / "vae.toml").read_text().split("[tune]")[0]
    path = tmp_path / "r.toml"
    path.write_text(text + "[tune]\n" + tune_lines + "\n")
    return path


@pytest.mark.parametrize("line,words", [
    ('latnt_dim = { type = "choice", values = [8, 16] }', ["tune.latnt_dim", "latent_dim"]),
    ('latent_dim = { type = "choice", values = [8, "big"] }', ["tune.latent_dim", "'big'"]),
    ('learning_rate = { type = "float", min = 0.0, max = 1e-2, sampling = "log" }',
     ["tune.learning_rate", "min > 0"]),
    ('beta = { type = "float", min = 0.1, max = 2.0, parent = "varitional", '
     'parent_values = [true] }', ["tune.beta", "varitional"]),
])
def test_a_bad_tune_entry_is_one_line_naming_it(tmp_path, line, words):
    from zoo.tuning import tune

    with pytest.raises(ZooError) as err:
        tune(str(_recipe(tmp_path, line)), tiny=True, trials=1, out=tmp_path / "s", verbose=0)
    message = str(err.value)
    assert "\n" not in message and all(w in message for w in words), message
    assert not (tmp_path / "s").exists()  # nothing written before the check


def test_bad_objective_names_what_is_logged(tmp_path):
    from zoo.tuning import tune

    with pytest.raises(ZooError, match="did you mean 'val_loss'") as err:
        tune("vae", tiny=True, trials=1, objective="val_los", out=tmp_path / "s", verbose=0)
    assert "val_reconstruction" in str(err.value) and "mel_distance" in str(err.value)
    with pytest.raises(ZooError, match="--algorithm"):
        tune("vae", tiny=True, algorithm="grid", out=tmp_path / "s", verbose=0)


# ------------------------------------------------------------------ a sweep
def test_sweep_survives_sigkill_writes_sorted_table_and_a_best_recipe_that_trains(tmp_path):
    """3 tiny trials: the tuner is SIGKILLed during trial 1, then the same search runs
    again in-process: trial 0 is not repeated, trial 1 continues from its checkpoint."""
    from zoo.training.trainer import train
    from zoo.tuning import tune

    out = tmp_path / "search"
    log = open(tmp_path / "tuner.log", "w")
    args = ["tune", "vae", "--tiny", "--trials", 3, "--steps", 8, "--out", out, "--verbose", 0]
    proc = _zoo(*args, log=log)
    try:
        _wait_for(lambda: (out / "trials" / "trial_1" / "checkpoint.keras").is_file(), 240,
                  "trial 1's first checkpoint", [proc])
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    for trial in ("trial_0", "trial_1"):
        (out / "trials" / trial / "marker").write_text("kept")  # gone if the folder is redone
    rows0 = (out / "trials" / "trial_0" / "history.csv").read_text()

    result = tune("vae", tiny=True, trials=3, steps=8, out=out, verbose=0)

    events = _events(out)
    assert events.count(("0", "start")) == 1 and events.count(("0", "end")) == 1, events
    assert ("1", "continue") in events and events.count(("1", "end")) == 1, events
    assert events.count(("2", "start")) == 1, events
    assert (out / "trials" / "trial_0" / "history.csv").read_text() == rows0
    for trial in ("trial_0", "trial_1"):
        assert (out / "trials" / trial / "marker").is_file()
    table = _results(out)
    assert [r["status"] for r in table] == ["COMPLETED"] * 3
    scores = [float(r["val_loss"]) for r in table]
    assert scores == sorted(scores)
    # every trial's objective is its run's last val_loss (read independently)
    for r in table:
        with open(Path(r["run"]) / "history.csv", newline="") as f:
            last = list(csv.DictReader(f))[-1]
        assert float(last["val_loss"]) == pytest.approx(float(r["val_loss"]), rel=1e-3)
        assert int(r["steps"]) == 8
    assert result.rows[0]["trial"] == table[0]["trial"]
    assert "| rank |" in (out / "results.md").read_text()

    best = result.best_recipe
    import tomllib

    recipe = tomllib.loads(best.read_text())
    values = result.rows[0]["values"]
    assert recipe["train"]["learning_rate"] == pytest.approx(values["learning_rate"])
    assert recipe["model_config"]["latent_dim"] == values["latent_dim"]
    run = train(str(best), steps=2, out=tmp_path / "best", verbose=0, samples=False)
    assert run.model.latent_dim == values["latent_dim"] and run.step == 2

    with pytest.raises(ZooError, match="holds a search with objective"):
        tune("vae", tiny=True, trials=3, objective="val_kl", out=out, verbose=0)


# ------------------------------------------------------------------ distributed
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ongoing(out):
    path = out / "keras_tuner" / "oracle.json"
    try:
        return json.loads(path.read_text()).get("ongoing_trials", {})
    except (OSError, ValueError):
        return {}


def test_distributed_chief_and_two_workers_on_loopback_survive_a_killed_worker(tmp_path):
    out = tmp_path / "search"
    chief_addr = f"127.0.0.1:{_free_port()}"
    common = ["tune", "vae", "--tiny", "--trials", 3, "--steps", 6, "--out", out,
              "--chief", chief_addr, "--verbose", 0]
    logs = {n: open(tmp_path / f"{n}.log", "w") for n in ("chief", "w1", "w2", "w1b")}
    procs = {"chief": _zoo(*common, log=logs["chief"])}
    try:
        _wait_for(lambda: (out / "keras_tuner").is_dir(), 120, "the chief", procs.values())
        procs["w1"] = _zoo(*common, "--worker", 1, log=logs["w1"])
        # worker 2 starts once worker 1 holds a trial, so worker 1 always gets one
        _wait_for(lambda: "worker-1" in _ongoing(out), 240, "worker 1's trial", procs.values())
        procs["w2"] = _zoo(*common, "--worker", 2, log=logs["w2"])

        def w1_checkpointed():
            trial = _ongoing(out).get("worker-1")
            return trial and (out / "trials" / f"trial_{trial}" / "checkpoint.keras").is_file()

        _wait_for(w1_checkpointed, 240, "worker 1's first checkpoint", procs.values())
        killed_trial = _ongoing(out)["worker-1"]
        procs["w1"].send_signal(signal.SIGKILL)
        procs["w1"].wait()
        # restarted with the same ID, the worker continues its trial
        procs["w1b"] = _zoo(*common, "--worker", 1, log=logs["w1b"])
        for name in ("chief", "w2", "w1b"):
            assert procs[name].wait(timeout=300) == 0, (tmp_path / f"{name}.log").read_text()
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    table = _results(out)
    assert sorted(r["trial"] for r in table) == ["0", "1", "2"]
    assert all(r["status"] == "COMPLETED" for r in table)
    events = _events(out)
    for trial in ("0", "1", "2"):
        assert [e for t, e in events if t == trial].count("end") == 1, events
        assert [e for t, e in events if t == trial].count("start") == 1, events
    assert (killed_trial, "continue") in events
    assert (out / "best_recipe.toml").is_file()
