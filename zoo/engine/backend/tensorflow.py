"""TensorFlow engine: inference runs as written (Keras traces it inside ``fit`` and
export); the adversarial step uses one ``GradientTape`` per update and ``tf.cond``
to skip scheduled-out objectives."""
import contextlib

import tensorflow as tf
from keras import ops

from zoo.engine.backend._stateful import (  # noqa: F401 (the backend interface)
    adversarial_test_step, call_inference, make_adversarial_train_function, process_layout,
    sync_state)


@contextlib.contextmanager
def data_parallel(cpu_devices=None, coordinator=None, num_processes=None, process_id=None):
    """``tf.distribute.MirroredStrategy`` over the local GPUs (else the CPU's logical
    devices) for the block; yields the replica count. ``cpu_devices`` splits the CPU
    into that many logical devices (only before TensorFlow's runtime starts)."""
    from zoo.errors import ZooError

    if coordinator is not None:
        raise ZooError("--coordinator (multi-process training) is wired for the jax backend; "
                       "on TensorFlow use TF_CONFIG with MultiWorkerMirroredStrategy (README)")
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
