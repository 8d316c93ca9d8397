"""Run folders that are never overwritten, and the provenance manifest written into each.

Every report, training run or interactive notebook session writes into a fresh folder
``<root>/<name>-<YYYYmmdd-HHMMSS>`` (UTC). ``manifest.json`` inside it records what produced
the results: the parameters, package versions, Keras backend, device, Python and git commit.
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fer_lib.params import PROJECT_ROOT, Params

PACKAGE_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "keras": ("keras",),
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-macos"),
    "numpy": ("numpy",),
    "opencv": ("opencv-python-headless", "opencv-python", "opencv-contrib-python-headless",
               "opencv-contrib-python"),
    "scikit-learn": ("scikit-learn",),
    "pandas": ("pandas",),
    "papermill": ("papermill",),
}
"""Package recorded in the manifest -> the pip distributions that provide it (first found wins)."""


def new_run_dir(root: str | Path, name: str) -> Path:
    """Create and return a new, empty run folder ``root/<name>-<YYYYmmdd-HHMMSS>`` (UTC time).

    The folder is created with an exclusive ``mkdir``, so two runs started in the same second
    never share it: the second gets ``-2``, the third ``-3`` and so on. ``name`` is made a
    folder name by :func:`safe_name`.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
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


def write_manifest(run_dir: str | Path, params: Params, extra: dict[str, Any] | None = None) -> Path:
    """Write ``run_dir/manifest.json`` recording what produced the run; return its path.

    Records: UTC creation time, ``params`` (as nested dicts), package versions, Keras backend,
    device (accelerator names, processor, machine), Python version, and the git commit of the
    project with a ``dirty`` flag. ``extra`` entries (e.g. command-line options) are added at the
    top level; values JSON cannot hold (such as paths) are written as strings.
    """
    device = device_info()
    manifest = {
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "params": params.to_dict(),
        "git": {"commit": git_commit(), "dirty": git_dirty()},
        "python": platform.python_version(),
        "packages": package_versions(),
        "keras_backend": device.pop("keras_backend"),
        "device": device,
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
    folder = Path(output_dir) / "metrics"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(metrics, indent=2, default=_json_default) + "\n", encoding="utf-8")
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
        completed = subprocess.run(["git", "-C", str(PROJECT_ROOT), *arguments], capture_output=True,
                                   text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip()
