"""Spectral normalisation and instance normalisation, in `keras.ops` only.

Spectral normalisation (Miyato et al. 2018) is written as a reparametrisation
rather than a wrapper: the layer keeps its kernel `W` trainable, keeps the
power-iteration vector `u` as a *non-trainable* variable, and divides `W` by the
power-iteration estimate of its largest singular value inside `call`. `u` is
assigned only when `training=True`. This behaves identically on TensorFlow, JAX
(non-trainable writes are carried by `stateless_call` under `fit()`) and torch
(the layer may be called several times in one backward pass), unlike
`keras.layers.SpectralNormalization`.
"""
import keras
from keras import ops

__all__ = [
    "SNDense",
    "SNConv1D",
    "SNConv2D",
    "SNConv2DTranspose",
    "InstanceNormalization",
]


def _l2_normalize(x, epsilon=1e-12):
    return x * ops.rsqrt(ops.maximum(ops.sum(ops.square(x)), epsilon))


def _bias_and_activation(layer, x):
    """Adds `layer.bias` (channels last or first) and applies `layer.activation`."""
    if layer.bias is not None:
        bias = layer.bias
        if getattr(layer, "data_format", "channels_last") == "channels_first":
            bias = ops.reshape(bias, (1, -1) + (1,) * (len(x.shape) - 2))
        x = ops.add(x, bias)
    return layer.activation(x) if layer.activation is not None else x


class _SpectralNormMixin:
    """Shared spectral-norm logic; put it first among the base classes.

    Subclasses set `_out_axis` (the kernel axis of the output channels) and
    implement `_apply_kernel(inputs, kernel)` (the linear map without bias).
    """

    _out_axis = -1

    def _init_sn(self, power_iterations):
        if int(power_iterations) < 0:
            raise ValueError(f"`power_iterations` must be >= 0, got {power_iterations}.")
        self.power_iterations = int(power_iterations)

    def build(self, input_shape):
        super().build(input_shape)
        self.sn_u = self.add_weight(
            name="sn_u",
            shape=(1, self._raw_kernel.shape[self._out_axis]),
            initializer=keras.initializers.RandomNormal(),
            trainable=False,
            autocast=False,
        )

    @property
    def _raw_kernel(self):
        return self._kernel if hasattr(self, "_kernel") else self.kernel

    def _kernel_matrix(self, kernel):
        """Kernel as a matrix [fan, out_channels]."""
        if self._out_axis != -1:
            perm = list(range(len(kernel.shape)))
            perm[self._out_axis], perm[-1] = perm[-1], perm[self._out_axis]
            kernel = ops.transpose(kernel, perm)
        return ops.reshape(kernel, (-1, kernel.shape[-1]))

    def _sigma(self, training):
        """Returns (sigma, u): sigma carries gradients to W only; u is the new vector."""
        w = self._kernel_matrix(ops.cast(self._raw_kernel, self.sn_u.dtype))  # float32 math
        w_sg = ops.stop_gradient(w)
        # A fresh tensor: assigning the variable later never touches a tensor that
        # torch saved for backward (several calls in one backward pass stay valid).
        u = _l2_normalize(ops.copy(ops.convert_to_tensor(self.sn_u)))
        for _ in range(self.power_iterations if training else 0):
            v = _l2_normalize(ops.matmul(u, ops.transpose(w_sg)))
            u = _l2_normalize(ops.matmul(v, w_sg))
        v = ops.stop_gradient(_l2_normalize(ops.matmul(u, ops.transpose(w_sg))))
        u = ops.stop_gradient(u)
        return ops.sum(ops.matmul(v, w) * u), u

    def effective_kernel(self):
        """The kernel used at inference, `W / sigma(u)`, with the stored `u`."""
        sigma, _ = self._sigma(training=False)
        return ops.cast(self._raw_kernel, sigma.dtype) / sigma

    def call(self, inputs, training=None):
        sigma, u = self._sigma(bool(training))
        if training and self.power_iterations > 0:
            self.sn_u.assign(ops.cast(u, self.sn_u.dtype))
        kernel = ops.cast(ops.cast(self._raw_kernel, sigma.dtype) / sigma, self.compute_dtype)
        return _bias_and_activation(self, self._apply_kernel(inputs, kernel))

    # Dense/Conv save only kernel and bias by position; save every variable (u too).
    def save_own_variables(self, store):
        keras.layers.Layer.save_own_variables(self, store)

    def load_own_variables(self, store):
        keras.layers.Layer.load_own_variables(self, store)

    def get_config(self):
        return {**super().get_config(), "power_iterations": self.power_iterations}


