"""Run folders that are never overwritten, and the provenance manifest written into each.

Every report, training run or interactive notebook session writes into a fresh folder
``<root>/<name>-<YYYYmmdd-HHMMSS>`` (UTC). ``manifest.json`` inside it records what produced
the results: the parameters, the command line, package versions, Keras backend, device, thread
settings, Python and the git commit with a ``dirty`` flag.

Paths written into records are *portable* (:func:`portable_path`): relative to the project root
when inside it, and a FER-2013 location outside the project is written ``$FER2013_DIR``, so a
committed record never names a folder of the machine that made it.

The shipped model is tied to its report by a sidecar ``models/fer_mobilenetv2.json``
(:func:`write_model_provenance`): the model file's SHA-256 and the report folder whose
``training_manifest.json`` records the training run's commit.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shlex
import subprocess
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fer_lib.errors import DataError, FerError, ParamsError, RunExistsError, partial_file
from fer_lib.params import Params
from fer_lib.paths import PROJECT_ROOT, SHIPPED_MODEL, ReportLayout, RunLayout

PACKAGE_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "keras": ("keras",),
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-macos"),
    "numpy": ("numpy",),
    "opencv": ("opencv-python-headless", "opencv-python", "opencv-contrib-python-headless", "opencv-contrib-python"),
    "scikit-learn": ("scikit-learn",),
    "pandas": ("pandas",),
    "papermill": ("papermill",),
}
"""Package recorded in the manifest -> the pip distributions that provide it (first found wins)."""

DATA_VARIABLE: str = "FER2013_DIR"
"""The environment variable naming the FER-2013 location; records write a location outside the
project as ``$FER2013_DIR``."""

THREAD_VARIABLES: tuple[str, ...] = (
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "OMP_NUM_THREADS",
    "TF_ENABLE_ONEDNN_OPTS",
)
"""Environment variables that change how TensorFlow splits work on the CPU, recorded in manifests."""

MODEL_PROVENANCE: Path = SHIPPED_MODEL.with_suffix(".json")
"""The shipped model's sidecar: its SHA-256 and the report (with training run) it comes from."""

_command: list[str] | None = None
"""The ``python -m fer_lib`` arguments of this process, set by the CLI (:func:`set_command`)."""


