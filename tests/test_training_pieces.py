"""The pieces notebook 2 shows (recipe, layers, batches, schedule, the loop) are those train() runs.

That notebook 2 itself trains what ``train`` trains (same history, same weights) is asserted by
test_portable_report (its report's staged training reproduced bit-identically); that it loads a finished
run instead of training again, by test_papers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import write_params

from fer_lib.data import load_dataset
from fer_lib.dataset import FaceDataset
from fer_lib.params import FacesParams, Params, load_params, with_overrides
from fer_lib.paths import PROJECT_ROOT
from fer_lib.recipe import fine_tune, make_loss
from fer_lib.study.training_run import open_run, train, training_record
from fer_lib.training import (
    FaceBatches,
    augmentation_examples,
    fine_tune_options,
    last_epoch_table,
    layer_table,
    learning_rate_curve,
    recipe_table,
)

STAGED = {
    "name": "staged_tiny",
    "seed": 3,
    "data": {"source": "synthetic", "synthetic_per_class": 6},
    "model": {"input_size": 32, "alpha": 0.35, "weights": "none", "dropout": 0.2, "freeze": "staged"},
    "train": {
        "epochs": 3,
        "warmup_epochs": 1,
        "batch_size": 16,
        "optimizer": "adamw",
        "learning_rate": 0.001,
        "head_learning_rate": 0.004,
        "weight_decay": 0.0001,
        "schedule": "cosine",
        "label_smoothing": 0.1,
        "augment": {"flip": True, "rotation_degrees": 10, "shift_fraction": 0.1},
        "train_eval_subset": None,
    },
}


def staged_params(tmp_path: Path, **overrides: object) -> Params:
    """:data:`STAGED` (with ``overrides``), loaded from a params file in ``tmp_path``."""
    return load_params(write_params(tmp_path / "staged.yaml", STAGED), overrides=overrides or None)


def test_recipe_table_names_every_setting_of_a_staged_recipe(tmp_path: Path) -> None:
    params = staged_params(tmp_path)
    table = recipe_table(params)
    assert table.loc["train.head_learning_rate", "value"] == "0.004"
    assert table.loc["train.schedule", "value"] == "cosine"
    assert table.loc["loss", "value"] == "cross-entropy, label smoothing 0.1"
    assert table.loc["train.augment", "value"] == "flip, rotate +-10 deg, shift +-10%"
    assert "train.head_learning_rate" not in recipe_table(load_params(PROJECT_ROOT / "params" / "default.yaml")).index


def test_learning_rate_curve_is_the_schedule_of_each_stage(tmp_path: Path) -> None:
    params = staged_params(tmp_path)
    options = fine_tune_options(params, steps_per_epoch=4)
    curve = learning_rate_curve(options, epochs=params.train.epochs, steps_per_epoch=4)
    head, whole = (curve[curve["stage"] == stage] for stage in curve["stage"].unique())
    assert len(head) == 4 and (head["learning_rate"] == 0.004).all()
    assert len(whole) == 8 and whole["learning_rate"].iloc[0] == pytest.approx(0.001)
    assert whole["learning_rate"].is_monotonic_decreasing and whole["learning_rate"].iloc[-1] > 0
    assert curve["epoch"].tolist() == [step / 4 for step in range(12)]
    assert options["warmup_epochs"] == 1 and options["head_learning_rate"] == 0.004 and options["decay_steps"] == 8
    loss = make_loss(label_smoothing=options["label_smoothing"], soft_targets=options["soft_targets"])
    assert isinstance(loss, keras.losses.CategoricalCrossentropy)


@pytest.mark.parametrize(("freeze", "warmup"), [("none", 0), ("staged", 1), ("backbone", 3)])
def test_each_freeze_policy_is_a_warmup_of_fine_tune(tmp_path: Path, freeze: str, warmup: int) -> None:
    options = fine_tune_options(staged_params(tmp_path, **{"model.freeze": freeze}), steps_per_epoch=4)
    assert options["warmup_epochs"] == warmup
    assert options["head_learning_rate"] == (0.004 if freeze == "staged" else 0.001)
    assert options["decay_steps"] == (3 - warmup) * 4


def batches_of(params: Params, training: FaceDataset, *, one_hot: bool) -> FaceBatches:
    """Batches of 16 of ``training`` with the augmentation and seed of ``params``, every face weighted 1."""
    return FaceBatches(
        training.faces,
        training.labels,
        batch_size=16,
        augmentation=params.train.augment,
        seed=params.seed,
        sample_weights=np.ones(len(training), np.float32),
        one_hot=one_hot,
    )


def test_augmentation_examples_are_the_first_batch_as_stored_and_as_fitted(tmp_path: Path) -> None:
    params = staged_params(tmp_path)
    training = load_dataset(params).split("Training")
    batches = batches_of(params, training, one_hot=False)
    batches.set_epoch(2)
    originals, augmented, labels = augmentation_examples(batches, count=5)
    assert batches.epoch == 2  # left as it was
    batches.set_epoch(0)
    np.testing.assert_array_equal(augmented, batches[0][0][:5, ..., 0])
    np.testing.assert_array_equal(originals, training.faces[batches.order[:5]])
    np.testing.assert_array_equal(labels, training.labels[batches.order[:5]])
    assert not np.array_equal(originals.astype(np.float32), augmented)


def test_mixup_batches_carry_blended_one_hot_targets_even_without_label_smoothing(tmp_path: Path) -> None:
    params = staged_params(tmp_path, **{"train.label_smoothing": 0.0, "train.augment.mixup_alpha": 0.2})
    assert fine_tune_options(params, steps_per_epoch=1)["soft_targets"]
    assert recipe_table(params).loc["train.augment", "value"].endswith("mixup alpha=0.2")
    training = load_dataset(params).split("Training")
    batches = batches_of(params, training, one_hot=True)
    x, y, weights = batches[0]
    assert x.shape == (16, 48, 48, 1) and y.shape == (16, 7)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)
    assert ((y > 0) & (y < 1)).any()  # blended targets
    np.testing.assert_allclose(weights, 1.0)
    np.testing.assert_array_equal(batches[0][0], x)  # reproducible per (seed, epoch, batch)


@pytest.mark.slow
def test_open_run_builds_the_staged_model_that_train_fits_and_records_the_schedule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = staged_params(tmp_path)
    dataset = load_dataset(params)
    run = open_run(params, dataset, tmp_path / "opened")
    layers = layer_table(run.model)
    assert layers.loc["backbone", "trains now"] == True  # noqa: E712 - numpy bool; fine_tune freezes it
    assert layers["parameters"].sum() == run.model.count_params()
    assert list(run.epochs_to_do()) == [0, 1, 2]
    assert list(open_run(params, dataset, tmp_path / "short", max_epochs=1).epochs_to_do()) == [0]

    result = train(params, dataset, tmp_path / "trained", verbose=0)
    steps = len(run.batches)
    cosine = keras.optimizers.schedules.CosineDecay(0.001, decay_steps=2 * steps)
    expected = [0.004] + [float(cosine((epoch - 1) * steps)) for epoch in (2, 3)]
    np.testing.assert_allclose(result.history["learning_rate"], expected, rtol=1e-5, atol=1e-9)
    table = last_epoch_table(result.history)
    assert table.loc["gap: Training fit-time - inference mode (points)", "accuracy (%)"] == pytest.approx(
        100 * (result.history["fit_accuracy"].iloc[-1] - result.history["train_accuracy"].iloc[-1])
    )
    assert training_record(result)["final_epoch"]["epoch"] == 3

    capsys.readouterr()
    finished = open_run(params, dataset, tmp_path / "trained", reuse_finished=True)
    assert list(finished.epochs_to_do()) == [] and finished.finish().history.equals(result.history)
    # only what training depends on is compared with the run's record, not e.g. the photo check's detector
    open_run(
        dataclasses.replace(params, name="other", faces=FacesParams(detector="haar")),
        dataset,
        tmp_path / "trained",
        reuse_finished=True,
    )
    assert "WARNING" not in capsys.readouterr().out
    open_run(
        with_overrides(params, {"train.label_smoothing": 0.0}, "test"),
        dataset,
        tmp_path / "trained",
        reuse_finished=True,
    )
    assert "was trained with other params than these: train.label_smoothing" in capsys.readouterr().out


@pytest.mark.slow
def test_fine_tune_keeps_the_backbone_frozen_in_the_warmup_and_trains_the_head(tmp_path: Path) -> None:
    params = staged_params(tmp_path)
    run = open_run(params, load_dataset(params), tmp_path / "warmup", max_epochs=1)
    backbone_before = [np.array(weight) for weight in run.model.get_layer("backbone").get_weights()]
    head_before = np.array(run.model.get_layer("probabilities").get_weights()[0])

    fine_tune(run, **fine_tune_options(params, steps_per_epoch=len(run.batches)), verbose=0)

    for before, after in zip(backbone_before, run.model.get_layer("backbone").get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)  # weights and BatchNorm statistics untouched
    assert not np.array_equal(head_before, run.model.get_layer("probabilities").get_weights()[0])
