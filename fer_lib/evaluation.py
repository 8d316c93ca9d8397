"""Inference-mode evaluation per split, with scikit-learn metrics.

Every figure produced here is an inference-mode figure (BatchNorm moving averages, no
dropout) for one named split; nothing is pooled across splits unless a caller says so.
"""

from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score, log_loss

from fer_lib.classifiers import BATCH_SIZE, EmotionClassifier, KerasClassifier
from fer_lib.dataset import FaceDataset
from fer_lib.labels import EMOTIONS, FACE_SIZE, NUM_CLASSES
from fer_lib.params import TestTimeAugmentation, mode_label


def split_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, Any]:
    """Metrics of one split: n, accuracy, macro-F1, log loss, per-class report and confusion matrix.

    Macro-F1 averages over the classes that occur among ``labels`` (named in ``macro_f1_classes``): a
    class the faces lack has no F1 to average (on FER-2013's splits all 7 occur).

    Args:
        labels: (N,) true canonical labels.
        probabilities: (N, 7) predicted probabilities.
    """
    predicted = probabilities.argmax(axis=1)
    classes = list(range(NUM_CLASSES))
    present = sorted({int(label) for label in labels})
    return {
        "n": int(len(labels)),
        "accuracy": float(accuracy_score(labels, predicted)),
        "macro_f1": float(f1_score(labels, predicted, labels=present, average="macro", zero_division=0)),
        "macro_f1_classes": [EMOTIONS[label] for label in present],
        "log_loss": float(log_loss(labels, probabilities, labels=classes)),
        "report": classification_report(
            labels, predicted, labels=classes, target_names=list(EMOTIONS), output_dict=True, zero_division=0
        ),
        "confusion": confusion_matrix(labels, predicted, labels=classes).tolist(),
    }


