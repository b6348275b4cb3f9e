"""Building blocks: Gaussian sampling, PixelCNN masked convolutions, causal
(streamable) convolutions and residual units, in `keras.ops` only."""
import functools

import keras
import numpy as np
from keras import ops

from layers.normalization import InstanceNormalization, _bias_and_activation

__all__ = [
    "reparameterize",
    "GaussianSampler",
    "MaskedConv2D",
    "GatedMaskedConv2D",
    "gated_activation",
    "apply_built",
    "CausalConv1D",
    "fold_upsample_kernel",
    "upsample_conv1d",
    "fold_transposed_kernel",
    "transposed_upsample_conv1d",
    "ResidualBlock1D",
    "ResidualBlock2D",
]


def reparameterize(mean, log_var, seed_generator=None):
    """Draws `z = mean + exp(log_var / 2) * eps`, `eps ~ N(0, I)`.

    Args:
        mean: posterior mean.
        log_var: posterior log-variance, same shape.
        seed_generator: a `keras.random.SeedGenerator` (or an int seed).

    Returns:
        A sample of the shape of `mean`; gradients flow to `mean` and `log_var`.
    """
    mean = ops.convert_to_tensor(mean)
    dtype = keras.backend.standardize_dtype(mean.dtype)
    eps = keras.random.normal(ops.shape(mean), dtype=dtype, seed=seed_generator)
    return mean + ops.exp(0.5 * ops.cast(log_var, dtype)) * eps


