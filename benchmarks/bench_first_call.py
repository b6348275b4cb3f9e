"""First-call latency and peak memory of a streaming model in a new process: what a user
of ``zoo.load(...).stream(...)`` waits for before the first block comes out.

For the current KERAS_BACKEND and a recipe (default ``rave``, random weights), each trial
is a fresh Python process that imports the zoo, builds the model with ``zoo.load``,
streams one block (2048 samples) and then a second and third one, and reports the time
of each step and its peak RSS (``VmHWM``). It runs ``--trials`` processes with an empty
``ZOO_CACHE_DIR`` ("cold": on JAX nothing compiled is on disk) and as many again with
the folder the cold runs filled ("warm": JAX's persistent compilation cache, see
``zoo.engine.backend.jax.enable_compilation_cache``). Torch compiles nothing, so its cold
and warm runs measure the same thing.

With RAVE's own code importable (``--reference auto``, the default when it is;
``benchmarks/_rave_reference.py``), as many trial processes run RAVE v1 + causal with
cached convolutions the same way (import, build, three 2048-sample blocks, peak RSS), and
each of our figures carries RAVE's as its reference (the ratio is then ours / RAVE's
time or memory). Compare like with like: ``--recipe rave_v1 --set causal=true`` is the
same capacity.

``zoo.load`` compiles a streaming model's ``stream`` for the block size at load
(``warm_up_block``), so "zoo.load" includes that and "first block" is a warm call;
``--no-warm-up`` measures the first block compiling itself. "load + first block" is
the time to the first audio either way.

Usage::

    KERAS_BACKEND=jax python benchmarks/bench_first_call.py [--recipe rave] [--trials 2] \
        [--set causal=true] [--reference auto|rave|off] [--no-warm-up] [--json out.json]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import results_path, script_report  # noqa: E402
from benchmarks._records import record  # noqa: E402

_RSS = """
def rss_mib():  # resident memory now
    line = [l for l in open("/proc/self/status") if l.startswith("VmRSS")]
    return int(line[0].split()[1]) / 1024 if line else None
"""

CHILD = _RSS + """
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import keras  # noqa: F401 (the backend's import is not the model's load)
import zoo.registry
t1 = time.perf_counter()
rss_import = rss_mib()
model = zoo.load({recipe!r}, warm_up_block={warm_up!r}, **{overrides!r})
t2 = time.perf_counter()
rss_load = rss_mib()
state = model.initial_state(1)
block = np.zeros((1, {block}), "float32")
times = []
for _ in range(3):
    t = time.perf_counter()
    out, state = model.stream(block, state)
    np.asarray(out)
    times.append(time.perf_counter() - t)
rss = [line for line in open("/proc/self/status") if line.startswith("VmHWM")]
print(json.dumps({{"import": t1 - t0, "load": t2 - t1, "blocks": times,
                   "peak_mib": int(rss[0].split()[1]) / 1024 if rss else None,
                   "rss_import_mib": rss_import, "rss_load_mib": rss_load}}))
"""


REFERENCE_CHILD = _RSS + """
import json, sys, time
sys.path.insert(0, {root!r})
t0 = time.perf_counter()
import numpy as np
import torch
from benchmarks._rave_reference import load
load()
t1 = time.perf_counter()
rss_import = rss_mib()
from benchmarks._rave_reference import RaveReference
torch.set_num_threads({threads})
ref = RaveReference(["v1", "causal"], streaming=True)
t2 = time.perf_counter()
rss_load = rss_mib()
block = np.zeros((1, {block}), "float32")
times = []
for _ in range(3):
    t = time.perf_counter()
    ref.decode(ref.encode(block))
    times.append(time.perf_counter() - t)
rss = [line for line in open("/proc/self/status") if line.startswith("VmHWM")]
print(json.dumps({{"import": t1 - t0, "load": t2 - t1, "blocks": times,
                   "peak_mib": int(rss[0].split()[1]) / 1024 if rss else None,
                   "rss_import_mib": rss_import, "rss_load_mib": rss_load}}))
