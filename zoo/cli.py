"""The ``zoo`` command. Thin: parse arguments, call the library, print.

User errors (bad files, unknown names, bad options) print one line and exit 2.
"""
import argparse
import inspect
import os
import sys
from pathlib import Path

from zoo.errors import ZooError

DEMO_STEPS = 1500  # about 3 minutes on a 2-core CPU (TensorFlow)


def _cmd_list(args):
    from zoo import registry

    print("models: ", ", ".join(registry.list_models()))
    print("recipes:", ", ".join(registry.list_recipes()))


def _cmd_info(args):
    import json

    from zoo import registry

    path = Path(args.name)
    if path.is_dir() or path.suffix == ".keras":
        model = registry.load_saved(path)
        print(f"{type(model).__name__} from {path}")
        print(json.dumps(model.get_config(), indent=2, default=str))
        if path.is_dir() and (path / "state.json").is_file():
            print("state:", (path / "state.json").read_text().strip())
        _print_bitrate(model)
        return
    recipe = registry.load_recipe(args.name)
    model = registry.build(recipe)
    print(f"{args.name}: {type(model).__name__} ({model.count_params():,} parameters), "
          f"recipe {recipe['recipe']}")
    for section in ("model_config", "data", "train"):
        print(f"[{section}]")
        for key, value in recipe[section].items():
            print(f"  {key} = {value!r}")
    _print_bitrate(model)


def _print_bitrate(model):
    """Code models (``bitrate_report``): bits per second and compression."""
    for line in getattr(model, "bitrate_report", lambda: [])():
        print("bitrate:", line)


def _cmd_train(args):
    from zoo.training.trainer import train

    overrides = _parse_sets(args.set)
    for flag, key in (("source", "source_domain"), ("target", "target_domain")):
        if getattr(args, flag):
            overrides.setdefault("model_config", {})[key] = getattr(args, flag)
    result = train(args.model, args.data, steps=args.steps, epochs=args.epochs,
                   batch_size=args.batch_size, out=args.out, resume=args.resume, tiny=args.tiny,
                   seed=args.seed, loader=args.loader, overrides=overrides,
                   distribute=args.distribute, devices=args.devices,
                   processes=(None if args.coordinator is None else
                              (args.coordinator, args.num_processes, args.process_id)))
    print(f"trained to step {result.step}; run folder: {result.run_dir}")


def _cmd_tune(args):
    from zoo.tuning import tune

    result = tune(args.recipe, args.data, trials=args.trials, algorithm=args.algorithm,
                  objective=args.objective, direction=args.direction, out=args.out,
                  tiny=args.tiny, steps=args.steps, overrides=_parse_sets(args.set),
                  seed=args.seed, eval_files=args.eval_files, chief=args.chief,
                  worker=args.worker, verbose=args.verbose)
    if not result.chief:
        print(f"worker {args.worker}: no trial left; the chief writes the results")
        return
    done = [r for r in result.rows if r["score"] is not None]
    print(f"{len(done)} of {len(result.rows)} trials completed; results: "
          f"{result.out / 'results.md'}")
    if done:
        best = done[0]
        shown = ", ".join(f"{k}={v!r}" for k, v in best["values"].items())
        print(f"best: trial {best['trial']}, {result.objective} = {best['score']:.5g} ({shown})")
        print(f"best recipe: {result.best_recipe}  (zoo train {result.best_recipe})")


def _parse_sets(items):
    """``["train.learning_rate=3e-4", ...]`` -> ``{"train": {"learning_rate": 0.0003}}``
    (keys and values are checked against the recipe schema when the recipe is read)."""
    from zoo.recipe import parse_assignment

    out = {}
    for item in items or ():
        section, name, value = parse_assignment(item)
        out.setdefault(section, {})[name] = value
    return out


def _load_wave(path, model):
    from zoo.data import load_audio

    return load_audio(path, model.sample_rate)


