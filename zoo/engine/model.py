"""The model contract: :class:`ZooModel`, the base of every zoo model.

A zoo model is a ``keras.Model`` that takes and returns raw waveforms and tells the
rest of the zoo what it can do:

* ``capabilities``: a set of :class:`~zoo.engine.capabilities.Capability` declared
  on the class (instances may narrow it in :meth:`ZooModel.active_capabilities`,
  e.g. a deterministic autoencoder cannot sample). Declaring one obliges the class
  to define its methods; this is checked when the class is defined.
* ``fitting``: how ``zoo train`` fits it (:class:`~zoo.engine.capabilities.Fitting`).
* hooks with safe defaults that the trainer calls on every model:
  :meth:`compile_from_recipe`, :meth:`training_callbacks`,
  :meth:`finish_training`, :meth:`sync_state`.
* ``sample_rate`` and :meth:`serving_endpoints` (what ``zoo export`` writes).

Checkpoints of a ``ZooModel`` include every ``keras.random.SeedGenerator`` state
(Keras leaves them out of ``.keras`` files), so resumed runs continue the random
stream exactly.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import keras

from zoo.engine import backend
from zoo.engine.capabilities import CLOSED_FORM_METHODS, REQUIRED_METHODS, Capability, Fitting
from zoo.engine.optimizers import adam_from_recipe, check_optimizer_keys
from zoo.errors import ZooError


@dataclass
class TrainingContext:
    """What the trainer tells a model's training hooks about the run.

    Attributes:
        run_dir: the run folder.
        dataset: the :class:`zoo.data.AudioDataset` being trained on.
        train: the resolved ``[train]`` section.
        seed: the data seed.
        verbose: Keras verbosity (0 silent).
    """

    run_dir: Path
    dataset: object
    train: dict = field(default_factory=dict)
    seed: int = 0
    verbose: int = 1


class ServingInput(NamedTuple):
    """One input of an exported signature that is not float32: ``shape`` (``None`` for
    any size) and ``dtype`` (e.g. int32 codes). A plain shape tuple means float32."""

    shape: tuple
    dtype: str = "float32"

    @classmethod
    def of(cls, spec):
        """``spec`` (a shape tuple or a ``ServingInput``) as a ``ServingInput``."""
        return spec if isinstance(spec, cls) else cls(tuple(spec))


class SeedStateMixin:
    """Save and restore the state of every ``keras.random.SeedGenerator`` with the model.

    Keras does not write seed-generator states into ``.keras`` files, so a resumed
    run would replay the random draws (posterior samples, noise) of step 0. This
    mixin adds them to the model's own variables in the weights file, under keys
    ``seed:<i>``, so checkpoints resume the random stream exactly.
    """

    def _seed_states(self):
        return [v for v in self.variables if v.path.endswith("seed_generator_state")]

    def save_own_variables(self, store):
        super().save_own_variables(store)
        for i, variable in enumerate(self._seed_states()):
            store[f"seed:{i}"] = variable

    def load_own_variables(self, store):
        seeds = self._seed_states()
        own = {}
        for key in store.keys():
            if key.startswith("seed:"):
                index = int(key[5:])
                if index < len(seeds):
                    seeds[index].assign(store[key])
            else:
                own[key] = store[key]
        super().load_own_variables(own)


class ZooModel(SeedStateMixin, keras.Model):
    """Base class of zoo models (see the module docstring for the contract).

    Subclasses set the class attributes ``capabilities`` (an iterable of
    :class:`Capability`) and, when not trained by gradient descent, ``fitting``;
    ``prerequisites`` maps constructor arguments that point at another trained run
    (a prior's VQ-VAE) to the recipe that trains it: the default recipe cannot fill
    them in (benchmarks build that recipe's untrained model instead).
    """

    capabilities = frozenset()
    fitting = Fitting.GRADIENT
    prerequisites = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.capabilities = frozenset(Capability(c) for c in cls.capabilities)
        cls.fitting = Fitting(cls.fitting)
        required = [m for c in cls.capabilities for m in REQUIRED_METHODS[c]]
        if cls.fitting is Fitting.CLOSED_FORM:
            required += CLOSED_FORM_METHODS
        missing = sorted({m for m in required if not callable(getattr(cls, m, None))})
        if missing:
            raise TypeError(f"{cls.__name__} declares capabilities "
                            f"{sorted(map(str, cls.capabilities))} but does not define "
                            f"{', '.join(missing)}")

    # ------------------------------------------------------------ capabilities
    def active_capabilities(self):
        """The capabilities of this instance (its class's, unless its configuration
        rules some out); override to narrow, never to widen."""
        return type(self).capabilities

    def supports(self, capability):
        """Whether this model can do ``capability`` (a :class:`Capability` or its name)."""
        return Capability(capability) in self.active_capabilities()

    def require(self, capability, action=None):
        """Raise a one-line :class:`ZooError` unless the model supports ``capability``."""
        capability = Capability(capability)
        if not self.supports(capability):
            can = ", ".join(sorted(map(str, self.active_capabilities()))) or "nothing declared"
            raise ZooError(f"{type(self).__name__} cannot {action or capability.value} "
                           f"(it can: {can})")

    # --------------------------------------------------------------- contract
    @property
    def sample_rate(self):
        """Audio rate in Hz of the waveforms the model takes and returns."""
        raise NotImplementedError(f"{type(self).__name__} must define sample_rate")

    def serving_endpoints(self):
        """Exported signatures: ``{name: (function, [input specs])}``, each spec a shape
        tuple (float32) or a :class:`ServingInput`; ``forward`` always (float32
        waveforms ``[batch, samples]`` of any length)."""
        raise NotImplementedError(f"{type(self).__name__} defines no serving endpoints")

    # -------------------------------------------------------------- streaming
    def warm_up_stream(self, block_size=2048, batch_size=1):
        """Compile :meth:`stream` for blocks of ``block_size`` samples at ``batch_size``
        (one block of silence through a fresh state, discarded), so that the first real
        block runs at the speed of every later one: tracing it costs ~1 s on TensorFlow
        and an XLA compilation on JAX (~0.3 s with JAX's compilation cache warm), far
        over a real-time block's deadline. ``block_size`` is rounded up to a multiple of
        ``stream_block``. Returns the seconds it took.

        Raises:
            ZooError: the model does not stream (e.g. a non-causal RAVE), or the block
                size is not a positive integer.
        """
        import time

        import numpy as np

        self.require(Capability.STREAM, "stream (so there is nothing to warm up)")
        if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
            raise ZooError(f"warm_up_stream: block_size must be a positive integer, "
                           f"got {block_size!r}")
        unit = int(self.stream_block)
        block = np.zeros((int(batch_size), -(-block_size // unit) * unit), "float32")
        start = time.perf_counter()
        out, _ = self.stream(block, self.initial_state(int(batch_size)))
        keras.ops.convert_to_numpy(out)
        return time.perf_counter() - start

    # ------------------------------------------------------------ training hooks
    def compile_from_recipe(self, train):
        """Compile from a recipe's ``[train]`` section (Adam; see
        :func:`zoo.engine.optimizers.adam_from_recipe`)."""
        check_optimizer_keys(train, ())
        self.compile(optimizer=adam_from_recipe(train))

    def training_callbacks(self, context):
        """Extra ``keras.callbacks.Callback`` objects for a run (:class:`TrainingContext`)."""
        return []

    def finish_training(self, context):
        """Called once after the last step; return True when it changed the model
        (so the trainer writes a fresh checkpoint)."""
        return False

    def trained_steps(self):
        """Training steps taken, as stored with the weights (``None`` when unknown):
        the optimizer's iteration count; the trainer checks ``state.json`` against it."""
        if not self.compiled or self.optimizer is None:
            return None
        return int(keras.ops.convert_to_numpy(self.optimizer.iterations))

    def weights_finite(self):
        """True when every floating-point variable is finite (no NaN/Inf)."""
        import numpy as np

        for variable in self.variables:
            value = np.asarray(keras.ops.convert_to_numpy(variable))
            if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
                return False
        return True

    def sync_state(self):
        """Make the model's variables current (JAX's ``fit`` keeps them in a pytree)."""
        backend.current().sync_state(self)


def compile_value_and_grad(fn):
    """Compile ``fn(x, *constants) -> (loss, {name: scalar})`` (written in ``keras.ops``)
    into ``(x, *constants) -> (float loss, numpy gradient wrt x, {name: float})`` on the
    active backend: for optimisers that run outside Keras (scipy's L-BFGS) and for
    optimising inputs rather than weights (style transfer, inversion)."""
    return backend.current().value_and_grad(fn)


def replica_loss(loss):
    """What a custom ``compute_loss`` / train step returns for one replica's batch: the
    loss divided by the replica count under ``tf.distribute`` (the optimizer sums the
    replicas' gradients), unchanged on one device and on JAX, whose data-parallel
    program is global."""
    return backend.current().replica_loss(loss)


def weight_constant(owner, key, fn, *weights):
    """``fn(*weights)``: a tensor derived from weights alone (a reordered or folded
    kernel), computed once per weights at eager inference instead of on every call.

    On torch, outside autograd, the result is kept on ``owner`` under ``key`` and
    recomputed when a weight changes (a new tensor or an in-place write); elsewhere
    (JAX / TensorFlow, whose inference is traced; training) it is computed as written."""
    return backend.current().weight_constant(owner, key, fn, weights)


def step_loop(lower, upper, body, init, compile_steps=False):
    """``ops.fori_loop(lower, upper, body, init)`` for step-by-step samplers. JAX and
    TensorFlow compile it with the ``@inference`` method around it; torch runs it as a
    Python loop, and with ``compile_steps`` compiles the body once (``torch.compile``:
    seconds up front, then each step is one fused graph; it pays off on long draws)."""
    return backend.current().step_loop(lower, upper, body, init, compile_steps)


def check_positive(**values):
    """Raise ``ValueError`` naming the first argument that is not a positive number
    (constructors call this, so a recipe's ``latent_dim = -3`` is a one-line error)."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name} must be a positive number, got {value!r}")


def inference(method):
    """Decorator for inference methods: compiled as its backend allows.

    On JAX the method runs as one jitted pure function of the model's current
    variable values (eager JAX dispatches and compiles every op separately: a first
    ``reconstruct`` with Griffin-Lim took ~16 s on CPU); array arguments are traced,
    every other argument (lengths, counts, seeds) is static. Inside a trace (``fit``,
    export) it runs as written. On TensorFlow it runs as one ``tf.function`` per static
    arguments (the same split); on torch eagerly under ``torch.no_grad()``. The backend
    files (``zoo/engine/backend/``) hold the compilation.
    """
    import functools

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        return backend.current().call_inference(self, method, args, kwargs)

    return wrapper
