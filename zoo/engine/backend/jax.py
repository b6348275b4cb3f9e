"""JAX engine: jitted inference and the stateless adversarial step.

Variables draw their initial values with numpy (:func:`_initialize_with_host_draws`):
``jax.random`` would compile an XLA program per weight shape.

It also replaces Keras' JAX ``conv`` (:func:`conv`) where XLA's CPU gradients are
pathologically slow: grouped convolutions run one convolution per group
(:func:`conv_grouped_per_group`), and strided 1-D ones take their input gradient as
a matrix product and a scatter (:func:`strided_conv1d`); and where XLA's forward does
more multiplies than needed: at inference, from a call shape's third call, width-3
stride-1 1-D convolutions over long inputs run as Winograd F(4, 3)
(:func:`winograd_conv1d`, half the multiplies; :func:`call_inference`'s second tier).

``fit()`` empties every variable on JAX, so everything runs on the state's values:
gradients come from ``jax.value_and_grad`` over a pure function of the selected
variables, each sub-optimizer applies with ``stateless_apply``, and the step returns
``(logs, state)``.
"""
import contextlib
import functools
import threading

import jax
import jax.numpy as jnp
import keras
import numpy as np

from zoo.engine.backend._compiled import (CompiledCall, WeightConstants, cached,  # noqa: F401
                                          hoisted_constant, step_loop, thread_setting,
                                          weight_constant)


# ------------------------------------------------------------ compilation cache
def enable_compilation_cache():
    """JAX's persistent compilation cache in the zoo's cache folder
    (``$ZOO_CACHE_DIR/jax``, else ``~/.cache/audio-zoo/jax``), set when the zoo is
    imported: a new process loads the executables an earlier one compiled. Every
    compilation is kept (JAX's default keeps those over 1 s), because building a model
    compiles many small ones: ``zoo.load("rave")`` then its first streamed block took
    9.8 s + 1.8 s in a fresh process, 1.7 s + 0.35 s with the cache warm.
    ``ZOO_JAX_CACHE=0`` turns it off; a cache folder already configured (JAX's own
    ``JAX_COMPILATION_CACHE_DIR``) is left as it is. Returns the folder or ``None``."""
    import os

    from zoo.data.cache import cache_root

    if os.environ.get("ZOO_JAX_CACHE", "1") == "0":
        return None
    if jax.config.jax_compilation_cache_dir:
        return jax.config.jax_compilation_cache_dir
    folder = str(cache_root() / "jax")
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return folder


enable_compilation_cache()


# ------------------------------------------------------------ weight initialisation
_keras_random = keras.src.backend.jax.random
_keras_draws = {name: getattr(_keras_random, name)
                for name in ("uniform", "normal", "truncated_normal")}
_keras_initialize = keras.src.backend.jax.core.JaxVariable._initialize_with_initializer
_initialising = threading.local()  # .active: a variable's initial value is being drawn


def _initialize_with_host_draws(variable, initializer):
    """Keras' variable initialisation with its random draws made by numpy (seeded by
    the Keras seed it would have used): ``jax.random`` compiles one XLA program per
    weight shape, 41 of them (15 s, a cold cache) to build RAVE v1. The distributions
    are Keras'; only the stream of numbers differs (the same under a Keras
    distribution, so data-parallel and single-device runs start alike)."""
    _initialising.active = True
    try:
        return _keras_initialize(variable, initializer)
    finally:
        _initialising.active = False


def _host_rng(seed):
    """``(key, numpy generator)`` while a variable is initialised from a concrete
    seed, ``(key, None)`` otherwise (traced draws, e.g. dropout in a jitted step)."""
    key = _keras_random.jax_draw_seed(seed)
    if not getattr(_initialising, "active", False) or isinstance(key, jax.core.Tracer):
        return key, None
    return key, np.random.default_rng(np.asarray(key).astype(np.uint64).tolist())


def _draw(name, shape, params, dtype, seed, sample):
    """Keras' ``name`` draw: ``sample(rng, shape, *params)`` in numpy while a variable is
    initialised (float32 / float64), else Keras' own with the same key."""
    key, rng = _host_rng(seed)
    dtype = keras.backend.standardize_dtype(dtype or keras.config.floatx())
    if rng is None or dtype not in ("float32", "float64"):
        return _keras_draws[name](shape, **params, dtype=dtype, seed=key)
    values = sample(rng, tuple(shape), *(float(v) for v in params.values()))
    return jnp.asarray(values.astype(dtype))


