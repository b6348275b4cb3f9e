"""Neural style transfer for audio (Gatys et al. 2016, "Image style transfer using
convolutional neural networks"; Ulyanov & Lebedev 2016, "Audio texture synthesis and
style transfer").

Nothing is trained: :meth:`StyleTransfer.stylize` optimises one spectrogram ``X`` so
that its features match the content clip's and its feature *statistics* (Gram
matrices) match the style clip's:

* representation: ``log(1 + |STFT|)`` with the frequency bins as channels (the audio
  form; treating spectrograms as images with VGG features fails), or ``log(1 + mel)``;
* features: random, untrained 1-D convolutions + ReLU over time (one layer of width
  11, He-style init ``N(0, sqrt(2) sqrt(2 / ((F + N) w)))``; the reference's 4096
  filters, our default 512), optionally several widths (multi-scale style) and stacked
  layers; generated from ``seed`` with numpy, so identical on every backend and never
  saved; or a trained zoo model's feature maps (``Capability.FEATURE_MAPS``); or the
  evaluation domain classifier's standardised log-mel frames;
* loss: ``content_weight * content + style_weight * style`` with the content the
  feature error of each branch's last layer and the style the error of the Gram
  matrices ``G_l = F_l^T F_l / frames`` of every layer; as means (default) or as the
  reference's sums (:meth:`StyleTransfer.loss_terms`);
* optimiser: scipy's L-BFGS (or Adam) on the loss and gradient from ONE compiled
  function (:func:`zoo.engine.compile_value_and_grad`), started from the content's
  spectrogram (default) or, as the reference, from small noise;
* audio: fast Griffin-Lim (:mod:`layers.griffinlim`), from the content's phase
  (default) or, as the reference, a random one; the output has the content's length.

Our defaults depart from the reference (n_fft 2048 / hop 512, 4096 filters, summed
losses, noise start, random phase) where it measured better on held-out
``builtin:timbre`` melodies: the style's Gram statistics include which frequencies
sound, so a style that dominates also imposes its pitches. n_fft 1024 / hop 256, 512
filters, mean losses and the content's start kept the pitch and took the timbre, with
the style distance falling by two orders of magnitude; the reference's settings took
the timbre but lost the pitch (about 800 cents), and n_fft 2048 with our other
settings kept the pitch but not the timbre (``benchmarks/eval_style_transfer.py``,
README).

Content weight 0 gives texture synthesis of any duration from the style clip alone.
Long contents are optimised in overlapping segments (crossfaded), so memory stays
bounded; the style statistics are computed once from the whole style clip.
"""
import dataclasses

import keras
import numpy as np
from keras import ops

from layers import MelScale, content_loss, gram_matrix, griffin_lim, stft_magnitude
from zoo.engine import Capability, Fitting, ZooModel, check_positive, compile_value_and_grad
from zoo.models.chunking import chunk_layout, crossfade_window, overlap_add
from zoo.models.inversion import griffin_lim_segments

REPRESENTATIONS = ("log_stft", "log_mel")
OPTIMIZERS = ("lbfgs", "adam")
INITS = ("noise", "content")
PHASES = ("random", "content")
NORMALIZATIONS = ("mean", "sum")


def random_kernels(num_bins, filters, widths, depth, seed):
    """The random feature extractor's kernels: ``{width: [kernel [w, in, filters], ...]}``
    drawn with numpy (He-style, as Ulyanov & Lebedev), identical on every backend."""
    rng = np.random.default_rng(seed)
    kernels = []
    for width in widths:
        stack, channels = [], num_bins
        for _ in range(depth):
            std = np.sqrt(2.0) * np.sqrt(2.0 / ((channels + filters) * width))
            stack.append((rng.standard_normal((width, channels, filters)) * std).astype("float32"))
            channels = filters
        kernels.append(stack)
    return kernels


def statistics_distance(targets, statistics, normalization="sum"):
    """The style loss between feature ``statistics`` and their ``targets`` (one per
    map): ``sum_l sum (S_l - T_l)^2`` (``"sum"``, the reference's), or the mean squared
    error averaged over maps (``"mean"``)."""
    reduce = ops.sum if normalization == "sum" else ops.mean
    total = 0.0
    for target, stat in zip(targets, statistics):
        total = total + reduce(ops.square(stat - target))
    return total if normalization == "sum" else total / len(statistics)


