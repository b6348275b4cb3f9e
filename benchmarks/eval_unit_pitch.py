"""Where UNIT's f0 error comes from: does a conversion transpose the melody, or scramble it?

Usage::

    KERAS_BACKEND=jax python benchmarks/eval_unit_pitch.py [--model unit] [--steps 3000] \\
        [--seed 0] [--set model_config.channels=64] [--out benchmarks/results/unit_pitch.json]

Trains ``--model`` from its recipe as ``benchmarks/eval_unit_claim.py`` does (evaluating
once, at the end), converts the held-out brass melodies to reed and compares the pyin f0
contour of each conversion with its source's, frame by frame (frames voiced in both):

* ``offset_cents``: the median signed offset ``1200 log2(f0_converted / f0_source)``;
* ``spread_cents``: the interquartile range of that offset (a transposition keeps it
  small whatever the offset; a scrambled melody makes it wide);
* ``within_50_cents``: the share of frames within 50 cents of the source;
* ``correlation``: Pearson correlation of the two contours (1 for any transposition).

The true reed rendering of each melody is scored the same way as a control. Writes the
figures to JSON and a PNG of source / conversion / true reed spectrograms with both f0
contours (atomically).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks.eval_travelgan import SOURCE, TARGET  # noqa: E402
from benchmarks.eval_unit_claim import parse_sets, train_and_track, write_json  # noqa: E402

F0_KW = {"fmin": 80.0, "fmax": 900.0, "frame_length": 2048, "hop_length": 512}


def contour(wave, sr):
    """``(f0, voiced)`` of a waveform by pyin with :data:`F0_KW` (computed once per wave)."""
    from zoo.eval import f0_contour

    return f0_contour(wave, sr, **F0_KW)


def pitch_mapping(source, converted):
    """Frame-by-frame comparison of two ``(f0, voiced)`` contours (module docstring), or
    None when fewer than 2 frames are voiced in both."""
    (f_s, v_s), (f_c, v_c) = source, converted
    n = min(len(f_s), len(f_c))
    both = v_s[:n] & v_c[:n]
    if both.sum() < 2:
        return None
    cents = 1200.0 * np.log2(f_c[:n][both] / f_s[:n][both])
    q25, q50, q75 = np.percentile(cents, [25, 50, 75])
    return {"offset_cents": float(q50), "spread_cents": float(q75 - q25),
            "within_50_cents": float(np.mean(np.abs(cents) < 50.0)),
            "correlation": float(np.corrcoef(f_s[:n][both], f_c[:n][both])[0, 1]),
            "voiced_frames": int(both.sum())}


def plot(examples, contours, sr, path):
    """Per melody: source, conversion and true reed log spectrograms; their f0 contours
    (``contours[name][label]``, as :func:`contour` gives them)."""
    import librosa
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(examples), 4, figsize=(16, 2.8 * len(examples)), squeeze=False)
    for row, (name, waves) in zip(axes, examples.items()):
        for ax, (label, wave) in zip(row, waves.items()):
            spec = librosa.amplitude_to_db(np.abs(librosa.stft(wave, n_fft=2048,
                                                               hop_length=256)), ref=np.max)
            bins = int(1500 / (sr / 2048))  # 0-1.5 kHz: the melody's first harmonics
            ax.imshow(spec[:bins], origin="lower", aspect="auto", vmin=-70, vmax=0,
                      extent=(0, len(wave) / sr, 0, bins * sr / 2048))
            ax.set(title=f"{name}: {label}", xlabel="s", ylabel="Hz")
        for label, style in (("source", "k-"), ("converted", "r-"), ("true reed", "b:")):
            f0 = contours[name][label][0]
            row[3].plot(np.arange(len(f0)) * F0_KW["hop_length"] / sr, f0, style, label=label)
        row[3].set(title=f"{name}: pyin f0", xlabel="s", ylabel="Hz", yscale="log")
        row[3].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)


def main(argv=None):
    import keras

    from zoo.data import load_dataset
    from zoo.eval.classifier import domain_classifier

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="unit")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot", type=int, default=3, help="melodies drawn in the PNG")
    ap.add_argument("--set", action="append", help="recipe override section.key=value")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "unit_pitch.json"))
    args = ap.parse_args(argv)

    ds = load_dataset("builtin:timbre", 16000, 4096, progress=False)
    melodies = ds.files("val", domain=SOURCE)
    curve, model = train_and_track(args.model, args.seed, args.steps, args.steps,
                                   parse_sets(args.set), melodies, ds, domain_classifier(ds),
                                   lambda s: print(s, flush=True))
    sr, rows, examples, contours = ds.sample_rate, [], {}, {}
    for rel in melodies:
        src = ds.waveform(rel)
        ref = ds.waveform(rel.replace(SOURCE, TARGET, 1))
        n = min(len(src), len(ref))
        src, ref = src[:n], ref[:n]
        out = np.asarray(model.convert(src), np.float32)[:n]
        waves = {"source": src, "converted": out, "true reed": ref}
        curves = {label: contour(w, sr) for label, w in waves.items()}
        rows.append({"file": rel,
                     "converted": pitch_mapping(curves["source"], curves["converted"]),
                     "true_reed": pitch_mapping(curves["source"], curves["true reed"])})
        if len(examples) < args.plot:
            examples[Path(rel).stem], contours[Path(rel).stem] = waves, curves
        c, t = rows[-1]["converted"], rows[-1]["true_reed"]
        print(f"{rel}: converted offset {c['offset_cents']:+.0f} cents, spread "
              f"{c['spread_cents']:.0f}, {100 * c['within_50_cents']:.0f} % within 50 cents, "
              f"r = {c['correlation']:.2f} | true reed: offset {t['offset_cents']:+.0f}, "
              f"spread {t['spread_cents']:.0f}, r = {t['correlation']:.2f}" if c else
              f"{rel}: nothing voiced in the conversion")

    def summary(key):
        vals = [r[key] for r in rows if r[key]]
        return {k: float(np.median([v[k] for v in vals])) for k in
                ("offset_cents", "spread_cents", "within_50_cents", "correlation")} | {
                    "melodies_voiced": len(vals)}

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"backend": keras.backend.backend(), "model": args.model, "steps": args.steps,
               "seed": args.seed, "overrides": parse_sets(args.set), "final": curve[-1],
               "median_over_melodies": {"converted": summary("converted"),
                                        "true_reed": summary("true_reed")},
               "melodies": rows}
    write_json(out, payload)
    png = out.with_suffix(".png")
    tmp = png.with_name(png.stem + ".tmp.png")
    plot(examples, contours, sr, tmp)
    tmp.replace(png)
    print("median over melodies:", payload["median_over_melodies"])
    print("wrote", out, "and", png)
    return payload


if __name__ == "__main__":
    main()
