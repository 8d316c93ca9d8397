"""Where the time of real-time emotion recognition goes, on this CPU.

Measures, in one run so that the ratios compare like with like:

1. classifier latency at batch 1 (median and 90th percentile, ms): Keras, TFLite float32, TFLite int8;
2. the Haar detector alone on 640x480 frames (the baseline), and on frames shrunk for detection;
3. end-to-end frames per second (detection + crop + classification) on 640x480 frames showing one
   face (scikit-image's astronaut photo, scaled and drifting across a grey frame), from the plain
   pipeline (full-size detection on every frame, Keras) to the fast one (shrunk detection every N
   frames with the boxes reused in between, TFLite), with ratios against the baseline and the gap to 60 FPS.

Usage::

    python benchmarks/bench_realtime.py                       # the shipped model
    python benchmarks/bench_realtime.py --model run/model.keras
    python benchmarks/bench_realtime.py --untrained           # MobileNetV2 with random weights: same speed
"""
from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from skimage import data

from fer_lib.export import TFLiteClassifier, export_tflite
from fer_lib.faces import EmotionClassifier, FaceClassifier, HaarDetector, crop_faces
from fer_lib.model import build_model, load_model
from fer_lib.params import SHIPPED_MODEL, ModelParams
from fer_lib.video import FrameAnalyser

FRAME_SIZE: tuple[int, int] = (640, 480)
"""Benchmark frame (width, height) in pixels."""

TARGET_FPS: float = 60.0


def make_frames(count: int, face_photo_side: int = 420) -> list[np.ndarray]:
    """Return ``count`` BGR 640x480 frames: the astronaut photo scaled to a square of ``face_photo_side``
    pixels (her face is then about 80 px wide) drifting left and right over a grey background."""
    photo = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (face_photo_side, face_photo_side),
                       interpolation=cv2.INTER_AREA)
    width, height = FRAME_SIZE
    frames = []
    for index in range(count):
        frame = np.full((height, width, 3), 110, np.uint8)
        x = int((width - face_photo_side) / 2 + 0.4 * (width - face_photo_side) / 2 * np.sin(index / 15))
        y = (height - face_photo_side) // 2
        frame[y:y + face_photo_side, x:x + face_photo_side] = photo
        frames.append(frame)
    return frames


def time_calls(call: Callable[[], object], repeats: int, warmup: int = 5) -> np.ndarray:
    """Run ``call`` ``warmup`` times, then ``repeats`` times; return the timed durations in ms."""
    for _ in range(warmup):
        call()
    durations = np.empty(repeats)
    for index in range(repeats):
        start = time.perf_counter()
        call()
        durations[index] = (time.perf_counter() - start) * 1000
    return durations


def summary(durations_ms: np.ndarray) -> str:
    """``median / p90 ms (FPS at the median)``."""
    median, p90 = np.median(durations_ms), np.percentile(durations_ms, 90)
    return f"median {median:6.2f} ms   p90 {p90:6.2f} ms   ({1000 / median:6.1f} per second)"


def pipeline_fps(analyser: FrameAnalyser, frames: list[np.ndarray], warmup: int = 10) -> tuple[float, float]:
    """Return (frames per second over all frames, fraction of frames with a face) for one pipeline."""
    for frame in frames[:warmup]:
        analyser.analyse(frame)
    found = 0
    start = time.perf_counter()
    for frame in frames:
        found += bool(analyser.analyse(frame))
    return len(frames) / (time.perf_counter() - start), found / len(frames)


