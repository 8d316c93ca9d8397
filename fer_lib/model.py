"""MobileNetV2 classifiers whose preprocessing lives inside the model.

Every model built here takes raw FER-2013 faces, shape (N, 48, 48, 1), grey values 0-255
(uint8 or float), and returns (N, 7) softmax probabilities in canonical label order. The
resize to the backbone's input size, grey-to-RGB and the pixel scaling are Keras layers, so a
saved ``.keras`` file is self-contained: no caller can forget or mismatch the preprocessing.

Written against ``keras`` only, so the same code runs on the TensorFlow, JAX and PyTorch backends.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import keras
import numpy as np

from fer_lib.errors import ModelError
from fer_lib.labels import FACE_SIZE, NUM_CLASSES
from fer_lib.weights import resolve_weights

BACKBONE_NAME = "backbone"
"""Layer name of the nested MobileNetV2 model (used to freeze and unfreeze it)."""

SCALINGS: dict[str, tuple[float, float]] = {"unit": (1 / 255.0, 0.0), "imagenet": (1 / 127.5, -1.0)}
"""Pixel scaling (scale, offset): ``unit`` maps 0-255 to [0, 1] (both papers), ``imagenet`` to [-1, 1]
(``keras.applications.mobilenet_v2.preprocess_input``, what the backbone was trained with)."""


def load_backbone_weights(backbone: keras.Model, weights: str, *, alpha: float = 1.0) -> None:
    """Set the weights that ``model.weights`` asks MobileNetV2 (``include_top=False``) to start from.

    ``backbone`` is a freshly built ``keras.applications.MobileNetV2(..., weights=None)``. Its weights
    come from :func:`fer_lib.weights.resolve_weights`: an ImageNet ``.h5`` file (what ``weights=path`` would load), the
    backbone of a ``.keras`` model of this project (``shipped``), whatever input size that model was
    trained at (MobileNetV2's weights do not depend on it; only ``model.alpha`` must match), or nothing
    (``none``: the random initialisation stays).

    Raises:
        ModelError: if the weights cannot be found, downloaded or loaded, or a ``.keras`` model has no
            nested backbone or one that differs.
    """
    source = resolve_weights(weights, alpha=alpha)
    if source is None:
        return
    if source.suffix == ".keras":  # its nested backbone's weights, BatchNorm statistics included
        model = load_model(source)
        try:
            model_weights = model.get_layer(BACKBONE_NAME).get_weights()
        except ValueError:
            raise ModelError(f"{source}: has no nested '{BACKBONE_NAME}' layer to start from") from None
        try:
            backbone.set_weights(model_weights)
        except ValueError:
            raise ModelError(f"{source}: its backbone does not match MobileNetV2 with this model.alpha") from None
        return
    try:
        backbone.load_weights(str(source))
    except Exception as error:  # noqa: BLE001 - HDF5 errors come in many types
        raise ModelError(
            f"{source}: cannot load MobileNetV2 weights "
            f"({type(error).__name__}: {str(error).splitlines()[0][:200]}); "
            "point model.weights or env FER_WEIGHTS at a local mobilenet_v2_1.0_224_imagenet_no_top.h5 "
            "(see README), or use model.weights: shipped or none"
        ) from None


def parameter_counts(model: keras.Model) -> dict[str, int]:
    """Return total, trainable and non-trainable parameter counts of ``model``."""
    trainable = sum(int(keras.ops.size(w)) for w in model.trainable_weights)
    non_trainable = sum(int(keras.ops.size(w)) for w in model.non_trainable_weights)
    return {"total": trainable + non_trainable, "trainable": trainable, "non_trainable": non_trainable}


def load_model(path: str | os.PathLike[str], *, compile: bool = False) -> keras.Model:
    """Load a ``.keras`` model safely (``safe_mode=True``: no arbitrary code from the file).

    Raises:
        ModelError: naming the file, if it is missing, not a ``.keras`` archive, or not loadable.
    """
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"{path}: is a folder; expected a .keras model file")
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ModelError(f"{path}: not a Keras model (.keras zip archive expected)")
    try:
        model = keras.models.load_model(path, compile=compile, safe_mode=True)
    except Exception as error:  # noqa: BLE001 - Keras raises many types for bad archives
        message = " ".join(str(error).split())
        if "safe_mode" in message or "arbitrary code" in message:
            raise ModelError(
                f"{path}: refused: the model holds Python code (e.g. a Lambda layer) that would run when it is "
                "loaded, and this project loads models in Keras' safe mode only; rebuild it without such layers"
            ) from None
        reason = message if len(message) <= 300 else message[:300].rpartition(" ")[0] + " ..."
        raise ModelError(f"{path}: cannot load Keras model ({type(error).__name__}: {reason})") from None
    if tuple(model.input_shape[1:]) != (FACE_SIZE, FACE_SIZE, 1) or model.output_shape[-1] != NUM_CLASSES:
        raise ModelError(
            f"{path}: model takes {model.input_shape} and returns {model.output_shape}; "
            f"expected (None, {FACE_SIZE}, {FACE_SIZE}, 1) -> (None, {NUM_CLASSES})"
        )
    return model


def recalibrate_batchnorm(model: keras.Model, faces: np.ndarray, *, batch_size: int = 256) -> None:
    """Replace every BatchNorm moving mean/variance by its average over ``faces``, in place.

    Runs the model in training mode over (N, 48, 48) faces with each BatchNorm layer's momentum
    set to k/(k+1) at batch k, so the moving statistics become the plain average of the batch
    statistics (a "precise BN" estimate for the current weights), then restores the momenta.
    Frozen BatchNorm layers (a frozen backbone) are recalibrated too: Keras 3 runs a layer with
    ``trainable=False`` in inference mode, so each is made trainable for the passes and restored.
    Weights other than the BatchNorm statistics are untouched (no optimizer step runs).
    """
    layers = [layer for layer in _all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in layers]
    trainable = [layer.trainable for layer in layers]
    x = faces.astype(np.float32)[..., None]
    try:
        for layer in layers:
            layer.trainable = True
        for batch_index, start in enumerate(range(0, len(x), batch_size)):
            for layer in layers:
                layer.momentum = batch_index / (batch_index + 1)
            model(x[start : start + batch_size], training=True)
    finally:
        for layer, momentum, was_trainable in zip(layers, momenta, trainable, strict=True):
            layer.momentum = momentum
            layer.trainable = was_trainable


def _all_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Every layer of ``model``, descending into nested models (the backbone)."""
    layers = []
    for layer in model.layers:
        layers.extend(_all_layers(layer) if isinstance(layer, keras.Model) else [layer])
    return layers