_SN_DOC = """Spectral-normalised `keras.layers.{base}`.

    Takes every argument of `keras.layers.{base}` plus `power_iterations`. The
    kernel `W` stays trainable; a non-trainable vector `u` (variable `sn_u`, one
    entry per output channel) holds the power-iteration estimate of the top
    right singular vector of `W` reshaped to a matrix `[-1, out_channels]`{extra}.
    Each call uses `W / sigma` with `sigma = ||W u||` (u, v under stop_gradient);
    with `training=True`, `power_iterations` iterations refine `u` first and the
    new `u` is assigned to the variable.

    Args:
        power_iterations: power iterations per training call (default 1).
        **kwargs: arguments of `keras.layers.{base}`.

    Returns:
        The output of `keras.layers.{base}` computed with the normalised kernel.

    Example:

    >>> layer = {name}({example})
    >>> y = layer(x, training=True)   # updates `u`; y uses W / sigma
    """


@keras.saving.register_keras_serializable(package="layers")
class SNDense(_SpectralNormMixin, keras.layers.Dense):
    __doc__ = _SN_DOC.format(base="Dense", name="SNDense", example="64", extra="")

    def __init__(self, units, power_iterations=1, **kwargs):
        super().__init__(units, **kwargs)
        self._init_sn(power_iterations)

    def _apply_kernel(self, inputs, kernel):
        return ops.matmul(inputs, kernel)


class _SNConvMixin(_SpectralNormMixin):
    def __init__(self, filters, kernel_size, power_iterations=1, **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        self._init_sn(power_iterations)

    def _apply_kernel(self, inputs, kernel):
        return self.convolution_op(inputs, kernel)


@keras.saving.register_keras_serializable(package="layers")
class SNConv1D(_SNConvMixin, keras.layers.Conv1D):
    __doc__ = _SN_DOC.format(base="Conv1D", name="SNConv1D", example="32, 5", extra="")


@keras.saving.register_keras_serializable(package="layers")
class SNConv2D(_SNConvMixin, keras.layers.Conv2D):
    __doc__ = _SN_DOC.format(base="Conv2D", name="SNConv2D", example="32, 3", extra="")


@keras.saving.register_keras_serializable(package="layers")
class SNConv2DTranspose(_SNConvMixin, keras.layers.Conv2DTranspose):
    __doc__ = _SN_DOC.format(
        base="Conv2DTranspose",
        name="SNConv2DTranspose",
        example="32, 4, strides=2",
        extra=(" (the kernel is stored as [kh, kw, out, in], so the out axis is moved "
               "last first, as torch's spectral_norm does for transposed convs)"),
    )
    _out_axis = -2

    def _apply_kernel(self, inputs, kernel):
        return ops.conv_transpose(
            inputs,
            kernel,
            strides=list(self.strides),
            padding=self.padding,
            output_padding=self.output_padding,
            dilation_rate=self.dilation_rate,
            data_format=self.data_format,
        )


@keras.saving.register_keras_serializable(package="layers")
class InstanceNormalization(keras.layers.Layer):
    """Instance normalisation (Ulyanov et al. 2016).

    Normalises each example and each channel over all the other (spatial or
    temporal) axes: `y = (x - mean) / sqrt(var + epsilon) * gamma + beta`.

    Args:
        axis: the channel axis (default -1).
        epsilon: added to the variance.
        center: learn a per-channel offset `beta`.
        scale: learn a per-channel gain `gamma`.
        beta_initializer, gamma_initializer: initialisers of the affine terms.

    Returns:
        A tensor of the input's shape.

    Example:

    >>> y = InstanceNormalization()(keras.ops.ones((2, 16, 16, 8)))
    """

    def __init__(self, axis=-1, epsilon=1e-5, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = keras.initializers.get(beta_initializer)
        self.gamma_initializer = keras.initializers.get(gamma_initializer)

    def build(self, input_shape):
        if len(input_shape) < 3:
            raise ValueError(f"InstanceNormalization needs rank >= 3 inputs, got {input_shape}.")
        channels = (input_shape[self.axis],)
        self.gamma = self.beta = None
        if self.scale:
            self.gamma = self.add_weight(name="gamma", shape=channels,
                                         initializer=self.gamma_initializer)
        if self.center:
            self.beta = self.add_weight(name="beta", shape=channels,
                                        initializer=self.beta_initializer)

    def call(self, inputs):
        rank = len(inputs.shape)
        axis = self.axis % rank
        reduce_axes = [a for a in range(1, rank) if a != axis]
        mean, var = ops.moments(inputs, axes=reduce_axes, keepdims=True)
        y = (inputs - mean) * ops.rsqrt(var + self.epsilon)
        shape = [1] * rank
        shape[axis] = inputs.shape[axis]
        if self.gamma is not None:
            y = y * ops.reshape(ops.cast(self.gamma, y.dtype), shape)
        if self.beta is not None:
            y = y + ops.reshape(ops.cast(self.beta, y.dtype), shape)
        return y

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": keras.initializers.serialize(self.beta_initializer),
            "gamma_initializer": keras.initializers.serialize(self.gamma_initializer),
        }
