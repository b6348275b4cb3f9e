"""Seed 000's claim, measured: does UNIT+AVB converge faster than UNIT, and end better?

Usage::

    KERAS_BACKEND=jax python benchmarks/eval_unit_claim.py [--steps 3000] [--every 250] \
        [--seeds 0 1 2] [--models unit unit_avb] [--set model_config.channels=64] \
        [--out benchmarks/results/unit_claim.json] [--merge]

Trains each model from its recipe (``recipes/unit.toml``, ``recipes/unit_avb.toml``: the
same networks, data, batch, optimiser and budget; only the KL terms, the encoders'
noise and the discriminators' shared last layer differ) on ``builtin:timbre`` brass
(A) -> reed (B), once per seed, and every ``--every`` steps converts held-out brass
melodies (the val melodies and the first ``--train-melodies`` train melodies, whose
crops the models never see in order: unpaired training) with the figures of
``benchmarks/eval_travelgan.py``: the share of 1 s clips the domain classifier calls
reed, the mel distance to the true reed rendering of the same melody beside the
unconverted input's, and the median f0 error in cents against the source.

Reports, per model, the steps at which the reed share first reaches 90 % and at which
all three of TraVeLGAN's bars first hold (>= 90 % reed, mel distance below the
unconverted input's, f0 error < 50 cents; a seed that never gets there counts as "not
reached"), and the final
figures (mean +- standard deviation over seeds); writes the curves to JSON (after every
run, atomically) and a PNG of reed share and mel distance against steps.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks.eval_travelgan import SOURCE, evaluate, summarise  # noqa: E402

TARGET_SHARE = 90.0


def parse_sets(items):
    """``section.key=value`` strings -> ``{section: {key: value}}`` (TOML values)."""
    import tomllib

    out = {}
    for item in items or []:
        key, _, value = item.partition("=")
        section, _, name = key.partition(".")
        out.setdefault(section, {})[name] = tomllib.loads(f"v = {value}")["v"]
    return out


def train_and_track(name, seed, steps, every, overrides, melodies, ds, classifier, log):
    """Train ``name`` with ``seed``; evaluate every ``every`` steps. Returns the curve and
    the trained model."""
    import keras

    from zoo import registry
    from zoo.training.trainer import recipe_dataset

    recipe = registry.load_recipe(name, overrides=overrides)
    keras.utils.set_random_seed(seed)
    model = registry.build(recipe, seed=seed)
    model.compile_from_recipe(recipe["train"])
    train_ds = recipe_dataset(recipe)
    batch = recipe["train"]["batch_size"]
    curve, done, seconds = [], 0, 0.0
    while done < steps:
        n = min(every, steps - done)
        data = train_ds.batches(batch, num_steps=n, paired=True, loader="py", seed=seed + done)
        t0 = time.perf_counter()
        model.fit(data, epochs=1, steps_per_epoch=n, verbose=0)
        seconds += time.perf_counter() - t0
        done += n
        point = {"step": done, "train_seconds": seconds,
                 **summarise(evaluate(model, ds, melodies, classifier))}
        curve.append(point)
        log(f"{name} seed {seed} step {done}: reed {point['reed_percent']:.1f} %, mel "
            f"{point['mel_distance_converted']:.3f} (unconverted "
            f"{point['mel_distance_unconverted']:.3f}), f0 {point['f0_cents_median']:.1f} "
            f"cents, {seconds:.0f} s training")
    return curve, model


def steps_to_share(curve, share=TARGET_SHARE):
    """First evaluated step with a reed share >= ``share`` (None: never)."""
    return next((p["step"] for p in curve if p["reed_percent"] >= share), None)


def meets_bars(point):
    """TraVeLGAN's three bars: >= 90 % judged reed, mel distance below the unconverted
    input's, median f0 error < 50 cents."""
    return (point["reed_percent"] >= TARGET_SHARE and point["f0_cents_median"] < 50.0
            and point["mel_distance_converted"] < point["mel_distance_unconverted"])


def steps_to_bars(curve):
    """First evaluated step meeting all three bars (None: never)."""
    return next((p["step"] for p in curve if meets_bars(p)), None)


def aggregate(runs):
    """Per model: steps to 90 % and final figures, mean and spread over seeds."""
    out = {}
    for name, curves in runs.items():
        reached = [steps_to_share(c) for c in curves.values()]
        finals = [c[-1] for c in curves.values()]

        def stat(key):
            values = np.array([f[key] for f in finals], float)
            return {"mean": float(np.mean(values)), "std": float(np.std(values)),
                    "values": values.tolist()}

        hit = [r for r in reached if r is not None]
        bars = [steps_to_bars(c) for c in curves.values()]
        out[name] = {"seeds": list(curves), "steps_to_90_percent": reached,
                     "steps_to_90_mean_of_reached": float(np.mean(hit)) if hit else None,
                     "reached_90": f"{len(hit)}/{len(reached)}",
                     "steps_to_all_three_bars": bars,
                     "final_reed_percent": stat("reed_percent"),
                     "final_mel_distance": stat("mel_distance_converted"),
                     "unconverted_mel_distance": stat("mel_distance_unconverted"),
                     "final_f0_cents": stat("f0_cents_median"),
                     "train_seconds": stat("train_seconds")}
    return out


