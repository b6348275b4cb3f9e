"""A small domain (instrument / speaker) classifier on real clips, cached per dataset.

It answers "which domain does this sound like?" for evaluation: the share of
converted clips called the target domain, a model's accuracy at keeping the
domain of what it reconstructs, and an embedding for Frechet distances between
sets of clips (:func:`zoo.eval.metrics.frechet_distance`).

Features: the mean and standard deviation over frames of the log-mel
spectrogram of a clip (librosa defaults: Slaney mel, 40 bands, FFT 1024, hop
256, ``ln(mel power + 1e-6)``), standardised with the training set's
statistics. Model: one ``tanh`` hidden layer (the embedding) and a softmax over
the domains, trained full-batch with Adam on the cross-entropy plus an L2
penalty, in numpy (deterministic for a seed; no deep-learning backend).

:func:`domain_classifier` trains one on clips of the training split of an
:class:`zoo.data.AudioDataset` and caches its weights in
``<cache>/classifiers/<key>.npz``; the key hashes the dataset folder, every
training file's path, modification time and size, the sample rate and the
classifier's settings, so touching a file or changing a setting retrains and
anything else reuses the cached weights.

Example:
    >>> from zoo.data import load_dataset
    >>> ds = load_dataset("builtin:timbre", 16000, 4096, progress=False)
    >>> clf = domain_classifier(ds)                 # trained once, then cached
    >>> clf.share(clips_of(ds.waveform("reed/mel_001.wav"), 16000), "reed")
    1.0
"""
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from zoo.errors import ZooError

__all__ = ["FEATURE_HOP", "FEATURE_N_FFT", "DomainClassifier", "clip_features", "clips_of",
           "domain_classifier"]

#: Bump when features or training change: cached classifiers are then retrained.
CLASSIFIER_VERSION = 1

#: Seconds per classifier clip.
CLIP_SECONDS = 1.0


#: STFT of :func:`clip_features` (librosa's melspectrogram: Hann window, centred).
FEATURE_N_FFT, FEATURE_HOP = 1024, 256


def clip_features(x, sr, n_mels=40, n_fft=FEATURE_N_FFT, hop=FEATURE_HOP):
    """Mean and standard deviation over frames of a clip's log-mel spectrogram.

    Args:
        x: waveform ``[samples]`` (shorter than ``n_fft`` is zero-padded).
        sr: sample rate, Hz.
        n_mels, n_fft, hop: mel bands (librosa's Slaney filterbank), FFT size,
            hop length.

    Returns:
        float64 ``[2 * n_mels]``: the per-band means, then the standard deviations
        of ``ln(mel power + 1e-6)``.
    """
    import librosa

    x = np.asarray(x, np.float32).reshape(-1)
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    mel = librosa.feature.melspectrogram(y=x, sr=sr, n_fft=n_fft, hop_length=hop, n_mels=n_mels)
    logmel = np.log(mel.astype(np.float64) + 1e-6)
    return np.concatenate([logmel.mean(axis=1), logmel.std(axis=1)])


def clips_of(x, sr, per_file=4, seconds=CLIP_SECONDS):
    """``per_file`` clips of ``seconds`` at evenly spaced offsets (deterministic).

    Args:
        x: waveform ``[samples]``.
        sr: sample rate, Hz.
        per_file: clips per waveform.
        seconds: clip length.

    Returns:
        list of 1-D arrays; the whole waveform as one clip when it is not
        longer than one clip.
    """
    x = np.asarray(x).reshape(-1)
    n = int(seconds * sr)
    if len(x) <= n:
        return [x]
    starts = np.linspace(0, len(x) - n, int(per_file)).astype(int)
    return [x[s:s + n] for s in starts]


