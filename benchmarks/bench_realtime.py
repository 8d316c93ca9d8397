"""Where the time of real-time emotion recognition goes, on this CPU.

Measures, in one run so that the ratios compare like with like:

1. classifier latency at batch 1 (median and 90th percentile, ms): Keras, TFLite float32, TFLite int8
   (int8 weights, float activations: the exported mobile file) and TFLite int8 full (int8 activations too);
2. the Haar detector alone on 640x480 frames (the baseline), on frames shrunk for detection, the
   BlazeFace detector (the default), and cropping;
3. end-to-end frames per second (detection + crop + classification) on 640x480 frames showing one
   face (scikit-image's astronaut photo, scaled and drifting across a grey frame), from the plain
   pipeline (full-size Haar detection on every frame, Keras) to the fast ones (shrunk Haar detection
   every N frames with the boxes reused in between, or BlazeFace, with TFLite), with ratios against
   the baseline and the gap to 60 FPS.

The measurements of each section take turns in short rounds, so that a change in the load other
programs put on the machine affects all of them alike.

Usage::

    python benchmarks/bench_realtime.py                       # the shipped model
    python benchmarks/bench_realtime.py --model run/model.keras
    python benchmarks/bench_realtime.py --untrained           # MobileNetV2 with random weights: same speed
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import keras
import numpy as np
from skimage import data

from fer_lib.classifiers import EmotionClassifier, KerasClassifier, TFLiteClassifier
from fer_lib.errors import FerError
from fer_lib.faces import BlazeFaceDetector, HaarDetector, box_iou, crop_faces
from fer_lib.model import load_model
from fer_lib.params import ModelParams
from fer_lib.paths import SHIPPED_MODEL
from fer_lib.study.export import export_tflite
from fer_lib.training import new_model
from fer_lib.video import FrameAnalyser

FRAME_SIZE: tuple[int, int] = (640, 480)
"""Benchmark frame (width, height) in pixels."""

TARGET_FPS: float = 60.0

ROUNDS: int = 10
"""Turns each measurement gets; every turn makes ``calls // ROUNDS`` timed calls."""


def make_frames(count: int, photo_side: int = 420) -> list[np.ndarray]:
    """Return ``count`` BGR 640x480 frames: the astronaut photo scaled to ``photo_side`` pixels square
    (her face is then about 80 px wide) drifting left and right over a grey background."""
    photo = cv2.resize(
        cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (photo_side, photo_side), interpolation=cv2.INTER_AREA
    )
    width, height = FRAME_SIZE
    frames = []
    for index in range(count):
        frame = np.full((height, width, 3), 110, np.uint8)
        x = int((width - photo_side) / 2 * (1 + 0.4 * np.sin(index / 15)))
        y = (height - photo_side) // 2
        frame[y : y + photo_side, x : x + photo_side] = photo
        frames.append(frame)
    return frames


