"""The search behind ``zoo tune``: keras-tuner's oracles, every trial a ``zoo train`` run.

A search folder (``--out``) holds::

    tune.json            what was asked (recipe, data, objective, algorithm, ...)
    keras_tuner/         keras-tuner's project: oracle.json, trial_*/trial.json
    trials/trial_NN/     one normal run folder per trial (checkpoints, history.csv,
                         samples/, eval/ when the objective is an audio metric)
    results.csv          every trial, best first: status, objective, values, metrics
    results.md           the same, for people
    best_recipe.toml     the best trial's configuration: ``zoo train best_recipe.toml``

Running the same command again continues the search (keras-tuner reloads its
project): finished trials are not repeated, a trial that was interrupted is
retried and continues from its last checkpoint.

Distributed (keras-tuner's own chief/worker mode over gRPC): one process with
``chief="HOST:PORT"`` holds the oracle; processes with ``worker=ID`` and the same
``chief`` ask it for trials. A worker that dies mid-trial keeps that trial; started
again with the same ID it continues the trial from its checkpoint.
"""
import contextlib
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from zoo import registry
from zoo.errors import TrainingDiverged, ZooError
from zoo.files import atomic_write_text
from zoo.recipe import constructor_arguments
from zoo.tuning import report, space

ALGORITHMS = ("random", "bayesian", "hyperband")
PROJECT = "keras_tuner"
SETTINGS = "tune.json"
#: settings that must match when a search folder is continued
_SAME = ("recipe", "tiny", "data", "algorithm", "objective", "direction", "overrides")
#: words in a Keras metric name that mean "higher is better"
_HIGHER = ("accuracy", "share", "si_sdr", "auc", "precision", "recall")


@dataclass
class TuneResult:
    """What :func:`tune` returns."""

    out: Path
    objective: str
    direction: str
    rows: list = field(default_factory=list)  #: every trial, best first (see report.rows)
    best_recipe: Path = None
    chief: bool = True   #: False for a worker (the chief writes the table)


@dataclass
class Objective:
    """What a search minimises or maximises: a logged Keras metric (``val_loss``,
    ``val_reconstruction_loss``: the last epoch's value) or an audio metric of
    ``zoo eval`` on the trial's validation files (``mel_distance``,
    ``conversion.target_domain_share``)."""

    name: str
    direction: str  # "min" | "max"
    kind: str       # "history" | "eval"

    @property
    def metric(self):
        return self.name.rsplit(".", 1)[-1]


def resolve_objective(name, direction, has_validation):
    """An :class:`Objective` from ``--objective``/``--direction`` (directions of audio
    metrics come from ``zoo eval``'s table; Keras metrics default to ``min``)."""
    from zoo.eval.runner import METRIC_INFO

    if name is None:
        name = "val_loss" if has_validation else "loss"
    if direction not in (None, "min", "max"):
        raise ZooError(f"--direction must be 'min' or 'max', got {direction!r}")
    metric = name.rsplit(".", 1)[-1]
    if metric in METRIC_INFO:
        default = "max" if METRIC_INFO[metric][2] == "higher" else "min"
        return Objective(name, direction or default, "eval")
    if "." in name:
        raise ZooError(f"--objective {name!r}: {metric!r} is not a zoo eval metric "
                       f"({', '.join(sorted(METRIC_INFO))})")
    default = "max" if any(word in name for word in _HIGHER) else "min"
    return Objective(name, direction or default, "history")


def logged_metrics(recipe):
    """The Keras metric names a recipe's model logs in training (``loss``,
    ``reconstruction_loss``, ...), found by building and compiling it once."""
    import keras

    model = registry.build(recipe)
    model.compile_from_recipe(recipe["train"])
    names = {"loss"} | {m.name for m in model.metrics}
    keras.backend.clear_session()
    return sorted(names)


def _check_history_objective(objective, recipe, has_validation):
    names = logged_metrics(recipe)
    logged = names + [f"val_{n}" for n in names] if has_validation else names
    if objective.name not in logged:
        from zoo.recipe import closest
        from zoo.eval.runner import METRIC_INFO

        hint = closest(objective.name, logged + list(METRIC_INFO))
        raise ZooError(f"--objective {objective.name!r}: {recipe['model']} logs "
                       f"{', '.join(logged)}; audio metrics: {', '.join(sorted(METRIC_INFO))}"
                       + (f"; did you mean {hint!r}?" if hint else ""))


