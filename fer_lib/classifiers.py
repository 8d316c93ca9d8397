"""Emotion classifiers: the one path that runs a model on faces.

Every caller that turns 48x48 grey faces into emotion probabilities goes through an
:class:`EmotionClassifier`: evaluation, the per-epoch scores of training, photos and video, the
ablation's speed measurement and the TFLite parity check. Two runtimes share the interface, as
in scikit-learn (``predict_proba`` gives probabilities, ``predict`` labels):

* :class:`KerasClassifier` runs a Keras model (any backend) with ``predict_on_batch``;
* :class:`TFLiteClassifier` runs a ``.tflite`` file (:func:`fer_lib.study.export.export_tflite`) with
  ai-edge-litert, faster on a CPU.

:func:`load_classifier` picks the runtime from the file name.
"""

from __future__ import annotations

import abc
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fer_lib.augment import tta_views
from fer_lib.console import native_stderr_muted
from fer_lib.errors import ModelError
from fer_lib.labels import FACE_SIZE, NUM_CLASSES
from fer_lib.params import TestTimeAugmentation
from fer_lib.paths import SHIPPED_MODEL, ReportLayout, RunLayout, project_path

if TYPE_CHECKING:
    import keras
    from ai_edge_litert.interpreter import Interpreter

BATCH_SIZE: int = 256
"""Faces per model call unless a caller asks otherwise."""


class EmotionClassifier(abc.ABC):
    """Turns 48x48 grey faces into the 7 emotion probabilities; subclasses choose the runtime (:meth:`_run`)."""

    def predict_proba(
        self, faces: np.ndarray, *, batch_size: int = BATCH_SIZE, tta: TestTimeAugmentation = "none"
    ) -> np.ndarray:
        """Return the emotion probabilities of faces, in inference mode, in as few model calls as possible.

        With test-time augmentation the probabilities of the views of each face are averaged:
        the face and its left-right mirror (``"flip"``, 2x the cost) or five crops and their
        mirrors (``"tencrop"``, 10x), see :func:`fer_lib.augment.tta_views`.

        Args:
            faces: (K, 48, 48) grey faces, 0-255 (K may be 0).
            batch_size: largest batch per model call; the faces of one frame always go in one call.
            tta: test-time augmentation, ``"none"``, ``"flip"`` or ``"tencrop"``.

        Returns:
            float64 (K, 7) probabilities in :data:`fer_lib.labels.EMOTIONS` order, each row summing
            to 1 (the model's float32 softmax sums drift from 1; the sum is renormalised).
        """
        faces = np.asarray(faces)
        if faces.ndim != 3 or faces.shape[1:] != (FACE_SIZE, FACE_SIZE):
            raise ValueError(f"faces must be (K, {FACE_SIZE}, {FACE_SIZE}), got {faces.shape}")
        probabilities = np.zeros((len(faces), NUM_CLASSES), dtype=np.float64)
        if len(faces) == 0:
            return probabilities
        for view in tta_views(faces, tta):
            inputs = np.ascontiguousarray(view)[..., None]
            probabilities += np.concatenate(
                [self._run(inputs[start : start + batch_size]) for start in range(0, len(inputs), batch_size)]
            )
        return probabilities / probabilities.sum(axis=1, keepdims=True)

    def predict(
        self, faces: np.ndarray, *, batch_size: int = BATCH_SIZE, tta: TestTimeAugmentation = "none"
    ) -> np.ndarray:
        """Return the most probable emotion of each face: int64 (K,) indices into
        :data:`fer_lib.labels.EMOTIONS` (see :meth:`predict_proba` for the arguments)."""
        return self.predict_proba(faces, batch_size=batch_size, tta=tta).argmax(axis=1)

    @abc.abstractmethod
    def _run(self, inputs: np.ndarray) -> np.ndarray:
        """One model call: float32 (K, 48, 48, 1) grey 0-255 -> float32 (K, 7) probabilities."""


class KerasClassifier(EmotionClassifier):
    """A Keras classifier (input (N, 48, 48, 1) grey 0-255, output (N, 7) softmax).

    Uses ``predict_on_batch``: one compiled call per batch (eager ``model(x)`` is about 20 times
    slower for MobileNetV2 at batch 1 on CPU).

    Args:
        model: the Keras model, e.g. :func:`fer_lib.recipe.build_model` or :func:`fer_lib.model.load_model`.
        source: what the model is (its file), named when its outputs are not probabilities.

    Raises:
        ModelError: if the model does not end in a softmax and its outputs on a probe batch are not
            probabilities (:func:`check_probabilities`).
    """

    def __init__(self, model: keras.Model, *, source: str | os.PathLike[str] = "model") -> None:
        import keras  # the model is a Keras model: Keras is imported already

        self.model = model
        last = model.layers[-1]  # a model ending in a softmax (layer or activation) needs no probe
        activation = getattr(last, "activation", None)
        if not (isinstance(last, keras.layers.Softmax) or activation is keras.activations.softmax):
            check_probabilities(source, self._run(probe_faces()))

    def _run(self, inputs: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict_on_batch(inputs), dtype=np.float32)


