"""Run folders are never reused; manifests record params, versions, device and git commit."""
from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from fer_lib import runs
from fer_lib.params import PROJECT_ROOT, Params


class FrozenClock(datetime):
    """A ``datetime`` whose ``now()`` is always 2024-01-02 03:04:05 UTC."""

    @classmethod
    def now(cls, tz: timezone | None = None) -> datetime:  # noqa: D102 - see class docstring
        return datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def test_new_run_dir_never_reuses_a_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runs, "datetime", FrozenClock)

    first = runs.new_run_dir(tmp_path / "reports", "paper A/b")
    (first / "result.txt").write_text("kept")
    second = runs.new_run_dir(tmp_path / "reports", "paper A/b")
    third = runs.new_run_dir(tmp_path / "reports", "paper A/b")

    assert [path.name for path in (first, second, third)] == [
        "paper-A-b-20240102-030405", "paper-A-b-20240102-030405-2", "paper-A-b-20240102-030405-3"]
    assert (first / "result.txt").read_text() == "kept"
    assert not any(second.iterdir()) and not any(third.iterdir())


def test_manifest_records_params_versions_device_and_commit(tmp_path: Path) -> None:
    params = Params(name="tiny", seed=7)

    path = runs.write_manifest(tmp_path, params, extra={"command": "report", "model": Path("/m.keras")})

    manifest = json.loads(path.read_text())
    assert path == tmp_path / "manifest.json"
    assert manifest["params"] == params.to_dict()
    assert manifest["packages"]["numpy"] == np.__version__
    assert set(manifest["packages"]) >= {"keras", "tensorflow", "numpy", "opencv", "scikit-learn", "pandas",
                                         "papermill"}
    assert manifest["keras_backend"] in {"tensorflow", "jax", "torch", "numpy"}
    assert {"accelerators", "processor", "machine"} <= set(manifest["device"])
    assert manifest["python"].count(".") == 2
    assert manifest["command"] == "report" and manifest["model"] == "/m.keras"
    assert datetime.fromisoformat(manifest["created_utc"]).tzinfo is not None
    head = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    assert manifest["git"]["commit"] == (head.stdout.strip() if head.returncode == 0 else "unknown")
    assert manifest["git"]["dirty"] in (True, False)


def test_git_commit_is_unknown_without_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    assert runs.git_commit() == "unknown"
    assert runs.git_dirty() is None