@keras.saving.register_keras_serializable(package="layers")
class GaussianSampler(keras.layers.Layer):
    """Reparametrised sample of a diagonal Gaussian, `z = mu + exp(log_var/2) eps`.

    Returns `mean` at inference unless `sample_at_inference=True`.

    Args:
        sample_at_inference: also sample when `training` is false.
        seed: seed of the layer's `keras.random.SeedGenerator`.

    Call args:
        inputs: `[mean, log_var]`, two tensors of the same shape.
        training: whether to sample.

    Returns:
        A tensor of the shape of `mean`.

    Example:

    >>> z = GaussianSampler()([mean, log_var], training=True)
    """

    def __init__(self, sample_at_inference=False, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.sample_at_inference = bool(sample_at_inference)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        mean, log_var = inputs
        if training or self.sample_at_inference:
            return reparameterize(mean, log_var, self.seed_generator)
        return ops.convert_to_tensor(mean)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        return {**super().get_config(), "sample_at_inference": self.sample_at_inference,
                "seed": self.seed}


def _pixelcnn_mask(kernel_size, mask_type):
    """The PixelCNN spatial mask `[kh, kw, 1, 1]` (odd sizes): rows above the
    centre and pixels left of it; the centre too for mask 'B'."""
    kh, kw = kernel_size
    mask = np.zeros((kh, kw, 1, 1), "float32")
    mask[: kh // 2] = 1.0
    mask[kh // 2, : kw // 2 + (mask_type == "B")] = 1.0
    return mask


def _check_mask_args(kernel_size, mask_type, kwargs):
    if mask_type not in ("A", "B"):
        raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}.")
    if any(k % 2 == 0 for k in kernel_size):
        raise ValueError(f"Masked convolutions need odd kernel sizes, got {kernel_size}.")
    fixed = (("padding", "same"), ("strides", (1, 1)), ("data_format", "channels_last"))
    for key, allowed in fixed:
        value = kwargs.pop(key, allowed)
        if value not in (allowed, 1, [1, 1]):
            raise ValueError(f"Masked convolutions need {key}={allowed!r}, got {value!r}.")


@keras.saving.register_keras_serializable(package="layers")
class MaskedConv2D(keras.layers.Conv2D):
    """PixelCNN masked convolution (van den Oord et al. 2016), channels last.

    The kernel is multiplied by a spatial mask, so the output at `(i, j)` sees
    only pixels above row `i` and pixels left of `j` on row `i` (mask 'A', for
    the first layer), plus `(i, j)` itself (mask 'B', later layers). The mask is
    spatial only: inputs are code maps or features, not RGB channel groups.
    Padding is 'same', strides 1, odd kernel sizes.

    Args:
        filters: output channels.
        kernel_size: odd int or pair.
        mask_type: 'A' or 'B'.
        **kwargs: other `keras.layers.Conv2D` arguments.

    Returns:
        A tensor `[batch, H, W, filters]`.

    Example:

    >>> y = MaskedConv2D(64, 7, mask_type="A")(keras.ops.ones((1, 8, 8, 16)))
    """

    def __init__(self, filters, kernel_size, mask_type="B", **kwargs):
        kernel_size = (kernel_size,) * 2 if isinstance(kernel_size, int) else tuple(kernel_size)
        _check_mask_args(kernel_size, mask_type, kwargs)
        super().__init__(filters, kernel_size, padding="same", **kwargs)
        self.mask_type = mask_type
        self.kernel_mask = _pixelcnn_mask(self.kernel_size, mask_type)

    def call(self, inputs):
        kernel = self.kernel * ops.convert_to_tensor(self.kernel_mask, dtype=self.kernel.dtype)
        return _bias_and_activation(self, self.convolution_op(inputs, kernel))

    def get_config(self):
        config = super().get_config()
        for key in ("padding", "strides", "data_format"):
            config.pop(key)
        return {**config, "mask_type": self.mask_type}


def gated_activation(x):
    """`tanh(a) * sigmoid(b)` of the two halves `a, b` of the last axis (PixelCNN and
    WaveNet gates)."""
    a, b = ops.split(x, 2, axis=-1)
    return ops.tanh(a) * ops.sigmoid(b)


def apply_built(layer, x):
    """A built layer's output without a layer call: a `Conv1D`/`Conv2D` with stride 1,
    no dilation, one group and 'valid' padding as `keras.ops` on its weights (a width-1
    kernel as the matrix product it is), any other layer through its `call` (for layers
    whose output does not depend on `training`: activations, not dropout). Step-by-step
    samplers use it: a layer call's setup dominates one-code steps on torch's CPU
    kernels (about 0.1 ms each), and `torch.compile` breaks its graph at every one."""
    plain = (isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D))
             and set(layer.strides) == {1} and set(layer.dilation_rate) == {1}
             and layer.groups == 1 and layer.padding == "valid"
             and layer.data_format == "channels_last")
    if not plain:
        return layer.call(x) if layer.built else layer(x)
    kernel = ops.cast(layer.kernel, x.dtype)
    if set(layer.kernel_size) == {1}:
        y = ops.matmul(x, ops.reshape(kernel, kernel.shape[-2:]))
    else:
        y = ops.conv(x, kernel, padding="valid")
    if layer.use_bias:
        y = y + ops.cast(layer.bias, x.dtype)
    return layer.activation(y) if layer.activation is not None else y


def _conditioned(features, condition):
    """`features` `[B, H, W, C]` plus a per-example `condition` `[B, C]` (or None)."""
    if condition is None:
        return features
    return features + ops.cast(condition, features.dtype)[:, None, None, :]


def _shift(x, axis):
    """Shifts x by one step along `axis` (1 = down, 2 = right), zero-filled."""
    pad = [[0, 0]] * 4
    pad[axis] = [1, 0]
    x = ops.pad(x, pad)
    return x[:, :-1] if axis == 1 else x[:, :, :-1]


