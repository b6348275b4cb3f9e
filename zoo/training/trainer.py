"""``zoo train``: recipe -> data -> model -> ``fit`` with checkpoints, logs and samples.

A run folder holds::

    recipe.json        the resolved recipe (what --resume trains with)
    checkpoint.keras   latest checkpoint: model + optimizer state (atomic writes)
    state.json         global step / epoch of that checkpoint
    model.keras        the final model
    history.csv        per-epoch metrics;  logs/  TensorBoard
    samples/epoch_NNN/ audio examples (WAV) and spectrogram PNGs

Batches are indexed by the global step, so a resumed run sees exactly the batches
an uninterrupted run would have seen.
"""
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import keras

from zoo import registry
from zoo.engine import Capability, Fitting, TrainingContext, backend
from zoo.errors import TrainingDiverged, ZooError
from zoo.files import atomic_save_model, atomic_write_text, remove_temporaries
from zoo.training.callbacks import AudioSamples, HistoryCSV, RunCheckpoint
from zoo.training.checkpoint import read_state


@dataclass
class TrainResult:
    run_dir: Path
    model: keras.Model
    history: dict
    step: int


def compile_model(model, train):
    """Compile ``model`` from a recipe's ``[train]`` section (the model's own
    ``compile_from_recipe``: Adam, or one optimizer per objective)."""
    try:
        model.compile_from_recipe(train)
    except ValueError as err:
        raise ZooError(f"{type(model).__name__}: cannot compile from [train]: {err}") from None


def recipe_dataset(recipe, progress=False):
    """The :class:`~zoo.data.AudioDataset` a recipe's ``[data]`` section describes (source,
    crop_length, val_fraction, seed) at its model's sample rate: what :func:`train` reads."""
    from zoo.data import load_dataset

    data_cfg = recipe["data"]
    return load_dataset(data_cfg["source"], sample_rate=recipe["model_config"].get(
        "sample_rate", 16000), crop_length=data_cfg["crop_length"],
        val_fraction=data_cfg["val_fraction"], seed=data_cfg["seed"], progress=progress)


def is_paired(model):
    """Whether a model trains on one crop batch per domain (translation models)."""
    return model.supports(Capability.PAIRED_DOMAINS)


def _segments(start, total, steps_per_epoch):
    """Split global steps [start, total) into ``fit`` calls: (start, steps, epoch0, epoch1, spe).

    Whole epochs are grouped in one call; a partial epoch (resuming mid-epoch, or
    a total that is not a whole number of epochs) gets a call of its own.
    """
    segments, step = [], start
    while step < total:
        epoch, offset = divmod(step, steps_per_epoch)
        if offset == 0 and total - step >= steps_per_epoch:
            n_epochs = (total - step) // steps_per_epoch
            segments.append((step, n_epochs * steps_per_epoch, epoch, epoch + n_epochs,
                             steps_per_epoch))
            step += n_epochs * steps_per_epoch
        else:
            n = min(steps_per_epoch - offset, total - step)
            segments.append((step, n, epoch, epoch + 1, n))
            step += n
    return segments


def _staged_segments(model, start, total, steps_per_epoch):
    """:func:`_segments`, also split at the model's stage boundaries (e.g. RAVE's
    switch to adversarial training), where ``fit`` must stop so the model can recompile."""
    staged = model.supports(Capability.STAGES)
    bounds = sorted({int(b) for b in (model.stage_boundaries() if staged else ())
                     if start < int(b) < total})
    edges = [start, *bounds, total]
    return [seg for a, b in zip(edges, edges[1:]) for seg in _segments(a, b, steps_per_epoch)]


def _enter_stage(model, step, train_cfg, run_dir, verbose):
    """Let a staged model switch stage (and recompile) before global ``step``; the
    switch is printed and appended to ``<run>/stages.log``."""
    if not model.supports(Capability.STAGES) or not model.prepare_stage(step, train_cfg):
        return
    line = f"step {step}: entering stage {model.stage} ({model.stage_description()})"
    if verbose:
        print(f"[zoo] {line}", flush=True)
    with open(Path(run_dir) / "stages.log", "a") as f:
        f.write(line + "\n")


def _default_run_dir(name):
    return Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


DISTRIBUTE = ("data",)


