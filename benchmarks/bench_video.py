"""End-to-end speed of the ``video`` command on a 480x480 talking-head clip, and whether the boxes stay on the face.

Runs :func:`fer_lib.video.process_video` (decode, detect, crop, classify with TFLite, per-frame
table written as CSV: what ``python -m fer_lib video CLIP --csv F`` does) with several detectors and
detection intervals, taking turns in rounds so that a change in the machine's load hits all alike,
and reports frames per second (median over rounds). Against per-frame BlazeFace detection it
reports the share of frames with a face and the mean overlap (IoU) of the main box, so that
detecting every N frames (reusing the boxes in between) can be judged on accuracy as well as speed,
on the timed clip and then on every clip of ``--iou-clips`` (made 480x480 too). Finally it runs the
command itself once and prints its own FPS line.

Usage::

    python benchmarks/bench_video.py                              # ../shared/videos/liveportrait_d14.mp4
    python benchmarks/bench_video.py --clip CLIP.mp4 --untrained-size 96   # a 96 px classifier stand-in
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from fer_lib.classifiers import EmotionClassifier
from fer_lib.faces import BlazeFaceDetector, FaceDetector, HaarDetector, box_iou
from fer_lib.paths import PROJECT_ROOT
from fer_lib.study.export import load_fast_classifier
from fer_lib.video import FOURCC, open_video, process_video

DEFAULT_CLIP: Path = PROJECT_ROOT.parent / "shared" / "videos" / "liveportrait_d14.mp4"


def box_agreement(table: pd.DataFrame, reference: pd.DataFrame) -> dict[str, float]:
    """Share of frames with a face, and mean and minimum IoU of the main box against ``reference``
    (per-frame detection) over the frames where both have a face."""
    both = (reference["n_faces"] > 0) & (table["n_faces"] > 0)
    boxes = table.loc[both, list("xywh")].to_numpy(np.float64)
    truth = reference.loc[both, list("xywh")].to_numpy(np.float64)
    overlap = [box_iou(box[None], true)[0] for box, true in zip(boxes, truth, strict=True)]
    return {
        "frames with a face": float((table["n_faces"] > 0).mean()),
        "IoU vs every frame": float(np.mean(overlap)) if overlap else float("nan"),
        "min IoU": float(np.min(overlap)) if overlap else float("nan"),
    }


def make_square_clip(source: Path, target: Path, side: int = 480, frames: int | None = None) -> Path:
    """Write ``source`` centre-cropped to a square and resized to ``side`` pixels, as an mp4v clip."""
    capture = open_video(source)
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*FOURCC), fps, (side, side))
    count = 0
    while frames is None or count < frames:
        ok, frame = capture.read()
        if not ok:
            break
        height, width = frame.shape[:2]
        crop = min(height, width)
        top, left = (height - crop) // 2, (width - crop) // 2
        writer.write(
            cv2.resize(frame[top : top + crop, left : left + crop], (side, side), interpolation=cv2.INTER_AREA)
        )
        count += 1
    capture.release()
    writer.release()
    return target


def stand_in_tflite(input_size: int, folder: Path) -> Path:
    """Export an untrained MobileNetV2 classifier that upsamples faces to ``input_size`` px
    (as fast as a trained one)."""
    from fer_lib.params import ModelParams
    from fer_lib.study.export import export_tflite
    from fer_lib.training import new_model

    return export_tflite(
        new_model(ModelParams(weights="none", input_size=input_size), seed=0),
        folder / f"stand_in_{input_size}.tflite",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP, help="talking-head clip (made 480x480 here)")
    parser.add_argument("--model", help=".keras or .tflite classifier (default: the shipped model, as TFLite)")
    parser.add_argument(
        "--untrained-size",
        type=int,
        help="instead of --model, an untrained stand-in upsampling faces to this many px (e.g. 96)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="runs of each configuration (default: 3)")
    parser.add_argument("--frames", type=int, default=300, help="frames of the clip used (default: 300)")
    parser.add_argument(
        "--iou-clips",
        type=Path,
        default=DEFAULT_CLIP.parent,
        help="folder of clips for the box-agreement table (default: ../shared/videos)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        clip = make_square_clip(args.clip, folder / "clip480.mp4", frames=args.frames)
        model = stand_in_tflite(args.untrained_size, folder) if args.untrained_size else args.model
        classifier = load_fast_classifier(model)
        print(
            f"clip: {args.clip.name} as 480x480 ({args.frames} frames at most); classifier: "
            f"{getattr(classifier, 'path', model)}; CPU cores: {os.cpu_count()} "
            f"(1-minute load average {os.getloadavg()[0]:.1f})\n"
        )
        two_threads = load_fast_classifier(model, num_threads=2)
        configurations: dict[str, tuple[FaceDetector, int, EmotionClassifier]] = {  # detector, interval, classifier
            "Haar every frame": (HaarDetector(), 1, classifier),
            "BlazeFace every frame": (BlazeFaceDetector(), 1, classifier),
            "BlazeFace every 2nd frame": (BlazeFaceDetector(), 2, classifier),
            "BlazeFace every 2nd frame, aligned": (BlazeFaceDetector(align=True), 2, classifier),
            "BlazeFace short range first, every 2nd frame, aligned": (
                BlazeFaceDetector(models=("short", "full"), align=True),
                2,
                classifier,
            ),
            "BlazeFace every 2nd frame, aligned, 2 threads": (
                BlazeFaceDetector(align=True, num_threads=2),
                2,
                two_threads,
            ),
            "BlazeFace every 3rd frame": (BlazeFaceDetector(), 3, classifier),
        }
        fps: dict[str, list[float]] = {name: [] for name in configurations}
        tables: dict[str, pd.DataFrame] = {}
        for _ in range(args.rounds):
            for name, (detector, every, runner) in configurations.items():
                table = process_video(
                    clip, detector, runner, out_csv=folder / "frames.csv", detect_every=every, progress=False
                )
                fps[name].append(table.attrs["achieved_fps"])
                tables[name] = table
        reference = tables["BlazeFace every frame"]
        rows = [
            {
                "configuration": name,
                "FPS (median)": np.median(fps[name]),
                "ms/frame": 1000 / np.median(fps[name]),
                "frames detected": table["detected"].mean(),
                **box_agreement(table, reference),
            }
            for name, table in tables.items()
        ]
        print(pd.DataFrame(rows).set_index("configuration").round(3).to_string())
        print("\n(IoU: overlap of the main face's box with per-frame BlazeFace detection on the same frame)")

        print(f"\nBoxes when BlazeFace detects every N frames, against every frame, on each clip of {args.iou_clips}:")
        rows = []
        for source in sorted(args.iou_clips.glob("*.mp4")):
            square = make_square_clip(source, folder / "iou.mp4")
            every_frame = process_video(square, BlazeFaceDetector(), classifier, progress=False)
            for every in (2, 3):
                table = process_video(square, BlazeFaceDetector(), classifier, detect_every=every, progress=False)
                rows.append({"clip": source.name, "detect every": every, **box_agreement(table, every_frame)})
            square.unlink()
        print(pd.DataFrame(rows).set_index(["clip", "detect every"]).round(3).to_string() if rows else "(no clips)")

        command = [
            sys.executable,
            "-m",
            "fer_lib",
            "video",
            str(clip),
            "--csv",
            str(folder / "cli.csv"),
            "--no-progress",
            *(["--model", str(model)] if model else []),
        ]
        print("\n$ python -m fer_lib video clip480.mp4 --csv cli.csv --no-progress")
        result = subprocess.run(
            command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
        )
        print(result.stdout.strip() or result.stderr.strip()[-2000:])


if __name__ == "__main__":
    main()