def _cmd_reconstruct(args):
    import keras

    from zoo.engine import Capability
    from zoo.registry import load_for_use

    _check_block_seconds(args)
    # A bare model name reconstructs with its shipped weights (vae -> instruments).
    model, _ = load_for_use(args.model, args.weights)
    model.require(Capability.RECONSTRUCT)

    def reconstruct(wave):
        return keras.ops.convert_to_numpy(model.reconstruct(wave[None]))[0]

    _process_file(args, reconstruct, model.sample_rate, model.sample_rate)


def _check_block_seconds(args):
    if not args.block_seconds >= 0.01:  # also NaN
        raise ZooError(f"--block-seconds must be at least 0.01, got {args.block_seconds}")


def _process_file(args, process, sample_rate, output_rate):
    """Stream ``args.input`` through ``process`` into ``args.output`` in blocks of
    ``args.block_seconds`` (constant memory for any length)."""
    from zoo.data.streaming import process_file

    seconds = process_file(args.input, args.output, process, sample_rate,
                           output_rate=output_rate, block_seconds=args.block_seconds,
                           progress=sys.stderr.isatty())
    print(f"wrote {args.output} ({seconds:.2f} s at {output_rate} Hz)")


def _cmd_convert(args):
    from zoo.engine import Capability
    from zoo.registry import load_for_use

    _check_block_seconds(args)
    # A bare model name converts with its shipped weights (an untrained model cannot).
    model, _ = load_for_use(args.model, args.weights)
    model.require(Capability.CONVERT, "convert audio between domains")
    options = {k: v for k, v in (("source", args.source), ("target", args.target),
                                  ("conversion", args.conversion)) if v}
    if hasattr(model, "conversion_pair"):  # bad domain names fail before any decoding
        model.conversion_pair(options.get("source"), options.get("target"))

    def convert(wave):
        return model.convert(wave, **options)

    _process_file(args, convert, model.sample_rate, args.sample_rate or model.sample_rate)


def _cmd_sample(args):
    import keras
    import numpy as np

    from zoo.data import write_audio
    from zoo.engine import Capability
    from zoo.registry import load_for_use

    model, _ = load_for_use(args.model, args.weights)  # a bare name: its shipped weights
    model.require(Capability.SAMPLE, "sample from a prior")
    n = int(args.seconds * model.sample_rate)
    options = {}
    if args.temperature is not None:
        if "temperature" not in inspect.signature(model.sample).parameters:
            raise ZooError(f"--temperature: {type(model).__name__} samples without one "
                           "(autoregressive priors such as pixelcnn take it)")
        if not args.temperature > 0:
            raise ZooError(f"--temperature must be positive, got {args.temperature}")
        options["temperature"] = args.temperature
    if args.domain is not None:
        if not model.supports(Capability.DOMAIN_LABELS):
            raise ZooError(f"--domain: {type(model).__name__} is not conditioned on domains "
                           "(train pixelcnn with model_config.domains)")
        model.index(args.domain)  # a one-line error naming the known domains
        options["domain"] = args.domain
    if args.compile_steps is not None:
        sampler = getattr(model, "sample_codes", None)
        if sampler is None or "compile_steps" not in inspect.signature(sampler).parameters:
            raise ZooError(f"--compile-steps: {type(model).__name__} has no step-by-step "
                           "sampler to compile (the pixelcnn and wavenet priors have)")
        options["compile_steps"] = args.compile_steps
    waves = keras.ops.convert_to_numpy(model.sample(args.num, n, seed=args.seed, **options))
    out = Path(args.output)
    for i, wave in enumerate(waves):
        target = out if args.num == 1 else out.with_name(f"{out.stem}_{i}{out.suffix}")
        write_audio(target, np.clip(wave, -1.0, 1.0), model.sample_rate)
        print(f"wrote {target}")


