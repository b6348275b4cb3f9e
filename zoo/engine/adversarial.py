"""The adversarial training engine: several objectives, several optimizers, one ``fit``.

A model subclasses :class:`AdversarialModel` and declares its objectives; the engine
owns ``train_step``/``test_step`` on all three backends (written once per backend in
``zoo/engine/backend/<backend>.py``; this file is backend-neutral). Each :class:`Objective` is

* a loss function ``loss_fn(data, training) -> loss`` or ``(loss, {name: value})``
  written in ``keras.ops`` (the same code serves TensorFlow, JAX and torch);
* the trainable variables it updates (disjoint from every other objective's);
* its own optimizer (``compile(optimizer={name: Optimizer})``);
* a schedule: it runs on the batches where ``step % every`` is in ``at``, ``repeats``
  times on each such batch (fresh forward passes, so fresh noise, each time).

Objectives run in the order they are declared, each seeing the weights the previous
one just updated (TF, torch and JAX alike). The batch counter ``adversarial_step`` is a
non-trainable model variable, so the schedule is part of checkpoints and of JAX's
jitted state; scheduled-out objectives are skipped with a real conditional
(``tf.cond`` on TF; on JAX one jitted step per schedule phase, chosen on the host, see
``make_train_function``; a Python ``if`` on torch), so their optimizer's
``iterations`` and their non-trainable state (spectral-norm vectors, seeds, ...) do not
move, and nothing of them is computed.

The two ways of giving a critic ``k`` updates per generator update:

* consecutive batches (MelGAN-VC, WGAN's ``n_critic``; the default of
  ``compile_from_recipe``): the discriminator runs on every batch and the generator
  on batches ``k-1, 2k-1, ...`` (``every=k, at=k-1``): after 12 batches with ``k=3``
  the discriminator optimizer has made 12 steps and the generator's 4;
* the same batch (``discriminator_steps_mode = "same_batch"``): the discriminator
  makes ``repeats=k`` updates on each batch, then the generator one: 36 and 12.

RAVE v2's "discriminator every 4th batch, generator on the others" is
``{"discriminator": {"every": 4, "at": 0}, "generator": {"every": 4, "at": [1, 2, 3]}}``.

All optimizers live in one ``keras.optimizers.MultiOptimizer`` (keras >= 3.15): its
``variables`` are every sub-optimizer's variables, so they are part of JAX's ``fit``
state, of ``.keras`` checkpoints and of ``--resume``. Each objective applies its
own sub-optimizer (``apply``, or ``stateless_apply`` on JAX); the wrapper's own
``iterations`` counts batches (TensorBoard's step). ``get_compile_config`` /
``compile_from_config`` store the optimizers by objective name and the schedule, so
``keras.saving.load_model`` recompiles and then restores every optimizer's
iterations and moments.

Logs: ``loss`` (the sum of the losses of the objectives that ran on a batch, mean over
batches; a NaN guard), ``<objective>_loss`` (mean over the batches where it ran) and
each objective's declared extra metrics. ``test_step`` evaluates every objective
with ``training=False`` and updates nothing but the trackers (and seeds).
"""
import copy
import re

import keras
from keras import ops

from zoo.engine import backend
from zoo.engine.model import ZooModel
from zoo.engine.optimizers import adam_from_recipe, check_optimizer_keys

_ROLES = ("generator", "discriminator")


