"""Quality of audio style transfer on ``builtin:timbre``: brass melody as content, a
different reed melody as style.

Usage::

    KERAS_BACKEND=jax python benchmarks/eval_style_transfer.py [--pairs 4] [--filters 4096]
        [--iterations 300] [--sweep 1e-3,1e-2,1e-1,1] [--rows ours,classifier_features]
        [--out benchmarks/results]

For each held-out brass melody (content) paired with another held-out reed melody
(style) it stylizes with the recipe (``recipes/style_transfer.toml``; 22.05 kHz, the
16 kHz inputs resampled) and measures on the result, back at 16 kHz:

(a) the share of 1 s clips the cached domain classifier (``zoo.eval.classifier``,
    trained on the train split) calls reed (target >= 80 %), beside the content's;
(b) the median absolute f0 error in cents against the content (pyin; target < 50);
(c) the style (Gram) distance at the start and the end of the optimisation (target:
    falls >= 10x), and the content/style losses over iterations (a PNG);
(d) the mel distance to the same melody's true reed rendering (independent of the
    classifier), beside the content's.

It reports the reference's settings (n_fft 2048, hop 512, 4096 filters, summed losses,
noise start, random phase; ``--reference-iterations``) and the domain classifier's
features (``feature_model=classifier``, at 16 kHz) beside ours (the recipe), and a
content-weight sweep
(classifier share and f0 error per weight: a table and a PNG) so users can pick a
weight. Writes
``style_transfer_quality.json``, ``style_transfer_sweep.png`` and
``style_transfer_losses.png`` (with ``--font F``, real sampled trumpet -> clarinet
renders of the same melodies instead, and a ``_F`` suffix on each file).
"""
import argparse
import json
import tomllib
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

SR = 16000

#: The settings compared: the recipe, the reference's, and the recipe with the domain
#: classifier's log-mel statistics as features (its reed share is then not an
#: independent judgement: the mel distance to the true reed rendering is).
ROWS = ("ours", "reference_settings", "classifier_features")


def stylize_pairs(model, ds, pairs, classifier, **options):
    """Rows of figures for ``pairs`` of (content, style) relative paths."""
    from zoo.data.audio import resample
    from zoo.eval import f0_error_cents, mel_distance
    from zoo.eval.classifier import clips_of

    reed = classifier.domain_index("reed")
    rows = []
    for content_rel, style_rel in pairs:
        content, style = ds.waveform(content_rel), ds.waveform(style_rel)
        true_reed = ds.waveform(content_rel.replace("brass", "reed", 1))  # same melody
        start = time.perf_counter()
        result = model.stylize(content, style, sample_rate=SR, **options)
        seconds = time.perf_counter() - start
        out = resample(result.audio, model.sample_rate, SR)[:len(content)]
        p = classifier.predict_proba(clips_of(out, SR))[:, reed]
        p_in = classifier.predict_proba(clips_of(content, SR))[:, reed]
        try:
            cents = f0_error_cents(content, out, SR, fmin=80.0, fmax=900.0)
        except ValueError:  # nothing voiced: counted as a failure
            cents = float("inf")
        first, last = result.style_distance
        rows.append({"content": content_rel, "style": style_rel, "seconds": seconds,
                     "audio_seconds": len(content) / SR, "reed_share": float(np.mean(p > 0.5)),
                     "content_reed_share": float(np.mean(p_in > 0.5)), "f0_cents": cents,
                     "style_distance_start": first, "style_distance_end": last,
                     "mel_to_true_reed": mel_distance(true_reed, out, SR),
                     "content_mel_to_true_reed": mel_distance(true_reed, content, SR),
                     "history": result.history})
    return rows


