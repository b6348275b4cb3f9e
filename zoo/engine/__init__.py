"""The engine every zoo model stands on: the model contract and the training engines.

* :class:`ZooModel` (``model.py``): the base class; capabilities, fitting, training
  hooks, seed state in checkpoints; :func:`inference` compiles inference methods and
  :func:`step_loop` their step-by-step sampling loops (also on torch, when asked);
  :func:`weight_constant` marks a tensor derived from weights alone (a folded kernel),
  which inference computes once per weights instead of on every call.
* :class:`Capability`, :class:`Fitting` (``capabilities.py``): what a model declares.
* :class:`AdversarialModel`, :class:`Objective` (``adversarial.py``): several
  objectives and optimizers under one ``fit``.
* ``backend/<backend>.py``: the only code that differs per Keras backend (on torch also
  a copy-free replacement for Keras' 1-D convolution).

The engine imports ``layers`` and nothing of ``zoo.models``.
"""
from zoo.engine.adversarial import AdversarialModel, Objective
from zoo.engine.capabilities import Capability, Fitting
from zoo.engine.model import (ServingInput, TrainingContext, ZooModel, check_positive,
                              compile_value_and_grad, inference, replica_loss,
                              step_loop, weight_constant)
from zoo.engine.optimizers import adam_from_recipe

__all__ = ["AdversarialModel", "Capability", "Fitting", "Objective", "ServingInput",
           "TrainingContext",
           "ZooModel", "adam_from_recipe", "check_positive", "compile_value_and_grad",
           "inference", "replica_loss", "step_loop", "weight_constant"]
