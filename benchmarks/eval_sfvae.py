"""Source-filter VAE: the paper's evaluation (Sadok et al. 2023, Table 2's form).

Usage::

    KERAS_BACKEND=jax python benchmarks/eval_sfvae.py [--run runs/sfvae] [--speakers 24] \
        [--variance 0.99] [--ship speech]

Trains ``recipes/sfvae.toml`` into ``--run`` first when the folder holds no model (its
subspaces are fitted on ``builtin:vowels``' labelled sweeps at the end of training).

Held-out data: ``--speakers`` synthetic vowels (``zoo.data.render_vowel``, 1 s) with f0
100-300 Hz, F1 300-900, F2 1100-2700, F3 2200-3200 drawn with a seed the training data
never used. For each vowel and each factor, one edit moves that factor to a new value
drawn from its range (at least 10 % away). The result is measured independently: f0 by
pyin (median over voiced frames), F1-F3 by Praat's Burg analysis (praat-parselmouth;
3 formants below 5500 Hz as the paper, median over the middle 60 % of frames; on the
unedited held-out inputs it errs by about 8 % on F1 and 1 % on F2 and F3, while
Praat's default of 5 formants errs by 19 % on F2 and 32 % on F3 there). Reported per method and
factor, as the paper does (means; medians in brackets, since one octave error of pyin or
one formant Burg skips weighs heavily on a mean over a dozen vowels):

* ``accuracy``: ``|f_hat - f_target| / f_target`` (%) on the edited factor;
* ``disentanglement``: the mean of ``|f_hat - f_input| / f_input`` (%) over the factors
  not edited (``f_input``: the same measurement on the unedited input).

Methods: ``ours`` (``model.edit``: ``z' = z - U U^T (z - e) + U g(y)``), ``latent
arithmetic`` (Hsu et al. 2017: ``z - mu_src + mu_trgt``, the means of the labelled
frames nearest the source and target values), ``WORLD`` (pyworld analysis, f0 scaled,
resynthesis; f0 edits only) and ``TD-PSOLA`` (Praat's manipulation with a flat pitch
tier at the target, overlap-add resynthesis; f0 edits only). ``VAE resynthesis`` (no
edit) and ``input`` show the measurement floor. Whispering (``model.edit(whisper=True)``)
is scored by :func:`zoo.dsp.voicing` (pyin's voiced probability: about 0.01 on noise,
above 0.3 on voice), the share of vowels it leaves unvoiced, and its formant changes.

Records go to ``benchmarks/results/sfvae_quality.json`` and a table to
``benchmarks/results/sfvae_quality.md``.
"""
import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks._common import BACKEND, run_device  # noqa: E402

SR = 16000
RANGES = {"f0": (100.0, 300.0), "F1": (300.0, 900.0), "F2": (1100.0, 2700.0),
          "F3": (2200.0, 3200.0)}
FACTORS = tuple(RANGES)


