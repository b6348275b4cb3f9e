"""TensorFlow engine: inference runs as one ``tf.function`` per static arguments (as
written inside ``fit`` and export, which trace it themselves); the adversarial step uses
one ``GradientTape`` per update and ``tf.cond`` to skip scheduled-out objectives."""
import contextlib

import numpy as np
import tensorflow as tf
from keras import ops

from zoo.engine.backend._compiled import (CompiledCall, cached, step_loop,  # noqa: F401
                                          weight_constant)
from zoo.engine.backend._stateful import (  # noqa: F401 (the backend interface)
    adversarial_test_step, make_adversarial_train_function, sync_state)


# ------------------------------------------------------------------ inference
def call_inference(model, method, args, kwargs):
    """Run ``method`` as a ``tf.function`` (a graph: loops such as ``ops.fori_loop``
    become one ``tf.while_loop`` instead of Python steps dispatching every op).

    Array arguments are traced (one graph per shape and dtype, as ``jax.jit``), every
    other argument is static (part of the cache key). Inside a trace (``fit``, export)
    it runs as written. The variables are captured by reference, so loaded or trained
    weights are used without retracing.
    """
    if tf.inside_function():
        return method(model, *args, **kwargs)
    call = CompiledCall(method, args, kwargs, lambda a: isinstance(a, (np.ndarray, tf.Tensor)))

    def build():
        run = call.runner()
        return tf.function(lambda *arrays: run(model, arrays), autograph=False)

    return cached(model, call.key, build)(*call.arrays)


@contextlib.contextmanager
def data_parallel(cpu_devices=None, coordinator=None, num_processes=None, process_id=None):
    """A ``tf.distribute`` strategy for the block; yields the replica count.

    With a ``TF_CONFIG`` naming several workers, ``MultiWorkerMirroredStrategy`` over
    every worker's devices (one process per worker, each feeding its own rows of the
    global batch: :func:`distribute_input`); else ``MirroredStrategy`` over the local
    GPUs (or the CPU's logical devices). ``cpu_devices`` splits the CPU into that many
    logical devices (only before TensorFlow's runtime starts)."""
    from zoo.errors import ZooError

    if coordinator is not None:
        raise ZooError("--coordinator (multi-process training) is wired for the jax backend; "
                       "on TensorFlow set TF_CONFIG for each worker process (README)")
    workers = _tf_config_workers()
    if workers > 1:
        if cpu_devices:
            raise ZooError("--devices splits one process's CPU; with TF_CONFIG each worker "
                           "process trains on its own devices (drop --devices)")
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        with strategy.scope(), _scalar_logs_reduce_over_workers():
            yield strategy.num_replicas_in_sync
        return
    if cpu_devices:
        cpus = tf.config.list_physical_devices("CPU")
        try:
            tf.config.set_logical_device_configuration(
                cpus[0], [tf.config.LogicalDeviceConfiguration()] * int(cpu_devices))
        except RuntimeError:
            if len(tf.config.list_logical_devices("CPU")) != int(cpu_devices):
                raise ZooError(f"--devices {cpu_devices}: TensorFlow has already started with "
                               f"{len(tf.config.list_logical_devices('CPU'))} CPU device(s); "
                               "pass --devices before anything else runs") from None
    gpus = tf.config.list_logical_devices("GPU")
    devices = gpus or tf.config.list_logical_devices("CPU")
    # CPU replicas reduce through one device: TF's CPU collectives can pair up
    # different gradient packs across replicas (a shape-mismatch abort, seen on TF 2.21)
    strategy = tf.distribute.MirroredStrategy(
        [d.name for d in devices],
        cross_device_ops=None if gpus else tf.distribute.ReductionToOneDevice())
    with strategy.scope():
        yield strategy.num_replicas_in_sync


def _tf_config_workers():
    """How many workers ``TF_CONFIG`` names (0 without one); a malformed one is a
    one-line error naming it."""
    import json
    import os

    from zoo.errors import ZooError

    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return 0
    try:
        config = json.loads(raw)
        workers = len(config["cluster"]["worker"])
        task = config["task"]
        if task["type"] != "worker" or not 0 <= int(task["index"]) < workers:
            raise ValueError(f"task {task!r} is not one of the {workers} workers")
    except (ValueError, KeyError, TypeError) as err:
        raise ZooError(f"TF_CONFIG: expected {{\"cluster\": {{\"worker\": [\"host:port\", ...]}}, "
                       f"\"task\": {{\"type\": \"worker\", \"index\": i}}}} ({err})") from None
    return workers


