"""Emotions over time: video clips and a demo clip made from real photos (the live camera, which runs the
same :class:`FrameAnalyser`, is :mod:`fer_lib.study.webcam`).

Each frame goes through :class:`FrameAnalyser`: detect faces (every ``detect_every`` frames; the
boxes are reused in between, which is what makes real time cheap), crop and classify all faces in
one model call, and smooth the main face's probabilities over time with an exponential moving
average::

    smoothed_t = smoothing * smoothed_(t-1) + (1 - smoothing) * probabilities_t

The main face is tracked: it is the detected box overlapping the previous main face most
(intersection over union at least :data:`SAME_FACE_IOU`), so a passing false detection or a
larger face entering the frame does not take its place; when there is no such box the largest
face becomes the main face. The average restarts from the raw probabilities whenever the main
face is lost, so an emotion never leaks from one face, or one appearance of it, into the next.
"""

from __future__ import annotations

import os
import time
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from fer_lib.classifiers import EmotionClassifier
from fer_lib.errors import MediaError, partial_file
from fer_lib.faces import (
    FaceDetector,
    FaceResult,
    annotate,
    box_iou,
    classify_boxes,
    contact_sheet,
    detect_faces,
    face_results,
    find_files,
    given_paths,
    unused_path,
)
from fer_lib.labels import EMOTIONS
from fer_lib.params import FacesParams
from fer_lib.synthetic.clip import FOURCC, make_demo_clip

SAME_FACE_IOU: float = 0.3
"""Smallest overlap (intersection over union) of two boxes on successive detections of the same face."""

FRAME_COLUMNS: tuple[str, ...] = ("frame", "time_s", "detected", "n_faces", "x", "y", "w", "h", *EMOTIONS, "label")
"""Columns of the per-frame table: whether the detector ran on the frame (else the previous
detection's boxes were reused), the number of faces, box and smoothed probabilities of the main face."""


@dataclass
class FrameAnalyser:
    """Stateful per-frame pipeline: detection every N frames, main-face tracking, one batched
    classification, smoothing (see the module docstring).

    Args:
        detector: finds faces (see :class:`fer_lib.faces.FaceDetector`).
        classifier: classifies 48x48 faces.
        margin: crop margin as a fraction of the box side.
        smoothing: weight of the previous frame's probabilities in the moving average (0: none).
        detect_every: run the detector on every N-th frame and reuse its boxes on the frames between.
    """

    detector: FaceDetector
    classifier: EmotionClassifier
    _: KW_ONLY
    margin: float = 0.1
    smoothing: float = 0.6
    detect_every: int = 1
    detected: bool = field(default=False, init=False)
    """Whether the detector ran on the last analysed frame."""
    _frames_seen: int = field(default=0, init=False)
    _boxes: np.ndarray = field(default_factory=lambda: np.empty((0, 4), np.int32), init=False)
    _eyes: np.ndarray | None = field(default=None, init=False)
    _smoothed: np.ndarray | None = field(default=None, init=False)
    _main_box: np.ndarray | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.detect_every < 1:
            raise ValueError(f"detect_every must be at least 1, got {self.detect_every}")
        if not 0.0 <= self.smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {self.smoothing}")

    def analyse(self, frame_bgr: np.ndarray) -> list[FaceResult]:
        """Return the faces of the next frame (H, W, 3) BGR uint8, the main face first.

        The main face carries smoothed probabilities (its label and score follow them); the other
        faces, largest first, carry their own frame's probabilities.
        """
        self.detected = self._frames_seen % self.detect_every == 0
        if self.detected:
            boxes, eyes = detect_faces(self.detector, frame_bgr)
            order = self._main_face_first(boxes)
            self._boxes, self._eyes = boxes[order], None if eyes is None else eyes[order]
        self._frames_seen += 1
        if len(self._boxes) == 0:
            return []
        results = classify_boxes(frame_bgr, self._boxes, self.classifier, margin=self.margin, eyes=self._eyes)
        current = results[0].probabilities
        self._smoothed = (
            current if self._smoothed is None else (self.smoothing * self._smoothed + (1.0 - self.smoothing) * current)
        )
        return face_results(self._boxes[:1], self._smoothed[None]) + results[1:]

    def _main_face_first(self, boxes: np.ndarray) -> np.ndarray:
        """The order (K,) of freshly detected boxes (K, 4): the tracked main face, then the others by
        decreasing area.

        Forgets the smoothed probabilities when the main face is lost (no box overlaps it enough).
        """
        order = np.argsort(-(boxes[:, 2] * boxes[:, 3]), kind="stable")
        overlaps = box_iou(boxes[order], self._main_box) if self._main_box is not None else np.zeros(len(boxes))
        if len(boxes) and overlaps.max() >= SAME_FACE_IOU:
            best = int(np.argmax(overlaps))
            order = np.concatenate([order[best : best + 1], np.delete(order, best)])
        else:
            self._smoothed = None
        self._main_box = boxes[order[0]] if len(boxes) else None
        return order