@keras.saving.register_keras_serializable(package="layers")
class GatedMaskedConv2D(keras.layers.Layer):
    """Gated PixelCNN layer with vertical and horizontal stacks (van den Oord et
    al. 2016, "Conditional image generation with PixelCNN decoders"); no blind spot.

    The vertical stack sees the `kernel_size // 2` rows above and the current row;
    it reaches the horizontal stack shifted down by one row. The horizontal stack
    sees the current row left of `j` (mask 'A') or up to `j` (mask 'B', with a
    residual connection). Gates are `tanh(a) * sigmoid(b)`. Use mask 'A' for the
    first layer (called on one tensor) and 'B' after it.

    Args:
        filters: channels of both stacks.
        kernel_size: odd int.
        mask_type: 'A' or 'B' (a 'B' layer needs `filters` input channels).
        kernel_initializer: initialiser of the four convolution kernels.
        **kwargs: base `Layer` arguments.

    Call args:
        inputs: a tensor `[B, H, W, C]` (used for both stacks) or `[v, h]`.
        condition: optional `[B, 2 * filters]` added to both stacks' pre-gate features at
            every position (the conditional PixelCNN's `V^T h` term, e.g. an embedded
            class label); it does not change what a position sees of the input.

    Returns:
        `[v, h]`, two tensors `[B, H, W, filters]`; `h` is the causal output.

    Example:

    >>> v, h = GatedMaskedConv2D(32, 3, "A")(x)
    >>> v, h = GatedMaskedConv2D(32, 3, "B")([v, h])
    """

    def __init__(self, filters, kernel_size=3, mask_type="B", kernel_initializer="glorot_uniform",
                 **kwargs):
        super().__init__(**kwargs)
        if mask_type not in ("A", "B") or kernel_size % 2 == 0:
            raise ValueError(f"Need mask_type 'A'/'B' and an odd kernel_size, got "
                             f"{mask_type!r}, {kernel_size}.")
        self.filters, self.kernel_size, self.mask_type = int(filters), int(kernel_size), mask_type
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        r, f = self.kernel_size // 2, self.filters

        def conv(n, size, name):
            return keras.layers.Conv2D(n, size, kernel_initializer=self.kernel_initializer,
                                       name=name, dtype=self.dtype_policy)

        self.v_conv = conv(2 * f, (r + 1, self.kernel_size), "v_conv")
        self.h_conv = conv(2 * f, (1, r + 1), "h_conv")
        self.v_to_h = conv(2 * f, 1, "v_to_h")
        self.h_out = conv(f, 1, "h_out")

    def build(self, input_shape):
        shape = tuple(input_shape[1] if isinstance(input_shape[0], (list, tuple)) else input_shape)
        if self.mask_type == "B" and shape[-1] != self.filters:
            raise ValueError(f"A mask 'B' layer needs {self.filters} input channels, got {shape}.")
        self.v_conv.build(shape)
        self.h_conv.build(shape)
        self.v_to_h.build(shape[:-1] + (2 * self.filters,))
        self.h_out.build(shape[:-1] + (self.filters,))

    def call(self, inputs, condition=None):
        v, h = inputs if isinstance(inputs, (list, tuple)) else (inputs, inputs)
        v_feat = self.vertical(v)
        h_new = self.horizontal(h, self.to_horizontal(_shift(v_feat, 1)), condition)
        return [self.vertical_output(v_feat, condition), h_new]

    # The two stacks apart, for samplers that keep the rows above (``call`` composes them).
    def vertical(self, v):
        """The vertical stack's pre-gate features `[B, H, W, 2 * filters]` of its input
        `v` (each position sees `kernel_size // 2` rows above and its own row)."""
        r = self.kernel_size // 2
        return apply_built(self.v_conv, ops.pad(v, [[0, 0], [r, 0], [r, r], [0, 0]]))

    def vertical_output(self, v_feat, condition=None):
        """The vertical stack's output (the next layer's `v`) from its features."""
        return gated_activation(_conditioned(v_feat, condition))

    def to_horizontal(self, v_feat_above):
        """What the horizontal stack adds at each position from the vertical features
        of the row above it (`v_feat` shifted down one row; zeros above the first)."""
        return apply_built(self.v_to_h, v_feat_above)

    def horizontal(self, h, from_above, condition=None):
        """The horizontal stack's output `[B, H, W, filters]` from its input `h` (each
        position sees its row left of it, or up to it for mask 'B') and
        :meth:`to_horizontal`'s term for the same positions."""
        r = self.kernel_size // 2
        h_src = _shift(h, 2) if self.mask_type == "A" else h
        h_feat = apply_built(self.h_conv, ops.pad(h_src, [[0, 0], [0, 0], [r, 0], [0, 0]]))
        h_new = apply_built(self.h_out, gated_activation(_conditioned(h_feat + from_above,
                                                                     condition)))
        return h_new + h if self.mask_type == "B" else h_new

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape[1] if isinstance(input_shape[0], (list, tuple)) else input_shape)
        out = shape[:-1] + (self.filters,)
        return [out, out]

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "mask_type": self.mask_type,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


