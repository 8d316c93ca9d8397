"""Where MobileNetV2's starting weights come from: the file that ``model.weights`` names.

Offline first: env ``FER_WEIGHTS``, the ImageNet file in ../shared/weights, Keras' own cache, and a
download by Keras only as the last fallback, with a one-line error when it fails. Locating files is
machinery beside the method: :func:`fer_lib.model.load_backbone_weights` loads what this finds.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from fer_lib.errors import ModelError
from fer_lib.paths import DEFAULT_WEIGHTS, SHIPPED_MODEL, project_path

KERAS_WEIGHTS_URL: str = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
"""Where ``keras.applications.MobileNetV2(weights="imagenet")`` downloads its weights files from."""

DOWNLOAD_TIMEOUT_S: float = 60.0
"""Seconds a stalled weights download may wait for the network before it counts as failed."""


_WEIGHTS_ADVICE = (
    "set env FER_WEIGHTS or model.weights to its path, use model.weights: imagenet (needs internet), "
    "model.weights: shipped (the shipped model's backbone, in the repository) or model.weights: none "
    "(random start; much worse accuracy)"
)
"""What to do when the ImageNet weights are missing, for the end of one-line errors."""


def keras_weights_file(*, alpha: float = 1.0) -> Path:
    """The ImageNet no-top weights file for 224 px inputs in Keras' own cache.

    This is the file ``keras.applications.MobileNetV2(input_shape=(224, 224, 3), alpha=alpha,
    include_top=False, weights="imagenet")`` downloads: ``$KERAS_HOME/models/`` (default
    ``~/.keras/models/``), ``mobilenet_v2_weights_tf_dim_ordering_tf_kernels_<alpha>_224_no_top.h5``.
    The 224 px weights are used at every input size (convolution weights do not depend on it).
    """
    home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser()
    return home / "models" / f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_224_no_top.h5"


def resolve_weights(weights: str, *, alpha: float = 1.0) -> Path | None:
    """Find the file that ``model.weights`` asks the backbone to start from.

    Args:
        weights: ``default``: env ``FER_WEIGHTS`` if set, else the offline file in
            ../shared/weights, else Keras' cache (:func:`keras_weights_file`), else a download by
            Keras into that cache; ``imagenet``: Keras' cache, else a download; ``shipped``: the
            shipped model's backbone (models/fer_mobilenetv2.keras, in the repository); ``none``;
            or a path (relative to the project root) to a ``.h5`` weights file or to a ``.keras`` model of
            this project (its backbone).
        alpha: the MobileNetV2 width multiplier (chooses Keras' file).

    Returns:
        A ``.h5`` ImageNet weights file, a ``.keras`` model whose backbone to copy, or None
        (random initialisation).

    Raises:
        ModelError: one line naming the missing file and what to do instead, if a file is missing
            (a set ``FER_WEIGHTS`` must exist) or the download fails.
    """
    if weights == "none":
        return None
    if weights == "shipped":
        if not SHIPPED_MODEL.is_file():
            raise ModelError(
                f"{SHIPPED_MODEL}: shipped model not found (model.weights: shipped starts from its "
                "backbone); restore it with git, or use model.weights: default or none"
            )
        return SHIPPED_MODEL
    if weights == "imagenet":
        return _keras_cached_or_downloaded(alpha, looked_for=None)
    if weights == "default" and not os.environ.get("FER_WEIGHTS"):
        if DEFAULT_WEIGHTS.is_file():
            return DEFAULT_WEIGHTS
        return _keras_cached_or_downloaded(alpha, looked_for=DEFAULT_WEIGHTS)
    path = Path(os.environ["FER_WEIGHTS"]).expanduser() if weights == "default" else project_path(weights)
    if not path.is_file():
        raise ModelError(
            f"{path}: ImageNet MobileNetV2 weights file not found; put "
            f"mobilenet_v2_1.0_224_imagenet_no_top.h5 there, {_WEIGHTS_ADVICE}"
        )
    return path


def _keras_cached_or_downloaded(alpha: float, looked_for: Path | None) -> Path:
    """Return Keras' cached ImageNet file (:func:`keras_weights_file`), downloading it if missing.

    Raises:
        ModelError: naming ``looked_for`` (else the cache file), if the download fails.
    """
    cached = keras_weights_file(alpha=alpha)
    if cached.is_file():
        return cached
    import keras  # only here: finding a file needs no deep-learning framework

    print(f"Downloading the ImageNet MobileNetV2 weights into Keras' cache ({cached.parent}) ...", flush=True)
    timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        return Path(
            keras.utils.get_file(
                cached.name, KERAS_WEIGHTS_URL + cached.name, cache_subdir="models", cache_dir=str(cached.parent.parent)
            )
        )
    except Exception as error:  # noqa: BLE001 - urllib and Keras raise many types when offline
        reason = " ".join(f"{type(error).__name__}: {error}".split())[:200]
        missing = (
            f"{looked_for}: ImageNet MobileNetV2 weights file not found, nor in Keras' cache ({cached})"
            if looked_for
            else f"{cached}: ImageNet MobileNetV2 weights not in Keras' cache"
        )
        raise ModelError(
            f"{missing}, and downloading them failed ({reason}); put "
            f"mobilenet_v2_1.0_224_imagenet_no_top.h5 at {looked_for or cached}, {_WEIGHTS_ADVICE}"
        ) from None
    finally:
        socket.setdefaulttimeout(timeout)