def style_distance(grams, features):
    """``sum_l sum (G_l - A_l)^2`` with ``G_l`` the Gram matrix of ``features[l]`` divided
    by its frames and ``A_l = grams[l]`` (Ulyanov & Lebedev's style loss; with equal
    frame counts this is :func:`layers.style_loss` with ``normalization="positions"``
    summed over layers)."""
    return statistics_distance(grams, [gram_matrix(f, normalize=True) for f in features])


def random_features(spectrogram, kernels):
    """``[B, frames, bins]`` -> list of ``[B, frames, filters]`` (every layer of every
    branch), ReLU after each 'same'-padded convolution."""
    out = []
    for stack in kernels:
        h = spectrogram
        for kernel in stack:
            h = ops.relu(ops.conv(h, kernel, padding="same"))
            out.append(h)
    return out


@dataclasses.dataclass
class Stylized:
    """What :meth:`StyleTransfer.stylize` returns.

    Attributes:
        audio: float32 ``[samples]`` at ``sample_rate``.
        spectrogram: the optimised representation ``[frames, bins]``.
        content_spectrogram, style_spectrogram: the inputs' representations (``None``
            content for texture synthesis).
        history: ``[(iteration, content_loss, style_loss)]`` of the first segment.
        style_distance: ``(initial, final)`` style loss (Gram distance, unweighted) of the
            first segment.
    """

    audio: np.ndarray
    spectrogram: np.ndarray
    content_spectrogram: object
    style_spectrogram: np.ndarray
    history: list
    style_distance: tuple