def load_benchmark_model(args: argparse.Namespace) -> tuple[object, str]:
    """Return the Keras model to benchmark and a description of it."""
    if args.untrained:
        params = ModelParams(weights="none", input_size=args.input_size)
        return build_model(params, seed=0), f"untrained MobileNetV2 stand-in, input {args.input_size} px"
    path = Path(args.model) if args.model else SHIPPED_MODEL
    return load_model(path), str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help=".keras classifier (default: the shipped model)")
    parser.add_argument("--untrained", action="store_true",
                        help="benchmark a randomly initialised MobileNetV2 (speed does not depend on weights)")
    parser.add_argument("--input-size", type=int, default=ModelParams().input_size,
                        help="backbone input size of the --untrained model (default: %(default)s)")
    parser.add_argument("--frames", type=int, default=300, help="frames per end-to-end measurement")
    parser.add_argument("--repeats", type=int, default=200, help="calls per latency measurement")
    parser.add_argument("--detect-width", type=int, default=320, help="detection width of the fast pipeline")
    parser.add_argument("--detect-every", type=int, default=3, help="detection interval of the fast pipeline")
    parser.add_argument("--threads", type=int, default=1, help="TFLite interpreter threads")
    args = parser.parse_args()

    model, description = load_benchmark_model(args)
    frames = make_frames(args.frames)
    face_box = HaarDetector().detect(frames[0])
    if len(face_box) != 1:
        raise SystemExit(f"expected one face in the benchmark frame, found {len(face_box)}")
    face = crop_faces(frames[0], face_box)
    print(f"model: {description}")
    print(f"CPU cores: {os.cpu_count()} (1-minute load average {os.getloadavg()[0]:.1f}), "
          f"OpenCV threads: {cv2.getNumThreads()}, TFLite threads: {args.threads}, "
          f"frames {FRAME_SIZE[0]}x{FRAME_SIZE[1]}, face {face_box[0][2]} px wide\n")

    with tempfile.TemporaryDirectory() as folder:
        calibration = np.concatenate([crop_faces(frame, HaarDetector().detect(frame)) for frame in frames[::10]])
        classifiers: dict[str, EmotionClassifier] = {
            "Keras": FaceClassifier(model),
            "TFLite float32": TFLiteClassifier(export_tflite(model, Path(folder) / "float.tflite"), args.threads),
            "TFLite int8": TFLiteClassifier(export_tflite(model, Path(folder) / "int8.tflite", "int8", calibration),
                                            args.threads),
        }
        print("1. Classifier latency, batch 1 (one face):")
        latency = {}
        for name, classifier in classifiers.items():
            durations = time_calls(lambda c=classifier: c.predict(face), args.repeats)
            latency[name] = np.median(durations)
            print(f"   {name:<15} {summary(durations)}")
        fastest = min(("TFLite float32", "TFLite int8"), key=latency.get)

        print("\n2. Detection and cropping alone:")
        full, small = HaarDetector(), HaarDetector(detect_width=args.detect_width)
        frame_iter = itertools.cycle(frames)
        baseline_ms = time_calls(lambda: full.detect(next(frame_iter)), min(args.repeats, 100))
        baseline_fps = 1000 / np.median(baseline_ms)
        print(f"   Haar 640x480 (baseline)     {summary(baseline_ms)}")
        small_ms = time_calls(lambda: small.detect(next(frame_iter)), args.repeats)
        print(f"   Haar shrunk to {args.detect_width:<4} px      {summary(small_ms)}")
        crop_ms = time_calls(lambda: crop_faces(frames[0], face_box), args.repeats)
        print(f"   crop + resize to 48x48      {summary(crop_ms)}")

        print(f"\n3. End to end (detection + crop + classification), {args.frames} frames 640x480, one face:")
        pipelines = {
            "plain: Haar 640 every frame + Keras": FrameAnalyser(full, classifiers["Keras"]),
            f"Haar 640 every frame + {fastest}": FrameAnalyser(full, classifiers[fastest]),
            f"Haar {args.detect_width} every frame + {fastest}": FrameAnalyser(small, classifiers[fastest]),
            f"fast: Haar {args.detect_width} every {args.detect_every} + {fastest}":
                FrameAnalyser(small, classifiers[fastest], detect_every=args.detect_every),
        }
        best = 0.0
        plain_fps = None
        for name, analyser in pipelines.items():
            fps, found = pipeline_fps(analyser, frames)
            plain_fps = plain_fps or fps
            best = max(best, fps)
            print(f"   {name:<42} {fps:6.1f} FPS  {1000 / fps:6.2f} ms/frame  x{fps / baseline_fps:4.2f} baseline "
                  f"x{fps / plain_fps:4.2f} plain  face found in {found:.0%} of frames")

    print(f"\nbaseline (Haar detector alone, 640x480): {baseline_fps:.1f} FPS")
    verdict = "reaches" if best >= TARGET_FPS else "falls short of"
    print(f"best end to end: {best:.1f} FPS = {best / TARGET_FPS:.0%} of {TARGET_FPS:.0f} FPS; it {verdict} the "
          f"{1000 / TARGET_FPS:.1f} ms frame budget by {abs(1000 / TARGET_FPS - 1000 / best):.2f} ms/frame")


if __name__ == "__main__":
    main()