def speakers(n, seed=1234):
    """``n`` held-out (f0, F1, F2, F3) with formants at least 400 Hz apart."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        v = {k: rng.uniform(*r) for k, r in RANGES.items()}
        if v["F2"] - v["F1"] >= 400 and v["F3"] - v["F2"] >= 400:
            out.append(v)
    return out


def edit_target(values, factor, rng):
    """A new value of ``factor`` in its range, >= 10 % away, keeping formants ordered."""
    lo, hi = RANGES[factor]
    for _ in range(1000):
        y = rng.uniform(lo, hi)
        if abs(y - values[factor]) < 0.1 * values[factor]:
            continue
        trial = {**values, factor: y}
        if trial["F2"] - trial["F1"] >= 300 and trial["F3"] - trial["F2"] >= 300:
            return y
    raise RuntimeError("no target found")


def median_f0(wave):
    """``(median f0 over voiced frames or NaN, share of voiced frames)`` by pyin."""
    from zoo.dsp import f0_contour

    f0, voiced = f0_contour(wave, SR, fmin=60, fmax=600, frame_length=1024, hop_length=256)
    return (float(np.median(f0[voiced])) if voiced.sum() >= 3 else float("nan"),
            float(voiced.mean()))


def measure(wave):
    """``{f0, F1, F2, F3}`` of a waveform: pyin median f0, Praat Burg median formants."""
    import parselmouth

    out = {"f0": median_f0(wave)[0]}
    sound = parselmouth.Sound(np.asarray(wave, np.float64), sampling_frequency=SR)
    formant = sound.to_formant_burg(time_step=0.01, max_number_of_formants=3,
                                    maximum_formant=5500.0)
    times = [t for t in formant.ts() if 0.2 * sound.duration <= t <= 0.8 * sound.duration]
    for i in (1, 2, 3):
        track = np.array([formant.get_value_at_time(i, t) for t in times])
        track = track[np.isfinite(track)]
        out[f"F{i}"] = float(np.median(track)) if len(track) else float("nan")
    return out


def world_resynthesis(wave, new_f0):
    """WORLD analysis, ``new_f0(f0)`` applied to the f0 track, resynthesis (the
    signal-processing baseline)."""
    from zoo.dsp.world import world_analysis, world_synthesis

    f0, sp, ap = world_analysis(wave.astype(np.float64), SR)
    return world_synthesis(new_f0(f0.copy()), sp, ap, SR)[:len(wave)].astype("float32")


def world_f0(wave, target):
    """WORLD with every voiced frame's f0 set to ``target``."""
    return world_resynthesis(wave, lambda f0: np.where(f0 > 0, target, f0))


def psola_f0(wave, target):
    import parselmouth
    from parselmouth.praat import call

    sound = parselmouth.Sound(np.asarray(wave, np.float64), sampling_frequency=SR)
    manipulation = call(sound, "To Manipulation", 0.01, 60, 600)
    tier = call(manipulation, "Extract pitch tier")
    call(tier, "Remove points between", 0, sound.duration)
    call(tier, "Add point", sound.duration / 2, float(target))
    call([tier, manipulation], "Replace pitch tier")
    out = call(manipulation, "Get resynthesis (overlap-add)")
    return np.asarray(out.values[0], np.float32)[:len(wave)]


class LatentArithmetic:
    """Hsu et al. (2017)'s baseline: ``z - mu_src + mu_trgt``, with each mean taken over the
    labelled frames whose value is nearest (the file of that value in the sweep)."""

    def __init__(self, model, labelled):
        self.model, self.table = model, {}
        for factor, items in labelled.items():
            values = np.array([v for _, v in items])
            means = np.stack([model.posterior_frames(w)[0].mean(0) for w, _ in items])
            self.table[factor] = (values, means)

    def mean(self, factor, value):
        values, means = self.table[factor]
        return means[np.argmin(np.abs(values - value))]

    def edit(self, wave, factor, source, target):
        from keras import ops

        z = np.asarray(ops.convert_to_numpy(self.model.encode(wave[None])))[0]
        z = z - self.mean(factor, source) + self.mean(factor, target)
        out = self.model.synthesize(ops.convert_to_tensor(z[None], "float32"), len(wave),
                                    "random")
        return np.asarray(ops.convert_to_numpy(out))[0]


def whisper_summary(whispers, unvoiced_below=0.05):
    """Medians of the voicing (:func:`zoo.dsp.voicing`) of inputs, resyntheses and
    whispers, the share of whispers pyin finds unvoiced, and the formant changes."""
    get = {k: np.array([w[k] for w in whispers]) for k in ("input", "resynthesis", "whisper")}
    return {**{f"voicing_{k}": float(np.median(v)) for k, v in get.items()},
            "unvoiced_share": float(np.mean(get["whisper"] < unvoiced_below)),
            "unvoiced_below": unvoiced_below,
            "formant_changes": {f: float(np.nanmedian([w["formant_changes"][f]
                                                       for w in whispers]))
                                for f in FACTORS[1:]}}


