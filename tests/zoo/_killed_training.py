"""Run by test_training.py in a fresh process: the ``zoo`` command line, SIGKILLed at a
named point of its file writes.

Usage: ``python _killed_training.py WHEN:NAME#N zoo-arguments...`` kills the process
just ``before`` or just ``after`` the N-th atomic replace (``os.replace``) of a file
called NAME (``checkpoint.keras``, ``state.json``, ``model.keras``): the moments a
real kill is most harmful, made deterministic.
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


def _killing_replace(src, dst, *args, **kwargs):
    hit = False
    if Path(dst).name == name:
        _seen[0] += 1
        hit = _seen[0] == int(nth)
    if hit and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    _replace(src, dst, *args, **kwargs)
    if hit:
        os.kill(os.getpid(), signal.SIGKILL)


os.replace = _killing_replace

from zoo.cli import main  # noqa: E402

sys.exit(main(argv))
