"""Inference-mode evaluation per split, with scikit-learn metrics.

Every figure produced here is an inference-mode figure (BatchNorm moving averages, no
dropout) for one named split; nothing is pooled across splits unless a caller says so.
"""
from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score, log_loss

from fer_lib.classifiers import BATCH_SIZE, KerasClassifier
from fer_lib.dataset import FaceDataset
from fer_lib.labels import EMOTIONS, NUM_CLASSES
from fer_lib.params import TestTimeAugmentation


def split_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, Any]:
    """Metrics of one split: n, accuracy, macro-F1, log loss, per-class report and confusion matrix.

    Args:
        labels: (N,) true canonical labels.
        probabilities: (N, 7) predicted probabilities.
    """
    predicted = probabilities.argmax(axis=1)
    classes = list(range(NUM_CLASSES))
    return {
        "n": int(len(labels)),
        "accuracy": float(accuracy_score(labels, predicted)),
        "macro_f1": float(f1_score(labels, predicted, labels=classes, average="macro", zero_division=0)),
        "log_loss": float(log_loss(labels, probabilities, labels=classes)),
        "report": classification_report(labels, predicted, labels=classes, target_names=list(EMOTIONS),
                                        output_dict=True, zero_division=0),
        "confusion": confusion_matrix(labels, predicted, labels=classes).tolist(),
    }


def evaluate_splits(model: keras.Model, dataset: FaceDataset, *, tta: TestTimeAugmentation = "none",
                    batch_size: int = BATCH_SIZE, splits: list[str] | None = None) -> dict[str, dict[str, Any]]:
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
        results[split] = {**split_metrics(part.labels, probabilities), "mode": "inference", "tta": tta,
                          "probabilities": probabilities}
    return results


def evaluate_recalibrated(model_path: str | os.PathLike[str], dataset: FaceDataset, *,
                          recalibration_faces: np.ndarray, tta: TestTimeAugmentation = "none",
                          splits: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """:func:`evaluate_splits` of the saved model after recomputing its BatchNorm statistics.

    Loads a fresh copy of ``model_path`` (the caller's model is left as it is), replaces every
    BatchNorm moving mean/variance by the average over ``recalibration_faces``
    (:func:`fer_lib.model.recalibrate_batchnorm`; no other weight changes) and scores it in
    inference mode. The difference from the plain scores is the part of the error due to stale
    moving statistics.

    Args:
        model_path: a ``.keras`` model of this project.
        dataset: the faces to score, per split.
        recalibration_faces: uint8 (N, 48, 48) faces, e.g. the Training faces the model was fitted on.
    """
    from fer_lib.model import load_model, recalibrate_batchnorm

    model = load_model(model_path)
    recalibrate_batchnorm(model, recalibration_faces)
    return evaluate_splits(model, dataset, tta=tta, splits=splits)


def mode_label(tta: TestTimeAugmentation) -> str:
    """How a figure was measured, for table headers and titles: ``"inference mode"`` plus any TTA."""
    return "inference mode" if tta == "none" else f"inference mode, test-time augmentation {tta}"


def without_arrays(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Drop the per-face probability arrays from :func:`evaluate_splits` output (for JSON)."""
    return {split: {key: value for key, value in metrics.items() if key != "probabilities"}
            for split, metrics in results.items()}


def most_confident_mistakes(probabilities: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` wrong predictions made with the highest confidence, most confident first."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    confidence = probabilities[wrong, predicted[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")[:k]]
