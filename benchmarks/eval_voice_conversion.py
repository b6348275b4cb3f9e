"""Voice conversion on held-out builtin:voices pairs: one table for every system trained
on the same pair.

    python -m benchmarks.eval_voice_conversion --gmm RUN [--cvae RUN] [--travelgan RUN]
        [--source A --target B] [--max-files 10]

Each system converts the held-out (validation) utterances of ``--source`` and is compared
with the true ``--target`` utterance of the same name (``zoo eval --pairs``):

* MCD: mel-cepstral distortion in dB on WORLD mel-cepstra (order 24, alpha 0.42, c0
  excluded) over the DTW-aligned frames, beside the unconverted source's;
* median-f0 error: the difference of median log-f0 (Harvest) to the target's, in cents;
* f0 RMSE: over the frames of a DTW path (WORLD mel-cepstra) voiced in both, in cents;
* target share: the share of converted clips the domain classifier calls the target.

``--cvae`` is evaluated twice: label swap and the latent-arithmetic baseline. Writes
``benchmarks/results/voice_conversion.{json,md}``.
"""
import argparse
import json
import shutil
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
METRICS = ("mcd_world_dtw_to_target", "f0_median_error_to_target_cents",
           "f0_rmse_dtw_to_target_cents", "target_domain_share")


def _rows(result):
    return {r["name"]: r for r in result["metrics"] if r["task"] == "conversion"}


def _with_conversion(run, mode, work):
    """A copy of a cvae run whose default conversion is ``mode``."""
    import zoo
    from zoo.files import atomic_save_model

    copy = Path(work) / f"{Path(run).name}_{mode}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("samples", "logs", "eval"))
    model = zoo.load(copy)
    model.conversion = mode
    atomic_save_model(model, copy / "model.keras")
    return copy


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gmm", help="a gmm_vc run folder")
    parser.add_argument("--cvae", help="a cvae run folder (trained on all speakers)")
    parser.add_argument("--travelgan", help="a travelgan run folder trained on the pair")
    parser.add_argument("--source", default="A")
    parser.add_argument("--target", default="B")
    parser.add_argument("--max-files", type=int, default=10)
    args = parser.parse_args(argv)

    import keras

    from zoo.eval.runner import evaluate

    systems = []
    if args.gmm:
        systems.append(("gmm_vc (MLPG + GV)", args.gmm))
    work = tempfile.mkdtemp(prefix="vc-eval-")
    if args.cvae:
        systems.append(("cvae, label swap", _with_conversion(args.cvae, "swap", work)))
        systems.append(("cvae, latent arithmetic", _with_conversion(args.cvae, "arithmetic",
                                                                    work)))
    if args.travelgan:
        systems.append(("travelgan", args.travelgan))
    table, unconverted = [], None
    for label, run in systems:
        result = evaluate(run, "builtin:voices", pairs=True, split="val",
                          max_files=args.max_files, source_domain=args.source,
                          target_domain=args.target, write=False, num_examples=0)
        rows = _rows(result)
        table.append({"system": label, "run": str(run), "files": len(
            result["files"]["evaluated"]["conversion"]),
            **{m: rows[m]["value"] if m in rows else None for m in METRICS}})
        unconverted = {m: rows[m]["reference"] for m in METRICS if m in rows}
        print(label, {m: table[-1][m] for m in METRICS}, flush=True)
    shutil.rmtree(work, ignore_errors=True)
    record = {"backend": keras.backend.backend(), "pair": f"{args.source} -> {args.target}",
              "data": "builtin:voices, validation utterances", "systems": table,
              "unconverted_source": unconverted}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "voice_conversion.json").write_text(json.dumps(record, indent=2))

    def fmt(v, digits=3):
        return "n/a" if v is None else f"{v:.{digits}g}"

    lines = [f"# Voice conversion, builtin:voices {args.source} -> {args.target} (held-out "
             "utterances)", "", "`python -m benchmarks.eval_voice_conversion`", "",
             "| system | MCD, WORLD mel-cepstra, DTW [dB] | median-f0 error to target [cents] "
             "| f0 RMSE (DTW) to target [cents] | share called target |", "|---|---|---|---|---|"]
    if unconverted:
        lines.append("| unconverted source | " + " | ".join(
            fmt(unconverted.get(m)) for m in METRICS) + " |")
    for row in table:
        lines.append(f"| {row['system']} | " + " | ".join(fmt(row[m]) for m in METRICS) + " |")
    (RESULTS / "voice_conversion.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
