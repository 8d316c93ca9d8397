"""Exceptions with messages meant for users.

Every error a user can cause (bad file, bad parameter, missing weights) is raised as a
:class:`FerError` whose message names the file (and line) and the problem. The CLI prints
it as one line and exits non-zero; only ``--debug`` shows a traceback.
"""

from __future__ import annotations


class FerError(Exception):
    """Base class for user-facing errors; ``str(error)`` is a complete one-line message."""


class DataError(FerError):
    """A dataset file or folder is missing, unreadable or malformed."""


class ParamsError(FerError):
    """A params file has an unknown key, a wrong type or an invalid value."""


class ModelError(FerError):
    """A model or weights file is missing, not a Keras model, or incompatible."""


class MediaError(FerError):
    """An image, video or camera cannot be opened or read."""


class RunExistsError(FerError):
    """An output folder already holds a finished run (runs are never overwritten)."""


class ClusterError(FerError):
    """Ray is not installed, a Ray cluster cannot be joined, or work on it failed."""