# ------------------------------------------------------------------ tuner
def _tuner_class():
    """The keras-tuner ``BaseTuner`` subclass (built on first use: keras-tuner is
    imported only by ``zoo tune``)."""
    import keras_tuner

    class _Space(keras_tuner.HyperModel):
        def __init__(self, tune_space):
            super().__init__()
            self.tune_space = tune_space

        def build(self, hp):
            space.declare(hp, self.tune_space)

    class RecipeTuner(keras_tuner.engine.base_tuner.BaseTuner):
        """Runs each trial as a ``zoo train`` run folder and reports its metrics."""

        def __init__(self, oracle, search, **kwargs):
            self.search_spec = search
            super().__init__(oracle, hypermodel=_Space(search.recipe["tune"]), **kwargs)

        def run_trial(self, trial, *args, **kwargs):
            try:
                return self.search_spec.run_trial(trial)
            except (ZooError, TrainingDiverged) as err:  # deterministic: do not retry
                raise keras_tuner.errors.FailedTrialError(str(err)) from None

        def search(self, *args, **kwargs):
            if is_chief():  # keras-tuner's chief polls every 20 s; ours every 0.5 s
                self.oracle.verbose = kwargs.get("verbose", 1)
                self.save()
                _serve(self.oracle, lambda: self.search_spec.write_report(self.oracle))
                return
            super().search(*args, **kwargs)

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            if not self._is_worker():
                self.search_spec.write_report(self.oracle)

        def load_model(self, trial):
            return registry.load_saved(self.search_spec.trial_dir(trial.trial_id))

        def save_model(self, trial_id, model, step=0):
            """Trials save themselves (run folders)."""

    return RecipeTuner