def frame_row(frame: int, time_s: float, results: list[FaceResult], *, detected: bool = True) -> dict[str, object]:
    """Return one row of the per-frame table (:data:`FRAME_COLUMNS`) from a frame's faces."""
    row: dict[str, object] = {"frame": frame, "time_s": round(time_s, 4), "detected": detected, "n_faces": len(results)}
    if results:
        main = results[0]
        row.update(zip("xywh", main.box, strict=True))
        row.update(zip(EMOTIONS, (float(p) for p in main.probabilities), strict=True))
        row["label"] = main.label
    else:
        row.update({key: None for key in (*"xywh", *EMOTIONS)})
        row["label"] = ""
    return row


def open_video(source: str | os.PathLike[str]) -> cv2.VideoCapture:
    """Open a video file for reading.

    Raises:
        MediaError: if the file is missing or OpenCV (FFmpeg) cannot open it as a video.
    """
    path = Path(source)
    if not path.is_file():
        raise MediaError(f"{path}: video file not found")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise MediaError(f"{path}: cannot open as a video (not a video file, or a codec OpenCV's FFmpeg lacks)")
    return capture


def open_writer(path: str | os.PathLike[str], fps: float, size: tuple[int, int]) -> tuple[cv2.VideoWriter, Path]:
    """Open an mp4v writer of ``size`` (width, height) pixels at ``path``, or the next unused name.

    Returns:
        The writer and the path it writes.

    Raises:
        MediaError: if OpenCV cannot write a video there.
    """
    target = unused_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*FOURCC), fps, size)
    if not writer.isOpened():
        raise MediaError(f"{target}: cannot write a video here (use an .mp4 name in a writable folder)")
    return writer, target


def process_video(
    source: str | os.PathLike[str],
    detector: FaceDetector,
    classifier: EmotionClassifier,
    *,
    out_video: str | os.PathLike[str] | None = None,
    out_csv: str | os.PathLike[str] | None = None,
    smoothing: float = 0.6,
    detect_every: int = 1,
    margin: float = 0.1,
    progress: bool = True,
    out_width: int | None = None,
    out_step: int = 1,
) -> pd.DataFrame:
    """Classify the main face of every frame of a video file.

    Args:
        source: a video file OpenCV can read (mp4, avi, mov, ...).
        out_video: write an annotated copy (mp4v, same frame rate) here; an existing file is
            never overwritten (a ``-1``, ``-2``... suffix is added).
        out_csv: write the per-frame table here (same rule).
        smoothing: moving-average weight of the previous frame (see the module docstring).
        detect_every: detect faces on every N-th frame, reusing the boxes in between.
        margin: crop margin as a fraction of the box side.
        progress: show a tqdm progress bar.
        out_width: shrink the annotated copy to this width in pixels (None: the clip's size), for
            small files; boxes and labels are drawn before shrinking.
        out_step: the annotated copy keeps every ``out_step``-th frame, played at the clip's frame
            rate divided by ``out_step`` (same duration, smaller file).

    Returns:
        One row per frame with :data:`FRAME_COLUMNS`; ``time_s`` is the frame index divided by the
        clip's frame rate (30 if the file does not say). Frames without a face have ``n_faces`` 0,
        an empty box and probabilities and label ``""``. ``frames.attrs`` holds ``achieved_fps`` (frames
        processed per second of wall time, decoding and writing the video and CSV included), ``source_fps``,
        ``seconds`` (processing time) and the ``out_video`` / ``out_csv`` paths written (or None).

    Raises:
        MediaError: for a missing or unreadable file, a video without frames, or unwritable outputs.
    """
    capture = open_video(source)
    source_fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    analyser = FrameAnalyser(detector, classifier, margin=margin, smoothing=smoothing, detect_every=detect_every)
    writer, video_path, rows = None, None, []
    start = time.perf_counter()
    try:
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        with tqdm(total=total, unit="frame", desc=Path(source).name, disable=not progress) as bar:
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                results = analyser.analyse(frame)
                rows.append(frame_row(len(rows), len(rows) / source_fps, results, detected=analyser.detected))
                if out_video is not None and (len(rows) - 1) % out_step == 0:
                    shown = _shrink(annotate(frame, results), out_width)
                    if writer is None:
                        writer, video_path = open_writer(
                            out_video, source_fps / out_step, (shown.shape[1], shown.shape[0])
                        )
                    writer.write(shown)
                bar.update()
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    if not rows:
        raise MediaError(f"{source}: video has no frames that can be decoded")
    frames = pd.DataFrame(rows, columns=list(FRAME_COLUMNS)).astype({key: "Int64" for key in "xywh"})
    csv_path = None
    if out_csv is not None:
        csv_path = unused_path(out_csv)
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        with partial_file(csv_path):
            frames.to_csv(csv_path, index=False)
    seconds = time.perf_counter() - start
    frames.attrs.update(
        achieved_fps=len(rows) / seconds, source_fps=source_fps, seconds=seconds, out_video=video_path, out_csv=csv_path
    )
    return frames


