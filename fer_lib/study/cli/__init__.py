"""Command-line interface: ``python -m fer_lib <command> ...``.

Each command lives in its own module of this package and exposes ``register(subparsers)``,
which adds an ``argparse`` sub-parser whose ``handler(args) -> int`` does the work. Heavy
imports (Keras, TensorFlow) happen after parsing, so ``--help`` stays instant; a command that
needs no model sets ``uses_keras=False`` in its defaults and skips them. A command may also set
``check(args)``: it checks what a user can get wrong without Keras (a params or variants file, an
output folder, a report's inputs) and runs before the Keras import, so a typo fails at once,
not after TensorFlow's 3-8 s start.

Errors a user can cause are :class:`fer_lib.errors.FerError`, and operating-system errors on a
named file (permission denied, not a directory, ...): printed as one line ``error: <message>``
on stderr with exit code 2. Anything else is a bug: one line and exit code 1, with the
traceback only under ``--debug``. ``reproduce`` exits with 3 when its re-run is outside tolerance.
OpenCV's, FFmpeg's and TensorFlow's own C++ log lines (e.g. "can't open camera by index") are
silenced unless ``--debug`` is given, so an error stays one line.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from fer_lib.console import native_stderr_muted
from fer_lib.errors import FerError

COMMAND_MODULES: tuple[str, ...] = (
    "data",
    "summary",
    "train",
    "evaluate",
    "predict",
    "video",
    "webcam",
    "batch",
    "export",
    "report",
    "ablate",
    "reproduce",
)
"""Sub-modules of :mod:`fer_lib.study.cli`, one per command, in ``--help`` order."""


class OneLineErrorParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (``error: ...``, exit 2), not usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {one_line(message)} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every command registered."""
    parser = OneLineErrorParser(
        prog="python -m fer_lib",
        description="fer-study: facial expression recognition with MobileNetV2 on FER-2013.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"fer_lib.study.cli.{name}")
        module.register(subparsers)
    return parser


def quiet_native_logs() -> None:
    """Keep OpenCV's and FFmpeg's C++ log lines off stderr (the user's own settings win)."""
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET: no "moov atom not found"
    if "cv2" in sys.modules:  # already imported (e.g. main() called in-process): the env var came too late
        import cv2

        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def import_keras_quietly() -> None:
    """Import Keras (and TensorFlow) with the process's stderr pointed at /dev/null.

    TensorFlow's start-up lines (absl's "All log messages before absl::InitializeLog() is called
    ..." and the oneDNN notice) ignore ``TF_CPP_MIN_LOG_LEVEL`` on some CPUs; they show only if the
    user asks for them with ``TF_CPP_MIN_LOG_LEVEL=0``.
    """
    if "keras" not in sys.modules:
        with native_stderr_muted():
            import keras  # noqa: F401 - imported for its side effect, with TensorFlow's start-up lines muted


def one_line(text: str) -> str:
    """``text`` with its lines joined by spaces, so an error is always exactly one line."""
    return " ".join(line.strip() for line in str(text).splitlines() if line.strip())


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code (0 ok, 1 internal error, 2 user error)."""
    from fer_lib.study.runs import set_command

    parser = build_parser()
    args = parser.parse_args(argv)
    set_command(sys.argv[1:] if argv is None else argv)  # manifests record the command line
    if not args.debug:
        quiet_native_logs()
    try:
        if check := getattr(args, "check", None):
            check(args)
        if not args.debug and getattr(args, "uses_keras", True):
            import_keras_quietly()
        return int(args.handler(args) or 0)
    except FerError as error:
        if args.debug:
            traceback.print_exc()
        print(f"error: {one_line(str(error))}", file=sys.stderr)
        return 2
    except OSError as error:
        if args.debug:
            traceback.print_exc()
        if error.filename is None:
            return unexpected(error)
        print(f"error: {error.filename}: {one_line(error.strerror or str(error))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted (runs resume from their last checkpoint)", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - the CLI's last line of defence
        if args.debug:
            traceback.print_exc()
        return unexpected(error)


def unexpected(error: Exception) -> int:
    """Print one line for an error that is a bug, not the user's doing; return exit code 1."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    print(
        f"error: unexpected {type(error).__name__}: {lines[0] if lines else ''} (rerun with --debug for details)",
        file=sys.stderr,
    )
    return 1