def _cmd_interpolate(args):
    import keras
    import numpy as np

    import zoo
    from zoo.data import write_audio

    from zoo.engine import Capability

    model = zoo.load(args.model, warm_up_block=None)  # offline: no stream to compile
    model.require(Capability.INTERPOLATE)
    a, b = _load_wave(args.input_a, model), _load_wave(args.input_b, model)
    n = min(len(a), len(b))
    waves = keras.ops.convert_to_numpy(model.interpolate(a[:n], b[:n], args.steps))
    for i, wave in enumerate(waves):
        target = Path(args.out_dir) / f"interpolation_{i}.wav"
        write_audio(target, np.clip(wave, -1.0, 1.0), model.sample_rate)
    print(f"wrote {len(waves)} files to {args.out_dir}")


def _cmd_export(args):
    from zoo import registry
    from zoo.export import export

    if args.fidelity is None:
        export(args.run, args.to)
        return
    from zoo.engine import Capability

    model = registry.load_saved(args.run)
    model.require(Capability.LATENT_PCA, "keep latent dimensions by --fidelity (no latent PCA)")
    if not 0.0 < args.fidelity <= 1.0:
        raise ZooError(f"--fidelity must be in (0, 1], got {args.fidelity}")
    model.latent_fidelity = float(args.fidelity)
    run = Path(args.run)
    export(model, args.to, metadata={"run": str(run), "latent_fidelity": args.fidelity,
                                     "latent_dims": model.latent_dims})


def _cmd_latents(args):
    import numpy as np

    from zoo import registry
    from zoo.audio.plots import save_fidelity_curve
    from zoo.data import load_dataset

    run = Path(args.run)
    from zoo.engine import Capability

    model = registry.load_saved(run)
    model.require(Capability.LATENT_PCA, "report latent fidelity (no latent PCA)")
    source, length = args.data, args.clip_length
    if run.is_dir() and (run / registry.RUN_RECIPE).is_file():
        data_cfg = registry.run_recipe(run)["data"]
        source = source or data_cfg["source"]
        length = length or int(data_cfg.get("crop_length", 0)) or None
    if source is None:
        report = model.fidelity_report(args.fidelity)
        where = "the PCA stored in the model"
    else:
        ds = load_dataset(source, model.sample_rate, length or 16 * model.compression,
                          progress=False)
        clips = ds.clips(args.clips, split="val", seed=1)
        _, _, var = model.latent_pca(clips)
        report = model.fidelity_report(args.fidelity, variance=var)
        where = f"{len(clips)} validation clips of {source}"
    ratio = report["ratio"]
    print(f"latent PCA of posterior means ({where}); {len(ratio)} dims")
    print("dims  cumulative explained variance")
    for i, r in enumerate(ratio, 1):
        print(f"{i:4d}  {r:.4f}  {'#' * int(round(40 * r))}")
    for f, r in report["dims"].items():
        print(f"fidelity {f}: {r} dims")
    out = Path(args.out) if args.out else (run if run.is_dir() else run.parent) / \
        "latent_fidelity.png"
    save_fidelity_curve(out, ratio, report["dims"], title=f"latent fidelity: {run.name}")
    print(f"wrote {out}")
    return np.asarray(ratio)


def _cmd_demo(args):
    import time

    from zoo.export import export
    from zoo.training.callbacks import write_examples
    from zoo.training.trainer import train

    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise ZooError(f"{out} is not empty; pass --out to choose another folder")
    start = time.time()
    print(f"zoo demo: training the spectrogram VAE on builtin:timbre for {args.steps} steps "
          f"(backend {os.environ.get('KERAS_BACKEND', 'tensorflow')})")
    result = train("vae", steps=args.steps, out=out / "run", verbose=args.verbose)
    from zoo.data import load_dataset

    recipe = result.model
    ds = load_dataset("builtin:timbre", recipe.sample_rate, 24000, progress=False)
    examples = write_examples(result.model, ds.clips(4, seed=1), recipe.sample_rate,
                              out / "examples")
    export(result.run_dir, out / "saved_model", verbose=False)
    converted = _demo_conversion(out / "conversion")
    print(f"\ndone in {time.time() - start:.0f} s")
    print(f"  run (checkpoints, TensorBoard logs, per-epoch samples): {result.run_dir}")
    print(f"  audio examples and spectrogram PNGs: {examples}")
    print(f"  SavedModel (forward/encode/decode on raw waveforms): {out / 'saved_model'}")
    if converted:
        print(f"  TraVeLGAN brass -> reed with the shipped weights (audio + PNG): {converted}")


