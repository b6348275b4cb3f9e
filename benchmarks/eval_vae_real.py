"""Does the ``vae`` learn real instruments? Held-out reconstruction on soundfont renders.

Renders the ``builtin:timbre`` melodies with eight General-MIDI instruments of a real
sampled soundfont (``benchmarks/_soundfont.py``: MuseScore General by default, via
fluidsynth), trains the ``vae`` recipe on them (with any ``--set`` overrides) and
reports on held-out melodies, per instrument and overall:

- the VAE's mel distance (``zoo.eval.mel_distance`` of ``reconstruct(x)`` to ``x``);
- the trivial baseline: each clip's time-averaged log-mel repeated over its frames
  (the distance of a model that keeps the timbre but no time structure);
- the ceiling: 32-iteration Griffin-Lim of the true STFT magnitudes (librosa);
- active latent units (Burda et al.: variance over clips and frames of the posterior
  mean above 0.01), out of ``latent_dim``.

The bar (issue #11): mel distance below half the baseline's.

Usage::

    KERAS_BACKEND=jax python benchmarks/eval_vae_real.py --steps 3000 \\
        [--set model_config.beta=0.1 ...] [--font musescore] [--json PATH]
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._soundfont import LICENCES, render_mix, render_set  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def time_averaged_baseline(x, sr):
    """Mel distance of a clip to its own time-averaged log-mel (same metric settings)."""
    from zoo.eval.metrics import _log_mel

    logmel = _log_mel(x, sr, 80, 1024, 256, 0.0, None, 1e-5)
    return float(np.mean(np.abs(logmel - logmel.mean(axis=1, keepdims=True))))


def griffin_lim_ceiling(x, sr):
    import librosa

    from zoo.eval import mel_distance

    mag = np.abs(librosa.stft(x, n_fft=1024, hop_length=256))
    y = librosa.griffinlim(mag, n_iter=32, hop_length=256, n_fft=1024, length=len(x),
                           random_state=0)
    return mel_distance(x, y, sr)


def active_units(model, clips, threshold=0.01):
    from keras import ops

    means = np.concatenate([ops.convert_to_numpy(model.encode(c[None]))[0] for c in clips])
    return int(np.sum(means.var(axis=0) > threshold)), means.shape[1]


def evaluate(model, ds, max_files):
    from zoo.eval import mel_distance

    sr = ds.sample_rate
    files = ds.files("val")[:max_files]
    rows = []
    for rel in files:
        x = ds.waveform(rel)
        y = np.asarray(model.reconstruct(x[None]))[0][:len(x)]
        rows.append({"file": rel, "instrument": Path(rel).parts[0],
                     "vae": mel_distance(x, y, sr), "baseline": time_averaged_baseline(x, sr),
                     "griffin_lim": griffin_lim_ceiling(x, sr)})
    active, dim = active_units(model, [ds.waveform(r) for r in files])
    return rows, active, dim


def summarise(rows):
    out = {}
    for inst in sorted({r["instrument"] for r in rows}) + ["all"]:
        sel = [r for r in rows if inst in ("all", r["instrument"])]
        out[inst] = {k: float(np.mean([r[k] for r in sel])) for k in ("vae", "baseline",
                                                                      "griffin_lim")}
        out[inst]["clips"] = len(sel)
        out[inst]["vae_beats_baseline"] = int(sum(r["vae"] < r["baseline"] for r in sel))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--font", default="musescore", help="the soundfont trained on "
                        "(several joined by +: musescore+timgm6mb)")
    parser.add_argument("--eval-fonts", nargs="+", default=["musescore", "timgm6mb", "fluidr3"],
                        help="soundfonts whose held-out melodies are evaluated")
    parser.add_argument("--ship", metavar="NAME", help="copy the model to "
                        "saved_models/vae_NAME/ with a metadata.json of data, licence, "
                        "steps and figures")
    parser.add_argument("--recipe", default="vae")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--max-files", type=int, default=32)
    parser.add_argument("--run", help="evaluate this trained run instead of training")
    parser.add_argument("--train-seconds", type=float, help="with --run: its training time, "
                        "for the metadata")
    parser.add_argument("--json", default=str(RESULTS / "vae_real_audio.json"))
    args = parser.parse_args()

    import keras

    from zoo import registry
    from zoo.cli import _parse_sets
    from zoo.data import load_dataset
    from zoo.training.trainer import train

    folder = render_mix(args.font.split("+"))
    overrides = _parse_sets(args.set)
    recipe = registry.load_recipe(args.recipe, overrides=overrides)
    data = recipe["data"]
    ds = load_dataset(str(folder), recipe["model_config"]["sample_rate"], data["crop_length"],
                      val_fraction=data["val_fraction"], seed=data["seed"], progress=False)
    t0 = time.perf_counter()
    if args.run:
        from zoo.training.checkpoint import read_state

        model, seconds = registry.load_saved(args.run), args.train_seconds
        args.steps = (read_state(args.run) or {}).get("step")
    else:
        run = Path(tempfile.mkdtemp(prefix="vae-real-")) / "run"
        model = train(args.recipe, data=str(folder), steps=args.steps, out=run, verbose=2,
                      samples=False, overrides=overrides).model
        seconds = time.perf_counter() - t0
        print(f"trained {args.steps} steps in {seconds:.0f} s; run {run}", flush=True)
    record = {"font": args.font, "recipe": args.recipe, "overrides": args.set,
              "steps": args.steps, "train_seconds": seconds,
              "backend": keras.backend.backend(), "evaluations": {}}
    for font in args.eval_fonts:
        eval_ds = load_dataset(str(render_set(font)), ds.sample_rate, data["crop_length"],
                               val_fraction=data["val_fraction"], seed=data["seed"],
                               progress=False)
        rows, active, dim = evaluate(model, eval_ds, args.max_files)
        table = summarise(rows)
        print(f"--- held-out melodies rendered by {font}")
        for inst, r in table.items():
            print(f"{inst:10s} vae {r['vae']:.3f}  baseline {r['baseline']:.3f}  "
                  f"griffin-lim {r['griffin_lim']:.3f}  beats baseline "
                  f"{r['vae_beats_baseline']}/{r['clips']}")
        verdict = table["all"]["vae"] < 0.5 * table["all"]["baseline"]
        print(f"active latent units {active}/{dim}; bar (below half the baseline): "
              f"{'met' if verdict else 'NOT met'}")
        record["evaluations"][font] = {"active_units": active, "latent_dim": dim,
                                       "bar_met": bool(verdict), "summary": table,
                                       "clips": rows}
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {path}")
    if args.ship:
        ship(model, args.ship, record)


def ship(model, name, record):
    """``saved_models/vae_<name>/model.keras`` + ``metadata.json``."""
    from benchmarks._ship import ship_weights

    figures = {font: {k: round(v, 4) for k, v in e["summary"]["all"].items()
                      if isinstance(v, float)} | {"bar_met": e["bar_met"],
                                                   "active_units": e["active_units"]}
               for font, e in record["evaluations"].items()}
    ship_weights(
        model, "vae", name, recipe=record["recipe"], recipe_overrides=record["overrides"],
        steps=record["steps"], training_seconds=round(record["train_seconds"] or 0.0, 1),
        training_hardware="2 shared CPU cores",
        dataset=(f"the 40 builtin:timbre melodies (seed 0) rendered with fluidsynth by 8 "
                 f"General-MIDI instruments of the {record['font']} soundfont "
                 "(benchmarks/_soundfont.py); 10 % of melodies held out"),
        dataset_licence="; ".join(LICENCES[f] for f in record["font"].split("+")),
        figures=figures,
        figures_meaning=("mean over held-out melodies of zoo.eval.mel_distance of "
                         "reconstruct(x) to x ('vae'), of each clip's time-averaged log-mel "
                         "('baseline') and of 32-iteration Griffin-Lim of the true STFT "
                         "magnitudes ('griffin_lim'); bar: vae < baseline / 2"),
        evaluation="benchmarks/eval_vae_real.py")

if __name__ == "__main__":
    main()