def train(name=None, data=None, *, distribute=None, devices=None, processes=None, **kwargs):
    """Train a model from its recipe (or resume a run).

    Args:
        name: registry model name, recipe name or ``.toml`` path (ignored when resuming).
        data: ``builtin:NAME`` or a folder (default: the recipe's).
        steps / epochs: total training length (global steps; ``epochs`` counts the
            recipe's ``steps_per_epoch``). Default: the recipe's ``steps``.
        batch_size: overrides the recipe.
        out: run folder (default ``runs/<name>-<time>``).
        resume: continue the run in ``out`` from its last checkpoint, optimizer
            state and data position included.
        tiny: the recipe's ``[tiny]`` overrides (seconds-long runs).
        seed: data seed (default: the recipe's).
        callbacks: extra Keras callbacks.
        verbose: Keras progress bar (1), one line per epoch (2) or silent (0).
        loader: ``"auto"``, ``"tf"`` (tf.data) or ``"py"`` (``keras.utils.PyDataset``).
        samples: write audio + PNG examples each epoch.
        overrides: recipe values to replace, by section, e.g.
            ``{"train": {"learning_rate": 3e-4}, "model_config": {"latent_dim": 8}}``
            (``zoo train --set train.learning_rate=3e-4``). When resuming, only
            ``train`` and ``data`` values may change.
        distribute: ``"data"``: data-parallel over every local device (JAX:
            ``keras.distribution.DataParallel``; TensorFlow:
            ``tf.distribute.MirroredStrategy``, or ``MultiWorkerMirroredStrategy``
            when ``TF_CONFIG`` names several worker processes). The global batch
            stays the recipe's, split evenly across devices (and processes, each
            feeding its own rows); checkpoints and resume are as on one device;
            process 0 writes the run folder.
        devices: with ``distribute``, split the host CPU into this many devices (to
            try data parallelism without accelerators).
        processes: with ``distribute`` on JAX, join a multi-process run first:
            ``(coordinator "HOST:PORT", num_processes, process_id)``; every process
            runs the same command and feeds its share of each global batch; process 0
            writes the run folder (all need the same data, and the checkpoint to resume).

    Returns:
        A :class:`TrainResult`.

    Raises:
        TrainingDiverged: the loss became NaN/Inf (the last good checkpoint is kept).
    """
    if distribute is None:
        if devices is not None or processes is not None:
            raise ZooError(f"--{'devices' if devices is not None else 'coordinator'} needs "
                           "--distribute data")
        return _train(name, data, **kwargs)
    if distribute not in DISTRIBUTE:
        raise ZooError(f"--distribute must be one of {', '.join(DISTRIBUTE)}, got {distribute!r}")
    if devices is not None and int(devices) < 1:
        raise ZooError(f"--devices must be at least 1, got {devices}")
    coordinator, num_processes, process_id = processes or (None, None, None)
    engine = backend.current()
    with engine.data_parallel(devices, coordinator, num_processes, process_id) as replicas:
        return _train(name, data, replicas=replicas, processes=engine.process_layout(),
                      **kwargs)