@keras.saving.register_keras_serializable(package="zoo")
class StyleTransfer(ZooModel):
    """Audio style transfer and texture synthesis by feature-statistics optimisation.

    Args:
        sample_rate: audio rate in Hz (inputs at other rates are resampled).
        n_fft, hop_length: STFT (periodic Hann, centred).
        representation: ``"log_stft"`` (``log(1 + |STFT|)``) or ``"log_mel"``.
        n_mels: mel bands for ``"log_mel"``.
        filters: filters per random convolution layer.
        widths: kernel widths (frames); one branch per width (several: multi-scale).
        depth: stacked random layers per branch (style uses every layer).
        content_weight, style_weight: loss weights (``content_weight=0``: texture).
        iterations: optimiser iterations per segment.
        optimizer: ``"lbfgs"`` (scipy) or ``"adam"``.
        learning_rate: Adam's step size.
        init: ``"content"`` (start from the content's spectrogram) or ``"noise"`` (small
            noise, as the reference; pitch is then kept less reliably).
        phase: Griffin-Lim start: ``"content"`` (the content's phase) or ``"random"``
            (the reference).
        griffin_lim_iters: Griffin-Lim iterations.
        segment_seconds: contents longer than this are optimised in overlapping
            segments of this length.
        loss_normalization: ``"mean"`` (weights independent of clip length and filter
            count) or ``"sum"`` (the reference's); see :meth:`loss_terms`.
        seed: random features, noise init and phase.

    Example:
    >>> st = StyleTransfer(sample_rate=16000, n_fft=512, hop_length=128, filters=64,
    ...                    iterations=5)
    >>> st.stylize(content_wave, style_wave).audio.shape == content_wave.shape  # doctest: +SKIP
    True
    """

    capabilities = {Capability.STYLIZE}
    fitting = Fitting.NONE

    def __init__(self, sample_rate=22050, n_fft=1024, hop_length=256, representation="log_stft",
                 n_mels=128, filters=512, widths=(11,), depth=1, content_weight=1e-2,
                 style_weight=1.0, iterations=300, optimizer="lbfgs", learning_rate=0.05,
                 init="content", phase="content", griffin_lim_iters=500, segment_seconds=30.0,
                 loss_normalization="mean", seed=0, **kwargs):
        super().__init__(**kwargs)
        check_positive(sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels,
                       filters=filters, depth=depth, iterations=iterations,
                       learning_rate=learning_rate, griffin_lim_iters=griffin_lim_iters,
                       segment_seconds=segment_seconds)
        for value, choices, name in ((representation, REPRESENTATIONS, "representation"),
                                     (loss_normalization, NORMALIZATIONS, "loss_normalization"),
                                     (optimizer, OPTIMIZERS, "optimizer"), (init, INITS, "init"),
                                     (phase, PHASES, "phase")):
            if value not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {value!r}")
        widths = tuple(int(w) for w in widths)
        if not widths or min(widths) < 1:
            raise ValueError(f"widths must be positive kernel widths, got {list(widths)}")
        if content_weight < 0 or style_weight < 0:
            raise ValueError("content_weight and style_weight must be >= 0, got "
                             f"{content_weight}, {style_weight}")
        if n_fft % hop_length:
            raise ValueError(f"n_fft ({n_fft}) must be a multiple of hop_length ({hop_length})")
        self._sample_rate, self.n_fft, self.hop_length = int(sample_rate), int(n_fft), int(hop_length)
        self.representation, self.n_mels = representation, int(n_mels)
        self.filters, self.widths, self.depth = int(filters), widths, int(depth)
        self.content_weight, self.style_weight = float(content_weight), float(style_weight)
        self.iterations, self.optimizer_name = int(iterations), optimizer
        self.learning_rate, self.init, self.phase = float(learning_rate), init, phase
        self.griffin_lim_iters, self.segment_seconds = int(griffin_lim_iters), float(segment_seconds)
        self.seed, self.loss_normalization = int(seed), loss_normalization
        self.mel = (MelScale(sample_rate, n_fft, n_mels, htk=True, norm=None, name="mel")
                    if representation == "log_mel" else None)
        self._kernels = None

    def build(self, input_shape=None):
        self.built = True

    # ---------------------------------------------------------------- pieces
    @property
    def sample_rate(self):
        return self._sample_rate

    @property
    def num_bins(self):
        """Channels of the representation (STFT bins or mel bands)."""
        return self.n_mels if self.mel is not None else self.n_fft // 2 + 1

    def kernels(self):
        """The random kernels (generated once, from ``seed``)."""
        if self._kernels is None:
            self._kernels = random_kernels(self.num_bins, self.filters, self.widths, self.depth,
                                           self.seed)
        return self._kernels

    def spectrogram(self, waveform):
        """Waveforms ``[B, samples]`` -> the representation ``[B, frames, bins]``."""
        magnitude = stft_magnitude(ops.convert_to_tensor(waveform, "float32"), self.n_fft,
                                   self.hop_length)
        if self.mel is not None:
            magnitude = self.mel(magnitude)
        return ops.log1p(magnitude)

    def magnitude(self, spectrogram):
        """The representation -> STFT magnitudes (mel by pseudo-inverse)."""
        magnitude = ops.maximum(ops.expm1(ops.convert_to_tensor(spectrogram, "float32")), 0.0)
        if self.mel is not None:
            magnitude = ops.maximum(self.mel.inverse(magnitude), 0.0)
        return magnitude

    def features(self, spectrogram):
        """The representation ``[B, frames, bins]`` -> every random layer's features."""
        ex = _RandomFeatures(self)
        return ex.maps(spectrogram, ex.params())

    def call(self, waveform):
        """Waveforms -> the last random layer's features (the exported ``forward``)."""
        return self.features(self.spectrogram(waveform))[-1]

    def extractor(self, feature_model=None):
        """The feature extractor :meth:`stylize` uses: the random convolutions, or a
        trained zoo model's feature maps (it must support ``Capability.FEATURE_MAPS``;
        the representation is then that model's log-mel front-end), or the evaluation
        domain classifier's standardised log-mel frames (a
        :class:`zoo.eval.classifier.DomainClassifier`)."""
        if feature_model is None:
            return _RandomFeatures(self)
        if hasattr(feature_model, "frame_feature_spec"):  # zoo.eval's DomainClassifier
            return _ClassifierFeatures(self, feature_model.frame_feature_spec())
        return _ModelFeatures(feature_model)

    # ----------------------------------------------------------- objective
    def objective(self, extractor):
        """``(x, weights, *content targets, *Gram targets, *params) -> (loss, {content,
        style})`` in ``keras.ops`` for ``extractor`` (uncompiled; see :meth:`loss_terms`)."""
        n_grams, n_params = extractor.num_maps, len(extractor.params())

        def objective(x, weights, *tensors):
            n_content = len(tensors) - n_grams - n_params
            content_t = list(tensors[:n_content])
            targets = tensors[n_content:n_content + n_grams]
            params = tensors[n_content + n_grams:]
            maps = extractor.maps(x, params)
            content, style = self.loss_terms(maps, content_t, targets, extractor.content_layers,
                                             statistics=extractor.statistics(maps, params))
            return weights[0] * content + weights[1] * style, {"content": content, "style": style}

        return objective

    def loss_terms(self, maps, content_targets, grams, content_layers, statistics=None):
        """``(content, style)`` losses of feature ``maps``: the style compares their
        ``statistics`` (default: Gram matrices normalised by frames) with ``grams``.

        ``loss_normalization="mean"`` (default): the content loss is the mean squared
        feature error and the style loss the mean squared error of the frame-normalised
        Gram matrices, each averaged over layers, so one weight means the same balance
        whatever the clip length and the number of filters. ``"sum"``: the reference's
        sums, ``sum (F - P)^2`` and ``sum_l sum (G_l - A_l)^2`` (Ulyanov & Lebedev), whose
        balance shifts towards style as filters grow and towards content as clips grow.
        """
        if statistics is None:
            statistics = [gram_matrix(f, normalize=True) for f in maps]
        style = statistics_distance(grams, statistics, self.loss_normalization)
        if not content_targets:
            return ops.zeros(()), style
        chosen = [maps[i] for i in content_layers]
        if self.loss_normalization == "sum":
            content = 2.0 * ops.sum(content_loss(content_targets, chosen, form="gatys"))
        else:
            content = ops.sum(content_loss(content_targets, chosen, form="mean")) / len(chosen)
        return content, style

    def _compiled_objective(self, extractor):
        """:meth:`objective`, compiled once per extractor."""
        cache = self.__dict__.setdefault("_objectives", {})
        if extractor.key not in cache:
            cache[extractor.key] = compile_value_and_grad(self.objective(extractor))
        return cache[extractor.key]

    # --------------------------------------------------------------- stylize
    def _prepare(self, waveform, sample_rate, what, n_fft):
        from zoo.data.audio import resample

        x = np.asarray(waveform, np.float32)
        if x.ndim != 1:
            x = np.squeeze(x)
        if x.ndim != 1 or x.size == 0:
            raise ValueError(f"{what} must be a mono waveform [samples], got shape "
                             f"{np.shape(waveform)}")
        if sample_rate and int(sample_rate) != self.sample_rate:
            x = resample(x, int(sample_rate), self.sample_rate).astype("float32")
        if x.size < n_fft:
            raise ValueError(f"{what} is {x.size} samples long; it needs at least one FFT "
                             f"window ({n_fft} samples at {self.sample_rate} Hz)")
        if float(np.max(np.abs(x))) < 1e-6:
            raise ValueError(f"{what} is silent")
        return x

    def style_statistics(self, style, feature_model=None):
        """The style clip's feature statistics per map: Gram matrices normalised by frames
        (the classifier's extractor: its standardised per-band means and spreads)."""
        ex = self.extractor(feature_model)
        return self._grams(ex, ex.spectrogram(ops.convert_to_tensor(style)[None]))

    @staticmethod
    def _grams(ex, spectrogram):
        """Style statistics of a representation ``[1, frames, bins]``."""
        params = ex.params()
        return ex.statistics(ex.maps(spectrogram, params), params)

    def stylize(self, content, style, content_weight=None, style_weight=None, iterations=None,
                optimizer=None, init=None, phase=None, seconds=None, sample_rate=None,
                feature_model=None, progress=False):
        """Render ``content`` with the texture of ``style``.

        Args:
            content: mono waveform ``[samples]``, or ``None`` for texture synthesis.
            style: mono waveform ``[samples]``.
            content_weight, style_weight, iterations, optimizer, init, phase: override
                the model's settings for this call.
            seconds: output duration for texture synthesis (default: the style's).
            sample_rate: rate of ``content`` and ``style`` (default: the model's).
            feature_model: a trained zoo model supporting ``Capability.FEATURE_MAPS``
                (e.g. a spectrogram VAE) whose feature maps replace the random ones, or
                a trained :class:`zoo.eval.classifier.DomainClassifier` (its log-mel
                frames; the model's ``sample_rate`` must be the classifier's).
            progress: show a progress bar with the content and style losses.

        Returns:
            :class:`Stylized` (``.audio`` has the content's length).

        Raises:
            ValueError: silent or too short inputs, bad settings.
        """
        cw = self.content_weight if content_weight is None else float(content_weight)
        sw = self.style_weight if style_weight is None else float(style_weight)
        iterations = int(iterations or self.iterations)
        optimizer = optimizer or self.optimizer_name
        init, phase = init or self.init, phase or self.phase
        if optimizer not in OPTIMIZERS or init not in INITS or phase not in PHASES:
            raise ValueError(f"optimizer in {OPTIMIZERS}, init in {INITS}, phase in {PHASES}; "
                             f"got {optimizer!r}, {init!r}, {phase!r}")
        ex = self.extractor(feature_model)
        style = self._prepare(style, sample_rate, "style", ex.n_fft)
        texture = content is None
        if texture:
            cw, init, phase = 0.0, "noise", "random"
            length = int(round((seconds or style.size / self.sample_rate) * self.sample_rate))
            if length < ex.n_fft:
                raise ValueError(f"seconds must give at least {ex.n_fft} samples")
        else:
            content = self._prepare(content, sample_rate, "content", ex.n_fft)
            length = content.size
        style_rep = ex.spectrogram(ops.convert_to_tensor(style)[None])  # one STFT of the style
        style_spec = np.asarray(ops.convert_to_numpy(style_rep))[0]
        grams = [np.asarray(ops.convert_to_numpy(g)) for g in self._grams(ex, style_rep)]
        frames = 1 + length // ex.hop_length
        content_spec = (None if texture else
                        np.asarray(ops.convert_to_numpy(ex.spectrogram(content[None])))[0])
        seg = max(8, int(self.segment_seconds * self.sample_rate / ex.hop_length))
        if frames <= seg:
            starts, width = [0], frames
        else:  # overlapping segments, hop = half a segment (crossfaded)
            width = seg - seg % 2
            n_seg, _ = chunk_layout(frames, width, width // 2)
            starts = [i * (width // 2) for i in range(n_seg)]
        rng = np.random.default_rng(self.seed)
        outs, history, distance = [], None, None
        bar = keras.utils.Progbar(iterations * len(starts),
                                  stateful_metrics=["content", "style"]) if progress else None
        for k, start in enumerate(starts):
            target = None
            if content_spec is not None:
                target = content_spec[start:start + width]
                target = np.pad(target, ((0, width - len(target)), (0, 0)),
                                constant_values=ex.silence)
            if init == "content" and target is not None:
                x0 = target.copy()
            else:
                x0 = (ex.silence + 1e-3 * rng.standard_normal((width, ex.num_bins))
                      ).astype("float32")
            x, hist = self._optimise(ex, x0, target, grams, (cw, sw), iterations, optimizer,
                                     bar, k * iterations)
            if history is None:
                history, distance = hist, (hist[0][2], hist[-1][2])
            outs.append(x)
        if len(outs) == 1:
            spec = outs[0][:frames]
        else:
            joined = overlap_add(np.stack(outs)[None], width // 2, crossfade_window(width))
            spec = np.asarray(ops.convert_to_numpy(joined))[0][:frames]
        audio = self._to_audio(ex, spec, length, content if phase == "content" else None)
        return Stylized(audio=audio, spectrogram=spec, content_spectrogram=content_spec,
                        style_spectrogram=style_spec, history=history, style_distance=distance)

    def _optimise(self, ex, x0, content_target, grams, weights, iterations, optimizer, bar,
                  offset):
        """Minimise the objective over the representation ``x0 [frames, bins]``; returns
        ``(x, [(iteration, content, style)])``."""
        fn = self._compiled_objective(ex)
        shape = (1,) + x0.shape
        params = ex.params()
        feats = []
        if content_target is not None:
            maps = ex.maps(ops.convert_to_tensor(content_target[None]), params)
            feats = [np.asarray(ops.convert_to_numpy(maps[i])) for i in ex.content_layers]
        tensors = [ops.convert_to_tensor(t) for t in feats + list(grams)] + list(params)
        w = np.asarray(weights, np.float32)
        history = []

        def evaluate(flat):
            loss, grad, aux = fn(flat.reshape(shape).astype("float32"), w, *tensors)
            return loss, grad.reshape(-1).astype("float64"), aux

        def record(i, aux):
            history.append((i, aux["content"], aux["style"]))
            if bar is not None:
                bar.update(offset + i, values=[("content", aux["content"]),
                                               ("style", aux["style"])])

        x = x0.reshape(-1).astype("float64")
        _, _, aux = evaluate(x)
        record(0, aux)
        if optimizer == "lbfgs":
            from scipy.optimize import minimize

            last = {}

            def fun(v):
                loss, grad, aux = evaluate(v)
                last["aux"] = aux
                return loss, grad

            def step(_):
                record(len(history), last["aux"])

            result = minimize(fun, x, jac=True, method="L-BFGS-B", callback=step,
                              options={"maxiter": iterations, "maxfun": 2 * iterations + 20,
                                       # run the iterations asked for: scipy's default
                                       # tolerances stop at once on small normalised losses
                                       "ftol": 0.0, "gtol": 0.0})
            x = result.x
        else:  # Adam on the same compiled loss and gradient
            m, v = np.zeros_like(x), np.zeros_like(x)
            b1, b2, eps = 0.9, 0.999, 1e-8
            for t in range(1, iterations + 1):
                _, grad, aux = evaluate(x)
                m = b1 * m + (1 - b1) * grad
                v = b2 * v + (1 - b2) * grad ** 2
                x = x - self.learning_rate * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
                record(t, aux)
            _, _, aux = evaluate(x)
            history[-1] = (history[-1][0], aux["content"], aux["style"])
        return x.reshape(x0.shape).astype("float32"), history

    def _to_audio(self, ex, spectrogram, length, phase_source):
        """Griffin-Lim on segments (bounded memory); optionally from ``phase_source``'s phase."""
        n_fft, hop = ex.n_fft, ex.hop_length
        magnitude = np.asarray(ops.convert_to_numpy(ex.magnitude(spectrogram[None])))
        init = "random"
        if phase_source is not None:
            re, im = ops.stft(ops.convert_to_tensor(phase_source[None]), n_fft, hop, n_fft,
                              center=True)
            init = np.asarray(ops.convert_to_numpy(ops.arctan2(im, re)))
        segment = int(self.segment_seconds * self.sample_rate / hop)
        if isinstance(init, str) or magnitude.shape[1] <= segment:
            wave = griffin_lim(magnitude, n_fft, hop, self.griffin_lim_iters,
                               length=max(length, n_fft), init=init, seed=self.seed)
            return np.asarray(ops.convert_to_numpy(wave))[0, :length].astype("float32")

        def invert(part, num_samples):  # segments start from random phase
            return griffin_lim(part, n_fft, hop, self.griffin_lim_iters, length=num_samples,
                               init="random", seed=self.seed)

        return griffin_lim_segments(invert, magnitude, length, hop, n_fft, segment, fill=0.0)[0]

    # --------------------------------------------------------------- contract
    def serving_endpoints(self):
        """``forward``: waveforms ``[batch, samples]`` -> last random layer's features
        (the optimisation itself runs in Python: :meth:`stylize`)."""
        return {"forward": (self.call, [(None, None)])}

    def get_config(self):
        return {**super().get_config(), "sample_rate": self._sample_rate, "n_fft": self.n_fft,
                "hop_length": self.hop_length, "representation": self.representation,
                "n_mels": self.n_mels, "filters": self.filters, "widths": list(self.widths),
                "depth": self.depth, "content_weight": self.content_weight,
                "style_weight": self.style_weight, "iterations": self.iterations,
                "optimizer": self.optimizer_name, "learning_rate": self.learning_rate,
                "init": self.init, "phase": self.phase,
                "griffin_lim_iters": self.griffin_lim_iters,
                "segment_seconds": self.segment_seconds,
                "loss_normalization": self.loss_normalization, "seed": self.seed}



class _Extractor:
    """A feature extractor of :meth:`StyleTransfer.stylize`: a representation
    (``spectrogram`` / ``magnitude``), feature ``maps`` of it, and the style
    ``statistics`` of the maps (Gram matrices normalised by frames, unless overridden)."""

    def statistics(self, maps, params):
        return [gram_matrix(f, normalize=True) for f in maps]


class _RandomFeatures(_Extractor):
    """The random convolutions of a :class:`StyleTransfer` on its own representation."""

    silence = 0.0  # log(1 + 0)

    def __init__(self, model):
        self.model, self.key = model, "random"
        self.n_fft, self.hop_length = model.n_fft, model.hop_length
        self.num_bins = model.num_bins
        self.num_maps = len(model.widths) * model.depth
        # the last layer of each branch carries the content
        self.content_layers = [(b + 1) * model.depth - 1 for b in range(len(model.widths))]

    def spectrogram(self, waveform):
        return self.model.spectrogram(waveform)

    def magnitude(self, spectrogram):
        return self.model.magnitude(spectrogram)

    def params(self):
        return [ops.convert_to_tensor(k) for stack in self.model.kernels() for k in stack]

    def maps(self, x, params):
        it, depth = iter(params), self.model.depth
        return random_features(x, [[next(it) for _ in range(depth)] for _ in self.model.widths])


class _ClassifierFeatures(_Extractor):
    """The evaluation domain classifier's view, differentiable. The map is its
    standardised Slaney log-mel frames ``z_t = (l_t - mean) / std`` with
    ``l_t = ln(mel_t + 1e-6)`` of the power STFT, on the representation
    ``log(1 + |STFT|)`` at the classifier's STFT; the style statistics are exactly the
    classifier's standardised input (per-band mean and standard deviation of ``l_t``
    over frames), not a Gram matrix, whose cross-band terms would carry the style's
    pitches."""

    silence = 0.0  # log(1 + 0)

    def __init__(self, model, spec):
        import librosa

        if int(spec["sample_rate"]) != model.sample_rate:
            raise ValueError(f"feature_model: the domain classifier hears {spec['sample_rate']} "
                             f"Hz audio; load the style transfer with sample_rate="
                             f"{spec['sample_rate']} (it has {model.sample_rate})")
        n = int(spec["n_mels"])
        self.n_fft, self.hop_length = int(spec["n_fft"]), int(spec["hop_length"])
        self.num_bins = self.n_fft // 2 + 1
        self.num_maps, self.content_layers = 1, [0]
        self.key = ("classifier", model.sample_rate, self.n_fft, self.hop_length, n)
        mel = librosa.filters.mel(sr=model.sample_rate, n_fft=self.n_fft, n_mels=n, htk=False,
                                  norm="slaney")
        mean, std = (np.asarray(spec[k], np.float32) for k in ("mean", "std"))
        self._params = [np.ascontiguousarray(mel.T, np.float32), mean[:n], std[:n], mean[n:],
                        std[n:]]

    def spectrogram(self, waveform):
        return ops.log1p(stft_magnitude(ops.convert_to_tensor(waveform, "float32"), self.n_fft,
                                        self.hop_length))

    def magnitude(self, spectrogram):
        return ops.maximum(ops.expm1(ops.convert_to_tensor(spectrogram, "float32")), 0.0)

    def params(self):
        return [ops.convert_to_tensor(p) for p in self._params]

    def maps(self, x, params):
        mel, mean, std = params[:3]
        power = ops.square(self.magnitude(x))
        return [(ops.log(ops.matmul(power, mel) + 1e-6) - mean) / std]

    def statistics(self, maps, params):
        """The classifier's standardised input ``[B, 2 n_mels]`` (one entry per map)."""
        z = maps[0]
        _, scale, spread_mean, spread_std = params[1:]
        spread = ops.sqrt(ops.var(z, axis=1) + 1e-8) * scale  # std over frames of l_t
        return [ops.concatenate([ops.mean(z, axis=1), (spread - spread_mean) / spread_std], -1)]


class _ModelFeatures(_Extractor):
    """A trained model's feature maps on its own normalised log-mel front-end."""

    silence = -1.0  # the normalisation floor

    def __init__(self, model):
        model.require(Capability.FEATURE_MAPS, "provide features for style transfer")
        self.model, self.key = model, ("model", id(model))
        fe = model.frontend
        self.frontend, self.n_fft, self.hop_length, self.num_bins = (
            fe, fe.n_fft, fe.hop_length, fe.n_mels)
        probe = model.feature_maps(ops.zeros((1, 8, fe.n_mels)))
        self.num_maps = len(probe)
        self.content_layers = [self.num_maps - 1]

    def spectrogram(self, waveform):
        return self.frontend(self.frontend.pad_input(waveform))

    def magnitude(self, spectrogram):
        fe = self.frontend
        power = fe.mel.inverse(fe.to_power_mel(spectrogram) / fe.power_scale)
        return ops.sqrt(ops.maximum(power, 0.0) + 1e-12)

    def params(self):
        return []

    def maps(self, x, params):
        return self.model.feature_maps(x)
