"""Conditional spectrogram VAE: voice / timbre conversion by swapping a domain label.

The spectrogram VAE (:class:`~zoo.models.vae.SpectrogramVAE`) with a one-hot domain
(speaker, instrument) label appended to the encoder's input frames and to the decoder's
latent frames. Trained on labelled crops of any number of domains, parallel or not
(``zoo train cvae --data FOLDER_WITH_ONE_SUBFOLDER_PER_DOMAIN``): the label carries
who is speaking, so the latent is pushed to carry what is said.

Conversion, A -> B (:meth:`ConditionalVAE.convert`, ``conversion=``):

* ``"swap"``: encode with label A, decode with label B; with ``f0_transform`` (default)
  the output is resynthesised with WORLD from the decoded envelope, the source's
  aperiodicity and the source's f0 contour through the log-f0 mean / variance
  transform from A to B (statistics of each domain's training clips; WORLD analysis
  and synthesis, so the exported graph converts without it);
* ``"arithmetic"``: the latent-arithmetic baseline of seed 004,
  ``z - mu_A + mu_B`` decoded with label A, where ``mu_d`` is the mean posterior of
  domain ``d``'s training clips (computed when training ends, stored in the model).
"""
import keras
import numpy as np
from keras import ops

from zoo.engine import Capability, inference
from zoo.engine.domains import DomainLabels, domain_names
from zoo.errors import ZooError
from zoo.models.translation import TranslationModel
from zoo.models.vae import SpectrogramVAE

CONVERSIONS = ("swap", "arithmetic")


