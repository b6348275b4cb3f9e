"""Vector quantisers (VQ-VAE, van den Oord et al. 2017) and residual VQ.

All state that changes during training (EMA statistics, k-means init flag, the
shift that restarts or initialises trainable codes) lives in non-trainable
variables assigned in `call(training=True)`, so the layers train identically
under `fit()` on TensorFlow, JAX and torch.
"""
import keras
from keras import ops

__all__ = ["VectorQuantizer", "ResidualVectorQuantizer", "code_statistics"]


def code_statistics(indices, num_codes):
    """Perplexity and usage of a batch of code indices.

    Args:
        indices: integer tensor of any shape with values in `[0, num_codes)`.
        num_codes: codebook size.

    Returns:
        A dict with `"perplexity"` (`exp(-sum p log p)` of the code histogram `p`,
        from 1 for a single code up to `num_codes`), `"usage"` (fraction of codes
        used at least once) and `"counts"` (the histogram, shape `[num_codes]`).
    """
    flat = ops.reshape(indices, (-1,))
    counts = ops.sum(ops.one_hot(flat, num_codes, dtype="float32"), axis=0)
    p = counts / ops.maximum(ops.sum(counts), 1.0)
    perplexity = ops.exp(-ops.sum(p * ops.log(p + 1e-10)))
    usage = ops.mean(ops.cast(counts > 0, "float32"))
    return {"perplexity": perplexity, "usage": usage, "counts": counts}


def _nearest(x, codes):
    """Index of the nearest code (squared Euclidean) for each row of x [N, D]."""
    d = (ops.sum(ops.square(x), axis=1, keepdims=True)
         - 2.0 * ops.matmul(x, ops.transpose(codes))
         + ops.sum(ops.square(codes), axis=1)[None, :])
    return ops.argmin(d, axis=1)


def _kmeans(x, uniforms, iterations):
    """k-means of x [N, D] into K = len(uniforms) centroids.

    k-means++ seeding (each new centroid drawn with probability proportional to
    the squared distance to the nearest one so far, by inverse CDF of the given
    uniforms [K]), then `iterations` Lloyd steps; an empty cluster keeps its centroid.
    """
    k, n = uniforms.shape[0], ops.shape(x)[0]

    def seed_step(i, state):
        centroids, min_d2 = state
        cdf = ops.cumsum(min_d2)
        j = ops.minimum(ops.sum(ops.cast(cdf < uniforms[i] * cdf[-1], "int32")), n - 1)
        new = ops.take(x, j, axis=0)
        centroids = ops.where((ops.arange(k) == i)[:, None], new[None, :], centroids)
        return centroids, ops.minimum(min_d2, ops.sum(ops.square(x - new), axis=1))

    first = ops.take(x, ops.minimum(ops.cast(uniforms[0] * ops.cast(n, x.dtype), "int32"), n - 1),
                     axis=0)
    centroids = ops.zeros((k, x.shape[1]), x.dtype) + first[None, :]
    min_d2 = ops.sum(ops.square(x - first), axis=1)
    centroids, _ = ops.fori_loop(1, k, seed_step, (centroids, min_d2))

    def lloyd_step(_, centroids):
        onehot = ops.one_hot(_nearest(x, centroids), k, dtype=x.dtype)
        counts = ops.sum(onehot, axis=0)[:, None]
        sums = ops.matmul(ops.transpose(onehot), x)
        return ops.where(counts > 0, sums / ops.maximum(counts, 1.0), centroids)

    return ops.fori_loop(0, iterations, lloyd_step, centroids)


