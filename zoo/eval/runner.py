"""The evaluation runner behind ``zoo eval``: a trained model + a dataset -> metrics and a report.

:func:`evaluate` decides what to measure from what the model can do (no
model-specific code; every model exposes ``sample_rate``):

* ``convert(waveform)`` -> **conversion** from a source domain to a target
  domain (sub-folders of the data): with ``pairs=True`` the target-domain file
  of the same name is the ground truth (mel distance and MCD with DTW to it,
  beside the unconverted source's); always: the share of converted clips a
  domain classifier calls the target domain, the Frechet distance between
  converted and real target clips on the classifier's embedding, and f0
  error / correlation / voicing agreement against the source.
* ``reconstruct(waveform)`` -> **reconstruction**: multiscale spectral
  distance, log-spectral distance, mel distance, SI-SDR, MCD (frame-aligned),
  f0 error in cents and voicing agreement against the input, whether the
  domain classifier still recognises the input's domain, real-time factor.
* ``sample(num, samples, seed=...)`` -> also **generation**: Frechet distance
  of prior samples to real clips (on the classifier embedding when the data
  has two or more domains, else on log-mel statistics), beside that of
  held-out real clips to training clips. Models with ``variational = False``
  (plain autoencoders) are not sampled.
* ``log_likelihood(waveform)`` (a discrete prior) -> **likelihood**: bits per code of
  the clips' codes under the prior, beside the unigram prior's (code frequencies of the
  training clips, add-one smoothed) on the same codes and ``log2 K`` (uniform); a
  prior that learned nothing scores the unigram. Conditioned priors get each file's
  domain label.

Models are called on ``[1, samples]`` float32 batches at ``model.sample_rate``;
outputs are converted to numpy and squeezed to ``[samples]``.

Bad input:

* **Sample rates.** Files are read through the data pipeline
  (:func:`zoo.data.load_dataset`): mono, resampled to the model's rate (soxr),
  peak-normalised to 0.95. The original rates are listed in the result.
* **Lengths.** A model output and its input, or a source and its parallel
  target, that differ in length are trimmed to the shortest before every
  frame-aligned metric (MCD with DTW compares the whole signals); the number
  of files trimmed is reported in the notes.
* **Silence.** Files the pipeline cannot use (silent, unreadable, empty,
  shorter than :data:`MIN_SAMPLES`) are skipped and listed with the reason.
  A metric undefined on some clip (f0 of a silent or unvoiced output, SI-SDR
  of a silent one, ...) leaves that clip out of the mean and is counted under
  ``missing`` with the reason; a metric undefined everywhere is ``None``
  (JSON ``null``, "n/a" in tables), never NaN.
* **No audio.** An empty folder, or one where no file is usable, raises
  :class:`zoo.errors.ZooError` naming the folder.

Example:
    >>> from zoo.eval.runner import evaluate, format_table
    >>> result = evaluate("runs/vae-1", "builtin:timbre", max_files=4)
    >>> print(format_table(result))            # also in runs/vae-1/eval/report.md
"""
import json
import math
import os
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from zoo.eval import metrics as M
from zoo.eval.classifier import CLIP_SECONDS, clip_features, clips_of, domain_classifier
from zoo.errors import ZooError

__all__ = ["evaluate", "format_table", "load_model", "model_tasks"]

#: Shortest usable file: the multiscale spectral distance's largest FFT.
MIN_SAMPLES = 2048

#: Real files per reference set (classifier clips, Frechet statistics).
MAX_REFERENCE_FILES = 64

#: Default label, unit and direction ("lower" / "higher" is better) of each metric.
METRIC_INFO = {
    "mel_distance_to_target": ("mel distance to target", "nepers", "lower"),
    "mcd_dtw_to_target": ("MCD (DTW) to target", "dB", "lower"),
    "mcd_world_dtw_to_target": ("MCD (WORLD mel-cepstra, DTW) to target", "dB", "lower"),
    "f0_median_error_to_target_cents": ("median-f0 error to target", "cents", "lower"),
    "f0_rmse_dtw_to_target_cents": ("f0 RMSE (DTW) to target", "cents", "lower"),
    "target_domain_share": ("share called target domain", "fraction", "higher"),
    "frechet_distance_to_target": ("Frechet distance to real target", "", "lower"),
    "f0_error_cents": ("f0 error", "cents", "lower"),
    "f0_correlation": ("f0 correlation", "", "higher"),
    "voicing_agreement": ("voicing agreement", "fraction", "higher"),
    "real_time_factor": ("real-time factor (warm call)", "x real time", "higher"),
    "multiscale_spectral_distance": ("multiscale spectral distance", "", "lower"),
    "log_spectral_distance": ("log-spectral distance", "dB", "lower"),
    "mel_distance": ("mel distance", "nepers", "lower"),
    "si_sdr": ("SI-SDR", "dB", "higher"),
    "mel_cepstral_distortion": ("MCD (frame-aligned)", "dB", "lower"),
    "domain_accuracy": ("domain classifier accuracy", "fraction", "higher"),
    "frechet_distance": ("Frechet distance to real clips", "", "lower"),
    "bits_per_code": ("bits per code", "bits", "lower"),
}


