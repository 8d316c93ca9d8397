"""Training: honest histories, checkpoints, exact resume after SIGKILL, determinism across processes,
never overwriting runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import EAGER_SUBPROCESS, TINY_RUN, write_params

from fer_lib.data import load_dataset
from fer_lib.errors import RunExistsError
from fer_lib.model import load_model
from fer_lib.params import load_params, with_overrides
from fer_lib.paths import HISTORY_COLUMNS, PROJECT_ROOT
from fer_lib.study.training_run import TrainResult, load_run, open_run, train

THREADS = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
"""The thread settings under which two processes must train bit-identically."""


AVERAGED = {**TINY_RUN, "train": {**TINY_RUN["train"], "epochs": 3, "select": "average", "average_epochs": 2}}
"""The tiny recipe for 3 epochs keeping the mean of the last two: long enough to be killed mid-run,
and it writes every kind of checkpoint (per-epoch weights, the averaged model)."""


def weights_of(model_path: Path) -> list[np.ndarray]:
    return [np.asarray(w) for w in load_model(model_path).get_weights()]


def train_command(params_path: Path, out: Path) -> list[str]:
    """``python -m fer_lib train`` as a user types it."""
    return [sys.executable, "-m", "fer_lib", "train", "--params", str(params_path), "--out", str(out)]


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:data:`AVERAGED` trained straight through by the train command in a fresh process with
    :data:`THREADS` (its params file ``p.yaml`` beside it); tests only read it."""
    folder = tmp_path_factory.mktemp("straight")
    params_path = write_params(folder / "p.yaml", AVERAGED)
    subprocess.run(
        train_command(params_path, folder / "run"),
        check=True,
        cwd=PROJECT_ROOT,
        env={**os.environ, **THREADS, **EAGER_SUBPROCESS},
        capture_output=True,
    )
    return folder / "run"


@pytest.mark.slow
def test_history_records_fit_time_and_inference_mode_metrics(tiny_run: TrainResult) -> None:
    run = tiny_run.run_dir
    assert list(tiny_run.history.columns) == list(HISTORY_COLUMNS)
    assert tiny_run.history["epoch"].tolist() == [1, 2]
    for column in ("fit_accuracy", "train_accuracy", "val_accuracy"):
        assert tiny_run.history[column].between(0, 1).all()
    assert (tiny_run.history["fit_loss"] > 0).all()
    assert json.loads((run / "state.json").read_text())["finished"] is True
    assert (run / "manifest.json").is_file()
    reloaded = load_run(run)
    assert reloaded.history.equals(tiny_run.history)
    assert tiny_run.kept_epoch == reloaded.kept_epoch == 2  # train.select: last
    params = load_params(run.parent / "tiny.yaml")
    with pytest.raises(RunExistsError, match="finished"):
        train(params, load_dataset(params), run, verbose=0)


@pytest.mark.slow
def test_select_average_keeps_the_mean_of_the_last_epochs_with_recomputed_batchnorm(straight_run: Path) -> None:
    run = straight_run
    result = load_run(run)
    assert result.averaged_epochs == [2, 3]
    assert sorted(path.name for path in run.glob("epoch-*.weights.h5")) == [
        "epoch-002.weights.h5",
        "epoch-003.weights.h5",
    ]
    averaged = json.loads((run / "state.json").read_text())["averaged"]
    assert averaged["epochs"] == [2, 3] and 0 <= averaged["val_accuracy"] <= 1 and 0 <= averaged["train_accuracy"] <= 1
    epochs = []
    for epoch in (2, 3):
        model = load_model(result.model_path)
        model.load_weights(run / f"epoch-{epoch:03d}.weights.h5")
        epochs.append({variable.path: np.asarray(variable) for variable in model.weights})
    moving_statistics_equal_the_mean = []
    for variable in result.model.weights:
        mean = (epochs[0][variable.path] + epochs[1][variable.path]) / 2
        if "moving_" in variable.path:  # recomputed on Training faces, not averaged
            moving_statistics_equal_the_mean.append(np.allclose(np.asarray(variable), mean, rtol=1e-3))
        else:
            np.testing.assert_allclose(np.asarray(variable), mean, rtol=1e-5, atol=1e-6)
    assert moving_statistics_equal_the_mean and not all(moving_statistics_equal_the_mean)


