"""Joint-density GMM voice conversion: the classical parallel-data baseline.

Kain & Macon (1998), Toda, Black & Tokuda (2007), as sprocket does it:

1. **Features.** WORLD analysis (pyworld: DIO + StoneMask f0, CheapTrick envelope,
   D4C aperiodicity) at ``frame_period`` ms; the envelope as a mel-cepstrum of
   ``order`` (SPTK's definition, all-pass constant ``alpha``); c0 (power) is left out
   of the mapping; silent frames (``silence_db`` below the utterance's loudest) are
   dropped for training.
2. **Alignment.** Parallel utterances (same file name in the source and target domain
   folders) are aligned by DTW on the static mel-cepstra, then re-aligned
   ``alignment_iterations`` times on the *converted* source, which matches the target
   better than the raw source does.
3. **Model.** A GMM of ``components`` full-covariance Gaussians (scikit-learn, EM) on
   joint vectors ``z_t = [x_t, dx_t, y_t, dy_t]`` (static + delta of both speakers).
4. **Conversion.** Per frame, the conditional expectation
   ``E_m,t = mu_y,m + S_yx,m S_xx,m^-1 (X_t - mu_x,m)``; ``conversion="mean"``: the
   posterior-weighted sum over ``m`` (static part); ``"mlpg"`` (default): maximum-
   likelihood parameter generation of a trajectory from the most likely component's
   ``E`` and conditional variance (static and delta consistent), then, with
   ``global_variance``, each dimension's variance over the utterance scaled to the
   target speaker's (the GV post-filter).
5. **Excitation.** log-f0 mean / variance transform on voiced frames (statistics over
   each speaker's f0 range, an octave either side of its median, which the source's
   analysis also searches at conversion time); aperiodicity and c0 copied from the
   source; WORLD synthesis.

It is fitted by EM on the parallel training files (``Fitting.CLOSED_FORM``): ``zoo train
gmm_vc --data builtin:voices --set model_config.source_domain=A ...``. Every fitted value
is a Keras variable, so the model saves and loads as ``.keras``. WORLD runs in numpy, so
conversion is not a graph: the SavedModel's ``forward`` serves the feature mapping only
(:meth:`convert_features`, mel-cepstra in, conditional-mean mel-cepstra out); waveform
conversion is served by ``zoo convert`` / :meth:`convert` in Python. Before it is fitted
the model passes audio through WORLD unchanged.
"""
import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np
from keras import ops

from zoo.dsp.mlpg import mlpg, static_delta
from zoo.dsp.world import F0_METHODS, mc2sp, sp2mc, world_analysis, world_synthesis
from zoo.engine import Fitting, check_positive
from zoo.errors import ZooError
from zoo.models.translation import TranslationModel

CONVERSIONS = ("mlpg", "mean")


