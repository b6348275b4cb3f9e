"""Two-domain translation models: the contract and the spectrogram conversion path.

:class:`TranslationModel` is the base of every model that converts audio from a
source domain A into a target domain B (TraVeLGAN, UNIT, GMM voice conversion, the
conditional VAE): it trains on paired batches ``(crops of A, crops of B)``, converts
waveforms of any length and rate with :meth:`~TranslationModel.convert`, writes
listening examples and exports a ``forward`` signature.

:class:`SpectrogramTranslation` adds the conversion of models that translate
normalised log-mel features with a network on fixed-width chunks: features ->
chunks at 50 % overlap -> the network in batches of at most ``max_chunks`` (bounded
memory) -> ``sin^2`` crossfade -> inversion (Griffin-Lim on segments, or gradient
inversion). A subclass provides ``frontend``, ``chunk_frames``, ``max_chunks`` and
:meth:`~SpectrogramTranslation.translate_chunks`.
"""
import numpy as np
from keras import ops

from zoo.engine import Capability, ZooModel, inference
from zoo.errors import ZooError
from zoo.models.chunking import chunk_layout, crossfade_window, frame, overlap_add, pad_to_length
from zoo.models.inversion import gradient_inversion, griffin_lim_segments

INVERSIONS = ("griffin_lim", "gradient")


class TranslationModel(ZooModel):
    """Base of models that convert audio from domain A to domain B.

    Subclasses implement :meth:`convert_batch` (numpy ``[batch, samples]`` at
    ``sample_rate`` -> same shape) and :meth:`translate` (the same in graph, for
    export).
    """

    capabilities = {Capability.CONVERT, Capability.PAIRED_DOMAINS, Capability.EXAMPLES}

    #: the model converts B -> A and A -> A / B -> B too (``source`` / ``target`` of
    #: :meth:`convert`); otherwise only A -> B.
    bidirectional = False

    @property
    def domain_names(self):
        """Names of domains A and B (``source`` / ``target`` accept them, or "A" / "B")."""
        return tuple(getattr(self, "domains", ("A", "B")))

    def conversion_pair(self, source=None, target=None):
        """``(source index, target index)`` of a conversion; ``(0, 1)`` is A -> B.

        Either may be omitted (the other domain is implied). Raises a one-line
        ``ZooError`` naming the argument for an unknown domain or a direction the model
        does not convert."""
        names = self.domain_names

        def index(name, role):
            if name is None:
                return None
            name = str(name)
            if name in names:
                return names.index(name)
            if name in ("A", "B"):
                return "AB".index(name)
            raise ZooError(f"{role}: unknown domain {name!r}; {type(self).__name__} converts "
                           f"between {names[0]!r} (A) and {names[1]!r} (B)")

        src, tgt = index(source, "source"), index(target, "target")
        if src is None and tgt is None:
            return 0, 1
        src = 1 - tgt if src is None else src
        tgt = 1 - src if tgt is None else tgt
        if (src, tgt) != (0, 1) and not self.bidirectional:
            raise ZooError(f"target: {type(self).__name__} converts only {names[0]!r} (A) -> "
                           f"{names[1]!r} (B), not {names[src]!r} -> {names[tgt]!r}")
        return src, tgt

    def split_domains(self, data):
        """A paired training batch -> ``(domain A crops, domain B crops)``."""
        if isinstance(data, (list, tuple)) and len(data) == 1:
            data = data[0]
        if not isinstance(data, (list, tuple)) or len(data) < 2:
            raise ValueError(f"{type(self).__name__} trains on paired batches (domain_a, "
                             "domain_b); pass dataset.batches(..., paired=True)")
        return data[0], data[1]

    def convert(self, waveform, sample_rate=None, output_rate=None, **options):
        """Convert a waveform of any length from domain A to domain B.

        Args:
            waveform: float ``[samples]`` or ``[batch, samples]``.
            sample_rate: its rate (default: the model's); other rates are resampled.
            output_rate: rate of the result (default: ``sample_rate``).
            **options: passed to :meth:`convert_batch` (e.g. ``inversion``).

        Returns:
            float32 numpy array of the input's shape (its length scaled by
            ``output_rate / sample_rate``).
        """
        from zoo.data.audio import resample

        x = np.asarray(ops.convert_to_numpy(waveform) if not isinstance(waveform, np.ndarray)
                       else waveform, dtype=np.float32)
        if x.ndim not in (1, 2) or x.shape[-1] == 0:
            raise ValueError(f"waveform must be [samples] or [batch, samples] with samples > 0, "
                             f"got shape {x.shape}")
        rate_in = int(sample_rate or self.sample_rate)
        rate_out = int(output_rate or rate_in)
        single = x.ndim == 1
        x = x[None] if single else x
        if rate_in != self.sample_rate:
            x = np.stack([resample(row, rate_in, self.sample_rate) for row in x])
        y = np.asarray(self.convert_batch(x, **options), np.float32)
        if rate_out != self.sample_rate:
            y = np.stack([resample(row, self.sample_rate, rate_out) for row in y])
        return y[0] if single else y

    def convert_file(self, source, destination, output_rate=None, block_seconds=60.0,
                     progress=True, **options):
        """Convert an audio file of any length in constant memory.

        The file is read, converted and written in crossfaded blocks of
        ``block_seconds`` (:func:`zoo.data.streaming.process_file`), so a two-hour
        recording needs no more memory than a two-minute one.

        Args:
            source: input audio file (any rate, channels averaged).
            destination: output WAV (written atomically).
            output_rate: its rate (default: the model's).
            block_seconds: block length (memory grows with it, not with the file).
            progress: show a progress bar.
            **options: as for :meth:`convert` (``source`` is ``domain`` here:
                pass ``target=``, or ``source_domain=`` for the input's domain).

        Returns:
            Seconds of audio written.
        """
        from zoo.data.streaming import process_file

        if "source_domain" in options:
            options["source"] = options.pop("source_domain")
        self.conversion_pair(options.get("source"), options.get("target"))
        return process_file(source, destination, lambda w: self.convert(w, **options),
                            self.sample_rate, output_rate=output_rate,
                            block_seconds=block_seconds, progress=progress)

    def convert_batch(self, waveforms, **options):
        """numpy ``[batch, samples]`` at ``sample_rate`` -> converted, same shape."""
        raise NotImplementedError(f"{type(self).__name__} must define convert_batch")

    def translate(self, waveform):
        """In-graph conversion ``[batch, samples]`` -> ``[batch, samples]`` (exported)."""
        raise NotImplementedError(f"{type(self).__name__} must define translate")

    def audio_examples(self, clips):
        """Domain-A input clips and their conversions to domain B, for listening."""
        clips = np.asarray(ops.convert_to_numpy(clips), "float32")
        return {"input": clips, "converted": self.convert(clips)}

    def serving_endpoints(self):
        """Exported signatures: waveform ``[batch, samples]`` (any length) -> converted."""
        return {"forward": (self.translate, [(None, None)])}


