"""The MelGAN-VC notebook's networks and training step, as the notebook builds them: the
reference of ``bench_travelgan.py``.

marcoppasini/MelGAN-VC (``MelGAN_VC.ipynb``, MIT licence) builds its networks with Keras 2
functional models (``tf.keras``): spectral-norm subclasses of ``Conv2D`` /
``Conv2DTranspose`` / ``Dense`` (one power iteration, ``u`` updated by ``assign``), a
``(mels, frames, 1)`` image input convolved by ``(mels, 3)`` kernels (so the mel axis is
collapsed by a 2-D convolution, not a 1-D one), ``BatchNormalization``, ``UpSampling2D`` +
conv in the decoder, ``Cropping2D`` / ``Concatenate`` to split and join the three chunks,
``Adam(lr, 0.5)``, and two ``tf.function`` steps: ``train_all`` (generator + siamese and
critic, one tape each) and ``train_d`` (critic only), called ``train_all`` on every
``gupt``-th batch (3) and ``train_d`` on the others.

This module transcribes those networks and steps for ``tf_keras`` (Keras 2 on TensorFlow,
``pip install tf_keras``; the zoo's Keras 3 cannot hold a TensorFlow model while another
backend runs), so the reference runs beside the zoo in the same process whatever
``KERAS_BACKEND`` is. Its parameter counts are checked against the notebook's (G / C / S =
2,934,785 / 4,498,433 / 1,394,304 at 192 mels, ``../shared/REFERENCE.md``).
"""
import numpy as np

NOTEBOOK_PARAMS = {"generator": 2_934_785, "critic": 4_498_433, "siamese": 1_394_304}


def available():
    """``(tf, tf_keras)``, or ``None`` with the reason."""
    try:
        import tensorflow as tf
        import tf_keras
    except ImportError as err:
        return None, f"{err} (pip install tf_keras)"
    return (tf, tf_keras), None


