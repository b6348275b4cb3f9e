"""The benchmark suite: every benchmark on every requested backend, one results table.

``python -m benchmarks [--quick] [--backends tensorflow,jax,torch] [--only NAME,...] [--out DIR]``

Items (``--only`` takes these names; ``models`` means every ``model:*``):

* ``layers``     -- 16-band PQMF vs scipy ``upfirdn``; multiscale spectral distance vs
                    numpy + librosa (``bench_layers.py``);
* ``griffinlim`` -- fast Griffin-Lim vs ``librosa.griffinlim`` (``bench_griffinlim.py``);
* ``pipeline``   -- data pipeline crops/s: tf.data, PyDataset vs a librosa-load loop
                    (``bench_pipeline.py``);
* ``model:NAME`` -- one per registered model (``zoo.registry.list_models()``, so new models
                    join with no code here): training steps/s, samples/s, peak memory,
                    inference x real time (``bench_models.py``);
* ``travelgan``  -- shipped TraVeLGAN weights' conversion vs the MelGAN-VC notebook's
                    generator (tf_keras; ``bench_travelgan.py``);
* ``priors``     -- codes/s of the wavenet (cached) and pixelcnn (compiled) samplers vs
                    naive re-running sampling (``bench_priors.py``).

Each backend runs in its own subprocess (``KERAS_BACKEND`` must be set before Keras is
imported; ``benchmarks/_worker.py``); a backend that is not installed is skipped with a
message. The records of all backends (schema: ``benchmarks/_records.py``) are merged into
``<out>/<device-slug>.json`` and ``<out>/<device-slug>.md``, replacing earlier records of the
same benchmark and backend in those files and keeping the others. Speeds are rates (higher is
better); ``ratio = value / reference``.
"""
import argparse
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._records import BACKEND_MODULES, device_slug, markdown_table, now, validate

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = Path(__file__).resolve().parent / "results"

#: fixed items -> "module:function" with the signature ``run(quick) -> list[dict]``
ITEMS = {
    "layers": "benchmarks.bench_layers:run",
    "griffinlim": "benchmarks.bench_griffinlim:run",
    "pipeline": "benchmarks.bench_pipeline:run",
    "travelgan": "benchmarks.bench_travelgan:run",
    "priors": "benchmarks.bench_priors:run",
}
MODEL_PREFIX = "model:"


def all_items():
    """Every item name, in the order the suite runs them."""
    from zoo.registry import list_models

    fixed = list(ITEMS)
    return fixed[:3] + [MODEL_PREFIX + m for m in list_models()] + fixed[3:]


def select(only=None):
    """The items ``--only`` names (all when None), in suite order; ValueError on unknown names."""
    items = all_items()
    if not only:
        return items
    wanted = [w.strip() for w in only.split(",") if w.strip()]
    unknown = [w for w in wanted if w not in items and w != "models"]
    if unknown:
        raise ValueError(f"unknown benchmark(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(items)} or 'models'")
    return [i for i in items if i in wanted or ("models" in wanted and
                                                i.startswith(MODEL_PREFIX))]


def item_function(item):
    """``(run function, keyword arguments)`` of a suite item (imports its module)."""
    if item.startswith(MODEL_PREFIX):
        from benchmarks.bench_models import run_model

        name = item[len(MODEL_PREFIX):]
        return (lambda quick, **kw: run_model(name, quick, **kw)), {}
    module, fn = ITEMS[item].split(":")
    return getattr(importlib.import_module(module), fn), {}


def backend_available(backend):
    """Whether the backend's library can be imported here (without importing it)."""
    return importlib.util.find_spec(BACKEND_MODULES[backend]) is not None


def run_backend(backend, items, quick, torch_threads=None):
    """Run ``items`` in a subprocess with ``KERAS_BACKEND=backend``; returns (records, errors)."""
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [
                   os.environ.get("PYTHONPATH")] if p]))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "records.json"
        cmd = [sys.executable, "-m", "benchmarks._worker", "--items", ",".join(items),
               "--json", str(out)] + (["--quick"] if quick else []) + (
               ["--torch-threads", str(torch_threads)] if torch_threads else [])
        rc = subprocess.run(cmd, env=env, cwd=ROOT).returncode
        result = json.loads(out.read_text()) if out.is_file() else {"records": [], "errors": []}
    if rc != 0 and not result["errors"]:
        result["errors"].append({"item": ",".join(items), "backend": backend,
                                 "error": f"worker exited with status {rc}"})
    return result["records"], result["errors"]


