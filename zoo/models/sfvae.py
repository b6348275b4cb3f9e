"""Source-filter VAE: learn, find and control pitch and formants in a VAE's latent space
(Sadok, Leglaive, Girin, Alameda-Pineda & Séguier 2023, "Learning and controlling the
source-filter representation of speech with a variational autoencoder", Speech
Communication).

1. **The VAE** is trained without labels on single frames of power spectra (``n_fft``
   1024, hop 256 at 16 kHz: 513 bins): an MLP encoder 513-256-64 (tanh) to a Gaussian
   posterior of ``latent_dim`` (16), an MLP decoder 16-64-256-513 (tanh) whose output is
   the log-variance of a zero-mean complex Gaussian per bin, so the negative
   log-likelihood of the power spectrum is the Itakura-Saito divergence; loss = IS +
   ``beta`` KL per frame. The encoder reads the power spectrum in decibels, scaled to
   about [-1, 1] (the paper's power input, log-compressed for well-conditioned tanh
   units).
2. **Subspaces** (:meth:`SourceFilterVAE.fit_subspaces`): from a few seconds of labelled
   audio in which one factor varies (``builtin:vowels``' sweeps: f0, F1, F2, F3), the
   PCA of the aggregated posterior of each factor's frames
   (:func:`zoo.models.latent.aggregated_posterior_pca`) gives an orthonormal basis
   ``U_i`` of ``M_i`` dimensions (the share ``variance_retained`` of the variance) and
   the mean ``e_i``; a continuous piecewise-linear map ``g_i`` (``segments`` pieces)
   from the factor's value to the coordinates ``U_i^T (z - e_i)`` is fitted by least
   squares. Everything is stored in non-trainable variables, so it is saved in
   ``.keras`` files and exported.
3. **Edits** (:meth:`SourceFilterVAE.edit`): per frame,
   ``z' = z - U_i U_i^T (z - e_i) + U_i g_i(y)`` moves factor ``i`` to ``y`` (a
   constant, a trajectory, or a shift relative to the value read from ``z`` by inverting
   ``g_i``); whispering removes the f0 subspace, ``z' = z - U U^T z``. The decoded
   variances are the new power spectrum; the phase comes from Griffin-Lim.

The encoder and decoder act on each frame alone, so any length works and memory is
linear in the input.
"""
import keras
import numpy as np
from keras import layers as kl
from keras import ops

from layers import gaussian_kl, griffin_lim, itakura_saito_log, stft_magnitude
from zoo.engine import Capability, ZooModel, check_positive, inference, replica_loss
from zoo.errors import ZooError
from zoo.models.chunking import pad_to_length
from zoo.models.latent import (active_units, aggregated_posterior_pca, fidelity_dims,
                               invert_piecewise_linear, piecewise_linear,
                               piecewise_linear_fit)

FACTORS = ("f0", "F1", "F2", "F3")
PHASES = ("input", "random", "zeros")
SUBSPACE_REPORT = "subspaces.json"  # written beside a model whose subspaces were fitted
MIN_DB = -100.0  # power floor (dB re a full-scale sine) of the likelihood and the encoder input


def _factor_key(name, factors):
    """``"f1"`` -> ``"F1"``: the model's spelling of a factor name (case-insensitive)."""
    for f in factors:
        if f.lower() == str(name).lower():
            return f
    raise ZooError(f"unknown factor {name!r}; this model has {', '.join(factors)}")


def _per_factor_shares(variance_retained, factors):
    """``variance_retained`` (one share or one per factor) as a tuple per factor, each in
    (0, 1]."""
    try:
        shares = np.atleast_1d(np.asarray(variance_retained, np.float64)).reshape(-1).tolist()
    except (TypeError, ValueError):
        shares = [float("nan")]
    if len(shares) == 1:
        shares = shares * len(factors)
    if len(shares) != len(factors) or not all(0.0 < v <= 1.0 for v in shares):
        raise ValueError("variance_retained must be a share in (0, 1] or one per factor "
                         f"{list(factors)}, got {variance_retained}")
    return tuple(float(v) for v in shares)