# ------------------------------------------------------------------ model
def load_model(model_or_path, weights=None):
    """The model to evaluate and where its evaluation goes by default.

    Args:
        model_or_path: a model object (anything with ``sample_rate`` and
            ``convert`` / ``reconstruct`` / ``sample``), a run folder, a
            ``.keras`` file, or a registry name (loaded with ``weights``, else
            its shipped default weights as ``zoo convert`` does, else untrained).
        weights: shipped weights name for a registry name.

    Returns:
        ``(model, label, run_dir)``: ``run_dir`` is the run folder holding the
        model (``None`` for a registry name, an object, or a lone ``.keras`` file).
    """
    from zoo import registry

    if not isinstance(model_or_path, (str, os.PathLike)):
        return model_or_path, type(model_or_path).__name__, None
    model, label = registry.load_for_use(model_or_path, weights)
    path = Path(model_or_path)
    run_dir = None
    if path.is_dir() or path.suffix == ".keras":
        run = path if path.is_dir() else path.parent
        run_dir = run if (run / registry.RUN_RECIPE).is_file() else None
    return model, label, run_dir


def model_tasks(model):
    """What :func:`evaluate` measures on ``model``: a sub-list of ``["conversion",
    "reconstruction", "generation", "likelihood"]`` (see the module docstring)."""
    from zoo.engine import Capability

    wanted = (("conversion", Capability.CONVERT), ("reconstruction", Capability.RECONSTRUCT),
              ("generation", Capability.SAMPLE), ("likelihood", Capability.LIKELIHOOD))
    return [task for task, capability in wanted if model.supports(capability)]


def _to_numpy(x):
    if isinstance(x, np.ndarray):
        return x
    import keras

    return np.asarray(keras.ops.convert_to_numpy(x))


def _apply(fn, wave, what):
    """``fn`` on a ``[1, samples]`` batch -> float32 ``[samples]`` and the seconds it took."""
    start = time.perf_counter()
    out = _to_numpy(fn(np.asarray(wave, np.float32)[None]))
    seconds = time.perf_counter() - start
    out = np.squeeze(np.asarray(out, np.float32))
    if out.ndim != 1:
        raise ZooError(f"the model's {what} returned shape {out.shape} for one clip; "
                       "expected [1, samples]")
    return out, seconds


# ------------------------------------------------------------------ data
def _load_data(data, sample_rate, run_dir, cache_dir):
    """The dataset at the model's rate, with the run's split when the model is a run."""
    from zoo import registry
    from zoo.data import SkippedAudioWarning, load_dataset

    val_fraction, seed = 0.1, 0
    if run_dir is not None:
        recipe = registry.run_recipe(run_dir)
        val_fraction = recipe.get("data", {}).get("val_fraction", val_fraction)
        seed = recipe.get("data", {}).get("seed", seed)
    with warnings.catch_warnings():  # skipped files are listed in the result instead
        warnings.simplefilter("ignore", SkippedAudioWarning)
        return load_dataset(str(data), sample_rate, MIN_SAMPLES, val_fraction=val_fraction,
                            seed=seed, cache_dir=cache_dir, progress=False)


def _original_rates(ds):
    import soundfile as sf

    rates = Counter()
    for rel in ds.files("all"):
        try:
            rates[int(sf.info(str(ds.root / rel)).samplerate)] += 1
        except Exception:  # decoded by tensorflow-io: rate unknown here
            rates["unknown"] += 1
    return {str(k): v for k, v in sorted(rates.items(), key=str)}


def _split_files(ds, split, domain, notes):
    files = ds.files(split, domain=domain)
    if not files and split != "all":
        where = f" of domain {domain!r}" if domain is not None else ""
        notes.append(f"no {split} file{where} in {ds.root}: used all its files")
        files = ds.files("all", domain=domain)
    return files


