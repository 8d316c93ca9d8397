"""The reproduce command on the session's tiny synthetic run (32 px, 2 epochs): a second training in the
same process is bit-identical; determinism across processes is asserted by test_training's SIGKILL test."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from fer_lib.study.cli import main
from fer_lib.study.reproduce import METRIC_COLUMNS, compare_histories
from fer_lib.study.training_run import TrainResult


def as_report(run_dir: Path, report_dir: Path) -> Path:
    """A minimal report folder holding ``run_dir``'s history and manifest, as ``report --train-run`` copies them."""
    report_dir.mkdir()
    shutil.copy2(run_dir / "history.csv", report_dir / "training_history.csv")
    shutil.copy2(run_dir / "manifest.json", report_dir / "training_manifest.json")
    return report_dir


@pytest.fixture
def committed_run(tiny_run: TrainResult) -> Path:
    """The session's finished 2-epoch tiny run, trained in this process, as a report's training run."""
    return tiny_run.run_dir


@pytest.mark.slow
def test_reproduce_of_the_first_epoch_on_the_same_machine_is_identical(
    committed_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = as_report(committed_run, tmp_path / "report")

    code = main(["reproduce", str(report), "--epochs", "1", "--out", str(tmp_path / "again")])

    out = capsys.readouterr().out
    assert code == 0, out
    assert "verdict: IDENTICAL: every metric of epochs 1-1 is bit-identical" in out
    assert "PublicTest" in out and "committed reproduced diff (pp)" in out
    assert "committed run (" in out and "this run (" in out
    state = json.loads((tmp_path / "again" / "state.json").read_text())
    assert state["epochs_done"] == 1 and not state["finished"]  # stopped early, resumable
    again = pd.read_csv(tmp_path / "again" / "history.csv")
    committed = pd.read_csv(committed_run / "history.csv")
    # the schedule is the whole run's: epoch 1 of a 1-epoch stop equals epoch 1 of the 2-epoch run
    assert again[list(METRIC_COLUMNS)].equals(committed[list(METRIC_COLUMNS)].iloc[:1])


@pytest.mark.slow
def test_reproduce_outside_tolerance_exits_3(
    committed_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = as_report(committed_run, tmp_path / "report")
    history = pd.read_csv(report / "training_history.csv")
    history.loc[0, "val_accuracy"] += 0.2  # 20 points better than what the code gives
    history.to_csv(report / "training_history.csv", index=False)

    code = main(["reproduce", str(report), "--epochs", "1", "--out", str(tmp_path / "again")])

    assert code == 3
    assert "verdict: OUTSIDE TOLERANCE" in capsys.readouterr().out


def test_reproduce_refuses_a_report_without_history_and_an_existing_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "report").mkdir()
    assert main(["reproduce", str(tmp_path / "report")]) == 2
    assert "no training_history.csv" in capsys.readouterr().err
    assert main(["reproduce", str(tmp_path / "report"), "--out", str(tmp_path)]) == 2
    assert "exists; reproduce never reuses a folder" in capsys.readouterr().err


def history(val: list[float], lr: float = 1e-3) -> pd.DataFrame:
    """A history table with the given PublicTest accuracies."""
    return pd.DataFrame(
        {
            "epoch": range(1, len(val) + 1),
            "fit_accuracy": 0.5,
            "fit_loss": 1.0,
            "train_accuracy": 0.5,
            "train_loss": 1.0,
            "val_accuracy": val,
            "val_loss": 1.0,
            "learning_rate": lr,
            "seconds": 1.0,
            "eval_seconds": 1.0,
        }
    )


def test_compare_histories_verdicts() -> None:
    committed = history([0.40, 0.42, 0.55])

    assert compare_histories(committed, history([0.40, 0.42, 0.55]).assign(seconds=9.0)).identical
    partial = compare_histories(committed, history([0.40, 0.47]))  # epoch 2 off by 5 points
    assert partial.within_tolerance and not partial.identical
    assert partial.verdict.startswith("WITHIN TOLERANCE") and "final accuracy is not checked" in partial.verdict
    assert partial.table["PublicTest diff (pp)"].round(6).tolist() == [0.0, 5.0]
    far = compare_histories(committed, history([0.40, 0.49]))
    assert not far.within_tolerance and "epoch 2: PublicTest differs by +7.0 pp" in far.verdict
    whole = compare_histories(committed, history([0.40, 0.47, 0.565]))  # ends 1.5 points apart
    assert not whole.within_tolerance and "kept epoch's PublicTest differs by +1.5 pp" in whole.verdict
    best = compare_histories(history([0.40, 0.60, 0.55]), history([0.40, 0.605, 0.50]), select="best_val")
    assert best.within_tolerance and "epoch 2, train.select: best_val" in best.verdict
