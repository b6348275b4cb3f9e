"""The benchmark suite (``python -m benchmarks``): it runs, and what it writes is well formed.

Speeds are never asserted here (benchmarks are scripts); only the records' schema, the
``ratio = value / reference`` invariant and the Markdown table are checked. The end-to-end
test runs two cheap items and one registered model, quick, on the current backend only.
"""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

import zoo
from benchmarks import _records, _suite
from benchmarks._records import REQUIRED_KEYS, markdown_table, record, validate

ROOT = Path(__file__).resolve().parents[1]
BACKEND = keras.backend.backend()


def _table_rows(md):
    """Data rows of the Markdown table (header and rule excluded)."""
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    return rows[1:]


def _full(rec, **env):
    return {**rec, "benchmark": "x", "backend": BACKEND, "device": "cpu", "python": "3",
            "keras": "3", "backend_version": "1", "quick": True, "date": "today", **env}


@pytest.fixture(scope="module")
def quick_suite(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--backends", BACKEND,
         "--only", "pipeline,griffinlim,model:ae", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, proc.stdout


def test_quick_suite_writes_valid_records(quick_suite):
    out, stdout = quick_suite
    slug = _records.device_slug()
    data = json.loads((out / f"{slug}.json").read_text())
    records = data["records"]
    assert data["errors"] == [] and data["backends"] == [BACKEND] and data["quick"] is True
    assert {r["benchmark"] for r in records} == {"pipeline", "griffinlim", "model:ae"}
    for r in records:
        assert set(REQUIRED_KEYS) <= set(r), r
        assert validate(r) == [], (r, validate(r))
        assert r["backend"] == BACKEND and r["quick"] is True
        assert math.isfinite(r["value"]) and r["value"] >= 0
        assert isinstance(r["settings"], dict) and r["settings"]
        if r["reference"] is not None:
            assert r["ratio"] == pytest.approx(r["value"] / r["reference"], rel=1e-9)
        if BACKEND == "torch":
            assert r["settings"]["torch_threads"] >= 1
    # every fixed item has a measured reference; the model has all four figures
    assert all(r["reference_kind"] == "measured" for r in records
               if r["benchmark"] in ("pipeline", "griffinlim"))
    units = {r["unit"] for r in records if r["benchmark"] == "model:ae"}
    assert {"steps/s", "samples/s", "MiB", "x real time"} <= units
    md = (out / f"{slug}.md").read_text()
    rows = _table_rows(md)
    assert len(rows) == len(records)
    for r in records:
        assert any(row.startswith(f"| {r['name']} | {r['backend']} |") for row in rows), r["name"]
    assert "| benchmark | backend | value | reference | ratio | settings |" in stdout


def test_record_ratio_and_validation():
    rec = _full(record("a", 6.0, "x real time", reference=3.0, reference_name="librosa",
                       settings={"n": 1}))
    assert rec["ratio"] == 2.0 and rec["reference_kind"] == "measured"
    assert validate(rec) == []
    assert validate({**rec, "ratio": 3.0})  # ratio != value / reference
    assert validate({**rec, "value": float("nan")})
    assert validate({k: v for k, v in rec.items() if k != "settings"})
    no_ref = _full(record("b", 1.0, "MiB"))
    assert no_ref["ratio"] is None and no_ref["reference_kind"] is None and validate(no_ref) == []
    published = record("c", 10.0, "x real time", reference=20.0, reference_name="paper",
                       published=True)
    assert published["reference_kind"] == "published" and published["ratio"] == 0.5
    md = markdown_table([rec, no_ref, _full(published)])
    assert len(_table_rows(md)) == 3 and "published, not measured here" in md


def test_published_reference_is_attached_with_a_note():
    from benchmarks import bench_models

    ref = bench_models._reference("rave", "inference", {}, tiny=False)
    assert ref is not None and ref[2] is True and ref[0] == pytest.approx(985e3 / 48e3)
    assert "not measured here" in ref[3]
    assert bench_models._reference("no-such-model", "inference", {}, tiny=False) is None


def test_selection_merge_and_missing_backend(tmp_path, monkeypatch, capsys):
    items = _suite.all_items()
    assert [f"model:{m}" for m in zoo.list_models()] == [
        i for i in items if i.startswith("model:")]
    assert _suite.select("models,layers") == ["layers"] + [i for i in items
                                                           if i.startswith("model:")]
    with pytest.raises(ValueError, match="unknown benchmark"):
        _suite.select("nope")
    old = [{"benchmark": "layers", "backend": "jax", "name": "a"},
           {"benchmark": "layers", "backend": "torch", "name": "a"}]
    new = [{"benchmark": "layers", "backend": "jax", "name": "b"}]
    assert _suite.merge(old, new) == [old[1], new[0]]

    monkeypatch.setattr(_suite, "backend_available", lambda backend: False)
    assert _suite.main(["--backends", "torch", "--only", "layers", "--out", str(tmp_path)]) == 0
    assert "skipped: torch is not installed" in capsys.readouterr().out
    data = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert data["skipped"] == {"torch": "torch is not installed"} and data["records"] == []


@pytest.mark.skipif(BACKEND != "tensorflow", reason="one backend is enough: the reference is "
                    "tf_keras whatever KERAS_BACKEND is")
def test_melganvc_reference_has_the_notebooks_parameter_counts_and_trains():
    """``bench_travelgan``'s reference builds the notebook's networks: its trainable
    parameter counts equal the notebook's (REFERENCE.md) at 192 mels, and its two steps
    run (at a small size) and train."""
    pytest.importorskip("tf_keras")
    import numpy as np
    import tensorflow as tf

    from benchmarks._melganvc_reference import NOTEBOOK_PARAMS, build

    assert build()["params"] == NOTEBOOK_PARAMS
    ref = build(n_mels=16, gen_ch=8, critic_ch=8, siamese_dim=4)
    rng = np.random.default_rng(0)
    a, b = (tf.constant(rng.uniform(-1, 1, (2, 16, 72, 1)).astype("float32")) for _ in "ab")
    losses = [float(ref["train_all"](a, b)[0]) for _ in range(2)]
    losses += [float(ref["train_d"](a, b)[0]) for _ in range(2)]
    assert all(np.isfinite(losses)) and len(set(losses)) > 1
    assert ref["generate"](a[:, :, :24]).shape == (2, 16, 24, 1)