def _interleaved(ds, split, notes):
    """Split files, alternating between domains (so a file limit samples each domain)."""
    per_domain = [_split_files(ds, split, d, notes) for d in ds.domains]
    out = []
    for i in range(max(len(f) for f in per_domain)):
        out += [f[i] for f in per_domain if i < len(f)]
    return out


def _domain_of(ds, rel):
    return rel.split("/", 1)[0] if len(ds.domains) > 1 else ds.domains[0]


def _real_clips(ds, files, with_domains=False):
    """Classifier clips of up to :data:`MAX_REFERENCE_FILES` files (and their domains)."""
    clips, domains = [], []
    for rel in files[:MAX_REFERENCE_FILES]:
        c = clips_of(ds.waveform(rel), ds.sample_rate)
        clips += c
        domains += [_domain_of(ds, rel)] * len(c)
    return (clips, domains) if with_domains else clips


# ------------------------------------------------------------------ metric bookkeeping
def _try(fn, *args, **kwargs):
    """``(value, None)``, or ``(None, reason)`` when the metric is undefined here."""
    try:
        value = float(fn(*args, **kwargs))
    except ValueError as err:
        return None, str(err)
    return (value, None) if math.isfinite(value) else (None, "not finite")


class _Collector:
    """Per-file values of one task and their summary rows."""

    def __init__(self, task):
        self.task, self.rows, self.values, self.reasons = task, [], {}, {}

    def add(self, row, name, value, reason=None):
        row[name] = value
        self.values.setdefault(name, []).append(value)
        if value is None and reason:
            self.reasons.setdefault(name, Counter())[reason] += 1

    def summary(self, name, reference=None, reference_label=None, label=None):
        values = self.values.get(name, [])
        defined = [v for v in values if v is not None]
        return _row(self.task, name, float(np.mean(defined)) if defined else None, len(values),
                    len(values) - len(defined), self.reasons.get(name), reference,
                    reference_label, label)


def _row(task, name, value, count, missing=0, reasons=None, reference=None,
         reference_label=None, label=None):
    default_label, unit, better = METRIC_INFO.get(name, (name, "", ""))
    why = "; ".join(f"{r} ({n})" for r, n in reasons.most_common()) if reasons else None
    return {"task": task, "name": name, "label": label or default_label, "value": _finite(value),
            "unit": unit, "better": better, "count": int(count), "missing": int(missing),
            "missing_reason": why if missing else None, "reference": _finite(reference),
            "reference_label": reference_label if reference is not None else None}


def _world_f0_cepstra(sig, sr):
    """WORLD Harvest f0 (5 ms frames) and mel-cepstra c1..c24 of a signal."""
    from zoo.dsp import mcep_alpha
    from zoo.dsp.world import sp2mc, world_analysis

    f0, sp, _ = world_analysis(sig, sr, fft_size=1024)
    return f0, sp2mc(sp, 24, mcep_alpha(sr))[:, 1:]


def _f0_to_target(x, target, sr):
    """f0 of ``x`` against a parallel target (``target``: its :func:`_world_f0_cepstra`),
    in cents: ``{"median": |median log2 f0(x) - median log2 f0(target)|`` (where the two
    voices sit, robust to octave errors), ``"rmse"``: RMS difference over the frame pairs of
    a DTW path on WORLD mel-cepstra where both are voiced}. Values are None when undefined."""
    from zoo.dsp import dtw_path

    (fx, cx), (ft, ct) = _world_f0_cepstra(x, sr), target
    if not (np.any(fx > 0) and np.any(ft > 0)):
        return {"median": (None, "no voiced frames"), "rmse": (None, "no voiced frames")}
    out = {"median": (1200.0 * abs(float(np.median(np.log2(fx[fx > 0])))
                                    - float(np.median(np.log2(ft[ft > 0])))), None)}
    path = dtw_path(cx, ct)
    a, b = fx[path[:, 0]], ft[path[:, 1]]
    both = (a > 0) & (b > 0)
    out["rmse"] = ((float(1200.0 * np.sqrt(np.mean(np.log2(a[both] / b[both]) ** 2))), None)
                   if np.any(both) else (None, "no frame voiced in both"))
    return out


def _f0(reference, estimate, sr, kw):
    """:func:`zoo.eval.metrics.f0_metrics`, all undefined (with the reason) on unusable input."""
    try:
        return M.f0_metrics(reference, estimate, sr, **kw)
    except ValueError as err:  # empty or non-finite signal
        names = ("f0_error_cents", "f0_correlation", "voicing_agreement")
        return dict.fromkeys(names), dict.fromkeys(names, str(err))