def merge(old, new):
    """``old`` records without those of a (benchmark, backend) that ``new`` has, then ``new``."""
    replaced = {(r["benchmark"], r["backend"]) for r in new}
    return [r for r in old if (r.get("benchmark"), r.get("backend")) not in replaced] + new


def ordered(records, backends=("tensorflow", "jax", "torch")):
    """Records grouped for the table: by item (suite order), then name, then backend."""
    order = {item: i for i, item in enumerate(all_items())}
    first = {}
    for r in records:
        first.setdefault(r["name"], len(first))
    return sorted(records, key=lambda r: (
        order.get(r["benchmark"], len(order)), first[r["name"]],
        backends.index(r["backend"]) if r["backend"] in backends else len(backends)))


def write_results(out_dir, slug, records, header):
    """Write ``<slug>.json`` and ``<slug>.md``, merged with what those files held; returns the
    merged records."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{slug}.json", out_dir / f"{slug}.md"
    old = json.loads(json_path.read_text())["records"] if json_path.is_file() else []
    merged = ordered(merge(old, records))
    json_path.write_text(json.dumps({**header, "records": merged}, indent=2) + "\n")
    notes = []
    for r in merged:
        if r["note"] and (r["name"], r["note"]) not in [(n, t) for n, t in notes]:
            notes.append((r["name"], r["note"]))
    devices = sorted({r["device"] for r in merged})
    lines = [f"# Benchmarks: {slug}", "",
             f"Device: {'; '.join(devices)}.  ",
             f"Last command: `{header['command']}` on {header['date']} "
             f"(quick: {header['quick']}, {header['wall_s']:.0f} s); every record's own date, "
             "versions and quick flag are in the JSON file.", "",
             "Speeds are rates (higher is better); ratio = value / reference, the reference "
             "measured in the same run unless marked published.", "",
             markdown_table(merged)]
    if notes:
        lines += ["Notes:", ""] + [f"- {name}: {note}" for name, note in notes] + [""]
    md_path.write_text("\n".join(lines))
    return merged, json_path, md_path


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0],
        epilog="Items: " + ", ".join(all_items()) + " (or 'models' for every model).")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and the recipes' tiny configs (a few minutes)")
    parser.add_argument("--backends", default="tensorflow,jax,torch",
                        help="comma-separated Keras backends (default: all three)")
    parser.add_argument("--only", default=None, help="comma-separated items (default: all)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="results folder")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch.set_num_threads (default: the CPUs this process may use)")
    args = parser.parse_args(argv)
    t_start = time.perf_counter()
    try:
        items = select(args.only)
    except ValueError as err:
        parser.error(str(err))
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    bad = [b for b in backends if b not in BACKEND_MODULES]
    if bad:
        parser.error(f"unknown backend(s) {', '.join(bad)}; choose from "
                     f"{', '.join(BACKEND_MODULES)}")
    slug = device_slug()
    print(f"benchmark suite ({'quick' if args.quick else 'full'}): {', '.join(items)} on "
          f"{', '.join(backends)}; device {slug}", flush=True)

    records, errors, skipped = [], [], {}
    for backend in backends:
        if not backend_available(backend):
            skipped[backend] = f"{BACKEND_MODULES[backend]} is not installed"
            print(f"[{backend}] skipped: {skipped[backend]}", flush=True)
            continue
        t0 = time.perf_counter()
        new, errs = run_backend(backend, items, args.quick, args.torch_threads)
        records += new
        errors += errs
        print(f"[{backend}] {len(new)} records, {len(errs)} errors in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    for r in records:
        for problem in validate(r):
            errors.append({"item": r.get("benchmark"), "backend": r.get("backend"),
                           "error": f"bad record {r.get('name')!r}: {problem}"})
    wall = time.perf_counter() - t_start
    header = {"device_slug": slug, "command": " ".join(["python -m benchmarks"] + (
        argv if argv is not None else sys.argv[1:])), "quick": args.quick,
        "date": now(), "wall_s": round(wall, 1),
        "backends": [b for b in backends if b not in skipped], "skipped": skipped,
        "errors": errors}
    merged, json_path, md_path = write_results(args.out, slug, records, header)
    print()
    print(markdown_table(ordered(records)))
    for backend, why in skipped.items():
        print(f"skipped {backend}: {why}")
    for e in errors:
        print(f"ERROR [{e['backend']}] {e['item']}: {e['error']}")
    print(f"wrote {json_path} and {md_path} ({len(records)} new records, {len(merged)} in all); "
          f"suite wall time {wall:.0f} s")
    return 1 if errors else 0
