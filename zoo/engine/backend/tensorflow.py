"""TensorFlow engine: inference runs as written (Keras traces it inside ``fit`` and
export); the adversarial step uses one ``GradientTape`` per update and ``tf.cond``
to skip scheduled-out objectives."""
import tensorflow as tf
from keras import ops

from zoo.engine.backend._stateful import (  # noqa: F401 (the backend interface)
    adversarial_test_step, call_inference, make_adversarial_train_function, sync_state)


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
                    scaled = opt.scale_loss(loss)
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
        else:
            total += tf.cond(model._scheduled(obj, step), run, lambda: tf.zeros((), "float32"))
    model._loss_tracker.update_state(total)
    model.adversarial_step.assign_add(1)
    model.optimizer.iterations.assign_add(1)
    return model._logs()