class Objective:
    """One loss, the variables it trains, and when.

    Args:
        name: unique name; key of its optimizer and schedule, and its loss is
            logged as ``<name>_loss``.
        variables: what it trains: a ``keras.layers.Layer`` (its trainable
            variables), a string (trainable variables whose path, without the
            model's own name, starts with it: ``"discriminator"`` also selects
            ``discriminator_a/...``), a callable returning variables, or a list
            of any of these.
        loss_fn: ``loss_fn(data, training) -> loss`` or ``(loss, {metric: value})``
            in ``keras.ops``; ``loss`` is a scalar. ``data`` is the batch as the
            data pipeline yields it (a 1-tuple ``(x,)`` is unwrapped to ``x``).
            Random numbers only through ``keras.random.SeedGenerator`` attributes.
        every, at: the objective runs on batches (0-based) with
            ``step % every in at``; ``at`` is an int or a sequence of ints
            (default 0).
        repeats: updates per scheduled batch (on the same batch).
        metrics: names of the extra values ``loss_fn`` returns (logged as given;
            unique across objectives).
        role: ``"generator"`` or ``"discriminator"``: which ``[train]`` recipe keys
            configure it in ``compile_from_recipe``.

    Example (in a subclass)::

        def objectives(self):
            return [Objective("discriminator", "discriminator", self.discriminator_loss,
                              metrics=("real_score", "fake_score"), role="discriminator"),
                    Objective("generator", self.generator, self.generator_loss,
                              every=3, at=2)]
    """

    def __init__(self, name, variables, loss_fn, every=1, at=0, repeats=1, metrics=(),
                 role="generator"):
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"Objective name must be an identifier, got {name!r}")
        if not callable(loss_fn):
            raise TypeError(f"Objective {name!r}: loss_fn must be callable")
        if role not in _ROLES:
            raise ValueError(f"Objective {name!r}: role must be one of {_ROLES}, got {role!r}")
        self.name, self.variables, self.loss_fn, self.role = name, variables, loss_fn, role
        self.metrics = tuple(str(m) for m in metrics)
        self.every, self.at, self.repeats = _check_schedule(name, every, at, repeats)

    def schedule(self):
        return {"every": self.every, "at": list(self.at), "repeats": self.repeats}

    def __repr__(self):
        return (f"Objective({self.name!r}, every={self.every}, at={list(self.at)}, "
                f"repeats={self.repeats}, role={self.role!r})")


def _check_schedule(name, every, at, repeats):
    every, repeats = int(every), int(repeats)
    if every < 1 or repeats < 1:
        raise ValueError(f"Objective {name!r}: every and repeats must be >= 1 "
                         f"(got every={every}, repeats={repeats})")
    at = (int(at),) if isinstance(at, (int, float)) else tuple(sorted({int(r) for r in at}))
    if not at or any(r < 0 or r >= every for r in at):
        raise ValueError(f"Objective {name!r}: at={list(at)} must be non-empty residues in "
                         f"[0, {every})")
    return every, at, repeats


class _Compiled:
    """What ``compile`` resolved (a plain object: Keras does not track its contents)."""

    def __init__(self, objectives, var_lists, optimizers, trackers):
        self.objectives = objectives      # [Objective], declaration order
        self.var_lists = var_lists        # {name: [Variable]} in the sub-optimizer's order
        self.optimizers = optimizers      # {name: Optimizer}
        self.trackers = trackers          # {name: {"loss": Mean, metric: Mean}}

    def all_trackers(self):
        return [t for obj in self.objectives for t in self.trackers[obj.name].values()]