def plot(runs, path):
    """Reed share, mel distance and f0 error against steps, one line per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (("reed_percent", "% of clips judged reed", "target share (bar: 90 %)"),
              ("mel_distance_converted", "mel distance to true reed", "mel distance (lower "
               "is better)"),
              ("f0_cents_median", "median f0 error (cents)", "f0 error (bar: 50 cents)"))
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for color, (name, curves) in zip(("tab:blue", "tab:red"), runs.items()):
        for i, curve in enumerate(curves.values()):
            steps = [p["step"] for p in curve]
            for ax, (key, _, _) in zip(axes, panels):
                ax.plot(steps, [max(p[key], 1.0) if key == "f0_cents_median" else p[key]
                                for p in curve], color=color, alpha=0.7,
                        label=name if i == 0 else None)
        first = next(iter(curves.values()))
        axes[1].axhline(first[0]["mel_distance_unconverted"], color="gray", ls="--",
                        label="unconverted input" if color == "tab:blue" else None)
    axes[0].axhline(TARGET_SHARE, color="gray", ls=":")
    axes[0].set_ylim(-2, 102)
    axes[2].axhline(50.0, color="gray", ls=":")
    axes[2].set_yscale("log")
    for ax, (_, ylabel, title) in zip(axes, panels):
        ax.set(xlabel="training step", ylabel=ylabel, title=title)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle("held-out builtin:timbre brass -> reed, one line per seed")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_json(path, payload):
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=float))
    os.replace(tmp, path)


def main(argv=None):
    import keras

    from zoo.data import load_dataset
    from zoo.eval.classifier import domain_classifier

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--every", type=int, default=250)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--models", nargs="+", default=["unit", "unit_avb"])
    ap.add_argument("--train-melodies", type=int, default=6)
    ap.add_argument("--set", action="append", help="recipe override section.key=value")
    results = Path(__file__).parent / "results"
    ap.add_argument("--out", default=str(results / "unit_claim.json"))
    ap.add_argument("--replot", action="store_true", help="only redraw the PNG of --out's JSON")
    ap.add_argument("--merge", action="store_true",
                    help="add these seeds' runs to --out's (same steps, every and overrides)")
    args = ap.parse_args(argv)
    if args.replot:
        plot(json.loads(Path(args.out).read_text())["runs"], Path(args.out).with_suffix(".png"))
        return None

    overrides = parse_sets(args.set)
    ds = load_dataset("builtin:timbre", 16000, 4096, progress=False)
    classifier = domain_classifier(ds)
    melodies = ds.files("val", domain=SOURCE) + ds.files("train", domain=SOURCE)[
        : args.train_melodies]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"backend": keras.backend.backend(), "steps": args.steps, "every": args.every,
               "seeds": args.seeds, "overrides": overrides, "melodies": melodies,
               "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "runs": {}}
    if args.merge and out.is_file():
        old = json.loads(out.read_text())
        for key in ("backend", "steps", "every", "overrides", "melodies"):
            if old.get(key) != payload[key]:
                ap.error(f"--merge: {out} was measured with {key}={old.get(key)!r}, "
                         f"not {payload[key]!r}")
        payload["runs"] = old["runs"]
        payload["seeds"] = sorted({int(k) for runs in old["runs"].values() for k in runs}
                                  | set(args.seeds))
    for name in args.models:
        for seed in args.seeds:
            curve, _ = train_and_track(name, seed, args.steps, args.every, overrides, melodies,
                                    ds, classifier, lambda s: print(s, flush=True))
            payload["runs"].setdefault(name, {})[str(seed)] = curve
            payload["summary"] = aggregate(payload["runs"])
            write_json(out, payload)
    png = out.with_suffix(".png")
    plot(payload["runs"], png)
    for name, s in payload["summary"].items():
        print(f"{name}: 90 % reed reached {s['reached_90']} seeds at steps "
              f"{s['steps_to_90_percent']}; all three bars at {s['steps_to_all_three_bars']}; final reed {s['final_reed_percent']['mean']:.1f} "
              f"+- {s['final_reed_percent']['std']:.1f} %, mel {s['final_mel_distance']['mean']:.3f}"
              f" +- {s['final_mel_distance']['std']:.3f} (unconverted "
              f"{s['unconverted_mel_distance']['mean']:.3f}), f0 "
              f"{s['final_f0_cents']['mean']:.1f} +- {s['final_f0_cents']['std']:.1f} cents")
    print("wrote", out, "and", png)
    return payload


if __name__ == "__main__":
    main()
