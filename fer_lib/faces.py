"""Faces in the wild: find faces in photos and frames, crop them to 48x48 and classify them.

The pipeline is ``detector.detect(image) -> boxes``, ``crop_faces(grey, boxes, margin) -> faces``,
``classifier.predict_proba(faces) -> probabilities``: every face of an image goes through the model in
one call. Detectors follow the :class:`FaceDetector` protocol, so the OpenCV Haar cascade used by
the papers (:class:`HaarDetector`) and OpenCV's DNN detector (:class:`YuNetDetector`) are
interchangeable. Boxes are int arrays ``(K, 4)`` of ``x, y, w, h`` in pixels of the image given.

Nothing here imports TensorFlow: classifiers (:mod:`fer_lib.classifiers`) run Keras models on
whatever Keras backend is configured, and TFLite models with ai-edge-litert.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import pandas as pd

from fer_lib.classifiers import EmotionClassifier, load_litert
from fer_lib.errors import MediaError, ModelError
from fer_lib.image_header import read_header
from fer_lib.labels import EMOTIONS, FACE_SIZE
from fer_lib.params import FacesParams
from fer_lib.paths import DETECTOR_MODELS, PROJECT_ROOT, SHIPPED_MODEL, ReportLayout, RunLayout

HAAR_CASCADE: Path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
"""OpenCV's frontal-face Haar cascade (Viola-Jones), the detector both reference papers use."""

MAX_MEGAPIXELS: float = 50.0
"""Most pixels :func:`read_image_reduced` decodes: a larger JPEG is decoded at 1/2, 1/4 or 1/8 of its side
(boxes are then scaled back to the file's pixels), a larger file of another format is refused unread."""

EMOTION_COLOURS: dict[str, tuple[int, int, int]] = {
    "angry": (40, 40, 220),
    "disgust": (40, 140, 40),
    "fear": (160, 60, 160),
    "happy": (0, 200, 255),
    "sad": (200, 120, 40),
    "surprise": (0, 140, 255),
    "neutral": (200, 200, 200),
}
"""BGR colour of the box drawn around a face of each emotion."""

