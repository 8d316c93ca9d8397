"""The labelled-photo check: how the whole chain (detect, crop, classify) does on real photos.

A photo's label comes from a ``labels.csv`` beside it (columns ``file``, a path relative to the
CSV's folder, and ``label``, an emotion name) or else from the name of its folder (``happy/x.jpg``).
The *main face* of a photo (its largest box) is compared with the label: the detection rate is the
share of labelled photos with at least one face; accuracy and macro-F1 are given over the photos
with a face and, stricter, over all labelled photos with a missed face counted as wrong.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from fer_lib.classifiers import EmotionClassifier
from fer_lib.errors import DataError, MediaError
from fer_lib.faces import (
    FaceDetector,
    FaceResult,
    PhotoResult,
    annotate,
    classify_boxes,
    contact_sheet,
    detect_faces,
    read_image,
)
from fer_lib.labels import EMOTIONS, NUM_CLASSES

MISSED: str = "no face"
"""The predicted label of a labelled photo in which the detector found no face."""


def photo_labels(paths: Iterable[str | os.PathLike[str]]) -> dict[Path, str]:
    """Return the emotion label of each photo that has one (see the module docstring).

    Raises:
        DataError: naming the file, for a ``labels.csv`` without ``file`` and ``label`` columns or
            with a label that is not an emotion.
    """
    labels: dict[Path, str] = {}
    tables: dict[Path, dict[Path, str]] = {}
    for path in map(Path, paths):
        folder_labels = _folder_table(path, tables)
        if path.resolve() in folder_labels:
            labels[path] = folder_labels[path.resolve()]
        elif path.parent.name in EMOTIONS:
            labels[path] = path.parent.name
    return labels


def _folder_table(path: Path, tables: dict[Path, dict[Path, str]]) -> dict[Path, str]:
    """The labels of the nearest ``labels.csv`` in ``path``'s folder or its parents (resolved path -> label)."""
    for folder in path.resolve().parents:
        if folder in tables:
            return tables[folder]
        csv_path = folder / "labels.csv"
        if csv_path.is_file():
            tables[folder] = _read_labels_csv(csv_path)
            return tables[folder]
    return {}


def _read_labels_csv(csv_path: Path) -> dict[Path, str]:
    """Read a ``labels.csv`` (``file``, ``label``) into resolved path -> label.

    Raises:
        DataError: naming the CSV (and the line, counting the header as line 1), for missing columns,
            a label that is not an emotion, a file listed twice, or a row whose file does not exist.
    """
    table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    if not {"file", "label"} <= set(table.columns):
        raise DataError(f"{csv_path}: labels.csv needs the columns 'file' and 'label', has {list(table.columns)}")
    unknown = sorted(set(table["label"].str.lower()) - set(EMOTIONS))
    if unknown:
        raise DataError(f"{csv_path}: labels {unknown} are not emotions ({', '.join(EMOTIONS)})")
    labels: dict[Path, str] = {}
    first_line: dict[Path, int] = {}
    for line, (name, label) in enumerate(zip(table["file"], table["label"], strict=True), start=2):
        path = (csv_path.parent / name).resolve()
        if path in first_line:
            raise DataError(f"{csv_path}: line {line}: '{name}' is listed twice (first on line {first_line[path]})")
        if not path.is_file():
            raise DataError(f"{csv_path}: line {line}: '{name}' does not exist beside the CSV")
        labels[path], first_line[path] = label.lower(), line
    return labels


def faces_by_photo(photos: Iterable[PhotoResult]) -> dict[Path, list[FaceResult]]:
    """Map each photo's path to its faces (what :func:`labelled_table` needs, without the pixels)."""
    return {photo.path: photo.faces for photo in photos}


def labelled_table(found: dict[Path, list[FaceResult]], labels: dict[Path, str]) -> pd.DataFrame:
    """One row per labelled photo of ``found`` (photo -> its faces): ``photo``, ``true``, ``faces``
    found, ``predicted`` (the main face's label, or :data:`MISSED`), ``score`` and ``correct``."""
    rows = []
    for path, faces in found.items():
        if path not in labels:
            continue
        main = max(faces, key=lambda face: face.box[2] * face.box[3], default=None)
        rows.append(
            {
                "photo": str(path),
                "true": labels[path],
                "faces": len(faces),
                "predicted": main.label if main else MISSED,
                "score": main.score if main else np.nan,
            }
        )
    table = pd.DataFrame(rows, columns=["photo", "true", "faces", "predicted", "score"])
    table["correct"] = table["true"] == table["predicted"]
    return table


