"""Knowledge distillation (``train.teachers``): the targets a distilled run fits, and what its run records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import build_tiny_model, random_faces
from test_training_pieces import staged_params

from fer_lib.classifiers import load_classifier
from fer_lib.data import load_dataset
from fer_lib.errors import ModelError, ParamsError, RunExistsError
from fer_lib.study.runs import file_sha256
from fer_lib.study.training_run import open_run
from fer_lib.training import distillation_targets, fine_tune_options, recipe_table


@pytest.fixture(scope="module")
def teachers(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Two stand-in classifiers that disagree, saved as ``.keras`` (absolute paths)."""
    folder = tmp_path_factory.mktemp("teachers")
    paths = [folder / f"teacher{seed}.keras" for seed in (0, 7)]
    for seed, path in zip((0, 7), paths, strict=True):
        build_tiny_model(seed).save(path)
    return [str(path) for path in paths]


def test_targets_mix_the_one_hot_label_with_the_teachers_mean_flip_probabilities(teachers: list[str]) -> None:
    faces, labels = random_faces(12, seed=3), np.arange(12) % 7
    ensemble = np.mean([load_classifier(path).predict_proba(faces, tta="flip") for path in teachers], axis=0)
    np.testing.assert_array_equal(distillation_targets(faces, labels, teachers=teachers, weight=0.0), np.eye(7)[labels])
    np.testing.assert_allclose(distillation_targets(faces, labels, teachers=teachers, weight=1.0), ensemble, atol=1e-6)
    mixed = distillation_targets(faces, labels, teachers=teachers, weight=0.8)
    assert mixed.dtype == np.float32 and mixed.shape == (12, 7)
    np.testing.assert_allclose(mixed, 0.2 * np.eye(7)[labels] + 0.8 * ensemble, atol=1e-6)
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0, rtol=1e-6)
    assert not np.allclose(ensemble, load_classifier(teachers[0]).predict_proba(faces, tta="flip"))  # both count


def test_a_distilled_run_fits_the_teachers_targets_and_records_each_teachers_sha256(
    tmp_path: Path, teachers: list[str]
) -> None:
    params = staged_params(tmp_path, **{"train.teachers": teachers, "train.teacher_weight": 0.5})
    assert fine_tune_options(params, steps_per_epoch=1)["soft_targets"]
    assert recipe_table(params).loc["train.teachers", "value"] == "2 models, weight 0.5"
    dataset = load_dataset(params)
    run = open_run(params, dataset, tmp_path / "run")
    training = dataset.split("Training")
    expected = distillation_targets(training.faces, training.labels, teachers=teachers, weight=0.5)
    np.testing.assert_allclose(run.batches.targets, expected)
    _, y, _ = run.batches[0]
    np.testing.assert_allclose(y, expected[run.batches.order[:16]])
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["teachers_sha256"] == {path: file_sha256(path) for path in teachers}


def test_a_resumed_distilled_run_fits_the_targets_its_teachers_gave_when_it_started(
    tmp_path: Path, teachers: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    params = staged_params(tmp_path, **{"train.teachers": teachers})
    dataset = load_dataset(params)
    started = open_run(params, dataset, tmp_path / "run").batches.targets
    np.testing.assert_array_equal(np.load(tmp_path / "run" / "teacher_targets.npy"), started)

    def teachers_scored_again(*args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("the teachers scored the Training faces again")

    monkeypatch.setattr("fer_lib.study.training_run.distillation_targets", teachers_scored_again)
    resumed = open_run(params, dataset, tmp_path / "run")
    np.testing.assert_array_equal(resumed.batches.targets, started)

    monkeypatch.undo()
    (tmp_path / "run" / "teacher_targets.npy").write_bytes(b"damaged")  # the teachers score again
    np.testing.assert_allclose(open_run(params, dataset, tmp_path / "run").batches.targets, started, atol=1e-6)


def test_a_folder_that_is_not_a_run_is_refused_before_the_teachers_score_anything(
    tmp_path: Path, teachers: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    params = staged_params(tmp_path, **{"train.teachers": teachers})
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")

    def teachers_scored(*args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("the teachers scored before the folder was checked")

    monkeypatch.setattr("fer_lib.study.training_run.distillation_targets", teachers_scored)
    with pytest.raises(RunExistsError, match="folder exists and is not a training run"):
        open_run(params, load_dataset(params), tmp_path / "run")


def test_a_missing_teacher_is_one_error_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_teacher.keras"
    params = staged_params(tmp_path, **{"train.teachers": [str(missing)]})
    with pytest.raises(ModelError, match="no_such_teacher.keras"):
        open_run(params, load_dataset(params), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_teacher_weight_outside_0_to_1_is_a_params_error(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="teacher_weight must be in"):
        staged_params(tmp_path, **{"train.teacher_weight": 1.5})
