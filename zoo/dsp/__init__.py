"""Signal features that models and metrics both need: mel-cepstra, DTW alignment,
f0 contours and formants (numpy, scipy, librosa; no Keras).

``zoo.eval`` scores with them and models (voice conversion, source-filter edits)
compute them; neither imports the other.
"""
from zoo.dsp.alignment import dtw_path
from zoo.dsp.cepstrum import mcep_alpha, mel_cepstra
from zoo.dsp.formants import formants_lpc
from zoo.dsp.pitch import f0_contour, voicing

__all__ = ["dtw_path", "f0_contour", "formants_lpc", "mcep_alpha", "mel_cepstra", "voicing"]
