"""``python -m fer_lib webcam``: live emotions from a camera in a window (needs non-headless OpenCV)."""

from __future__ import annotations

import argparse

from fer_lib.study.cli.common import (
    add_detector_arguments,
    add_model_arguments,
    add_stream_arguments,
    faces_params_from_args,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``webcam`` command."""
    parser = subparsers.add_parser(
        "webcam",
        help="live window: faces, emotions and FPS from a camera",
        description="Shows each face's box and emotion and the achieved FPS; q or Esc quits. "
        "Nothing is saved unless --record is given.",
    )
    parser.add_argument("--camera", type=int, default=0, help="camera index (default: 0)")
    add_model_arguments(parser)
    add_detector_arguments(parser)
    add_stream_arguments(parser, detect_every=3, detect_width=320)
    parser.add_argument("--record", metavar="FILE.mp4", help="also save the annotated frames to this video")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Open the camera and the live window until the user quits; print frames and FPS."""
    from fer_lib.classifiers import load_classifier
    from fer_lib.faces import make_detector
    from fer_lib.study.webcam import run_webcam

    params = faces_params_from_args(args)
    summary = run_webcam(
        args.camera,
        make_detector(params, detect_width=args.detect_width),
        load_classifier(args.model, num_threads=args.threads),
        margin=params.margin,
        smoothing=args.smoothing,
        detect_every=args.detect_every,
        record=args.record,
    )
    print(
        f"camera {args.camera}: {summary['frames']} frames at {summary['achieved_fps']:.1f} FPS"
        + (f"; recorded to {summary['record']}" if summary["record"] else "")
    )
    return 0
