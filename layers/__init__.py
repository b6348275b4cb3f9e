"""Reusable Keras 3 layers and losses for generative audio.

Every public name works on the TensorFlow, JAX and PyTorch backends and is
registered with ``keras.saving.register_keras_serializable(package="layers")``.
This package knows nothing of models or files.
"""
from layers.spectral import *  # noqa: F401,F403  (STFT, mel, dB, normalisation)
from layers.griffinlim import *  # noqa: F401,F403  (fast Griffin-Lim, mel inversion)
from layers.losses import *  # noqa: F401,F403  (spectral, style, GAN, variational losses)
from layers.normalization import *  # noqa: F401,F403  (spectral norm, instance norm)
from layers.quantizers import *  # noqa: F401,F403  (vector quantisers)
from layers.pqmf import *  # noqa: F401,F403  (multiband filter bank)
from layers.blocks import *  # noqa: F401,F403  (sampling, masked/causal convs, res blocks)
from layers.discriminators import *  # noqa: F401,F403  (multiscale / multi-period waveform discriminators)
from layers.harmonic import *  # noqa: F401,F403  (YIN pitch, harmonic oscillator bank)