def _finite(v):
    return float(v) if v is not None and math.isfinite(float(v)) else None


def _single(task, name, count, fn, *args, reference=None, reference_label=None, label=None):
    """A row for one metric computed once over a set of ``count`` clips."""
    value, reason = _try(fn, *args)
    return _row(task, name, value, count, count if value is None else 0,
                Counter({reason: 1}) if reason else None, reference, reference_label, label)


# ------------------------------------------------------------------ tasks
def _domains(ds, model, source_domain, target_domain, notes):
    if len(ds.domains) < 2:
        raise ZooError(f"{ds.root}: conversion needs one sub-folder per domain; found only "
                       f"{ds.domains}")
    src, tgt = source_domain, target_domain
    if src is None and tgt is None:
        notes.append(f"source domain {ds.domains[0]!r} -> target {ds.domains[1]!r}: the first "
                     "two sub-folders in sorted order, as zoo train pairs them")
    src = src or next(d for d in ds.domains if d != tgt)
    tgt = tgt or next(d for d in ds.domains if d != src)
    for d in (src, tgt):
        if d not in ds.domains:
            raise ZooError(f"{ds.root}: no domain {d!r} (sub-folders: {', '.join(ds.domains)})")
    if src == tgt:
        raise ZooError(f"source and target domain are both {src!r}")
    return src, tgt


def _rtf_row(task, fn, wave, sr, what):
    """Real-time factor of a repeated (so warm: traced and compiled) call on ``wave``."""
    _, seconds = _apply(fn, wave, what)
    return _row(task, "real_time_factor",
                M.real_time_factor(len(wave) / sr, max(seconds, 1e-9)), 1)


def _conversion(model, ds, ctx):
    sr, notes = ds.sample_rate, ctx["notes"]
    src, tgt = _domains(ds, model, ctx["source_domain"], ctx["target_domain"], notes)
    files = _split_files(ds, ctx["split"], src, notes)[:ctx["max_files"]]
    targets = {}
    if ctx["pairs"]:
        targets = {rel.split("/", 1)[1]: rel for rel in ds.files("all", domain=tgt)}
        unpaired = [rel for rel in files if rel.split("/", 1)[1] not in targets]
        if len(unpaired) == len(files):
            raise ZooError(f"--pairs: no file in {ds.root / tgt} has the name of a file in "
                           f"{ds.root / src} (e.g. {files[0].split('/', 1)[1]})")
        if unpaired:
            notes.append(f"--pairs: {len(unpaired)} {src} file(s) without a {tgt} namesake left "
                         f"out: {', '.join(unpaired[:3])}")
        files = [rel for rel in files if rel not in unpaired]
    col, f0_kw = _Collector("conversion"), ctx["f0"]
    conv_clips, src_clips, examples, trimmed = [], [], [], 0
    for rel in files:
        x = ds.waveform(rel)
        y, _ = _apply(model.convert, x, "convert")
        row, ref, n = {"file": rel}, None, min(len(x), len(y))
        if ctx["pairs"]:
            row["target_file"] = targets[rel.split("/", 1)[1]]
            ref = ds.waveform(row["target_file"])
            m = min(n, len(ref))
        trimmed += len({len(x), len(y)} | ({len(ref)} if ref is not None else set())) > 1
        if ref is not None:
            col.add(row, "mel_distance_to_target", *_try(M.mel_distance, y[:m], ref[:m], sr))
            col.add(row, "unconverted_mel_distance_to_target",
                    *_try(M.mel_distance, x[:m], ref[:m], sr))
            col.add(row, "mcd_dtw_to_target", *_try(M.mel_cepstral_distortion, y, ref, sr))
            col.add(row, "unconverted_mcd_dtw_to_target",
                    *_try(M.mel_cepstral_distortion, x, ref, sr))
            world = dict(method="world", hop=int(sr * 0.005), n_fft=1024)
            col.add(row, "mcd_world_dtw_to_target",
                    *_try(M.mel_cepstral_distortion, y, ref, sr, **world))
            col.add(row, "unconverted_mcd_world_dtw_to_target",
                    *_try(M.mel_cepstral_distortion, x, ref, sr, **world))
            target = _world_f0_cepstra(ref, sr)  # once for the output and the baseline
            for prefix, sig in (("", y), ("unconverted_", x)):
                f0_cmp = _f0_to_target(sig, target, sr)
                col.add(row, f"{prefix}f0_median_error_to_target_cents", *f0_cmp["median"])
                col.add(row, f"{prefix}f0_rmse_dtw_to_target_cents", *f0_cmp["rmse"])
        f0_values, f0_reasons = _f0(x[:n], y[:n], sr, f0_kw)
        for name, value in f0_values.items():
            col.add(row, name, value, f0_reasons.get(name))
        conv_clips += clips_of(y, sr)
        src_clips += clips_of(x, sr)
        col.rows.append(row)
        if len(examples) < ctx["num_examples"]:
            waves = {f"{src} input": x, f"converted to {tgt}": y}
            if ref is not None:
                waves[f"true {tgt}"] = ref
            examples.append((rel, waves))
    if trimmed:
        notes.append(f"conversion: {trimmed} file(s) whose input, output or target differ in "
                     "length: trimmed to the shortest")
    rows = []
    if ctx["pairs"]:
        for name, label in (("mel_distance_to_target", "mel distance"),
                            ("mcd_dtw_to_target", "MCD (DTW)"),
                            ("mcd_world_dtw_to_target", "MCD (WORLD mel-cepstra, DTW)"),
                            ("f0_median_error_to_target_cents", "median-f0 error"),
                            ("f0_rmse_dtw_to_target_cents", "f0 RMSE (DTW)")):
            rows.append(col.summary(name, _mean(col.values[f"unconverted_{name}"]),
                                    "unconverted source", f"{label} to the true {tgt}"))
    clf = ctx["classifier"]
    if clf is not None:
        rows.append(_single("conversion", "target_domain_share", len(conv_clips), clf.share,
                            conv_clips, tgt,
                            reference=_try(clf.share, src_clips, tgt)[0],
                            reference_label="unconverted source",
                            label=f"share of clips called {tgt}"))
        real_tgt = _real_clips(ds, _split_files(ds, ctx["split"], tgt, []))
        emb_real = clf.embed(real_tgt)
        rows.append(_single("conversion", "frechet_distance_to_target", len(conv_clips),
                            M.frechet_distance, clf.embed(conv_clips), emb_real,
                            reference=_try(M.frechet_distance, clf.embed(src_clips), emb_real)[0],
                            reference_label="unconverted source",
                            label=f"Frechet distance to real {tgt} (classifier emb.)"))
    rows.append(col.summary("f0_error_cents", label="f0 error vs source"))
    rows.append(col.summary("f0_correlation", label="f0 correlation with source"))
    rows.append(col.summary("voicing_agreement", label="voicing agreement with source"))
    if files:  # the first file again
        rows.append(_rtf_row("conversion", model.convert, ds.waveform(files[0]), sr, "convert"))
    return rows, col.rows, examples