SAMPLE_PHOTOS: tuple[str, ...] = ("astronaut", "camera", "chelsea", "coffee")
"""Real photos that ship with scikit-image: a frontal smiling face (astronaut Eileen Collins), a
man behind a camera (face turned and shaded), a cat and a coffee cup (no human face)."""


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
        align: bool = False,
    ) -> None:
        self.align = align
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
        boxes, _ = self.detect_with_scores(image)
        return boxes

    def detect_with_scores(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the int32 boxes (K, 4) ``x, y, w, h`` and their float confidences (K,), most confident first."""
        boxes, _, scores = self.detect_with_keypoints(image)
        return boxes, scores

    def detect_with_keypoints(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the int32 boxes (K, 4) ``x, y, w, h``, their float keypoints (K, 6, 2) ``x, y`` in image
        pixels (:data:`BLAZEFACE_KEYPOINTS` order: the eyes first) and confidences (K,), most confident first."""
        rows, scores = np.empty((0, 16)), np.empty(0)
        for runner in self._runners:
            rows, scores = weighted_nms(*runner.candidates(image), self.nms_threshold)
            valid = (rows[:, 2] > 0) & (rows[:, 3] > 0)
            rows, scores = rows[valid], scores[valid]
            boxes = _boxes_array(rows[:, :4], 1.0, image.shape)
            large = np.minimum(boxes[:, 2], boxes[:, 3]) >= self.min_size
            rows, scores = rows[large], scores[large]
            if len(rows):
                break
        return _boxes_array(rows[:, :4], 1.0, image.shape), rows[:, 4:].reshape(-1, 6, 2), scores

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


def largest_box(boxes: np.ndarray) -> np.ndarray:
    """Return the box of largest area as (1, 4), or (0, 4) if there is none."""
    if len(boxes) == 0:
        return boxes.reshape(0, 4)
    return boxes[[int(np.argmax(boxes[:, 2] * boxes[:, 3]))]]


FER_EYES: np.ndarray = np.array([[15.35, 19.14], [32.43, 19.14]])
"""Where FER-2013 puts the eyes, ``x, y`` in pixels of its 48x48 faces: the subject's right eye (on the
image's left) then left eye. Measured by ``experiments/alignment_template.py`` (``reports/alignment/``):
the median BlazeFace eye keypoints of 2,780 Training faces (x 15.35 and 32.43, y 19.28 and 19.00), the
eye line levelled to their mean height (the median roll is -1 degree)."""


def align_face(grey: np.ndarray, eyes: np.ndarray) -> np.ndarray:
    """Warp one face onto FER-2013's geometry: the similarity transform (rotation, scale, shift) that puts
    its eyes on :data:`FER_EYES`, so a tilted head comes out upright and at FER-2013's scale.

    A large face is warped at k times 48 px (the largest k <= 8 that does not enlarge it) and then
    shrunk to 48 px with ``cv2.INTER_AREA``, so that no detail aliases; pixels beyond the image repeat
    its edge.

    Args:
        grey: (H, W) uint8 image.
        eyes: (2, 2) float ``x, y`` of the subject's right eye then left eye, in the image's pixels.

    Returns:
        (48, 48) uint8 face.
    """
    source = complex(*eyes[1]) - complex(*eyes[0])
    target = complex(*FER_EYES[1]) - complex(*FER_EYES[0])
    factor = int(np.clip(np.floor(abs(source) / abs(target)), 1, 8))  # output pixels per 48x48 pixel
    rotation = target * factor / source  # complex multiplier: scale and angle
    shift = complex(*FER_EYES[0]) * factor - rotation * complex(*eyes[0])
    matrix = np.array([[rotation.real, -rotation.imag, shift.real], [rotation.imag, rotation.real, shift.imag]])
    side = FACE_SIZE * factor
    warped = cv2.warpAffine(grey, matrix, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return warped if factor == 1 else cv2.resize(warped, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)


def crop_faces(
    grey: np.ndarray, boxes: np.ndarray, *, margin: float = 0.1, eyes: np.ndarray | None = None
) -> np.ndarray:
    """Cut each face out of an image as a 48x48 FER-2013 face: aligned on its eyes, or its box with a margin.

    Args:
        grey: (H, W) uint8 image (a BGR image is converted to grey).
        boxes: int (K, 4) boxes ``x, y, w, h`` in pixels.
        margin: added on every side as a fraction of the box width (left/right) and height
            (top/bottom); the enlarged box is clipped to the image. On FER-2013's own faces the Haar
            cascade's box is the whole 48x48 face (``reports/alignment/template.json``: margin 0).
        eyes: (K, 2, 2) eye centres per face (:meth:`BlazeFaceDetector.detect_eyes`); a face whose eyes
            are given (and lie at least 4 px apart) is aligned by :func:`align_face` instead of cropped.

    Returns:
        uint8 array (K, 48, 48), resized with ``cv2.INTER_AREA``.
    """
    grey = to_grey(grey)
    height, width = grey.shape
    faces = np.empty((len(boxes), FACE_SIZE, FACE_SIZE), dtype=np.uint8)
    for index, (x, y, w, h) in enumerate(np.asarray(boxes).reshape(-1, 4)):
        if eyes is not None and np.linalg.norm(eyes[index][1] - eyes[index][0]) >= 4:
            faces[index] = align_face(grey, eyes[index])
            continue
        x0, x1 = max(0, int(x - margin * w)), min(width, int(np.ceil(x + w + margin * w)))
        y0, y1 = max(0, int(y - margin * h)), min(height, int(np.ceil(y + h + margin * h)))
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"box {(x, y, w, h)} lies outside the {width}x{height} image")
        faces[index] = cv2.resize(grey[y0:y1, x0:x1], (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)
    return faces


def resolve_model_path(
    faces_params: FacesParams,
    output_dir: str | os.PathLike[str],
    *,
    model_path: str | os.PathLike[str] | None = None,
    train_run: str | os.PathLike[str] | None = None,
) -> Path:
    """Return the classifier file the photo and video checks use.

    ``model_path`` wins; otherwise ``faces.model``: ``shipped`` is :data:`fer_lib.paths.SHIPPED_MODEL`;
    ``run`` is the model trained in this report (:attr:`fer_lib.paths.ReportLayout.trained_model`, or
    the model of ``train_run`` when a finished training run is reused); anything else is a path,
    relative to the project root.

    Raises:
        ModelError: for ``run`` when that run has no trained model.
    """
    if model_path:
        return Path(model_path)
    if faces_params.model == "shipped":
        return SHIPPED_MODEL
    if faces_params.model == "run":
        path = RunLayout(train_run).model if train_run else ReportLayout(Path(output_dir)).trained_model
        if not path.is_file():
            raise ModelError(
                f"{path}: faces.model is 'run' but this run has no trained model "
                "(run the fine-tuning notebook first, or set faces.model: shipped)"
            )
        return path
    path = Path(faces_params.model).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


@dataclass(frozen=True)
class FaceResult:
    """One classified face.

    Attributes:
        box: ``(x, y, w, h)`` in pixels of the analysed image.
        probabilities: float32 (7,) in :data:`fer_lib.labels.EMOTIONS` order.
        label: the most probable emotion.
        score: its probability (0-1).
    """

    box: tuple[int, int, int, int]
    probabilities: np.ndarray
    label: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict: box, label, score and one probability per emotion."""
        x, y, w, h = self.box
        return {
            "box": {"x": x, "y": y, "w": w, "h": h},
            "label": self.label,
            "score": round(self.score, 4),
            "probabilities": {name: round(float(p), 4) for name, p in zip(EMOTIONS, self.probabilities, strict=True)},
        }


def face_results(boxes: np.ndarray, probabilities: np.ndarray) -> list[FaceResult]:
    """Pair int boxes (K, 4) with probabilities (K, 7) into :class:`FaceResult` objects."""
    results = []
    for box, probs in zip(boxes, probabilities, strict=True):
        best = int(np.argmax(probs))
        results.append(FaceResult(tuple(int(v) for v in box), probs, EMOTIONS[best], float(probs[best])))
    return results


def classify_boxes(
    image: np.ndarray,
    boxes: np.ndarray,
    classifier: EmotionClassifier,
    *,
    margin: float = 0.1,
    eyes: np.ndarray | None = None,
) -> list[FaceResult]:
    """Crop (or, with ``eyes`` (K, 2, 2), align) the faces of boxes (K, 4) out of a BGR or grey image and
    classify them in one model call (see :func:`crop_faces`)."""
    return face_results(boxes, classifier.predict_proba(crop_faces(image, boxes, margin=margin, eyes=eyes)))


def detect_faces(detector: FaceDetector, image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The boxes (K, 4) a detector finds, and the eyes (K, 2, 2) to align them on when it aligns faces
    (a :class:`BlazeFaceDetector` made with ``align=True``), else None."""
    if getattr(detector, "align", False):
        return detector.detect_eyes(image)
    return detector.detect(image), None


def analyse_image(
    image_bgr: np.ndarray,
    detector: FaceDetector,
    classifier: EmotionClassifier,
    *,
    margin: float = 0.1,
    largest_only: bool = False,
) -> list[FaceResult]:
    """Detect, crop and classify every face of a BGR (H, W, 3) uint8 image.

    Args:
        margin: crop margin as a fraction of the box side (see :func:`crop_faces`).
        largest_only: keep only the face with the largest box.

    Returns:
        One :class:`FaceResult` per face, in the detector's order (empty if there is no face).
    """
    boxes, eyes = detect_faces(detector, image_bgr)
    if largest_only and len(boxes):
        keep = int(np.argmax(boxes[:, 2] * boxes[:, 3]))
        boxes, eyes = boxes[keep : keep + 1], None if eyes is None else eyes[keep : keep + 1]
    return classify_boxes(image_bgr, boxes, classifier, margin=margin, eyes=eyes)


@dataclass(frozen=True)
class PhotoResult:
    """The faces found in one photo.

    Attributes:
        path: the photo file.
        image: the photo as read, BGR (H, W, 3) uint8, at 1/``reduction`` of the file's side.
        faces: its classified faces (empty if none was found), boxes in the pixels of ``image``.
        reduction: file pixels per pixel of ``image`` (1, or 2/4/8 for a very large JPEG, see
            :func:`read_image_reduced`).
    """

    path: Path
    image: np.ndarray
    faces: list[FaceResult]
    reduction: int = 1

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict: path, width, height and the faces (see :meth:`FaceResult.to_dict`), in the
        file's pixels (to within ``reduction`` pixels), and the ``reduction`` it was decoded at."""
        faces = [face.to_dict() for face in self.faces]
        for face in faces:
            face["box"] = {key: value * self.reduction for key, value in face["box"].items()}
        return {
            "path": str(self.path),
            "width": int(self.image.shape[1]) * self.reduction,
            "height": int(self.image.shape[0]) * self.reduction,
            "reduction": self.reduction,
            "faces": faces,
        }


def find_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Yield the given files, and every non-hidden file under the given folders (recursive, sorted).

    A dangling symbolic link under a folder is yielded too, so that reading it says what is wrong
    rather than the file silently missing from the results."""
    for path in map(Path, paths):
        if path.is_dir():
            yield from (
                found
                for found in sorted(path.rglob("*"))
                if (found.is_file() or (found.is_symlink() and not found.exists()))
                and not any(part.startswith(".") for part in found.relative_to(path).parts)
            )
        else:
            yield path


def analyse_photos(
    paths: Iterable[str | os.PathLike[str]],
    detector: FaceDetector,
    classifier: EmotionClassifier,
    *,
    margin: float = 0.1,
    largest_only: bool = False,
    on_error: Callable[[MediaError], None] | None = None,
) -> Iterator[PhotoResult]:
    """Read and analyse photos one at a time (see :func:`analyse_image`).

    Args:
        paths: image files (use :func:`find_files` to expand folders).
        on_error: called with the error of each file that is not a readable image, which is then
            skipped; None raises it instead.

    Raises:
        MediaError: for an unreadable file when ``on_error`` is None.
    """
    for path in map(Path, paths):
        try:
            image, reduction = read_image_reduced(path)
        except MediaError as error:
            if on_error is None:
                raise
            on_error(error)
            continue
        faces = analyse_image(image, detector, classifier, margin=margin, largest_only=largest_only)
        yield PhotoResult(path, image, faces, reduction)


def photos_table(photos: Iterable[PhotoResult]) -> pd.DataFrame:
    """One row per face (``photo``, ``face`` number, box in the file's pixels, ``label``, ``score``, one column
    per emotion); a photo without faces gets one row with ``face`` 0 and an empty label."""
    rows = []
    for photo in photos:
        for number, face in enumerate(photo.faces, start=1):
            rows.append(
                {
                    "photo": photo.path.name,
                    "face": number,
                    **dict(zip("xywh", (value * photo.reduction for value in face.box), strict=True)),
                    "label": face.label,
                    "score": face.score,
                    **{name: float(p) for name, p in zip(EMOTIONS, face.probabilities, strict=True)},
                }
            )
        if not photo.faces:
            rows.append({"photo": photo.path.name, "face": 0, "label": ""})
    table = pd.DataFrame(rows, columns=["photo", "face", *"xywh", "label", "score", *EMOTIONS])
    return table.astype({key: "Int64" for key in "xywh"})


def write_sample_photos(folder: str | os.PathLike[str]) -> list[Path]:
    """Write scikit-image's :data:`SAMPLE_PHOTOS` into ``folder`` as PNG files; return their paths."""
    from skimage import data  # the photos ship with scikit-image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in SAMPLE_PHOTOS:
        photo = getattr(data, name)()
        paths.append(
            write_image(folder / f"{name}.png", photo if photo.ndim == 2 else cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
        )
    return paths


COMPANION_FILES: frozenset[str] = frozenset({"labels.csv", "readme.md"})
"""Lower-case names of the files that describe a folder of photos: not read as photos when a folder is searched."""


def project_path(path: str | os.PathLike[str]) -> Path:
    """Return ``path`` with ``~`` expanded, relative paths taken from the project root (``..`` folded)."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else Path(os.path.normpath(PROJECT_ROOT / path))


def given_paths(paths: Iterable[str], faces_params: FacesParams, key: str) -> list[Path] | None:
    """Resolve the paths of ``faces.<key>`` (relative to the project root).

    Returns:
        The paths, or None when there are none, or when one is missing and ``faces.if_missing`` is
        ``default`` (the caller then uses its built-in inputs).

    Raises:
        MediaError: naming the first missing path when ``faces.if_missing`` is ``error``.
    """
    resolved = [project_path(path) for path in paths]
    missing = [path for path in resolved if not path.exists()]
    if not resolved or (missing and faces_params.if_missing == "default"):
        return None
    if missing:
        raise MediaError(
            f"{missing[0]}: faces.{key} names a file or folder that does not exist "
            "(set faces.if_missing: default to fall back to the built-in inputs)"
        )
    return resolved


def photo_paths(faces_params: FacesParams, inputs_dir: str | os.PathLike[str]) -> list[Path]:
    """Return the photos to check: ``faces.images`` (files or folders, relative to the project root)
    expanded with :func:`find_files` (skipping :data:`COMPANION_FILES` in folders), or else
    :data:`SAMPLE_PHOTOS` written into ``inputs_dir`` (see :func:`given_paths` for missing paths)."""
    given = given_paths(faces_params.images, faces_params, "images")
    if given is None:
        return write_sample_photos(inputs_dir)
    return find_photos(given)


def find_photos(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """:func:`find_files`, leaving out the :data:`COMPANION_FILES` found in folders (files named are kept)."""
    named = [Path(path) for path in paths]
    return [path for path in find_files(named) if path in named or path.name.lower() not in COMPANION_FILES]


def contact_sheet(images: list[np.ndarray], captions: list[str], *, columns: int = 5, tile: int = 240) -> np.ndarray:
    """Tile BGR images into one BGR sheet, each fitted into a ``tile`` x ``tile`` cell with its caption below.

    Args:
        images: BGR or grey uint8 images of any sizes.
        captions: one short line per image (long lines are cut to the cell).
        columns: cells per row.
        tile: cell side in pixels.

    Returns:
        uint8 (rows * (tile + 22), columns * tile, 3), white background.
    """
    rows = max(1, -(-len(images) // columns))
    caption_height = 22
    sheet = np.full((rows * (tile + caption_height), columns * tile, 3), 255, np.uint8)
    for index, (image, caption) in enumerate(zip(images, captions, strict=True)):
        image = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        scale = (tile - 4) / max(image.shape[:2])
        fitted = cv2.resize(
            image,
            (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))),
            interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
        )
        row, column = divmod(index, columns)
        top = row * (tile + caption_height) + (tile - fitted.shape[0]) // 2
        left = column * tile + (tile - fitted.shape[1]) // 2
        sheet[top : top + fitted.shape[0], left : left + fitted.shape[1]] = fitted
        text_y = row * (tile + caption_height) + tile + 15
        cv2.putText(
            sheet,
            caption[: int(tile / 7)],
            (column * tile + 3, text_y),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    return sheet


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a photo as an 8-bit BGR array (H, W, 3), decoded within bounded memory (:func:`read_image_reduced`)."""
    return read_image_reduced(path)[0]


def read_image_reduced(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Read a photo as an 8-bit BGR array, at a reduced size when it is too large to decode whole.

    The header (size, bands, bit depth, frames) is read first, with Pillow, and nothing is decoded
    whose pixels exceed :data:`MAX_MEGAPIXELS` or whose decoded buffer exceeds :data:`MAX_DECODED_MB`.
    A larger JPEG is decoded at 1/2, 1/4 or 1/8 of its side by libjpeg's DCT scaling (OpenCV's
    ``IMREAD_REDUCED_COLOR_*``), which never holds the full-size pixels: faces need few pixels, and a
    200-megapixel phone photo decodes at 1/2 or 1/4. Other formats cannot be decoded at reduced
    size and are refused over the limit. Grey, 16-bit and RGBA files become 8-bit BGR (alpha dropped),
    EXIF orientation is applied; a multi-frame file gives its first frame.

    Returns:
        The image (H, W, 3) uint8 and the reduction: file pixels per image pixel along each side (1, 2,
        4 or 8); boxes found in the image times the reduction are in the file's pixels.

    Raises:
        MediaError: naming the file, if it is missing, not a regular file, empty, not an image,
            truncated, in a format neither Pillow nor OpenCV reads, or too large even reduced.
    """
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise MediaError(f"{path}: a symbolic link to {os.readlink(path)}, which does not exist")
    if not path.exists():
        raise MediaError(f"{path}: file not found")
    if not path.is_file():
        raise MediaError(f"{path}: not a regular file (a folder, pipe or device), not an image")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: empty file (0 bytes), not an image")
    header = read_header(path)
    reduction = 1
    while header.megapixels / reduction**2 > MAX_MEGAPIXELS or header.decoded_mb / reduction**2 > MAX_DECODED_MB:
        if header.format != "JPEG" or reduction == 8:
            why = (
                "even at 1/8 of its side"
                if header.format == "JPEG"
                else f"and a {header.format} file cannot be decoded"
            )
            raise MediaError(
                f"{path}: image is {header.width}x{header.height} ({header.megapixels:.0f} megapixels), over the "
                f"{MAX_MEGAPIXELS:.0f}-megapixel limit ({header.decoded_mb:.0f} MB decoded, at most "
                f"{MAX_DECODED_MB:.0f}) {why} at reduced size; downscale it first (faces need far fewer pixels)"
            )
        reduction *= 2
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise MediaError(f"{path}: cannot be read ({error.strerror or error})") from None
    try:
        image = cv2.imdecode(data, _REDUCED_COLOR[reduction])
    except cv2.error:
        image = None
    if image is None:
        raise MediaError(f"{path}: not a readable image (not an image, truncated, or a format OpenCV cannot decode)")
    return image, reduction


MAX_DECODED_MB: float = 300.0
"""Largest decoded buffer (width x height x bands x bytes per sample, from the header) :func:`read_image_reduced`
lets OpenCV allocate: a 50-megapixel 16-bit RGB image."""

_REDUCED_COLOR: dict[int, int] = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}
"""OpenCV's decode flag for each reduction of the side."""


def annotate(image_bgr: np.ndarray, results: list[FaceResult]) -> np.ndarray:
    """Return a copy of a BGR image with each face's box and ``label score`` drawn on it."""
    canvas = image_bgr.copy() if image_bgr.ndim == 3 else cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2BGR)
    thickness = max(1, round(min(canvas.shape[:2]) / 300))
    for result in results:
        x, y, w, h = result.box
        colour = EMOTION_COLOURS[result.label]
        cv2.rectangle(canvas, (x, y), (x + w, y + h), colour, thickness)
        text = f"{result.label} {result.score:.0%}"
        font_scale = max(0.4, w / 180)
        (text_w, text_h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        top = y - text_h - baseline - 2 if y - text_h - baseline - 2 >= 0 else y + h
        cv2.rectangle(canvas, (x, top), (x + text_w + 4, top + text_h + baseline + 2), colour, cv2.FILLED)
        ink = (0, 0, 0) if 0.114 * colour[0] + 0.587 * colour[1] + 0.299 * colour[2] > 128 else (255, 255, 255)
        cv2.putText(
            canvas, text, (x + 2, top + text_h + 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale, ink, thickness, cv2.LINE_AA
        )
    return canvas


def unused_path(path: str | os.PathLike[str]) -> Path:
    """Return ``path``, or ``stem-1.ext``, ``stem-2.ext``... whichever does not exist yet (never overwrite)."""
    path = Path(path)
    candidate, number = path, 0
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
    return candidate


def write_image(path: str | os.PathLike[str], image_bgr: np.ndarray) -> Path:
    """Write a BGR image to ``path`` or, if that exists, to the next unused name; return the path written.

    Missing parent folders are created.

    Raises:
        MediaError: if OpenCV cannot write that format or location.
    """
    target = unused_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        written = cv2.imwrite(str(target), image_bgr)
    except cv2.error:
        written = False
    if not written:
        raise MediaError(f"{target}: cannot write image (unknown extension or unwritable folder)")
    return target