class Search:
    """One search: the base recipe, the objective, where trials go, how they run."""

    def __init__(self, recipe, name, out, objective, *, data, steps, tiny, overrides,
                 eval_files, verbose):
        self.recipe, self.name, self.out = recipe, name, Path(out)
        self.objective, self.data, self.tiny = objective, data, tiny
        self.base_overrides = overrides or {}
        self.eval_files, self.verbose = eval_files, verbose
        self.model_args = constructor_arguments(registry.model_class(recipe["model"]))
        spe = recipe["train"]["steps_per_epoch"]
        self.steps = int(steps or recipe["train"]["steps"] or spe)
        self.steps_per_epoch = spe

    # ---- trials
    def trial_dir(self, trial_id):
        return self.out / "trials" / f"trial_{trial_id}"

    def trial_steps(self, hp):
        """Steps of a trial: the search's, or Hyperband's ``tuner/epochs`` epochs."""
        if "tuner/epochs" in hp.values:
            return int(hp.values["tuner/epochs"]) * self.steps_per_epoch
        return self.steps

    def trial_overrides(self, values):
        merged = {s: dict(v) for s, v in self.base_overrides.items()}
        for section, items in space.overrides(values, self.model_args).items():
            merged.setdefault(section, {}).update(items)
        return merged

    def run_trial(self, trial):
        """Train (or continue) one trial's run folder; its metrics as ``{name: float}``."""
        import keras

        from zoo.training.trainer import train

        hp = trial.hyperparameters
        values = space.active_values(hp, self.recipe["tune"])
        run_dir = self.trial_dir(trial.trial_id)
        total = self.trial_steps(hp)
        keras.backend.clear_session()
        started = time.time()
        checkpoint = run_dir / registry.RUN_CHECKPOINT
        parent = hp.values.get("tuner/trial_id")
        retried = checkpoint.is_file()
        if not retried and parent:
            # Hyperband: continue the parent trial's model (same values, more epochs)
            self._copy_run(self.trial_dir(parent), run_dir)
        self._log(trial.trial_id, "continue" if retried else "start", total)
        if checkpoint.is_file():  # retried after an interruption, or a Hyperband child
            if self.verbose:
                print(f"[zoo tune] trial {trial.trial_id}: continuing {run_dir}", flush=True)
            train(out=run_dir, resume=True, steps=total, verbose=self.verbose)
        else:
            if run_dir.exists():  # interrupted before its first checkpoint
                shutil.rmtree(run_dir)
            train(self.name, self.data, steps=total, out=run_dir, tiny=self.tiny,
                  overrides=self.trial_overrides(values), verbose=self.verbose)
        metrics = _history_metrics(run_dir / "history.csv")
        if self.objective.kind == "eval":
            metrics.update(self._eval_metrics(run_dir))
        metrics["trial_seconds"] = round(time.time() - started, 1)
        metrics["trial_steps"] = float(total)
        if not _finite(metrics.get(self.objective.name)):
            logged = ", ".join(sorted(metrics))
            raise ZooError(f"trial {trial.trial_id}: objective {self.objective.name!r} is "
                           f"missing or not finite (logged: {logged})")
        self._log(trial.trial_id, "end", total)
        return {k: v for k, v in metrics.items() if _finite(v)}

    def _log(self, trial_id, event, steps):
        """One line per trial event in ``<out>/trials.log`` (appends are atomic for
        short lines, so workers sharing the folder can all write)."""
        line = (f"{time.strftime('%Y-%m-%dT%H:%M:%S')} trial {trial_id} {event} steps={steps} "
                f"tuner={os.environ.get('KERASTUNER_TUNER_ID', 'tuner0')} pid={os.getpid()}\n")
        with open(self.out / "trials.log", "a") as f:
            f.write(line)

    @staticmethod
    def _copy_run(parent_dir, run_dir):
        if not (parent_dir / registry.RUN_CHECKPOINT).is_file():
            raise ZooError(f"Hyperband: parent trial folder {parent_dir} has no checkpoint "
                           "(run the search where its trials were trained)")
        if run_dir.exists():
            shutil.rmtree(run_dir)
        tmp = run_dir.with_name(run_dir.name + ".copying")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(parent_dir, tmp, ignore=shutil.ignore_patterns("samples", "logs",
                                                                        "eval", "model.keras"))
        os.replace(tmp, run_dir)

    def _eval_metrics(self, run_dir):
        """``zoo eval`` of the trial on its validation files (written to ``<run>/eval``)."""
        from zoo.eval.runner import evaluate

        result = evaluate(run_dir, self.data or self.recipe["data"]["source"], split="val",
                          max_files=self.eval_files, out=run_dir / "eval", num_examples=1,
                          num_generated=self.eval_files)
        rows = result["metrics"]
        out = {}
        for row in rows:
            out[f"{row['task']}.{row['name']}"] = row["value"]
        for row in rows:  # bare names where unambiguous
            if sum(r["name"] == row["name"] for r in rows) == 1:
                out[row["name"]] = row["value"]
        return {k: float(v) for k, v in out.items() if v is not None}

    # ---- results
    def write_report(self, oracle):
        rows = report.rows(oracle, self.objective, self.recipe["tune"], self.trial_dir)
        report.write_table(rows, self.out, self.objective)
        best = next((r for r in rows if r["status"] == "COMPLETED"), None)
        if best is None:
            return rows, None
        recipe = registry.with_overrides(self.recipe, self.trial_overrides(best["values"]),
                                         label="[tune]")
        recipe["train"]["steps"] = int(best["steps"])
        path = report.write_best_recipe(recipe, self.out, self.objective, best)
        return rows, path


def _finite(value):
    return isinstance(value, (int, float)) and math.isfinite(value)


def _history_metrics(path):
    """The last row of a run's ``history.csv`` as ``{metric: float}``."""
    import csv

    if not Path(path).is_file():
        return {}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    out = {}
    for key, value in rows[-1].items():
        if key == "epoch" or value in (None, ""):
            continue
        try:
            out[key] = float(value)
        except ValueError:
            pass
    return out


# ------------------------------------------------------------------ entry point
def _parse_address(chief):
    host, sep, port = str(chief).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ZooError(f"--chief {chief!r}: expected HOST:PORT, e.g. 10.0.0.5:8000")
    return host, port


