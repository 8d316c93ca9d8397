"""Run folders are never reused; manifests record params, versions, device and git commit."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from fer_lib.params import Params
from fer_lib.paths import PROJECT_ROOT
from fer_lib.study import runs


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
        "paper-A-b-20240102-030405",
        "paper-A-b-20240102-030405-2",
        "paper-A-b-20240102-030405-3",
    ]
    assert (first / "result.txt").read_text() == "kept"
    assert not any(second.iterdir()) and not any(third.iterdir())


def test_manifest_records_params_versions_device_and_commit(tmp_path: Path) -> None:
    params = Params(name="tiny", seed=7)

    path = runs.write_manifest(tmp_path, params, extra={"command": "report", "model": Path("/m.keras")})

    manifest = json.loads(path.read_text())
    assert path == tmp_path / "manifest.json"
    assert manifest["params"] == params.to_dict()
    assert manifest["packages"]["numpy"] == np.__version__
    assert set(manifest["packages"]) >= {
        "keras",
        "tensorflow",
        "numpy",
        "opencv",
        "scikit-learn",
        "pandas",
        "papermill",
    }
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


def test_records_name_paths_relative_to_the_project_and_data_outside_it_as_a_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(runs.DATA_VARIABLE, raising=False)
    assert runs.portable_path(PROJECT_ROOT / "params" / "classroom.yaml") == "params/classroom.yaml"
    assert runs.portable_path(PROJECT_ROOT) == "."
    assert runs.portable_path(tmp_path / "x") == str(tmp_path / "x")  # outside the project: as given
    assert runs.data_label(tmp_path / "fer2013") == "$FER2013_DIR"
    assert runs.data_label(PROJECT_ROOT / "data" / "fer2013") == "data/fer2013"
    monkeypatch.setenv(runs.DATA_VARIABLE, str(tmp_path / "fer2013"))
    assert runs.portable_path(tmp_path / "fer2013") == "$FER2013_DIR"
    monkeypatch.chdir(PROJECT_ROOT / "params")

    command = runs.portable_command(
        [
            "report",
            "--params",
            "classroom.yaml",
            "--data",
            str(tmp_path / "fer2013"),
            "--train-run",
            str(PROJECT_ROOT / "runs" / "a b"),
            "--set",
            "train.epochs=2",
        ]
    )

    assert command == (
        'python -m fer_lib report --params params/classroom.yaml --data "$FER2013_DIR" '
        "--train-run 'runs/a b' --set train.epochs=2"
    )


def test_manifest_records_the_command_line_and_thread_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runs, "_command", ["train", "--params", str(PROJECT_ROOT / "params" / "default.yaml")])
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "1")

    manifest = json.loads(runs.write_manifest(tmp_path, Params()).read_text())

    assert manifest["command"] == "python -m fer_lib train --params params/default.yaml"
    assert manifest["threads"]["env"]["TF_NUM_INTRAOP_THREADS"] == "1"
    assert {"tf_intra_op_threads", "tf_inter_op_threads", "tf_op_determinism"} <= set(manifest["threads"])


def test_dirty_tree_warning_is_one_line_when_the_tree_is_not_clean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runs, "git_dirty", lambda: True)
    warning = runs.dirty_tree_warning("this report")
    assert warning.startswith("WARNING: ") and "\n" not in warning and "dirty=true" in warning
    monkeypatch.setattr(runs, "git_dirty", lambda: False)
    assert runs.dirty_tree_warning("this report") is None


def test_named_run_dir_is_exact_and_never_reused(tmp_path: Path) -> None:
    folder = runs.new_run_dir(tmp_path, "fer2013-best", exact=True)
    assert folder == tmp_path / "fer2013-best" and folder.is_dir()
    with pytest.raises(runs.RunExistsError, match="fer2013-best: exists"):
        runs.new_run_dir(tmp_path, "fer2013-best", exact=True)


def test_model_provenance_ties_the_model_file_to_its_report(tmp_path: Path) -> None:
    model, report = tmp_path / "m.keras", tmp_path / "report"
    model.write_bytes(b"weights")
    report.mkdir()
    with pytest.raises(runs.FerError, match="training_manifest.json: not found"):
        runs.write_model_provenance(report, model=model)
    (report / "training_manifest.json").write_text(json.dumps({"git": {"commit": "c" * 40, "dirty": False}}))

    record = json.loads(runs.write_model_provenance(report, model=model).read_text())

    assert record == {
        "model": "m.keras",
        "sha256": runs.file_sha256(model),
        "report": str(report),
        "training_git": {"commit": "c" * 40, "dirty": False},
    }
    assert (tmp_path / "m.json").is_file()