class TFLiteClassifier(EmotionClassifier):
    """A ``.tflite`` classifier run by ai-edge-litert (XNNPACK), same interface as :class:`KerasClassifier`.

    Args:
        path: a file written by :func:`fer_lib.study.export.export_tflite` (float32 input (N, 48, 48, 1),
            output (N, 7)).
        num_threads: interpreter CPU threads; 1 is fastest at batch 1 (a frame's faces) for
            MobileNetV2 on 2 cores, more helps large batches.

    Raises:
        ModelError: naming the file, if it is missing, not a TFLite model, or has the wrong shapes.
    """

    def __init__(self, path: str | os.PathLike[str], *, num_threads: int = 1) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"{self.path}: TFLite model file not found")
        self.interpreter = load_litert(self.path, num_threads=num_threads)
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        if tuple(self._input["shape"][1:]) != (FACE_SIZE, FACE_SIZE, 1) or self._output["shape"][-1] != NUM_CLASSES:
            raise ModelError(
                f"{self.path}: model takes {self._input['shape'].tolist()} and returns "
                f"{self._output['shape'].tolist()}; expected [N, 48, 48, 1] -> [N, 7]"
            )
        self._batch = int(self._input["shape"][0])
        check_probabilities(self.path, self._run(probe_faces()))

    def _run(self, inputs: np.ndarray) -> np.ndarray:
        if len(inputs) != self._batch:
            self.interpreter.resize_tensor_input(self._input["index"], list(inputs.shape))
            self.interpreter.allocate_tensors()
            self._batch = len(inputs)
        self.interpreter.set_tensor(self._input["index"], inputs)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output["index"]).astype(np.float32)


def resolve_model(
    choice: str = "shipped",
    *,
    model_path: str | os.PathLike[str] | None = None,
    train_run: str | os.PathLike[str] | None = None,
    report_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Which model file to use: the one rule of every command and notebook.

    1. ``model_path`` (``--model``, a notebook's ``model_path``) when given, as it is;
    2. else ``choice`` (``faces.model`` for photos and clips, ``run`` for notebook 3): ``shipped`` is
       :data:`fer_lib.paths.SHIPPED_MODEL`; ``run`` is the model of the report's own training (``train_run``'s
       when a finished run is reused, else ``report_dir/training/model.keras``); anything else is a path,
       relative to the project root.

    There is no silent fallback: ``run`` without a trained model is an error.

    Raises:
        ModelError: for ``run``, naming the file, when that run has no trained model.
    """
    if model_path:
        return Path(model_path)
    if choice == "shipped":
        return SHIPPED_MODEL
    if choice == "run":
        path = RunLayout(train_run).model if train_run else ReportLayout(Path(report_dir or ".")).trained_model
        if not path.is_file():
            raise ModelError(
                f"{path}: the model of this report's training is missing (run the fine-tuning notebook first, "
                "give model_path, or set faces.model: shipped)"
            )
        return path
    return project_path(choice)


def load_classifier(path: str | os.PathLike[str] | None = None, *, num_threads: int = 1) -> EmotionClassifier:
    """Load a classifier from a ``.keras`` file (Keras) or a ``.tflite`` file (TFLite, faster on CPU).

    Args:
        path: the model file; None means the model the project ships (:data:`fer_lib.paths.SHIPPED_MODEL`).
        num_threads: CPU threads of a TFLite interpreter (1 is fastest at batch 1 for MobileNetV2).

    Raises:
        ModelError: naming the file, if it is missing or not a loadable classifier.
    """
    if path is None:
        if not SHIPPED_MODEL.is_file():
            raise ModelError(
                f"{SHIPPED_MODEL}: the shipped model is missing; pass --model with a .keras or "
                ".tflite file, or train one (python -m fer_lib train)"
            )
        path = SHIPPED_MODEL
    path = Path(path)
    if path.suffix == ".tflite":
        return TFLiteClassifier(path, num_threads=num_threads)
    from fer_lib.model import load_model  # Keras loads only when a Keras model is asked for

    return KerasClassifier(load_model(path), source=path)


def check_probabilities(path: str | os.PathLike[str], outputs: np.ndarray, *, tolerance: float = 0.03) -> None:
    """Refuse a model whose outputs on a probe batch are not probability distributions.

    Args:
        path: the model file, named in the error.
        outputs: (K, 7) the model's outputs for a probe batch (:func:`probe_faces`).
        tolerance: how far a row's sum may be from 1: float32 softmax sums drift by about 1e-7, an int8
            softmax's by up to 7/512 (each probability is rounded to a multiple of 1/256).

    Raises:
        ModelError: if an output is not finite, lies outside [0, 1], or a row does not sum to 1.
    """
    outputs = np.asarray(outputs, dtype=np.float64)
    sums = outputs.sum(axis=-1)
    if not np.isfinite(outputs).all() or outputs.min() < 0 or outputs.max() > 1 or np.abs(sums - 1).max() > tolerance:
        raise ModelError(
            f"{path}: the model's outputs are not probabilities (on a probe batch they range "
            f"{outputs.min():.4g} to {outputs.max():.4g}, rows summing to {sums.min():.4g} to {sums.max():.4g}); "
            "an emotion classifier must end in a softmax over the 7 emotions"
        )


def probe_faces() -> np.ndarray:
    """(2, 48, 48, 1) float32 probe batch: a mid-grey face and a fixed random one, 0-255."""
    noise = np.random.default_rng(0).uniform(0, 255, size=(FACE_SIZE, FACE_SIZE, 1))
    return np.stack([np.full((FACE_SIZE, FACE_SIZE, 1), 128.0), noise]).astype(np.float32)


def load_litert(path: Path, *, num_threads: int = 1) -> Interpreter:
    """A LiteRT interpreter for the ``.tflite`` file ``path``, tensors allocated.

    LiteRT's C++ runtime prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." on
    stderr when it allocates; that line is kept off stderr (so errors stay one line) unless the
    user asked for native logs with ``TF_CPP_MIN_LOG_LEVEL=0``.

    Raises:
        ModelError: naming the file, if it is not a loadable TFLite model.
    """
    from ai_edge_litert.interpreter import Interpreter  # loads only when a TFLite model is asked for

    with native_stderr_muted():
        try:
            interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise ModelError(f"{path}: not a loadable TFLite model ({str(error).splitlines()[0][:200]})") from None
    return interpreter