def new_run_dir(root: str | Path, name: str, *, exact: bool = False) -> Path:
    """Create and return a new, empty run folder ``root/<name>-<YYYYmmdd-HHMMSS>`` (UTC time).

    The folder is created with an exclusive ``mkdir``, so two runs started in the same second
    never share it: the second gets ``-2``, the third ``-3`` and so on. ``name`` is made a
    folder name by :func:`safe_name`. With ``exact``, the folder is ``root/<name>`` itself.

    Raises:
        RunExistsError: with ``exact``, if ``root/<name>`` exists.
        ParamsError: with ``exact``, if ``name`` is not a folder name as it stands (``..``, a slash, spaces):
            an exact name is never silently changed.
    """
    root = Path(root)
    if exact and safe_name(name) != name:
        raise ParamsError(f"{name!r}: not usable as a folder name as it stands; use letters, digits, '.', '_' and '-'")
    root.mkdir(parents=True, exist_ok=True)
    if exact:
        try:
            (root / safe_name(name)).mkdir()
        except FileExistsError:
            raise RunExistsError(f"{root / safe_name(name)}: exists; choose another name") from None
        return root / safe_name(name)
    base = f"{safe_name(name)}-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"
    attempt = 1
    while True:
        candidate = root / (base if attempt == 1 else f"{base}-{attempt}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            attempt += 1


def safe_name(name: str) -> str:
    """``name`` as a folder name: characters other than letters, digits, ``.``, ``_``, ``-`` become ``-``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "run"


def git_commit() -> str:
    """Return the commit hash checked out in :data:`PROJECT_ROOT`, or ``"unknown"`` without git."""
    return _git("rev-parse", "HEAD") or "unknown"


def git_dirty() -> bool | None:
    """True if tracked or untracked files outside ``reports/`` differ from the commit; None without git."""
    status = _git("status", "--porcelain", "--", ".", ":(exclude)reports")
    return None if status is None else status != ""


def dirty_tree_warning(what: str) -> str | None:
    """A one-line warning when the project's tree has uncommitted changes (or no git), else None.

    ``what`` names the product, e.g. ``"this report"``: one made from such a tree records
    ``dirty: true`` and must not be committed (tests/test_provenance.py fails on it).
    """
    dirty = git_dirty()
    if dirty is False:
        return None
    state = "no git commit is known" if dirty is None else f"{PROJECT_ROOT} has uncommitted changes"
    return (
        f"WARNING: {state}: {what} records commit {git_commit()[:12]} with dirty=true and cannot be "
        "traced to code; commit first if it is meant for the repository"
    )


def set_command(arguments: Sequence[str]) -> None:
    """Record this process's ``python -m fer_lib`` arguments for :func:`write_manifest` (the CLI calls it)."""
    global _command
    _command = list(arguments)


def portable_command(arguments: Sequence[str]) -> str:
    """``python -m fer_lib ARGUMENTS`` as a shell line free of this machine's paths.

    Arguments after the command that are absolute paths or name an existing file or folder are
    written by :func:`portable_path` (relative to the project root); the value of ``--data`` by
    :func:`data_label`.
    """
    words = ["python", "-m", "fer_lib"]
    previous = ""
    for position, argument in enumerate(arguments):
        if previous == "--data":
            words.append(data_label(argument))
        elif (
            position > 0
            and not argument.startswith("-")
            and (os.path.isabs(os.path.expanduser(argument)) or os.path.exists(argument))
        ):
            words.append(portable_path(argument))
        else:
            words.append(argument)
        previous = argument
    return " ".join(f'"${DATA_VARIABLE}"' if word == f"${DATA_VARIABLE}" else shlex.quote(word) for word in words)


def portable_path(path: str | os.PathLike[str]) -> str:
    """``path`` as a committed record writes it: relative to the project root when inside it
    (``.`` for the root), ``$FER2013_DIR`` when it is that variable's location, else as given."""
    resolved = Path(path).expanduser().resolve()
    if resolved == PROJECT_ROOT:
        return "."
    if resolved.is_relative_to(PROJECT_ROOT):
        return resolved.relative_to(PROJECT_ROOT).as_posix()
    if os.environ.get(DATA_VARIABLE) and resolved == Path(os.environ[DATA_VARIABLE]).expanduser().resolve():
        return f"${DATA_VARIABLE}"
    return str(path)


def data_label(location: str | os.PathLike[str]) -> str:
    """A FER-2013 location as records name it: relative to the project root when inside it,
    else ``$FER2013_DIR`` (the variable a reader sets to their own copy)."""
    if str(location) == f"${DATA_VARIABLE}":
        return str(location)
    resolved = Path(os.path.expandvars(str(location))).expanduser().resolve()
    return portable_path(resolved) if resolved.is_relative_to(PROJECT_ROOT) else f"${DATA_VARIABLE}"


def package_versions() -> dict[str, str | None]:
    """Return the installed version of each package in :data:`PACKAGE_DISTRIBUTIONS` (None if absent)."""
    versions: dict[str, str | None] = {}
    for package, distributions in PACKAGE_DISTRIBUTIONS.items():
        versions[package] = None
        for distribution in distributions:
            try:
                versions[package] = importlib.metadata.version(distribution)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return versions


def device_info() -> dict[str, Any]:
    """Describe the hardware: Keras backend, GPUs it reports, CPU model and count, machine type."""
    import keras

    backend = keras.backend.backend()
    info: dict[str, Any] = {
        "keras_backend": backend,
        "accelerators": None,
        "processor": _processor_name(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "system": platform.platform(),
    }
    if backend == "tensorflow":
        import tensorflow as tf

        info["accelerators"] = [
            tf.config.experimental.get_device_details(device).get("device_name", device.name)
            for device in tf.config.list_physical_devices("GPU")
        ]
    return info


def describe_device(backend: str, device: dict[str, Any]) -> str:
    """``<backend> on <accelerators, else processor, else machine type>`` for :func:`device_info`'s dict
    (without its ``keras_backend``) or a manifest's ``device``."""
    hardware = ", ".join(device.get("accelerators") or []) or device.get("processor") or device.get("machine")
    return f"{backend} on {hardware}"


def thread_settings() -> dict[str, Any]:
    """How the backend splits work on the CPU, which decides whether two runs are bit-identical.

    Returns ``{"tf_intra_op_threads", "tf_inter_op_threads", "tf_op_determinism", "env"}``: the
    TensorFlow settings (0 = TensorFlow's default, one thread per core; None without TensorFlow)
    and :data:`THREAD_VARIABLES` from the environment (None when unset).
    """
    import keras

    settings: dict[str, Any] = {"tf_intra_op_threads": None, "tf_inter_op_threads": None, "tf_op_determinism": None}
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf
        from tensorflow.python.framework.config import is_op_determinism_enabled  # no public getter

        settings = {
            "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "tf_inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
            "tf_op_determinism": is_op_determinism_enabled(),
        }
    return {**settings, "env": {name: os.environ.get(name) for name in THREAD_VARIABLES}}


def write_manifest(run_dir: str | Path, params: Params, *, extra: dict[str, Any] | None = None) -> Path:
    """Write ``run_dir/manifest.json`` recording what produced the run; return its path.

    Records: UTC creation time, ``params`` (as nested dicts), the command line (portable, see
    :func:`portable_command`; None when not run by ``python -m fer_lib``), package versions, Keras
    backend, device (accelerator names, processor, machine), thread settings
    (:func:`thread_settings`), Python version, and the git commit of the project with a ``dirty``
    flag. ``extra`` entries (e.g. report parameters) are added at the top level; values JSON
    cannot hold (such as paths) are written as strings.
    """
    device = device_info()
    manifest = {
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "params": params.to_dict(),
        "command": portable_command(_command) if _command is not None else None,
        "git": {"commit": git_commit(), "dirty": git_dirty()},
        "python": platform.python_version(),
        "packages": package_versions(),
        "keras_backend": device.pop("keras_backend"),
        "device": device,
        "threads": thread_settings(),
        **(extra or {}),
    }
    path = Path(run_dir) / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2, default=_json_default) + "\n", encoding="utf-8")
    return path


