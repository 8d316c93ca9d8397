"""One definition of a finished training run, and one owner of the run and report folder layouts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fer_lib.errors import DataError
from fer_lib.paths import ReportLayout, RunLayout
from fer_lib.study.report import copy_training_records
from fer_lib.study.runs import is_finished, require_finished


def fake_run(folder: Path, *, finished: bool = True, model: bool = True, history: bool = True) -> RunLayout:
    """A run folder holding only the files the finished-run check reads (placeholders, no real model)."""
    layout = RunLayout(folder)
    folder.mkdir(parents=True)
    layout.state.write_text(json.dumps({"epochs_done": 2, "finished": finished}))
    if model:
        layout.model.write_bytes(b"placeholder")
    if history:
        layout.history.write_text("epoch,val_accuracy\n1,0.5\n2,0.6\n")
    layout.manifest.write_text("{}")
    return layout


@pytest.mark.parametrize(
    ("kwargs", "finished"),
    [({}, True), ({"finished": False}, False), ({"model": False}, False), ({"history": False}, False)],
)
def test_a_finished_run_has_a_finished_state_a_model_and_a_history(
    tmp_path: Path, kwargs: dict, finished: bool
) -> None:
    layout = fake_run(tmp_path / "run", **kwargs)
    assert is_finished(layout.root) is finished
    if finished:
        assert require_finished(layout.root) == layout
    else:
        with pytest.raises(DataError, match=r"run: not a finished training run"):
            require_finished(layout.root)


def test_an_empty_folder_is_not_a_finished_run(tmp_path: Path) -> None:
    assert not is_finished(tmp_path)
    with pytest.raises(DataError, match="not a finished training run"):
        require_finished(tmp_path / "absent")


def test_the_report_copies_the_training_records_where_the_layout_says(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "run")
    report = ReportLayout(tmp_path / "report")
    report.root.mkdir()
    copies = copy_training_records(run.root, report.root)
    assert copies == [report.training_history, report.training_manifest]
    assert report.training_history.read_text() == run.history.read_text()
    assert report.trained_model == report.training_run / "model.keras" == RunLayout(report.training_run).model
