"""Shared pytest fixtures: the real FER-2013 data from ../shared, extracted once per machine."""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path

import keras
import pytest

from fer_lib.labels import FACE_SIZE, NUM_CLASSES
from fer_lib.paths import PROJECT_ROOT

SHARED = PROJECT_ROOT.parent / "shared"
TARBALL = SHARED / "data" / "fer2013-train-publictest.tar.xz"
EXTRACT_ROOT = Path(os.environ.get("FER_TEST_CACHE", Path.home() / ".cache" / "fer-study-tests"))


@pytest.fixture(scope="session")
def fer2013_dir() -> Path:
    """Path of the extracted ``fer2013/`` folder (train/, test/), extracted on first use.

    Skips only when the tarball is absent and we are not in CI; in CI (env CI=true) a missing
    tarball is a failure, so real-data tests can never vanish silently.
    """
    if not TARBALL.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{TARBALL} is missing in CI: real-data tests cannot run")
        pytest.skip(f"{TARBALL} not found (real FER-2013 tests need ../shared)")
    digest = hashlib.sha256(f"{TARBALL.stat().st_size}:{TARBALL.stat().st_mtime_ns}".encode()).hexdigest()[:12]
    target = EXTRACT_ROOT / digest
    done = target / ".extracted"
    if not done.exists():
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(TARBALL, "r:xz") as archive:
            archive.extractall(target, filter="data")
        done.touch()
    return target / "fer2013"


def build_tiny_model(seed: int = 0) -> keras.Model:
    """A small stand-in for the shipped classifier: (N, 48, 48, 1) grey 0-255 -> (N, 7) softmax.

    Centred inputs, a tanh convolution and a wide head give different faces different, fairly
    confident predictions, so TFLite parity checks are not trivially met.
    """
    inputs = keras.Input((FACE_SIZE, FACE_SIZE, 1))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    x = keras.layers.Conv2D(
        8, 5, strides=4, activation="tanh", kernel_initializer=keras.initializers.HeNormal(seed=seed)
    )(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(
        NUM_CLASSES, activation="softmax", kernel_initializer=keras.initializers.RandomNormal(stddev=0.5, seed=seed + 1)
    )(x)
    return keras.Model(inputs, outputs, name="tiny_stand_in")


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stand-in classifier saved as ``.keras``."""
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    build_tiny_model().save(path)
    return path
