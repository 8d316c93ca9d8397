"""Exceptions with messages meant for users.

Every error a user can cause (bad file, bad parameter, missing weights) is raised as a
:class:`FerError` whose message names the file (and line) and the problem. The CLI prints
it as one line and exits non-zero; only ``--debug`` shows a traceback.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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


class StorageError(FerError):
    """An output cannot be written: the device is full or over quota (the message names the folder)."""


@contextmanager
def partial_file(path: Path) -> Iterator[Path]:
    """Guard the writing of ``path``: if the block fails, the half-written ``path`` is deleted and the
    error goes on; a full device (ENOSPC) or quota (EDQUOT) becomes a :class:`StorageError` naming the
    folder. Earlier files are untouched, so an interrupted run still resumes from its last checkpoint.

    Yields:
        ``path``, for the block to write.
    """
    try:
        yield path
    except BaseException as error:
        path.unlink(missing_ok=True)
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageError(
                f"{path.parent}: no space left on the device writing {path.name} ({error.strerror}); "
                "free some space and run the command again (what was finished is kept)"
            ) from None
        raise
