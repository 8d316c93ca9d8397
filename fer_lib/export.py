"""TFLite (LiteRT) export and runtime: the fast way to run the classifier on a CPU.

:func:`export_tflite` converts a Keras classifier with Keras' own LiteRT exporter
(``model.export(format="litert")``: Keras model -> SavedModel -> ``tf.lite.TFLiteConverter``), either
in float32 or with int8 weights and activations calibrated on real faces. Both keep float32 input
(N, 48, 48, 1) grey 0-255 and float32 output (N, 7), so callers do not change. Only the export needs
TensorFlow, imported inside the functions; :class:`TFLiteClassifier` runs the file with ai-edge-litert.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from fer_lib.errors import ModelError
from fer_lib.faces import EmotionClassifier, FaceClassifier
from fer_lib.labels import FACE_SIZE, NUM_CLASSES

if TYPE_CHECKING:
    import keras

CALIBRATION_FACES: int = 500
"""Faces used at most to calibrate int8 activation ranges."""


def export_tflite(model: keras.Model, path: str | os.PathLike[str], quantize: Literal["none", "int8"] = "none",
                  representative_faces: np.ndarray | None = None) -> Path:
    """Convert a Keras classifier to a ``.tflite`` file.

    Args:
        model: input (N, 48, 48, 1) float grey 0-255, output (N, 7) probabilities.
        path: the ``.tflite`` file to write (overwritten if it exists).
        quantize: ``none`` keeps float32 weights; ``int8`` quantizes weights and activations to int8
            (about 3.5x smaller) with float32 input and output kept.
        representative_faces: uint8 (N, 48, 48) faces to calibrate int8 activation ranges (the first
            :data:`CALIBRATION_FACES` are used); required for ``int8``. Use training faces, not test faces.

    Returns:
        The path written.
    """
    import tensorflow as tf  # only the export needs TensorFlow

    path = Path(path)
    if path.suffix != ".tflite":
        raise ModelError(f"{path}: TFLite files must end in .tflite")
    options = {}
    if quantize == "int8":
        if representative_faces is None or len(representative_faces) == 0:
            raise ValueError("int8 quantization needs representative_faces to calibrate activation ranges")
        calibration = np.asarray(representative_faces[:CALIBRATION_FACES], dtype=np.float32)[..., None]

        def representative_dataset() -> Iterator[list[np.ndarray]]:
            for face in calibration:
                yield [face[None]]

        options = {"optimizations": [tf.lite.Optimize.DEFAULT], "representative_dataset": representative_dataset,
                   "target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]}}
    elif quantize != "none":
        raise ValueError(f"quantize must be 'none' or 'int8', got {quantize!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    model.export(str(path), format="litert", verbose=False, **options)
    return path


class TFLiteClassifier(EmotionClassifier):
    """A ``.tflite`` classifier run by ai-edge-litert (XNNPACK), same interface as :class:`FaceClassifier`.

    Args:
        path: a file written by :func:`export_tflite` (float32 input (N, 48, 48, 1), output (N, 7)).
        num_threads: interpreter CPU threads; 1 is fastest at batch 1 (a frame's faces) for
            MobileNetV2 on 2 cores, more helps large batches.

    Raises:
        ModelError: naming the file, if it is missing, not a TFLite model, or has the wrong shapes.
    """

    def __init__(self, path: str | os.PathLike[str], num_threads: int = 1) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"{self.path}: TFLite model file not found")
        try:
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise ModelError(f"{self.path}: not a loadable TFLite model ({str(error).splitlines()[0][:200]})") from None
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        if tuple(self._input["shape"][1:]) != (FACE_SIZE, FACE_SIZE, 1) or self._output["shape"][-1] != NUM_CLASSES:
            raise ModelError(f"{self.path}: model takes {self._input['shape'].tolist()} and returns "
                             f"{self._output['shape'].tolist()}; expected [N, 48, 48, 1] -> [N, 7]")
        self._batch = int(self._input["shape"][0])

    def _run(self, inputs: np.ndarray) -> np.ndarray:
        if len(inputs) != self._batch:
            self.interpreter.resize_tensor_input(self._input["index"], list(inputs.shape))
            self.interpreter.allocate_tensors()
            self._batch = len(inputs)
        self.interpreter.set_tensor(self._input["index"], inputs)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output["index"]).astype(np.float32)


def tflite_parity(keras_model: keras.Model, tflite_path: str | os.PathLike[str], faces: np.ndarray,
                  labels: np.ndarray, num_threads: int | None = None) -> dict[str, float | int]:
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

    keras_probabilities = FaceClassifier(keras_model).predict(faces)
    tflite_probabilities = TFLiteClassifier(tflite_path, num_threads or os.cpu_count() or 1).predict(faces)
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
