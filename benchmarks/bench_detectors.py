"""Face detectors compared on real photos and clips: faces found, false boxes, milliseconds per frame.

For each detector (OpenCV's Haar cascade as the papers use it, and MediaPipe's BlazeFace models at
their standard thresholds), in one run:

1. photos (``../shared/photos`` by default: one person per photo): photos with exactly one face,
   with none, with two or more, and the surplus boxes (faces found beyond one per photo); and,
   where ``labels.csv`` has a ``haar_faces`` column, agreement of our Haar run with it;
2. clips (``../shared/videos``: one person per frame): the share of frames with exactly one face;
3. speed: median milliseconds per 640x480 frame (clip frames letterboxed into 640x480), the
   detectors taking turns in short rounds so that a change in the machine's load hits all alike;
4. box geometry against Haar on the photos where both find one face: median width ratio and
   centre offset (fractions of the Haar box width), to see how crops from each detector compare;
5. faces found in made-up "group photos": six clip frames (head and shoulders) side by side on a
   grey canvas, at four face sizes. A stand-in only: ../shared has no real group photo.

Usage::

    python benchmarks/bench_detectors.py
    python benchmarks/bench_detectors.py --photos PHOTOS_DIR --videos CLIPS_DIR --clip-stride 5
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from fer_lib.faces import BLAZEFACE_MODELS, BlazeFaceDetector, FaceDetector, HaarDetector, find_files, read_image
from fer_lib.paths import PROJECT_ROOT
from fer_lib.video import open_video

SHARED: Path = PROJECT_ROOT.parent / "shared"


def detectors() -> dict[str, FaceDetector]:
    """The detectors compared, each with its standard settings (no threshold tuned here)."""
    return {
        "haar": HaarDetector(),
        **{f"blazeface-{name}": BlazeFaceDetector(models=[name]) for name in BLAZEFACE_MODELS},
        "blazeface-full>short": BlazeFaceDetector(models=["full", "short"]),
    }


def photo_counts(photos: list[Path], found: dict[str, FaceDetector]) -> pd.DataFrame:
    """Faces found per photo: one row per photo, one column per detector."""
    rows = []
    for path in photos:
        image = read_image(path)
        rows.append({"photo": str(path), **{name: len(detector.detect(image)) for name, detector in found.items()}})
    return pd.DataFrame(rows).set_index("photo")


def count_summary(counts: pd.DataFrame) -> pd.DataFrame:
    """Per detector: items with exactly 1, 0 and 2+ faces, and the surplus boxes beyond one per item."""
    return pd.DataFrame(
        {
            "exactly 1": (counts == 1).sum(),
            "none": (counts == 0).sum(),
            "2 or more": (counts >= 2).sum(),
            "surplus boxes": (counts - 1).clip(lower=0).sum(),
            "share exactly 1": (counts == 1).mean().round(3),
        }
    )


def clip_counts(clips: list[Path], found: dict[str, FaceDetector], stride: int) -> pd.DataFrame:
    """Share of analysed frames (every ``stride``-th) with exactly one face, per clip and detector."""
    rows = []
    for clip in clips:
        capture = open_video(clip)
        counts: dict[str, list[int]] = {name: [] for name in found}
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index % stride == 0:
                for name, detector in found.items():
                    counts[name].append(len(detector.detect(frame)))
            index += 1
        capture.release()
        rows.append(
            {
                "clip": clip.name,
                "frames analysed": len(next(iter(counts.values()))),
                **{name: float(np.mean(np.array(values) == 1)) for name, values in counts.items()},
            }
        )
    return pd.DataFrame(rows).set_index("clip")


def speed_ms(frames: list[np.ndarray], found: dict[str, FaceDetector], rounds: int = 10) -> pd.Series:
    """Median milliseconds per frame of each detector, the detectors taking turns for ``rounds`` rounds."""
    import time

    durations: dict[str, list[float]] = {name: [] for name in found}
    for detector in found.values():
        detector.detect(frames[0])
    per_round = max(1, len(frames) // rounds)
    for round_number in range(rounds):
        for name, detector in found.items():
            for frame in frames[round_number * per_round : (round_number + 1) * per_round]:
                start = time.perf_counter()
                detector.detect(frame)
                durations[name].append((time.perf_counter() - start) * 1000)
    return pd.Series({name: float(np.median(values)) for name, values in durations.items()}, name="ms per frame")


def box_geometry(photos: list[Path], found: dict[str, FaceDetector]) -> pd.DataFrame:
    """Median box width ratio and centre offset (x, y, in Haar box widths) of each detector against
    Haar, on the photos where both find exactly one face."""
    rows = []
    haar = found["haar"]
    for path in photos:
        image = read_image(path)
        reference = haar.detect(image)
        if len(reference) != 1:
            continue
        rx, ry, rw, rh = reference[0]
        for name, detector in found.items():
            boxes = detector.detect(image)
            if name == "haar" or len(boxes) != 1:
                continue
            x, y, w, h = boxes[0]
            rows.append(
                {
                    "detector": name,
                    "width ratio": w / rw,
                    "height ratio": h / rh,
                    "centre dx": (x + w / 2 - rx - rw / 2) / rw,
                    "centre dy": (y + h / 2 - ry - rh / 2) / rw,
                }
            )
    return pd.DataFrame(rows).groupby("detector").median().round(3)


def letterbox_frame(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Return ``frame`` shrunk or enlarged to fit ``size`` (width, height) and centred on grey borders."""
    width, height = size
    scale = min(width / frame.shape[1], height / frame.shape[0])
    resized = cv2.resize(
        frame, (round(frame.shape[1] * scale), round(frame.shape[0] * scale)), interpolation=cv2.INTER_AREA
    )
    canvas = np.full((height, width, 3), 110, np.uint8)
    top, left = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    canvas[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
    return canvas


def timing_frames(clips: list[Path], count: int) -> list[np.ndarray]:
    """Return ``count`` 640x480 BGR frames: clip frames letterboxed into 640x480, taken in turn from each clip."""
    frames: list[np.ndarray] = []
    per_clip = max(1, count // max(1, len(clips)))
    for clip in clips:
        capture = open_video(clip)
        for _ in range(per_clip):
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(letterbox_frame(frame, (640, 480)))
        capture.release()
    return frames


def group_composites(clips: list[Path], seed: int = 0) -> dict[str, np.ndarray]:
    """Made-up group photos: six square clip frames in two staggered rows of three, or one row of six, on grey.

    Returns:
        description -> BGR image; every image shows six faces.
    """
    squares = []
    for clip in clips:
        capture = open_video(clip)
        for index in range(90):
            ok, frame = capture.read()
            if not ok:
                break
            if index in (10, 80):
                side = min(frame.shape[:2])
                top, left = (frame.shape[0] - side) // 2, (frame.shape[1] - side) // 2
                squares.append(frame[top : top + side, left : left + side])
        capture.release()
    rng = np.random.default_rng(seed)
    composites = {}
    for tile, columns in ((300, 3), (200, 3), (200, 6), (140, 6)):
        rows = 6 // columns
        gap = tile // 8
        canvas = np.full((rows * (tile + gap) + gap + tile // 4, columns * (tile + gap) + gap, 3), 110, np.uint8)
        for number, pick in enumerate(rng.choice(len(squares), 6, replace=False)):
            row, column = divmod(number, columns)
            top = gap + row * (tile + gap) + (tile // 4 if column % 2 else 0)
            left = gap + column * (tile + gap)
            canvas[top : top + tile, left : left + tile] = cv2.resize(
                squares[pick], (tile, tile), interpolation=cv2.INTER_AREA
            )
        composites[f"{canvas.shape[1]}x{canvas.shape[0]}, faces ~{tile * 0.6 / canvas.shape[1]:.0%} of the width"] = (
            canvas
        )
    return composites


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=SHARED / "photos", help="folder of one-person photos")
    parser.add_argument("--videos", type=Path, default=SHARED / "videos", help="folder of one-person clips")
    parser.add_argument("--clip-stride", type=int, default=3, help="analyse every N-th clip frame (default: 3)")
    parser.add_argument("--timing-frames", type=int, default=200, help="640x480 frames timed per detector")
    args = parser.parse_args()

    found = detectors()
    photos = [path for path in find_files([args.photos]) if path.suffix.lower() in {".jpg", ".jpeg", ".png"}]
    clips = sorted(args.videos.glob("*.mp4"))
    print(
        f"CPU cores: {os.cpu_count()} (1-minute load average {os.getloadavg()[0]:.1f}); "
        f"{len(photos)} photos in {args.photos}, {len(clips)} clips in {args.videos}\n"
    )
    pd.set_option("display.width", 160)

    counts = photo_counts(photos, found)
    print("1. Photos (one person each): faces found per photo")
    print(count_summary(counts).to_string(), "\n")
    labels_csv = args.photos / "labels.csv"
    if labels_csv.is_file() and "haar_faces" in (table := pd.read_csv(labels_csv)).columns:
        expected = table.set_index(table["file"].map(lambda name: str(args.photos / name)))["haar_faces"]
        same = (counts["haar"].reindex(expected.index) == expected).mean()
        print(
            f"   our Haar run agrees with labels.csv's haar_faces on {same:.1%} of the photos "
            f"(labels.csv used minSize 30 px, ours min_size 40 px)\n"
        )
    print("   photos not found exactly once by each BlazeFace model:")
    for name in found:
        if name != "haar":
            odd = counts.index[counts[name] != 1]
            print(f"   {name}: {[f'{Path(p).parent.name}/{Path(p).name}: {counts.at[p, name]}' for p in odd]}")

    print(f"\n2. Clips (one person each): share of frames (every N-th, N = {args.clip_stride}) with exactly one face")
    print(clip_counts(clips, found, args.clip_stride).round(3).to_string())

    print(f"\n3. Speed on {args.timing_frames} clip frames letterboxed to 640x480 (median ms per frame):")
    print(speed_ms(timing_frames(clips, args.timing_frames), found).round(2).to_string())

    print("\n4. Box geometry against Haar (photos where both find one face; medians):")
    print(box_geometry(photos, found).to_string())

    print("\n5. Made-up group photos (six clip frames side by side; six faces each): faces found")
    composites = group_composites(clips)
    print(
        pd.DataFrame(
            {
                name: {label: len(detector.detect(image)) for label, image in composites.items()}
                for name, detector in found.items()
            }
        ).to_string()
    )


if __name__ == "__main__":
    main()
