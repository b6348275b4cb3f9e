"""Evaluation: objective audio metrics on numpy waveforms (see :mod:`zoo.eval.metrics`).

Also here: :mod:`zoo.eval.classifier` (a small domain classifier, cached per
dataset, whose embedding feeds :func:`frechet_distance`) and
:mod:`zoo.eval.runner` (``evaluate``: a model + a dataset -> metrics, report;
the ``zoo eval`` command).

Importing this package imports numpy only; scipy and librosa load on first use,
and Keras / TensorFlow never (the runner imports Keras only to call a model).
"""

from zoo.eval.metrics import (
    f0_contour,
    f0_correlation,
    f0_error_cents,
    f0_metrics,
    formants_lpc,
    frechet_distance,
    frechet_distance_gaussians,
    log_spectral_distance,
    mcep_alpha,
    mel_cepstral_distortion,
    mel_distance,
    multiscale_spectral_distance,
    real_time_factor,
    relative_formant_error,
    si_sdr,
    voicing_agreement,
)

__all__ = [
    "f0_contour",
    "f0_correlation",
    "f0_error_cents",
    "f0_metrics",
    "formants_lpc",
    "frechet_distance",
    "frechet_distance_gaussians",
    "log_spectral_distance",
    "mcep_alpha",
    "mel_cepstral_distortion",
    "mel_distance",
    "multiscale_spectral_distance",
    "real_time_factor",
    "relative_formant_error",
    "si_sdr",
    "voicing_agreement",
]
