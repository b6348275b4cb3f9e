"""VQ-VAE quality on held-out ``builtin:timbre`` clips: reconstruction against a
time-averaged-spectrum baseline and the Griffin-Lim ceiling, and the codebook with and
without dead-code restart.

Usage::

    KERAS_BACKEND=torch python benchmarks/eval_vqvae.py [--model vqvae|vqvae_waveform] \
        [--steps 1000] [--variants restart,no_restart] [--set model_config.channels=32 ...] \
        [--out runs/eval_vqvae] [--json benchmarks/results/vqvae_quality.json]
    python benchmarks/eval_vqvae.py --ceilings   # front-end ceilings only, no training

Trains the recipe once per variant from the same seed, with ``dead_code_threshold`` 1
(restart, the default) and 0 (none), then on 16 clips of the files held out of
training reports, lower is better:

* multiscale spectral distance (``zoo.eval``; FFT sizes 2048..128) and mel distance of
  the reconstruction (through the int32 codes);
* the same for the time-averaged-spectrum baseline: each clip's mean STFT magnitude
  repeated over its frames, resynthesised by 32 Griffin-Lim iterations (librosa): a
  clip's timbre with no time structure, which a useful model must beat by far;
* the same for 32 Griffin-Lim iterations of the clip's TRUE magnitudes (n_fft 512,
  hop 128, the model's STFT): the ceiling of a model that inverts by Griffin-Lim;

and, per variant, the share of codes used on those clips and the code perplexity. For
the spectrogram layout also the error of the decoded normalised log-mel features (what
the model is trained on) beside the time-averaged log-mel's, and the distances of the
front-end's own inversion of the TRUE features (the ceiling of that layout's audio).
For the waveform layout's harmonic decoder (``--set 'model_config.decoder="harmonic"'``)
also the distance of the oscillator bank's part alone and of the noise head's alone, and
the pitch head's error against YIN's pitch of the clips (cents). A run folder that
already holds a finished run is evaluated as it is (its own training time reported).
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

from zoo.files import atomic_write_text  # noqa: E402


def griffin_lim_of(magnitude, length, n_fft, hop):
    import librosa

    return librosa.griffinlim(magnitude, n_iter=32, hop_length=hop, n_fft=n_fft, length=length,
                              random_state=0)


def baselines(x, n_fft, hop):
    """(time-averaged-spectrum resynthesis, Griffin-Lim of the true magnitudes)."""
    import librosa

    mag = np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop))
    flat = np.repeat(mag.mean(axis=1, keepdims=True), mag.shape[1], axis=1)
    return griffin_lim_of(flat, len(x), n_fft, hop), griffin_lim_of(mag, len(x), n_fft, hop)


def harmonic_parts(model, clips):
    """Harmonic decoder: the multiscale distance of the oscillator bank's part alone and
    of the noise head's alone, their RMS, and how far the pitch head is from YIN's pitch
    of the clips on the frames YIN finds periodic (median and mean cents)."""
    import keras

    from zoo.eval import multiscale_spectral_distance

    parts = {k: [] for k in ("f0", "harmonic", "noise")}
    for i in range(0, len(clips), 4):
        out = model.decode_parts(model.encode(clips[i:i + 4]))
        for key in parts:
            parts[key].append(keras.ops.convert_to_numpy(out[key]))
    parts = {k: np.concatenate(v) for k, v in parts.items()}
    target, voiced = (keras.ops.convert_to_numpy(a) for a in model.pitch_target(clips))
    frames = parts["f0"].shape[1]
    cents = np.abs(1200 * np.log2(parts["f0"] / target[:, :frames]))[voiced[:, :frames] > 0]
    row = {"f0_cents_median": float(np.median(cents)), "f0_cents_mean": float(cents.mean())}
    for key in ("harmonic", "noise"):
        part = parts[key][:, : clips.shape[1]]
        row[f"{key}_only_multiscale"] = float(np.mean([multiscale_spectral_distance(x, y)
                                                       for x, y in zip(clips, part)]))
        row[f"{key}_rms"] = float(np.sqrt(np.mean(np.square(part))))
    return row


def feature_errors(model, clips):
    """Spectrogram layout: MSE of the decoded normalised log-mel against the true one, the
    same for each clip's time-averaged log-mel, and the distances of the front-end's own
    inversion of the true features (the layout's ceiling)."""
    import keras

    from zoo.eval import mel_distance, multiscale_spectral_distance

    out = model(clips, training=False)
    true, decoded = (keras.ops.convert_to_numpy(out[k]) for k in ("features", "decoded"))
    inverted = keras.ops.convert_to_numpy(model.frontend.to_waveform(out["features"],
                                                                     length=clips.shape[1]))
    return {"feature_mse": float(np.mean((decoded - true) ** 2)),
            "feature_mse_time_averaged": float(np.mean((true - true.mean(1, keepdims=True)) ** 2)),
            "inversion_multiscale": float(np.mean([multiscale_spectral_distance(x, y)
                                                   for x, y in zip(clips, inverted)])),
            "inversion_mel": float(np.mean([mel_distance(x, y, model.sample_rate)
                                            for x, y in zip(clips, inverted)]))}


# (n_fft, hop, n_mels, Griffin-Lim iterations, NNLS iterations); the last is the recipe's
FRONT_ENDS = [(512, 128, 64, 32, 30), (512, 128, 128, 32, 30), (512, 128, 160, 32, 30),
              (1024, 256, 128, 32, 30), (1024, 256, 256, 32, 30), (1024, 256, 256, 64, 300)]


def front_end_ceilings(clips, sr):
    """The spectrogram layout's ceiling for several front-ends: the distances of the
    front-end's inversion (mel pseudo-inverse + NNLS iterations, then Griffin-Lim) of
    each clip's TRUE log-mel. A model of that front-end cannot beat them."""
    import keras

    from zoo.eval import mel_distance, multiscale_spectral_distance
    from zoo.models.spectral import SpectralFrontEnd

    rows = []
    for n_fft, hop, n_mels, gl_iters, nnls_iters in FRONT_ENDS:
        fe = SpectralFrontEnd(sr, n_fft, hop, n_mels, griffin_lim_iters=gl_iters,
                              mel_inversion_iters=nnls_iters)
        y = keras.ops.convert_to_numpy(fe.to_waveform(fe(clips), length=clips.shape[1]))
        rows.append({"n_fft": n_fft, "hop_length": hop, "n_mels": n_mels,
                     "griffin_lim_iters": gl_iters, "mel_inversion_iters": nnls_iters,
                     "multiscale": float(np.mean([multiscale_spectral_distance(a, b)
                                                  for a, b in zip(clips, y)])),
                     "mel": float(np.mean([mel_distance(a, b, sr) for a, b in zip(clips, y)]))})
    return rows


def parse_sets(sets):
    import tomllib

    out = {}
    for item in sets:
        key, value = item.split("=", 1)
        section, name = key.split(".", 1)
        out.setdefault(section, {})[name] = tomllib.loads(f"v = {value}")["v"]
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vqvae", choices=["vqvae", "vqvae_waveform"])
    parser.add_argument("--variants", default="restart,no_restart")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--out", default="runs/eval_vqvae")
    parser.add_argument("--json")
    parser.add_argument("--ceilings", action="store_true",
                        help="only print the front-end ceilings of several mel resolutions "
                             "beside the time-averaged baseline (no training)")
    args = parser.parse_args(argv)
    if args.ceilings:
        return print_ceilings(args.clips)

    import keras

    from zoo.data import load_dataset
    from zoo.eval import mel_distance, multiscale_spectral_distance
    from zoo.training.trainer import train

    overrides = parse_sets(args.set)
    result = {"model": args.model, "backend": keras.backend.backend(), "steps": args.steps,
              "overrides": overrides, "variants": {}}
    clips = None
    variants = {"restart": 1.0, "no_restart": 0.0}
    for name in args.variants.split(","):
        threshold = variants[name]
        cfg = {**overrides, "model_config": {**overrides.get("model_config", {}),
                                             "dead_code_threshold": threshold}}
        run = Path(args.out) / name
        t0 = time.time()
        resume = (run / "state.json").is_file()  # a resumed run keeps its model_config
        trained = train(args.model, steps=args.steps, out=run, verbose=0, samples=False,
                        overrides={k: v for k, v in cfg.items()
                                   if not resume or k != "model_config"}, resume=resume)
        model, seconds = trained.model, time.time() - t0
        if resume:  # the run's own training time, not this call's
            seconds = json.loads((run / "state.json").read_text()).get("seconds", seconds)
        sr = model.sample_rate
        if clips is None:
            ds = load_dataset("builtin:timbre", sr, 16384, progress=False)
            clips = ds.clips(args.clips, split="val", seed=7)
            refs = [baselines(x, 512, 128) for x in clips]
            result["baselines"] = {
                "time_averaged": {
                    "multiscale": float(np.mean([multiscale_spectral_distance(x, b[0])
                                                 for x, b in zip(clips, refs)])),
                    "mel": float(np.mean([mel_distance(x, b[0], sr) for x, b in zip(clips, refs)]))},
                "griffin_lim_32_true": {
                    "multiscale": float(np.mean([multiscale_spectral_distance(x, b[1])
                                                 for x, b in zip(clips, refs)])),
                    "mel": float(np.mean([mel_distance(x, b[1], sr) for x, b in zip(clips, refs)]))}}
        recon = np.concatenate([keras.ops.convert_to_numpy(model.reconstruct(clips[i:i + 4]))
                                for i in range(0, len(clips), 4)])
        codes = keras.ops.convert_to_numpy(model.encode(clips)).reshape(-1)
        p = np.bincount(codes, minlength=model.num_codes) / codes.size
        result["variants"][name] = row = {
            "multiscale": float(np.mean([multiscale_spectral_distance(x, y)
                                         for x, y in zip(clips, recon)])),
            "mel": float(np.mean([mel_distance(x, y, sr) for x, y in zip(clips, recon)])),
            "codes_used": float(np.mean(p > 0)),
            "perplexity": float(np.exp(-np.sum(p[p > 0] * np.log(p[p > 0])))),
            "train_seconds": seconds,
            "bitrate": model.bitrate_report()}
        if hasattr(model, "frontend"):
            row.update(feature_errors(model, clips))
        if getattr(model, "decoder_kind", None) == "harmonic":
            row.update(harmonic_parts(model, clips))
    base = result["baselines"]
    print(f"{args.model} on {len(clips)} held-out builtin:timbre clips ({clips.shape[1] / sr:.2f} s), "
          f"{args.steps} steps, {result['backend']}:")
    print(f"  {'':24s} {'multiscale':>10s} {'mel':>7s} {'codes used':>10s} {'perplexity':>10s}")
    for name, row in result["variants"].items():
        print(f"  vqvae ({name:11s})      {row['multiscale']:10.3f} {row['mel']:7.3f} "
              f"{row['codes_used']:10.1%} {row['perplexity']:10.1f}")
    for name, row in base.items():
        print(f"  {name:24s} {row['multiscale']:10.3f} {row['mel']:7.3f}")
    for name, row in result["variants"].items():
        ratio = row["mel"] / base["time_averaged"]["mel"]
        print(f"  {name}: mel distance / time-averaged baseline: {ratio:.2f} (goal < 0.5)")
        if "feature_mse" in row:
            print(f"  {name}: log-mel feature MSE {row['feature_mse']:.4f} vs time-averaged "
                  f"{row['feature_mse_time_averaged']:.4f} "
                  f"({row['feature_mse'] / row['feature_mse_time_averaged']:.3f}); the "
                  f"front-end's inversion of the true features: multiscale "
                  f"{row['inversion_multiscale']:.3f}, mel {row['inversion_mel']:.3f}")
        if "f0_cents_median" in row:
            print(f"  {name}: pitch head vs YIN {row['f0_cents_median']:.1f} cents (median, "
                  f"mean {row['f0_cents_mean']:.1f}); multiscale of the oscillator bank alone "
                  f"{row['harmonic_only_multiscale']:.2f} (RMS {row['harmonic_rms']:.3f}), of "
                  f"the noise head alone {row['noise_only_multiscale']:.2f} (RMS "
                  f"{row['noise_rms']:.3f})")
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=2))
        print(f"wrote {args.json}")
    return result