@keras.saving.register_keras_serializable(package="layers")
class CausalConv1D(keras.layers.Conv1D):
    """Causal 1-D convolution (channels last) with an explicit-state streaming API.

    The input is padded on the left by `(kernel_size - 1) * dilation_rate`, so
    output `n` depends only on inputs up to `n * strides`; the output length is
    `ceil(T / strides)`. `stream` processes a signal block by block with the
    state passed in and returned explicitly (no hidden variables, so it can be
    exported as a signature): the state is the last `(kernel_size - 1) *
    dilation_rate` input samples. Because every block starts on a multiple of
    the stride, the concatenation of the streamed outputs equals the offline
    output exactly whenever block lengths are multiples of `strides` (unlike
    cached-padding implementations that lose the stride phase).

    Args:
        filters: output channels.
        kernel_size: kernel width.
        strides: stride (keras: not together with `dilation_rate > 1`).
        dilation_rate: dilation.
        **kwargs: other `keras.layers.Conv1D` arguments (padding and data format
            are fixed).

    Returns:
        `[batch, ceil(T / strides), filters]`.

    Example:

    >>> conv = CausalConv1D(16, 3, dilation_rate=4)
    >>> y = conv(x)                         # offline
    >>> state = conv.initial_state(batch_size=1)
    >>> y0, state = conv.stream(x[:, :256], state)
    >>> y1, state = conv.stream(x[:, 256:], state)   # concat(y0, y1) == y
    """

    def __init__(self, filters, kernel_size, strides=1, dilation_rate=1, **kwargs):
        for key, allowed in (("padding", "valid"), ("data_format", "channels_last")):
            if kwargs.pop(key, allowed) != allowed:
                raise ValueError(f"CausalConv1D fixes {key}={allowed!r}.")
        super().__init__(filters, kernel_size, strides=strides, padding="valid",
                         dilation_rate=dilation_rate, **kwargs)
        self.context = (self.kernel_size[0] - 1) * self.dilation_rate[0]

    def call(self, inputs):
        return super().call(ops.pad(inputs, [[0, 0], [self.context, 0], [0, 0]]))

    def compute_output_shape(self, input_shape):
        t, s = input_shape[1], self.strides[0]
        return (input_shape[0], None if t is None else -(-t // s), self.filters)

    def initial_state(self, batch_size):
        """Zeros `[batch_size, (kernel_size - 1) * dilation_rate, in_channels]`."""
        if not self.built:
            raise ValueError("Build (or call) the layer before asking for its state.")
        return ops.zeros((batch_size, self.context, self._kernel.shape[1] * self.groups),
                         dtype=self.compute_dtype)

    def stream(self, inputs, state):
        """One block: `inputs [B, L, C]` (L a multiple of `strides`) and the state
        -> `(outputs [B, L / strides, filters], new_state)`."""
        inputs = ops.convert_to_tensor(inputs, dtype=self.compute_dtype)
        length = inputs.shape[1]
        if length is not None and length % self.strides[0]:
            raise ValueError(
                f"Block length {length} is not a multiple of strides={self.strides[0]}.")
        if not self.built:
            self.build(inputs.shape)
        x = ops.concatenate([ops.cast(state, inputs.dtype), inputs], axis=1)
        new_state = x[:, -self.context:] if self.context else state
        if length == self.strides[0] and self.groups == 1:
            return self._one_frame(x), new_state
        return super().call(x), new_state

    def _one_frame(self, x):
        """The single output frame of a block as long as the stride (autoregressive
        sampling streams one input at a time): the kernel's taps gathered into one
        matrix product instead of a convolution call (far cheaper per call for tiny
        inputs, where convolution libraries spend their time on setup)."""
        taps = [x[:, m * self.dilation_rate[0]] for m in range(self.kernel_size[0])]
        flat = ops.concatenate(taps, axis=-1) if len(taps) > 1 else taps[0]
        kernel = ops.reshape(self.kernel, (-1, self.filters))  # [k * C_in, filters], tap-major
        y = ops.matmul(flat, kernel)
        if self.use_bias:
            y = y + self.bias
        y = y[:, None, :]
        return self.activation(y) if self.activation is not None else y

    def get_config(self):
        config = super().get_config()
        config.pop("padding")
        config.pop("data_format")
        return config


@functools.lru_cache(maxsize=None)
def _upsample_fold(r):
    """``fold[q, p, m] = 1`` when tap ``m`` of output phase ``p`` (frame ``t = r j + p``)
    reads input frame ``j + q - 2`` (causal: ``u[t - (2r - 1) + m]``) or ``j + q - 1``
    (centred, Keras' 'same' for an even width: ``u[t - (r - 1) + m]``); ``u[s] = x[s // r]``.
    Built once per ratio (eager backends call :func:`upsample_conv1d` on every block)."""
    fold = np.zeros((3, r, 2 * r), "float32")
    for p in range(r):
        for m in range(2 * r):
            fold[(p + 1 + m) // r, p, m] = 1.0
    fold.flags.writeable = False
    return fold


def fold_upsample_kernel(kernel, ratio):
    """The `[3, C_in, ratio * C_out]` polyphase kernel of :func:`upsample_conv1d` from
    the `[2 * ratio, C_in, C_out]` kernel of the repeated form: for each output phase,
    the sums of the taps that land on each of the 3 input frames it reads. A pure
    function of the weights: inference can compute it once per weights (the engine's
    `weight_constant`) and pass it as `folded`."""
    r = int(ratio)
    if r < 1:
        raise ValueError(f"ratio must be >= 1, got {ratio}")
    kernel = ops.convert_to_tensor(kernel)
    if kernel.shape[0] != 2 * r:
        raise ValueError(f"kernel width {kernel.shape[0]} is not 2 * ratio = {2 * r}")
    c_in, c_out = kernel.shape[1], kernel.shape[2]
    fold = ops.convert_to_tensor(_upsample_fold(r), kernel.dtype)
    return ops.reshape(ops.einsum("qpm,mco->qcpo", fold, kernel), (3, c_in, r * c_out))


def _input_rate_conv(inputs, folded, causal, state):
    """The convolution a polyphase upsampling runs at the input rate, with the
    ``[width, C_in, r C_out]`` kernel ``folded``: causal, the input follows ``width - 1``
    past frames (the streamed ``state``, else zeros); centred, one zero frame on each
    side. Returns ``(outputs, the input with its context)``."""
    x = ops.convert_to_tensor(inputs, folded.dtype)
    if state is not None:
        x = ops.concatenate([ops.cast(state, x.dtype), x], axis=1)
    else:
        x = ops.pad(x, [[0, 0], [folded.shape[0] - 1, 0] if causal else [1, 1], [0, 0]])
    return ops.conv(x, folded, strides=1, padding="valid"), x


def upsample_conv1d(inputs, kernel, bias, ratio, causal=False, state=None, folded=None):
    """Upsampling by `ratio`: repeat every frame `ratio` times, then the 1-D convolution
    of width `2 * ratio` with `kernel [2r, C_in, C_out]` and `bias` (causal, or centred
    'same' padding as `keras.layers.Conv1D`), computed without the repeat, in
    polyphase form.

    Output frame `r * j + p` of the repeated-then-convolved signal depends only on input
    frames `j - 2 .. j` (causal) or `j - 1 .. j + 1` (centred), through the sums of the
    kernel taps that land on each of them. So the kernel is folded into a
    `[3, C_in, r * C_out]` one (:func:`fold_upsample_kernel`; pass it as `folded` to
    skip the fold) and a width-3 convolution runs at the input rate, then the `r`
    phases are interleaved: the same function with `3 / (2r)` of the multiplies
    (r = 4: 2.7x fewer) and no repeated copy of the input. The weights can stay in the
    `Conv1D` / `CausalConv1D` that the repeated form would use.

    With `state` (causal only: the last 2 input frames, zeros `[B, 2, C_in]` at the
    start) it processes one block and returns `(outputs, new_state)`; concatenated
    blocks equal the offline output.

    Returns:
        `[batch, T * ratio, C_out]` (and the new state when `state` is given).

    Example:

    >>> conv = CausalConv1D(32, 8)                 # width 2r for r = 4
    >>> conv.build((None, None, 16))
    >>> y = upsample_conv1d(x, conv.kernel, conv.bias, 4, causal=True)   # x [B, T, 16]
    """
    if state is not None and not causal:
        raise ValueError("upsample_conv1d streams (state=...) only when causal.")
    if folded is None:
        folded = fold_upsample_kernel(kernel, ratio)
    r = int(ratio)
    c_out = folded.shape[2] // r
    y, x = _input_rate_conv(inputs, folded, causal, state)
    y = ops.reshape(y, (ops.shape(y)[0], ops.shape(y)[1] * r, c_out)) + bias
    return y if state is None else (y, x[:, -2:])


def _transposed_taps(ratio, shift):
    """Which taps of a width-``2r`` transposed convolution reach output phase ``p``
    from the earlier (``first``) and the later (``second``) of the two input frames it
    reads (``shift`` = the transposed convolution's padding). Phases ``p < r - shift``
    read frames ``(j - 1, j)``, the others ``(j, j + 1)``."""
    first, second = [], []
    for p in range(ratio):
        m = p + shift
        first.append(m + ratio if m < ratio else m)
        second.append(m if m < ratio else m - ratio)
    return np.array(first), np.array(second)


def fold_transposed_kernel(kernel, ratio, causal=False):
    """The ``[2, C_in, ratio * C_out]`` polyphase kernel of
    :func:`transposed_upsample_conv1d` from a ``[2 * ratio, C_in, C_out]`` kernel:
    for each output phase, the two taps that reach it (a pure function of the
    weights, computed once per weights at inference: the engine's ``weight_constant``)."""
    r = int(ratio)
    kernel = ops.convert_to_tensor(kernel)
    if r < 1 or kernel.shape[0] != 2 * r:
        raise ValueError(f"kernel width {kernel.shape[0]} is not 2 * ratio (ratio {ratio})")
    first, second = _transposed_taps(r, 0 if causal else r // 2)
    c_in, c_out = kernel.shape[1], kernel.shape[2]
    taps = ops.stack([ops.take(kernel, first, axis=0), ops.take(kernel, second, axis=0)])
    return ops.reshape(ops.transpose(taps, (0, 2, 1, 3)), (2, c_in, r * c_out))


def transposed_upsample_conv1d(inputs, kernel, bias, ratio, causal=False, state=None,
                               folded=None):
    """Upsampling by ``ratio`` with a transposed convolution of width ``2 * ratio`` and
    stride ``ratio`` (RAVE's upsampling): ``y[n] = sum_j x[j] kernel[n + s - r j] + bias``
    for ``n < T r``, with ``s = 0`` (causal: output frame ``r j + p`` reads input frames
    ``j - 1`` and ``j``) or ``s = r // 2`` (centred: PyTorch's ``ConvTranspose1d`` with
    ``padding=r // 2``, as RAVE's non-causal models, cut to ``T r`` samples).

    Every output phase reads exactly two input frames, so it runs as one width-2
    convolution at the input rate with a ``[2, C_in, r C_out]`` kernel
    (:func:`fold_transposed_kernel`) and an interleave of the ``r`` phases: 2 / 3 of
    the multiplies of :func:`upsample_conv1d`, and no zeros inserted. With ``state``
    (causal only: the last input frame, zeros ``[B, 1, C_in]`` at the start) it
    processes one block and returns ``(outputs, new_state)``; concatenated blocks
    equal the offline output.

    Returns:
        ``[batch, T * ratio, C_out]`` (and the new state when ``state`` is given).
    """
    if state is not None and not causal:
        raise ValueError("transposed_upsample_conv1d streams (state=...) only when causal.")
    if folded is None:
        folded = fold_transposed_kernel(kernel, ratio, causal)
    r = int(ratio)
    c_out = folded.shape[2] // r
    y, x = _input_rate_conv(inputs, folded, causal, state)     # [B, T (+ 1), r C_out]
    batch, frames = ops.shape(y)[0], ops.shape(y)[1]
    if not causal:  # low phases read (j - 1, j): output j; high ones (j, j + 1): j + 1
        low = (r - r // 2) * c_out
        y = ops.concatenate([y[:, :-1, :low], y[:, 1:, low:]], axis=-1)
        frames = frames - 1
    y = ops.reshape(y, (batch, frames * r, c_out)) + bias
    return y if state is None else (y, x[:, -1:])


@keras.saving.register_keras_serializable(package="layers")
class ResidualBlock1D(keras.layers.Layer):
    """Dilated residual unit `x + Conv_k2(act(Conv_k,d(act(x))))` (MelGAN/RAVE
    style), `act` = LeakyReLU, channels kept. `k2` = `output_kernel_size`: 1 (a 1x1
    projection, RAVE v2's dilated unit, the default) or 3 (RAVE v1's residual layer:
    a dilated k3 conv then an undilated k3 conv).

    With `causal=True` the convs are `CausalConv1D`s and the block streams:
    `initial_state(batch_size)` and `stream(x_block, state) -> (y_block, state)`; the
    state is one tensor (the two convs' states concatenated in time).

    Args:
        kernel_size: width of the dilated convolution.
        dilation_rate: its dilation.
        causal: causal (streamable) rather than centred ('same') padding.
        output_kernel_size: width of the second (undilated) convolution.
        negative_slope: LeakyReLU slope (0.2).
        kernel_initializer: initialiser of both convolution kernels.
        **kwargs: base `Layer` arguments.

    Returns:
        A tensor of the input's shape.

    Example:

    >>> y = ResidualBlock1D(3, dilation_rate=9, causal=True)(x)   # x [B, T, C]
    """

    def __init__(self, kernel_size=3, dilation_rate=1, causal=False, negative_slope=0.2,
                 kernel_initializer="glorot_uniform", output_kernel_size=1, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = int(kernel_size)
        self.output_kernel_size = int(output_kernel_size)
        if self.output_kernel_size < 1:
            raise ValueError(f"output_kernel_size must be >= 1, got {output_kernel_size}")
        self.dilation_rate = int(dilation_rate)
        self.causal = bool(causal)
        self.negative_slope = float(negative_slope)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        c, k, d = input_shape[-1], self.kernel_size, self.dilation_rate
        kw = dict(kernel_initializer=self.kernel_initializer, dtype=self.dtype_policy)
        if self.causal:
            self.conv = CausalConv1D(c, k, dilation_rate=d, name="conv", **kw)
        else:
            self.conv = keras.layers.Conv1D(c, k, dilation_rate=d, padding="same", name="conv",
                                            **kw)
        k2 = self.output_kernel_size
        if self.causal and k2 > 1:
            self.proj = CausalConv1D(c, k2, name="proj", **kw)
        else:
            self.proj = keras.layers.Conv1D(c, k2, padding="same", name="proj", **kw)
        self.conv.build(input_shape)
        self.proj.build(input_shape)

    def _act(self, x):
        return ops.leaky_relu(x, self.negative_slope)

    def call(self, inputs):
        return inputs + self.proj(self._act(self.conv(self._act(inputs))))

    def initial_state(self, batch_size):
        """Streaming state (causal blocks only): the dilated conv's last inputs, then
        (``output_kernel_size > 1``) the second conv's, concatenated in time."""
        if not self.causal:
            raise ValueError("Only a causal ResidualBlock1D streams.")
        if self.output_kernel_size == 1:
            return self.conv.initial_state(batch_size)
        return ops.concatenate([self.conv.initial_state(batch_size),
                                self.proj.initial_state(batch_size)], axis=1)

    def stream(self, inputs, state):
        """`(y_block, new_state)`; concatenated blocks equal the offline output."""
        if not self.causal:
            raise ValueError("Only a causal ResidualBlock1D streams.")
        inputs = ops.convert_to_tensor(inputs, dtype=self.compute_dtype)
        if self.output_kernel_size == 1:
            y, state = self.conv.stream(self._act(inputs), state)
            return inputs + self.proj(self._act(y)), state
        n = self.conv.context
        y, first = self.conv.stream(self._act(inputs), state[:, :n])
        y, second = self.proj.stream(self._act(y), state[:, n:])
        return inputs + y, ops.concatenate([first, second], axis=1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size,
                "dilation_rate": self.dilation_rate, "causal": self.causal,
                "negative_slope": self.negative_slope,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "output_kernel_size": self.output_kernel_size}


@keras.saving.register_keras_serializable(package="layers")
class ResidualBlock2D(keras.layers.Layer):
    """2-D residual block `shortcut(x) + N(Conv(act(N(Conv(x)))))` (UNIT/CycleGAN
    style ResNet block), 'same' padding, channels last.

    `N` is instance normalisation when `instance_norm=True`, else identity;
    `act` is LeakyReLU (`negative_slope=0` gives ReLU). The shortcut is the
    identity, or a 1x1 conv when `filters` differs from the input channels.

    Args:
        filters: output channels (None: the input's).
        kernel_size: kernel size of both convolutions.
        negative_slope: LeakyReLU slope.
        instance_norm: normalise after each convolution.
        kernel_initializer: initialiser of the convolution kernels.
        **kwargs: base `Layer` arguments.

    Returns:
        `[B, H, W, filters]`.

    Example:

    >>> y = ResidualBlock2D(instance_norm=True, negative_slope=0.0)(x)
    """

    def __init__(self, filters=None, kernel_size=3, negative_slope=0.2, instance_norm=False,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.filters = None if filters is None else int(filters)
        self.kernel_size = kernel_size
        self.negative_slope = float(negative_slope)
        self.instance_norm = bool(instance_norm)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        c_in = input_shape[-1]
        f = self.filters or c_in
        kw = dict(kernel_initializer=self.kernel_initializer, dtype=self.dtype_policy)
        self.conv1 = keras.layers.Conv2D(f, self.kernel_size, padding="same", name="conv1", **kw)
        self.conv2 = keras.layers.Conv2D(f, self.kernel_size, padding="same", name="conv2", **kw)
        self.conv1.build(input_shape)
        out_shape = tuple(input_shape[:-1]) + (f,)
        self.conv2.build(out_shape)
        self.norms = []
        if self.instance_norm:
            self.norms = [InstanceNormalization(name=f"norm{i}", dtype=self.dtype_policy)
                          for i in (1, 2)]
            for norm in self.norms:
                norm.build(out_shape)
        self.shortcut = None
        if f != c_in:
            self.shortcut = keras.layers.Conv2D(f, 1, name="shortcut", **kw)
            self.shortcut.build(input_shape)

    def call(self, inputs):
        y = self.conv1(inputs)
        y = self.norms[0](y) if self.norms else y
        y = self.conv2(ops.leaky_relu(y, self.negative_slope))
        y = self.norms[1](y) if self.norms else y
        return (self.shortcut(inputs) if self.shortcut is not None else inputs) + y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters or input_shape[-1],)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "negative_slope": self.negative_slope,
                "instance_norm": self.instance_norm,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}
