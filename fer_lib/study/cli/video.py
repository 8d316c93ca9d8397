"""``python -m fer_lib video``: the emotion of the main face in every frame of a clip."""

from __future__ import annotations

import argparse
import os

from fer_lib.study.cli.common import (
    VIDEO_DETECT_EVERY,
    add_detector_arguments,
    add_model_arguments,
    add_stream_arguments,
    faces_params_from_args,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``video`` command."""
    parser = subparsers.add_parser(
        "video",
        help="classify the main face of every frame of a video file",
        description="Per frame: whether the detector ran on it, number of faces, the main face's box and its "
        "smoothed emotion probabilities. The classifier runs on TFLite (a .keras model is "
        "converted once and cached). Prints the achieved frames per second at the end.",
    )
    parser.add_argument("input", metavar="IN", help="video file (mp4, avi, mov, ...)")
    parser.add_argument("--out", help="write an annotated copy here (.mp4; never overwrites)")
    parser.add_argument("--csv", help="write the per-frame table here (never overwrites)")
    add_model_arguments(parser)
    add_detector_arguments(parser)
    add_stream_arguments(parser, detect_every=VIDEO_DETECT_EVERY, detect_width=None)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Process the clip, write the requested outputs, print a summary with the achieved FPS."""
    from fer_lib.faces import make_detector
    from fer_lib.study.export import load_fast_classifier
    from fer_lib.video import process_video, video_summary

    probe_video(args.input)  # a missing, unreadable or empty clip fails before the model loads
    params = faces_params_from_args(args)
    frames = process_video(
        args.input,
        make_detector(params, detect_width=args.detect_width),
        load_fast_classifier(args.model, num_threads=args.threads),
        out_video=args.out,
        out_csv=args.csv,
        smoothing=args.smoothing,
        detect_every=args.detect_every,
        margin=params.margin,
        progress=not args.no_progress,
    )
    summary = video_summary(frames)
    print(
        f"{args.input}: {summary['frames']} frames, {summary['frames_with_face']} with a face; "
        f"most frequent emotion: {summary['dominant_emotion'] or 'none (no face found)'}"
    )
    for key, what in (("out_video", "annotated video"), ("out_csv", "per-frame CSV")):
        if frames.attrs[key] is not None:
            print(f"{what}: {frames.attrs[key]}")
    print(
        f"achieved {summary['achieved_fps']:.1f} FPS "
        f"(clip recorded at {summary['source_fps']:.1f} FPS; processed in {frames.attrs['seconds']:.2f} s)"
    )
    return 0


def probe_video(source: str | os.PathLike[str]) -> None:
    """Check that a video file opens and yields a first frame.

    Raises:
        MediaError: for a missing or unreadable file, or a video without a decodable frame.
    """
    from fer_lib.errors import MediaError
    from fer_lib.video import open_video

    capture = open_video(source)
    try:
        ok, _ = capture.read()
    finally:
        capture.release()
    if not ok:
        raise MediaError(f"{source}: video has no frames that can be decoded")