@contextlib.contextmanager
def _distributed_env(chief, worker):
    """keras-tuner's distributed variables for the duration of a search."""
    if chief is None:
        if worker is not None:
            raise ZooError("--worker needs --chief HOST:PORT (the chief's address)")
        keys = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")
        saved = {k: os.environ.pop(k) for k in keys if k in os.environ}
        try:
            yield
        finally:
            os.environ.update(saved)
        return
    host, port = _parse_address(chief)
    worker = None if worker is None else str(worker)
    if worker is not None and (not worker or "chief" in worker):
        raise ZooError(f"--worker {worker!r}: a worker ID must be non-empty and not contain "
                       "'chief'")
    values = {"KERASTUNER_TUNER_ID": "chief" if worker is None else f"worker-{worker}",
              "KERASTUNER_ORACLE_IP": host, "KERASTUNER_ORACLE_PORT": port}
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def is_chief():
    """Whether this process is a distributed search's chief (keras-tuner's variables)."""
    return ("KERASTUNER_ORACLE_IP" in os.environ
            and "chief" in os.environ.get("KERASTUNER_TUNER_ID", ""))


def _serve(oracle, on_change, poll=0.5):
    """Serve ``oracle`` to workers over gRPC until every trial has ended and every
    worker has been told to stop (keras-tuner's chief protocol and servicer), writing
    the results table whenever a trial ends."""
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer, exit_chief
    from keras_tuner.src.engine.oracle import LOCKS

    def report():
        with LOCKS[oracle]:  # the servicer's thread changes the trials
            on_change()

    address = f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    if server.add_insecure_port(address) == 0:
        raise ZooError(f"--chief {address}: cannot listen there (address in use?)")
    server.start()
    ended = -1
    try:
        while True:
            time.sleep(poll)
            done = len(oracle.end_order)
            if done != ended:
                ended = done
                report()
            if servicer.stop_triggered and exit_chief(oracle):
                break
    finally:
        server.stop(grace=1)
    report()


