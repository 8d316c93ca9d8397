"""Face detectors: boxes ``(K, 4)`` int ``x, y, w, h`` in pixels of the image given.

Detectors follow the :class:`FaceDetector` protocol, so MediaPipe's BlazeFace (:class:`BlazeFaceDetector`,
the default, with its eye keypoints), the OpenCV Haar cascade used by the papers (:class:`HaarDetector`)
and OpenCV's DNN detector (:class:`YuNetDetector`) are interchangeable; :func:`make_detector` builds the
one ``faces:`` params ask for.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from fer_lib.classifiers import load_litert
from fer_lib.errors import ModelError
from fer_lib.params import FacesParams
from fer_lib.paths import DETECTOR_MODELS

__all__ = [
    "HAAR_CASCADE",
    "FaceDetector",
    "to_grey",
    "HaarDetector",
    "YuNetDetector",
    "BlazeFaceModel",
    "BLAZEFACE_MODELS",
    "BLAZEFACE_KEYPOINTS",
    "ssd_anchors",
    "weighted_nms",
    "BlazeFaceDetector",
    "make_detector",
    "describe_detector",
    "box_iou",
    "detect_faces",
]
"""The public names, re-exported by :mod:`fer_lib.faces`."""

HAAR_CASCADE: Path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
"""OpenCV's frontal-face Haar cascade (Viola-Jones), the detector both reference papers use."""


class FaceDetector(Protocol):
    """Anything that finds faces: ``detect(image) -> (K, 4)`` int boxes ``x, y, w, h``."""

    def detect(self, image: np.ndarray) -> np.ndarray:
        """Return the faces of a BGR (H, W, 3) or grey (H, W) uint8 image as int32 boxes (K, 4)."""
        ...


def to_grey(image: np.ndarray) -> np.ndarray:
    """Return a grey (H, W) uint8 view or copy of a grey (H, W), BGR (H, W, 3) or BGRA (H, W, 4) image."""
    if image.ndim == 2:
        return image
    code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return cv2.cvtColor(image, code)


def _downscale(image: np.ndarray, detect_width: int | None) -> tuple[np.ndarray, float]:
    """Shrink ``image`` to ``detect_width`` pixels wide (never enlarge); return it and the scale used."""
    width = image.shape[1]
    if detect_width is None or width <= detect_width:
        return image, 1.0
    scale = detect_width / width
    height = max(1, round(image.shape[0] * scale))
    return cv2.resize(image, (detect_width, height), interpolation=cv2.INTER_AREA), scale


