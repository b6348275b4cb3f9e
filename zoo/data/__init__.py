"""Audio files -> decoded cache -> random crops -> batches, and built-in datasets.

Example:
    >>> from zoo.data import load_dataset
    >>> ds = load_dataset("builtin:timbre", sample_rate=16000, crop_length=16384)
    >>> ds.domains
    ['brass', 'reed']
    >>> x = ds.batch(0, 16)                 # float32 [16, 16384], pure function of (seed, split, 0)
    >>> model.fit(ds.batches(16), steps_per_epoch=100)

TensorFlow is optional here: it is imported only to build ``tf.data`` pipelines.
"""

from zoo.data.audio import load_audio, write_audio
from zoo.data.builtin import (
    TIMBRE_DOMAINS,
    builtin_path,
    render_timbre,
    render_vowel,
    timbre_melodies,
)
from zoo.data.cache import cache_root
from zoo.data.pipeline import AudioDataset, SkippedAudioWarning, load_dataset

__all__ = [
    "AudioDataset",
    "SkippedAudioWarning",
    "TIMBRE_DOMAINS",
    "builtin_path",
    "cache_root",
    "load_audio",
    "load_dataset",
    "render_timbre",
    "render_vowel",
    "timbre_melodies",
    "write_audio",
]
