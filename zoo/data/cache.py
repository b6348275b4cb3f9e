"""Where the zoo caches things on disk, and under which keys.

One root (``$ZOO_CACHE_DIR``, else ``~/.cache/audio-zoo``) holds the decoded-audio
cache (``decoded/``), the built-in datasets (``builtin/``) and fitted evaluation
classifiers. Keys hash everything that changes the cached bytes, so a stale entry is
never read: a touched file, another sample rate or a new :data:`CACHE_VERSION`
gives a new key.
"""
import hashlib
import json
import os
from pathlib import Path

#: Bumped whenever the decoded representation changes, to invalidate caches.
CACHE_VERSION = 1


def cache_root(cache_dir=None):
    """The cache folder: ``cache_dir``, else ``$ZOO_CACHE_DIR``, else ``~/.cache/audio-zoo``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("ZOO_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "audio-zoo"


def decoded_key(path, sample_rate):
    """Key of a file's decoded waveform: its absolute path, modification time, size,
    the sample rate and :data:`CACHE_VERSION`."""
    st = os.stat(path)
    ident = json.dumps(
        [str(path), st.st_mtime_ns, st.st_size, int(sample_rate), CACHE_VERSION]
    )
    return hashlib.sha1(ident.encode()).hexdigest()


def cache_paths(root, key):
    """``(waveform file, skip-reason file)`` of a decoded-audio cache entry."""
    folder = root / "decoded" / key[:2]
    return folder / f"{key}.f32", folder / f"{key}.skip"