def test_refuses_folder_that_is_not_a_run(tmp_path: Path) -> None:
    params = load_params(write_params(tmp_path / "p.yaml", TINY_RUN))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("precious")
    with pytest.raises(RunExistsError, match="not a training run"):
        train(params, load_dataset(params), tmp_path / "run", verbose=0)
    assert (tmp_path / "run" / "notes.txt").read_text() == "precious"


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(straight_run: Path, tmp_path: Path) -> None:
    """Three processes with the same thread settings: one trained straight through (``straight_run``),
    one is killed in epoch 2 and a third resumes it; the resumed run ends bit-identical to the straight
    one (so two processes with the same thread settings train bit-identically, and resuming changes
    nothing, the averaged epochs included)."""
    params_path = straight_run.parent / "p.yaml"
    env = {**os.environ, **THREADS, **EAGER_SUBPROCESS, "PYTHONUNBUFFERED": "1"}

    interrupted = tmp_path / "interrupted"
    process = subprocess.Popen(
        train_command(params_path, interrupted),
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    state_path = interrupted / "state.json"
    deadline = time.monotonic() + 300
    while not (state_path.is_file() and json.loads(state_path.read_text())["epochs_done"] >= 1):
        assert process.poll() is None and time.monotonic() < deadline, "training ended before it could be killed"
        time.sleep(0.05)
    time.sleep(0.3)  # into epoch 2
    process.send_signal(signal.SIGKILL)
    process.wait()
    state = json.loads(state_path.read_text())
    assert not state["finished"] and state["epochs_done"] < 3, "the kill came too late to test resuming"

    resumed = subprocess.run(
        train_command(params_path, interrupted), cwd=PROJECT_ROOT, env=env, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"Resuming {interrupted} after epoch {state['epochs_done']}" in resumed.stdout
    for straight_weight, resumed_weight in zip(
        weights_of(straight_run / "model.keras"), weights_of(interrupted / "model.keras"), strict=True
    ):
        np.testing.assert_array_equal(straight_weight, resumed_weight)
    timing = ["seconds", "eval_seconds"]
    straight_history, resumed_history = (
        load_run(run).history.drop(columns=timing) for run in (straight_run, interrupted)
    )
    assert straight_history["epoch"].tolist() == [1, 2, 3]
    assert straight_history.equals(resumed_history)
    manifest = json.loads((straight_run / "manifest.json").read_text())
    assert manifest["threads"]["env"]["TF_NUM_INTRAOP_THREADS"] == "1"
    assert manifest["threads"]["tf_op_determinism"] is True
    assert manifest["command"].startswith("python -m fer_lib train --params ")


@pytest.mark.slow
def test_train_from_block_keeps_the_first_blocks_frozen_across_a_resume(tmp_path: Path) -> None:
    """``model.train_from_block``: in the second stage the stem and the blocks before it keep their weights
    (BatchNorm statistics included), the later blocks learn, and a run stopped and resumed keeps it so."""
    from fer_lib.model import BACKBONE_NAME
    from fer_lib.paths import RunLayout

    recipe = {
        **TINY_RUN,
        "model": {**TINY_RUN["model"], "freeze": "staged", "train_from_block": 6},
        "train": {**TINY_RUN["train"], "epochs": 3, "warmup_epochs": 1},
    }
    params = load_params(write_params(tmp_path / "p.yaml", recipe))
    dataset, run = load_dataset(params), tmp_path / "run"
    train(params, dataset, run, max_epochs=1, verbose=0)  # the head-only stage: the backbone as it started
    start = load_model(RunLayout(run).checkpoint).get_layer(BACKBONE_NAME)
    train(params, dataset, run, max_epochs=2, verbose=0)  # stopped after the first epoch of stage 2
    final = train(params, dataset, run, verbose=0).model.get_layer(BACKBONE_NAME)  # resumed from its checkpoint
    names = [layer.name for layer in final.layers]
    first = names.index("block_6_expand")
    unchanged = [
        all(map(np.array_equal, layer.get_weights(), start.get_layer(layer.name).get_weights()))
        for layer in final.layers
        if layer.get_weights()
    ]
    trained_before = sum(bool(layer.get_weights()) for layer in final.layers[:first])
    assert all(unchanged[:trained_before])  # stem and blocks 0-5: as they started
    assert not any(unchanged[trained_before:])  # blocks 6-16 and the last 1x1 conv: trained


def test_a_finished_run_reopened_for_its_report_scores_no_teachers(tiny_run: TrainResult, tmp_path: Path) -> None:
    """``report --train-run`` reopens a finished run: a distilled run's teachers (``train.teachers``, minutes of
    scoring) are not scored again; here a missing teacher would raise if they were."""
    params = load_params(tiny_run.run_dir.parent / "tiny.yaml")
    distilled = with_overrides(params, {"train.teachers": [str(tmp_path / "no_teacher.keras")]}, "test")
    run = open_run(distilled, load_dataset(params), tiny_run.run_dir, reuse_finished=True)
    assert run.batches.targets is None and not list(run.epochs_to_do())
