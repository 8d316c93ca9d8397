"""Shared test helpers: the real FER-2013 data from ../shared (extracted once per machine), a tiny
stand-in classifier, and the face/image/dataset factories the test files import
(``from conftest import random_faces, write_image``)."""

from __future__ import annotations

import fcntl
import hashlib
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pytest
import yaml

from fer_lib.dataset import FaceDataset
from fer_lib.labels import FACE_SIZE, NUM_CLASSES
from fer_lib.params import load_params
from fer_lib.paths import PROJECT_ROOT
from fer_lib.study.cli import import_keras_quietly, quiet_native_logs

if TYPE_CHECKING:
    import keras

    from fer_lib.study.training_run import TrainResult

SHARED = PROJECT_ROOT.parent / "shared"
TARBALL = SHARED / "data" / "fer2013-train-publictest.tar.xz"
EXTRACT_ROOT = Path(os.environ.get("FER_TEST_CACHE", Path.home() / ".cache" / "fer-study-tests"))


def pytest_configure(config: pytest.Config) -> None:
    """Set up every process that runs tests: OpenCV's and TensorFlow's log lines muted, Keras' steps eager.

    Keras' train and predict steps run eagerly: tracing MobileNetV2's train step (about 10 s, every
    optimizer variable traced) costs more than the few steps of the tests' tiny runs. The traced path
    is what runs in the other subprocesses (the study, the CLI, notebook kernels) and where a test
    asks for it with the ``graph_mode`` fixture. pytest-xdist's controller runs no test, so it skips
    TensorFlow's import (4-5 s of CPU while its two workers start on 2 cores).
    """
    if config.getoption("numprocesses", None) and not hasattr(config, "workerinput"):
        return
    quiet_native_logs()
    import_keras_quietly()  # else every worker prints TensorFlow's start-up lines on the terminal
    eager_keras_steps(True)


def eager_keras_steps(eager: bool) -> None:
    """Run Keras' train/predict steps eagerly (True) or traced into graphs (False); TensorFlow backend only."""
    import keras

    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.run_functions_eagerly(eager)


EAGER_SUBPROCESS = {
    "PYTHONPATH": os.pathsep.join(
        filter(None, [str(Path(__file__).parent / "eager_site"), os.environ.get("PYTHONPATH")])
    )
}
"""Environment for subprocesses whose Keras steps should run eagerly too (``tests/eager_site``): the
training subprocesses of test_training.py and the Ray workers of test_scale.py, which train the tiny
recipe in half the time. Traced training is matched bit for bit across processes by
test_portable_report.py (a notebook kernel and the test process)."""

TINY_RUN = {
    "name": "tiny",
    "seed": 7,
    "data": {"source": "synthetic", "synthetic_per_class": 6},
    "model": {"input_size": 32, "alpha": 0.35, "weights": "none", "head_units": [8], "dropout": 0.2},
    "train": {
        "epochs": 2,
        "batch_size": 16,
        "optimizer": "adamw",
        "schedule": "cosine",
        "label_smoothing": 0.1,
        "augment": {"flip": True, "rotation_degrees": 10, "shift_fraction": 0.1, "erasing_probability": 0.3},
        "train_eval_subset": None,
    },
}
"""The tiny training recipe the training tests share: 42 synthetic Training faces (3 batches), a
MobileNetV2 of width 0.35 from scratch at 32 px, every part of the loop on (AdamW, cosine schedule,
label smoothing, augmentation, PublicTest scored each epoch), 2 epochs: a few seconds."""


TINY_ABLATION = {
    "name": "tiny-ablation",
    "seed": 5,
    "data": {"source": "synthetic", "synthetic_per_class": 6},
    "model": {"input_size": 32, "alpha": 0.35, "weights": "none", "bn_momentum": 0.9},
    "train": {"epochs": 1, "batch_size": 16, "train_eval_subset": None},
}
"""The base recipe of the tiny ablations (tests/test_ablation.py, and on Ray tests/test_scale.py): one
epoch of 42 synthetic faces at 32 px, width 0.35, from scratch."""


# --- factories ---------------------------------------------------------------------------------------


def random_faces(count: int, seed: int = 0) -> np.ndarray:
    """(count, 48, 48) uint8 faces of uniform random pixels; the same seed gives the same faces."""
    return np.random.default_rng(seed).integers(0, 256, (count, FACE_SIZE, FACE_SIZE), dtype=np.uint8)


def random_face(seed: int = 0) -> np.ndarray:
    """One (48, 48) uint8 face of uniform random pixels (``random_faces(1, seed)[0]``)."""
    return random_faces(1, seed)[0]


def smooth_faces(count: int, seed: int) -> np.ndarray:
    """(count, 48, 48) uint8 blurred random faces (Gaussian sigma 2 px): a cheap stand-in for real faces,
    smooth like them, so quantized models and resizing behave as they do on faces."""
    return np.stack([cv2.GaussianBlur(face, (0, 0), 2.0) for face in random_faces(count, seed)])