@contextlib.contextmanager
def _scalar_logs_reduce_over_workers():
    """Keras 3's TF trainer reduces ``fit``'s logs across workers with
    ``strategy.reduce("MEAN", v, axis=0)``, which fails on the scalar logs every model
    returns ("Invalid reduction dimension 0 for input with 0 dimensions",
    tensorflow/tensorflow#72388). For the block, scalars are reduced over replicas
    (``axis=None``); everything else goes to Keras' own reduction."""
    from keras.src.backend.tensorflow import trainer as keras_tf_trainer

    keras_reduce = keras_tf_trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction not in ("auto", "mean") or not isinstance(
                strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return keras_reduce(values, strategy, reduction)

        def one(v):
            if v.shape.rank == 0:
                return strategy.reduce("MEAN", v, axis=None)
            return keras_reduce(v, strategy, reduction)

        return tf.nest.map_structure(one, values)

    keras_tf_trainer.reduce_per_replica = reduce_per_replica
    try:
        yield
    finally:
        keras_tf_trainer.reduce_per_replica = keras_reduce


def _multi_worker():
    strategy = tf.distribute.get_strategy()
    return strategy if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) else None


def process_layout():
    """``(worker index, worker count)`` under ``TF_CONFIG``; ``(0, 1)`` otherwise."""
    strategy = _multi_worker()
    if strategy is None:
        return 0, 1
    resolver = strategy.cluster_resolver
    return int(resolver.task_id), len(resolver.cluster_spec().as_dict()["worker"])


def distribute_input(dataset):
    """This worker's batches (already only its rows of each global batch) as the
    strategy's per-worker input, split over its local replicas; unchanged outside a
    multi-worker run (Keras distributes the global batch itself there)."""
    strategy = _multi_worker()
    if strategy is None or dataset is None:
        return dataset
    if not isinstance(dataset, tf.data.Dataset):
        from zoo.errors import ZooError

        raise ZooError("multi-worker training reads its data through tf.data (loader='tf')")
    local = strategy.extended._num_devices_per_worker  # noqa: SLF001 (no public accessor)

    def per_worker(context):
        del context  # the trainer has already sharded the rows by worker
        return dataset if local == 1 else dataset.unbatch().batch(
            _batch_rows(dataset) // local, drop_remainder=True)

    return strategy.distribute_datasets_from_function(per_worker)


def _batch_rows(dataset):
    spec = tf.nest.flatten(dataset.element_spec)[0]
    return int(spec.shape[0])


def replica_loss(loss):
    """``loss / replicas`` inside a ``tf.distribute`` replica: the optimizer sums the
    replicas' gradients, so each replica's share is divided (as Keras' own losses do)."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss if replicas == 1 else loss / float(replicas)


def value_and_grad(fn):
    """``fn(x, *constants) -> (loss, aux)`` -> ``tf.function`` ``(loss, grad, aux)`` on numpy."""
    @tf.function(reduce_retracing=True)
    def compiled(x, *constants):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss, aux = fn(x, *constants)
        return loss, tape.gradient(loss, x), aux

    def call(x, *constants):
        loss, grad, aux = compiled(tf.convert_to_tensor(x), *constants)
        return float(loss), grad.numpy(), {k: float(v) for k, v in aux.items()}

    return call


def adversarial_train_step(model, args):
    data = model._unpack(args[-1])
    comp = model._adversarial
    step = ops.convert_to_tensor(model.adversarial_step)
    total = tf.zeros((), "float32")
    for obj in comp.objectives:
        variables, opt = comp.var_lists[obj.name], comp.optimizers[obj.name]

        def run(obj=obj, variables=variables, opt=opt):
            losses = tf.zeros((), "float32")
            for _ in range(obj.repeats):
                with tf.GradientTape() as tape:
                    loss, extras = model._evaluate(obj, data, training=True)
                    scaled = opt.scale_loss(replica_loss(loss))
                # Unconnected variables (e.g. a head unused in this stage) get zeros;
                # tf's UnconnectedGradients.ZERO fails on Keras variables.
                grads = [ops.zeros_like(v) if g is None else g
                         for g, v in zip(tape.gradient(scaled, variables), variables)]
                opt.apply(grads, variables)
                model._track(obj, loss, extras)
                losses += loss
            return losses / obj.repeats

        if obj.every == 1:
            total += run()
        elif tf.distribute.get_strategy().num_replicas_in_sync > 1:
            from zoo.errors import ZooError

            raise ZooError(f"{type(model).__name__}: objective {obj.name!r} runs every "
                           f"{obj.every} steps; MirroredStrategy cannot skip an optimizer "
                           "update inside a step. Use --set train.discriminator_steps_mode="
                           "same_batch (every objective every step) or the jax backend")
        else:
            total += tf.cond(model._scheduled(obj, step), run, lambda: tf.zeros((), "float32"))
    model._loss_tracker.update_state(total)
    model.adversarial_step.assign_add(1)
    model.optimizer.iterations.assign_add(1)
    return model._logs()
