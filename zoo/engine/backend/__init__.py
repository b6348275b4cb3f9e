"""Backend-specific engine code, one module per Keras backend; nothing else in the zoo
branches on the backend.

Each module defines:

* ``call_inference(model, method, args, kwargs)``: run an ``@inference`` method,
  compiled where the backend allows;
* ``sync_state(model)``: make variables current after ``fit``;
* ``value_and_grad(fn)``: compile ``fn(x, *constants) -> (loss, {name: scalar})`` into
  a function of numpy arrays returning ``(float loss, numpy d loss / d x, {name:
  float})`` (for optimisers that run outside Keras, e.g. scipy's L-BFGS);
* ``adversarial_train_step(model, args)`` / ``adversarial_test_step(model, args)``:
  the several-objectives step of :class:`zoo.engine.AdversarialModel`;
* ``make_adversarial_train_function(model, force)``: a custom train function, or
  ``None`` to keep Keras' own;
* ``data_parallel(...)`` (a context manager yielding the replica count),
  ``replica_loss(loss)``, ``process_layout()`` (``(index, count)`` of this process)
  and ``distribute_input(dataset)`` (a worker's batches as the strategy's input):
  data-parallel training.
"""
import importlib

import keras


def current():
    """The engine module of the active Keras backend."""
    name = keras.backend.backend()
    try:
        return importlib.import_module(f"zoo.engine.backend.{name}")
    except ModuleNotFoundError:
        raise NotImplementedError(f"the zoo engine does not support the {name!r} backend "
                                  "(tensorflow, jax, torch)") from None


if keras.backend.backend() in ("jax", "torch"):  # JAX: the compilation cache, before
    # anything compiles; torch: its 1-D convolution, before anything convolves
    current()