@keras.saving.register_keras_serializable(package="zoo")
class AdversarialModel(ZooModel):
    """Base of models trained with several objectives and optimizers (GANs and kin).

    Subclasses create their networks in ``__init__``, build them in ``build()``
    (everything must be built before ``compile``), implement ``call`` (inference)
    and ``objectives()``. They keep model code; this class keeps the training loop.

    Compile with one optimizer per objective (or ``compile_from_recipe``)::

        model.compile(optimizer={"generator": keras.optimizers.Adam(1e-4),
                                 "discriminator": keras.optimizers.Adam(4e-4)},
                      schedule={"generator": {"every": 3, "at": 2}})

    A single optimizer identifier (``"adam"``) or instance is copied per objective.
    Every trainable variable must belong to exactly one objective (freeze the
    others with ``layer.trainable = False`` before compiling).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._adversarial = None  # what compile() resolved (_Compiled)
        self.adversarial_step = self.add_weight(shape=(), initializer="zeros", dtype="int",
                                                trainable=False, name="adversarial_step",
                                                aggregation="only_first_replica")

    # ------------------------------------------------------------ declaration
    def objectives(self):
        """The ordered list of :class:`Objective`; override in subclasses."""
        raise NotImplementedError(f"{type(self).__name__} must define objectives()")

    # --------------------------------------------------------------- compile
    def compile(self, optimizer="adam", schedule=None, run_eagerly=False, jit_compile="auto",
                steps_per_execution=1, **kwargs):
        """Compile with one optimizer per objective.

        Args:
            optimizer: ``{objective name: optimizer}`` (instances, identifiers or
                configs), or one identifier/instance copied for every objective.
            schedule: ``{objective name: {"every", "at", "repeats"}}`` overriding the
                declared schedules (any subset of keys).
            run_eagerly, jit_compile, steps_per_execution: as ``keras.Model.compile``.
        """
        unsupported = {k for k, v in kwargs.items() if v is not None}
        if unsupported:
            raise TypeError(f"AdversarialModel.compile: unsupported arguments {sorted(unsupported)} "
                            "(losses and metrics come from objectives())")
        self._ensure_built()
        objectives = self._apply_schedule(list(self.objectives()), schedule or {})
        names = [o.name for o in objectives]
        if not objectives or len(set(names)) != len(names):
            raise ValueError(f"objectives() must return objectives with unique names, got {names}")
        var_lists = self._select_variables(objectives)
        optimizers = self._make_optimizers(optimizer, names)
        multi = self._make_multi_optimizer(objectives, var_lists, optimizers)
        super().compile(optimizer=multi, run_eagerly=run_eagerly, jit_compile=jit_compile,
                        steps_per_execution=steps_per_execution)
        if self.optimizer is not multi:
            raise ValueError("AdversarialModel does not support a wrapped optimizer "
                             "(mixed_float16 loss scaling); use float32 or bfloat16")
        multi.build([v for name in names for v in var_lists[name]])
        for name in names:  # stateless_apply needs the sub-optimizer's variable order
            built = [id(v) for v in optimizers[name]._trainable_variables]
            if built != [id(v) for v in var_lists[name]]:
                raise RuntimeError(f"optimizer of objective {name!r} was built on other variables")
        trackers = {}
        seen = {"loss"}
        for obj in objectives:
            keys = [f"{obj.name}_loss", *obj.metrics]
            clash = seen.intersection(keys)
            if clash or len(set(keys)) != len(keys):
                raise ValueError(f"objective {obj.name!r}: metric names {sorted(clash) or keys} "
                                 "clash with another objective's")
            seen.update(keys)
            trackers[obj.name] = {"loss": keras.metrics.Mean(name=keys[0]),
                                  **{m: keras.metrics.Mean(name=m) for m in obj.metrics}}
        self._adversarial = _Compiled(objectives, var_lists, optimizers, trackers)
        self._adversarial_compile_args = {"run_eagerly": run_eagerly, "jit_compile": jit_compile,
                                          "steps_per_execution": steps_per_execution}

    def compile_from_recipe(self, train):
        """Compile from a recipe's ``[train]`` section.

        Every objective gets ``Adam(learning_rate, beta_1, beta_2, clipnorm)``;
        ``discriminator_learning_rate``, ``discriminator_beta_1``/``_beta_2`` and
        ``discriminator_clipnorm`` override them for objectives with
        ``role="discriminator"``, and ``<objective>_learning_rate`` etc. for one
        objective. ``discriminator_steps = k`` (when given) schedules k critic
        updates per generator update: on consecutive batches (default;
        generators run where ``step % k == k - 1``) or, with
        ``discriminator_steps_mode = "same_batch"``, as ``k`` repeats on each batch.
        A ``schedule`` table (``{objective: {every, at, repeats}}``) is applied last.
        """
        objectives = list(self.objectives())
        check_optimizer_keys(train, [o.name for o in objectives] + ["discriminator"])
        schedule = {}
        optimizers = {obj.name: adam_from_recipe(
            train, prefixes=(obj.name,) + (("discriminator",) if obj.role == "discriminator"
                                           else ()), name=f"{obj.name}_optimizer")
            for obj in objectives}
        if train.get("discriminator_steps") is not None:
            k = int(train["discriminator_steps"])
            mode = train.get("discriminator_steps_mode", "consecutive")
            if k < 1 or mode not in ("consecutive", "same_batch"):
                raise ValueError("discriminator_steps must be >= 1 and discriminator_steps_mode "
                                 f"'consecutive' or 'same_batch' (got {k}, {mode!r})")
            for obj in objectives:
                if mode == "same_batch":
                    schedule[obj.name] = ({"every": 1, "at": 0, "repeats": k}
                                          if obj.role == "discriminator" else
                                          {"every": 1, "at": 0, "repeats": 1})
                else:
                    schedule[obj.name] = ({"every": 1, "at": 0, "repeats": 1}
                                          if obj.role == "discriminator" else
                                          {"every": k, "at": k - 1, "repeats": 1})
        for name, entry in (train.get("schedule") or {}).items():
            given = {k: v for k, v in entry.items() if v is not None}  # schema fills None
            schedule[name] = {**schedule.get(name, {}), **given}
        self.compile(optimizer=optimizers, schedule=schedule,
                     jit_compile=train.get("jit_compile", "auto"))

    def get_compile_config(self):
        if self._adversarial is None:
            return {}
        comp = self._adversarial
        return {"optimizer": {name: keras.optimizers.serialize(opt)
                              for name, opt in comp.optimizers.items()},
                "schedule": {o.name: o.schedule() for o in comp.objectives},
                **self._adversarial_compile_args}

    def compile_from_config(self, config):
        config = dict(config)
        config["optimizer"] = {name: keras.optimizers.deserialize(cfg)
                               for name, cfg in config["optimizer"].items()}
        self.compile(**config)

    def trained_steps(self):
        """Batches trained on: the ``adversarial_step`` counter (a model weight, so it
        survives recompiles at stage switches, where optimizers start afresh)."""
        return int(ops.convert_to_numpy(self.adversarial_step))

    # ---------------------------------------------------------- introspection
    def objective_optimizer(self, name):
        """The optimizer of objective ``name`` (its ``iterations``, ``variables``...)."""
        return self._compiled().optimizers[name]

    @property
    def schedule(self):
        """``{objective: {"every", "at", "repeats"}}`` as compiled."""
        return {o.name: o.schedule() for o in self._compiled().objectives}

    @property
    def metrics(self):
        comp = self._adversarial
        return super().metrics + (comp.all_trackers() if comp else [])

    def _compiled(self):
        comp = self._adversarial
        if comp is None:
            raise RuntimeError(f"{type(self).__name__} is not compiled; call compile() first")
        return comp

    # --------------------------------------------------------- compile helpers
    def _ensure_built(self):
        if self.built:
            return
        try:
            self.build()
        except TypeError as e:
            raise ValueError(f"{type(self).__name__} must be built before compile(); define "
                             f"build(self, input_shape=None) or call the model once ({e})") from e
        self.built = True

    @staticmethod
    def _apply_schedule(objectives, schedule):
        names = {o.name for o in objectives}
        unknown = set(schedule) - names
        if unknown:
            raise ValueError(f"schedule names unknown objectives {sorted(unknown)}; "
                             f"objectives: {sorted(names)}")
        objectives = [copy.copy(o) for o in objectives]  # never edit the subclass's objects
        for obj in objectives:
            entry = schedule.get(obj.name)
            if entry:
                bad = set(entry) - {"every", "at", "repeats"}
                if bad:
                    raise ValueError(f"schedule for {obj.name!r}: unknown keys {sorted(bad)}")
                every = entry.get("every", obj.every)
                at = entry.get("at", obj.at if "every" not in entry else 0)
                obj.every, obj.at, obj.repeats = _check_schedule(
                    obj.name, every, at, entry.get("repeats", obj.repeats))
        return objectives

    def _select_variables(self, objectives):
        prefix = f"{self.name}/"
        trainable = self.trainable_variables
        owner, var_lists = {}, {}
        for obj in objectives:
            chosen, ids = [], set()
            specs = obj.variables if isinstance(obj.variables, (list, tuple)) else [obj.variables]
            for spec in specs:
                if isinstance(spec, keras.layers.Layer):
                    found = spec.trainable_variables
                elif isinstance(spec, str):
                    found = [v for v in trainable if (v.path[len(prefix):] if v.path.startswith(
                        prefix) else v.path).startswith(spec)]
                elif callable(spec):
                    found = list(spec())
                else:
                    raise TypeError(f"objective {obj.name!r}: cannot select variables from {spec!r}")
                for v in found:
                    if not v.trainable:
                        raise ValueError(f"objective {obj.name!r}: {v.path} is not trainable")
                    if id(v) not in ids:
                        ids.add(id(v))
                        chosen.append(v)
            if not chosen:
                raise ValueError(f"objective {obj.name!r} selects no trainable variables "
                                 f"({obj.variables!r})")
            for v in chosen:
                if id(v) in owner:
                    raise ValueError(f"{v.path} is trained by both {owner[id(v)]!r} and "
                                     f"{obj.name!r}; objectives' variables must be disjoint")
                owner[id(v)] = obj.name
            var_lists[obj.name] = chosen
        model_ids = {id(v) for v in trainable}
        stray = [v.path for vs in var_lists.values() for v in vs if id(v) not in model_ids]
        if stray:
            raise ValueError(f"variables {stray} are not trainable variables of this model")
        orphans = [v.path for v in trainable if id(v) not in owner]
        if orphans:
            raise ValueError(f"trainable variables {orphans} belong to no objective; add them "
                             "to one or freeze their layer (layer.trainable = False) before compile")
        paths = [v.path for v in trainable]
        if len(set(paths)) != len(paths):
            dup = sorted({p for p in paths if paths.count(p) > 1})
            raise ValueError(f"variable paths {dup} are not unique; give the layers distinct names")
        return var_lists

    @staticmethod
    def _make_optimizers(optimizer, names):
        if isinstance(optimizer, dict):
            missing = set(names) - set(optimizer)
            extra = set(optimizer) - set(names)
            if missing or extra:
                raise ValueError(f"optimizer dict must name exactly the objectives {names}: "
                                 f"missing {sorted(missing)}, unknown {sorted(extra)}")
            opts = {n: keras.optimizers.get(optimizer[n]) for n in names}
        else:
            opts = {}
            for n in names:
                if isinstance(optimizer, keras.optimizers.Optimizer):
                    opts[n] = optimizer.__class__.from_config(optimizer.get_config())
                else:
                    opts[n] = keras.optimizers.get(optimizer)
        if len({id(o) for o in opts.values()}) != len(names):
            raise ValueError("each objective needs its own optimizer instance")
        for n, o in opts.items():
            if isinstance(o, (keras.optimizers.MultiOptimizer, keras.optimizers.LossScaleOptimizer)):
                raise ValueError(f"objective {n!r}: give a plain optimizer, not {type(o).__name__}")
            if o.built:
                raise ValueError(f"objective {n!r}: its optimizer is already built; pass a fresh "
                                 "optimizer (or its config)")
        return opts

    @staticmethod
    def _make_multi_optimizer(objectives, var_lists, optimizers):
        # Exact variable paths as keys: OptimizerMap tries an exact match before regexes.
        mapping = {v.path: optimizers[o.name] for o in objectives for v in var_lists[o.name]}
        return keras.optimizers.MultiOptimizer(keras.optimizers.OptimizerMap(
            optimizers[objectives[0].name], mapping), name="adversarial_optimizers")

    # ---------------------------------------------------------- loss plumbing
    @staticmethod
    def _unpack(data):
        if isinstance(data, (list, tuple)) and len(data) == 1:
            return data[0]
        return data

    @staticmethod
    def _evaluate(obj, data, training):
        out = obj.loss_fn(data, training=training)
        loss, extras = (out if isinstance(out, (tuple, list)) else (out, {}))
        extras = dict(extras or {})
        if set(extras) != set(obj.metrics):
            raise ValueError(f"objective {obj.name!r} returned metrics {sorted(extras)} but "
                             f"declared {sorted(obj.metrics)}")
        loss = ops.cast(loss, "float32")
        if len(loss.shape) != 0:
            raise ValueError(f"objective {obj.name!r}: loss must be a scalar, got shape {loss.shape}")
        return loss, {k: ops.cast(v, "float32") for k, v in extras.items()}

    def _track(self, obj, loss, extras):
        trackers = self._adversarial.trackers[obj.name]
        trackers["loss"].update_state(ops.stop_gradient(loss))
        for key, value in extras.items():
            trackers[key].update_state(ops.stop_gradient(value))

    def _logs(self):
        return {m.name: m.result() for m in self.metrics}

    @staticmethod
    def _scheduled(obj, step):
        """Boolean tensor: does ``obj`` run at batch ``step``?"""
        phase = ops.mod(step, obj.every)
        hit = ops.equal(phase, obj.at[0])
        for r in obj.at[1:]:
            hit = ops.logical_or(hit, ops.equal(phase, r))
        return hit

    # ----------------------------------------------------------- train/test
    def train_step(self, *args):
        """One batch: every scheduled objective updates its variables (backend file)."""
        return backend.current().adversarial_train_step(self, args)

    def test_step(self, *args):
        return backend.current().adversarial_test_step(self, args)

    def make_train_function(self, force=False):
        """The backend's own train function where it has one (JAX: one jitted step per
        schedule phase), else Keras'."""
        if backend.current().make_adversarial_train_function(self, force) is None:
            return super().make_train_function(force=force)

    def _stateful_test_step(self, data):
        total = 0.0
        for obj in self._adversarial.objectives:
            loss, extras = self._evaluate(obj, data, training=False)
            self._track(obj, loss, extras)
            total = total + loss
        self._loss_tracker.update_state(total)
        return self._logs()
