"""What reaches the user's terminal from native libraries.

TensorFlow, LiteRT, OpenCV and FFmpeg write C++ log lines straight to file descriptor 2, where
Python's ``sys.stderr`` settings cannot stop them; an error must stay one line, and ``make study``
one line per notebook. :func:`native_stderr_muted` points that descriptor at /dev/null for a
block, unless the user asked for those logs with env ``TF_CPP_MIN_LOG_LEVEL=0``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def native_stderr_muted() -> Iterator[None]:
    """Send file descriptor 2 (and so ``sys.stderr`` and child processes) to /dev/null for the ``with``
    block, unless env ``TF_CPP_MIN_LOG_LEVEL=0`` asks for native logs."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