def parse_target(spec, current):
    """A factor target per frame from ``spec`` and the ``current`` values ``[T]``.

    ``spec``: a number (constant, in the factor's unit), ``"+3st"`` / ``"-2st"``
    (semitones relative to the current value), ``"+10%"`` (percent), a string number,
    or a 1-D array (a trajectory, linearly resampled to ``T`` frames).
    """
    t = len(current)
    if isinstance(spec, str):
        text = spec.strip().lower()
        try:
            if text.endswith("st"):
                return current * 2.0 ** (float(text[:-2]) / 12.0)
            if text.endswith("%"):
                return current * (1.0 + float(text[:-1]) / 100.0)
            return np.full(t, float(text.removesuffix("hz")))
        except ValueError:
            raise ZooError(f"cannot read the factor target {spec!r} (a value such as 220, "
                           "a shift such as +3st or -10%, or a per-frame array)") from None
    values = np.asarray(spec, np.float64)
    if values.ndim == 0:
        return np.full(t, float(values))
    values = values.reshape(-1)
    if not len(values) or not np.all(np.isfinite(values)):
        raise ZooError("a factor trajectory must be a non-empty array of finite values")
    if len(values) == t:
        return values
    return np.interp(np.linspace(0, 1, t), np.linspace(0, 1, len(values)), values)