def evaluate_splits(
    model: keras.Model,
    dataset: FaceDataset,
    *,
    tta: TestTimeAugmentation = "none",
    batch_size: int = BATCH_SIZE,
    splits: list[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Evaluate ``model`` on each split of ``dataset`` (or just ``splits``), in inference mode.

    The probabilities are :meth:`fer_lib.classifiers.KerasClassifier.predict_proba` (with ``tta``).

    Returns:
        ``{split: split_metrics(...) | {"probabilities": (n, 7) array, "mode": "inference", "tta": tta}}``.
    """
    classifier, results = KerasClassifier(model), {}
    for split in dataset.splits if splits is None else splits:
        part = dataset.split(split)
        if len(part) == 0:
            continue
        probabilities = classifier.predict_proba(part.faces, batch_size=batch_size, tta=tta)
        results[split] = {
            **split_metrics(part.labels, probabilities),
            "mode": "inference",
            "tta": tta,
            "probabilities": probabilities,
        }
    return results


MERGED_SPLITS: tuple[str, ...] = ("PublicTest", "PrivateTest")
"""Paper A's "test" set: both held-out splits merged (7,178 faces)."""


def merged_accuracy(
    scores: dict[str, dict[str, Any]], *, splits: tuple[str, ...] = MERGED_SPLITS
) -> dict[str, Any] | None:
    """Accuracy over several splits pooled, from each split's ``n`` and ``accuracy``.

    Args:
        scores: ``{split: {"n": faces, "accuracy": 0-1, ...}}`` (e.g. :func:`fer_lib.evaluation.evaluate_splits`).

    Returns:
        ``{"splits": [...], "n": faces, "accuracy": 0-1}``, or None if a split is missing.
    """
    if not set(splits) <= set(scores):
        return None
    n = sum(scores[split]["n"] for split in splits)
    accuracy = sum(scores[split]["accuracy"] * scores[split]["n"] for split in splits) / n
    return {"splits": list(splits), "n": int(n), "accuracy": float(accuracy)}


def summary(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The headline of :func:`evaluate_splits` per split: ``{split: {"n", "accuracy", "macro_f1"}}``."""
    return {
        split: {"n": result["n"], "accuracy": result["accuracy"], "macro_f1": result["macro_f1"]}
        for split, result in results.items()
    }


def leakage_table(
    scores: dict[str, dict[str, Any]], deduplicated: dict[str, dict[str, Any]], tta: TestTimeAugmentation
) -> pd.DataFrame:
    """Accuracy per held-out split with all faces and without the faces leaked from Training, and how
    many faces were dropped (``scores`` and ``deduplicated`` from :func:`summary`, the second scored on the
    dataset without the faces whose pixels also occur in Training:
    :func:`fer_lib.audit.drop_cross_split_duplicates`)."""
    return pd.DataFrame(
        {
            "all faces": {split: scores[split]["accuracy"] for split in deduplicated},
            "without Training duplicates": {split: values["accuracy"] for split, values in deduplicated.items()},
            "faces dropped": {split: scores[split]["n"] - values["n"] for split, values in deduplicated.items()},
        }
    ).rename_axis(f"accuracy ({mode_label(tta)})")


def evaluation_record(
    model_path: str | os.PathLike[str],
    *,
    tta: TestTimeAugmentation,
    synthetic: bool,
    scores: dict[str, dict[str, Any]],
    deduplicated: dict[str, dict[str, Any]],
    paper: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What notebook 3 records in ``metrics/evaluation.json``: mode, TTA, model, dataset kind, ``splits``
    (:func:`summary`), ``merged_held_out`` (PublicTest + PrivateTest pooled, when both are there),
    ``paper`` (:func:`fer_lib.study.papers.measure_reproduction`, for a paper's recipe) and
    ``without_cross_split_duplicates``."""
    merged = merged_accuracy(scores)
    return {
        "mode": "inference",
        "tta": tta,
        "model": str(model_path),
        "dataset": "synthetic" if synthetic else "fer2013",
        "splits": scores,
        **({"merged_held_out": merged} if merged else {}),
        **({"paper": paper} if paper else {}),
        "without_cross_split_duplicates": deduplicated,
    }


def occlusion_saliency(
    classifier: EmotionClassifier, faces: np.ndarray, classes: np.ndarray, *, patch: int = 12, stride: int = 4
) -> np.ndarray:
    """Where the model looks: how much each region of a face supports a class (occlusion sensitivity).

    A ``patch`` x ``patch`` square of the face's mean grey is slid over it in steps of ``stride``
    pixels; a pixel's saliency is the mean drop of the class's probability over the positions that
    cover it. It needs only the classifier's probabilities, so it works for every Keras backend and
    for TFLite files alike (Grad-CAM needs gradients, which each backend computes its own way).

    Args:
        classifier: the model (its :meth:`~fer_lib.classifiers.EmotionClassifier.predict_proba`).
        faces: (N, 48, 48) grey faces, 0-255.
        classes: (N,) int class per face whose support is mapped (e.g. the predicted or the true one).
        patch: side of the occluding square, pixels.
        stride: step between its positions, pixels.

    Returns:
        (N, 48, 48) float32 probability drops (positive: the region supports the class; negative: it
        speaks against it), ``N x positions`` faces scored in one call per batch.
    """
    faces = np.asarray(faces, dtype=np.float32)
    starts = range(0, FACE_SIZE - patch + 1, stride)
    corners = [(top, left) for top in starts for left in starts]
    occluded = np.repeat(faces[:, None], len(corners), axis=1)  # (N, P, 48, 48)
    for index, (top, left) in enumerate(corners):
        occluded[:, index, top : top + patch, left : left + patch] = faces.mean(axis=(1, 2))[:, None, None]
    classes = np.asarray(classes, dtype=np.int64)
    base = classifier.predict_proba(faces)[np.arange(len(faces)), classes]
    scores = classifier.predict_proba(occluded.reshape(-1, FACE_SIZE, FACE_SIZE)).reshape(len(faces), len(corners), -1)
    drops = base[:, None] - scores[np.arange(len(faces))[:, None], np.arange(len(corners)), classes[:, None]]  # (N, P)
    total = np.zeros((len(faces), FACE_SIZE, FACE_SIZE), np.float64)
    coverage = np.zeros((FACE_SIZE, FACE_SIZE), np.float64)
    for index, (top, left) in enumerate(corners):
        total[:, top : top + patch, left : left + patch] += drops[:, index, None, None]
        coverage[top : top + patch, left : left + patch] += 1
    return (total / np.maximum(coverage, 1)).astype(np.float32)
