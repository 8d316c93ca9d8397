"""``python -m fer_lib batch``: every clip and photo of a folder, one Ray task each, with a summary."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fer_lib.study.cli.common import (
    VIDEO_DETECT_EVERY,
    add_detector_arguments,
    add_model_arguments,
    add_stream_arguments,
    positive_int,
    ray_address,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``batch`` command."""
    parser = subparsers.add_parser(
        "batch",
        help="analyse every clip and photo of a folder on Ray (this machine or a cluster)",
        description="Each clip and photo under IN_DIR is one Ray task: a clip is analysed as the video command "
        "does it (same rows), a photo as predict does. OUT_DIR receives one CSV per input (a clip's frames, "
        "a photo's faces) and summary.csv and summary.png: per file the frames, the frames with a face, the "
        "dominant emotion, the emotion shares and the achieved FPS, or why the file failed. Without --address "
        "a local Ray starts on this machine. Re-running resumes: finished files are skipped, never "
        "overwritten; failed ones are retried. Needs Ray: pip install -e '.[scale]'.",
    )
    parser.add_argument("input", metavar="IN_DIR", help="folder of clips and photos (searched recursively)")
    parser.add_argument("--out", required=True, metavar="OUT_DIR", help="output folder (outside IN_DIR)")
    parser.add_argument(
        "--address",
        type=ray_address,
        metavar="ADDR",
        help="join the Ray cluster at ADDR (HOST:6379) instead of starting a local Ray",
    )
    parser.add_argument(
        "--workers", type=positive_int, help="files analysed at a time (default: one per CPU of the local Ray/cluster)"
    )
    add_model_arguments(parser)
    add_detector_arguments(parser)
    add_stream_arguments(parser, detect_every=VIDEO_DETECT_EVERY, detect_width=None)
    parser.set_defaults(handler=run, uses_keras=False)


def run(args: argparse.Namespace) -> int:
    """Run the batch, printing one line per file as it finishes; 0 if every file was analysed, 2 if some failed."""
    from fer_lib.study.batch import BatchSettings, run_batch

    settings = BatchSettings(
        model=str(Path(args.model).expanduser().resolve()) if args.model else None,
        threads=args.threads,
        detector=args.detector,
        detector_model=args.detector_model,
        align=args.align,
        detect_every=args.detect_every,
        detect_width=args.detect_width,
        smoothing=args.smoothing,
    )
    result = run_batch(
        args.input, args.out, settings=settings, address=args.address, workers=args.workers, on_file=print_row
    )
    failed = result.summary.loc[result.summary["status"] == "failed"]
    print(
        f"{len(result.summary) - len(failed)} of {len(result.summary)} files analysed, {len(failed)} failed; "
        f"{len(result.ignored)} other files ignored"
    )
    print(f"summary: {result.summary_csv}\nfigure: {result.summary_figure}")
    if len(failed):
        print(
            f"error: {len(failed)} file(s) failed, each listed in {result.summary_csv} with its reason", file=sys.stderr
        )
        return 2
    return 0


def print_row(row: dict[str, Any]) -> None:
    """Print one file's line of the batch."""
    if row["status"] == "failed":
        print(f"{row['file']}: failed: {row['error']}", flush=True)
        return
    print(
        f"{row['file']}: {row['frames']} frames, {row['frames_with_face']} with a face, "
        f"dominant {row['dominant_emotion'] or 'none'}, {row['achieved_fps']:.1f} FPS ({row['status']})",
        flush=True,
    )