def _train(name=None, data=None, *, steps=None, epochs=None, batch_size=None, out=None,
           resume=False, tiny=False, seed=None, callbacks=(), verbose=1, loader="auto",
           samples=True, overrides=None, replicas=1, processes=(0, 1)):
    if resume:
        if out is None:
            raise ZooError("--resume needs the run folder (--out DIR)")
        run_dir = Path(out)
        if not (run_dir / registry.RUN_CHECKPOINT).is_file():
            raise ZooError(f"{run_dir}: nothing to resume (no checkpoint.keras)")
        remove_temporaries(run_dir)  # half-written files of a killed process
        state = read_state(run_dir) or {}  # missing if a kill fell before its first write
        recipe = registry.run_recipe(run_dir)
        recipe = registry.with_overrides(registry.validate_recipe(recipe), overrides,
                                         sections=("train", "data"))
        model = registry.load_saved(run_dir / registry.RUN_CHECKPOINT)
        start = _checkpoint_step(model, state, run_dir, verbose)
    else:
        if name is None:
            raise ZooError("name a model or recipe to train (see `zoo list`)")
        recipe = registry.load_recipe(name, tiny=tiny, overrides=overrides)
        run_dir = Path(out) if out else _default_run_dir(Path(str(name)).stem)
        if run_dir.exists() and not run_dir.is_dir():
            raise ZooError(f"--out {run_dir} is a file, not a run folder")
        if (run_dir / registry.RUN_CHECKPOINT).exists() or (run_dir / registry.RUN_FINAL).exists():
            raise ZooError(f"{run_dir} already holds a run; use --resume to continue it or "
                           "choose another --out")
        model = None
        start = 0
    cli = {}
    if batch_size is not None:
        cli.setdefault("train", {})["batch_size"] = batch_size
    if data:
        cli.setdefault("data", {})["source"] = str(data)
    if seed is not None:
        cli.setdefault("data", {})["seed"] = seed
    recipe = registry.with_overrides(recipe, cli, label="command-line option")
    train_cfg, data_cfg = recipe["train"], recipe["data"]
    if train_cfg["batch_size"] % replicas:
        raise ZooError(f"train.batch_size = {train_cfg['batch_size']} does not split over "
                       f"{replicas} devices (--distribute data keeps the global batch); use "
                       f"a multiple of {replicas}")
    spe = train_cfg["steps_per_epoch"]
    if steps is not None:
        total = int(steps)
    elif epochs is not None:
        total = int(epochs) * spe
    else:
        total = train_cfg["steps"] or spe
    if total <= 0:
        raise ZooError("--steps/--epochs must be positive")
    train_cfg["steps"] = total
    if model is None:  # bad model options fail here, before any data is decoded
        keras.utils.set_random_seed(data_cfg["seed"])  # reproducible initialisation
        model = registry.build(recipe)
    if resume and start >= total:
        return _already_complete(model, run_dir, start, verbose)
    if model.fitting is Fitting.NONE:
        uses = ", ".join(sorted(map(str, model.active_capabilities())))
        raise ZooError(f"{recipe['model']} has nothing to train: it optimises each input when it "
                       f"is used ({uses}; e.g. `zoo {uses.split(',')[0]} --help`)")

    dataset = recipe_dataset(recipe, progress=verbose > 0)
    data_seed = data_cfg["seed"]
    paired = is_paired(model)
    if paired and len(dataset.domains) < 2:
        raise ZooError(f"{data_cfg['source']}: {recipe['model']} translates between domains and "
                       "needs one sub-folder per domain (found "
                       f"{len(dataset.domains)}: {', '.join(dataset.domains)})")
    run_dir.mkdir(parents=True, exist_ok=True)
    index, count = processes
    shard = (index, count) if count > 1 else None
    engine = backend.current()
    # process 0 writes the run folder; the others write to a scratch folder of their own
    write_dir = run_dir if index == 0 else Path(tempfile.mkdtemp(prefix=f"zoo-process{index}-"))
    atomic_write_text(write_dir / registry.RUN_RECIPE, json.dumps(recipe, indent=2))
    context = TrainingContext(run_dir=write_dir, dataset=dataset, train=train_cfg, seed=data_seed,
                              verbose=verbose)
    if model.fitting is Fitting.CLOSED_FORM:
        return _fit_closed_form(model, context, total)
    if start == 0:
        compile_model(model, train_cfg)

    batch = train_cfg["batch_size"]
    has_val = all(dataset.files("val", domain=d) for d in dataset.domains) if paired else bool(
        dataset.files("val"))
    val_steps = train_cfg["validation_steps"]
    checkpoint = RunCheckpoint(write_dir, start, train_cfg["checkpoint_every"] or spe, spe)
    cbs = [checkpoint, HistoryCSV(write_dir / "history.csv")]
    if _tensorflow_available():
        cbs.append(keras.callbacks.TensorBoard(log_dir=str(write_dir / "logs"), write_graph=False))
    labelled = model.supports(Capability.DOMAIN_LABELS)
    if samples and model.supports(Capability.EXAMPLES) and train_cfg["num_samples"]:
        clips = dataset.clips(train_cfg["num_samples"], seed=data_seed,
                              domain=dataset.domains[0] if paired or labelled else None)
        cbs.append(AudioSamples(write_dir, clips, dataset.sample_rate))
    if labelled:
        model.check_domains(dataset.domains)
    domain_input = "input" if labelled else False
    cbs += list(model.training_callbacks(context)) + list(callbacks)

    history = {}
    for seg_start, seg_steps, epoch0, epoch1, seg_spe in _staged_segments(model, start, total,
                                                                           spe):
        _enter_stage(model, seg_start, train_cfg, write_dir, verbose)
        train_data = dataset.batches(batch, start_step=seg_start, num_steps=seg_steps,
                                     seed=data_seed, loader=loader, paired=paired, shard=shard,
                                     with_domain=domain_input)
        val_data = (dataset.batches(batch, split="val", num_steps=val_steps, seed=data_seed,
                                    loader=loader, paired=paired, shard=shard,
                                    with_domain=domain_input) if has_val else None)
        if count > 1:
            train_data, val_data = engine.distribute_input(train_data), engine.distribute_input(
                val_data)
        hist = model.fit(train_data, initial_epoch=epoch0, epochs=epoch1,
                         steps_per_epoch=seg_spe, validation_data=val_data,
                         validation_steps=val_steps if has_val else None,
                         callbacks=cbs, verbose=verbose, shuffle=False)
        for key, values in hist.history.items():
            history.setdefault(key, []).extend(float(v) for v in values)
        if checkpoint.diverged:
            step, loss = checkpoint.diverged
            last = (f"last good checkpoint: {run_dir / registry.RUN_CHECKPOINT} (step "
                    f"{checkpoint.last_saved})" if checkpoint.last_saved is not None else
                    "no checkpoint had been written yet")
            raise TrainingDiverged(f"training diverged: loss {loss} at step {step}; {last}. "
                                   "Lower the learning rate or check the data.")
    model.sync_state()
    if model.finish_training(context):
        checkpoint.last_saved = None
    if checkpoint.last_saved != total:
        checkpoint.save(history.get("loss", [None])[-1])
    atomic_save_model(model, write_dir / registry.RUN_FINAL)
    if write_dir != run_dir:
        import shutil

        shutil.rmtree(write_dir, ignore_errors=True)
    return TrainResult(run_dir=run_dir, model=model, history=history, step=checkpoint.step)


