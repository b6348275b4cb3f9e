"""Prior quality on held-out ``builtin:timbre``: bits per code of a trained PixelCNN or
WaveNet prior against the uniform and unigram priors, and the Frechet distance of its
samples against samples decoded from unigram-drawn codes.

Usage::

    KERAS_BACKEND=jax python benchmarks/eval_priors.py --prior wavenet \
        [--vqvae-steps 800] [--prior-steps 1500] [--set-vqvae model_config.channels=32] \
        [--set-prior model_config.filters=64] [--num 32] [--out runs/eval_priors] \
        [--json benchmarks/results/prior_quality_wavenet.json]

Trains the prior's VQ-VAE (``vqvae`` for ``pixelcnn``, ``vqvae_waveform`` for
``wavenet``), then the prior on its codes (a run already in ``--out`` is resumed, so a
second call with more steps continues it). On crops of the files held out of training:

* **bits per code**: the prior's mean negative log-likelihood; the uniform prior's
  ``log2 K``; the unigram prior's (code frequencies of 256 training crops, add-one
  smoothed) on the same held-out codes. A prior that learned nothing scores the unigram.
* **Frechet distance** on the evaluation domain classifier's embedding
  (``zoo.eval.classifier``, 1 s clips) to real held-out clips, lower is better, of:
  the prior's samples; audio decoded from codes drawn independently from the unigram
  distribution (what the prior must beat); the VQ-VAE's reconstructions of the held-out
  clips (the decoder's floor); real training clips (the real-vs-real floor).
"""
import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks.eval_vqvae import parse_sets  # noqa: E402

VQVAE_OF = {"pixelcnn": "vqvae", "wavenet": "vqvae_waveform"}


def train_or_resume(name, steps, run, overrides):
    from zoo.training.trainer import train

    resume = (run / "state.json").is_file()  # a resumed run keeps its model_config
    t0 = time.time()
    trained = train(name, steps=steps, out=run, verbose=0, samples=False, resume=resume,
                    overrides={k: v for k, v in overrides.items()
                               if not resume or k != "model_config"})
    return trained.model, time.time() - t0


def unigram(codes, num_codes):
    """Add-one smoothed code frequencies."""
    counts = np.bincount(np.asarray(codes).reshape(-1), minlength=num_codes) + 1.0
    return counts / counts.sum()


def batched(fn, x, size=8):
    import keras

    return np.concatenate([keras.ops.convert_to_numpy(fn(x[i:i + size]))
                           for i in range(0, len(x), size)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prior", default="wavenet", choices=sorted(VQVAE_OF))
    parser.add_argument("--vqvae-steps", type=int, default=800)
    parser.add_argument("--prior-steps", type=int, default=1500)
    parser.add_argument("--set-vqvae", action="append", default=[])
    parser.add_argument("--set-prior", action="append", default=[])
    parser.add_argument("--num", type=int, default=32, help="samples and held-out crops")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--out", default="runs/eval_priors")
    parser.add_argument("--json")
    args = parser.parse_args(argv)

    import keras

    from zoo.data import load_dataset
    from zoo.eval.classifier import clips_of, domain_classifier
    from zoo.eval.metrics import frechet_distance

    out = Path(args.out) / args.prior
    vq_name = VQVAE_OF[args.prior]
    vq, vq_seconds = train_or_resume(vq_name, args.vqvae_steps, out / vq_name,
                                     parse_sets(args.set_vqvae))
    prior_sets = parse_sets(args.set_prior)
    prior_sets["model_config"] = {**prior_sets.get("model_config", {}),
                                  "vqvae": str(out / vq_name)}
    prior, prior_seconds = train_or_resume(args.prior, args.prior_steps, out / args.prior,
                                           prior_sets)
    vq = prior.vqvae  # the frozen copy the prior models
    sr, k = vq.sample_rate, vq.num_codes

    ds = load_dataset("builtin:timbre", sr, 16384, progress=False)
    train_clips = ds.clips(256, split="train", seed=1)
    held_out = ds.clips(args.num, split="val", seed=7)
    p = unigram(batched(vq.encode, train_clips), k)
    codes = batched(vq.encode, held_out)
    bits = {"prior": float(np.mean(batched(prior.log_likelihood, held_out))),
            "unigram": float(-np.mean(np.log2(p[codes]))),
            "uniform": math.log2(k)}

    length = held_out.shape[1]
    t0 = time.time()
    samples = keras.ops.convert_to_numpy(prior.sample(args.num, length, seed=0,
                                                      temperature=args.temperature))
    sample_seconds = time.time() - t0
    rng = np.random.default_rng(0)
    drawn = rng.choice(k, size=(args.num,) + tuple(codes.shape[1:]), p=p).astype("int32")
    unigram_audio = batched(lambda c: vq.decode(c, length=length), drawn)
    recon = batched(vq.reconstruct, held_out)

    clf = domain_classifier(ds)

    def embed(waves):
        return clf.embed([c for w in waves for c in clips_of(w, sr, per_file=1)])

    real = embed(held_out)
    frechet = {"prior_samples": frechet_distance(embed(samples), real),
               "unigram_codes": frechet_distance(embed(unigram_audio), real),
               "vqvae_reconstruction": frechet_distance(embed(recon), real),
               "real_train_clips": frechet_distance(embed(train_clips[:args.num]), real)}

    result = {"prior": args.prior, "vqvae": vq_name, "backend": keras.backend.backend(),
              "vqvae_steps": args.vqvae_steps, "prior_steps": args.prior_steps,
              "overrides": {"vqvae": parse_sets(args.set_vqvae), "prior": prior_sets},
              "held_out_crops": args.num, "crop_seconds": length / sr,
              "temperature": args.temperature, "bits_per_code": bits,
              "frechet_distance": {k_: float(v) for k_, v in frechet.items()},
              "train_seconds": {"vqvae": vq_seconds, "prior": prior_seconds},
              "sample_seconds": sample_seconds}
    print(f"{args.prior} over {vq_name} ({k} codes), {args.num} held-out builtin:timbre crops "
          f"({length / sr:.2f} s), {result['backend']}:")
    print(f"  bits per code: prior {bits['prior']:.3f}, unigram {bits['unigram']:.3f}, "
          f"uniform {bits['uniform']:.3f} (goal: prior < unigram)")
    print("  Frechet distance to real held-out clips (classifier embedding, lower is better):")
    for name, value in frechet.items():
        print(f"    {name:22s} {value:10.3f}")
    print(f"  goal: prior_samples < unigram_codes; sampling took {sample_seconds:.1f} s")
    if args.json:
        from zoo.files import atomic_write_text

        atomic_write_text(args.json, json.dumps(result, indent=2))
        print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
