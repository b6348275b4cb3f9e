"""RAVE's own code as the measured reference of ``bench_rave.py``, when it is installed
beside the zoo; otherwise the benchmark falls back to the published figure, marked so.

RAVE (acids-ircam/RAVE, ``pip install acids-rave`` with its dependencies, or any folder
on ``PYTHONPATH`` that holds it) is imported and run as its authors ship it; none of its
code is copied here (it is CC BY-NC). Its models are built from its own gin configs
(``v1.gin``; ``causal.gin`` and cached convolutions for streaming), in eval mode, with
random weights, weight normalisation removed (as its export script does), batch 1, eager
under ``torch.no_grad()``: the calls its exported models make (``encode`` -> posterior
mean -> ``decode``). For training (``training=True``) the model stays as it trains
(train mode, weight norm kept) and each step is one call of its own ``training_step``,
with the optimisers of its own ``configure_optimizers`` in place of Lightning's.

Three small compatibility shims are applied while RAVE is imported (it pins scipy
1.10, numpy < 2): ``scipy.signal.kaiser`` (moved to ``scipy.signal.windows``),
``firwin(nyq=)`` (now ``fs = 2 * nyq``) and ``kaiserord`` of a 1-element array (numpy 2
no longer converts those to a float). They only restore the old signatures.
"""
import contextlib
import os

import numpy as np


@contextlib.contextmanager
def _old_scipy_signal():
    """The three scipy.signal names RAVE's PQMF imports, with their scipy 1.10
    signatures, for the duration of the import (RAVE binds them at import)."""
    import scipy.signal
    import scipy.signal.windows

    saved = {k: getattr(scipy.signal, k, None) for k in ("kaiser", "firwin", "kaiserord")}
    firwin, kaiserord = saved["firwin"], saved["kaiserord"]

    def old_firwin(*args, nyq=None, **kwargs):
        if nyq is not None:
            kwargs["fs"] = 2 * nyq
        return firwin(*args, **kwargs)

    scipy.signal.kaiser = scipy.signal.windows.kaiser
    scipy.signal.firwin = old_firwin
    scipy.signal.kaiserord = lambda ripple, width: kaiserord(float(np.squeeze(ripple)),
                                                             float(np.squeeze(width)))
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                delattr(scipy.signal, k)
            else:
                setattr(scipy.signal, k, v)


def load():
    """RAVE's package, or ``None`` with the reason (not installed, or failed to import)."""
    try:
        with _old_scipy_signal():
            import rave  # noqa: F401  (RAVE's own code, installed separately)
    except Exception as err:  # noqa: BLE001 (any import failure means "not available")
        return None, f"{type(err).__name__}: {err}"
    return rave, None


class RaveReference:
    """One RAVE model from its gin configs, with random weights, ready for inference.

    Args:
        configs: gin config names in RAVE's ``configs`` folder (``["v1"]``,
            ``["v1", "causal"]``).
        streaming: build with cached convolutions (RAVE's streaming mode: each call
            continues the previous one).
        training: keep the model as it trains (train mode, weight norm kept) and get
            its optimisers from its own ``configure_optimizers``, for :meth:`train_step`.
    """

    def __init__(self, configs=("v1",), streaming=False, training=False):
        rave, why = load()
        if rave is None:
            raise RuntimeError(f"RAVE is not importable: {why}")
        import cached_conv as cc
        import gin
        import torch

        folder = os.path.join(os.path.dirname(rave.__file__), "configs")
        gin.clear_config()
        cc.use_cached_conv(bool(streaming))
        gin.parse_config_files_and_bindings(
            [os.path.join(folder, f"{c}.gin") for c in configs], [])
        with _old_scipy_signal():  # its PQMF designs the filter when built
            self.model = rave.RAVE()
        cc.use_cached_conv(False)
        if training:
            self._attach_optimizers()
        else:
            self.model.eval()
            for m in self.model.modules():  # as RAVE's export does before scripting
                if hasattr(m, "weight_g"):
                    torch.nn.utils.remove_weight_norm(m)
        self.torch = torch
        self.configs = list(configs)
        self.sample_rate = int(self.model.sr)
        self.compression = int(np.prod(gin.query_parameter("%RATIOS"))) * int(
            gin.query_parameter("%N_BAND"))

    def _attach_optimizers(self):
        """What Lightning's trainer gives ``training_step``: the optimisers of RAVE's own
        ``configure_optimizers`` (``self.optimizers()``) and no-op logging."""
        opts = self.model.configure_optimizers()
        optimizers = tuple(o["optimizer"] for o in opts)
        self.model.train()
        self.model.optimizers = lambda: optimizers
        self.model.log = lambda *args, **kwargs: None
        self.model.log_dict = lambda *args, **kwargs: None
        self._batch = 0

    def train_step(self, x, stage=1):
        """One call of RAVE's own ``training_step`` on waveforms ``[B, T]`` (numpy):
        stage 1 (``warmed_up`` False: the spectral distances and the KL) or stage 2
        (the adversarial phase; every ``update_discriminator_every``-th call updates
        the discriminator instead of the generator, as in RAVE)."""
        self.model.warmed_up = stage >= 2
        self.model.training_step(self.torch.from_numpy(x)[:, None], self._batch)
        self._batch += 1

    @property
    def params_encoder_decoder(self):
        return int(sum(p.numel() for m in (self.model.encoder, self.model.decoder)
                       for p in m.parameters()))

    def encode(self, x):
        """Waveform ``[1, T]`` (numpy) -> posterior mean (a torch tensor)."""
        with self.torch.no_grad():
            z = self.model.encode(self.torch.from_numpy(x)[:, None])
            return self.model.encoder.reparametrize(z)[0]

    def decode(self, z):
        with self.torch.no_grad():
            return self.model.decode(z)

    def latents(self, frames):
        """Random latents for ``frames`` frames (the decoder's input)."""
        return self.torch.randn(1, int(self.model.latent_size), int(frames))
