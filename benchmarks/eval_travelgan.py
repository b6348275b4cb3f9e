"""Quality of a trained TraVeLGAN on ``builtin:timbre`` brass (A) -> reed (B).

Usage::

    KERAS_BACKEND=tensorflow python benchmarks/eval_travelgan.py RUN_DIR_OR_MODEL.keras \
        [--train-melodies 8] [--out benchmarks/results/travelgan_quality.json]

``builtin:timbre`` renders the same melodies in both domains under the same file
names, so the true target of converting ``brass/mel_XXX.wav`` is ``reed/mel_XXX.wav``.
On the held-out (val) brass melodies (and, because val holds only a few, the first
``--train-melodies`` train melodies too, reported separately) it measures:

(a) mel distance (``zoo.eval.mel_distance``) of the conversion vs the true reed
    rendering, beside that of the unconverted brass input vs the same rendering
    (the conversion must be closer);
(b) the domain classifier of ``zoo.eval.classifier`` (a small numpy MLP on the
    mean and standard deviation of log-mel frames of 1 s clips, cached), trained
    on clips of the TRAIN files of both domains; its accuracy on real val clips is
    reported first, then the share of converted clips it calls reed (target >= 90 %). As a
    control, the source passed through the model's own front end and Griffin-Lim
    without the generator is scored by (a) and (b) too, so that vocoder
    artefacts alone cannot pass for conversion;
(c) median absolute f0 error in cents (pyin, ``zoo.eval.f0_error_cents``) between
    the conversion and its source (target < 50 cents);

plus the run's steps / training time (``state.json``, ``history.csv``) and the
throughput of ``model.convert`` on a 10 s clip (median of 3, converted audio
seconds per wall second). Prints the figures and writes JSON.
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

from zoo.eval.classifier import clips_of, domain_classifier  # noqa: E402

SOURCE, TARGET = "brass", "reed"
TARGETS = {"mel_distance": "converted < unconverted", "reed_percent": 90.0, "f0_cents": 50.0}


# ------------------------------------------------------------------ classifier
def p_target(classifier, clips):
    """P(reed) of each clip under the domain classifier."""
    return classifier.predict_proba(clips)[:, classifier.domain_index(TARGET)]


# ------------------------------------------------------------------ run info
def run_info(path):
    """Steps and training time of the run folder holding ``path`` (or {})."""
    path = Path(path)
    run = path if path.is_dir() else path.parent
    info = {}
    state = run / "state.json"
    if state.is_file():
        info["state"] = json.loads(state.read_text())
    recipe = run / "recipe.json"
    if recipe.is_file():
        r = json.loads(recipe.read_text())
        info["model_config"] = r.get("model_config")
        info["train"] = {k: v for k, v in r.get("train", {}).items()
                         if k in ("batch_size", "learning_rate", "discriminator_steps",
                                  "beta_1", "beta_2")}
        info["crop_length"] = r.get("data", {}).get("crop_length")
    history = run / "history.csv"
    if history.is_file():
        import csv

        rows = list(csv.DictReader(history.open()))
        info["epochs_logged"] = len(rows)
    for k in ("train_seconds", "seconds", "elapsed", "wall_seconds"):
        if k in info.get("state", {}):
            info["train_seconds"] = info["state"][k]
    return info


# ------------------------------------------------------------------ evaluation
def evaluate(model, ds, melodies, classifier, f0_kw=None):
    """Per-melody figures for brass melodies ``melodies`` (relative brass paths)."""
    import keras

    from zoo.eval import f0_error_cents, mel_distance

    f0_kw = f0_kw or {"fmin": 80.0, "fmax": 900.0}
    sr = ds.sample_rate
    rows = []
    for rel in melodies:
        src = ds.waveform(rel)
        ref = ds.waveform(rel.replace(SOURCE, TARGET, 1))
        n = min(len(src), len(ref))
        src, ref = src[:n], ref[:n]
        out = np.asarray(model.convert(src), np.float32)
        p = p_target(classifier, clips_of(out, sr))
        # control: the source through the same front end and Griffin-Lim, no generator
        rt = np.asarray(keras.ops.convert_to_numpy(model.frontend.to_waveform(
            model.features(src[None]), max(n, model.frontend.n_fft))), np.float32)[0, :n]
        p_rt = p_target(classifier, clips_of(rt, sr))
        try:
            cents = f0_error_cents(src, out, sr, **f0_kw)
        except ValueError:  # nothing voiced in the conversion: a failure, counted as such
            cents = float("inf")
        rows.append({"file": rel,
                     "mel_converted": mel_distance(out, ref, sr),
                     "mel_unconverted": mel_distance(src, ref, sr),
                     "mel_roundtrip_source": mel_distance(rt, ref, sr),
                     "reed_clips": int((p > 0.5).sum()), "clips": int(len(p)),
                     "roundtrip_source_reed_clips": int((p_rt > 0.5).sum()),
                     "f0_cents": cents})
    return rows


def summarise(rows):
    clips = sum(r["clips"] for r in rows)
    return {
        "melodies": len(rows),
        "mel_distance_converted": float(np.mean([r["mel_converted"] for r in rows])),
        "mel_distance_unconverted": float(np.mean([r["mel_unconverted"] for r in rows])),
        "mel_distance_roundtrip_source": float(np.mean([r["mel_roundtrip_source"] for r in rows])),
        "reed_percent": 100.0 * sum(r["reed_clips"] for r in rows) / max(clips, 1),
        "reed_percent_roundtrip_source": 100.0 * sum(r["roundtrip_source_reed_clips"]
                                                     for r in rows) / max(clips, 1),
        "f0_cents_median": float(np.median([r["f0_cents"] for r in rows])),
    }


def throughput(model, sr, seconds=10.0, runs=3):
    """Converted audio seconds per wall second, ``model.convert`` on a 10 s clip."""
    from zoo.data import render_timbre, timbre_melodies

    notes, total = [], 0.0
    for mel in timbre_melodies(num=12, seed=123).values():
        for note in mel:
            notes.append(note)
            total += note[1]
        if total > seconds:
            break
    x = render_timbre(notes, SOURCE, sr)[: int(seconds * sr)].astype(np.float32)
    model.convert(x)  # warm-up / compile
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        model.convert(x)
        times.append(time.perf_counter() - t0)
    med = float(np.median(times))
    return {"clip_seconds": len(x) / sr, "median_seconds": med,
            "audio_seconds_per_second": len(x) / sr / med}


def passes(summary):
    return {"mel_distance": summary["mel_distance_converted"] < summary["mel_distance_unconverted"],
            "reed_percent": summary["reed_percent"] >= TARGETS["reed_percent"],
            "f0_cents": summary["f0_cents_median"] < TARGETS["f0_cents"]}


def main(argv=None):
    import keras

    from zoo.data import load_dataset
    from zoo.registry import load_saved

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", help="run folder or .keras file")
    ap.add_argument("--train-melodies", type=int, default=8,
                    help="train melodies evaluated besides val (reported separately)")
    ap.add_argument("--no-throughput", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "travelgan_quality.json"))
    args = ap.parse_args(argv)

    t0 = time.time()
    model = load_saved(args.model)
    sr = int(model.sample_rate)
    ds = load_dataset("builtin:timbre", sr, 4096, progress=False)
    classifier = domain_classifier(ds)  # trained on the train files of both domains, cached
    n_train_clips = classifier.num_train_clips

    # classifier's own accuracy on real held-out clips of both domains
    correct = total = 0
    for label, domain in ((0, SOURCE), (1, TARGET)):
        for rel in ds.files("val", domain=domain):
            p = p_target(classifier, clips_of(ds.waveform(rel), sr))
            correct += int(((p > 0.5) == label).sum())
            total += len(p)
    clf_acc = 100.0 * correct / total

    val = ds.files("val", domain=SOURCE)
    train = ds.files("train", domain=SOURCE)[: args.train_melodies]
    val_rows = evaluate(model, ds, val, classifier)
    train_rows = evaluate(model, ds, train, classifier) if train else []
    result = {
        "backend": keras.backend.backend(),
        "model": str(args.model),
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "run": run_info(args.model),
        "classifier": {"kind": "zoo.eval.classifier: tanh MLP on log-mel mean+std of 1 s clips",
                       "train_clips": n_train_clips, "val_real_accuracy_percent": clf_acc,
                       "val_real_clips": total},
        "val": summarise(val_rows),
        "train_melodies": summarise(train_rows) if train_rows else None,
        "all": summarise(val_rows + train_rows),
        "per_melody": {"val": val_rows, "train": train_rows},
        "targets": TARGETS,
    }
    result["passes_val"] = passes(result["val"])
    result["passes_all"] = passes(result["all"])
    if not args.no_throughput:
        result["throughput"] = throughput(model, sr)
    result["eval_seconds"] = time.time() - t0

    state = result["run"].get("state", {})
    print(f"model {args.model}  backend {result['backend']}  step {state.get('step', '?')}"
          f"  training seconds {state.get('seconds', '?')}")
    print(f"domain classifier: {n_train_clips} train clips; accuracy on {total} real val "
          f"clips {clf_acc:.1f} %")
    for name, key in (("val", "val"), (f"train[:{len(train_rows)}]", "train_melodies"),
                      ("all", "all")):
        s = result[key]
        if not s:
            continue
        print(f"{name:>10} ({s['melodies']} melodies): mel distance converted "
              f"{s['mel_distance_converted']:.3f} vs unconverted {s['mel_distance_unconverted']:.3f}"
              f" | called reed {s['reed_percent']:.1f} % | f0 error {s['f0_cents_median']:.1f} cents")
        print(f"{'':>10} control, source through front end + Griffin-Lim only: mel distance "
              f"{s['mel_distance_roundtrip_source']:.3f}, called reed "
              f"{s['reed_percent_roundtrip_source']:.1f} %")
    print("passes (val):", result["passes_val"], " (all):", result["passes_all"])
    if "throughput" in result:
        t = result["throughput"]
        print(f"throughput: {t['audio_seconds_per_second']:.1f} audio s/s "
              f"({t['clip_seconds']:.0f} s clip in {t['median_seconds']:.3f} s, median of 3)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=float))
    print("wrote", out)
    return result


if __name__ == "__main__":
    main()