def _truncated(rng, size):
    """Keras' truncation: standard normal draws outside [-2, 2] are drawn again."""
    values = rng.standard_normal(size)
    outside = np.abs(values) > 2.0
    while outside.any():
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2.0
    return values


def _uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
    return _draw("uniform", shape, {"minval": minval, "maxval": maxval}, dtype, seed,
                 lambda rng, size, low, high: rng.uniform(low, high, size))


def _normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    return _draw("normal", shape, {"mean": mean, "stddev": stddev}, dtype, seed,
                 lambda rng, size, mean, std: rng.standard_normal(size) * std + mean)


def _truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    return _draw("truncated_normal", shape, {"mean": mean, "stddev": stddev}, dtype, seed,
                 lambda rng, size, mean, std: _truncated(rng, size) * std + mean)


keras.src.backend.jax.core.JaxVariable._initialize_with_initializer = _initialize_with_host_draws
_keras_random.uniform, _keras_random.normal = _uniform, _normal
_keras_random.truncated_normal = _truncated_normal


# ------------------------------------------------------------ convolution
_keras_conv = keras.src.backend.jax.nn.conv


def conv_grouped_per_group(inputs, kernel, strides=1, padding="valid", data_format=None,
                           dilation_rate=1):
    """``keras.ops.conv`` with ``groups`` > 1 as ``groups`` ordinary convolutions on the
    channel slices, concatenated: the same function (group ``g`` reads input channels
    ``g * C_in / groups ...`` and writes output channels ``g * C_out / groups ...``, as
    Keras' grouped kernel ``[..., C_in / groups, C_out]`` does). XLA on CPU runs the
    gradient of one grouped convolution very slowly: a ``rave_v1`` stage-1 step at 8 x
    131072 took 10.7 s with RAVE v1's two-group encoder head, 4.6 s split (:func:`conv`
    sends depthwise and over-16-group convolutions to Keras' own)."""
    from keras.src.backend import standardize_data_format

    axis = -1 if standardize_data_format(data_format) == "channels_last" else 1
    groups = inputs.shape[axis] // kernel.shape[-2]
    parts = zip(jnp.split(inputs, groups, axis=axis), jnp.split(kernel, groups, axis=-1))
    return jnp.concatenate([conv(x, k, strides, padding, data_format, dilation_rate)
                            for x, k in parts], axis=axis)


def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    """Keras' JAX ``conv`` with XLA's slow CPU gradients routed round: grouped
    convolutions per group (:func:`conv_grouped_per_group`), strided undilated 1-D
    channels-last ones through :func:`strided_conv1d`; in :func:`call_inference`'s
    second tier, width-3 stride-1 1-D ones over long inputs through
    :func:`winograd_conv1d`; the rest unchanged."""
    from keras.src.backend import standardize_data_format
    from keras.src.backend.jax.core import convert_to_tensor

    channels_last = standardize_data_format(data_format) == "channels_last"
    groups = inputs.shape[-1 if channels_last else 1] // kernel.shape[-2]
    if 1 < groups <= 16 and kernel.shape[-2] > 1:
        return conv_grouped_per_group(inputs, kernel, strides, padding, data_format,
                                      dilation_rate)
    stride, dilation = (int(np.ravel(v)[0]) for v in (strides, dilation_rate))
    if (inputs.ndim == 3 and channels_last and groups == 1 and stride > 1 and dilation == 1
            and np.size(strides) == 1 and np.size(dilation_rate) == 1):
        pads = tuple(int(p) for p in jax.lax.padtype_to_pads(
            inputs.shape[1:2], kernel.shape[:1], (stride,), padding.upper())[0])
        out = (inputs.shape[1] + sum(pads) - kernel.shape[0]) // stride + 1
        if out < kernel.shape[0] or kernel.shape[-2] >= 128:
            kernel = convert_to_tensor(kernel)
            return strided_conv1d(convert_to_tensor(inputs, kernel.dtype), kernel, stride, pads)
    if (inputs.ndim == 3 and channels_last and groups == 1 and stride == 1
            and kernel.shape[0] == 3 and np.size(strides) == 1 and np.size(dilation_rate) == 1
            and isinstance(kernel, keras.Variable)):
        pads = tuple(int(p) for p in jax.lax.padtype_to_pads(
            inputs.shape[1:2], (2 * dilation + 1,), (1,), padding.upper())[0])
        out = inputs.shape[1] + sum(pads) - 2 * dilation
        if (kernel.shape[-2] >= _WINOGRAD_MIN_CHANNELS
                and inputs.shape[0] * out >= max(_WINOGRAD_MIN_FRAMES, kernel.shape[-2])):
            filters = _winograd_filters_if_allowed(kernel)
            if filters is not None:
                return winograd_conv1d(convert_to_tensor(inputs, filters.dtype), filters,
                                       dilation, pads)
    return _keras_conv(inputs, kernel, strides, padding, data_format, dilation_rate)