def _demo_conversion(folder):
    """Convert a held-out built-in brass melody with the shipped TraVeLGAN weights."""
    import keras

    import zoo
    from zoo.audio.plots import save_spectrograms
    from zoo.data import load_dataset, write_audio

    try:
        # the weights trained on this built-in set (the default is real instruments)
        model = zoo.load("travelgan", weights="timbre")
    except ZooError:
        return None  # weights not shipped in this install
    ds = load_dataset("builtin:timbre", model.sample_rate, 16000, progress=False)
    name = ds.files("val", domain="brass")[0]
    source = ds.waveform(name)
    target = ds.waveform(name.replace("brass", "reed", 1))
    converted = keras.ops.convert_to_numpy(model.convert(source))
    for label, wave in (("brass_input", source), ("converted_to_reed", converted),
                        ("true_reed", target)):
        write_audio(folder / f"{label}.wav", wave, model.sample_rate)
    save_spectrograms(folder / "spectrogram.png", {"brass input": source,
                      "converted to reed": converted, "true reed rendering": target},
                      model.sample_rate)
    return folder


FEATURES = {"random": {}, "multiscale": {"widths": [3, 11, 31]}}


def _cmd_stylize(args):
    import time

    import zoo
    from zoo.audio.plots import save_spectrograms
    from zoo.data import write_audio
    from zoo.engine import Capability

    overrides = dict(FEATURES[args.features])
    if args.filters:
        overrides["filters"] = args.filters
    if overrides and Path(args.model).suffix == ".keras":
        raise ZooError("--features/--filters choose a recipe's extractor; a .keras model "
                       "keeps its own")
    model = zoo.load(args.model, warm_up_block=None, **overrides)
    model.require(Capability.STYLIZE, "stylize audio")
    feature_model = None
    if args.feature_model and args.classifier:
        raise ZooError("stylize: give --feature-model or --classifier, not both")
    if args.feature_model:
        from zoo import registry

        feature_model = registry.load_saved(args.feature_model)
        feature_model.require(Capability.FEATURE_MAPS, "provide features for style transfer")
    elif args.classifier:
        from zoo.data import load_dataset
        from zoo.eval.classifier import domain_classifier

        ds = load_dataset(args.classifier, model.sample_rate, model.n_fft, progress=True)
        feature_model = domain_classifier(ds)  # trained once per dataset, then cached
    style = _load_wave(args.style, model)
    content = None if args.content == "-" else _load_wave(args.content, model)
    start = time.time()
    try:
        result = model.stylize(content, style, content_weight=args.content_weight,
                               style_weight=args.style_weight, iterations=args.iterations,
                               optimizer=args.optimizer, init=args.init, phase=args.phase,
                               seconds=args.seconds, feature_model=feature_model,
                               progress=True)
    except ValueError as err:
        raise ZooError(f"stylize: {err}") from None
    write_audio(args.output, result.audio, model.sample_rate)
    png = Path(args.png) if args.png else Path(args.output).with_suffix(".png")
    panels = {"style": style, "result": result.audio}
    if content is not None:
        panels = {"content": content, **panels}
    save_spectrograms(png, panels, model.sample_rate)
    first, last = result.style_distance
    print(f"wrote {args.output} ({len(result.audio) / model.sample_rate:.2f} s) and {png} in "
          f"{time.time() - start:.1f} s; style distance {first:.4g} -> {last:.4g} "
          f"({first / max(last, 1e-30):.1f}x lower)")