@keras.saving.register_keras_serializable(package="layers")
class VectorQuantizer(keras.layers.Layer):
    """Vector quantiser with straight-through gradients.

    Each vector along the last axis of the input (any rank: `[B, T, D]`,
    `[B, H, W, D]`, ...) is replaced by its nearest codebook entry (squared
    Euclidean distance). The output is `x + stop_gradient(q - x)`, so the encoder
    receives the decoder's gradient unchanged. The layer adds, via `add_loss`,
    `beta * mean((x - sg[q])^2)` (commitment) plus, unless `use_ema`,
    `mean((sg[x] - q)^2)` (codebook loss), on every call (evaluation reports it too).

    With `use_ema=True` the codebook is non-trainable and follows exponential
    moving averages of the assigned counts `N_k` and sums `m_k` (VQ-VAE-2, Sonnet
    `VectorQuantizerEMA`): with decay `d`, batch counts `n_k` and sums `s_k`,
    `N <- d N + (1-d) n`, `m <- d m + (1-d) s`,
    `N~_k = (N_k + eps) / (sum N + K eps) * sum N` (Laplace smoothing),
    `e_k = m_k / N~_k`. The statistics start at `N = 1`, `m = e`, so an unused
    code stays (nearly) in place instead of collapsing to zero.

    The EMA usage `N` (variable `cluster_size`, decay `ema_decay`) is tracked in
    both modes. With `dead_code_threshold > 0`, codes whose `N_k` falls below it
    are moved to random encoder outputs of the current batch (and get
    `N_k = threshold`). With `kmeans_init=True` the first training batch sets the
    codebook by k-means++ seeding and `kmeans_iterations` Lloyd iterations.
    In the trainable (non-EMA) mode these writes go to a non-trainable
    `code_shift` added to the trainable `codebook` (writes to trainable variables
    are lost under JAX's `fit()`); `codes` is always the effective codebook. All
    state is updated only when `training=True`.

    Args:
        num_codes: codebook size K.
        code_dim: code dimension D (the input's last axis).
        beta: commitment weight (0.25 in the paper).
        use_ema: EMA codebook updates instead of the codebook loss.
        ema_decay: decay of the EMA statistics (and of the usage counts).
        epsilon: Laplace smoothing constant.
        dead_code_threshold: restart codes whose EMA usage is below this
            (0 disables; 1 or 2 are usual).
        kmeans_init: initialise the codebook by k-means on the first training batch.
        kmeans_iterations: Lloyd iterations of the k-means init.
        seed: seed of the codebook initialiser and of the restart/init sampling.

    Returns:
        `(quantized, indices)`: the quantised tensor (input's shape and dtype) and
        int32 code indices (input's shape without the last axis).

    Example:

    >>> vq = VectorQuantizer(num_codes=512, code_dim=64, use_ema=True)
    >>> q, idx = vq(keras.random.normal((8, 100, 64)), training=True)
    >>> stats = vq.code_statistics(idx)   # perplexity, usage, counts
    """

    def __init__(self, num_codes, code_dim, beta=0.25, use_ema=False, ema_decay=0.99,
                 epsilon=1e-5, dead_code_threshold=0.0, kmeans_init=False,
                 kmeans_iterations=10, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.num_codes = int(num_codes)
        self.code_dim = int(code_dim)
        self.beta = float(beta)
        self.use_ema = bool(use_ema)
        self.ema_decay = float(ema_decay)
        self.epsilon = float(epsilon)
        self.dead_code_threshold = float(dead_code_threshold)
        self.kmeans_init = bool(kmeans_init)
        self.kmeans_iterations = int(kmeans_iterations)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        # All variables are float32 even under mixed precision (autocast=False): the
        # lookup and the statistics are computed in float32, the output cast back.
        if input_shape[-1] is not None and input_shape[-1] != self.code_dim:
            raise ValueError(
                f"VectorQuantizer expects last axis {self.code_dim}, got {input_shape}.")
        shape = (self.num_codes, self.code_dim)
        init = keras.initializers.VarianceScaling(distribution="uniform", seed=self.seed)
        self.codebook = self.add_weight(name="codebook", shape=shape, initializer=init,
                                        trainable=not self.use_ema, autocast=False)
        self.cluster_size = self.add_weight(name="cluster_size", shape=(self.num_codes,),
                                            initializer="ones", trainable=False, autocast=False)
        if self.use_ema:
            # The same seeded initialiser gives the same values: embed_sum = codebook.
            self.embed_sum = self.add_weight(name="embed_sum", shape=shape, trainable=False,
                                             initializer=init, autocast=False)
        else:
            self.code_shift = self.add_weight(name="code_shift", shape=shape, trainable=False,
                                              initializer="zeros", autocast=False)
        if self.kmeans_init:
            self.initialized = self.add_weight(name="initialized", shape=(), trainable=False,
                                               initializer="zeros", autocast=False)

    @property
    def codes(self):
        """The effective codebook `[num_codes, code_dim]` used for lookup."""
        codes = ops.convert_to_tensor(self.codebook)
        return codes if self.use_ema else codes + ops.convert_to_tensor(self.code_shift)

    def _set_codes(self, new_codes):
        if self.use_ema:
            self.codebook.assign(new_codes)
        else:
            self.code_shift.assign(new_codes - ops.convert_to_tensor(self.codebook))

    def _random_rows(self, x):
        """num_codes rows of x [N, D] drawn uniformly (with replacement)."""
        n = ops.shape(x)[0]
        r = keras.random.uniform((self.num_codes,), seed=self.seed_generator)
        idx = ops.minimum(ops.cast(r * ops.cast(n, "float32"), "int32"), n - 1)
        return ops.take(x, idx, axis=0)

    def call(self, inputs, training=None):
        x = ops.convert_to_tensor(inputs)
        flat = ops.reshape(x, (-1, self.code_dim))
        flat_sg = ops.stop_gradient(ops.cast(flat, self.variable_dtype))
        codes = self.codes
        if training and self.kmeans_init:
            fresh = ops.convert_to_tensor(self.initialized) < 0.5
            # Drawn outside the cond: the seed generator's state must not change in a branch.
            uniforms = keras.random.uniform((self.num_codes,), seed=self.seed_generator)
            codes = ops.stop_gradient(ops.cond(
                fresh, lambda: _kmeans(flat_sg, uniforms, self.kmeans_iterations), lambda: codes))
            if self.use_ema:  # restart the EMA statistics from the new codes (N = 1, m = e)
                size = ops.convert_to_tensor(self.cluster_size)
                self.cluster_size.assign(ops.where(fresh, ops.ones_like(size), size))
                embed = ops.convert_to_tensor(self.embed_sum)
                self.embed_sum.assign(ops.where(fresh, codes, embed))
            self._set_codes(codes)
            self.initialized.assign(1.0)
            if not self.use_ema:  # keep gradients to the trainable codebook
                codes = self.codes

        idx = _nearest(flat_sg, ops.stop_gradient(codes))
        q = ops.cast(ops.take(codes, idx, axis=0), x.dtype)
        loss = self.beta * ops.mean(ops.square(flat - ops.stop_gradient(q)))
        if not self.use_ema:
            loss = loss + ops.mean(ops.square(ops.stop_gradient(flat) - q))
        self.add_loss(loss)

        if training:
            self._update(flat_sg, idx)
        quantized = x + ops.stop_gradient(ops.reshape(q, ops.shape(x)) - x)
        return quantized, ops.reshape(ops.cast(idx, "int32"), ops.shape(x)[:-1])

    def _update(self, flat, idx):
        d = self.ema_decay
        onehot = ops.one_hot(idx, self.num_codes, dtype=flat.dtype)
        size = d * ops.convert_to_tensor(self.cluster_size) + (1 - d) * ops.sum(onehot, axis=0)
        if self.use_ema:
            embed = d * ops.convert_to_tensor(self.embed_sum) + (1 - d) * ops.matmul(
                ops.transpose(onehot), flat)
            n = ops.sum(size)
            smoothed = (size + self.epsilon) / (n + self.num_codes * self.epsilon) * n
            codes = embed / smoothed[:, None]
        if self.dead_code_threshold > 0:
            dead = size < self.dead_code_threshold
            fresh = self._random_rows(flat)
            if self.use_ema:
                codes = ops.where(dead[:, None], fresh, codes)
                embed = ops.where(dead[:, None], fresh * self.dead_code_threshold, embed)
            else:
                self._set_codes(ops.where(dead[:, None], fresh, self.codes))
            size = ops.where(dead, self.dead_code_threshold, size)
        self.cluster_size.assign(size)
        if self.use_ema:
            self.embed_sum.assign(embed)
            self.codebook.assign(codes)

    def code_statistics(self, indices):
        """Perplexity, usage fraction and histogram of `indices` (see `code_statistics`)."""
        return code_statistics(indices, self.num_codes)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape), tuple(input_shape[:-1])

    def compute_output_spec(self, inputs, training=None):
        return (keras.KerasTensor(inputs.shape, dtype=inputs.dtype),
                keras.KerasTensor(inputs.shape[:-1], dtype="int32"))

    def get_config(self):
        return {
            **super().get_config(),
            "num_codes": self.num_codes,
            "code_dim": self.code_dim,
            "beta": self.beta,
            "use_ema": self.use_ema,
            "ema_decay": self.ema_decay,
            "epsilon": self.epsilon,
            "dead_code_threshold": self.dead_code_threshold,
            "kmeans_init": self.kmeans_init,
            "kmeans_iterations": self.kmeans_iterations,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="layers")