@keras.saving.register_keras_serializable(package="zoo")
class SourceFilterVAE(ZooModel):
    """Per-frame power-spectrum VAE with learned pitch / formant subspaces (module docstring).

    Args:
        sample_rate, n_fft, hop_length: the STFT (periodic Hann, centred).
        hidden: widths of the encoder's hidden layers (the decoder mirrors them).
        latent_dim: latent dimensions.
        beta: KL weight.
        griffin_lim_iters: Griffin-Lim iterations when resynthesising.
        factors: names of the labelled factors (``labels.csv`` columns).
        variance_retained: share of a factor's aggregated-posterior variance its
            subspace keeps (chooses ``M_i``): one share for all factors, or one per
            factor (the recipe keeps 0.99 for f0, whose edits then land within 1 %, and
            0.8 for the formants).
        subspace_dims: fixed ``M_i`` per factor instead (0: by ``variance_retained``).
        segments: pieces of each factor's piecewise-linear regression.
        labelled: a labelled dataset (``builtin:vowels`` or a folder with
            ``labels.csv``) to fit the subspaces on at the end of training ("" to skip;
            ``zoo sfvae-fit`` fits them later).
        seed: posterior sampling and Griffin-Lim's random phase.

    Example:
    >>> m = SourceFilterVAE(hidden=(64, 32), latent_dim=8)
    >>> m.reconstruct(np.zeros((1, 4096), "float32")).shape
    (1, 4096)
    """

    capabilities = {Capability.RECONSTRUCT, Capability.ENCODE, Capability.EDIT}

    def __init__(self, sample_rate=16000, n_fft=1024, hop_length=256, hidden=(256, 64),
                 latent_dim=16, beta=1.0, griffin_lim_iters=64, factors=FACTORS,
                 variance_retained: float | list[float] = 0.8, subspace_dims=(), segments=20,
                 labelled="", seed=None, **kwargs):
        super().__init__(**kwargs)
        check_positive(sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length,
                       latent_dim=latent_dim, griffin_lim_iters=griffin_lim_iters,
                       segments=segments)
        hidden = tuple(int(h) for h in hidden)
        if not hidden or min(hidden) < 1:
            raise ValueError(f"hidden must be positive layer widths, got {list(hidden)}")
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        factors = tuple(str(f) for f in factors)
        if not factors or len(set(factors)) != len(factors):
            raise ValueError(f"factors must be distinct names, got {list(factors)}")
        variance_retained = _per_factor_shares(variance_retained, factors)
        subspace_dims = tuple(int(d) for d in subspace_dims)
        if subspace_dims and (len(subspace_dims) != len(factors)
                              or not all(0 <= d <= latent_dim for d in subspace_dims)):
            raise ValueError(f"subspace_dims must give 0..latent_dim per factor {list(factors)},"
                             f" got {list(subspace_dims)}")
        if n_fft % hop_length:
            raise ValueError(f"n_fft ({n_fft}) must be a multiple of hop_length ({hop_length})")
        self._sample_rate, self.n_fft, self.hop_length = int(sample_rate), int(n_fft), int(hop_length)
        self.hidden, self.latent_dim, self.beta = hidden, int(latent_dim), float(beta)
        self.griffin_lim_iters, self.factors = int(griffin_lim_iters), factors
        self.variance_retained, self.subspace_dims = variance_retained, subspace_dims
        self.segments, self.labelled, self.seed = int(segments), str(labelled), seed
        self.num_bins = self.n_fft // 2 + 1
        self.power_scale = (4.0 / self.n_fft) ** 2  # a full-scale sine reads 0 dB
        self.seed_generator = keras.random.SeedGenerator(seed)
        # layers named, so every instance's weights have the same paths
        self.encoder = keras.Sequential(
            [kl.Dense(h, activation="tanh", name=f"hidden_{i}") for i, h in enumerate(hidden)]
            + [kl.Dense(2 * self.latent_dim, name="posterior")], name="encoder")
        self.decoder = keras.Sequential(
            [kl.Dense(h, activation="tanh", name=f"hidden_{i}")
             for i, h in enumerate(hidden[::-1])]
            + [kl.Dense(self.num_bins, name="log_variance")], name="decoder")
        # built here, so a model made from its config holds every variable
        self.encoder.build((None, None, self.num_bins))
        self.decoder.build((None, None, self.latent_dim))
        self.subspace = {}
        d, k = self.latent_dim, self.segments + 1
        for f in factors:
            self.subspace[f] = {
                name: self.add_weight(shape=shape, initializer="zeros", trainable=False,
                                      name=f"{f}_{name}")
                for name, shape in (("basis", (d, d)), ("dims", ()), ("mean", (d,)),
                                    ("knots", (k,)), ("values", (k, d)))}
        self.reconstruction_tracker = keras.metrics.Mean(name="itakura_saito")
        self.kl_tracker = keras.metrics.Mean(name="kl")

    @property
    def sample_rate(self):
        return self._sample_rate

    # ------------------------------------------------------------------ frames
    def power(self, waveform):
        """Waveforms ``[B, samples]`` -> calibrated power spectra ``[B, frames, bins]``."""
        waveform = pad_to_length(ops.convert_to_tensor(waveform, "float32"), self.n_fft)
        return stft_magnitude(waveform, self.n_fft, self.hop_length, power=2.0) * self.power_scale

    def encode_power(self, power):
        """Power spectra ``[..., bins]`` -> ``(z_mean, z_log_var)`` ``[..., latent_dim]``."""
        db = 10.0 * ops.log10(power + 10.0 ** (MIN_DB / 10.0))
        h = self.encoder((db - MIN_DB / 2.0) / (-MIN_DB / 2.0))
        z_mean, z_log_var = ops.split(h, 2, axis=-1)
        return z_mean, ops.clip(z_log_var, -30.0, 20.0)

    def decode_log_variance(self, z):
        """Latents ``[..., latent_dim]`` -> log-variances (natural log of power) per bin."""
        floor = float(np.log(10.0 ** (MIN_DB / 10.0)))
        return ops.logaddexp(self.decoder(z), ops.full((), floor))

    @inference
    def synthesize(self, z, length, phase="zeros"):
        """Latents ``[B, frames, latent_dim]`` -> waveforms of ``length`` samples: the
        decoded power spectra with Griffin-Lim started from ``phase`` (``"zeros"``,
        ``"random"``, or a phase ``[B, frames, bins]`` in radians)."""
        magnitude = ops.sqrt(ops.exp(self.decode_log_variance(z)) / self.power_scale)
        n = max(length, self.n_fft) if isinstance(length, int) else ops.maximum(length, self.n_fft)
        return griffin_lim(magnitude, self.n_fft, self.hop_length, self.griffin_lim_iters,
                           length=n, init=phase, seed=self.seed or 0)[:, :length]

    def input_phase(self, waveform):
        """The STFT phase ``[B, frames, bins]`` of waveforms (the frames of :meth:`power`)."""
        re, im = ops.stft(pad_to_length(waveform, self.n_fft), self.n_fft, self.hop_length,
                          self.n_fft, center=True)
        return ops.arctan2(im, re)

    # --------------------------------------------------------------- interface
    @inference
    def encode(self, waveform):
        """Waveforms ``[B, samples]`` -> posterior means ``[B, frames, latent_dim]``."""
        return self.encode_power(self.power(waveform))[0]

    @inference
    def decode(self, z, length=None):
        """Latents ``[B, frames, latent_dim]`` -> waveforms (Griffin-Lim from zero phase);
        ``length`` samples, or ``(frames - 1) * hop_length``."""
        frames = z.shape[1] or ops.shape(z)[1]
        length = (frames - 1) * self.hop_length if length is None else length
        return self.synthesize(z, length)

    @inference
    def reconstruct(self, waveform):
        """Waveforms -> resynthesised waveforms of the same length (posterior means, the
        decoded power spectra with Griffin-Lim started from the input's phase)."""
        waveform = ops.convert_to_tensor(waveform, "float32")
        length = waveform.shape[1] or ops.shape(waveform)[1]
        z = self.encode_power(self.power(waveform))[0]
        return self.synthesize(z, length, self.input_phase(waveform))

    @inference
    def posterior(self, waveform):
        """Waveforms -> ``(z_mean, z_log_var, frame energy)`` ``[B, frames, ...]``."""
        power = self.power(waveform)
        z_mean, z_log_var = self.encode_power(power)
        return z_mean, z_log_var, ops.sum(power, axis=-1)

    def serving_endpoints(self):
        return {"forward": (self.reconstruct, [(None, None)]),
                "encode": (self.encode, [(None, None)]),
                "decode": (self.decode, [(None, None, self.latent_dim)])}

    # ---------------------------------------------------------------- training
    def call(self, inputs, training=False):
        power = self.power(inputs)
        z_mean, z_log_var = self.encode_power(power)
        z = z_mean
        if training:
            eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
            z = z_mean + ops.exp(0.5 * z_log_var) * eps
        return {"power": power, "log_variance": self.decode_log_variance(z),
                "z_mean": z_mean, "z_log_var": z_log_var}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if y_pred is None:
            y_pred = self(x, training=training)
        power = y_pred["power"]
        frames = ops.cast(ops.shape(power)[0] * ops.shape(power)[1], "float32")
        log_power = ops.log(power + 10.0 ** (MIN_DB / 10.0))
        nll = ops.sum(itakura_saito_log(log_power, y_pred["log_variance"])) / frames
        kl = ops.sum(gaussian_kl(y_pred["z_mean"], y_pred["z_log_var"])) / frames
        self.reconstruction_tracker.update_state(nll)
        self.kl_tracker.update_state(kl)
        return replica_loss(nll + self.beta * kl)

    @property
    def metrics(self):
        return super().metrics + [self.reconstruction_tracker, self.kl_tracker]

    def build(self, input_shape=None):
        self.call(ops.zeros((1, 2 * self.n_fft)))
        self.built = True

    def finish_training(self, context):
        """Fit the subspaces on ``labelled`` after training (when set)."""
        if not self.labelled:
            return False
        report = self.fit_subspaces(self.labelled, progress=bool(context.verbose))
        if context.verbose:
            print(subspace_table(report), flush=True)
        write_subspace_report(context.run_dir / SUBSPACE_REPORT, report)
        return True

    # --------------------------------------------------------------- subspaces
    def posterior_frames(self, waveform, min_db=-40.0):
        """``(means, variances)`` ``[frames, latent_dim]`` of one waveform's frames within
        ``min_db`` of its loudest frame (fades and silences left out)."""
        mu, log_var, energy = (np.asarray(ops.convert_to_numpy(t))[0] for t in
                               self.posterior(np.asarray(waveform, np.float32)[None]))
        keep = 10 * np.log10(energy + 1e-20) >= 10 * np.log10(energy.max() + 1e-20) + min_db
        return mu[keep], np.exp(log_var[keep])

    def fitted_factors(self):
        """Names of the factors whose subspace has been fitted."""
        return [f for f in self.factors if self._dims(f) > 0]

    def _dims(self, factor):
        return int(round(float(ops.convert_to_numpy(self.subspace[factor]["dims"]))))

    def factor_subspace(self, factor):
        """``(U [D, M], e [D], knots [K], values [K, M])`` of a fitted factor."""
        factor = _factor_key(factor, self.factors)
        m = self._dims(factor)
        if not m:
            raise ZooError(f"the {factor} subspace is not fitted: run zoo sfvae-fit (or "
                           "model.fit_subspaces) on labelled audio first")
        get = {k: np.asarray(ops.convert_to_numpy(v), np.float64)
               for k, v in self.subspace[factor].items()}
        return get["basis"][:, :m], get["mean"], get["knots"], get["values"][:, :m]

    def fit_subspaces(self, labelled="builtin:vowels", factors=None, variance_retained=None,
                      progress=False, active_threshold=0.01):
        """Learn each factor's subspace and regression from labelled audio.

        Args:
            labelled: ``builtin:vowels``, a folder with audio and a ``labels.csv``
                (``file`` plus one numeric column per factor; an optional ``sweep``
                column names the factor each file varies, else every file serves every
                factor), or a ``{factor: [(waveform, value), ...]}`` mapping.
            factors: the factors to fit (default: all of the model's).
            variance_retained: overrides the model's for this fit (one share, or one
                per factor of the model).
            progress: show a progress bar while encoding.
            active_threshold: latent dimensions whose posterior means vary less than
                this over all the labelled frames are collapsed (:func:`active_units`)
                and left out of every subspace.

        Returns:
            A report: per factor ``dims``, ``explained`` (share of variance kept),
            ``frames``, ``range``; ``active_units``: the dimensions used;
            ``orthogonality``: the largest ``|u_i . u_j|`` between the basis vectors of
            each pair of subspaces.

        Raises:
            ZooError: missing columns, non-numeric or NaN labels, no files for a factor.
        """
        factors = [_factor_key(f, self.factors) for f in (factors or self.factors)]
        try:
            shares = (self.variance_retained if variance_retained is None
                      else _per_factor_shares(variance_retained, self.factors))
        except ValueError as err:
            raise ZooError(str(err)) from None
        items = (labelled if isinstance(labelled, dict)
                 else labelled_examples(labelled, factors, self.sample_rate))
        items = {_factor_key(k, self.factors): v for k, v in items.items()}
        report, total = {"factors": {}}, sum(len(items.get(f, ())) for f in factors)
        bar = keras.utils.Progbar(total, unit_name="file") if progress else None
        frames = {}
        for factor in factors:
            if not items.get(factor):
                raise ZooError(f"no labelled files for factor {factor!r}")
            mus, variances, values = [], [], []
            for waveform, value in items[factor]:
                mu, var = self.posterior_frames(waveform)
                mus.append(mu)
                variances.append(var)
                values.append(np.full(len(mu), float(value)))
                if bar is not None:
                    bar.add(1)
            frames[factor] = (np.concatenate(mus), np.concatenate(variances),
                              np.concatenate(values))
            y = frames[factor][2]
            if np.ptp(y) <= 0:
                raise ZooError(f"factor {factor!r}: every labelled value is {y[0]:g}; the "
                               "subspace needs files where it varies")
        active = active_units(np.concatenate([f[0] for f in frames.values()]),
                              active_threshold)
        if not active.any():
            raise ZooError("every latent dimension is collapsed on the labelled audio "
                           f"(posterior means vary by less than {active_threshold:g})")
        report["active_units"] = [int(d) for d in np.flatnonzero(active)]
        for factor in factors:
            mu, var, y = frames[factor]
            e, components, spectrum = aggregated_posterior_pca(mu, var, active)
            index = self.factors.index(factor)
            m = (min(self.subspace_dims[index], len(spectrum))
                 if self.subspace_dims and self.subspace_dims[index]
                 else fidelity_dims(spectrum, shares[index]))
            basis = components[:, :m]
            projected = (mu - e) @ basis
            knots, coords = piecewise_linear_fit(y, projected, self.segments)
            full_basis = np.zeros((self.latent_dim, self.latent_dim))
            full_basis[:, :m] = basis
            full_values = np.zeros((self.segments + 1, self.latent_dim))
            full_values[:, :m] = coords
            for name, value in (("basis", full_basis), ("dims", float(m)), ("mean", e),
                                ("knots", knots), ("values", full_values)):
                self.subspace[factor][name].assign(np.asarray(value, np.float32))
            residual = np.mean(np.sum((projected - piecewise_linear(knots, coords, y)) ** 2, 1))
            spread = np.mean(np.sum((projected - projected.mean(0)) ** 2, 1))
            report["factors"][factor] = {
                "dims": int(m), "frames": int(len(y)), "range": [float(y.min()), float(y.max())],
                "explained": float(spectrum[:m].sum() / max(spectrum.sum(), 1e-30)),
                "regression_r2": float(1 - residual / max(spread, 1e-30))}
        fitted = self.fitted_factors()
        report["orthogonality"] = {
            f"{a}-{b}": float(np.max(np.abs(self.factor_subspace(a)[0].T
                                            @ self.factor_subspace(b)[0])))
            for i, a in enumerate(fitted) for b in fitted[i + 1:]}
        return report

    def factor_values(self, waveform, factor):
        """A factor's value per frame read from the latents (inverse regression) ``[T]``."""
        u, e, knots, values = self.factor_subspace(factor)
        z = np.asarray(ops.convert_to_numpy(self.encode(np.asarray(waveform, np.float32)[None])))[0]
        return invert_piecewise_linear(knots, values, (z - e) @ u)

    def edit_latents(self, z, whisper=False, **targets):
        """Latents ``[T, D]`` moved to the factor ``targets`` (see :meth:`edit`)."""
        z = np.asarray(z, np.float64).copy()
        for name, spec in targets.items():
            if spec is None:
                continue
            u, e, knots, values = self.factor_subspace(name)
            coords = (z - e) @ u
            current = invert_piecewise_linear(knots, values, coords)
            y = parse_target(spec, current)
            z = z - coords @ u.T + piecewise_linear(knots, values, y) @ u.T
        if whisper:
            u = self.factor_subspace(self.factors[0])[0]
            z = z - (z @ u) @ u.T
        return z

    def edit(self, waveform, whisper=False, phase="random", **targets):
        """Move pitch and formants of a waveform along the learned subspaces.

        Args:
            waveform: mono ``[samples]`` at ``sample_rate``.
            whisper: remove the f0 subspace (the first factor's).
            phase: Griffin-Lim's start: ``"random"``, ``"zeros"`` or ``"input"`` (the
                input's phase; best for small edits).
            **targets: per factor (``f0=``, ``F1=`` / ``f1=``, ...): a value, a
                relative shift (``"+3st"``, ``"-10%"``) or a per-frame trajectory.

        Returns:
            float32 ``[samples]``; with no target and no whisper, the VAE's resynthesis.
        """
        if phase not in PHASES:
            raise ZooError(f"phase must be one of {PHASES}, got {phase!r}")
        x = np.asarray(waveform, np.float32).reshape(-1)
        if x.size == 0:
            raise ZooError("edit: the waveform is empty")
        for name, spec in targets.items():  # unknown or unfitted factors fail before any work
            if spec is not None:
                self.factor_subspace(name)
        if whisper:
            self.factor_subspace(self.factors[0])
        z = np.asarray(ops.convert_to_numpy(self.encode(x[None])))[0]
        z = self.edit_latents(z, whisper=whisper, **targets)
        init = self.input_phase(ops.convert_to_tensor(x[None])) if phase == "input" else phase
        out = self.synthesize(ops.convert_to_tensor(z[None], "float32"), int(x.size), init)
        return np.asarray(ops.convert_to_numpy(out))[0].astype("float32")

    def get_config(self):
        return {**super().get_config(), "sample_rate": self._sample_rate, "n_fft": self.n_fft,
                "hop_length": self.hop_length, "hidden": list(self.hidden),
                "latent_dim": self.latent_dim, "beta": self.beta,
                "griffin_lim_iters": self.griffin_lim_iters, "factors": list(self.factors),
                "variance_retained": (self.variance_retained[0]
                                      if len(set(self.variance_retained)) == 1
                                      else list(self.variance_retained)),
                "subspace_dims": list(self.subspace_dims), "segments": self.segments,
                "labelled": self.labelled, "seed": self.seed}


