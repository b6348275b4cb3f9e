"""User-facing errors.

A :class:`ZooError` is a problem with the user's input (a file, an argument, a
recipe). The CLI prints its message as one line and exits non-zero, without a
traceback; library callers can catch it like any exception.
"""


class ZooError(Exception):
    """A problem with user input, reported as one clear line."""


class AudioFileError(ZooError):
    """An audio file that cannot be used; the message names the file and the problem."""


class TrainingDiverged(ZooError):
    """The loss became NaN/Inf; the message names the step and the last good checkpoint."""