def whisper_line(summary):
    return (f"Whisper: {summary['unvoiced_share']:.0%} of the edits unvoiced (pyin voicing "
            f"< {summary['unvoiced_below']:g}); median voicing {summary['voicing_whisper']:.2f} "
            f"(input {summary['voicing_input']:.2f}, resynthesis "
            f"{summary['voicing_resynthesis']:.2f}); median formant change "
            + ", ".join(f"{f} {v:.1f} %" for f, v in summary["formant_changes"].items()))


def ensure_run(run, steps):
    from zoo.files import RUN_FINAL
    from zoo.training.trainer import train

    if not (Path(run) / RUN_FINAL).is_file():
        resume = (Path(run) / "checkpoint.keras").is_file()
        train(None if resume else "sfvae", out=run, resume=resume, steps=steps, samples=False,
              verbose=2)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/sfvae-eval")
    parser.add_argument("--steps", type=int, default=None, help="training steps (recipe's)")
    parser.add_argument("--speakers", type=int, default=24)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--variance", type=float, help="refit the subspaces keeping this "
                        "share of each factor's variance first (the model's: 0.8); results "
                        "go to sfvae_quality_variance_<V>.{json,md}")
    parser.add_argument("--ship", metavar="NAME",
                        help="also write saved_models/sfvae_NAME/ (the evaluated model)")
    args = parser.parse_args(argv)

    from zoo import registry
    from zoo.data import render_vowel
    from zoo.dsp import voicing
    from zoo.files import atomic_write_text
    from zoo.models.sfvae import labelled_examples

    print(f"backend {BACKEND}; {run_device()}", flush=True)
    ensure_run(args.run, args.steps)
    model = registry.load_saved(args.run)
    if args.variance or not model.fitted_factors():
        model.fit_subspaces("builtin:vowels", variance_retained=args.variance, progress=True)
    arithmetic = LatentArithmetic(model, labelled_examples("builtin:vowels", FACTORS, SR))
    rng = np.random.default_rng(99)
    rows = []  # (method, factor, accuracy %, disentanglement %)
    floor = {"input": [], "VAE resynthesis": []}
    whispers = []  # per vowel: voicing of input / resynthesis / whisper, formant changes
    for k, values in enumerate(speakers(args.speakers)):
        wave = render_vowel(values["f0"], [values["F1"], values["F2"], values["F3"]], 1.0,
                            seed=5000 + k)
        measured = measure(wave)
        resynthesis = model.edit(wave)
        resynth = measure(resynthesis)
        for name, m in (("input", measured), ("VAE resynthesis", resynth)):
            floor[name].append({f: abs(m[f] - values[f]) / values[f] * 100 for f in FACTORS})
        whispered = model.edit(wave, whisper=True)
        m = measure(whispered)
        whispers.append({"input": voicing(wave, SR), "resynthesis": voicing(resynthesis, SR),
                         "whisper": voicing(whispered, SR),
                         "formant_changes": {f: abs(m[f] - measured[f]) / measured[f] * 100
                                             for f in FACTORS[1:]}})
        for factor in FACTORS:
            target = edit_target(values, factor, rng)
            outputs = {"ours": model.edit(wave, **{factor: target}),
                       "latent arithmetic": arithmetic.edit(wave, factor, values[factor],
                                                            target)}
            if factor == "f0":
                outputs["WORLD"] = world_f0(wave, target)
                outputs["TD-PSOLA"] = psola_f0(wave, target)
            for method, out in outputs.items():
                m = measure(out)
                changes = {f: abs(m[f] - measured[f]) / measured[f] * 100 for f in FACTORS}
                others = [changes[f] for f in FACTORS if f != factor]
                rows.append({"method": method, "factor": factor, "speaker": k,
                             "target": target, "measured": m, "changes": changes,
                             "accuracy": abs(m[factor] - target) / target * 100,
                             "disentanglement": float(np.mean(others))})
        print(f"speaker {k + 1}/{args.speakers} done", flush=True)

    def summary(method, factor, key):
        vals = [r[key] for r in rows if r["method"] == method and r["factor"] == factor]
        vals = np.asarray(vals, np.float64)
        if not len(vals):
            return None, None, 0
        return float(np.nanmean(vals)), float(np.nanmedian(vals)), int(np.isnan(vals).sum())

    methods = ["ours", "latent arithmetic", "WORLD", "TD-PSOLA"]
    lines = ["| method | " + " | ".join(f"{f} accuracy (%) | {f} others (%)" for f in FACTORS)
             + " |", "|---|" + "---|---|" * len(FACTORS)]
    table = {}
    for method in methods:
        cells = []
        for factor in FACTORS:
            acc, acc_median, nan_a = summary(method, factor, "accuracy")
            dis, dis_median, _ = summary(method, factor, "disentanglement")
            table.setdefault(method, {})[factor] = {
                "accuracy": acc, "disentanglement": dis, "accuracy_median": acc_median,
                "disentanglement_median": dis_median, "unmeasured": nan_a}
            cells += ["-" if acc is None else f"{acc:.1f} ({acc_median:.1f})",
                      "-" if dis is None else f"{dis:.1f} ({dis_median:.1f})"]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    # the paper's third goal: pitch barely moved by formant edits
    cells = []
    for method in methods[:2]:
        v = [r["changes"]["f0"] for r in rows if r["method"] == method and r["factor"] != "f0"]
        table[method]["f0_change_on_formant_edits"] = float(np.nanmean(v))
        cells.append(f"{method}: {np.nanmean(v):.1f} ({np.nanmedian(v):.1f})")
    lines.append("| f0 change (%) on formant edits | " + " | ".join(cells) + " |")
    for name, errs in floor.items():
        table[name] = {f: float(np.nanmean([e[f] for e in errs])) for f in FACTORS}
        lines.append(f"| {name} (error vs the true values) | "
                     + " | ".join(f"{table[name][f]:.1f} | -" for f in FACTORS) + " |")
    table["whisper"] = whisper_summary(whispers)
    lines += ["", whisper_line(table["whisper"])]
    text = "\n".join(lines)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {"backend": BACKEND, "device": run_device(), "run": str(args.run),
              "speakers": args.speakers, "model": model.get_config(), "table": table,
              "rows": rows, "whispers": whispers}
    stem = "sfvae_quality" + (f"_variance_{args.variance:g}" if args.variance else "")
    record["subspace_dims"] = {f: int(model.factor_subspace(f)[0].shape[1])
                               for f in model.fitted_factors()}
    atomic_write_text(out / f"{stem}.json", json.dumps(record, indent=1))
    atomic_write_text(out / f"{stem}.md", text + "\n")
    if args.ship:
        ship(model, args.ship, record)


def ship(model, name, record):
    """``saved_models/sfvae_<name>/model.keras`` (subspaces included) + ``metadata.json``."""
    from benchmarks._ship import ship_weights
    from zoo.registry import run_recipe

    recipe = run_recipe(record["run"])
    ship_weights(
        model, "sfvae", name, recipe=recipe, steps=recipe["train"].get("steps"),
        dataset=("builtin:speech (240 utterances by random synthetic voices and 240 "
                 "sustained vowels, one in five of each whispered, 16 kHz; 10 % held "
                 "out); subspaces fitted on builtin:vowels' labelled sweeps"),
        dataset_licence="generated by this package (zoo.data.voices, zoo.data.builtin)",
        figures=record["table"],
        figures_meaning=("benchmarks/eval_sfvae.py on held-out synthetic vowels: per method "
                         "and factor, 'accuracy' = mean |f_hat - f_target| / f_target (%) on "
                         "the edited factor, 'disentanglement' = mean relative change (%) of "
                         "the factors not edited; 'whisper': pyin voicing of whispered "
                         "edits (zoo.dsp.voicing) and their formant changes"),
        evaluation="benchmarks/eval_sfvae.py")


if __name__ == "__main__":
    main()