def labelled_examples(source, factors, sample_rate):
    """``{factor: [(waveform, value), ...]}`` from a labelled dataset (see
    :meth:`SourceFilterVAE.fit_subspaces`); one-line errors name the file and column."""
    from zoo.data import load_dataset

    ds = load_dataset(source, sample_rate, 1024, val_fraction=0.0, progress=False)
    where = f"{ds.root / 'labels.csv'}"
    if not ds.labels:
        raise ZooError(f"{where}: no labels (a labels.csv with a 'file' column and the "
                       f"factor columns {', '.join(factors)} is needed)")
    columns = set().union(*(row.keys() for row in ds.labels.values()))
    missing = [f for f in factors if f not in columns]
    if missing:
        raise ZooError(f"{where}: no column {missing[0]!r} (columns: "
                       f"{', '.join(sorted(columns))})")
    out = {}
    for factor in factors:
        rows = {p: r for p, r in ds.labels.items() if r.get("sweep") == factor}
        rows = rows or ds.labels
        for path, row in sorted(rows.items()):
            value = row.get(factor)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not np.isfinite(value):
                raise ZooError(f"{where}: file {path}: column {factor!r} is {value!r}, "
                               "not a finite number")
            out.setdefault(factor, []).append((ds.waveform(path), float(value)))
    return out


def write_subspace_report(path, report):
    """Write :meth:`SourceFilterVAE.fit_subspaces`' report as JSON, atomically."""
    import json

    from zoo.files import atomic_write_text

    atomic_write_text(path, json.dumps(report, indent=1))


def subspace_table(report):
    """A printable summary of :meth:`SourceFilterVAE.fit_subspaces`' report."""
    lines = ["factor  dims  variance kept  regression R^2  frames  range"]
    for f, r in report["factors"].items():
        lines.append(f"{f:<6}  {r['dims']:>4}  {r['explained']:>13.1%}  "
                     f"{r['regression_r2']:>14.3f}  {r['frames']:>6}  "
                     f"{r['range'][0]:g}-{r['range'][1]:g}")
    if "active_units" in report:
        lines.append(f"active latent dimensions: {len(report['active_units'])} "
                     f"({', '.join(map(str, report['active_units']))})")
    if report.get("orthogonality"):
        lines.append("largest |dot product| between subspaces: " + ", ".join(
            f"{k} {v:.2f}" for k, v in report["orthogonality"].items()))
    return "\n".join(lines)
