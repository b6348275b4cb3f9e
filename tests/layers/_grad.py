"""Backend-neutral input gradients for tests.

`grad(fn, x)` returns d sum(fn(x)) / dx as a numpy array, using
tf.GradientTape, jax.grad or torch.autograd depending on the Keras backend.
On JAX, `fn` runs inside a `keras.StatelessScope`: variable writes made by
`fn` (e.g. a layer called with `training=True`) are discarded there instead of
leaking tracers (losses added by layers are still readable via `layer.losses`
inside `fn`); on TensorFlow and torch the writes are applied as usual.
"""
import keras
import numpy as np


def grad(fn, x):
    """Gradient of `sum(fn(x))` with respect to the array `x` (float32)."""
    x = np.asarray(x, dtype="float32")
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        xt = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = tf.reduce_sum(fn(xt))
        return tape.gradient(y, xt).numpy()
    if backend == "jax":
        import jax

        def scalar(xv):
            with keras.StatelessScope(collect_losses=True):
                return keras.ops.sum(fn(xv))

        return np.asarray(jax.grad(scalar)(jax.numpy.asarray(x)))
    if backend == "torch":
        xt = keras.ops.convert_to_tensor(x).detach().requires_grad_(True)
        keras.ops.sum(fn(xt)).backward()
        return xt.grad.detach().cpu().numpy()
    raise NotImplementedError(f"grad() does not support backend {backend!r}.")