class ResidualVectorQuantizer(keras.layers.Layer):
    """Residual vector quantiser (SoundStream-style): stage s quantises what the
    stages before it left over.

    Each stage is a `VectorQuantizer` adding its own losses on its own input
    residual; the residual passed on is `r - sg(q_s)`, so the commitment terms of
    all stages reach the encoder. The output is `x + sg(sum_s q_s - x)`: the
    encoder gets the upstream gradient once (straight through the whole stack).

    Args:
        num_stages: number of quantisers.
        num_codes, code_dim, beta, use_ema, ema_decay, epsilon,
        dead_code_threshold, kmeans_init, kmeans_iterations: as in
            `VectorQuantizer`, shared by all stages.
        seed: stage s uses `seed + s` (or None).

    Returns:
        `(quantized, indices)`: the sum of the stage quantisations (input's shape)
        and int32 indices of shape `input.shape[:-1] + (num_stages,)`.

    Example:

    >>> rvq = ResidualVectorQuantizer(num_stages=4, num_codes=256, code_dim=32)
    >>> q, idx = rvq(keras.random.normal((2, 50, 32)))   # idx: (2, 50, 4)
    """

    def __init__(self, num_stages, num_codes, code_dim, beta=0.25, use_ema=False,
                 ema_decay=0.99, epsilon=1e-5, dead_code_threshold=0.0, kmeans_init=False,
                 kmeans_iterations=10, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.num_stages = int(num_stages)
        self._vq_config = dict(
            num_codes=int(num_codes), code_dim=int(code_dim), beta=float(beta),
            use_ema=bool(use_ema), ema_decay=float(ema_decay), epsilon=float(epsilon),
            dead_code_threshold=float(dead_code_threshold), kmeans_init=bool(kmeans_init),
            kmeans_iterations=int(kmeans_iterations))
        self.seed = seed
        self.num_codes = int(num_codes)
        self.stages = [
            VectorQuantizer(**self._vq_config, seed=None if seed is None else seed + s,
                            name=f"stage_{s}", dtype=self.dtype_policy)
            for s in range(self.num_stages)
        ]

    def build(self, input_shape):
        for stage in self.stages:
            stage.build(input_shape)

    def call(self, inputs, training=None):
        residual = ops.convert_to_tensor(inputs)
        total, indices = 0.0, []
        for stage in self.stages:
            q, idx = stage(residual, training=training)
            q = ops.stop_gradient(q)
            total = total + q
            residual = residual - q
            indices.append(idx)
        quantized = inputs + ops.stop_gradient(total - inputs)
        return quantized, ops.stack(indices, axis=-1)

    def code_statistics(self, indices):
        """Per-stage statistics of `indices [..., num_stages]`, each stacked over stages."""
        stats = [code_statistics(indices[..., s], self.num_codes) for s in range(self.num_stages)]
        return {k: ops.stack([s[k] for s in stats]) for k in stats[0]}

    def compute_output_shape(self, input_shape):
        return tuple(input_shape), tuple(input_shape[:-1]) + (self.num_stages,)

    def compute_output_spec(self, inputs, training=None):
        return (keras.KerasTensor(inputs.shape, dtype=inputs.dtype),
                keras.KerasTensor(inputs.shape[:-1] + (self.num_stages,), dtype="int32"))

    def get_config(self):
        return {**super().get_config(), "num_stages": self.num_stages, **self._vq_config,
                "seed": self.seed}