def _boxes_array(boxes: Any, scale: float, image_shape: tuple[int, ...]) -> np.ndarray:
    """Scale boxes found on a downscaled image back up and clip them to the image: int32 (K, 4)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) / scale
    height, width = image_shape[:2]
    x0 = np.clip(np.round(boxes[:, 0]), 0, width - 1)
    y0 = np.clip(np.round(boxes[:, 1]), 0, height - 1)
    x1 = np.clip(np.round(boxes[:, 0] + boxes[:, 2]), x0 + 1, width)
    y1 = np.clip(np.round(boxes[:, 1] + boxes[:, 3]), y0 + 1, height)
    return np.stack([x0, y0, x1 - x0, y1 - y0], axis=1).astype(np.int32)


class HaarDetector:
    """OpenCV's Haar cascade face detector (``haarcascade_frontalface_default.xml``).

    Args:
        scale_factor: image pyramid step of ``detectMultiScale`` (> 1; larger is faster, coarser).
        min_neighbors: overlapping detections needed to keep a face (larger: fewer false faces).
        min_size: smallest face side in pixels of the full-size image.
        detect_width: if set, detect on a copy of the frame shrunk to this width and scale the boxes
            back (e.g. 320 on 640x480 frames is about twice as fast). Faces smaller than about
            ``24 * width / detect_width`` pixels (the cascade's 24 px window) are then missed.
        cascade_path: another Haar cascade XML file.

    Raises:
        ModelError: if the cascade file is missing or not a cascade.
    """

    def __init__(
        self,
        *,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_size: int = 40,
        detect_width: int | None = None,
        cascade_path: str | os.PathLike[str] = HAAR_CASCADE,
    ) -> None:
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size
        self.detect_width = detect_width
        self.cascade = cv2.CascadeClassifier(str(cascade_path))
        if self.cascade.empty():
            raise ModelError(f"{cascade_path}: not found or not an OpenCV Haar cascade XML file")

    def detect(self, image: np.ndarray) -> np.ndarray:
        """Return the faces in a BGR or grey uint8 image as int32 boxes (K, 4) ``x, y, w, h``."""
        small, scale = _downscale(to_grey(image), self.detect_width)
        side = max(1, round(self.min_size * scale))
        boxes = self.cascade.detectMultiScale(
            small, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(side, side)
        )
        return _boxes_array(boxes, scale, image.shape)


class YuNetDetector:
    """OpenCV's DNN face detector ``cv2.FaceDetectorYN`` with a user-supplied YuNet ``.onnx`` model.

    YuNet (e.g. ``face_detection_yunet_2023mar.onnx`` from the OpenCV model zoo) finds turned and
    partly hidden faces that the frontal Haar cascade misses.

    Args:
        model_path: the YuNet ONNX file.
        score_threshold: minimum face confidence (0-1).
        nms_threshold: IoU above which overlapping boxes are merged.
        min_size: smallest face side in pixels of the full-size image; smaller boxes are dropped.
        detect_width: if set, detect on a copy shrunk to this width (see :class:`HaarDetector`).

    Raises:
        ModelError: if the file is missing or OpenCV cannot load it as a face detector.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        score_threshold: float = 0.7,
        nms_threshold: float = 0.3,
        min_size: int = 40,
        detect_width: int | None = None,
    ) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise ModelError(
                f"{path}: YuNet face detector model not found (download "
                "face_detection_yunet_2023mar.onnx from the OpenCV model zoo, or use the haar detector)"
            )
        try:
            self.detector = cv2.FaceDetectorYN.create(str(path), "", (320, 320), score_threshold, nms_threshold)
        except cv2.error:
            raise ModelError(
                f"{path}: OpenCV cannot load this file as a YuNet face detector (.onnx expected)"
            ) from None
        self.min_size = min_size
        self.detect_width = detect_width

    def detect(self, image: np.ndarray) -> np.ndarray:
        """Return the faces in a BGR or grey uint8 image as int32 boxes (K, 4) ``x, y, w, h``."""
        small, scale = _downscale(image, self.detect_width)
        if small.ndim == 2:
            small = cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)
        self.detector.setInputSize((small.shape[1], small.shape[0]))
        _, found = self.detector.detect(small)
        boxes = _boxes_array(np.empty((0, 4)) if found is None else found[:, :4], scale, image.shape)
        return boxes[np.minimum(boxes[:, 2], boxes[:, 3]) >= self.min_size]


@dataclass(frozen=True)
class BlazeFaceModel:
    """One BlazeFace variant: its file, square input side and SSD anchor layout.

    Attributes:
        file: the ``.tflite`` file in :data:`DETECTOR_MODELS`.
        input_size: input side in pixels (the image is letterboxed to a square and resized to it).
        anchor_layers: ``(stride, anchors per cell)`` per feature map, in the model's output order
            (MediaPipe's ``SsdAnchorsCalculator`` options with ``fixed_anchor_size: true``).
        score_threshold: the smallest face confidence kept (0-1).
    """

    file: str
    input_size: int
    anchor_layers: tuple[tuple[int, int], ...]
    score_threshold: float


BLAZEFACE_MODELS: dict[str, BlazeFaceModel] = {
    "short": BlazeFaceModel("face_detection_short_range.tflite", 128, ((8, 2), (16, 6)), 0.5),
    "full": BlazeFaceModel("face_detection_full_range.tflite", 192, ((4, 1),), 0.5),
    "back": BlazeFaceModel("face_detection_back.tflite", 256, ((16, 2), (32, 6)), 0.5),
}
"""MediaPipe's face detectors: ``short`` range (faces within about 2 m, 128 px input; MediaPipe's
default), ``full`` range (faces within about 5 m, 192 px) and the older ``back`` camera model (256 px).
Anchors from MediaPipe's ``face_detection_*.pbtxt`` graphs; every score threshold is 0.5, the default
``min_detection_confidence`` of MediaPipe's face detection solution."""


BLAZEFACE_KEYPOINTS: tuple[str, ...] = (
    "right eye",
    "left eye",
    "nose tip",
    "mouth centre",
    "right ear tragion",
    "left ear tragion",
)
"""BlazeFace's six keypoints, in its output order (MediaPipe's; "right" is the subject's right)."""