def labelled_metrics(table: pd.DataFrame) -> dict[str, float | int]:
    """Headline figures of a :func:`labelled_table`.

    Returns:
        ``photos`` (labelled), ``detected`` (with a face), ``detection_rate``, ``accuracy`` and
        ``macro_f1`` over the detected photos, ``accuracy_all`` and ``macro_f1_all`` over all labelled
        photos (a miss counts as wrong), ``exactly_one_face`` (photos where exactly one face was found).
        Macro-F1 averages over the emotions that occur as labels.
    """
    from sklearn.metrics import accuracy_score, f1_score  # importing scikit-learn takes a second

    classes = sorted(set(table["true"]), key=EMOTIONS.index)
    detected = table[table["predicted"] != MISSED]

    def scores(part: pd.DataFrame) -> tuple[float, float]:
        if part.empty:
            return float("nan"), float("nan")
        return (
            float(accuracy_score(part["true"], part["predicted"])),
            float(f1_score(part["true"], part["predicted"], labels=classes, average="macro", zero_division=0)),
        )

    accuracy, macro_f1 = scores(detected)
    accuracy_all, macro_f1_all = scores(table)
    return {
        "photos": int(len(table)),
        "detected": int(len(detected)),
        "detection_rate": float(len(detected) / len(table)) if len(table) else float("nan"),
        "exactly_one_face": int((table["faces"] == 1).sum()),
        "accuracy": accuracy,
        "macro_f1": macro_f1,
        "accuracy_all": accuracy_all,
        "macro_f1_all": macro_f1_all,
    }


def labelled_confusion(table: pd.DataFrame) -> np.ndarray:
    """(7, 7) int confusion matrix of the detected photos: rows true emotion, columns predicted."""
    from sklearn.metrics import confusion_matrix

    detected = table[table["predicted"] != MISSED]
    if detected.empty:
        return np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    return confusion_matrix(detected["true"], detected["predicted"], labels=list(EMOTIONS))


def mistakes_sheet(
    photos: list[PhotoResult], table: pd.DataFrame, *, count: int = 20, columns: int = 5, tile: int = 200
) -> np.ndarray:
    """A BGR contact sheet of annotated labelled photos, mistakes (misses, then wrong labels) first.

    Args:
        count: photos shown at most.

    Returns:
        uint8 BGR image (see :func:`fer_lib.faces.contact_sheet`).
    """
    by_path = {str(photo.path): photo for photo in photos}
    order = table.assign(rank=np.where(table["predicted"] == MISSED, 0, np.where(table["correct"], 2, 1)))
    order = order.sort_values(["rank", "photo"], kind="stable").head(count)
    images, captions = [], []
    for row in order.itertuples():
        photo = by_path[row.photo]
        images.append(annotate(photo.image, photo.faces))
        mark = "ok" if row.correct else "WRONG"
        captions.append(f"{mark} {row.true} -> {row.predicted} {Path(row.photo).stem}")
    return contact_sheet(images, captions, columns=columns, tile=tile)


def compare_detectors(
    paths: list[Path],
    detectors: dict[str, FaceDetector],
    classifier: EmotionClassifier,
    labels: dict[Path, str],
    *,
    margin: float = 0.1,
) -> pd.DataFrame:
    """Run the photos through each detector (and the labelled ones through the classifier).

    Args:
        paths: the photos (unreadable ones are skipped).
        detectors: name -> detector.
        labels: photo -> emotion, for the photos that have a label (may be empty).

    Returns:
        One row per detector: ``photos``, ``faces_found``, photos with ``exactly_one_face`` and with
        ``no_face``, ``surplus_boxes`` (faces found beyond one per photo, summed: false boxes when
        each photo shows one person), ``detect_ms`` (median milliseconds per photo of detection
        alone) and, when some photos are labelled, ``accuracy``, ``macro_f1``, ``accuracy_all`` and
        ``macro_f1_all`` of :func:`labelled_metrics`.
    """
    images = {}
    for path in paths:
        try:
            images[path] = read_image(path)
        except MediaError:
            continue
    rows = []
    for name, detector in detectors.items():
        found: dict[Path, list[FaceResult]] = {}
        counts, durations = [], []
        for path, image in images.items():
            start = time.perf_counter()
            boxes, eyes = detect_faces(detector, image)
            durations.append((time.perf_counter() - start) * 1000)
            counts.append(len(boxes))
            if path in labels:
                found[path] = classify_boxes(image, boxes, classifier, margin=margin, eyes=eyes)
        counts = np.array(counts, dtype=np.int64)
        row = {
            "detector": name,
            "photos": len(counts),
            "faces_found": int(counts.sum()),
            "exactly_one_face": int((counts == 1).sum()),
            "no_face": int((counts == 0).sum()),
            "surplus_boxes": int(np.clip(counts - 1, 0, None).sum()),
            "detect_ms": float(np.median(durations)) if durations else float("nan"),
        }
        if labels:
            scores = labelled_metrics(labelled_table(found, labels))
            row.update({key: scores[key] for key in ("accuracy", "macro_f1", "accuracy_all", "macro_f1_all")})
        rows.append(row)
    return pd.DataFrame(rows).set_index("detector")
