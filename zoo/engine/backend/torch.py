"""PyTorch engine: inference runs eagerly without recording gradients; the adversarial
step zeroes gradients, calls ``backward`` per update, reads ``v.value.grad`` and applies
under ``torch.no_grad()``; scheduled-out objectives are skipped with a Python ``if``.

It also replaces Keras' torch ``conv`` for 1-D channels-last inputs (every conv in the
zoo's audio models) with :func:`conv1d_channels_last`, which runs without the layout
copies Keras makes on every call, and gives ``keras.ops.pad`` the eager path Keras'
other ops have (:func:`pad`: compiled sampling steps that pad compile once)."""
import keras
import torch
import torch.nn.functional as F
from keras import ops
from keras.src.backend.torch import nn as keras_torch_nn

from zoo.engine.backend._stateful import (  # noqa: F401 (the backend interface)
    adversarial_test_step, distribute_input, make_adversarial_train_function,
    process_layout, replica_loss, sync_state)


def call_inference(model, method, args, kwargs):
    """Run ``method`` eagerly under ``torch.no_grad()``: no autograd graph is recorded
    (inference methods are not differentiated; the frozen models they run inside a
    training step are constants)."""
    with torch.no_grad():
        return method(model, *args, **kwargs)


def step_loop(lower, upper, body, init, compile_steps=False):
    """``body(i, carry)`` for ``i`` in ``[lower, upper)``, a Python loop. With
    ``compile_steps`` the body runs as one ``torch.compile``d (inductor) graph, the
    index passed as a 0-d tensor so one graph serves every step (an int index would be
    specialised into a new graph per step). Dynamo keys its cache on the body's code
    and the shapes it captures, so later loops of the same shapes reuse the graph.
    Measured on 2 CPU cores: 12-17 s to compile, then 5.7-8.3x eager (WaveNet prior);
    about 11 s, then 3.9x (PixelCNN prior)."""
    if not compile_steps:
        return ops.fori_loop(lower, upper, body, init)
    step = torch.compile(body, dynamic=False)
    carry = init
    for i in range(lower, upper):
        carry = step(ops.convert_to_tensor(i, "int32"), carry)  # on Keras' device
    return carry


def weight_constant(owner, key, fn, weights):
    """``fn(*weights)``, kept on ``owner`` outside autograd until a weight changes: the
    cache key is each weight tensor's identity and ``_version`` (torch counts in-place
    writes: ``assign``, optimiser steps, loading)."""
    if torch.is_grad_enabled():
        return fn(*weights)
    tensors = [w.value if hasattr(w, "value") else w for w in weights]
    return _kept(owner.__dict__.setdefault("_weight_constants", {}), key, fn, tensors)


def _kept(store, key, fn, tensors):
    """``fn(*tensors)`` kept in ``store[key]`` until one of the tensors is replaced or
    written in place (its ``_version``); the tensors themselves are kept beside it, so
    their ids stay theirs while cached."""
    versions = [t._version for t in tensors]
    hit = store.get(key)
    if hit is None or hit[1] != versions or any(a is not b for a, b in zip(hit[0], tensors)):
        hit = store[key] = (tensors, versions, fn(*tensors))
    return hit[2]


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


# ------------------------------------------------------------------ 1-D convolution
_keras_conv = keras_torch_nn.conv


def _torch_kernel(kernel):
    """Keras' ``[width, C_in / groups, C_out]`` kernel as the ``[C_out, C_in / groups,
    1, width]`` channels-last tensor a 2-D convolution reads without reordering.

    Reordering costs a copy of every weight (for RAVE v1's widest decoder conv, 55 ms
    of a 240 ms decode as a 3-D permute, 16 ms as the 2-D transpose used here);
    outside autograd (inference) the copy is kept per
    kernel tensor and redone only when the tensor changes (its ``_version`` counts
    in-place writes: ``assign``, optimiser steps, loading). The copy lives on the
    tensor itself (``_zoo_torch_kernel``), so it goes when the weights go."""
    def reorder(k):  # as a 2-D transpose: 2.5-3x faster than the equivalent 3-D permute
        width, c_in, c_out = k.shape
        k = k.reshape(width * c_in, c_out).t().contiguous().view(c_out, width, c_in)
        return k.permute(0, 2, 1).unsqueeze(2)     # [C_out, C_in, 1, width], channels-last

    return _reordered(kernel, "_zoo_torch_kernel", reorder)


def _reordered(kernel, key, reorder):
    """``reorder(kernel)``, kept on the tensor under ``key`` outside autograd."""
    if torch.is_grad_enabled() or not kernel.is_leaf:
        return reorder(kernel)
    return _kept(kernel.__dict__, key, reorder, [kernel])