def _cmd_sfvae_fit(args):
    from zoo import registry
    from zoo.engine import Capability
    from zoo.files import atomic_save_model, run_model_file
    from zoo.models.sfvae import SUBSPACE_REPORT, subspace_table, write_subspace_report

    try:
        path = run_model_file(Path(args.run))
    except FileNotFoundError as err:
        raise ZooError(str(err)) from None
    model = registry.load_saved(path)
    model.require(Capability.EDIT, "learn factor subspaces")
    report = model.fit_subspaces(args.labelled, factors=args.factors,
                                 variance_retained=args.variance, progress=True)
    print(subspace_table(report))
    out = Path(args.out) if args.out else path  # the file it was loaded from
    atomic_save_model(model, out)
    write_subspace_report(out.with_name(SUBSPACE_REPORT), report)
    print(f"wrote {out} and {out.with_name(SUBSPACE_REPORT)}")


def _factor_target(text):
    """A ``zoo edit`` factor value: a number, a shift (+3st, -10%) or a file of per-frame
    values (.npy, or text with one value per line)."""
    import numpy as np

    path = Path(text)
    if path.suffix in (".npy", ".txt", ".csv") and path.is_file():
        try:
            return np.load(path) if path.suffix == ".npy" else np.loadtxt(path, delimiter=",")
        except (OSError, ValueError) as err:
            raise ZooError(f"{path}: cannot read a per-frame trajectory ({err})") from None
    return text


def _cmd_edit(args):
    import numpy as np

    from zoo.audio.plots import save_spectrograms
    from zoo.data import write_audio
    from zoo.engine import Capability
    from zoo.registry import load_for_use

    model, _ = load_for_use(args.run)  # a bare "sfvae" edits with the shipped weights
    model.require(Capability.EDIT, "edit pitch or formants")
    wave = _load_wave(args.input, model)
    targets = {name: _factor_target(value) for name, value in
               (("f0", args.f0), ("F1", args.f1), ("F2", args.f2), ("F3", args.f3))
               if value is not None}
    out = model.edit(wave, whisper=args.whisper, phase=args.phase, **targets)
    write_audio(args.output, np.clip(out, -1.0, 1.0), model.sample_rate)
    png = Path(args.output).with_suffix(".png")
    save_spectrograms(png, {"input": wave, "edited": out}, model.sample_rate)
    print(f"wrote {args.output} ({len(out) / model.sample_rate:.2f} s) and {png}")


def _cmd_eval(args):
    from zoo.eval.runner import evaluate, format_table

    result = evaluate(args.run, args.data, pairs=args.pairs, split=args.split,
                      max_files=args.max_files, out=args.out, weights=args.weights,
                      source_domain=args.source, target_domain=args.target)
    print(f"{result['model']} on {result['data']} ({result['split']} split): "
          f"{', '.join(result['tasks'])}")
    print(format_table(result))
    for note in result["notes"]:
        print(f"note: {note}")
    print(f"wrote {result['outputs']['json']} and {result['outputs']['report']}")


def _add_eval_parser(sub):
    p = sub.add_parser("eval", help="measure a model on a dataset: metrics table, eval.json, "
                       "report.md with spectrograms and audio examples")
    p.add_argument("run", help="run folder, .keras file or registry name (shipped weights)")
    p.add_argument("--weights", help="shipped weights for a registry name (default: the "
                   "model's shipped default, e.g. travelgan -> instruments)")
    p.add_argument("--data", required=True, help="builtin:NAME (timbre, ensemble, vowels, "
                   "voices, speech) | a folder of audio (one sub-folder per domain for "
                   "conversion)")
    p.add_argument("--pairs", action="store_true", help="conversion: the target-domain file "
                   "of the same name is the parallel ground truth")
    p.add_argument("--split", default="val", choices=["val", "train", "all"])
    p.add_argument("--max-files", type=int, help="files passed through the model per task")
    p.add_argument("--out", help="output folder (default <run>/eval, else ./eval_<name>)")
    p.add_argument("--source", help="conversion source domain (default: the first sub-folder)")
    p.add_argument("--target", help="conversion target domain (default: the second)")
    p.set_defaults(func=_cmd_eval)


