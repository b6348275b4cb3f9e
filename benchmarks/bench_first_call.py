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

Usage::

    KERAS_BACKEND=jax python benchmarks/bench_first_call.py [--recipe rave] [--trials 2] \
        [--json out.json]
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

CHILD = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import keras  # noqa: F401 (the backend's import is not the model's load)
import zoo.registry
t1 = time.perf_counter()
model = zoo.load({recipe!r})
t2 = time.perf_counter()
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
                   "peak_mib": int(rss[0].split()[1]) / 1024 if rss else None}}))
"""


def trial(recipe, block, cache_dir):
    env = {**os.environ, "ZOO_CACHE_DIR": str(cache_dir), "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", CHILD.format(recipe=recipe, block=block)],
                         env=env, capture_output=True, text=True, timeout=900)
    if out.returncode:
        raise RuntimeError(f"first-call trial failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def median(values):
    return sorted(values)[len(values) // 2]


def run(recipe="rave", trials=2, block=2048):
    records = []
    with tempfile.TemporaryDirectory() as cache:
        runs = {"cold": [], "warm": []}
        for kind in ("cold", "warm"):
            for _ in range(trials):
                if kind == "cold":  # an empty cache for every cold trial
                    for item in Path(cache).iterdir():
                        shutil.rmtree(item)
                runs[kind].append(trial(recipe, block, cache))
    settings = {"recipe": recipe, "block": block, "trials": trials}
    for kind, results in runs.items():
        for what, values in (("import keras + zoo", [r["import"] for r in results]),
                             ("zoo.load", [r["load"] for r in results]),
                             ("first block", [r["blocks"][0] for r in results]),
                             ("second block", [r["blocks"][1] for r in results]),
                             ("third block", [r["blocks"][2] for r in results])):
            records.append(record(f"{recipe}: {what}, new process, {kind} cache",
                                  1000 * median(values), "ms", settings=settings,
                                  note="lower is better"))
        peaks = [r["peak_mib"] for r in results if r["peak_mib"] is not None]
        if peaks:
            records.append(record(f"{recipe}: peak RSS after three blocks, {kind} cache",
                                  median(peaks), "MiB", settings=settings,
                                  note="lower is better"))
    return records


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default="rave")
    p.add_argument("--trials", type=int, default=2)
    p.add_argument("--block", type=int, default=2048)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    records = run(args.recipe, args.trials, args.block)
    script_report(records, "first_call", False, args.json or results_path("first_call"))


if __name__ == "__main__":
    main()