class SpectrogramTranslation(TranslationModel):
    """Conversion by a network on chunks of normalised log-mel features (module
    docstring). Subclasses define ``frontend`` (a ``SpectralFrontEnd``),
    ``chunk_frames`` (even), ``max_chunks`` and :meth:`translate_chunks`."""

    #: feature value of silence (the normalisation floor), used for padding.
    SILENCE = -1.0

    def translate_chunks(self, chunks, training=False):
        """``[n, chunk_frames, n_mels]`` features -> translated features, same shape.

        Bidirectional models also take ``source`` and ``target`` (domain indices)."""
        raise NotImplementedError(f"{type(self).__name__} must define translate_chunks")

    def _translate_pair(self, chunks, source=0, target=1, training=False):
        if (source, target) == (0, 1):
            return self.translate_chunks(chunks, training=training)
        return self.translate_chunks(chunks, training=training, source=source, target=target)

    @property
    def sample_rate(self):
        return self.frontend.sample_rate

    def features(self, waveform):
        """Waveforms ``[B, samples]`` -> normalised log-mel ``[B, frames, n_mels]``
        (inputs shorter than one FFT window are zero-padded)."""
        return self.frontend(self.frontend.pad_input(waveform))

    def _chunking(self):
        return self.chunk_frames, self.chunk_frames // 2

    def convert_features(self, features, source=0, target=1):
        """In-graph conversion of features of any width: overlapping chunks, crossfade."""
        w, h = self._chunking()
        frames = features.shape[1] if features.shape[1] is not None else ops.shape(features)[1]
        n, padded = chunk_layout(frames, w, h)
        feats = pad_to_length(features, padded, value=self.SILENCE)
        out = self._translate_pair(frame(feats, w, h, n), source, target)
        out = ops.reshape(out, (ops.shape(features)[0], n, w, self.frontend.n_mels))
        return overlap_add(out, h, crossfade_window(w))[:, :frames]

    @inference
    def translate(self, waveform):
        """Waveforms ``[B, samples]`` -> converted waveforms of the same length, in one graph.

        Every chunk goes through the network at once; :meth:`convert` bounds memory.
        """
        return self.translate_pair(waveform, 0, 1)

    def translate_pair(self, waveform, source, target):
        """:meth:`translate` from domain index ``source`` to ``target``."""
        waveform = ops.convert_to_tensor(waveform, "float32")
        length = waveform.shape[1] if waveform.shape[1] is not None else ops.shape(waveform)[1]
        converted = self.convert_features(self.features(waveform), source, target)
        out_length = (max(length, self.frontend.n_fft) if isinstance(length, int)
                      else ops.maximum(length, self.frontend.n_fft))
        return self.frontend.to_waveform(converted, out_length)[:, :length]

    @inference
    def _features_jit(self, waveform):
        return self.features(waveform)

    @inference
    def _translate_jit(self, chunks, source=0, target=1):
        return self._translate_pair(chunks, source, target)

    @inference
    def _waveform_jit(self, features, length):
        return self.frontend.to_waveform(features, length)

    def convert_batch(self, waveforms, max_chunks=None, inversion="griffin_lim", iterations=2000,
                      learning_rate=0.003, seed=0, segment_seconds=30.0, source=None,
                      target=None):
        """Convert numpy ``[batch, samples]`` chunk by chunk.

        Args:
            waveforms: float32 ``[batch, samples]`` at ``sample_rate``.
            max_chunks: chunks per network call (default ``self.max_chunks``);
                memory stays bounded however long the input is.
            inversion: ``"griffin_lim"`` (fast Griffin-Lim, ``griffin_lim_iters``) or
                ``"gradient"`` (Adam on the L1 error of the power mel; slow).
            iterations, learning_rate, seed: of the gradient inversion.
            segment_seconds: Griffin-Lim inverts overlapping segments of this length
                (:func:`zoo.models.inversion.griffin_lim_segments`).
            source, target: domains (names, "A" / "B"; :meth:`conversion_pair`).
        """
        pair = self.conversion_pair(source, target)
        if inversion not in INVERSIONS:
            raise ValueError(f"inversion must be one of {INVERSIONS}, got {inversion!r}")
        batch, length = waveforms.shape
        feats = np.asarray(ops.convert_to_numpy(self._features_jit(waveforms)))
        frames = feats.shape[1]
        w, h = self._chunking()
        n, padded = chunk_layout(frames, w, h)
        feats = np.pad(feats, ((0, 0), (0, padded - frames), (0, 0)), constant_values=self.SILENCE)
        chunks = np.asarray(ops.convert_to_numpy(frame(feats, w, h, n)))
        size = min(int(max_chunks or self.max_chunks), len(chunks))
        outs = []
        for i in range(0, len(chunks), size):
            part = chunks[i:i + size]
            fill = size - len(part)  # one compiled shape on JAX
            part = np.concatenate([part, np.full((fill,) + part.shape[1:], self.SILENCE,
                                                 "float32")])
            outs.append(np.asarray(ops.convert_to_numpy(
                self._translate_jit(part, *pair)))[:size - fill])
        out = np.concatenate(outs).reshape(batch, n, w, -1)
        converted = np.asarray(ops.convert_to_numpy(
            overlap_add(out, h, crossfade_window(w))))[:, :frames]
        if inversion == "gradient":
            return gradient_inversion(self.frontend, converted, length, iterations=iterations,
                                      learning_rate=learning_rate, seed=seed)
        fe = self.frontend
        return griffin_lim_segments(self._waveform_jit, converted, length, fe.hop_length,
                                    fe.n_fft, int(segment_seconds * self.sample_rate
                                                  / fe.hop_length), fill=self.SILENCE)
