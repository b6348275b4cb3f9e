"""`zoo train --distribute data`: on two CPU devices, the same global batch gives the
same training as one device (JAX: one sharded program; TensorFlow: MirroredStrategy
replicas whose gradients are summed), checkpoints resume, torch refuses in one line."""
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

from zoo.errors import ZooError

ROOT = Path(__file__).resolve().parents[2]
BACKEND = keras.backend.backend()


def _check(tmp_path, names):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": BACKEND,
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "zoo" / "_data_parallel_check.py"),
                           str(tmp_path), ",".join(names)], env=env, capture_output=True,
                          text=True, timeout=400, cwd=ROOT)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


@pytest.mark.skipif(BACKEND == "torch", reason="torch: data parallelism is refused (below)")
def test_two_devices_train_like_one_at_the_same_global_batch(tmp_path):
    # JAX shards one program: every model matches. TF replicas draw their own
    # reparameterisation noise, so the VAE matches only within sampling noise; the
    # deterministic autoencoder and two-objective adversarial model match exactly.
    names = ["vae", "gan"] if BACKEND == "jax" else ["ae", "vae", "gan"]
    report = _check(tmp_path, names)
    assert report["devices"] == 2
    for name in names:
        (loss_d, w_d), (loss_s, w_s) = report[f"{name}/data"], report[f"{name}/single"]
        noisy = BACKEND == "tensorflow" and name == "vae"
        tol = 0.03 if noisy else 1e-4
        assert loss_d == pytest.approx(loss_s, rel=tol), (name, loss_d, loss_s)
        assert w_d == pytest.approx(w_s, rel=0.1 if noisy else 1e-4, abs=1e-3), (name, w_d, w_s)
    assert report["resumed_step"] == 6


def test_bad_distribute_options_are_one_line(tmp_path):
    from zoo.training.trainer import train

    with pytest.raises(ZooError, match="--distribute must be one of data"):
        train("vae", tiny=True, out=tmp_path / "a", distribute="model")
    with pytest.raises(ZooError, match="--devices needs --distribute"):
        train("vae", tiny=True, out=tmp_path / "b", devices=2)
    if BACKEND == "torch":
        with pytest.raises(ZooError, match="jax .* and tensorflow"):
            train("vae", tiny=True, out=tmp_path / "c", distribute="data")


def _free_ports(n):
    import socket

    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _process_launch(i, ports):
    """Command-line flags and environment that make process ``i`` of two join the run:
    a JAX coordinator, or TensorFlow's ``TF_CONFIG`` naming both workers."""
    if BACKEND == "jax":
        return ["--coordinator", f"127.0.0.1:{ports[0]}", "--num-processes", "2",
                "--process-id", str(i)], {}
    config = {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
              "task": {"type": "worker", "index": i}}
    return [], {"TF_CONFIG": json.dumps(config)}


@pytest.mark.skipif(BACKEND == "torch", reason="multi-process training: jax and tensorflow")
def test_two_processes_on_loopback_train_like_one(tmp_path):
    """`zoo train --distribute data` in two processes (JAX: jax.distributed with gloo on
    CPU; TensorFlow: TF_CONFIG and MultiWorkerMirroredStrategy), each feeding half of
    every global batch: the run process 0 writes matches the single-process run."""
    import csv

    from zoo.training.trainer import train

    ports = _free_ports(2)
    sets = ["--set", "train.steps_per_epoch=4", "--set", "train.checkpoint_every=4"]
    procs = []
    for i in range(2):
        flags, extra_env = _process_launch(i, ports)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": BACKEND, **extra_env,
               "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "zoo.cli", "train", "ae", "--tiny", "--steps", "4", *sets,
             "--distribute", "data", *flags, "--out", str(tmp_path / "multi")], env=env,
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    try:
        outs = [p.communicate(timeout=300)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert all(p.returncode == 0 for p in procs), "\n".join(o[-2000:] for o in outs)
    single = train("ae", tiny=True, steps=4, out=tmp_path / "single", verbose=0, samples=False,
                   overrides={"train": {"steps_per_epoch": 4, "checkpoint_every": 4}})
    with open(tmp_path / "multi" / "history.csv", newline="") as f:
        row = list(csv.DictReader(f))[-1]
    assert float(row["loss"]) == pytest.approx(single.history["loss"][-1], rel=1e-4)
    assert float(row["val_loss"]) == pytest.approx(single.history["val_loss"][-1], rel=1e-4)
    assert (tmp_path / "multi" / "model.keras").is_file()


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TF_CONFIG is read on tensorflow")
def test_malformed_tf_config_is_one_line_error(tmp_path, monkeypatch):
    from zoo.training.trainer import train

    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {}}')
    with pytest.raises(ZooError, match="TF_CONFIG: expected"):
        train("ae", tiny=True, out=tmp_path / "a", distribute="data")
