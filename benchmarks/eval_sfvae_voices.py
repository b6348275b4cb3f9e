"""Source-filter VAE on voices it was not trained on: espeak-ng sentences, beside WORLD.

Usage::

    KERAS_BACKEND=jax python benchmarks/eval_sfvae_voices.py [--run sfvae] [--voices en en+f2]

Needs the ``espeak-ng`` program (Debian package ``espeak-ng``); never used by the tests.
Each voice says the same two sentences at 16 kHz. Per voice it prints pyin's median f0
and share of voiced frames of the input; for the model's resynthesis (``model.edit``
with no target) the share of voiced frames and the f0 error in cents over frames voiced
in both (``zoo.eval.metrics.f0_error_cents``); the change of median f0 in semitones for
``f0="+3st"`` and ``"-3st"`` edits; and for WORLD (pyworld: f0 scaled by 2^(3/12),
resynthesis) the same +3 st change, the signal-processing baseline. Records go to
``benchmarks/results/sfvae_voices.json``.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks._common import BACKEND, run_device  # noqa: E402
from benchmarks.eval_sfvae import SR, median_f0, world_resynthesis  # noqa: E402

TEXT = "The quick brown fox jumps over the lazy dog. Where were you a year ago?"
VOICES = ("en", "en+m3", "de", "en+f2", "en+f4", "fr+f3")


def speak(voice, path):
    """``TEXT`` said by espeak-ng's ``voice``, at ``SR``, peak 0.9."""
    import librosa

    subprocess.run(["espeak-ng", "-v", voice, "-s", "140", "-w", str(path), TEXT], check=True)
    wave, _ = librosa.load(path, sr=SR)
    return (wave / np.abs(wave).max() * 0.9).astype("float32")


def world_shift(wave, semitones):
    """WORLD with the f0 track scaled by ``semitones``."""
    return world_resynthesis(wave, lambda f0: f0 * 2.0 ** (semitones / 12.0))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="sfvae", help="a run folder, or sfvae (shipped weights)")
    ap.add_argument("--voices", nargs="+", default=list(VOICES))
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "sfvae_voices.json"))
    args = ap.parse_args(argv)

    from zoo.eval.metrics import f0_error_cents
    from zoo.files import atomic_write_text
    from zoo.registry import load_for_use

    model, label = load_for_use(args.run)
    print(f"backend {BACKEND}; {run_device()}; model {label}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for voice in args.voices:
            wave = speak(voice, Path(tmp) / "voice.wav")
            base, voiced = median_f0(wave)
            resynth = model.edit(wave)
            try:
                cents = f0_error_cents(wave, resynth, SR, fmin=60, fmax=600, frame_length=1024,
                                       hop_length=256)
            except ValueError:  # no frame voiced in both
                cents = float("nan")
            moves = {s: 12 * np.log2(median_f0(model.edit(wave, f0=f"{s:+d}st"))[0] / base)
                     for s in (3, -3)}
            row = {"voice": voice, "f0_hz": base, "voiced": voiced,
                   "resynthesis_voiced": median_f0(resynth)[1], "resynthesis_f0_cents": cents,
                   "edit_plus_3st": moves[3], "edit_minus_3st": moves[-3],
                   "world_plus_3st": 12 * np.log2(median_f0(world_shift(wave, 3))[0] / base)}
            rows.append(row)
            print(f"{voice:6s} f0 {base:4.0f} Hz, voiced {voiced:.2f} | resynthesis voiced "
                  f"{row['resynthesis_voiced']:.2f}, f0 error {cents:.0f} cents | +3 st -> "
                  f"{moves[3]:+.2f}, -3 st -> {moves[-3]:+.2f} | WORLD +3 st -> "
                  f"{row['world_plus_3st']:+.2f}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps({"backend": BACKEND, "device": run_device(),
                                       "model": label, "text": TEXT, "rows": rows},
                                      indent=1, default=float))
    print("wrote", out)


if __name__ == "__main__":
    main()
