"""TFLite (LiteRT) export and runtime: the fast way to run the classifier on a CPU.

:func:`export_tflite` converts a Keras classifier with Keras' own LiteRT exporter
(``model.export(format="litert")``: Keras model -> SavedModel -> ``tf.lite.TFLiteConverter``), either
in float32 or with int8 weights and activations calibrated on real faces. Both keep float32 input
(N, 48, 48, 1) grey 0-255 and float32 output (N, 7), so callers do not change. Only the export needs
TensorFlow, imported inside the functions; :class:`fer_lib.classifiers.TFLiteClassifier` runs the file
with ai-edge-litert, and :func:`load_fast_classifier` converts a ``.keras`` model once and caches it.
"""

from __future__ import annotations

import hashlib
import os
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from fer_lib.classifiers import EmotionClassifier, KerasClassifier, TFLiteClassifier, load_classifier
from fer_lib.errors import ModelError
from fer_lib.paths import SHIPPED_MODEL, default_cache_dir

if TYPE_CHECKING:
    import keras

CALIBRATION_FACES: int = 500
"""Faces used at most to calibrate int8 activation ranges."""


Quantization = Literal["none", "int8", "dynamic", "int16x8"]
"""How :func:`export_tflite` stores the model: float32; int8 weights and activations (calibrated); int8
weights with float activations (dynamic range, no calibration, as the ``fer`` package ships); or int8
weights with int16 activations (calibrated)."""


def export_tflite(
    model: keras.Model,
    path: str | os.PathLike[str],
    *,
    quantize: Quantization = "none",
    representative_faces: np.ndarray | None = None,
    calibration_faces: int = CALIBRATION_FACES,
) -> Path:
    """Convert a Keras classifier to a ``.tflite`` file.

    Args:
        model: input (N, 48, 48, 1) float grey 0-255, output (N, 7) probabilities.
        path: the ``.tflite`` file to write (overwritten if it exists).
        quantize: ``none`` keeps float32 weights; ``int8`` quantizes weights and activations to int8
            (about 3.5x smaller); ``dynamic`` quantizes the weights alone to int8 (as small; activations
            stay float32, quantized on the fly inside each layer); ``int16x8`` keeps int8 weights with int16
            activations. Every kind keeps float32 input and output, so callers do not change.
        representative_faces: uint8 (N, 48, 48) faces to calibrate activation ranges, required for
            ``int8`` and ``int16x8``. Use training faces, not test faces.
        calibration_faces: how many of ``representative_faces`` calibrate (the first ones).

    Returns:
        The path written.
    """
    import tensorflow as tf  # only the export needs TensorFlow

    path = Path(path)
    if path.suffix != ".tflite":
        raise ModelError(f"{path}: TFLite files must end in .tflite")
    if quantize not in typing.get_args(Quantization):
        raise ValueError(f"quantize must be one of {typing.get_args(Quantization)}, got {quantize!r}")
    options: dict = {"optimizations": [tf.lite.Optimize.DEFAULT]} if quantize != "none" else {}
    if quantize in ("int8", "int16x8"):
        if representative_faces is None or len(representative_faces) == 0:
            raise ValueError(f"{quantize} quantization needs representative_faces to calibrate activation ranges")
        calibration = np.asarray(representative_faces[:calibration_faces], dtype=np.float32)[..., None]
        ops = tf.lite.OpsSet
        supported = (
            ops.TFLITE_BUILTINS_INT8
            if quantize == "int8"
            else ops.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        )
        options |= {
            "representative_dataset": lambda: ([face[None]] for face in calibration),  # one face per batch
            "target_spec": {"supported_ops": [supported]},
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    model.export(str(path), format="litert", verbose=False, **options)
    return path


def tflite_parity(
    keras_model: keras.Model,
    tflite_path: str | os.PathLike[str],
    faces: np.ndarray,
    labels: np.ndarray,
    *,
    num_threads: int | None = None,
) -> dict[str, float | int]:
    """Compare a TFLite file with the Keras model it came from on the same faces.

    Args:
        faces: uint8 (N, 48, 48) grey faces.
        labels: int (N,) canonical label indices.
        num_threads: TFLite threads (None: all CPU cores).

    Returns:
        ``faces``; ``top1_agreement`` (fraction of faces with the same predicted class);
        ``keras_accuracy`` and ``tflite_accuracy``; ``max_abs_probability_difference`` and
        ``mean_abs_probability_difference`` over all faces and classes.
    """
    from sklearn.metrics import accuracy_score  # here: importing scikit-learn takes a second

    keras_probabilities = KerasClassifier(keras_model).predict_proba(faces)
    tflite = TFLiteClassifier(tflite_path, num_threads=num_threads or os.cpu_count() or 1)
    tflite_probabilities = tflite.predict_proba(faces)
    keras_top1 = keras_probabilities.argmax(axis=1)
    tflite_top1 = tflite_probabilities.argmax(axis=1)
    difference = np.abs(keras_probabilities - tflite_probabilities)
    return {
        "faces": int(len(faces)),
        "top1_agreement": float(np.mean(keras_top1 == tflite_top1)),
        "keras_accuracy": float(accuracy_score(labels, keras_top1)),
        "tflite_accuracy": float(accuracy_score(labels, tflite_top1)),
        "max_abs_probability_difference": float(difference.max()),
        "mean_abs_probability_difference": float(difference.mean()),
    }


def load_fast_classifier(
    path: str | os.PathLike[str] | None = None, *, num_threads: int = 1, cache_dir: str | os.PathLike[str] | None = None
) -> EmotionClassifier:
    """Load a classifier on the fast runtime, TFLite (ai-edge-litert), for video and live use.

    A ``.tflite`` file is used as it is. A ``.keras`` model is converted once to a float32 TFLite
    file (same predictions up to float rounding; see :func:`tflite_parity`), cached as
    ``<cache_dir>/tflite/<name>-<first 16 hex digits of the file's sha256>.tflite``, so a changed model
    gets a new conversion; the conversion needs TensorFlow and takes some seconds.

    Args:
        path: the model file; None means :data:`fer_lib.paths.SHIPPED_MODEL`.
        num_threads: TFLite interpreter threads.
        cache_dir: None means env ``FER_CACHE_DIR``, else ``~/.cache/fer-study``.

    Raises:
        ModelError: naming the file, if it is missing or not a loadable classifier.
    """
    path = Path(path) if path is not None else SHIPPED_MODEL
    if path.suffix != ".keras" or not path.is_file():
        return load_classifier(path, num_threads=num_threads)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    root = Path(cache_dir or default_cache_dir()).expanduser()
    cached = root / "tflite" / f"{path.stem}-{digest}.tflite"
    if not cached.is_file():
        from fer_lib.model import load_model  # Keras loads only on a cache miss

        partial = cached.with_name(f"{cached.stem}.{os.getpid()}.partial.tflite")
        cached.parent.mkdir(parents=True, exist_ok=True)
        export_tflite(load_model(path), partial)
        os.replace(partial, cached)
    return load_classifier(cached, num_threads=num_threads)