class DomainClassifier:
    """Log-mel statistics -> tanh hidden layer (embedding) -> softmax over domains.

    Args:
        domains: domain names, in label order.
        sample_rate: Hz of the clips it is given.
        hidden: embedding width.
        steps: full-batch Adam steps.
        learning_rate: Adam step size.
        l2: weight penalty.
        n_mels: mel bands of :func:`clip_features`.
        seed: initialisation seed.

    Example::

        clf = DomainClassifier(["a", "b"], 16000).fit(clips, labels)  # labels: 0 / 1
        p_b = clf.predict_proba(new_clips)[:, 1]
    """

    def __init__(self, domains, sample_rate, hidden=16, steps=500, learning_rate=0.01, l2=1e-3,
                 n_mels=40, seed=0):
        self.domains = [str(d) for d in domains]
        if len(self.domains) < 2:
            raise ValueError(f"a domain classifier needs at least 2 domains; got {self.domains}")
        self.sample_rate = int(sample_rate)
        self.hidden, self.steps = int(hidden), int(steps)
        self.learning_rate, self.l2 = float(learning_rate), float(l2)
        self.n_mels, self.seed = int(n_mels), int(seed)
        self.params = None
        self.num_train_clips = 0
        self.train_accuracy = None
        self.from_cache = False

    def settings(self):
        """The constructor arguments but ``domains`` and ``sample_rate`` (part of cache keys)."""
        return {"hidden": self.hidden, "steps": self.steps, "learning_rate": self.learning_rate,
                "l2": self.l2, "n_mels": self.n_mels, "seed": self.seed}

    def features(self, clips):
        """:func:`clip_features` of each clip: ``[clips, 2 * n_mels]``."""
        return np.stack([clip_features(c, self.sample_rate, self.n_mels) for c in clips])

    def frame_feature_spec(self):
        """What the classifier looks at, for a differentiable transcription
        (:class:`zoo.models.style_transfer.StyleTransfer` matches these statistics when
        given this classifier as its ``feature_model``).

        Returns:
            dict: ``sample_rate``, ``n_fft``, ``hop_length``, ``n_mels`` (Slaney mel of
            the power STFT, ``l_t = ln(mel_t + 1e-6)``), and ``mean`` / ``std``
            ``[2 * n_mels]``: the standardisation of :func:`clip_features` (per-band
            mean over frames of ``l_t``, then their standard deviations) the classifier
            applies before its hidden layer.
        """
        self._check_fitted()
        return {"sample_rate": self.sample_rate, "n_fft": FEATURE_N_FFT,
                "hop_length": FEATURE_HOP, "n_mels": self.n_mels,
                "mean": np.asarray(self.params["mu"], np.float32),
                "std": np.asarray(self.params["sd"], np.float32)}

    def _check_fitted(self):
        if self.params is None:
            raise RuntimeError("the classifier is not trained: call fit() first")

    def _forward(self, feats):
        p = self.params
        h = np.tanh(((feats - p["mu"]) / p["sd"]) @ p["w1"] + p["b1"])
        logits = h @ p["w2"] + p["b2"]
        logits = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return h, e / e.sum(axis=1, keepdims=True)

    def fit(self, clips, labels):
        """Train on waveform clips and their domain indices.

        Args:
            clips: list of 1-D waveforms at ``sample_rate``.
            labels: domain index of each clip (``0 .. len(domains) - 1``).

        Returns:
            self.
        """
        labels = np.asarray(labels, dtype=np.int64)
        if len(clips) != len(labels) or len(labels) == 0:
            raise ValueError(f"need one label per clip; got {len(clips)} clips, "
                             f"{len(labels)} labels")
        if labels.min() < 0 or labels.max() >= len(self.domains):
            raise ValueError(f"labels must be in 0..{len(self.domains) - 1}")
        feats = self.features(clips)
        rng = np.random.default_rng(self.seed)
        d, k = feats.shape[1], len(self.domains)
        p = {"mu": feats.mean(0), "sd": feats.std(0) + 1e-6,
             "w1": rng.standard_normal((d, self.hidden)) / np.sqrt(d), "b1": np.zeros(self.hidden),
             "w2": rng.standard_normal((self.hidden, k)) / np.sqrt(self.hidden), "b2": np.zeros(k)}
        self.params = p
        z = (feats - p["mu"]) / p["sd"]
        onehot = np.eye(k)[labels]
        names = ("w1", "b1", "w2", "b2")
        m = {n: np.zeros_like(p[n]) for n in names}
        v = {n: np.zeros_like(p[n]) for n in names}
        b1, b2, n = 0.9, 0.999, len(labels)
        for t in range(1, self.steps + 1):
            h, prob = self._forward(feats)
            g_logits = (prob - onehot) / n
            g_h = (g_logits @ p["w2"].T) * (1.0 - h ** 2)
            grads = {"w2": h.T @ g_logits + self.l2 * p["w2"], "b2": g_logits.sum(0),
                     "w1": z.T @ g_h + self.l2 * p["w1"], "b1": g_h.sum(0)}
            for name in names:
                m[name] = b1 * m[name] + (1 - b1) * grads[name]
                v[name] = b2 * v[name] + (1 - b2) * grads[name] ** 2
                step = self.learning_rate * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
                p[name] = p[name] - step * m[name] / (np.sqrt(v[name]) + 1e-8)
        self.num_train_clips = n
        self.train_accuracy = float(np.mean(self._forward(feats)[1].argmax(1) == labels))
        return self

    def predict_proba(self, clips):
        """Domain probabilities ``[clips, len(domains)]``."""
        self._check_fitted()
        return self._forward(self.features(clips))[1]

    def predict(self, clips):
        """Most likely domain index of each clip ``[clips]``."""
        return self.predict_proba(clips).argmax(axis=1)

    def embed(self, clips):
        """Hidden-layer activations ``[clips, hidden]``: the embedding for Frechet distances."""
        self._check_fitted()
        return self._forward(self.features(clips))[0]

    def domain_index(self, domain):
        """Label index of a domain name (or an index, checked)."""
        if isinstance(domain, (int, np.integer)) and 0 <= domain < len(self.domains):
            return int(domain)
        if domain in self.domains:
            return self.domains.index(domain)
        raise ValueError(f"unknown domain {domain!r}; the classifier knows {self.domains}")

    def share(self, clips, domain):
        """Fraction of ``clips`` classified as ``domain`` (name or index), in [0, 1]."""
        return float(np.mean(self.predict(clips) == self.domain_index(domain)))

    def accuracy(self, clips, labels):
        """Fraction of ``clips`` classified as their domain ``labels`` (names or indices)."""
        idx = np.array([self.domain_index(lab) for lab in labels])
        return float(np.mean(self.predict(clips) == idx))

    def save(self, path):
        """Write weights and settings to an ``.npz`` file (atomically)."""
        from zoo.files import atomic_write_bytes

        self._check_fitted()
        meta = json.dumps({"domains": self.domains, "sample_rate": self.sample_rate,
                           "settings": self.settings(), "num_train_clips": self.num_train_clips,
                           "train_accuracy": self.train_accuracy, "version": CLASSIFIER_VERSION})

        def write(tmp):
            with open(tmp, "wb") as f:
                np.savez(f, meta=np.array(meta), **self.params)

        return atomic_write_bytes(path, write)

    @classmethod
    def load(cls, path):
        """A classifier written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            params = {k: np.array(data[k]) for k in data.files if k != "meta"}
        clf = cls(meta["domains"], meta["sample_rate"], **meta["settings"])
        clf.params = params
        clf.num_train_clips = meta["num_train_clips"]
        clf.train_accuracy = meta["train_accuracy"]
        return clf


def domain_classifier(dataset, *, split="train", per_file=4, cache_dir=None, **settings):
    """A :class:`DomainClassifier` for a dataset's domains, trained once and cached.

    Trained on :func:`clips_of` (``per_file`` 1 s clips) every file of ``split``
    in each of ``dataset.domains``. The weights are cached under
    ``<cache>/classifiers/`` keyed by the dataset folder, the path,
    modification time and size of every training file, the sample rate,
    ``split``, ``per_file`` and ``settings``; a later call with the same key
    loads them instead of training (``from_cache`` is then True).

    Args:
        dataset: a :class:`zoo.data.AudioDataset` with at least two domains.
        split: files to train on ("train", "val" or "all").
        per_file: clips per file.
        cache_dir: cache folder (default ``$ZOO_CACHE_DIR`` or ``~/.cache/audio-zoo``).
        **settings: :class:`DomainClassifier` arguments (``hidden``, ``steps``, ...).

    Returns:
        A trained :class:`DomainClassifier`.

    Raises:
        ZooError: the dataset has fewer than two domains, or ``split`` has no
            file of some domain.
    """
    from zoo.data.cache import cache_root

    if len(dataset.domains) < 2:
        raise ZooError(f"{dataset.root}: a domain classifier needs at least two domains "
                       f"(sub-folders); found {dataset.domains}")
    clf = DomainClassifier(dataset.domains, dataset.sample_rate, **settings)
    files = {d: dataset.files(split, domain=d) for d in dataset.domains}
    for d, rels in files.items():
        if not rels:
            raise ZooError(f"{dataset.root}: no {split} file of domain {d!r} to train the "
                           "domain classifier on")
    stats = []
    for rels in files.values():
        for rel in rels:
            st = os.stat(Path(dataset.root) / rel)
            stats.append([rel, st.st_mtime_ns, st.st_size])
    ident = json.dumps([CLASSIFIER_VERSION, str(dataset.root), dataset.sample_rate, clf.domains,
                        split, int(per_file), clf.settings(), stats])
    path = cache_root(cache_dir) / "classifiers" / f"{hashlib.sha1(ident.encode()).hexdigest()}.npz"
    if path.is_file():
        try:
            cached = DomainClassifier.load(path)
        except (OSError, ValueError, KeyError):
            cached = None  # a damaged cache entry: retrain and overwrite
        if cached is not None:
            cached.from_cache = True
            return cached
    clips, labels = [], []
    for label, rels in enumerate(files.values()):
        for rel in rels:
            c = clips_of(dataset.waveform(rel), dataset.sample_rate, per_file)
            clips += c
            labels += [label] * len(c)
    clf.fit(clips, labels)
    clf.save(path)
    return clf