def _mean(values):
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None


def _reconstruction(model, ds, ctx):
    sr, notes = ds.sample_rate, ctx["notes"]
    files = _interleaved(ds, ctx["split"], notes)[:ctx["max_files"]]
    col, f0_kw = _Collector("reconstruction"), ctx["f0"]
    in_clips, out_clips, labels, examples, trimmed = [], [], [], [], 0
    for rel in files:
        x = ds.waveform(rel)
        y, _ = _apply(model.reconstruct, x, "reconstruct")
        if len(y) != len(x):
            trimmed += 1
        n = min(len(x), len(y))
        x, y = x[:n], y[:n]
        row = {"file": rel}
        col.add(row, "multiscale_spectral_distance", *_try(M.multiscale_spectral_distance, x, y))
        col.add(row, "log_spectral_distance", *_try(M.log_spectral_distance, x, y))
        col.add(row, "mel_distance", *_try(M.mel_distance, x, y, sr))
        col.add(row, "si_sdr", *_try(M.si_sdr, x, y))
        col.add(row, "mel_cepstral_distortion",
                *_try(M.mel_cepstral_distortion, x, y, sr, align="none"))
        f0_values, f0_reasons = _f0(x, y, sr, f0_kw)
        for name in ("f0_error_cents", "voicing_agreement"):
            col.add(row, name, f0_values[name], f0_reasons.get(name))
        c_in, c_out = clips_of(x, sr), clips_of(y, sr)
        in_clips += c_in
        out_clips += c_out
        labels += [_domain_of(ds, rel)] * len(c_in)
        col.rows.append(row)
        if len(examples) < ctx["num_examples"]:
            examples.append((rel, {"input": x, "reconstruction": y}))
    if trimmed:
        notes.append(f"reconstruction: {trimmed} output(s) of another length than the input "
                     "trimmed to the shorter")
    rows = [col.summary(name) for name in (
        "multiscale_spectral_distance", "log_spectral_distance", "mel_distance", "si_sdr",
        "mel_cepstral_distortion")]
    rows.append(col.summary("f0_error_cents", label="f0 error vs input"))
    rows.append(col.summary("voicing_agreement", label="voicing agreement with input"))
    clf = ctx["classifier"]
    if clf is not None and out_clips:
        rows.append(_single("reconstruction", "domain_accuracy", len(out_clips), clf.accuracy,
                            out_clips, labels,
                            reference=_try(clf.accuracy, in_clips, labels)[0],
                            reference_label="inputs",
                            label="domain kept (classifier accuracy)"))
    if files:  # the first file again
        rows.append(_rtf_row("reconstruction", model.reconstruct, ds.waveform(files[0]), sr,
                             "reconstruct"))
    return rows, col.rows, examples


