"""A real small sweep: `zoo tune vae` on builtin:timbre, and the best recipe beside the
default one on the held-out files.

    python -m benchmarks.tune_vae [--trials 12] [--steps 500] [--work /tmp/tune_vae]

1. ``zoo tune vae --data builtin:timbre --trials N --objective mel_distance --steps S``
   (random search over recipes/vae.toml's [tune]: learning rate, latent size, width, beta);
   each trial is scored by ``zoo eval``'s mel distance on the validation files.
2. The default recipe trained for the same steps and evaluated the same way.
3. Writes ``benchmarks/results/tune_vae.{md,json}`` (the search's sorted table, the best
   values, the two held-out figures) and copies ``best_recipe.toml`` beside them.

The best trial was *selected* on these validation files, so its figure is optimistic by the
selection; the default recipe's is not.
"""
import argparse
import json
import shutil
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--work", default="/tmp/tune_vae")
    parser.add_argument("--eval-files", type=int, default=8)
    args = parser.parse_args(argv)

    import keras

    from zoo.eval.runner import evaluate
    from zoo.training.trainer import train
    from zoo.tuning import tune

    work = Path(args.work)
    started = time.time()
    result = tune("vae", "builtin:timbre", trials=args.trials, objective="mel_distance",
                  steps=args.steps, out=work / "search", eval_files=args.eval_files, verbose=0)
    search_seconds = time.time() - started

    default_run = work / "default"
    if not (default_run / "model.keras").is_file():
        shutil.rmtree(default_run, ignore_errors=True)
        train("vae", "builtin:timbre", steps=args.steps, out=default_run, verbose=0)
    default = evaluate(default_run, "builtin:timbre", split="val", max_files=args.eval_files,
                       out=default_run / "eval", num_examples=1,
                       num_generated=args.eval_files)

    def metric(res, name):
        return next(r["value"] for r in res["metrics"] if r["name"] == name)

    best = result.rows[0]
    best_eval = json.loads((Path(best["run"]) / "eval" / "eval.json").read_text())
    names = ("mel_distance", "multiscale_spectral_distance", "si_sdr")
    figures = {"default": {n: metric(default, n) for n in names},
               "best": {n: metric(best_eval, n) for n in names}}
    RESULTS.mkdir(exist_ok=True)
    shutil.copy(result.best_recipe, RESULTS / "tune_vae_best_recipe.toml")
    table = (work / "search" / "results.md").read_text().split("\n", 4)[-1]
    record = {"backend": keras.backend.backend(), "trials": args.trials, "steps": args.steps,
              "objective": "mel_distance (zoo eval, validation files)",
              "search_seconds": round(search_seconds, 1),
              "best_trial": best["trial"], "best_values": best["values"], "held_out": figures,
              "rows": [{k: r[k] for k in ("trial", "status", "score", "values", "seconds")}
                       for r in result.rows]}
    (RESULTS / "tune_vae.json").write_text(json.dumps(record, indent=2))
    lines = [f"# zoo tune vae on builtin:timbre ({args.trials} trials x {args.steps} steps, "
             f"{keras.backend.backend()}, {search_seconds / 60:.1f} min)", "",
             "`python -m benchmarks.tune_vae`", "", table.strip(), "",
             "| held-out (validation files) | default recipe | best trial |", "|---|---|---|"]
    for n in names:
        lines.append(f"| {n} | {figures['default'][n]:.4g} | {figures['best'][n]:.4g} |")
    (RESULTS / "tune_vae.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
