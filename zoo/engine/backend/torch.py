"""PyTorch engine: inference runs eagerly without recording gradients; the adversarial
step zeroes gradients, calls ``backward`` per update, reads ``v.value.grad`` and applies
under ``torch.no_grad()``; scheduled-out objectives are skipped with a Python ``if``."""
import torch
from keras import ops

from zoo.engine.backend._stateful import (  # noqa: F401 (the backend interface)
    adversarial_test_step, distribute_input, make_adversarial_train_function,
    process_layout, replica_loss, sync_state)


def call_inference(model, method, args, kwargs):
    """Run ``method`` eagerly under ``torch.no_grad()``: no autograd graph is recorded
    (inference methods are not differentiated; the frozen models they run inside a
    training step are constants)."""
    with torch.no_grad():
        return method(model, *args, **kwargs)


def data_parallel(cpu_devices=None, coordinator=None, num_processes=None, process_id=None):
    """Not here: Keras' torch trainer has no data-parallel ``fit``."""
    from zoo.errors import ZooError

    raise ZooError("--distribute data runs on the jax (keras.distribution.DataParallel) and "
                   "tensorflow (tf.distribute.MirroredStrategy) backends; the torch backend "
                   "trains on one device (set KERAS_BACKEND=jax or tensorflow)")


def value_and_grad(fn):
    """``fn(x, *constants) -> (loss, aux)`` -> ``(loss, grad, aux)`` on numpy (autograd)."""
    from keras.src.backend.torch.core import get_device

    def call(x, *constants):
        x = torch.tensor(x, device=get_device(), requires_grad=True)
        with torch.enable_grad():
            loss, aux = fn(x, *constants)
            loss.backward()
        aux = {k: float(v.detach().cpu()) for k, v in aux.items()}
        return float(loss.detach().cpu()), x.grad.detach().cpu().numpy(), aux

    return call


def adversarial_train_step(model, args):
    data = model._unpack(args[-1])
    comp = model._adversarial
    step = int(ops.convert_to_numpy(model.adversarial_step))
    total = 0.0
    for obj in comp.objectives:
        if step % obj.every not in obj.at:
            continue
        variables, opt = comp.var_lists[obj.name], comp.optimizers[obj.name]
        losses = 0.0
        for _ in range(obj.repeats):
            for v in model.trainable_variables:
                v.value.grad = None
            loss, extras = model._evaluate(obj, data, training=True)
            opt.scale_loss(loss).backward()
            grads = [v.value.grad if v.value.grad is not None else torch.zeros_like(v.value)
                     for v in variables]
            with torch.no_grad():
                opt.apply(grads, variables)
                model._track(obj, loss, extras)
            losses = losses + loss.detach()
        total = total + losses / obj.repeats
    with torch.no_grad():
        model._loss_tracker.update_state(total)
        model.adversarial_step.assign_add(1)
        model.optimizer.iterations.assign_add(1)
    return model._logs()