def ssd_anchors(input_size: int, anchor_layers: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Return the anchor centres (A, 2) ``x, y`` in [0, 1] of a square SSD input, in output order.

    Each feature map of ``stride`` pixels has ``input_size // stride`` cells a side; every cell
    repeats its centre once per anchor (BlazeFace anchors all have size 1: the box size is regressed).
    """
    centres = []
    for stride, per_cell in anchor_layers:
        cells = input_size // stride
        grid = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        y, x = np.meshgrid(grid, grid, indexing="ij")
        centres.append(np.repeat(np.stack([x.ravel(), y.ravel()], axis=1), per_cell, axis=0))
    return np.concatenate(centres)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's weighted non-maximum suppression (``NonMaxSuppressionCalculator``, ``WEIGHTED``).

    The best remaining box and every box overlapping it by more than ``iou_threshold`` are merged
    into their score-weighted average, which keeps the best box's score.

    Args:
        boxes: float (K, 4 + D) ``x, y, w, h`` and D more columns averaged alike (BlazeFace's keypoints).
        scores: float (K,) in [0, 1].

    Returns:
        The merged rows (M, 4 + D) and their scores (M,), best first.
    """
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    kept_boxes, kept_scores = [], []
    remaining = np.ones(len(boxes), dtype=bool)
    for best in range(len(boxes)):
        if not remaining[best]:
            continue
        merged = remaining & (box_iou(boxes[:, :4], boxes[best, :4]) > iou_threshold)
        merged[best] = True
        weights = scores[merged]
        kept_boxes.append(weights @ boxes[merged] / weights.sum())
        kept_scores.append(scores[best])
        remaining &= ~merged
    return np.array(kept_boxes, dtype=np.float64).reshape(-1, boxes.shape[1]), np.array(kept_scores, dtype=np.float64)


class BlazeFaceDetector:
    """Google MediaPipe's BlazeFace face detectors, run with LiteRT (ai-edge-litert).

    Each model sees the image letterboxed to a square (black borders), resized to its input and
    scaled to [-1, 1] RGB; boxes are decoded from its SSD anchors, kept above its score threshold
    and merged by weighted non-maximum suppression, as MediaPipe does. The models are tried in
    order and the first that finds a face of at least ``min_size`` decides: the full-range model
    finds faces down to a few percent of the image side (group photos, people away from the
    camera) but misses faces that fill most of the image, which the short-range model finds
    (close-ups, tight crops); so ``("full", "short")`` covers both, paying for the second model
    only on images where the first finds nothing.

    Args:
        models: keys of :data:`BLAZEFACE_MODELS` to try in order (``full``, ``short``, ``back``).
        score_threshold: minimum face confidence (0-1); None: MediaPipe's threshold for each model.
        nms_threshold: IoU above which overlapping boxes are merged (MediaPipe: 0.3).
        min_size: smallest face side in pixels of the full-size image; smaller boxes are dropped.
        num_threads: LiteRT CPU threads per model.
        pad_fraction: the border (a fraction of the larger image side, on each side) of the second try on
            an image in which no model finds a face; 0: no second try.
        align: whether the faces it finds are aligned on its eye keypoints before they are classified
            (:func:`detect_faces`, :func:`align_face`).

    Raises:
        ModelError: for an unknown model name or a missing or unloadable model file.
    """

    def __init__(
        self,
        *,
        models: Iterable[str] = ("full", "short"),
        score_threshold: float | None = None,
        nms_threshold: float = 0.3,
        min_size: int = 40,
        num_threads: int = 1,
        pad_fraction: float = 0.25,
        align: bool = False,
    ) -> None:
        self.align = align
        self.pad_fraction = pad_fraction
        self.models = tuple(models)
        unknown = sorted(set(self.models) - set(BLAZEFACE_MODELS))
        if unknown or not self.models:
            raise ModelError(
                f"faces.blazeface_models: unknown or no BlazeFace model {unknown or ''} "
                f"(choose from {', '.join(BLAZEFACE_MODELS)})"
            )
        self._runners = [
            _BlazeFaceModelRunner(BLAZEFACE_MODELS[name], score_threshold, num_threads) for name in self.models
        ]
        self.nms_threshold = nms_threshold
        self.min_size = min_size

    def detect(self, image: np.ndarray) -> np.ndarray:
        """Return the faces in a BGR or grey uint8 image as int32 boxes (K, 4) ``x, y, w, h``, most confident first."""
        return self.detect_with_keypoints(image)[0]

    def detect_with_scores(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the int32 boxes (K, 4) ``x, y, w, h`` and their float confidences (K,), most confident first."""
        boxes, _, scores = self.detect_with_keypoints(image)
        return boxes, scores

    def detect_with_keypoints(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the int32 boxes (K, 4) ``x, y, w, h``, their float keypoints (K, 6, 2) ``x, y`` in image
        pixels (:data:`BLAZEFACE_KEYPOINTS` order: the eyes first) and confidences (K,), most confident first.

        When no model finds a face, they are tried once more on the image with a replicated border of
        ``pad_fraction`` of its larger side: a face that fills the whole image (a tight crop) lacks the
        margin around it that BlazeFace needs (2 of the 200 labelled photos)."""
        rows, scores = self._faces(image)
        if not len(rows) and self.pad_fraction > 0:
            margin = round(self.pad_fraction * max(image.shape[:2]))
            rows, scores = self._faces(cv2.copyMakeBorder(image, *[margin] * 4, cv2.BORDER_REPLICATE))
            rows[:, [0, 1, *range(4, 16)]] -= margin  # box corner and keypoints back in the image's pixels
        boxes = _boxes_array(rows[:, :4], 1.0, image.shape)
        large = np.minimum(boxes[:, 2], boxes[:, 3]) >= self.min_size
        return boxes[large], rows[large, 4:].reshape(-1, 6, 2), scores[large]

    def _faces(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The first model's faces of at least ``min_size`` (float rows (K, 16): box, keypoints; scores (K,))."""
        for runner in self._runners:  # at least one: __init__ refuses an empty list
            rows, scores = weighted_nms(*runner.candidates(image), self.nms_threshold)
            boxes = _boxes_array(rows[:, :4], 1.0, image.shape)
            keep = (rows[:, 2] > 0) & (rows[:, 3] > 0) & (np.minimum(boxes[:, 2], boxes[:, 3]) >= self.min_size)
            if keep.any():
                return rows[keep], scores[keep]
        return rows[keep], scores[keep]

    def detect_eyes(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the int32 boxes (K, 4) and each face's eye centres (K, 2, 2): the subject's right eye (on the
        image's left in a frontal face) then left eye, ``x, y`` in image pixels (see :func:`crop_faces`)."""
        boxes, keypoints, _ = self.detect_with_keypoints(image)
        return boxes, keypoints[:, :2]


class _BlazeFaceModelRunner:
    """One BlazeFace ``.tflite`` model: image in, candidate boxes above its score threshold out (before NMS)."""

    def __init__(self, spec: BlazeFaceModel, score_threshold: float | None, num_threads: int) -> None:
        self.spec = spec
        self.score_threshold = spec.score_threshold if score_threshold is None else score_threshold
        path = DETECTOR_MODELS / spec.file
        if not path.is_file():
            raise ModelError(f"{path}: BlazeFace model file missing (it ships with the project; restore it with git)")
        self.interpreter = load_litert(path, num_threads=num_threads)
        self._input = self.interpreter.get_input_details()[0]["index"]
        outputs = {int(detail["shape"][-1]): detail["index"] for detail in self.interpreter.get_output_details()}
        self._regressors, self._scores = outputs[16], outputs[1]
        self.anchors = ssd_anchors(spec.input_size, spec.anchor_layers)

    def candidates(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return float rows (C, 16) in image pixels, box ``x, y, w, h`` then the six keypoints' ``x, y``, and
        their scores (C,) above the threshold."""
        tensor, side, offset = self._letterbox(image)
        self.interpreter.set_tensor(self._input, tensor)
        self.interpreter.invoke()
        raw_boxes = self.interpreter.get_tensor(self._regressors)[0]
        raw_scores = self.interpreter.get_tensor(self._scores)[0, :, 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores, -80.0, 80.0)))
        keep = scores > self.score_threshold
        size = self.spec.input_size
        centres = raw_boxes[keep, :2] / size + self.anchors[keep]
        sizes = raw_boxes[keep, 2:4] / size
        keypoints = raw_boxes[keep, 4:16].reshape(-1, 6, 2) / size + self.anchors[keep, None]
        boxes = np.concatenate([centres - sizes / 2, sizes], axis=1).astype(np.float64) * side
        boxes[:, :2] -= offset
        keypoints = keypoints.astype(np.float64) * side - offset
        return np.concatenate([boxes, keypoints.reshape(-1, 12)], axis=1), scores[keep].astype(np.float64)

    def _letterbox(self, image: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
        """Return the model input (1, S, S, 3) float32 RGB in [-1, 1], the padded square's side in
        image pixels and the (2,) ``x, y`` offset of the image inside that square."""
        height, width = image.shape[:2]
        side = max(height, width)
        size = self.spec.input_size
        scale = size / side
        resized = cv2.resize(
            image,
            (max(1, round(width * scale)), max(1, round(height * scale))),
            interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
        )
        if resized.ndim == 2:
            resized = cv2.cvtColor(resized, cv2.COLOR_GRAY2RGB)
        else:
            resized = cv2.cvtColor(resized, cv2.COLOR_BGRA2RGB if resized.shape[2] == 4 else cv2.COLOR_BGR2RGB)
        top, left = (size - resized.shape[0]) // 2, (size - resized.shape[1]) // 2
        canvas = np.zeros((size, size, 3), np.uint8)
        canvas[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
        tensor = canvas.astype(np.float32)[None] * (2.0 / 255.0) - 1.0
        return tensor, side, np.array([left / scale, top / scale])


def make_detector(faces_params: FacesParams, *, detect_width: int | None = None) -> FaceDetector:
    """Build the detector that ``faces_params`` names (``blazeface``, ``haar`` or ``yunet``).

    Args:
        faces_params: ``detector``, ``blazeface_models``, ``detector_model``, ``scale_factor``,
            ``min_neighbors``, ``min_size``.
        detect_width: Haar and YuNet detect on frames shrunk to this width (None: full size);
            BlazeFace always shrinks the image to its small square input.

    Raises:
        ModelError: for ``yunet`` without a usable ``detector_model``, or unknown BlazeFace models.
    """
    if faces_params.detector == "blazeface":
        return BlazeFaceDetector(
            models=faces_params.blazeface_models, min_size=faces_params.min_size, align=faces_params.align
        )
    if faces_params.detector == "yunet":
        if not faces_params.detector_model:
            raise ModelError("faces.detector_model: the yunet detector needs the path of its .onnx model")
        return YuNetDetector(faces_params.detector_model, min_size=faces_params.min_size, detect_width=detect_width)
    return HaarDetector(
        scale_factor=faces_params.scale_factor,
        min_neighbors=faces_params.min_neighbors,
        min_size=faces_params.min_size,
        detect_width=detect_width,
    )


def describe_detector(faces_params: FacesParams) -> str:
    """One line naming the detector of ``faces_params`` and its settings, for reports."""
    if faces_params.detector == "blazeface":
        return (
            f"BlazeFace (MediaPipe; models tried in order: {', '.join(faces_params.blazeface_models)}; "
            f"min face {faces_params.min_size} px; "
            + ("faces aligned on their eyes to FER-2013's geometry)" if faces_params.align else "boxes cropped)")
        )
    if faces_params.detector == "yunet":
        return f"YuNet ({faces_params.detector_model}; min face {faces_params.min_size} px)"
    return (
        f"Haar cascade (scale factor {faces_params.scale_factor}, min neighbours {faces_params.min_neighbors}, "
        f"min face {faces_params.min_size} px)"
    )


def box_iou(boxes: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Intersection over union of each of ``boxes`` (K, 4) with one ``box`` (4,), all ``x, y, w, h``: (K,) in [0, 1]."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x, y, w, h = np.asarray(box, dtype=np.float64)
    overlap_w = np.clip(np.minimum(boxes[:, 0] + boxes[:, 2], x + w) - np.maximum(boxes[:, 0], x), 0, None)
    overlap_h = np.clip(np.minimum(boxes[:, 1] + boxes[:, 3], y + h) - np.maximum(boxes[:, 1], y), 0, None)
    intersection = overlap_w * overlap_h
    return intersection / (boxes[:, 2] * boxes[:, 3] + w * h - intersection)


def detect_faces(detector: FaceDetector, image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The boxes (K, 4) a detector finds, and the eyes (K, 2, 2) to align them on when it aligns faces
    (a :class:`BlazeFaceDetector` made with ``align=True``), else None."""
    if getattr(detector, "align", False):
        return detector.detect_eyes(image)
    return detector.detect(image), None