def _shrink(frame: np.ndarray, width: int | None) -> np.ndarray:
    """Return ``frame`` resized to ``width`` pixels wide (even sizes, as video codecs want), or as it is."""
    if width is None or width >= frame.shape[1]:
        return frame
    height = max(2, round(frame.shape[0] * width / frame.shape[1] / 2) * 2)
    return cv2.resize(frame, (max(2, width // 2 * 2), height), interpolation=cv2.INTER_AREA)


def label_changes(frames: pd.DataFrame) -> list[int]:
    """Indices of the frames where the main face's (smoothed) label differs from the previous frame
    with a face, the first frame with a face included."""
    labelled = frames.loc[frames["n_faces"] > 0, "label"]
    changed = labelled.ne(labelled.shift())
    return [int(index) for index in labelled.index[changed]]


def video_summary(frames: pd.DataFrame) -> dict[str, object]:
    """Headline numbers of a :func:`process_video` table.

    Returns:
        ``frames``, ``frames_with_face``, ``achieved_fps``, ``source_fps`` and ``dominant_emotion``:
        the most frequent label over the frames with a face ("" if there is none).
    """
    labels = frames.loc[frames["n_faces"] > 0, "label"]
    return {
        "frames": int(len(frames)),
        "frames_with_face": int(len(labels)),
        "achieved_fps": float(frames.attrs["achieved_fps"]),
        "source_fps": float(frames.attrs["source_fps"]),
        "dominant_emotion": str(labels.mode().iloc[0]) if len(labels) else "",
    }


def read_frames(source: str | os.PathLike[str], indices: list[int]) -> dict[int, np.ndarray]:
    """Return the BGR frames of a video at the given 0-based indices, read in one pass (no seeking)."""
    capture = open_video(source)
    wanted, found = set(indices), {}
    try:
        for index in range(max(indices) + 1):
            ok, frame = capture.read()
            if not ok:
                break
            if index in wanted:
                found[index] = frame
    finally:
        capture.release()
    return found


VIDEO_SUFFIXES: frozenset[str] = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})
"""File endings taken as clips when a folder named in ``faces.videos`` is searched."""


def change_strip(
    source: str | os.PathLike[str], frames: pd.DataFrame, *, most: int = 12, columns: int = 6, tile: int = 160
) -> np.ndarray | None:
    """A BGR contact sheet of the clip's frames where the main face's label changes (:func:`label_changes`),
    each with the main face's box and smoothed label drawn from the per-frame table and its time below.

    Args:
        source: the clip ``frames`` was computed from.
        frames: its :func:`process_video` table.
        most: frames shown at most, evenly chosen among the changes.

    Returns:
        uint8 BGR image (see :func:`fer_lib.faces.contact_sheet`), or None if no frame has a face.
    """
    changes = label_changes(frames)
    if not changes:
        return None
    chosen = (
        changes if len(changes) <= most else [changes[round(i * (len(changes) - 1) / (most - 1))] for i in range(most)]
    )
    images = read_frames(source, chosen)
    shown = [index for index in chosen if index in images]
    annotated = []
    for index in shown:
        row = frames.loc[index]
        box = np.array([[int(row[key]) for key in "xywh"]], np.int32)
        annotated.append(annotate(images[index], face_results(box, row[list(EMOTIONS)].to_numpy(np.float32)[None])))
    captions = [f"{frames.at[index, 'time_s']:.1f}s {frames.at[index, 'label']}" for index in shown]
    return contact_sheet(annotated, captions, columns=columns, tile=tile)


def resolve_videos(faces_params: FacesParams, inputs_dir: str | os.PathLike[str]) -> list[Path]:
    """Return the clips of ``faces.videos`` (files, or folders searched for :data:`VIDEO_SUFFIXES`;
    relative to the project root), or a demo clip made into ``inputs_dir`` when there are none or
    one is missing and ``faces.if_missing`` is ``default``.

    Raises:
        MediaError: naming a missing path when ``faces.if_missing`` is ``error``.
    """
    given = given_paths(faces_params.videos, faces_params, "videos")
    if given is None:
        return [make_demo_clip(Path(inputs_dir) / "demo_clip.mp4")]
    return [path for path in find_files(given) if path in given or path.suffix.lower() in VIDEO_SUFFIXES]