def _torch_kernel_channels_first(kernel):
    """Keras' ``[width, C_in / groups, C_out]`` kernel as torch's ``[C_out, C_in /
    groups, width]`` (kept outside autograd, as :func:`_torch_kernel`)."""
    return _reordered(kernel, "_zoo_torch_kernel_cf", lambda k: k.permute(2, 1, 0).contiguous())


def _channels_first_is_faster(c_in, stride):
    """Whether oneDNN runs this 1-D convolution faster on channels-first memory (the
    input's transpose copy included). Measured per RAVE v1 layer on one core of this
    project's CPU (AMD EPYC, AVX-512; 4 s of 48 kHz audio): channels-first wins for wide
    inputs (1024 -> 2048 channels over 96 frames: 16.6 vs 23.0 ms) and for strided
    convolutions from 256 channels up (256 -> 512, stride 4: 5.5 vs 6.8 ms; 512 -> 1024,
    stride 2: 7.4 vs 9.4 ms); channels-last wins or ties everywhere else (256 -> 512 over
    1506 frames: 11.6 vs 12.1 ms; 128 -> 1024 over 94 frames: 2.4 vs 2.8 ms)."""
    return c_in >= 1024 or (stride > 1 and c_in >= 256)


def conv1d_channels_last(inputs, kernel, strides=1, padding="valid", data_format=None,
                         dilation_rate=1):
    """``keras.ops.conv`` for ``[batch, time, channels]`` inputs, computed as a 2-D
    convolution over a ``[batch, channels, 1, time]`` view in torch's channels-last
    memory format: that view of a contiguous channels-last tensor is already in the
    layout oneDNN convolves, and so is its output, so neither is copied (Keras
    transposes the input to channels-first with a copy on every call and reorders the
    kernel). Wide and strided wide convolutions run channels-first instead, where
    oneDNN is faster (:func:`_channels_first_is_faster`); their output is returned as
    a transposed view. Other ranks and layouts go to Keras' own ``conv``."""
    from keras.src.backend import standardize_data_format
    from keras.src.backend.torch.core import convert_to_tensor

    inputs, kernel = convert_to_tensor(inputs), convert_to_tensor(kernel)
    if inputs.ndim != 3 or standardize_data_format(data_format) != "channels_last":
        return _keras_conv(inputs, kernel, strides, padding, data_format, dilation_rate)
    stride = strides[0] if isinstance(strides, (tuple, list)) else int(strides)
    dilation = dilation_rate[0] if isinstance(dilation_rate, (tuple, list)) else int(dilation_rate)
    width, c_in_group, c_out = kernel.shape
    groups = inputs.shape[-1] // c_in_group
    pad = 0
    if padding.lower() == "same":  # Keras' split: the odd sample goes at the end
        total = max((-(-inputs.shape[1] // stride) - 1) * stride
                    + (width - 1) * dilation + 1 - inputs.shape[1], 0)
        pad = total // 2
        if total % 2:
            inputs = F.pad(inputs, (0, 0, pad, total - pad))
            pad = 0
    if _channels_first_is_faster(inputs.shape[-1], stride):
        y = F.conv1d(inputs.transpose(1, 2), _torch_kernel_channels_first(kernel),
                     stride=stride, padding=pad, dilation=dilation, groups=groups)
        return y.transpose(1, 2)
    x = inputs.unsqueeze(1).permute(0, 3, 1, 2)
    y = F.conv2d(x, _torch_kernel(kernel), stride=(1, stride), padding=(0, pad),
                 dilation=(1, dilation), groups=groups)
    return y.permute(0, 2, 3, 1).flatten(1, 2)


keras_torch_nn.conv = conv1d_channels_last


# ------------------------------------------------------------------ padding
_keras_pad = keras.ops.pad


def pad(x, pad_width, mode="constant", constant_values=None):
    """``keras.ops.pad`` with the eager path every other Keras op has: a tensor goes
    straight to the backend's ``pad`` (what Keras' ``Pad`` operation calls), symbolic
    inputs to Keras. Keras builds a named ``Pad`` operation on every call, and the
    global counter of its unique name is state ``torch.compile`` guards on: a compiled
    sampling step that pads would be recompiled at every step."""
    from keras.src.backend import any_symbolic_tensors
    from keras.src.backend.torch import numpy as keras_torch_numpy

    if any_symbolic_tensors((x,)):
        return _keras_pad(x, pad_width, mode=mode, constant_values=constant_values)
    if isinstance(pad_width, int):
        pad_width = [(pad_width, pad_width)]
    elif isinstance(pad_width[0], int):
        pad_width = [tuple(pad_width)]
    pad_width = [tuple(w) * (3 - len(w)) for w in pad_width]  # (p,) means (p, p)
    if len(pad_width) > 1 and len(pad_width) != x.ndim:
        return _keras_pad(x, pad_width, mode=mode, constant_values=constant_values)  # its error
    return keras_torch_numpy.pad(x, pad_width, mode=mode, constant_values=constant_values)


keras.ops.pad = keras.ops.numpy.pad = pad