def write_image(path: Path, image: np.ndarray) -> Path:
    """Write ``image`` with OpenCV (format from the file ending), creating folders; return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


def pixel_text(face: np.ndarray) -> str:
    """A face as fer2013.csv's space-separated pixel string."""
    return " ".join(map(str, face.ravel()))


def write_params(path: Path, raw: dict) -> Path:
    """Write the params mapping ``raw`` as YAML to ``path``; return the path."""
    path.write_text(yaml.safe_dump(raw))
    return path


def face_dataset(
    faces: np.ndarray, labels: list[int], usage: list[str], *, ids: list[str] | None = None, source: str = "test"
) -> FaceDataset:
    """A :class:`FaceDataset` of ``faces`` (N, 48, 48) with the given labels and usages; ids ``f0, f1, ...``
    unless given."""
    ids = [f"f{index}" for index in range(len(faces))] if ids is None else ids
    return FaceDataset(np.asarray(faces, np.uint8), np.array(labels, np.int64), np.array(usage), np.array(ids), source)


# --- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture
def graph_mode() -> Iterator[None]:
    """Keras' steps traced into TensorFlow graphs for this test, as outside the tests: for many batches
    (graph kernels are faster per batch) and for bit-identity with a subprocess, whose steps are traced."""
    eager_keras_steps(False)
    yield
    eager_keras_steps(True)


@pytest.fixture
def eager_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    """The notebook kernels and other subprocesses this test starts run Keras' steps eagerly
    (:data:`EAGER_SUBPROCESS`): a tiny run's few steps cost less than tracing MobileNetV2's steps."""
    monkeypatch.setenv("PYTHONPATH", EAGER_SUBPROCESS["PYTHONPATH"])


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
    target.mkdir(parents=True, exist_ok=True)
    with open(target / ".lock", "w") as lock:  # pytest-xdist workers: one extracts, the others wait
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            with tarfile.open(TARBALL, "r:xz") as archive:
                archive.extractall(target, filter="data")
            done.touch()
    return target / "fer2013"


def build_tiny_model(seed: int = 0) -> keras.Model:
    """A small stand-in for the shipped classifier: (N, 48, 48, 1) grey 0-255 -> (N, 7) softmax.

    Centred inputs, a tanh convolution and a wide head give different faces different, fairly
    confident predictions, so TFLite parity checks are not trivially met.
    """
    import keras

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


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    """:data:`TINY_RUN` trained once per session with :func:`fer_lib.study.training_run.train` in this process.

    Its folder (``.run_dir``, beside its params file ``tiny.yaml``) is finished; tests only read it
    (a test that changes a run copies it first).
    """
    from fer_lib.data import load_dataset
    from fer_lib.study.training_run import train

    folder = tmp_path_factory.mktemp("tiny-run")
    params = load_params(write_params(folder / "tiny.yaml", TINY_RUN))
    return train(params, load_dataset(params), folder / "run", verbose=0)


# --- scheduling --------------------------------------------------------------------------------------

HEAVIEST_FIRST: tuple[str, ...] = (
    "test_study.py",
    "test_portable_report.py",
    "test_training.py",
    "test_scale.py",
    "test_shipped_model.py",
    "test_ablation.py",
    "test_papers.py",
    "test_training_pieces.py",
    "test_recipe.py",
    "test_photo_check.py",
    "test_reproduce.py",
    "test_bad_input.py",
    "test_model.py",
)
"""The test files that take longest, heaviest first (20-220 s each on 2 idle cores of the slow machine of
2026-12-04; ``make test PYTEST_ARGS=--durations=0`` measures them). pytest-xdist hands whole files to its workers in
collection order (``--no-loadscope-reorder``: else it orders files by their number of tests), so
these go out first and the quick files even out the two workers' ends."""

SAME_WORKER: dict[str, str] = {"tests/test_reproduce.py": "tests/test_training.py"}
"""Test files that go to the worker of another file, to share its session fixture (``tiny_run``,
about 11 s of training) instead of building it again in the other worker."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run :data:`HEAVIEST_FIRST`'s files first, in that order; the others keep pytest's order after them."""
    rank = {name: position for position, name in enumerate(HEAVIEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.hookimpl(optionalhook=True)  # `-p no:xdist` runs the tests in one process
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """With ``--dist loadfile``: pytest-xdist's file-by-file scheduling, :data:`SAME_WORKER`'s files joined.

    (``--dist loadgroup`` with ``xdist_group`` marks would say the same, but it silently stopped
    grouping with pytest 9.2: pytest-dev/pytest-xdist#1386.)
    """
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class JoinedFileScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return SAME_WORKER.get(scope, scope)

    return JoinedFileScheduling(config, log)