def write_metrics(output_dir: str | Path, name: str, metrics: dict[str, Any]) -> Path:
    """Write a notebook's numbers to ``output_dir/metrics/<name>.json`` and return the path.

    The report merges every ``metrics/*.json`` into ``metrics.json`` under the key ``name``.
    NumPy scalars and arrays are written as plain numbers and lists.
    """
    path = ReportLayout(Path(output_dir)).metrics_file(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics, indent=2, default=_json_default) + "\n", encoding="utf-8")
    return path


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, as 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_model_provenance(report_dir: str | Path, *, model: str | Path = SHIPPED_MODEL) -> Path:
    """Tie ``model`` to the report of its training run: write ``<model>.json`` and return its path.

    The sidecar holds the model file's name and SHA-256, the report folder (portable path) and
    the training run's ``git`` record copied from the report's ``training_manifest.json``.

    Raises:
        FerError: if the report has no ``training_manifest.json``.
    """
    report_dir, model = Path(report_dir), Path(model)
    training_manifest = ReportLayout(report_dir).training_manifest
    if not training_manifest.is_file():
        raise FerError(f"{training_manifest}: not found; make the report with --train-run RUN_DIR")
    git = json.loads(training_manifest.read_text(encoding="utf-8")).get("git")
    record = {
        "model": model.name,
        "sha256": file_sha256(model),
        "report": portable_path(report_dir),
        "training_git": git,
    }
    path = model.with_suffix(".json")
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return path


def _json_default(value: Any) -> Any:
    """JSON form of what ``json`` cannot write itself: NumPy values become numbers/lists, the rest text."""
    return value.tolist() if hasattr(value, "tolist") else str(value)


def _processor_name() -> str | None:
    """The CPU model: ``platform.processor()``, or on Linux (where that is empty) /proc/cpuinfo's."""
    if platform.processor():
        return platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return None


def _git(*arguments: str) -> str | None:
    """Run ``git -C PROJECT_ROOT *arguments``; return its stripped stdout, or None on any failure."""
    try:
        completed = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), *arguments], capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip()


def write_atomically(path: Path, content: str | bytes) -> None:
    """Write ``content`` (text, as UTF-8, or bytes) to ``path`` through a temporary file renamed into place
    (never half a file; a kill leaves the previous version), creating the folder if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with partial_file(path.with_name(f".{path.name}.{os.getpid()}.partial")) as partial:
        if isinstance(content, bytes):
            partial.write_bytes(content)
        else:
            partial.write_text(content, encoding="utf-8")
    os.replace(partial, path)


def is_finished(run_dir: str | os.PathLike[str]) -> bool:
    """True if ``run_dir`` holds a finished training run: its ``state.json`` says finished and its
    ``model.keras`` and ``history.csv`` exist (``train`` refuses it;
    :func:`fer_lib.study.training_run.load_run` loads it).

    The one definition of a finished run: reports, ablations and ``load_run`` all ask here.
    """
    layout = RunLayout(run_dir)
    return (
        layout.state.is_file()
        and bool(json.loads(layout.state.read_text()).get("finished"))
        and layout.model.is_file()
        and layout.history.is_file()
    )


def require_finished(run_dir: str | os.PathLike[str]) -> RunLayout:
    """Return the layout of the finished run in ``run_dir``.

    Raises:
        DataError: ``"<run_dir>: not a finished training run ..."`` unless :func:`is_finished`.
    """
    if not is_finished(run_dir):
        raise DataError(
            f"{run_dir}: not a finished training run (state.json marked finished, model.keras and history.csv expected)"
        )
    return RunLayout(run_dir)