def _checkpoint_step(model, state, run_dir, verbose):
    """The global step a checkpoint holds: its optimizer's iteration count (written in
    the same file as the weights), which wins over ``state.json`` if a kill fell between
    the two writes (or before the first ``state.json``)."""
    iterations = model.trained_steps()
    if "step" not in state:
        if iterations is None:
            raise ZooError(f"{run_dir}: nothing to resume (no state.json, and the checkpoint "
                           "holds no optimizer step count)")
        if verbose:
            print(f"[zoo] {run_dir}: no state.json (killed while checkpointing); the "
                  f"checkpoint holds step {iterations}", flush=True)
        return iterations
    step = int(state["step"])
    if iterations is not None and iterations != step:
        if verbose:
            print(f"[zoo] {run_dir}: state.json says step {step} but the checkpoint holds "
                  f"step {iterations}; resuming from {iterations}", flush=True)
        return iterations
    return step


def _already_complete(model, run_dir, step, verbose):
    """Resuming a run that reached its last step: write ``model.keras`` if a kill
    prevented it, and say so."""
    final = run_dir / registry.RUN_FINAL
    if not final.is_file():
        atomic_save_model(model, final)
    if verbose:
        print(f"[zoo] {run_dir} is complete (step {step}); {final} is written. Pass a "
              "larger --steps to train on.", flush=True)
    return TrainResult(run_dir=run_dir, model=model, history={}, step=step)


def _fit_closed_form(model, context, total):
    """Fit a ``Fitting.CLOSED_FORM`` model (EM, least squares) in one call; the run
    folder gets the same ``model.keras``, ``checkpoint.keras`` and ``state.json``."""
    from zoo.training.checkpoint import write_state

    started = time.time()
    info = model.fit_closed_form(context.dataset, context) or {}
    atomic_save_model(model, context.run_dir / registry.RUN_CHECKPOINT)
    write_state(context.run_dir, step=total, epoch=1, loss=info.get("loss"),
                seconds=round(time.time() - started, 1))
    atomic_save_model(model, context.run_dir / registry.RUN_FINAL)
    return TrainResult(run_dir=context.run_dir, model=model, history={k: [v] for k, v in
                                                                       info.items()}, step=total)


def _tensorflow_available():
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True
