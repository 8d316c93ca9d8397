"""Face crops and their classification: boxes -> 48x48 faces (cropped, or aligned to FER-2013's eyes)
-> probabilities, for one image or a folder of photos; annotated images and contact sheets.

The pipeline is ``detector.detect(image) -> boxes``, ``crop_faces(grey, boxes, margin) -> faces``,
``classifier.predict_proba(faces) -> probabilities``: every face of an image goes through the model in
one call.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from fer_lib.classifiers import EmotionClassifier
from fer_lib.errors import MediaError
from fer_lib.faces.detect import FaceDetector, detect_faces, to_grey
from fer_lib.faces.files import read_image_reduced
from fer_lib.labels import EMOTIONS, FACE_SIZE
from fer_lib.params import TestTimeAugmentation

__all__ = [
    "EMOTION_COLOURS",
    "FER_EYES",
    "align_face",
    "crop_faces",
    "FaceResult",
    "face_results",
    "classify_boxes",
    "analyse_image",
    "PhotoResult",
    "analyse_photos",
    "photos_table",
    "contact_sheet",
    "annotate",
]
"""The public names, re-exported by :mod:`fer_lib.faces`."""

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
    tta: TestTimeAugmentation = "none",
) -> list[FaceResult]:
    """Crop (or, with ``eyes`` (K, 2, 2), align) the faces of boxes (K, 4) out of a BGR or grey image and
    classify them in one model call per view (see :func:`crop_faces`; ``tta``: the views averaged,
    :meth:`~fer_lib.classifiers.EmotionClassifier.predict_proba`)."""
    crops = crop_faces(image, boxes, margin=margin, eyes=eyes)
    return face_results(boxes, classifier.predict_proba(crops, tta=tta))


def analyse_image(
    image_bgr: np.ndarray,
    detector: FaceDetector,
    classifier: EmotionClassifier,
    *,
    margin: float = 0.1,
    largest_only: bool = False,
    tta: TestTimeAugmentation = "none",
) -> list[FaceResult]:
    """Detect, crop and classify every face of a BGR (H, W, 3) uint8 image.

    Args:
        margin: crop margin as a fraction of the box side (see :func:`crop_faces`).
        largest_only: keep only the face with the largest box.
        tta: test-time augmentation of each face: ``none``, ``flip`` (2x the classifier's cost) or
            ``tencrop`` (10x).

    Returns:
        One :class:`FaceResult` per face, in the detector's order (empty if there is no face).
    """
    boxes, eyes = detect_faces(detector, image_bgr)
    if largest_only and len(boxes):
        keep = int(np.argmax(boxes[:, 2] * boxes[:, 3]))
        boxes, eyes = boxes[keep : keep + 1], None if eyes is None else eyes[keep : keep + 1]
    return classify_boxes(image_bgr, boxes, classifier, margin=margin, eyes=eyes, tta=tta)


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


def analyse_photos(
    paths: Iterable[str | os.PathLike[str]],
    detector: FaceDetector,
    classifier: EmotionClassifier,
    *,
    margin: float = 0.1,
    largest_only: bool = False,
    tta: TestTimeAugmentation = "none",
    on_error: Callable[[MediaError], None] | None = None,
) -> Iterator[PhotoResult]:
    """Read and analyse photos one at a time (see :func:`analyse_image`, also for ``tta``).

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
        faces = analyse_image(image, detector, classifier, margin=margin, largest_only=largest_only, tta=tta)
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
