"""Command-line interface: ``python -m fer_lib <command> ...``.

Each command lives in its own module of this package and exposes ``register(subparsers)``,
which adds an ``argparse`` sub-parser whose ``handler(args) -> int`` does the work. Heavy
imports (Keras, TensorFlow) happen inside handlers so ``--help`` stays instant.

Errors a user can cause are :class:`fer_lib.errors.FerError`: printed as one line
``error: <message>`` on stderr with exit code 2. Anything else is a bug: one line and exit
code 1, with the traceback only under ``--debug``.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence

from fer_lib.errors import FerError

COMMAND_MODULES: tuple[str, ...] = ("data", "train", "evaluate", "predict", "video", "webcam", "export", "report")
"""Sub-modules of :mod:`fer_lib.cli`, one per command, in ``--help`` order."""


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every command registered."""
    parser = argparse.ArgumentParser(
        prog="python -m fer_lib",
        description="fer-study: facial expression recognition with MobileNetV2 on FER-2013.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"fer_lib.cli.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code (0 ok, 1 internal error, 2 user error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except FerError as error:
        if args.debug:
            traceback.print_exc()
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted (runs resume from their last checkpoint)", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - the CLI's last line of defence
        if args.debug:
            traceback.print_exc()
        message = str(error).splitlines()[0] if str(error) else ""
        print(f"error: unexpected {type(error).__name__}: {message} (rerun with --debug for details)",
              file=sys.stderr)
        return 1
