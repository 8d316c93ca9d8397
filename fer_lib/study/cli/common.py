"""Helpers shared by the commands: argument types and groups, ``--set`` overrides, report locations.

The command modules (``fer_lib/study/cli/<command>.py``) import from here, never from each other.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import yaml

from fer_lib.errors import ParamsError
from fer_lib.params import FacesParams
from fer_lib.paths import ReportLayout

VIDEO_DETECT_EVERY: int = 2
"""Default detection interval of ``video`` and ``batch``: BlazeFace on every 2nd frame, boxes reused on
the frame between (benchmarks/bench_video.py: mean IoU about 0.99 with per-frame detection on a
talking head), which keeps 60+ FPS with a slower classifier on a busy 2-core CPU."""


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--model`` (a .keras or .tflite classifier; default: the shipped model) and ``--threads``."""
    parser.add_argument("--model", help=".keras or .tflite classifier (default: models/fer_mobilenetv2.keras)")
    parser.add_argument("--threads", type=positive_int, default=1, help="TFLite interpreter threads (default: 1)")


def add_detector_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--detector blazeface|haar|yunet`` and ``--detector-model``."""
    parser.add_argument(
        "--detector",
        choices=["blazeface", "haar", "yunet"],
        default=FacesParams().detector,
        help="face detector: MediaPipe BlazeFace (default), OpenCV Haar cascade (the papers') "
        "or YuNet (needs --detector-model)",
    )
    parser.add_argument("--detector-model", help="YuNet .onnx file for --detector yunet")
    parser.add_argument(
        "--align",
        action="store_true",
        help="BlazeFace: warp each face onto FER-2013's eye positions (roll and scale corrected) before "
        "classifying it, instead of cropping its box",
    )


def add_stream_arguments(parser: argparse.ArgumentParser, detect_every: int, detect_width: int | None) -> None:
    """Add ``--smoothing``, ``--detect-every`` and ``--detect-width`` for frame streams (video, webcam)."""
    parser.add_argument(
        "--smoothing",
        type=smoothing_weight,
        default=FacesParams().smoothing,
        help="weight of the previous frame in the moving average of probabilities, in [0, 1) "
        "(default: %(default)s; 0 = none)",
    )
    parser.add_argument(
        "--detect-every",
        type=positive_int,
        default=detect_every,
        help="detect faces every N frames and reuse the boxes in between (default: %(default)s)",
    )
    parser.add_argument(
        "--detect-width",
        type=positive_int,
        default=detect_width,
        help="Haar and YuNet: detect on frames shrunk to this width in pixels, faster (default: %(default)s; "
        "None = full size); BlazeFace always sees the frame shrunk to its 128 or 192 px input, so it does not apply",
    )


def smoothing_weight(text: str) -> float:
    """Parse a moving-average weight in [0, 1) for ``--smoothing``."""
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def positive_int(text: str) -> int:
    """Parse an integer of at least 1 (``--detect-every``, ``--detect-width``, ``--threads``)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def folder_name(text: str) -> str:
    """Parse ``--name``: a folder name used as it stands (letters, digits, ``.``, ``_``, ``-``; not ``..``)."""
    from fer_lib.study.runs import safe_name

    if safe_name(text) != text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a folder name; use letters, digits, '.', '_' and '-'")
    return text


def ray_address(text: str) -> str:
    """Parse ``--address``: a Ray cluster's ``HOST:PORT`` (``ray://HOST:PORT`` for Ray Client), or ``auto``."""
    host, _, port = text.removeprefix("ray://").rpartition(":")
    if text != "auto" and (not host or not port.isdigit()):
        raise argparse.ArgumentTypeError(f"expected HOST:PORT of a Ray cluster's head, e.g. 10.0.0.1:6379; got {text}")
    return text


def faces_params_from_args(args: argparse.Namespace) -> FacesParams:
    """Return the default :class:`FacesParams` with the detector chosen on the command line.

    Raises:
        ParamsError: for ``--detector yunet`` without ``--detector-model`` (named as the user typed it).
    """
    if args.detector == "yunet" and not args.detector_model:
        raise ParamsError("--detector yunet needs --detector-model PATH, the YuNet .onnx file")
    return FacesParams(detector=args.detector, detector_model=args.detector_model, align=args.align)


def parse_overrides(pairs: list[str]) -> dict[str, object]:
    """Turn ``["train.epochs=2", ...]`` into ``{"train.epochs": 2, ...}`` (values parsed as YAML)."""
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ParamsError(f"--set {pair}: expected KEY=VALUE, e.g. train.epochs=2")
        try:
            overrides[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as error:
            problem = getattr(error, "problem", None) or " ".join(str(error).split())
            raise ParamsError(f"--set {pair}: the value is not valid YAML ({problem})") from None
    return overrides


def print_report_location(make_report: Callable[[], Path]) -> int:
    """Run ``make_report`` (returns the report folder) and print where its index.html is, also when
    a notebook fails (the partial report; the error is re-raised for the one-line message)."""
    from fer_lib.study.report import NotebookFailedError

    try:
        run_dir = make_report()
    except NotebookFailedError as error:
        print(f"Partial report: {ReportLayout(error.run_dir).index}")
        raise
    print(f"Report: {ReportLayout(run_dir).index}")  # this machine's path: the user opens it here
    return 0