def print_ceilings(num_clips):
    from zoo.data import load_dataset
    from zoo.eval import mel_distance, multiscale_spectral_distance

    ds = load_dataset("builtin:timbre", 16000, 16384, progress=False)
    clips = ds.clips(num_clips, split="val", seed=7)
    flat = [baselines(x, 512, 128)[0] for x in clips]
    base_ms = float(np.mean([multiscale_spectral_distance(x, b) for x, b in zip(clips, flat)]))
    base_mel = float(np.mean([mel_distance(x, b, 16000) for x, b in zip(clips, flat)]))
    print(f"time-averaged baseline: multiscale {base_ms:.3f}, mel {base_mel:.3f} "
          f"(the bar, half of it: {base_ms / 2:.3f}, {base_mel / 2:.3f})")
    rows = front_end_ceilings(clips, 16000)
    for row in rows:
        print(f"  n_fft {row['n_fft']:5d} hop {row['hop_length']:4d} mels {row['n_mels']:4d} "
              f"GL {row['griffin_lim_iters']:3d} NNLS {row['mel_inversion_iters']:3d}: "
              f"multiscale {row['multiscale']:.3f} ({row['multiscale'] / base_ms:.2f}x), "
              f"mel {row['mel']:.3f} ({row['mel'] / base_mel:.2f}x)")
    return rows


if __name__ == "__main__":
    main()