def build_parser():
    parser = argparse.ArgumentParser(prog="zoo", description="Keras 3 model zoo for generative "
                                     "audio (set KERAS_BACKEND=tensorflow|jax|torch).")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="registered models and shipped recipes")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("info", help="a model's recipe and size, or a saved run's config")
    p.add_argument("name", help="model/recipe name, run folder or .keras file")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("train", help="train a model from its recipe")
    p.add_argument("model", nargs="?", help="model or recipe name, or a .toml recipe "
                   "(not needed with --resume)")
    p.add_argument("--data", help="builtin:NAME (timbre, ensemble, vowels, voices, speech) "
                   "| a folder of audio")
    p.add_argument("--steps", type=int, help="total training steps")
    p.add_argument("--epochs", type=int, help="total epochs (of the recipe's steps_per_epoch)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--out", help="run folder (default runs/<name>-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--tiny", action="store_true", help="the recipe's tiny settings (smoke test)")
    p.add_argument("--seed", type=int, help="data seed")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                   help="override a recipe value, e.g. --set train.learning_rate=3e-4 "
                   "--set model_config.latent_dim=8 (repeatable)")
    p.add_argument("--loader", choices=["auto", "tf", "py"], default="auto",
                   help="tf.data or keras PyDataset batching")
    p.add_argument("--source", help="conversion models: the source domain folder "
                   "(model_config.source_domain)")
    p.add_argument("--target", help="conversion models: the target domain folder "
                   "(model_config.target_domain)")
    p.add_argument("--distribute", choices=["data"], help="data-parallel over every local "
                   "device (jax: keras.distribution.DataParallel; tensorflow: "
                   "MirroredStrategy, or MultiWorkerMirroredStrategy across the processes "
                   "a TF_CONFIG names); the recipe's batch is the global batch")
    p.add_argument("--devices", type=int, help="with --distribute: split the CPU into N "
                   "devices (to try it without accelerators)")
    p.add_argument("--coordinator", metavar="HOST:PORT", help="with --distribute on jax: "
                   "several processes / machines (jax.distributed); run the same command in "
                   "each with its --process-id")
    p.add_argument("--num-processes", type=int, help="with --coordinator")
    p.add_argument("--process-id", type=int, help="with --coordinator: 0 .. N-1 (0 writes "
                   "the run folder)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("tune", help="keras-tuner search over a recipe's [tune] space; every "
                       "trial a run folder; results table + best recipe")
    p.add_argument("recipe", help="recipe name or .toml (its [tune] table is the space)")
    p.add_argument("--data", help="builtin:NAME or a folder of audio (default: the recipe's)")
    p.add_argument("--trials", type=int, default=10, help="trials (random, bayesian)")
    p.add_argument("--algorithm", choices=["random", "bayesian", "hyperband"],
                   default="random")
    p.add_argument("--objective", help="a logged metric (default val_loss) or a zoo eval "
                   "metric on the validation files (mel_distance, target_domain_share, ...)")
    p.add_argument("--direction", choices=["min", "max"], help="default: from the metric")
    p.add_argument("--out", help="search folder (default tune/<recipe>); an existing search "
                   "there is continued")
    p.add_argument("--steps", type=int, help="training steps per trial (default: the "
                   "recipe's; Hyperband's largest trials)")
    p.add_argument("--tiny", action="store_true", help="the recipe's tiny settings")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                   help="a fixed recipe value for every trial (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="the search's seed")
    p.add_argument("--eval-files", type=int, default=8,
                   help="validation files zoo eval uses per trial (audio objectives)")
    p.add_argument("--chief", metavar="HOST:PORT", help="distributed search: the chief's "
                   "address (this process is the chief unless --worker is given)")
    p.add_argument("--worker", metavar="ID", help="run trials for the chief at --chief; "
                   "restarted with the same ID a worker continues its interrupted trial")
    p.add_argument("--verbose", type=int, choices=[0, 1, 2], default=1)
    p.set_defaults(func=_cmd_tune)

    p = sub.add_parser("reconstruct", help="encode and decode an audio file")
    p.add_argument("model", help="run folder, .keras file or registry name")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--weights", help="shipped weights for a registry name (default: the "
                   "model's shipped default, e.g. vae -> instruments)")
    p.add_argument("--block-seconds", type=float, default=60.0,
                   help="process long files in blocks of this many seconds, crossfaded "
                   "over 2 s (memory does not grow with the file's length)")
    p.set_defaults(func=_cmd_reconstruct)

    p = sub.add_parser("convert", help="convert an audio file to the target domain (any length)")
    p.add_argument("model", help="run folder, .keras file or registry name")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--sample-rate", type=int, help="resample the output to this rate")
    p.add_argument("--weights", help="shipped weights for a registry name (default: the "
                   "model's shipped default, e.g. travelgan -> instruments)")
    p.add_argument("--source", help="the input's domain (cvae, gmm_vc, unit, unit_avb; "
                   "default: the model's source, A)")
    p.add_argument("--target", "--to", dest="target", help="the domain to convert to "
                   "(cvae, unit, unit_avb: e.g. --to A converts B -> A; default: B)")
    p.add_argument("--conversion", choices=["swap", "arithmetic"],
                   help="cvae: label swap or the latent-arithmetic baseline")
    p.add_argument("--block-seconds", type=float, default=60.0,
                   help="process long files in blocks of this many seconds, crossfaded "
                   "over 2 s (memory does not grow with the file's length)")
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser("sample", help="draw audio from a VAE's prior or a trained pixelcnn")
    p.add_argument("model", help="run folder, .keras file or registry name")
    p.add_argument("--weights", help="shipped weights for a registry name (default: the "
                   "model's shipped default, e.g. vae -> instruments)")
    p.add_argument("output", help="output .wav (numbered when --num > 1)")
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--num", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, help="autoregressive priors: divide the "
                   "logits by it (< 1: safer, > 1: more varied)")
    p.add_argument("--domain", help="a domain-conditioned prior: the domain to sample "
                   "(default: its first)")
    p.add_argument("--compile-steps", action=argparse.BooleanOptionalAction, default=None,
                   help="pixelcnn and wavenet on torch: compile the sampling step with "
                   "torch.compile (about 11-17 s once, then about 4x (pixelcnn) or 6-8x "
                   "(wavenet) faster per code; default: only for draws long enough to "
                   "repay it, 16384 (pixelcnn) or 32768 (wavenet) codes; JAX and TF always "
                   "compile the whole loop)")
    p.set_defaults(func=_cmd_sample)

    p = sub.add_parser("interpolate", help="decode points between the latents of two files")
    p.add_argument("model")
    p.add_argument("input_a")
    p.add_argument("input_b")
    p.add_argument("out_dir")
    p.add_argument("--steps", type=int, default=5)
    p.set_defaults(func=_cmd_interpolate)

    p = sub.add_parser("export", help="write a TF SavedModel + .keras + metadata.json")
    p.add_argument("run", help="run folder or .keras file")
    p.add_argument("--to", required=True, help="destination folder, e.g. saved_models/NAME")
    p.add_argument("--fidelity", type=float, help="rave: keep the latent PCA dimensions "
                   "reaching this fidelity (e.g. 0.95) in the exported encode/decode")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("latents", aliases=["rave-latents"],
                       help="latent PCA fidelity curve of a rave run (dims per fidelity)")
    p.add_argument("run", help="run folder or .keras file")
    p.add_argument("--data", help="audio to analyse (default: the run's validation data)")
    p.add_argument("--clips", type=int, default=64, help="validation clips to encode")
    p.add_argument("--clip-length", type=int, help="samples per clip (default: the run's "
                   "crop length, else 16 latent frames)")
    p.add_argument("--fidelity", type=float, nargs="+", default=[0.9, 0.95, 0.99])
    p.add_argument("--out", help="PNG path (default RUN/latent_fidelity.png)")
    p.set_defaults(func=_cmd_latents)

    p = sub.add_parser("demo", help="train a small VAE for a few minutes, write audio, PNGs "
                       "and a SavedModel")
    p.add_argument("--out", default="zoo_demo")
    p.add_argument("--steps", type=int, default=DEMO_STEPS)
    p.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2])
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("stylize", help="render a content clip with a style clip's texture "
                       "(Gatys / Ulyanov-Lebedev style transfer); content '-' = texture synthesis")
    p.add_argument("content", help="content audio file, or - for texture synthesis")
    p.add_argument("style", help="style audio file")
    p.add_argument("output", help="output .wav (a PNG of the spectrograms goes beside it)")
    p.add_argument("--model", default="style_transfer", help="recipe, preset or .keras file")
    p.add_argument("--content-weight", type=float, help="weight of the content loss "
                   "(recipe: 1e-2); larger keeps more of the content")
    p.add_argument("--style-weight", type=float, help="weight of the Gram (style) loss")
    p.add_argument("--iterations", type=int, help="optimiser iterations (recipe: 300)")
    p.add_argument("--features", choices=sorted(FEATURES), default="random",
                   help="random: one random conv of width 11; multiscale: widths 3, 11, 31")
    p.add_argument("--filters", type=int, help="random filters per layer (recipe: 4096)")
    p.add_argument("--feature-model", help="a trained run / .keras whose learned feature maps "
                   "replace the random ones (e.g. a vae run)")
    p.add_argument("--classifier", metavar="DATASET", help="optimise the log-mel statistics "
                   "the evaluation domain classifier of DATASET's domains (sub-folders) "
                   "looks at, instead of random features (trained once, then cached)")
    p.add_argument("--optimizer", choices=["lbfgs", "adam"])
    p.add_argument("--init", choices=["noise", "content"])
    p.add_argument("--phase", choices=["random", "content"], help="Griffin-Lim's start")
    p.add_argument("--seconds", type=float, help="texture synthesis: output duration")
    p.add_argument("--png", help="spectrogram PNG path (default: output with .png)")
    p.set_defaults(func=_cmd_stylize)

    p = sub.add_parser("sfvae-fit", help="learn the pitch / formant subspaces of a trained "
                       "sfvae from labelled audio (PCA + piecewise-linear regression)")
    p.add_argument("run", help="sfvae run folder or .keras file")
    p.add_argument("--labelled", default="builtin:vowels", help="builtin:vowels, or a folder "
                   "of audio with labels.csv (file, f0, F1, F2, F3[, sweep])")
    p.add_argument("--factors", nargs="+", help="factors to fit (default: all)")
    p.add_argument("--variance", type=float, nargs="+", help="share of each factor's "
                   "variance its subspace keeps: one for all, or one per factor (recipe: "
                   "0.99 0.8 0.8 0.8)")
    p.add_argument("--out", help="where to save (default: the run's model.keras)")
    p.set_defaults(func=_cmd_sfvae_fit)

    p = sub.add_parser("edit", help="move the pitch / formants of a file along a trained "
                       "sfvae's subspaces, or whisper it")
    p.add_argument("run", help="sfvae run folder or .keras file (subspaces fitted), or "
                   "sfvae for the shipped weights")
    p.add_argument("input", help="input audio")
    p.add_argument("output", help="output .wav (a PNG of both spectrograms goes beside it)")
    for flag, what in (("--f0", "Hz"), ("--f1", "F1 Hz"), ("--f2", "F2 Hz"), ("--f3", "F3 Hz")):
        p.add_argument(flag, help=f"target {what}: a value (220), a shift (+3st, -10%%) or a "
                       ".npy / .txt file of per-frame values")
    p.add_argument("--whisper", action="store_true", help="remove the f0 subspace")
    p.add_argument("--phase", choices=["random", "zeros", "input"], default="random",
                   help="Griffin-Lim's start (input: the input's phase)")
    p.set_defaults(func=_cmd_edit)

    _add_eval_parser(sub)
    return parser


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ZooError as err:
        print(f"zoo {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"zoo {args.command}: interrupted (checkpoints written so far are kept)",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