def summarise(rows):
    return {"pairs": len(rows),
            "reed_share": float(np.mean([r["reed_share"] for r in rows])),
            "content_reed_share": float(np.mean([r["content_reed_share"] for r in rows])),
            "f0_cents_median": float(np.median([r["f0_cents"] for r in rows])),
            "f0_cents_max": float(np.max([r["f0_cents"] for r in rows])),
            "mel_to_true_reed_median": float(np.median([r["mel_to_true_reed"] for r in rows])),
            "content_mel_to_true_reed_median": float(np.median(
                [r["content_mel_to_true_reed"] for r in rows])),
            "style_distance_drop_min": float(min(r["style_distance_start"] /
                                                 max(r["style_distance_end"], 1e-30)
                                                 for r in rows)),
            "seconds_per_audio_second": float(sum(r["seconds"] for r in rows) /
                                              sum(r["audio_seconds"] for r in rows))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--filters", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--reference-iterations", type=int, default=100,
                        help="L-BFGS iterations for the reference settings (4096 filters)")
    parser.add_argument("--sweep", default="1e-4,1e-3,1e-2,1e-1,1",
                        help="content weights to sweep ('' to skip)")
    parser.add_argument("--sweep-filters", type=int, default=512)
    parser.add_argument("--sweep-iterations", type=int, default=100)
    parser.add_argument("--rows", default=",".join(ROWS),
                        help=f"settings to measure, of {','.join(ROWS)} (the others are kept "
                        "from an existing report)")
    parser.add_argument("--font", help="real sampled instruments instead of builtin:timbre: "
                        "the same melodies rendered as trumpet (brass/) and clarinet (reed/) "
                        "by this soundfont (benchmarks/_soundfont.py: musescore, timgm6mb, "
                        "fluidr3, csound); outputs get a _<font> suffix")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="a model setting for our rows and the sweep (TOML value), e.g. "
                        "representation='\"log_mel\"'")
    parser.add_argument("--tag", default="", help="suffix of the output files")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    rows_wanted = [r for r in args.rows.split(",") if r]
    if set(rows_wanted) - set(ROWS):
        parser.error(f"--rows: unknown {sorted(set(rows_wanted) - set(ROWS))}; known {ROWS}")

    import keras
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import zoo
    from zoo.data import load_dataset
    from zoo.eval.classifier import domain_classifier
    from zoo.files import atomic_write_text

    tag = (f"_{args.font}" if args.font else "") + (f"_{args.tag}" if args.tag else "")
    if args.font:  # real sampled instruments, same melody in both folders
        from benchmarks._soundfont import render_pair

        source = str(render_pair(args.font, "trumpet", "clarinet", sample_rate=SR))
    else:
        source = "builtin:timbre"
    ds = load_dataset(source, SR, SR, progress=False)
    classifier = domain_classifier(ds)
    brass, reeds = ds.files("val", domain="brass"), ds.files("val", domain="reed")
    n = min(args.pairs, len(brass))
    pairs = [(brass[i], reeds[(i + 1) % len(reeds)]) for i in range(n)]
    settings_set = {}
    for item in args.set or []:  # TOML values: --set representation='"log_mel"'
        key, _, value = item.partition("=")
        settings_set[key] = tomllib.loads(f"v = {value}")["v"]
    overrides = {**settings_set, **{k: v for k, v in (("filters", args.filters),
                                                       ("iterations", args.iterations)) if v}}
    model = zoo.load("style_transfer", **overrides)
    path = Path(args.out) / f"style_transfer_quality{tag}.json"
    report = json.loads(path.read_text()) if path.is_file() else {}
    report.update({"backend": keras.backend.backend(), "config": model.get_config(),
                   "pairs": [list(p) for p in pairs], "targets": {"reed_share": 0.8,
                                                                  "f0_cents": 50.0,
                                                                  "style_distance_drop": 10.0}})
    settings = {  # built only when measured
        "ours": lambda: (model, {}),
        "reference_settings": lambda: (zoo.load(
            "style_transfer", n_fft=2048, hop_length=512, filters=4096,
            loss_normalization="sum", init="noise", phase="random",
            iterations=args.reference_iterations), {}),
        # the classifier hears 16 kHz: its features need the model at that rate
        "classifier_features": lambda: (zoo.load("style_transfer", sample_rate=SR, **overrides),
                                        {"feature_model": classifier})}
    for label in rows_wanted:
        m, options = settings[label]()
        report[{"ours": "config", "reference_settings": "reference_config"}.get(
            label, f"{label}_config")] = m.get_config()
        rows = stylize_pairs(m, ds, pairs, classifier, **options)
        report[label] = {"summary": summarise(rows),
                         "rows": [{k: v for k, v in r.items() if k != "history"} for r in rows]}
        print(label, json.dumps(report[label]["summary"]), flush=True)
        if label == "ours":
            history = np.asarray(rows[0]["history"], np.float64)
            fig, ax = plt.subplots(figsize=(6, 3.5))
            cw = model.content_weight
            ax.semilogy(history[:, 0], cw * history[:, 1], label=f"content x {cw:g}")
            ax.semilogy(history[:, 0], history[:, 2], label="style (Gram distance)")
            ax.set_xlabel("L-BFGS iteration")
            ax.set_title(f"{pairs[0][0]} with the style of {pairs[0][1]}")
            ax.legend()
            fig.tight_layout()
            fig.savefig(Path(args.out) / f"style_transfer_losses{tag}.png", dpi=100)
            plt.close(fig)
    weights = [float(w) for w in args.sweep.split(",") if w.strip()]
    if weights:
        sweep_model = zoo.load("style_transfer", **{**settings_set,
                                                    "filters": args.sweep_filters,
                                                    "iterations": args.sweep_iterations})
        sweep = []
        for w in weights:
            summary = summarise(stylize_pairs(sweep_model, ds, pairs, classifier,
                                              content_weight=w))
            sweep.append({"content_weight": w, **summary})
            print("sweep", json.dumps(sweep[-1]), flush=True)
        report["sweep"] = {"filters": args.sweep_filters, "iterations": args.sweep_iterations,
                           "rows": sweep}
        fig, ax1 = plt.subplots(figsize=(6, 3.5))
        ax1.semilogx(weights, [100 * r["reed_share"] for r in sweep], "o-", color="C0")
        ax1.set_xlabel("content weight (style weight 1)")
        ax1.set_ylabel("% of clips judged reed", color="C0")
        ax2 = ax1.twinx()
        ax2.semilogx(weights, [r["f0_cents_median"] for r in sweep], "s--", color="C1")
        ax2.set_ylabel("median f0 error (cents)", color="C1")
        ax1.set_title("style transfer: content weight trade-off")
        fig.tight_layout()
        fig.savefig(Path(args.out) / f"style_transfer_sweep{tag}.png", dpi=100)
        plt.close(fig)
    atomic_write_text(path, json.dumps(report, indent=1, default=float))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