_CONV1D = ("NWC", "WIO", "NWC")


def _strided_direct(x, kernel, stride, pads):
    return jax.lax.conv_general_dilated(x, kernel, (stride,), [pads], dimension_numbers=_CONV1D)


def _strided_input_gradient(cotangent, kernel, stride, pads, length):
    """The input gradient of :func:`_strided_direct` as one matrix product and a
    scatter of its windows: ``g [B, out, O] @ kernel^T`` gives each output position's
    window gradient ``[B, out, k, C]`` (exactly the forward's multiplies, and the
    kernel is read in place), and window ``t``'s tap ``j`` lands on padded input
    sample ``s t + j``: tap block ``q`` (taps ``s q ... s q + s - 1``) of every window,
    shifted by ``q`` rows, in ``ceil(k / s)`` additions at the output rate."""
    k, s = kernel.shape[0], stride
    batch, out, channels = cotangent.shape[0], cotangent.shape[1], kernel.shape[1]
    windows = jnp.einsum("bto,kco->btkc", cotangent, kernel)
    taps = -(-k // s)
    windows = jnp.pad(windows, ((0, 0), (0, 0), (0, taps * s - k), (0, 0)))
    blocks = windows.reshape(batch, out, taps, s * channels)
    rows = out + taps - 1
    phases = sum(jnp.pad(blocks[:, :, q], ((0, 0), (q, rows - out - q), (0, 0)))
                 for q in range(taps))
    dx = phases.reshape(batch, rows * s, channels)
    dx = jnp.pad(dx, ((0, 0), (0, max(pads[0] + length - rows * s, 0)), (0, 0)))
    return dx[:, pads[0]:pads[0] + length]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def strided_conv1d(x, kernel, stride, pads):
    """A strided 1-D convolution (``[B, T, C]``, ``[k, C, O]``, explicit ``(low, high)``
    padding) computed as XLA computes it, whose input gradient is a matrix product
    and a scatter (:func:`_strided_input_gradient`) instead of XLA's input-dilated
    convolution; the kernel gradient is XLA's.

    :func:`conv` sends strided convolutions here when the output is shorter than the
    kernel or there are at least 128 input channels. Measured on this CPU (1 core,
    forward + both gradients, ``python``-timed minimum of 9):

    * output shorter than the kernel: XLA's input gradient falls off its fast path.
      TraVeLGAN's width-7 stride-2 convolution over 12 frames (48 chunks, 256
      channels) took 153 ms against 3.7 ms, three times in each generator update
      (G(a), G(b), the siamese); with 64 channels, 1.8 ms against 0.3 ms for the
      input gradient alone.
    * 128 channels and more: 0.71-0.98x XLA's time (TraVeLGAN's critic 512 -> 512,
      RAVE's encoder 128 -> 256 ... 512 -> 1024); with 32 or 64 channels over long
      inputs 1.09-1.15x, so those stay with XLA."""
    return _strided_direct(x, kernel, stride, pads)


def _strided_conv1d_forward(x, kernel, stride, pads):
    return _strided_direct(x, kernel, stride, pads), (x, kernel)


def _strided_conv1d_backward(stride, pads, residuals, cotangent):
    x, kernel = residuals
    dx = _strided_input_gradient(cotangent, kernel, stride, pads, x.shape[1])
    dk = jax.vjp(lambda w: _strided_direct(x, w, stride, pads), kernel)[1](cotangent)[0]
    return dx, dk


strided_conv1d.defvjp(_strided_conv1d_forward, _strided_conv1d_backward)

# Winograd F(4, 3) (Lavin & Gray 2016; points 0, 1, -1, 2, -2, infinity): four outputs
# of a width-3 correlation from one six-sample input tile,
# ``y = A^T [(G g) * (B^T d)]``.
_WINOGRAD_BT = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                         [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
                        "float32")
_WINOGRAD_G = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                        [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], "float32")
_WINOGRAD_AT = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0],
                         [0, 1, -1, 8, -8, 1]], "float32")
