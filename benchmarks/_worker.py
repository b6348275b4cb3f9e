"""One backend's share of the suite: run the selected items in this process, write their records.

Started by ``python -m benchmarks`` with ``KERAS_BACKEND`` set (it must be set before Keras is
imported, hence one process per backend)::

    KERAS_BACKEND=jax python -m benchmarks._worker --items layers,model:vae --json out.json \
        [--quick] [--torch-threads N]

The JSON file holds ``{"records": [...], "errors": [{"item", "error"}]}`` and is rewritten after
every item, so a crash keeps what was measured before it. An item that raises is reported and
skipped; the exit status is 1 when any item failed.
"""
import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._suite import item_function  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", required=True, help="comma-separated suite items")
    parser.add_argument("--json", required=True, help="where to write the records")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--torch-threads", type=int, default=None)
    args = parser.parse_args(argv)

    from benchmarks._common import BACKEND, finish, run_device, set_torch_threads

    threads = set_torch_threads(args.torch_threads)
    tag = f"[{BACKEND}]"
    print(f"{tag} {run_device()}" + (f"; torch threads {threads}" if threads else ""),
          flush=True)
    out = Path(args.json)
    records, errors = [], []
    for item in args.items.split(","):
        print(f"{tag} {item} ...", flush=True)
        t0 = time.perf_counter()
        try:
            fn, kwargs = item_function(item)
            new = finish(fn(args.quick, **kwargs), item, args.quick)
        except Exception as err:  # report, keep going with the other items
            traceback.print_exc()
            errors.append({"item": item, "backend": BACKEND,
                           "error": f"{type(err).__name__}: {err}"})
            print(f"{tag} {item} FAILED: {type(err).__name__}: {err}", flush=True)
        else:
            records += new
            for r in new:
                ratio = f" ({r['ratio']:.2f}x {r['reference_name']})" if r["ratio"] else ""
                print(f"{tag}   {r['name']}: {r['value']:.4g} {r['unit']}{ratio}", flush=True)
            print(f"{tag} {item} done in {time.perf_counter() - t0:.1f} s", flush=True)
        out.write_text(json.dumps({"records": records, "errors": errors}, indent=2) + "\n")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