@keras.saving.register_keras_serializable(package="zoo")
class ConditionalVAE(DomainLabels, SpectrogramVAE):
    """Spectrogram VAE conditioned on a domain label (module docstring).

    Args:
        domains: the domain names, in the order of the data's domain folders (sorted).
        source_domain, target_domain: the default conversion (default: the first two).
        conversion: default conversion mode, ``"swap"`` or ``"arithmetic"``.
        mean_clips: training clips per domain for the latent means of ``"arithmetic"``.
        **kwargs: :class:`~zoo.models.vae.SpectrogramVAE`'s arguments.
    """

    capabilities = {Capability.CONVERT, Capability.RECONSTRUCT, Capability.ENCODE,
                    Capability.EXAMPLES, Capability.DOMAIN_LABELS, Capability.FEATURE_MAPS}

    def __init__(self, domains=("A", "B"), source_domain="", target_domain="",
                 conversion="swap", mean_clips=64, f0_transform=True, **kwargs):
        names = domain_names(domains)
        if conversion not in CONVERSIONS:
            raise ValueError(f"conversion must be one of {CONVERSIONS}, got {conversion!r}")
        source, target = str(source_domain) or names[0], str(target_domain) or names[1]
        for role, name in (("source_domain", source), ("target_domain", target)):
            if name not in names:
                raise ValueError(f"{role} {name!r} is not one of domains {names}")
        super().__init__(**kwargs)
        self.domains = tuple(names)
        self.source_domain, self.target_domain = source, target
        self.conversion, self.mean_clips = conversion, int(mean_clips)
        self.f0_transform = bool(f0_transform)
        self.domain_means = self.add_weight(shape=(len(self.domains), self.latent_dim),
                                            initializer="zeros", trainable=False,
                                            name="domain_means")
        # per domain: log-f0 mean, std, and the f0 search range (Hz), from training clips
        self.domain_f0 = self.add_weight(shape=(len(self.domains), 4), initializer="zeros",
                                         trainable=False, name="domain_f0")

    # ------------------------------------------------------------ conditioning
    def conditioned(self, sequence, condition):
        """Append the one-hot label (default: the source domain) to every frame."""
        batch, frames = ops.shape(sequence)[0], ops.shape(sequence)[1]
        if condition is None:
            condition = ops.full((batch,), self.index(self.source_domain), "int32")
        onehot = ops.one_hot(ops.cast(ops.reshape(condition, (-1,)), "int32"),
                             len(self.domains), dtype=sequence.dtype)
        onehot = ops.broadcast_to(onehot[:, None, :], (batch, frames, len(self.domains)))
        return ops.concatenate([sequence, onehot], axis=-1)

    # ------------------------------------------------------------ conversion
    @inference
    def translate_domains(self, waveform, source, target, arithmetic=False):
        """``[B, samples]`` from domain index ``source`` to ``target`` (in graph)."""
        waveform = ops.convert_to_tensor(waveform, "float32")
        length = waveform.shape[1] or ops.shape(waveform)[1]
        features = self.frontend(self.frontend.pad_input(waveform))
        batch = ops.shape(features)[0]
        src = ops.full((batch,), source, "int32")
        z = self.encode_features(features, src)[0]
        if arithmetic:
            means = ops.convert_to_tensor(self.domain_means)
            z = z - means[source] + means[target]
            decoded = self.decode_features(z, src)
        else:
            decoded = self.decode_features(z, ops.full((batch,), target, "int32"))
        decoded = decoded[:, : features.shape[1] or ops.shape(features)[1]]
        return self.waveform_of_length(decoded, length)

    convert = TranslationModel.convert

    def convert_batch(self, waveforms, source=None, target=None, conversion=None):
        """numpy ``[B, samples]`` -> converted (default: the model's direction and mode).

        With ``f0_transform`` (and stored statistics) a label swap's output keeps the
        decoded envelope but takes the source's f0 contour through the log-f0 mean /
        variance transform to the target domain (WORLD analysis and synthesis)."""
        mode = conversion or self.conversion
        if mode not in CONVERSIONS:
            raise ZooError(f"conversion must be one of {CONVERSIONS}, got {mode!r}")
        src, tgt = self.index(source or self.source_domain), self.index(target or
                                                                       self.target_domain)
        x = np.asarray(waveforms, "float32")
        out = np.asarray(ops.convert_to_numpy(self.translate_domains(
            x, src, tgt, arithmetic=mode == "arithmetic")), "float32")
        stats = np.asarray(ops.convert_to_numpy(self.domain_f0), np.float64)
        if self.f0_transform and mode == "swap" and src != tgt and np.all(stats[[src, tgt], 1] > 0):
            out = np.stack([self._transfer_f0(a, b, stats[src], stats[tgt])
                            for a, b in zip(x, out)])
        return out

    def _transfer_f0(self, source, converted, src, tgt):
        from zoo.dsp.world import world_analysis, world_synthesis

        sr = self.sample_rate
        # f0 and aperiodicity from the source (Griffin-Lim's phase leaves the decoded audio
        # noisier than speech), the envelope from the decoded audio
        f0, _, ap = world_analysis(source, sr, f0_floor=src[2], f0_ceil=src[3], fft_size=1024)
        _, sp, _ = world_analysis(converted, sr, f0_floor=tgt[2], f0_ceil=tgt[3],
                                  fft_size=1024)
        n = min(len(f0), len(sp))
        mapped = np.zeros(n)
        voiced = f0[:n] > 0
        mapped[voiced] = np.exp((np.log(f0[:n][voiced]) - src[0]) / src[1] * tgt[1] + tgt[0])
        y = world_synthesis(mapped, sp[:n], ap[:n], sr)
        y = np.pad(y, (0, max(0, len(source) - len(y))))[:len(source)]
        peak = np.max(np.abs(y))
        return (y / peak * min(peak, 0.99) if peak > 0 else y).astype("float32")

    def translate(self, waveform):
        """In-graph conversion in the model's default direction and mode (exported)."""
        return self.translate_domains(waveform, self.index(self.source_domain),
                                      self.index(self.target_domain),
                                      arithmetic=self.conversion == "arithmetic")

    # ------------------------------------------------------------ training hooks
    def finish_training(self, context):
        """Store each domain's mean posterior over training clips (for ``arithmetic``)."""
        dataset = context.dataset
        means = np.zeros((len(self.domains), self.latent_dim), "float32")
        for k, name in enumerate(self.domains):
            clips = dataset.clips(self.mean_clips, split="train", seed=context.seed,
                                  domain=name)
            z = []
            for start in range(0, len(clips), 16):
                batch = clips[start:start + 16]
                features = self.frontend(self.frontend.pad_input(ops.convert_to_tensor(batch)))
                z.append(np.asarray(ops.convert_to_numpy(self.encode_features(
                    features, ops.full((len(batch),), k, "int32"))[0])))
            means[k] = np.concatenate(z).reshape(-1, self.latent_dim).mean(axis=0)
        self.domain_means.assign(means)
        self.domain_f0.assign(self._f0_statistics(dataset, context.seed))
        return True

    def _f0_statistics(self, dataset, seed):
        """Per domain: log-f0 mean and std over an octave around the domain's median
        (octave errors left out), and that octave range, from training clips."""
        from concurrent.futures import ThreadPoolExecutor

        from zoo.dsp.world import world_f0

        out = np.zeros((len(self.domains), 4), "float32")
        with ThreadPoolExecutor(2) as pool:
            for k, name in enumerate(self.domains):
                clips = dataset.clips(min(self.mean_clips, 16), split="train", seed=seed,
                                      domain=name)
                f0 = np.concatenate(list(pool.map(
                    lambda c: world_f0(c, self.sample_rate)[0], list(clips))))
                f0 = f0[f0 > 0]
                if len(f0) < 10:
                    continue  # too little voicing: no transform for this domain
                median = float(np.median(f0))
                lo, hi = max(40.0, median / 2), min(1100.0, median * 2)
                kept = np.log(f0[(f0 >= lo) & (f0 <= hi)])
                out[k] = [kept.mean(), max(kept.std(), 1e-3), lo, hi]
        return out

    def audio_examples(self, clips):
        clips = np.asarray(ops.convert_to_numpy(clips), "float32")
        return {"input": clips, "reconstruction": self.reconstruct(clips),
                "converted": self.convert_batch(clips)}

    def serving_endpoints(self):
        return {**super().serving_endpoints(),
                "forward": (self.translate, [(None, None)]),
                "reconstruct": (self.reconstruct, [(None, None)])}

    def get_config(self):
        return {**super().get_config(), "domains": list(self.domains),
                "source_domain": self.source_domain, "target_domain": self.target_domain,
                "conversion": self.conversion, "mean_clips": self.mean_clips,
                "f0_transform": self.f0_transform}
