"""Dynamic time warping of feature sequences."""
import numpy as np


def dtw_path(x, y, metric="euclidean"):
    """The optimal monotonic alignment of two feature sequences.

    Args:
        x: ``[frames_x, dims]``; y: ``[frames_y, dims]``.
        metric: frame distance (any ``scipy.spatial.distance.cdist`` metric).

    Returns:
        int ``[steps, 2]``: pairs ``(i, j)`` from ``(0, 0)`` to the last frames, in
        order (``librosa.sequence.dtw`` with its default steps, path reversed).

    Example:
    >>> dtw_path(np.array([[0.], [1.], [2.]]), np.array([[0.], [2.]])).tolist()
    [[0, 0], [1, 0], [2, 1]]
    """
    import librosa

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or not len(x) or not len(y):
        raise ValueError(f"dtw_path needs [frames, dims] sequences of equal dims, got "
                         f"{x.shape} and {y.shape}")
    _, path = librosa.sequence.dtw(X=x.T, Y=y.T, metric=metric)
    return np.asarray(path[::-1], dtype=int)
