"""``zoo tune``: keras-tuner searches over a recipe's ``[tune]`` space.

* :mod:`zoo.tuning.space`: the recipe's ``[tune]`` table as keras-tuner
  ``HyperParameters``, and a trial's values as recipe overrides;
* :mod:`zoo.tuning.search`: the tuner (every trial a normal ``zoo train`` run
  folder), the objective, the oracles, distributed (chief / worker) mode;
* :mod:`zoo.tuning.report`: the sorted results table (CSV + Markdown) and the
  best configuration as a recipe TOML that ``zoo train`` reads as is.
"""
from zoo.tuning.search import TuneResult, tune

__all__ = ["TuneResult", "tune"]