def _generation(model, ds, ctx):
    sr, n = ds.sample_rate, int(ctx["num_generated"])
    length = int(CLIP_SECONDS * sr)
    try:
        waves = model.sample(n, length, seed=0)
    except TypeError:  # a sample() without a seed argument
        waves = model.sample(n, length)
    waves = np.asarray(_to_numpy(waves), np.float32).reshape(n, -1)
    real = _real_clips(ds, _interleaved(ds, ctx["split"], ctx["notes"]))
    train = _real_clips(ds, _interleaved(ds, "train", [])) if ctx["split"] != "train" else None
    clf = ctx["classifier"]
    if clf is not None:
        embed, space = clf.embed, "classifier embedding"
    else:
        feats = np.stack([clip_features(c, sr) for c in real])
        mu, sd = feats.mean(0), feats.std(0) + 1e-6

        def embed(clips):
            return (np.stack([clip_features(c, sr) for c in clips]) - mu) / sd

        space = "log-mel statistics"
    emb_real = embed(real)
    reference = _try(M.frechet_distance, embed(train), emb_real)[0] if train else None
    row = _single("generation", "frechet_distance", n, M.frechet_distance, embed(list(waves)),
                  emb_real, reference=reference, reference_label="real train clips",
                  label=f"Frechet distance of samples to real clips ({space})")
    examples = [(f"prior sample {i}", {f"prior sample {i}": w}) for i, w in
                enumerate(waves[:ctx["num_examples"]])]
    return [row], [], examples


def _likelihood(model, ds, ctx):
    from zoo.engine import Capability

    sr, labelled = ds.sample_rate, model.supports(Capability.DOMAIN_LABELS)

    def clips(files):
        for rel in files[:MAX_REFERENCE_FILES]:
            label = [np.full(1, model.index(_domain_of(ds, rel)), "int32")] if labelled else []
            for clip in clips_of(ds.waveform(rel), sr, per_file=2):
                yield rel, clip[None].astype(np.float32), label

    train = ds.files("train") or ds.files("all")
    counts = np.ones(model.num_codes)
    for _, clip, _ in clips(train):
        counts += np.bincount(np.asarray(_to_numpy(model.codes_of(clip))).reshape(-1),
                              minlength=model.num_codes)
    log_p = np.log2(counts / counts.sum())
    col, unigram = _Collector("likelihood"), []
    for rel, clip, label in clips(_interleaved(ds, ctx["split"], ctx["notes"])):
        codes = np.asarray(_to_numpy(model.codes_of(clip))).reshape(-1)
        row = {"file": rel}
        col.add(row, "bits_per_code",
                float(np.asarray(_to_numpy(model.log_likelihood(clip, *label))).reshape(-1)[0]))
        unigram.append(float(-np.mean(log_p[codes])))
        col.rows.append(row)
    row = col.summary("bits_per_code", reference=_mean(unigram),
                      reference_label="unigram prior of the training codes",
                      label=f"bits per code (uniform prior: {math.log2(model.num_codes):.2f})")
    return [row], col.rows, []


_TASKS = {"conversion": _conversion, "reconstruction": _reconstruction,
          "generation": _generation, "likelihood": _likelihood}


