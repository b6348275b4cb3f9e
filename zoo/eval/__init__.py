"""Evaluation: objective audio metrics on numpy waveforms (see :mod:`zoo.eval.metrics`).

Importing this package imports numpy only; scipy and librosa load on first use,
and Keras / TensorFlow never.
"""

from zoo.eval.metrics import (
    f0_contour,
    f0_correlation,
    f0_error_cents,
    formants_lpc,
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
    "formants_lpc",
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