# where it pays (measured, 1 core): from 256 input channels (with fewer, the transforms'
# memory passes cost about what the saved multiplies do) and max(128, C_in) output
# frames (batch x length; with fewer, reading six transformed kernels instead of three
# costs more than the multiplies saved)
_WINOGRAD_MIN_CHANNELS = 256
_WINOGRAD_MIN_FRAMES = 128
# calls of one shape compiled as written before the Winograd version is (it compiles
# slower: a one-off call would lose more to compilation than it gains)
_WINOGRAD_AFTER_CALLS = 2


# Whether the inference function being traced may run Winograd convolutions
# (``.allowed``), and whether one of its convolutions could have (``.eligible``).
_winograd = threading.local()


def _convolutions(winograd):
    return thread_setting(_winograd, "allowed", winograd)


def _winograd_filters_if_allowed(kernel):
    """The kernel's hoisted Winograd filters where the function being traced runs
    Winograd convolutions (:func:`call_inference`'s second tier), else ``None``, noting
    that this convolution could have."""
    if not getattr(_winograd, "allowed", False):
        _winograd.eligible = True
        return None
    return hoisted_constant(kernel, "winograd", winograd_filters, (kernel,))


def _combine(matrix, terms):
    """``[sum_j matrix[a, j] * terms[j] for a]``, skipping zero coefficients (XLA fuses
    each sum into one elementwise pass)."""
    return [sum(float(c) * t for c, t in zip(row, terms) if c) for row in matrix]


def winograd_filters(kernel):
    """A width-3 kernel ``[3, C, O]`` as Winograd F(4, 3)'s six transformed filters
    ``G g``: ``[6, C, O]``."""
    from keras.src.backend.jax.core import convert_to_tensor

    return jnp.stack(_combine(_WINOGRAD_G, list(convert_to_tensor(kernel))))