def _oracle(algorithm, objective, trials, max_epochs, seed):
    import keras_tuner

    goal = keras_tuner.Objective(objective.name, objective.direction)
    common = dict(objective=goal, seed=seed, max_retries_per_trial=1,
                  max_consecutive_failed_trials=3)
    if algorithm == "random":
        return keras_tuner.oracles.RandomSearchOracle(max_trials=trials, **common)
    if algorithm == "bayesian":
        return keras_tuner.oracles.BayesianOptimizationOracle(
            max_trials=trials, num_initial_points=max(2, min(trials // 3, 5)), **common)
    if max_epochs < 2:
        raise ZooError("--algorithm hyperband needs at least 2 epochs per full trial (steps / "
                       f"steps_per_epoch = {max_epochs}); raise --steps or lower "
                       "train.steps_per_epoch")
    return keras_tuner.oracles.HyperbandOracle(max_epochs=max_epochs, factor=3, **common)


def _settings(out, settings, resume_ok):
    """Write ``tune.json``, or check an existing one asks for the same search."""
    path = Path(out) / SETTINGS
    if path.is_file():
        old = json.loads(path.read_text())
        for key in _SAME:
            if old.get(key) != settings.get(key):
                raise ZooError(f"{out} holds a search with {key} = {old.get(key)!r}, not "
                               f"{settings.get(key)!r}; run the same command to continue it, "
                               "or choose another --out")
        return old
    if not resume_ok and Path(out).exists() and any(Path(out).iterdir()):
        raise ZooError(f"--out {out} is not empty and holds no search ({SETTINGS})")
    Path(out).mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(settings, indent=2))
    return settings


def tune(name, data=None, *, trials=10, algorithm="random", objective=None, direction=None,
         out=None, tiny=False, steps=None, overrides=None, seed=0, eval_files=8, chief=None,
         worker=None, verbose=1):
    """Search a recipe's ``[tune]`` space with keras-tuner.

    Args:
        name: recipe name or ``.toml`` path (its ``[tune]`` table is the space).
        data: ``builtin:NAME`` or a folder (default: the recipe's).
        trials: trials to run (random, bayesian; Hyperband sizes its own brackets).
        algorithm: ``"random"``, ``"bayesian"`` or ``"hyperband"`` (whose largest
            trials train the recipe's ``steps``; smaller ones whole epochs of it).
        objective: a logged Keras metric (default ``val_loss``) or a ``zoo eval``
            metric on the validation files (``mel_distance``,
            ``target_domain_share``, ``conversion.mcd_dtw_to_target``).
        direction: ``"min"`` or ``"max"`` (default: from the metric).
        out: the search folder (default ``tune/<recipe>``); an existing search
            there is continued.
        tiny: the recipe's ``[tiny]`` sizes (tests).
        steps: training steps per trial (default: the recipe's).
        overrides: fixed recipe values for every trial, ``{section: {key: value}}``.
        seed: the oracle's seed.
        eval_files: validation files ``zoo eval`` uses per trial (audio objectives).
        chief: ``"HOST:PORT"``: distributed search; without ``worker`` this process is
            the chief (holds the oracle, runs no trial).
        worker: this process's worker ID (with ``chief``).
        verbose: 0, 1 (progress bars) or 2.

    Returns:
        A :class:`TuneResult`.

    Raises:
        ZooError: one line naming the bad argument, recipe key or ``[tune]`` entry.
    """
    if algorithm not in ALGORITHMS:
        raise ZooError(f"--algorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
    if int(trials) < 1:
        raise ZooError(f"--trials must be at least 1, got {trials}")
    if steps is not None and int(steps) < 1:
        raise ZooError(f"--steps must be positive, got {steps}")
    recipe = registry.load_recipe(name, tiny=tiny, overrides=overrides)
    if data:
        recipe = registry.with_overrides(recipe, {"data": {"source": str(data)}},
                                         label="--data")
    if not recipe["tune"]:
        raise ZooError(f"{recipe['recipe']}: no [tune] table: nothing to search")
    cls = registry.model_class(recipe["model"])
    from zoo.engine import Fitting

    if getattr(cls, "fitting", Fitting.GRADIENT) is not Fitting.GRADIENT:
        raise ZooError(f"{recipe['model']} is not trained by gradient descent: `zoo tune` "
                       "searches training runs")
    space.check(recipe, recipe["tune"], constructor_arguments(cls),
                lambda r, o, label: registry.with_overrides(r, o, label=label))
    has_val = recipe["data"]["val_fraction"] > 0
    goal = resolve_objective(objective, direction, has_val)
    out = Path(out or Path("tune") / Path(str(name)).stem)
    is_worker = worker is not None
    if goal.kind == "history" and not is_worker:
        _check_history_objective(goal, recipe, has_val)
    settings = {"recipe": str(name), "tiny": bool(tiny), "data": recipe["data"]["source"],
                "algorithm": algorithm, "objective": goal.name, "direction": goal.direction,
                "trials": int(trials), "steps": steps, "overrides": overrides or {},
                "seed": int(seed), "eval_files": int(eval_files)}
    _settings(out, settings, resume_ok=is_worker)
    search = Search(recipe, str(name), out, goal, data=data, steps=steps, tiny=tiny,
                    overrides=overrides, eval_files=eval_files, verbose=verbose)
    max_epochs = max(1, search.steps // search.steps_per_epoch)
    with _distributed_env(chief, worker):
        import keras_tuner

        tuner = _tuner_class()(_oracle(algorithm, goal, int(trials), max_epochs, int(seed)),
                               search, directory=str(out), project_name=PROJECT,
                               overwrite=False)
        try:
            tuner.search(verbose=verbose)
        except keras_tuner.errors.FatalError as err:
            raise ZooError(f"zoo tune stopped: {str(err).strip().splitlines()[-1]}") from None
        except RuntimeError as err:  # keras-tuner: too many consecutive failed trials
            last = _last_failure(tuner.oracle) if not is_worker else None
            raise ZooError(f"zoo tune stopped: {str(err).splitlines()[0]}"
                           + (f"; last failure: {last}" if last else "")) from None
    if is_worker:
        return TuneResult(out, goal.name, goal.direction, chief=False)
    rows, best = search.write_report(tuner.oracle)
    return TuneResult(out, goal.name, goal.direction, rows=rows, best_recipe=best)


def _last_failure(oracle):
    failed = [t for t in oracle.trials.values() if t.message]
    if not failed:
        return None
    lines = [ln for ln in failed[-1].message.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else None
