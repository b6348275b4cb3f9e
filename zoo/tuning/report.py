"""What a search leaves behind: the results table and the best recipe.

``results.csv`` has one row per trial, best first (completed trials by objective,
then the rest): ``rank, trial, status, <objective>, steps, seconds, <each [tune]
key>, run``, then every other metric the trial logged. ``results.md`` shows the
same without the extra metrics. ``best_recipe.toml`` is the base recipe with the
best trial's values and steps, a complete recipe ``zoo train`` reads as is.
"""
import csv
import io
import math
import time

from zoo.files import atomic_write_text

_FIXED = ("rank", "trial", "status")


def rows(oracle, objective, tune_space, trial_dir):
    """Every trial of a keras-tuner oracle as a dict, best first.

    Each row: ``trial``, ``status``, ``score`` (the objective, None if not
    finished), ``steps``, ``seconds``, ``values`` (active ``[tune]`` values),
    ``metrics`` (last logged value of each), ``run`` (the trial's run folder).
    """
    from zoo.tuning.space import active_values

    out = []
    for trial in oracle.trials.values():
        metrics = {}
        for name in trial.metrics.metrics:
            value = trial.metrics.get_last_value(name)
            if value is not None and math.isfinite(float(value)):
                metrics[name] = float(value)
        score = metrics.get(objective.name)
        hp = trial.hyperparameters
        steps = metrics.get("trial_steps")
        out.append({"trial": trial.trial_id, "status": str(trial.status),
                    "score": score if trial.status == "COMPLETED" else None,
                    "steps": int(steps) if steps else None,
                    "seconds": metrics.get("trial_seconds"),
                    "values": active_values(hp, tune_space),
                    "metrics": {k: v for k, v in metrics.items()
                                if k not in (objective.name, "trial_steps", "trial_seconds")},
                    "run": str(trial_dir(trial.trial_id)),
                    "message": (trial.message or "").strip().splitlines()[-1:] or None})
    sign = 1.0 if objective.direction == "min" else -1.0
    out.sort(key=lambda r: (r["score"] is None, sign * (r["score"] or 0.0), r["trial"]))
    for rank, row in enumerate(out, 1):
        row["rank"] = rank if row["score"] is not None else None
    return out


def _fmt(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def write_table(table, out, objective):
    """``results.csv`` and ``results.md`` in ``out`` (atomic writes)."""
    keys = []
    for row in table:
        keys += [k for k in row["values"] if k not in keys]
    extra = []
    for row in table:
        extra += [k for k in row["metrics"] if k not in extra]
    header = [*_FIXED, objective.name, "steps", "seconds", *keys, "run", *sorted(extra)]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    for row in table:
        writer.writerow([row["rank"] or "", row["trial"], row["status"],
                         _fmt(row["score"]), row["steps"] or "", _fmt(row["seconds"]),
                         *(_fmt(row["values"].get(k)) for k in keys), row["run"],
                         *(_fmt(row["metrics"].get(k)) for k in sorted(extra))])
    atomic_write_text(out / "results.csv", buf.getvalue())

    arrow = "lower" if objective.direction == "min" else "higher"
    md_header = ["rank", "trial", "status", f"{objective.name} ({arrow} is better)",
                 "steps", "seconds", *keys]
    lines = [f"# Search results: {objective.name}, best first",
             "", f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
             f"{sum(r['status'] == 'COMPLETED' for r in table)} of {len(table)} trials "
             "completed.", "",
             "| " + " | ".join(md_header) + " |",
             "|" + "---|" * len(md_header)]
    for row in table:
        cells = [_fmt(row["rank"]), row["trial"], row["status"], _fmt(row["score"]),
                 _fmt(row["steps"]), _fmt(row["seconds"]),
                 *(_fmt(row["values"].get(k)) for k in keys)]
        lines.append("| " + " | ".join(cells) + " |")
    failed = [r for r in table if r["message"] and r["status"] != "COMPLETED"]
    if failed:
        lines += ["", "Failed trials:", ""]
        lines += [f"- trial {r['trial']}: {r['message'][0]}" for r in failed]
    atomic_write_text(out / "results.md", "\n".join(lines) + "\n")


def _toml_safe(obj):
    """Drop None values (TOML has no null) and the bookkeeping ``recipe`` key."""
    if isinstance(obj, dict):
        return {k: _toml_safe(v) for k, v in obj.items() if v is not None and k != "recipe"}
    if isinstance(obj, (list, tuple)):
        return [_toml_safe(v) for v in obj]
    return obj


def write_best_recipe(recipe, out, objective, best):
    """``best_recipe.toml``: ``recipe`` (validated, best values applied) as TOML."""
    import tomli_w

    values = ", ".join(f"{k} = {v!r}" for k, v in best["values"].items())
    head = (f"# Best of the search in {out} (zoo tune): trial {best['trial']}, "
            f"{objective.name} = {best['score']:.6g} ({objective.direction}).\n"
            f"# Values found: {values}.\n# Base recipe: {recipe['recipe'].split(' with ')[0]}. "
            "Train it with: zoo train <this file>\n")
    path = out / "best_recipe.toml"
    atomic_write_text(path, head + tomli_w.dumps(_toml_safe(recipe)))
    return path
