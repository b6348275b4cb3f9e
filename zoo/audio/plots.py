"""Spectrogram pictures (PNG) for people to look at."""
from pathlib import Path

import numpy as np


def save_spectrograms(path, waveforms, sample_rate, n_fft=1024, hop_length=256, title=None):
    """Write one PNG with a log-magnitude spectrogram per waveform.

    Args:
        path: output ``.png`` (parent folders are created).
        waveforms: dict ``label -> 1-D waveform``, plotted top to bottom.
        sample_rate: Hz (for the axes).
        n_fft, hop_length: STFT settings of the picture.
        title: optional figure title.

    Returns:
        The path written.
    """
    import librosa
    import librosa.display
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(waveforms)
    fig, axes = plt.subplots(n, 1, figsize=(8, 2.2 * n), squeeze=False)
    for ax, (label, wave) in zip(axes[:, 0], waveforms.items()):
        wave = np.asarray(wave, dtype="float32").reshape(-1)
        spec = np.abs(librosa.stft(wave, n_fft=n_fft, hop_length=hop_length))
        db = librosa.amplitude_to_db(spec + 1e-10, ref=np.max, top_db=80.0)
        librosa.display.specshow(db, sr=sample_rate, hop_length=hop_length, x_axis="time",
                                 y_axis="log", ax=ax, cmap="magma")
        ax.set_title(label, fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def save_fidelity_curve(path, ratio, dims, title=None):
    """Plot a latent PCA's cumulative explained variance against the number of kept
    dimensions, marking the dimension counts that reach each fidelity.

    Args:
        path: output ``.png``.
        ratio: cumulative explained-variance ratios, one per dimension.
        dims: ``{fidelity: dimension count}``.
        title: optional title.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ratio = np.asarray(ratio, dtype=float)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(np.arange(1, len(ratio) + 1), ratio, marker=".", color="k")
    for (f, r), colour in zip(sorted(dims.items()), ("tab:blue", "tab:orange", "tab:red", "tab:green")):
        ax.axhline(float(f), color=colour, lw=0.8, ls="--")
        ax.axvline(r, color=colour, lw=0.8, ls=":", label=f"f = {f}: {r} dims")
    ax.set_xlabel("latent dimensions kept (principal components)")
    ax.set_ylabel("cumulative explained variance")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title or "latent fidelity")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