def interleaved_ms(tasks: dict[str, Callable[[int], object]], calls: int, warmup: int = 5) -> dict[str, np.ndarray]:
    """Time each task ``calls`` times in all, the tasks taking turns for :data:`ROUNDS` rounds.

    Args:
        tasks: name -> function of the call number (0, 1, 2, ...), e.g. to pick a frame.
        calls: timed calls per task (rounded down to a multiple of :data:`ROUNDS`).

    Returns:
        name -> (calls,) durations in milliseconds.
    """
    for task in tasks.values():
        for number in range(warmup):
            task(number)
    per_round = max(1, calls // ROUNDS)
    durations: dict[str, list[float]] = {name: [] for name in tasks}
    for round_number in range(ROUNDS):
        for name, task in tasks.items():
            for number in range(round_number * per_round, (round_number + 1) * per_round):
                start = time.perf_counter()
                task(number)
                durations[name].append((time.perf_counter() - start) * 1000)
    return {name: np.array(values) for name, values in durations.items()}


def summary(durations_ms: np.ndarray) -> str:
    """``median / p90 ms (calls per second at the median)``."""
    median, p90 = np.median(durations_ms), np.percentile(durations_ms, 90)
    return f"median {median:6.2f} ms   p90 {p90:6.2f} ms   ({1000 / median:6.1f} per second)"


def load_benchmark_model(args: argparse.Namespace) -> tuple[keras.Model, str]:
    """Return the Keras model to benchmark and a description of it."""
    if args.untrained:
        params = ModelParams(weights="none", input_size=args.input_size)
        return new_model(params, seed=0), f"untrained MobileNetV2 stand-in, input {args.input_size} px"
    path = Path(args.model) if args.model else SHIPPED_MODEL
    try:
        model = load_model(path)
    except FerError as error:
        raise SystemExit(f"error: {error} (or measure an untrained stand-in: --untrained)") from None
    return model, f"{path} ({model.name})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help=".keras classifier (default: the shipped model)")
    parser.add_argument(
        "--untrained",
        action="store_true",
        help="benchmark a randomly initialised MobileNetV2 (speed does not depend on weights)",
    )
    parser.add_argument(
        "--input-size",
        type=int,
        default=ModelParams().input_size,
        help="backbone input size of the --untrained model (default: %(default)s)",
    )
    parser.add_argument("--frames", type=int, default=300, help="frames per end-to-end measurement")
    parser.add_argument("--repeats", type=int, default=200, help="calls per latency measurement")
    parser.add_argument("--detect-width", type=int, default=320, help="detection width of the fast pipeline")
    parser.add_argument("--detect-every", type=int, default=3, help="detection interval of the fast pipeline")
    parser.add_argument("--threads", type=int, default=1, help="TFLite interpreter threads")
    args = parser.parse_args()

    model, description = load_benchmark_model(args)
    frames = make_frames(args.frames)
    full, small, blazeface = HaarDetector(), HaarDetector(detect_width=args.detect_width), BlazeFaceDetector()
    face_box = full.detect(frames[0])
    if len(face_box) != 1:
        raise SystemExit(f"expected one face in the benchmark frame, found {len(face_box)}")
    face = crop_faces(frames[0], face_box)
    print(f"model: {description}")
    print(
        f"CPU cores: {os.cpu_count()} (1-minute load average {os.getloadavg()[0]:.1f}), "
        f"OpenCV threads: {cv2.getNumThreads()}, TFLite threads: {args.threads}, "
        f"frames {FRAME_SIZE[0]}x{FRAME_SIZE[1]}, face {face_box[0][2]} px wide\n"
    )

    with tempfile.TemporaryDirectory() as folder:
        calibration = np.concatenate([crop_faces(frame, full.detect(frame)) for frame in frames[::10]])
        classifiers: dict[str, EmotionClassifier] = {
            "Keras": KerasClassifier(model),
            "TFLite float32": TFLiteClassifier(
                export_tflite(model, Path(folder) / "float.tflite"), num_threads=args.threads
            ),
            "TFLite int8": TFLiteClassifier(
                export_tflite(model, Path(folder) / "int8.tflite", quantize="dynamic"), num_threads=args.threads
            ),
            "TFLite int8 full": TFLiteClassifier(
                export_tflite(model, Path(folder) / "full.tflite", quantize="int8", representative_faces=calibration),
                num_threads=args.threads,
            ),
        }
        print("1. Classifier latency, batch 1 (one face):")
        latency = interleaved_ms(
            {name: lambda _, c=classifier: c.predict_proba(face) for name, classifier in classifiers.items()},
            args.repeats,
        )
        for name, durations in latency.items():
            print(f"   {name:<16} {summary(durations)}")
        fastest = min(("TFLite float32", "TFLite int8", "TFLite int8 full"), key=lambda name: np.median(latency[name]))

        print("\n2. Detection and cropping alone:")
        stages = interleaved_ms(
            {
                "Haar 640x480": lambda n: full.detect(frames[n % len(frames)]),
                f"Haar shrunk to {args.detect_width} px": lambda n: small.detect(frames[n % len(frames)]),
                "BlazeFace 640x480": lambda n: blazeface.detect(frames[n % len(frames)]),
                "crop + resize to 48x48": lambda n: crop_faces(frames[0], face_box),
            },
            min(args.repeats, args.frames),
        )
        for name, durations in stages.items():
            print(f"   {name:<27} {summary(durations)}")

        print(f"\n3. End to end (detection + crop + classification), {args.frames} frames 640x480, one face:")
        analysers = {
            "plain: Haar 640 every frame + Keras": FrameAnalyser(full, classifiers["Keras"]),
            f"Haar 640 every frame + {fastest}": FrameAnalyser(full, classifiers[fastest]),
            f"Haar {args.detect_width} every frame + {fastest}": FrameAnalyser(small, classifiers[fastest]),
            f"fast: Haar {args.detect_width} every {args.detect_every} + {fastest}": FrameAnalyser(
                small, classifiers[fastest], detect_every=args.detect_every
            ),
            f"BlazeFace every frame + {fastest}": FrameAnalyser(blazeface, classifiers[fastest]),
            f"BlazeFace every 2nd frame + {fastest}": FrameAnalyser(blazeface, classifiers[fastest], detect_every=2),
        }
        main_boxes: dict[str, dict[int, tuple[int, int, int, int] | None]] = {name: {} for name in analysers}

        def pipeline(name: str) -> Callable[[int], None]:
            def analyse(number: int) -> None:
                results = analysers[name].analyse(frames[number % len(frames)])
                main_boxes[name][number % len(frames)] = results[0].box if results else None

            return analyse

        baseline = "Haar 640 alone (baseline, no classification)"
        end_to_end = interleaved_ms(
            {baseline: lambda n: full.detect(frames[n % len(frames)]), **{name: pipeline(name) for name in analysers}},
            args.frames,
        )
        baseline_fps = 1000 / np.mean(end_to_end.pop(baseline))
        print(f"   {baseline:<46} {baseline_fps:6.1f} FPS  {1000 / baseline_fps:6.2f} ms/frame")
        # 30 consecutive frames: every phase of the detection interval is checked.
        detections = {index: full.detect(frames[index]) for index in range(min(30, len(frames)))}
        reference = {index: boxes[0] for index, boxes in detections.items() if len(boxes) == 1}
        fps = {name: 1000 / np.mean(durations) for name, durations in end_to_end.items()}
        plain_fps = next(iter(fps.values()))
        for name, value in fps.items():
            found = np.mean([box is not None for box in main_boxes[name].values()])
            overlap = np.mean(
                [
                    box_iou(np.array([main_boxes[name][index] or (0, 0, 0, 0)]), box)[0]
                    for index, box in reference.items()
                ]
            )
            print(
                f"   {name:<46} {value:6.1f} FPS  {1000 / value:6.2f} ms/frame  x{value / baseline_fps:5.2f} "
                f"baseline  x{value / plain_fps:5.2f} plain  face found {found:.0%}, box IoU {overlap:.2f}"
            )
        print("   (box IoU: overlap of the main box with a full-size detection on the same frame, 1 = identical)")

    best = max(fps.values())
    print(f"\nbaseline (Haar detector alone, 640x480, measured in the same rounds): {baseline_fps:.1f} FPS")
    verdict = "meets" if best >= TARGET_FPS else "misses"
    print(
        f"best end to end: {best:.1f} FPS = {best / TARGET_FPS:.0%} of {TARGET_FPS:.0f} FPS; it {verdict} the "
        f"{1000 / TARGET_FPS:.1f} ms frame budget by {abs(1000 / TARGET_FPS - 1000 / best):.2f} ms/frame"
    )


if __name__ == "__main__":
    main()