# ------------------------------------------------------------------ entry point
def evaluate(model_or_path, data, *, pairs=False, split="val", max_files=None, out=None,
             weights=None, source_domain=None, target_domain=None, num_examples=2,
             num_generated=16, f0_range=(50.0, 1000.0), cache_dir=None, write=True):
    """Evaluate a model on a dataset; write ``eval.json``, ``report.md``, WAVs and PNGs.

    Args:
        model_or_path: run folder, ``.keras`` file, registry name (with its
            shipped default weights) or a model object (see :func:`load_model`).
        data: ``"builtin:NAME"`` or a folder of audio (one sub-folder per domain
            for conversion).
        pairs: conversion only: the target-domain file with the same name is
            the parallel ground truth of each source file.
        split: ``"val"`` (the held-out files; for a run, split as it was
            trained), ``"train"`` or ``"all"``; an empty split falls back to all
            files (noted).
        max_files: at most this many files are passed through the model per
            task (reference statistics still use the whole split).
        out: output folder (default ``<run>/eval`` for a run, else
            ``./eval_<name>``).
        weights: shipped weights for a registry name.
        source_domain, target_domain: conversion domains (default: the model's
            ``source_domain`` / ``target_domain`` attributes, else the data's
            first two sub-folders as ``zoo train`` pairs them).
        num_examples: files per task written as WAV + spectrogram PNG.
        num_generated: prior samples (1 s each) for generation.
        f0_range: ``(fmin, fmax)`` of pyin, Hz.
        cache_dir: cache folder for decoded audio and the domain classifier.
        write: write the output folder (else only return the result).

    Returns:
        dict with ``model``, ``model_class``, ``backend``, ``data``, ``folder``,
        ``split``, ``sample_rate``, ``tasks``, ``files`` (evaluated per task,
        ``skipped`` with reasons, ``original_sample_rates``), ``classifier``,
        ``metrics`` (rows with ``task, name, label, value, unit, better, count,
        missing, missing_reason, reference, reference_label``; ``value`` and
        ``reference`` are finite floats or None), ``per_file``, ``notes`` and
        ``outputs`` (paths written). JSON-serialisable with no NaN.

    Raises:
        ZooError: unloadable model, a model with nothing to evaluate, a missing
            or empty folder, no usable audio, missing domains or pairs.
    """
    if split not in ("train", "val", "all"):
        raise ZooError(f"split must be 'train', 'val' or 'all', got {split!r}")
    if max_files is not None and int(max_files) < 1:
        raise ZooError(f"max_files must be at least 1, got {max_files}")
    if not str(data).startswith("builtin:"):
        from zoo.data.pipeline import scan_folder

        scan_folder(data)  # a missing or empty folder fails before the model loads
    model, label, run_dir = load_model(model_or_path, weights)
    notes = []
    if label.endswith("(untrained)"):
        notes.append(f"{label}: no trained weights; the figures describe an untrained model")
    tasks = model_tasks(model)
    if not tasks:
        raise ZooError(f"{label}: {type(model).__name__} has none of convert / reconstruct / "
                       "sample: nothing to evaluate")
    try:
        sr = int(model.sample_rate)
    except (AttributeError, TypeError, ValueError):
        raise ZooError(f"{label}: the model has no sample_rate") from None
    ds = _load_data(data, sr, run_dir, cache_dir)
    rates = _original_rates(ds)
    other = [r for r in rates if r != str(sr)]
    if other:
        notes.append(f"resampled {sum(rates[r] for r in other)} file(s) from "
                     f"{', '.join(r + ' Hz' for r in other)} to the model's {sr} Hz (soxr)")
    if ds.skipped:
        notes.append(f"skipped {len(ds.skipped)} unusable file(s): " + "; ".join(
            f"{rel}: {why}" for rel, why in ds.skipped[:5]))
    classifier, clf_info = None, None
    if len(ds.domains) >= 2:
        classifier = domain_classifier(ds, cache_dir=cache_dir)
        real, labels = _real_clips(ds, _interleaved(ds, split, []), with_domains=True)
        clf_info = {"domains": classifier.domains, "train_clips": classifier.num_train_clips,
                    "from_cache": classifier.from_cache,
                    f"accuracy_on_real_{split}_clips": classifier.accuracy(real, labels),
                    "kind": "tanh MLP on log-mel mean+std of 1 s clips (zoo.eval.classifier)"}
    ctx = {"split": split, "max_files": int(max_files) if max_files else None, "pairs": pairs,
           "notes": notes, "classifier": classifier, "num_examples": int(num_examples),
           "num_generated": int(num_generated), "source_domain": source_domain,
           "target_domain": target_domain,
           "f0": {"fmin": float(f0_range[0]), "fmax": float(f0_range[1])}}
    rows, per_file, examples = [], {}, {}
    for task in tasks:
        task_rows, task_files, task_examples = _TASKS[task](model, ds, ctx)
        rows += task_rows
        per_file[task] = task_files
        examples[task] = task_examples
    if classifier is not None:
        acc = clf_info[f"accuracy_on_real_{split}_clips"]
        rows.append(_row("classifier", "domain_accuracy", acc, 1,
                         label=f"accuracy on real {split} clips (check)"))
    import keras

    result = {
        "model": label, "model_class": type(model).__name__, "backend": keras.backend.backend(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "data": str(data), "folder": str(ds.root), "split": split, "sample_rate": sr,
        "domains": ds.domains, "tasks": tasks,
        "files": {"evaluated": {t: [r["file"] for r in per_file[t]] for t in per_file},
                  "skipped": [{"file": rel, "reason": why} for rel, why in ds.skipped],
                  "original_sample_rates": rates},
        "classifier": clf_info, "metrics": rows, "per_file": per_file, "notes": notes,
        "outputs": None,
    }
    if write:
        if out is None and run_dir is not None:
            out = run_dir / "eval"
        elif out is None:
            named = isinstance(model_or_path, (str, os.PathLike))
            out = Path(f"eval_{Path(model_or_path).stem if named else type(model).__name__}")
        result["outputs"] = _write_outputs(result, examples, Path(out), sr)
    return _json_safe(result)


# ------------------------------------------------------------------ output
def _json_safe(obj):
    """Plain Python types; non-finite floats -> None."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(float(obj)) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _fmt(value, missing=0, count=0):
    if value is None:
        return f"n/a ({missing} of {count} undefined)" if missing else "n/a"
    text = f"{value:.4g}"
    return f"{text} ({missing} of {count} n/a)" if missing else text


_HEADER = ("task", "metric", "value", "reference / baseline", "better")


def _table_rows(result):
    for r in result["metrics"]:
        unit = f" [{r['unit']}]" if r["unit"] else ""
        ref = (f"{_fmt(r['reference'])} ({r['reference_label']})"
               if r["reference"] is not None else "")
        yield (r["task"], r["label"] + unit, _fmt(r["value"], r["missing"], r["count"]), ref,
               r["better"])


def format_table(result):
    """The metrics of an :func:`evaluate` result as a plain-text table.

    Columns: task, metric [unit], value (``n/a`` with the number of clips it
    was undefined on), reference / baseline where there is one, and whether
    lower or higher is better.
    """
    rows = [_HEADER] + list(_table_rows(result))
    widths = [max(len(r[i]) for r in rows) for i in range(len(_HEADER))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _write_outputs(result, examples, out, sr):
    from zoo.audio.plots import save_spectrograms
    from zoo.data import write_audio
    from zoo.files import atomic_write_bytes

    out.mkdir(parents=True, exist_ok=True)
    written = {"folder": str(out), "json": str(out / "eval.json"),
               "report": str(out / "report.md"), "examples": [], "plots": []}
    sections = []
    for task, items in examples.items():
        for i, (name, waves) in enumerate(items):
            png = f"{task}_{i}.png"
            save_spectrograms(out / png, waves, sr, title=f"{task}: {name}")
            links = []
            for label, wave in waves.items():
                wav = f"examples/{task}_{i}_{_slug(label)}.wav"
                write_audio(out / wav, np.clip(wave, -1.0, 1.0), sr)
                written["examples"].append(str(out / wav))
                links.append(f"[{label}]({wav})")
            written["plots"].append(str(out / png))
            sections.append(f"### {task}: {name}\n\n![{task} {i}]({png})\n\n" + " · ".join(links))
    result = dict(result, outputs=written)
    atomic_write_bytes(out / "report.md",
                       lambda t: Path(t).write_text(_report(result, sections)))
    text = json.dumps(_json_safe(result), indent=2, allow_nan=False)
    atomic_write_bytes(out / "eval.json", lambda t: Path(t).write_text(text))
    return written


def _slug(text):
    return "".join(c if c.isalnum() else "_" for c in text).strip("_")


def _report(result, sections):
    n = [f"{t} {len(f)} files" for t, f in result["files"]["evaluated"].items() if f]
    n += [f"generation {r['count']} prior samples" for r in result["metrics"]
          if r["task"] == "generation"]
    lines = [f"# Evaluation of {result['model']}", "",
             f"- model: `{result['model_class']}`, backend {result['backend']}, "
             f"{result['sample_rate']} Hz",
             f"- data: `{result['data']}` ({result['folder']}), split `{result['split']}`, "
             f"domains {', '.join(result['domains'])}",
             "- through the model: " + ", ".join(n),
             f"- date: {result['date']}", "", "## Metrics", "",
             "| " + " | ".join(_HEADER) + " |", "|---" * len(_HEADER) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in _table_rows(result)]
    if result["notes"]:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in result["notes"]]
    if sections:
        lines += ["", "## Examples", ""] + [s + "\n" for s in sections]
    return "\n".join(lines) + "\n"