@keras.saving.register_keras_serializable(package="zoo")
class GMMVoiceConversion(TranslationModel):
    """Joint-density GMM voice conversion on WORLD mel-cepstra (module docstring).

    Args:
        sample_rate: Hz.
        source_domain, target_domain: the data's domain folders to convert from / to
            (default: the first two, in sorted order).
        order: mel-cepstrum order (c1 .. c_order are mapped; c0 is copied).
        alpha: all-pass constant (0.42 at 16 kHz; :func:`zoo.dsp.mcep_alpha`).
        components: Gaussians in the joint GMM.
        frame_period: WORLD frame period, ms.
        fft_size: WORLD FFT size (envelope bins = fft_size / 2 + 1).
        conversion: ``"mlpg"`` or ``"mean"``.
        global_variance: scale converted trajectories to the target's global variance.
        alignment_iterations: DTW re-alignments on converted features after the first fit.
        silence_db: frames this far below the utterance's loudest are left out of training.
        f0_floor, f0_ceil: f0 search range of the analysis, Hz.
        f0_method: ``"harvest"`` (robust) or ``"dio"`` (fast).
        em_iterations: EM iterations of the final fit (the fits that only serve the
            re-alignment use a tenth, on a quarter of the frames).
        max_frames: joint training frames kept (evenly subsampled beyond it).
        seed: EM initialisation seed.
    """

    fitting = Fitting.CLOSED_FORM

    def __init__(self, sample_rate=16000, source_domain="", target_domain="", order=24,
                 alpha=0.42, components=32, frame_period=5.0, fft_size=1024,
                 conversion="mlpg", global_variance=True, alignment_iterations=2,
                 silence_db=-40.0, f0_floor=60.0, f0_ceil=600.0, f0_method="harvest",
                 em_iterations=100, max_frames=20000, seed=0, **kwargs):
        super().__init__(**kwargs)
        check_positive(sample_rate=sample_rate, order=order, components=components,
                       frame_period=frame_period, fft_size=fft_size, f0_floor=f0_floor,
                       f0_ceil=f0_ceil, em_iterations=em_iterations, max_frames=max_frames)
        if conversion not in CONVERSIONS:
            raise ValueError(f"conversion must be one of {CONVERSIONS}, got {conversion!r}")
        if f0_method not in F0_METHODS:
            raise ValueError(f"f0_method must be one of {F0_METHODS}, got {f0_method!r}")
        if not 0 <= float(alpha) < 1:
            raise ValueError(f"alpha must be in [0, 1), got {alpha!r}")
        if int(alignment_iterations) < 0:
            raise ValueError(f"alignment_iterations must be >= 0, got {alignment_iterations}")
        self._sample_rate = int(sample_rate)
        self.source_domain, self.target_domain = str(source_domain), str(target_domain)
        self.order, self.alpha, self.components = int(order), float(alpha), int(components)
        self.frame_period, self.fft_size = float(frame_period), int(fft_size)
        self.conversion, self.global_variance = conversion, bool(global_variance)
        self.alignment_iterations, self.silence_db = int(alignment_iterations), float(silence_db)
        self.f0_floor, self.f0_ceil, self.f0_method = float(f0_floor), float(f0_ceil), f0_method
        self.em_iterations, self.max_frames, self.seed = (int(em_iterations), int(max_frames),
                                                          int(seed))
        d, m = self.order, self.components
        self.mix_weights = self._state((m,), "mix_weights")
        self.means = self._state((m, 4 * d), "means")
        self.covariances = self._state((m, 4 * d, 4 * d), "covariances")
        self.variance_target = self._state((d,), "variance_target")  # GV of the target
        # log-f0 mean, std of the source, of the target; f0 search range of each (Hz)
        self.f0_stats = self._state((8,), "f0_stats")
        self.fitted = self._state((), "fitted")
        self.built = True

    def build(self, input_shape=None):
        self.built = True

    def _state(self, shape, name):
        return self.add_weight(shape=shape, initializer="zeros", trainable=False, name=name,
                               dtype="float32")

    @property
    def sample_rate(self):
        return self._sample_rate

    # ------------------------------------------------------------ features
    def analyse(self, waveform, f0_range=None):
        """WORLD + mel-cepstrum of a waveform: ``(f0, mcep [frames, order + 1], ap)``;
        f0 searched in ``f0_range`` (default: ``f0_floor`` .. ``f0_ceil``)."""
        floor, ceil = f0_range or (self.f0_floor, self.f0_ceil)
        f0, sp, ap = world_analysis(np.asarray(waveform, np.float64), self.sample_rate,
                                    self.frame_period, floor, ceil, self.fft_size,
                                    self.f0_method)
        return f0, sp2mc(sp, self.order, self.alpha), ap

    def _voiced_frames(self, mcep):
        """Frames within ``silence_db`` of the loudest (c0 is the log power, scaled)."""
        level = mcep[:, 0] * (10.0 / np.log(10.0))  # c0 of log power -> dB
        return level > level.max() + self.silence_db

    # ------------------------------------------------------------ fitting
    def fit_closed_form(self, dataset, context):
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.mixture import GaussianMixture

        from zoo.dsp import dtw_path

        started = time.time()
        src, tgt = self._domains(dataset)
        pairs = parallel_pairs(dataset, src, tgt, split="train")
        say = print if context.verbose else (lambda *a, **k: None)
        say(f"[gmm_vc] {len(pairs)} parallel utterances {src} -> {tgt}: WORLD analysis",
            flush=True)
        xs, ys, lf0 = [], [], ([], [])
        # WORLD releases the GIL: one thread per core
        with ThreadPoolExecutor(max(1, min(8, os.cpu_count() or 1))) as pool:
            analysed = list(pool.map(lambda f: self.analyse(dataset.waveform(f)),
                                     [f for pair in pairs for f in pair]))
        for (fa, ma, _), (fb, mb, _) in zip(analysed[0::2], analysed[1::2]):
            xs.append(static_delta(ma[:, 1:])[self._voiced_frames(ma)])
            ys.append(static_delta(mb[:, 1:])[self._voiced_frames(mb)])
            lf0[0].append(np.log(fa[fa > 0]))
            lf0[1].append(np.log(fb[fb > 0]))
        d = self.order
        stats = []
        for name, values in ((src, lf0[0]), (tgt, lf0[1])):
            values = np.concatenate(values)
            if not len(values):
                raise ZooError(f"{dataset.root}: no voiced frames found in {name}")
            # each speaker's f0 range: an octave either side of its median, as sprocket's
            # per-speaker ranges; estimates outside it (octave errors) are left out
            lo, hi = self._speaker_range(values)
            kept = values[(values >= np.log(lo)) & (values <= np.log(hi))]
            stats.append((kept.mean(), kept.std(), lo, hi))
        (ms, ss, lo_s, hi_s), (mt, st, lo_t, hi_t) = stats
        self.f0_stats.assign(np.array([ms, ss, mt, st, lo_s, hi_s, lo_t, hi_t], "float32"))
        self.variance_target.assign(np.mean([y[:, :d].var(axis=0) for y in ys], axis=0))

        gmm, paths = None, None
        for it in range(self.alignment_iterations + 1):
            last = it == self.alignment_iterations
            paths = [dtw_path((self._convert_static(x[:, :d], x) if gmm else x[:, :d]),
                              y[:, :d]) for x, y in zip(xs, ys)]
            joint = np.concatenate([np.concatenate([x[p[:, 0]], y[p[:, 1]]], axis=1)
                                    for x, y, p in zip(xs, ys, paths)])
            # the fits that only serve the re-alignment see a quarter of the frames
            keep = self.max_frames if last else max(self.max_frames // 4, 8 * self.components)
            if len(joint) > keep:
                joint = joint[np.linspace(0, len(joint) - 1, keep).astype(int)]
            if len(joint) < 4 * self.components:
                raise ZooError(f"{dataset.root}: {len(joint)} aligned frames are too few for "
                               f"{self.components} components; add data or lower components")
            say(f"[gmm_vc] fit {it + 1}/{self.alignment_iterations + 1}: EM on {len(joint)} "
                f"joint frames, {self.components} components", flush=True)
            gmm = GaussianMixture(self.components, covariance_type="full", reg_covar=1e-4,
                                  max_iter=self.em_iterations if last else
                                  max(5, self.em_iterations // 10),
                                  random_state=self.seed, init_params="kmeans")
            with warnings.catch_warnings():
                if not last:  # the re-alignment fits stop early on purpose
                    warnings.simplefilter("ignore", ConvergenceWarning)
                gmm.fit(joint)
            self._store(gmm)
        nll = float(-gmm.score(joint))
        return {"loss": nll, "frames": float(len(joint)), "utterances": float(len(pairs)),
                "fit_seconds": round(time.time() - started, 1)}

    def _speaker_range(self, log_f0):
        median = float(np.exp(np.median(log_f0)))
        return max(self.f0_floor, median / 2.0), min(self.f0_ceil, median * 2.0)

    @property
    def source_f0_range(self):
        """The f0 search range for source audio (the source speaker's, once fitted)."""
        if not self.is_fitted:
            return self.f0_floor, self.f0_ceil
        stats = ops.convert_to_numpy(self.f0_stats)
        return float(stats[4]), float(stats[5])

    def _domains(self, dataset):
        domains = list(dataset.domains)
        src = self.source_domain or (domains[0] if domains else "")
        tgt = self.target_domain or (domains[1] if len(domains) > 1 else "")
        for role, name in (("source_domain", src), ("target_domain", tgt)):
            if name not in domains:
                raise ZooError(f"{dataset.root}: {role} {name!r} is not a domain folder "
                               f"(found: {', '.join(domains) or 'none'})")
        if src == tgt:
            raise ZooError(f"source_domain and target_domain are both {src!r}")
        self.source_domain, self.target_domain = src, tgt
        return src, tgt

    def _store(self, gmm):
        self.mix_weights.assign(gmm.weights_)
        self.means.assign(gmm.means_)
        self.covariances.assign(gmm.covariances_)
        self.fitted.assign(1.0)
        self._cache = None

    # ------------------------------------------------------------ conversion
    def _params(self):
        """Per-component conversion matrices from the GMM (cached)."""
        cache = getattr(self, "_cache", None)
        if cache is not None:
            return cache
        if not self.is_fitted:
            raise ZooError("gmm_vc has not been fitted: `zoo train gmm_vc --data ...` first")
        w = np.asarray(ops.convert_to_numpy(self.mix_weights), np.float64)
        mu = np.asarray(ops.convert_to_numpy(self.means), np.float64)
        cov = np.asarray(ops.convert_to_numpy(self.covariances), np.float64)
        k = 2 * self.order
        sxx, syx, syy = cov[:, :k, :k], cov[:, k:, :k], cov[:, k:, k:]
        sxx_inv = np.linalg.inv(sxx)
        gain = syx @ sxx_inv                                    # [M, 2D, 2D]
        cond_var = syy - gain @ np.transpose(syx, (0, 2, 1))    # [M, 2D, 2D]
        _, logdet = np.linalg.slogdet(sxx)
        self._cache = {"log_w": np.log(np.maximum(w, 1e-300)), "mu_x": mu[:, :k],
                       "mu_y": mu[:, k:], "prec_x": sxx_inv, "logdet_x": logdet,
                       "gain": gain, "cond_var": np.diagonal(cond_var, axis1=1, axis2=2)}
        return self._cache

    def posteriors(self, X):
        """``P(m | X_t)`` ``[T, M]`` under the source marginal of the joint GMM."""
        p = self._params()
        diff = X[:, None, :] - p["mu_x"][None]                               # [T, M, 2D]
        maha = np.einsum("tmi,mij,tmj->tm", diff, p["prec_x"], diff)
        log = p["log_w"] - 0.5 * (maha + p["logdet_x"] + X.shape[1] * np.log(2 * np.pi))
        log -= log.max(axis=1, keepdims=True)
        post = np.exp(log)
        return post / post.sum(axis=1, keepdims=True)

    def _conditional_means(self, X):
        p = self._params()
        diff = X[:, None, :] - p["mu_x"][None]
        return p["mu_y"][None] + np.einsum("mij,tmj->tmi", p["gain"], diff)  # [T, M, 2D]

    def _convert_static(self, x_static, X=None):
        """Conditional-mean conversion of static features (alignment; ``conversion=mean``)."""
        X = static_delta(x_static) if X is None else X
        post = self.posteriors(X)
        return np.einsum("tm,tmi->ti", post, self._conditional_means(X)[:, :, :self.order])

    @property
    def is_fitted(self):
        return float(ops.convert_to_numpy(self.fitted)) == 1.0

    def convert_mcep(self, x_static):
        """Converted static mel-cepstra ``[T, order]`` (c1 ..) of source ``[T, order]``
        (unchanged before the model is fitted)."""
        x_static = np.asarray(x_static, np.float64)
        if not self.is_fitted:
            return x_static
        X = static_delta(x_static)
        if self.conversion == "mean":
            y = self._convert_static(x_static, X)
        else:
            best = np.argmax(self.posteriors(X), axis=1)
            means = self._conditional_means(X)[np.arange(len(X)), best]
            y = mlpg(means, self._params()["cond_var"][best])
        if self.global_variance and len(y) > 1:
            target = np.asarray(ops.convert_to_numpy(self.variance_target), np.float64)
            mean = y.mean(axis=0)
            y = mean + (y - mean) * np.sqrt(target / np.maximum(y.var(axis=0), 1e-12))
        return y

    def convert_f0(self, f0):
        """log-f0 mean / variance transform of voiced frames (unvoiced stay 0; unchanged
        before the model is fitted)."""
        if not self.is_fitted:
            return np.asarray(f0, np.float64)
        ms, ss, mt, st = (float(v) for v in ops.convert_to_numpy(self.f0_stats)[:4])
        out = np.zeros_like(f0)
        voiced = f0 > 0
        out[voiced] = np.exp((np.log(f0[voiced]) - ms) / max(ss, 1e-6) * st + mt)
        return out

    def convert_batch(self, waveforms, **options):
        out = []
        for wave in np.asarray(waveforms, np.float64):
            f0, mcep, ap = self.analyse(wave, self.source_f0_range)
            converted = np.concatenate([mcep[:, :1], self.convert_mcep(mcep[:, 1:])], axis=1)
            sp = mc2sp(converted, self.alpha, self.fft_size)
            y = world_synthesis(self.convert_f0(f0), sp, ap, self.sample_rate,
                                self.frame_period)
            y = np.pad(y, (0, max(0, len(wave) - len(y))))[:len(wave)]
            out.append(y.astype(np.float32))
        return np.stack(out)

    def translate(self, waveform):
        raise NotImplementedError(
            "gmm_vc converts with WORLD (numpy), which cannot run inside a graph; the "
            "exported SavedModel's forward serves convert_features (mel-cepstra in and out)")

    def convert_features(self, mcep):
        """In-graph conditional-mean conversion of static mel-cepstra ``[batch, frames,
        order]`` (c1 ..; what the SavedModel export serves)."""
        x = ops.cast(mcep, "float32")
        prev = ops.concatenate([x[:, :1], x[:, :-1]], axis=1)
        nxt = ops.concatenate([x[:, 1:], x[:, -1:]], axis=1)
        X = ops.concatenate([x, 0.5 * (nxt - prev)], axis=-1)             # [B, T, 2D]
        k = 2 * self.order
        cov, mu = ops.convert_to_tensor(self.covariances), ops.convert_to_tensor(self.means)
        sxx, syx = cov[:, :k, :k], cov[:, k:, :k]
        prec = ops.inv(sxx)
        gain = ops.matmul(syx, prec)
        _, logdet = ops.slogdet(sxx)
        diff = X[:, :, None, :] - mu[None, None, :, :k]                    # [B, T, M, 2D]
        maha = ops.einsum("btmi,mij,btmj->btm", diff, prec, diff)
        log_w = ops.log(ops.maximum(ops.convert_to_tensor(self.mix_weights), 1e-30))
        post = ops.softmax(log_w - 0.5 * (maha + logdet), axis=-1)
        cond = mu[None, None, :, k:] + ops.einsum("mij,btmj->btmi", gain, diff)
        y = ops.einsum("btm,btmi->bti", post, cond)[..., :self.order]
        return y

    def call(self, mcep):
        return self.convert_features(mcep)

    def serving_endpoints(self):
        """``forward``: static mel-cepstra ``[batch, frames, order]`` in and out (the
        conditional-mean mapping; WORLD analysis and synthesis stay outside the graph)."""
        return {"forward": (self.convert_features, [(None, None, self.order)])}

    def get_config(self):
        return {**super().get_config(), "sample_rate": self.sample_rate,
                "source_domain": self.source_domain, "target_domain": self.target_domain,
                "order": self.order, "alpha": self.alpha, "components": self.components,
                "frame_period": self.frame_period, "fft_size": self.fft_size,
                "conversion": self.conversion, "global_variance": self.global_variance,
                "alignment_iterations": self.alignment_iterations,
                "silence_db": self.silence_db, "f0_floor": self.f0_floor,
                "f0_ceil": self.f0_ceil, "f0_method": self.f0_method,
                "em_iterations": self.em_iterations,
                "max_frames": self.max_frames, "seed": self.seed}


def parallel_pairs(dataset, source, target, split="train"):
    """``[(source file, target file)]``: files of the same name in two domain folders.

    Raises:
        ZooError: a file of either domain without its partner (names the file).
    """
    def names(domain):
        return {f.split("/", 1)[-1]: f for f in dataset.files(split, domain=domain)}

    a, b = names(source), names(target)
    for mine, other, there in ((a, b, target), (b, a, source)):
        missing = sorted(set(mine) - set(other))
        if missing:
            raise ZooError(f"{dataset.root / mine[missing[0]]}: no parallel partner "
                           f"{there}/{missing[0]} ({len(missing)} unpaired file(s) in "
                           f"the {split} split; parallel files share their names)")
    if not a:
        raise ZooError(f"{dataset.root}: no {split} files in {source} and {target}")
    return [(a[n], b[n]) for n in sorted(a)]
