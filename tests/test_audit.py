"""Tests of fer_lib.audit and the ``data audit`` command."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import face_dataset, random_face, write_image

from fer_lib.audit import audit_dataset, cross_split_duplicate_mask, distribution_table
from fer_lib.data import load_fer2013
from fer_lib.dataset import FaceDataset
from fer_lib.errors import DataError
from fer_lib.study.cli import data as cli_data


def near_blank_face() -> np.ndarray:
    """Return a face of grey 100 with a few pixels at 101-103 (standard deviation about 0.1)."""
    image = np.full((48, 48), 100, np.uint8)
    image[0, :3] = (101, 102, 103)
    return image


@pytest.fixture()
def dataset() -> FaceDataset:
    """Twelve faces with known duplicates, leaks, label conflicts and blanks.

    Training: a, a' (duplicate, both angry); b; c (happy); blank (constant 0).
    PublicTest: b (leak, same label); c (leak, labelled sad: conflict across); d, d (duplicate,
    fear vs surprise: conflict within); near-blank.
    PrivateTest: d (in PublicTest, not in Training); e.
    """
    rows = [
        (random_face(1), 0, "Training", "t1"),
        (random_face(1), 0, "Training", "t2"),
        (random_face(2), 1, "Training", "t3"),
        (random_face(3), 3, "Training", "t4"),
        (np.zeros((48, 48), np.uint8), 6, "Training", "t5"),
        (random_face(2), 1, "PublicTest", "p1"),
        (random_face(3), 4, "PublicTest", "p2"),
        (random_face(4), 2, "PublicTest", "p3"),
        (random_face(4), 5, "PublicTest", "p4"),
        (near_blank_face(), 6, "PublicTest", "p5"),
        (random_face(4), 2, "PrivateTest", "q1"),
        (random_face(5), 3, "PrivateTest", "q2"),
    ]
    faces, labels, usage, ids = zip(*rows, strict=True)
    return face_dataset(np.stack(faces), list(labels), list(usage), ids=list(ids))


def test_cross_split_duplicate_mask_marks_held_out_faces_found_in_training(dataset: FaceDataset) -> None:
    mask = cross_split_duplicate_mask(dataset)
    assert dataset.ids[mask].tolist() == ["p1", "p2"]


def test_audit_counts_duplicates_leaks_conflicts_and_blanks(dataset: FaceDataset) -> None:
    audit = audit_dataset(dataset)
    assert json.loads(json.dumps(audit)) == audit
    assert audit["faces"] == 12 and audit["source"] == "test" and not audit["synthetic"]

    training = audit["class_distribution"]["Training"]
    assert training["total"] == 5
    assert list(training["counts"]) == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert training["counts"]["angry"] == 2 and training["percent"]["angry"] == 40.0

    within = audit["duplicates_within_splits"]
    assert within["Training"] == {
        "groups": 1,
        "faces": 2,
        "extra_copies": 1,
        "examples": [["t1 (angry)", "t2 (angry)"]],
    }
    assert within["PublicTest"]["groups"] == 1 and within["PrivateTest"]["groups"] == 0

    across = audit["duplicates_across_splits"]
    assert across["held_out_in_training"] == 2
    assert across["pairs"]["PublicTest"]["Training"]["faces"] == 2
    assert across["pairs"]["PublicTest"]["Training"]["percent"] == 40.0
    assert across["pairs"]["PublicTest"]["Training"]["examples"] == [
        ["p1 (disgust)", "t3 (disgust)"],
        ["p2 (sad)", "t4 (happy)"],
    ]
    assert across["pairs"]["PrivateTest"]["Training"]["faces"] == 0
    assert across["pairs"]["PrivateTest"]["PublicTest"]["faces"] == 1

    conflicts = audit["label_conflicts"]
    assert conflicts["within"]["PublicTest"]["examples"] == [["p3 (fear)", "p4 (surprise)"]]
    assert conflicts["within"]["Training"]["groups"] == 0
    assert conflicts["across"]["groups"] == 2  # c (happy/sad) and d (fear/surprise, PublicTest + PrivateTest)
    assert conflicts["across"]["faces"] == 5

    assert audit["near_blank"]["Training"] == {"near_blank": 1, "constant": 1, "examples": ["t5"]}
    assert audit["near_blank"]["PublicTest"] == {"near_blank": 1, "constant": 0, "examples": ["p5"]}


def test_distribution_table_has_a_row_per_split(dataset: FaceDataset) -> None:
    table = distribution_table(audit_dataset(dataset))
    assert table.index.tolist() == ["Training", "PublicTest", "PrivateTest"]
    assert table.loc["Training", "angry"] == "2 (40.0%)"
    assert table.loc["PublicTest", "total"] == 5


@pytest.mark.realdata
def test_real_fer2013_audit_figures(fer2013_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    audit = audit_dataset(load_fer2013(fer2013_dir, cache_dir=tmp_path_factory.getbasetemp() / "fer-cache"))
    within = audit["duplicates_within_splits"]
    assert (within["Training"]["groups"], within["Training"]["faces"], within["Training"]["extra_copies"]) == (
        1035,
        2271,
        1236,
    )
    assert (within["PublicTest"]["groups"], within["PublicTest"]["faces"]) == (26, 52)
    assert audit["duplicates_across_splits"]["held_out_in_training"] == 280
    assert audit["duplicates_across_splits"]["pairs"]["PublicTest"]["Training"]["percent"] == 7.8
    conflicts = audit["label_conflicts"]
    assert (conflicts["within"]["Training"]["groups"], conflicts["within"]["Training"]["faces"]) == (39, 107)
    assert conflicts["within"]["PublicTest"]["groups"] == 1
    assert (conflicts["across"]["groups"], conflicts["across"]["faces"]) == (13, 44)
    assert audit["near_blank"]["Training"]["near_blank"] == 12 and audit["near_blank"]["Training"]["constant"] == 11
    assert audit["near_blank"]["PublicTest"]["near_blank"] == 1


# --- CLI ------------------------------------------------------------------------------------------


def run_cli(*argv: str) -> int:
    """Parse ``argv`` with a parser holding only the ``data`` command and run its handler."""
    parser = argparse.ArgumentParser()
    cli_data.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """A tiny image folder: two Training faces (one duplicated in PublicTest)."""
    for name, seed in (
        ("train/happy/Training_1.png", 1),
        ("train/sad/Training_2.png", 2),
        ("test/happy/PublicTest_3.png", 1),
    ):
        write_image(tmp_path / "fer" / name, random_face(seed))
    return tmp_path / "fer"


def test_cli_audit_prints_json(folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("data", "audit", "--data", str(folder), "--json", "--cache-dir", str(tmp_path / "cache")) == 0
    audit = json.loads(capsys.readouterr().out)
    assert audit["duplicates_across_splits"]["held_out_in_training"] == 1
    assert audit["class_distribution"]["Training"]["counts"]["sad"] == 1


def test_cli_audit_prints_tables_and_reads_env(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FER2013_DIR", str(folder))
    assert run_cli("data", "audit", "--cache-dir", str(tmp_path / "cache")) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{folder}: 3 faces")
    assert "Faces per class and split" in out
    assert "Held-out faces whose pixels occur in Training: 1" in out


def test_cli_audit_without_data_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FER2013_DIR", raising=False)
    with pytest.raises(DataError, match="pass --data DIR"):
        run_cli("data", "audit")
