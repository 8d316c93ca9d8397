"""The tables the notebooks and the CLI share: audit tables, notebook 3's evaluation helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import face_dataset, random_faces

from fer_lib.audit import audit_dataset, audit_tables, class_counts, duplicates_table, leakage_table, near_blank_table
from fer_lib.dataset import FaceDataset
from fer_lib.evaluation import evaluation_record, summary
from fer_lib.evaluation import leakage_table as evaluation_leakage_table
from fer_lib.study.cli.data import format_audit
from fer_lib.study.training_run import recorded_fit_accuracy


@pytest.fixture()
def dataset() -> FaceDataset:
    """Training a, a (duplicate), b; PublicTest a (leaked, labelled otherwise), c; PrivateTest blank."""
    a, b, c = random_faces(3)
    faces = np.stack([a, a, b, a, c, np.zeros((48, 48), np.uint8)])
    usage = ["Training"] * 3 + ["PublicTest"] * 2 + ["PrivateTest"]
    return face_dataset(faces, [0, 0, 1, 2, 3, 4], usage, source="fixture")


def test_the_cli_prints_the_tables_notebook_1_shows(dataset: FaceDataset) -> None:
    audit = audit_dataset(dataset)
    tables = audit_tables(audit)
    assert list(tables)[2] == "Held-out faces whose pixels occur in Training: 1"
    printed = format_audit(audit)
    for heading, table in tables.items():
        assert f"{heading}\n{table.to_string()}" in printed
    assert duplicates_table(audit).loc["within Training", "extra_copies"] == 1
    assert duplicates_table(audit).loc["across splits, conflicting labels", "groups"] == 1
    assert leakage_table(audit).loc["PublicTest in Training", "faces"] == 1
    assert near_blank_table(audit).loc["PrivateTest", "constant"] == 1
    assert class_counts(audit)["Training"]["angry"] == 2


def test_a_report_that_trained_nothing_has_no_recorded_fit_accuracy(tmp_path: Path) -> None:
    assert recorded_fit_accuracy(tmp_path) is None


def test_leakage_table_and_record() -> None:
    results = {
        "PublicTest": {"n": 10, "accuracy": 0.5, "macro_f1": 0.4, "report": {}},
        "PrivateTest": {"n": 10, "accuracy": 0.7, "macro_f1": 0.6},
    }
    scores = summary(results)
    deduplicated = {"PublicTest": {"n": 8, "accuracy": 0.375, "macro_f1": 0.3}}
    table = evaluation_leakage_table(scores, deduplicated, "flip")
    assert table.index.name == "accuracy (inference mode, test-time augmentation flip)"
    assert table.loc["PublicTest"].tolist() == [0.5, 0.375, 2]
    record = evaluation_record("m.keras", tta="none", synthetic=True, scores=scores, deduplicated=deduplicated)
    assert record["merged_held_out"] == {
        "splits": ["PublicTest", "PrivateTest"],
        "n": 20,
        "accuracy": pytest.approx(0.6),
    }
    assert "paper" not in record and record["dataset"] == "synthetic"
    assert isinstance(pd.DataFrame(record["splits"]), pd.DataFrame)


def test_data_record_is_what_notebook_1_saves(dataset: FaceDataset) -> None:
    from fer_lib.audit import data_record

    audit = audit_dataset(dataset)
    record = data_record(audit)
    assert record == {"dataset": "fer2013", "source": "fixture", "counts": class_counts(audit), "audit": audit}