"""


def trial(recipe, block, cache_dir, overrides=None, reference=False, warm_up=True):
    env = {**os.environ, "ZOO_CACHE_DIR": str(cache_dir), "TF_CPP_MIN_LOG_LEVEL": "3"}
    if reference:
        from benchmarks._records import usable_cpus

        code = REFERENCE_CHILD.format(root=str(Path(__file__).resolve().parents[1]),
                                      block=block, threads=usable_cpus())
    else:
        code = CHILD.format(recipe=recipe, block=block, overrides=dict(overrides or {}),
                            warm_up=block if warm_up else None)
    out = subprocess.run([sys.executable, "-c", code],
                         env=env, capture_output=True, text=True, timeout=900)
    if out.returncode:
        raise RuntimeError(f"first-call trial failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def median(values):
    return sorted(values)[len(values) // 2]


STEPS = (("import keras + zoo", lambda r: r["import"]), ("zoo.load", lambda r: r["load"]),
         ("first block", lambda r: r["blocks"][0]),
         ("load + first block", lambda r: r["load"] + r["blocks"][0]),
         ("second block", lambda r: r["blocks"][1]),
         ("third block", lambda r: r["blocks"][2]))


def run(recipe="rave", trials=2, block=2048, overrides=None, reference="auto", warm_up=True):
    from benchmarks._rave_reference import load

    if reference != "off":
        rave, why = load()
        if rave is None and reference == "rave":
            raise SystemExit(f"--reference rave: RAVE's code is not importable ({why})")
        reference = "off" if rave is None else "rave"
    records = []
    with tempfile.TemporaryDirectory() as cache:
        runs = {"cold": [], "warm": []}
        for kind in ("cold", "warm"):
            for _ in range(trials):
                if kind == "cold":  # an empty cache for every cold trial
                    for item in Path(cache).iterdir():
                        shutil.rmtree(item)
                runs[kind].append(trial(recipe, block, cache, overrides, warm_up=warm_up))
        theirs = ([trial(recipe, block, cache, reference=True) for _ in range(trials)]
                  if reference == "rave" else None)
    settings = {"recipe": recipe, "overrides": dict(overrides or {}), "block": block,
                "trials": trials, "warm_up_at_load": bool(warm_up)}
    ref_name = "RAVE v1 + causal, cached convolutions, its own code (import rave, build, stream)"

    def ref_value(values):
        return None if theirs is None else median(values)

    for kind, results in runs.items():
        for what, get in STEPS:
            records.append(record(f"{recipe}: {what}, new process, {kind} cache",
                                  1000 * median([get(r) for r in results]), "ms",
                                  reference=ref_value([1000 * get(r) for r in theirs or []]),
                                  reference_name=ref_name, settings=settings,
                                  note="lower is better (ratio: ours / RAVE's time)"))
        for key, what in (("rss_import_mib", "resident memory after import"),
                          ("rss_load_mib", "resident memory after zoo.load")):
            values = [r[key] for r in results if r.get(key) is not None]
            if values:  # where the peak comes from
                records.append(record(f"{recipe}: {what}, {kind} cache", median(values), "MiB",
                                      reference=ref_value([r[key] for r in theirs or []]),
                                      reference_name=ref_name, settings=settings,
                                      note="lower is better (ratio: ours / RAVE's memory)"))
        peaks = [r["peak_mib"] for r in results if r["peak_mib"] is not None]
        if peaks:
            records.append(record(f"{recipe}: peak RSS after three blocks, {kind} cache",
                                  median(peaks), "MiB",
                                  reference=ref_value([r["peak_mib"] for r in theirs or []]),
                                  reference_name=ref_name, settings=settings,
                                  note="lower is better (ratio: ours / RAVE's memory)"))
    return records


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default="rave")
    p.add_argument("--trials", type=int, default=2)
    p.add_argument("--block", type=int, default=2048)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="model_config override for zoo.load (e.g. causal=true)")
    p.add_argument("--reference", choices=("auto", "rave", "off"), default="auto",
                   help="RAVE's own code in as many trial processes (auto: when importable)")
    p.add_argument("--no-warm-up", action="store_true",
                   help="zoo.load(..., warm_up_block=None): compile at the first block instead "
                        "of at load")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            p.error(f"--set {item!r}: expected KEY=VALUE (e.g. causal=true)")
        try:
            overrides[key] = json.loads(value)
        except ValueError:  # a bare word is a string
            overrides[key] = value
    records = run(args.recipe, args.trials, args.block, overrides, args.reference,
                  not args.no_warm_up)
    script_report(records, "first_call", False, args.json or results_path("first_call"))


if __name__ == "__main__":
    main()