def build(n_mels=192, chunk=24, num_chunks=3, gen_ch=256, critic_ch=512, siamese_dim=128,
          lr=2e-4, beta_1=0.5, travel_w=10.0, identity_w=0.5, margin=2.0, seed=0):
    """The notebook's generator, critic and siamese at these sizes, its optimisers and its
    two ``tf.function`` steps. Returns a dict: ``train_all(a, b)``, ``train_d(a, b)``
    (``a``, ``b``: ``[batch, mels, chunk * num_chunks, 1]``), ``generate(chunks)``
    (``[n, mels, chunk, 1]``), ``params`` (trainable counts per network)."""
    (tf, keras2), why = available()
    if tf is None:
        raise RuntimeError(why)
    layers = keras2.layers
    tf.random.set_seed(seed)
    init = keras2.initializers.he_uniform(seed=seed)

    def l2normalize(v, eps=1e-12):
        return v / (tf.norm(v) + eps)

    class SpectralNorm:
        """One power iteration on the kernel reshaped to ``[-1, out]``; ``u`` kept. The
        layer's ``call`` is its own op (``_apply``) on the normalised kernel, then the
        bias and activation."""

        def build(self, input_shape):
            super().build(input_shape)
            self.u = self.add_weight(name="sn_u", shape=(1, self.kernel.shape[-1]),
                                     initializer=keras2.initializers.RandomNormal(0, 1),
                                     trainable=False)

        def normalized_kernel(self):
            w = tf.reshape(self.kernel, (-1, self.kernel.shape[-1]))
            v = l2normalize(tf.matmul(self.u, tf.transpose(w)))
            u = l2normalize(tf.matmul(v, w))
            sigma = tf.matmul(tf.matmul(v, w), tf.transpose(u))
            with tf.control_dependencies([self.u.assign(u)]):
                return tf.reshape(w / sigma, self.kernel.shape)

        def call(self, inputs):
            out = self._apply(inputs, self.normalized_kernel())
            if self.use_bias:
                out = tf.nn.bias_add(out, self.bias)
            return self.activation(out) if self.activation is not None else out

    class ConvSN2D(SpectralNorm, layers.Conv2D):
        def _apply(self, inputs, kernel):
            return self.convolution_op(inputs, kernel)

    class ConvSN2DTranspose(SpectralNorm, layers.Conv2DTranspose):
        def _apply(self, inputs, kernel):
            shape = tf.shape(inputs)
            (kh, kw), (sh, sw) = self.kernel_size, self.strides
            out_h = (shape[1] - 1) * sh + kh if self.padding == "valid" else shape[1] * sh
            out_w = (shape[2] - 1) * sw + kw if self.padding == "valid" else shape[2] * sw
            return tf.nn.conv2d_transpose(inputs, kernel,
                                          tf.stack([shape[0], out_h, out_w, self.filters]),
                                          strides=self.strides, padding=self.padding.upper())

    class DenseSN(SpectralNorm, layers.Dense):
        def _apply(self, inputs, kernel):
            return tf.matmul(inputs, kernel)

    def conv2d(x, filters, kernel_size, strides=2, padding="same", bnorm=True, sn=True):
        conv = ConvSN2D if sn else layers.Conv2D
        x = conv(filters, kernel_size, strides=strides, padding=padding,
                 kernel_initializer=init, use_bias=False)(x)
        if bnorm:
            x = layers.BatchNormalization()(x)
        return layers.LeakyReLU(0.2)(x)

    def deconv2d(x, skip, filters, kernel_size, bnorm=True):
        x = layers.UpSampling2D((1, 2))(x)
        x = ConvSN2D(filters, kernel_size, strides=(1, 1), kernel_initializer=init,
                     use_bias=False, padding="same")(x)
        if bnorm:
            x = layers.BatchNormalization()(x)
        x = layers.LeakyReLU(0.2)(x)
        return layers.Concatenate()([x, skip])

    def down_path(x, channels, sn, bnorm):
        g1 = conv2d(x, channels, (n_mels, 3), strides=1, padding="valid", sn=sn, bnorm=bnorm)
        g2 = conv2d(g1, channels, (1, 9), strides=(1, 2), sn=sn, bnorm=bnorm)
        g3 = conv2d(g2, channels, (1, 7), strides=(1, 2), sn=sn, bnorm=bnorm)
        return g1, g2, g3

    def build_generator():
        inp = layers.Input((n_mels, chunk, 1))
        g1, g2, g3 = down_path(layers.ZeroPadding2D((0, 1))(inp), gen_ch, True, True)
        g4 = deconv2d(g3, g2, gen_ch, (1, 7))
        g5 = deconv2d(g4, g1, gen_ch, (1, 9), bnorm=False)
        out = ConvSN2DTranspose(1, (n_mels, 1), strides=(1, 1), kernel_initializer=init,
                                padding="valid", activation="tanh")(g5)
        return keras2.Model(inp, out, name="G")

    def build_siamese():
        inp = layers.Input((n_mels, chunk, 1))
        g3 = down_path(inp, gen_ch, False, True)[-1]
        return keras2.Model(inp, layers.Dense(siamese_dim)(layers.Flatten()(g3)), name="S")

    def build_critic():
        inp = layers.Input((n_mels, chunk * num_chunks, 1))
        g3 = down_path(inp, critic_ch, True, False)[-1]
        return keras2.Model(inp, DenseSN(1, kernel_initializer=init)(layers.Flatten()(g3)),
                            name="C")

    gen, siam, critic = build_generator(), build_siamese(), build_critic()
    opt_gen = keras2.optimizers.Adam(lr, beta_1)
    opt_disc = keras2.optimizers.Adam(lr, beta_1)

    def extract(x):  # the notebook's three Cropping2D chunks
        w = x.shape[2]
        return (layers.Cropping2D(((0, 0), (0, 2 * (w // 3))))(x),
                layers.Cropping2D(((0, 0), (w // 3, w // 3)))(x),
                layers.Cropping2D(((0, 0), (2 * (w // 3), 0)))(x))

    def mae(x, y):
        return tf.reduce_mean(tf.abs(x - y))

    def loss_travel(sa, sab, sa1, sab1):
        l1 = tf.reduce_mean(((sa - sa1) - (sab - sab1)) ** 2)
        l2 = tf.reduce_mean(tf.reduce_sum(-(tf.nn.l2_normalize(sa - sa1, axis=[-1])
                                            * tf.nn.l2_normalize(sab - sab1, axis=[-1])), -1))
        return l1 + l2

    def loss_siamese(sa, sa1):
        logits = tf.sqrt(tf.reduce_sum((sa - sa1) ** 2, axis=-1, keepdims=True))
        return tf.reduce_mean(tf.square(tf.maximum(margin - logits, 0)))

    @tf.function
    def train_all(a, b):
        aa, aa2, aa3 = extract(a)
        bb, bb2, bb3 = extract(b)
        with tf.GradientTape() as tape_gen, tf.GradientTape() as tape_disc:
            fab, fab2, fab3 = (gen(aa, training=True), gen(aa2, training=True),
                               gen(aa3, training=True))
            fid, fid2, fid3 = (gen(bb, training=True), gen(bb2, training=True),
                               gen(bb3, training=True))
            cab = critic(layers.Concatenate(2)([fab, fab2, fab3]), training=True)
            cb = critic(b, training=True)
            sab, sab2 = siam(fab, training=True), siam(fab3, training=True)
            sa, sa2 = siam(aa, training=True), siam(aa3, training=True)
            loss_id = (mae(bb, fid) + mae(bb2, fid2) + mae(bb3, fid3)) / 3.0
            loss_m = loss_travel(sa, sab, sa2, sab2) + loss_siamese(sa, sa2)
            loss_g = tf.reduce_mean(-cab)
            loss_dr = tf.reduce_mean(tf.maximum(1 - cb, 0))
            loss_df = tf.reduce_mean(tf.maximum(1 + cab, 0))
            loss_d = (loss_dr + loss_df) / 2.0
            loss_gen = loss_g + travel_w * loss_m + identity_w * loss_id
        gs_vars = gen.trainable_variables + siam.trainable_variables
        opt_gen.apply_gradients(zip(tape_gen.gradient(loss_gen, gs_vars), gs_vars))
        opt_disc.apply_gradients(zip(tape_disc.gradient(loss_d, critic.trainable_variables),
                                     critic.trainable_variables))
        return loss_dr, loss_df, loss_g, loss_id

    @tf.function
    def train_d(a, b):
        aa, aa2, aa3 = extract(a)
        with tf.GradientTape() as tape_disc:
            fab = layers.Concatenate(2)([gen(aa, training=True), gen(aa2, training=True),
                                         gen(aa3, training=True)])
            loss_dr = tf.reduce_mean(tf.maximum(1 - critic(b, training=True), 0))
            loss_df = tf.reduce_mean(tf.maximum(1 + critic(fab, training=True), 0))
            loss_d = (loss_dr + loss_df) / 2.0
        opt_disc.apply_gradients(zip(tape_disc.gradient(loss_d, critic.trainable_variables),
                                     critic.trainable_variables))
        return loss_dr, loss_df

    @tf.function(reduce_retracing=True)
    def generate(chunks):
        return gen(chunks, training=False)

    def count(model):
        return int(sum(np.prod(v.shape) for v in model.trainable_variables))

    return {"train_all": train_all, "train_d": train_d, "generate": generate,
            "params": {"generator": count(gen), "critic": count(critic),
                       "siamese": count(siam)}}
