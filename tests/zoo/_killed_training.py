"""Run by test_training.py and test_export.py in a fresh process: the ``zoo`` command
line, SIGKILLed at a named point of its file writes.

Usage: ``python _killed_training.py WHEN:NAME#N zoo-arguments...`` kills the process
just ``before`` or just ``after`` the N-th write of a file called NAME
(``checkpoint.keras``, ``state.json``, ``model.keras``), by an atomic replace
(``os.replace``) or by ``keras.Model.save`` (exports): the moments a real kill is
most harmful, made deterministic.
"""
import os
import signal
import sys
from pathlib import Path

point, argv = sys.argv[1], sys.argv[2:]
when, target = point.split(":")
name, nth = target.split("#")
assert when in ("before", "after"), point
_replace, _seen = os.replace, [0]


def _is_hit(path):
    if Path(path).name != name:
        return False
    _seen[0] += 1
    return _seen[0] == int(nth)


def _killing(write):
    def wrapped(first, path, *args, **kwargs):
        hit = _is_hit(path)
        if hit and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        write(first, path, *args, **kwargs)
        if hit:
            os.kill(os.getpid(), signal.SIGKILL)
    return wrapped


os.replace = _killing(_replace)

import keras  # noqa: E402

keras.Model.save = _killing(keras.Model.save)

from zoo.cli import main  # noqa: E402

sys.exit(main(argv))