def winograd_conv1d(x, filters, dilation, pads):
    """A width-3, stride-1 1-D convolution (``[B, T, C]``; ``filters`` =
    :func:`winograd_filters` of the ``[3, C, O]`` kernel; dilation ``d``; explicit
    ``(low, high)`` padding) as Winograd F(4, 3): 6 multiplies per 4 outputs and channel
    pair instead of 12. Output block ``n`` (``4 d`` frames) and phase ``o < d`` read the
    six inputs ``x[4 d n + o + j d]``; their ``B^T`` transforms meet the six filters in
    six matrix products ``[B * blocks * d, C] @ [C, O]``, and ``A^T`` maps the products
    to the block's four outputs.

    XLA's CPU convolution already runs at the core's matrix-product peak, so only fewer
    multiplies make it faster. :func:`conv` uses it in the second tier of
    :func:`call_inference` only (a call shape's third call on), where the filters are
    hoisted constants computed once per weights: transformed inside the compiled
    function, six chained convolutions of RAVE v1's decoder (936 frames x 512 channels)
    took 45 ms against XLA's 41 (XLA scheduled every transform first), 27 ms with the
    filters passed in. Measured on this CPU (1 core, minimum of 15, batch 1): one
    convolution at RAVE v1's decoder shapes (512 x 512 ... 16384 x 64 frames x
    channels, dilations 1, 3, 5) 0.59-0.78x XLA's time; the whole 10 s decode 229 -> 184
    ms; the largest error 4e-6 of the output's peak (XLA's own float32 rounding is
    about 1e-6). It compiles slower: about 0.15 s per convolution (the tile transforms'
    fusions), that decode's XLA compilation 0.85 -> 2.45 s."""
    d = dilation
    batch, length, channels = x.shape
    out = length + sum(pads) - 2 * d
    blocks = -(-out // (4 * d))
    x = jnp.pad(x, ((0, 0), (pads[0], (blocks + 2) * 4 * d - length - pads[0]), (0, 0)))
    x = x.reshape(batch, blocks + 2, 4, d, channels)   # [b, n, i, o] = x[4 d n + d i + o]
    taps = [x[:, j // 4:j // 4 + blocks, j % 4] for j in range(6)]
    tiles = jnp.stack(_combine(_WINOGRAD_BT, taps))
    products = jnp.einsum("abnpc,aco->abnpo", tiles, filters)
    y = jnp.stack(_combine(_WINOGRAD_AT, list(products)), axis=2)
    return y.reshape(batch, blocks * 4 * d, filters.shape[-1])[:, :out]


keras.src.backend.jax.nn.conv = conv


# ------------------------------------------------------------------ data parallel
@contextlib.contextmanager
def data_parallel(cpu_devices=None, coordinator=None, num_processes=None, process_id=None):
    """``keras.distribution.DataParallel`` over every device for the block; yields the
    device count. ``cpu_devices`` splits the host CPU into that many devices (JAX's
    ``jax_num_cpu_devices``; only before JAX starts), for trying it without accelerators.
    ``coordinator`` (``HOST:PORT``), ``num_processes`` and ``process_id`` join a
    multi-process run first (``jax.distributed.initialize``; gloo collectives on CPU):
    the devices are then every process's."""
    from zoo.errors import ZooError

    if coordinator is not None:
        if num_processes is None or process_id is None:
            raise ZooError("--coordinator needs --num-processes and --process-id")
        if not jax.distributed.is_initialized():
            jax.config.update("jax_cpu_collectives_implementation", "gloo")
            jax.distributed.initialize(coordinator, num_processes=int(num_processes),
                                       process_id=int(process_id))

    if cpu_devices:
        try:
            jax.config.update("jax_num_cpu_devices", int(cpu_devices))
        except RuntimeError:
            if len(jax.devices("cpu")) != int(cpu_devices):
                raise ZooError(f"--devices {cpu_devices}: JAX already started with "
                               f"{len(jax.devices('cpu'))} CPU device(s); set XLA_FLAGS="
                               f"--xla_force_host_platform_device_count={cpu_devices} "
                               "before starting Python") from None
    devices = keras.distribution.list_devices()
    previous = keras.distribution.distribution()
    # each process feeds its own rows of the global batch (the trainer shards the data,
    # for tf.data and PyDataset alike), so Keras must not shard the dataset again
    keras.distribution.set_distribution(
        keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False))
    try:
        yield len(devices)
    finally:
        keras.distribution.set_distribution(previous)


def replica_loss(loss):
    """Unchanged: JAX runs one program over the sharded batch (the loss is global)."""
    return loss


def process_layout():
    """``(index, count)`` of this process in a multi-process run (``(0, 1)`` alone)."""
    return jax.process_index(), jax.process_count()


def distribute_input(dataset):
    """Unchanged: ``DataParallel`` places each process's rows itself."""
    return dataset


# ------------------------------------------------------------------ inference
def call_inference(model, method, args, kwargs):
    """Run ``method`` as one jitted pure function of the model's variable values.

    Array arguments are traced, every other argument is static (part of the cache
    key). Inside a trace or a stateless scope (``fit``, export) it runs as written.
    Tensors derived from the weights alone (``weight_constant``: folded kernels) are
    hoisted out: computed by a jitted function of their own once per weights (JAX
    arrays are immutable, so "the same weights" is "the same arrays") and passed in.

    Compiled in two tiers: a call compiles as written; from the
    ``_WINOGRAD_AFTER_CALLS + 1``-th call with the same static arguments and array
    shapes, if one of its convolutions could run as Winograd F(4, 3)
    (:func:`winograd_conv1d`), a second version that does is compiled and used. It
    runs faster (RAVE v1's 10 s decode 229 -> 184 ms) but compiles slower (that
    decode's XLA compilation 0.85 -> 2.45 s), which only repeated calls repay.
    """
    if keras.src.backend.in_stateless_scope():
        return method(model, *args, **kwargs)
    call = CompiledCall(method, args, kwargs, lambda a: isinstance(a, (np.ndarray, jax.Array)))
    if any(isinstance(a, jax.core.Tracer) for a in call.arrays):  # inside a trace
        return method(model, *args, **kwargs)

    def build(winograd):
        variables, run = model.variables, call.runner()

        def scope(values):
            return keras.StatelessScope(state_mapping=list(zip(variables, values)))

        def recorded(values, arrays):
            with scope(values), _convolutions(winograd):
                return run(model, arrays)

        values = [v.value for v in variables]
        constants = WeightConstants().record(
            lambda: jax.eval_shape(recorded, values, call.arrays))

        def pure(values, derived, arrays):
            with scope(values), constants.providing(derived), _convolutions(winograd):
                return run(model, arrays)

        def derive(values):
            with scope(values):
                return constants.compute()

        return jax.jit(pure), variables, constants, jax.jit(derive)

    shapes = tuple((a.shape, str(a.dtype)) for a in call.arrays)
    seen = model.__dict__.setdefault("_inference_calls", {}).setdefault(
        (call.key, shapes), [0, None])       # [calls, whether Winograd could serve them]
    seen[0] += 1
    winograd = bool(seen[1]) and seen[0] > _WINOGRAD_AFTER_CALLS
    _winograd.eligible = False
    # the variables the function was traced with, listed once (walking the layer tree
    # for ``model.variables`` cost ~0.9 ms of a 2048-sample RAVE block's ~2.8 ms)
    compiled, variables, constants, derive = cached(
        model, (call.key, "winograd") if winograd else call.key, lambda: build(winograd))
    values = [v.value for v in variables]
    out = compiled(values, _derived(model, constants, derive, values), call.arrays)
    if seen[1] is None:   # the first call with these shapes traced them
        seen[1] = _winograd.eligible
    return out


def _derived(model, constants, derive, values):
    """The hoisted constants' values, recomputed only when a weight they come from is
    a different array (kept on the model per set of constants)."""
    if not constants.specs:
        return []
    kept = model.__dict__.setdefault("_weight_constants", {})
    key = tuple(constants.specs)
    sources = [getattr(w, "value", w) for w in constants.weights()]
    hit = kept.get(key)
    if hit is None or any(a is not b for a, b in zip(hit[0], sources)):
        hit = kept[key] = (sources, derive(values))
    return hit[1]


def value_and_grad(fn):
    """``fn(x, *constants) -> (loss, {name: scalar})`` -> jitted ``(loss, grad, aux)``."""
    compiled = jax.jit(jax.value_and_grad(fn, has_aux=True))

    def call(x, *constants):
        (loss, aux), grad = compiled(jnp.asarray(x), *constants)
        return float(loss), np.asarray(grad), {k: float(v) for k, v in aux.items()}

    return call


def sync_state(model):
    """Write the values ``fit`` keeps in its state pytree back into the variables."""
    model.jax_state_sync()


# ----------------------------------------------------------- adversarial step
def make_adversarial_train_function(model, force):
    """One jitted step per schedule phase instead of ``lax.cond``.

    XLA on CPU compiles the convolutions inside a ``lax.cond`` branch into slow
    loops (a TraVeLGAN generator step took 35-45 s that way, against well under 1 s
    unconditioned), so when the schedule has several phases the step counter is read
    on the host before each batch and the step compiled for exactly the objectives
    that run on it is called (one compilation per distinct phase, e.g. two for
    "critic every batch, generator every 3rd"). Eager and distributed runs and
    single-phase schedules keep Keras' own train function (returns ``None``).
    """
    comp = model._adversarial
    if (comp is None or model.run_eagerly or not model.jit_compile
            or all(o.every == 1 for o in comp.objectives)):
        return None
    from keras.src.distribution import distribution_lib

    if distribution_lib.distribution() is not None:
        return None
    if model.train_function is not None and not force:
        return model.train_function
    position = _positions(model.non_trainable_variables)[id(model.adversarial_step)]
    compiled = {}

    def dispatch(state, data):
        step = int(state[1][position])  # one scalar to the host per batch
        active = tuple(o.name for o in comp.objectives if step % o.every in o.at)
        fn = compiled.get(active)
        if fn is None:
            fn = compiled[active] = jax.jit(
                functools.partial(_train_step, model, active=active), donate_argnums=0)
        return fn(state, model._unpack(data))

    model.train_function = model._make_function(dispatch)
    return model.train_function


def adversarial_train_step(model, args):
    return _train_step(model, args[0], model._unpack(args[-1]))


def _train_step(model, state, data, active=None):
    """One batch on the state's values; ``active`` names the objectives that run
    (static, from the host-side dispatcher) or is None (decided in the graph)."""
    comp = model._adversarial
    tv, ntv, ov, mv = (list(s) for s in state)
    nt_pos = _positions(model.non_trainable_variables)
    step = ntv[nt_pos[id(model.adversarial_step)]]
    total = jnp.zeros((), "float32")
    carry = (tv, ntv, ov, mv)
    for obj in comp.objectives:
        def run(carry, obj=obj):
            losses = jnp.zeros((), "float32")
            for _ in range(obj.repeats):
                carry, loss = _update(model, obj, carry, data)
                losses = losses + loss
            return carry, losses / obj.repeats

        def skip(c):
            return c, jnp.zeros((), "float32")

        if active is not None:
            carry, loss = (run if obj.name in active else skip)(carry)
        elif obj.every == 1:
            carry, loss = run(carry)
        elif isinstance(step, jax.core.Tracer):  # jitted: a real conditional
            carry, loss = jax.lax.cond(model._scheduled(obj, step), run, skip, carry)
        else:  # run_eagerly: a Python branch (lax.cond would compile both branches)
            carry, loss = (run if bool(model._scheduled(obj, step)) else skip)(carry)
        total = total + loss
    tv, ntv, ov, mv = (list(c) for c in carry)
    ntv[nt_pos[id(model.adversarial_step)]] = step + 1
    it = _positions(model.optimizer.variables)[id(model.optimizer.iterations)]
    ov[it] = ov[it] + 1
    mv, logs = _metrics(model, mv, lambda: model._loss_tracker.update_state(total))
    return logs, (tv, ntv, ov, mv)


def _update(model, obj, carry, data):
    """One update of ``obj`` as a pure function of the state's value lists."""
    tv, ntv, ov, mv = (list(c) for c in carry)
    comp = model._adversarial
    opt = comp.optimizers[obj.name]
    t_pos = _positions(model.trainable_variables)
    sel = [t_pos[id(v)] for v in comp.var_lists[obj.name]]
    o_all = _positions(model.optimizer.variables)
    o_sel = [o_all[id(v)] for v in opt.variables]
    ntvars = model.non_trainable_variables

    def loss_fn(selected):
        values = list(tv)
        for i, value in zip(sel, selected):
            values[i] = value
        mapping = list(zip(model.trainable_variables, values)) + list(zip(ntvars, ntv))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            loss, extras = model._evaluate(obj, data, training=True)
        new_ntv = [_current(scope, v, old) for v, old in zip(ntvars, ntv)]
        return opt.scale_loss(loss), (loss, extras, new_ntv)

    (_, (loss, extras, ntv)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        [tv[i] for i in sel])
    # stateless_apply needs the sub-optimizer's own variable order (checked in compile)
    new_sel, new_opt = opt.stateless_apply([ov[i] for i in o_sel], grads, [tv[i] for i in sel])
    for i, value in zip(sel, new_sel):
        tv[i] = value
    for i, value in zip(o_sel, new_opt):
        ov[i] = value
    mv, _ = _metrics(model, mv, lambda: model._track(obj, loss, extras), logs=False)
    return (tv, ntv, ov, mv), loss


def _metrics(model, mv, update, logs=True):
    """Run ``update`` on the metric trackers statelessly; returns (values, logs)."""
    mvars = model.metrics_variables
    with keras.StatelessScope(state_mapping=list(zip(mvars, mv))) as scope:
        update()
        result = model._logs() if logs else None
    return [_current(scope, v, old) for v, old in zip(mvars, mv)], result


def adversarial_test_step(model, args):
    state, data = args[0], model._unpack(args[-1])
    tv, ntv, mv = (list(s) for s in state)
    ntvars = model.non_trainable_variables
    mapping = list(zip(model.trainable_variables, tv)) + list(zip(ntvars, ntv))
    results = []
    with keras.StatelessScope(state_mapping=mapping) as scope:
        for obj in model._adversarial.objectives:
            results.append((obj, *model._evaluate(obj, data, training=False)))
    ntv = [_current(scope, v, old) for v, old in zip(ntvars, ntv)]

    def update():
        total = 0.0
        for obj, loss, extras in results:
            model._track(obj, loss, extras)
            total = total + loss
        model._loss_tracker.update_state(total)

    mv, logs = _metrics(model, mv, update)
    return logs, (tv, ntv, mv)


def _positions(variables):
    return {id(v): i for i, v in enumerate(variables)}


def _current(scope, variable, old):
    value = scope.get_current_value(variable)
    return old if value is None else value
