"""Tests of fer_lib.data: the image-folder and CSV loaders, their errors, the cache and the helpers."""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import face_dataset, pixel_text, random_face, write_image

import fer_lib.data as data
from fer_lib.audit import drop_cross_split_duplicates
from fer_lib.data import load_csv, load_dataset, load_fer2013, load_image_folder, stratified_subset
from fer_lib.dataset import FaceDataset
from fer_lib.errors import DataError
from fer_lib.labels import EMOTIONS, LABEL_INDEX
from fer_lib.params import Params

REAL_TRAINING = {
    "angry": 3995,
    "disgust": 436,
    "fear": 4097,
    "happy": 7215,
    "sad": 4830,
    "surprise": 3171,
    "neutral": 4965,
}
REAL_PUBLIC_TEST = {"angry": 467, "disgust": 56, "fear": 496, "happy": 895, "sad": 653, "surprise": 415, "neutral": 607}


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """A tiny Kaggle-layout folder of lossless PNG faces (ids end in the seed of their pixels)."""
    root = tmp_path / "fer"
    layout = [
        ("train/neutral/Training_11.png", 11),
        ("train/sad/Training_12.png", 12),
        ("train/surprise/Training_13.png", 13),
        ("train/angry/Training_14.png", 14),
        ("train/angry/Training_10.png", 10),
        ("test/happy/PublicTest_21.png", 21),
        ("test/happy/PrivateTest_31.png", 31),
    ]
    for name, seed in layout:
        write_image(root / name, random_face(seed))
    return root


def write_csv(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    """Write a fer2013.csv with the given (emotion, pixels, Usage) rows."""
    lines = ["emotion,pixels,Usage"] + [",".join(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- image folder ---------------------------------------------------------------------------------


def test_folder_labels_come_from_folder_names_not_sort_order(folder: Path) -> None:
    dataset = load_image_folder(folder)
    by_id = {face_id: index for index, face_id in enumerate(dataset.ids)}
    assert dataset.labels[by_id["Training_11"]] == 6  # neutral
    assert dataset.labels[by_id["Training_12"]] == 4  # sad
    assert dataset.labels[by_id["Training_13"]] == 5  # surprise
    assert dataset.labels[by_id["PublicTest_21"]] == LABEL_INDEX["happy"]
    for face_id, index in by_id.items():
        np.testing.assert_array_equal(dataset.faces[index], random_face(int(face_id.split("_")[1])))


def test_folder_split_from_prefix_and_deterministic_order(folder: Path) -> None:
    dataset = load_image_folder(folder)
    assert dataset.ids.tolist() == [
        "Training_10",
        "Training_14",
        "Training_12",
        "Training_13",
        "Training_11",
        "PublicTest_21",
        "PrivateTest_31",
    ]
    assert dataset.usage.tolist() == ["Training"] * 5 + ["PublicTest", "PrivateTest"]
    assert dataset.splits == ["Training", "PublicTest", "PrivateTest"]
    assert dataset.faces.dtype == np.uint8 and dataset.faces.shape == (7, 48, 48)
    assert dataset.labels.dtype == np.int64
    assert dataset.source == str(folder)


def test_folder_accepts_class_folders_directly_and_any_case(tmp_path: Path) -> None:
    write_image(tmp_path / "Happy" / "Training_1.png", random_face(1))
    write_image(tmp_path / "fear" / "PublicTest_2.jpg", random_face(2))
    dataset = load_image_folder(tmp_path)
    assert dataset.labels.tolist() == [LABEL_INDEX["happy"], LABEL_INDEX["fear"]]


def test_folder_ignores_hidden_and_non_image_files(folder: Path) -> None:
    (folder / "train" / "angry" / "notes.txt").write_text("not a face")
    (folder / "train" / "angry" / ".Training_99.jpg").write_bytes(b"macOS resource fork")
    assert len(load_image_folder(folder)) == 7


def test_folder_accepts_grey_saved_as_three_equal_channels(tmp_path: Path) -> None:
    face = random_face(5)
    write_image(tmp_path / "train" / "sad" / "Training_5.png", cv2.cvtColor(face, cv2.COLOR_GRAY2BGR))
    np.testing.assert_array_equal(load_image_folder(tmp_path).faces[0], face)


def truncated_jpeg(path: Path) -> None:
    ok, encoded = cv2.imencode(".jpg", random_face(3))
    path.write_bytes(encoded.tobytes()[: len(encoded) // 2])


BAD_IMAGES = {
    "zero-byte": ("Training_1.jpg", lambda path: path.write_bytes(b""), "empty file"),
    "text": ("Training_1.jpg", lambda path: path.write_text("this is not a JPEG"), "not a readable image"),
    "truncated": ("Training_1.jpg", truncated_jpeg, "not a readable image"),
    "rgba": ("Training_1.png", lambda path: write_image(path, np.zeros((48, 48, 4), np.uint8)), "4-channel"),
    "colour": (
        "Training_1.png",
        lambda path: write_image(path, np.dstack([random_face(1)] * 2 + [random_face(2)])),
        "colour image",
    ),
    "16-bit": ("Training_1.png", lambda path: write_image(path, np.zeros((48, 48), np.uint16)), "uint16"),
    "1x1": ("Training_1.png", lambda path: write_image(path, np.zeros((1, 1), np.uint8)), "1x1 pixels"),
    "64x48": ("Training_1.png", lambda path: write_image(path, np.zeros((48, 64), np.uint8)), "64x48 pixels"),
    "no usage prefix": ("face_1.png", lambda path: write_image(path, random_face(1)), "does not start with"),
}


@pytest.mark.parametrize("case", BAD_IMAGES, ids=list(BAD_IMAGES))
def test_bad_image_raises_data_error_naming_the_file(folder: Path, case: str) -> None:
    name, make, problem = BAD_IMAGES[case]
    path = folder / "train" / "fear" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    make(path)
    with pytest.raises(DataError, match=problem) as error:
        load_image_folder(folder)
    assert str(error.value).startswith(f"{path}: ")


def test_unknown_class_folder_is_named_with_valid_ones(folder: Path) -> None:
    write_image(folder / "train" / "contempt" / "Training_5.png", random_face(5))
    with pytest.raises(DataError) as error:
        load_image_folder(folder)
    message = str(error.value)
    assert message.startswith(f"{folder / 'train' / 'contempt'}: unknown class folder 'contempt'")
    assert ", ".join(EMOTIONS) in message


def test_missing_root_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="folder not found"):
        load_image_folder(tmp_path / "absent")
    (tmp_path / "train" / "angry").mkdir(parents=True)
    (tmp_path / "train" / "angry" / "README.txt").write_text("no faces here")
    with pytest.raises(DataError, match=f"^{re.escape(str(tmp_path))}: no images found"):
        load_image_folder(tmp_path)


def test_several_bad_files_report_the_first_and_a_count(folder: Path) -> None:
    (folder / "train" / "angry" / "Training_1.jpg").write_bytes(b"")
    (folder / "train" / "angry" / "Training_2.jpg").write_bytes(b"")
    with pytest.raises(DataError, match=r"Training_1\.jpg: empty file.*and 1 more bad inputs"):
        load_image_folder(folder)


def test_skip_mode_skips_and_warns_about_each_bad_input(folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    empty = folder / "train" / "angry" / "Training_1.jpg"
    empty.write_bytes(b"")
    unknown = write_image(folder / "train" / "contempt" / "Training_2.png", random_face(2)).parent
    with caplog.at_level(logging.WARNING, logger="fer_lib.data"):
        dataset = load_image_folder(folder, on_error="skip")
    assert len(dataset) == 7
    assert any(str(empty) in message and "empty file" in message for message in caplog.messages)
    assert any(str(unknown) in message and "unknown class folder" in message for message in caplog.messages)
    assert f"{folder}: skipped 2 bad inputs" in caplog.messages


# --- CSV ------------------------------------------------------------------------------------------


def test_csv_loads_labels_splits_and_row_ids(tmp_path: Path) -> None:
    faces = [random_face(seed) for seed in range(4)]
    path = write_csv(
        tmp_path / "fer2013.csv",
        [
            ("6", pixel_text(faces[0]), "PublicTest"),
            ("0", pixel_text(faces[1]), "Training"),
            ("3", pixel_text(faces[2]), "PrivateTest"),
            ("0", pixel_text(faces[3]), "Training"),
        ],
    )
    dataset = load_csv(path)
    assert dataset.ids.tolist() == ["csv:1", "csv:3", "csv:0", "csv:2"]
    assert dataset.labels.tolist() == [0, 0, 6, 3]
    assert dataset.usage.tolist() == ["Training", "Training", "PublicTest", "PrivateTest"]
    np.testing.assert_array_equal(dataset.faces, np.stack([faces[1], faces[3], faces[0], faces[2]]))


GOOD_PIXELS = pixel_text(random_face(0))
BAD_ROWS = {
    "2303 pixels": (("1", " ".join(GOOD_PIXELS.split()[:-1]), "Training"), "2303 pixel values; expected 2304"),
    "non-numeric label": (("happy", GOOD_PIXELS, "Training"), "non-numeric emotion label 'happy'"),
    "unknown label": (("7", GOOD_PIXELS, "Training"), "unknown emotion label 7"),
    "pixel 256": (("1", "256 " + " ".join(GOOD_PIXELS.split()[1:]), "Training"), "pixel value 256 out of range"),
    "non-numeric pixel": (("1", "12 x" + GOOD_PIXELS[2:], "Training"), "non-numeric pixel value 'x'"),
    "unknown usage": (("1", GOOD_PIXELS, "Validation"), "unknown Usage 'Validation'"),
}


@pytest.mark.parametrize("case", BAD_ROWS, ids=list(BAD_ROWS))
def test_bad_csv_row_names_file_and_line(tmp_path: Path, case: str) -> None:
    row, problem = BAD_ROWS[case]
    path = write_csv(tmp_path / "fer2013.csv", [("0", GOOD_PIXELS, "Training"), row])
    with pytest.raises(DataError, match=problem) as error:
        load_csv(path)
    assert str(error.value).startswith(f"{path}:3: ")


def test_csv_missing_column_and_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "fer2013.csv"
    path.write_text("emotion,pixels\n0," + GOOD_PIXELS + "\n")
    with pytest.raises(DataError, match=f"^{re.escape(str(path))}:1: missing column Usage"):
        load_csv(path)
    path.write_text("")
    with pytest.raises(DataError, match=f"^{re.escape(str(path))}: empty file"):
        load_csv(path)


def test_csv_skip_mode_keeps_good_rows(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_csv(
        tmp_path / "fer2013.csv",
        [("0", GOOD_PIXELS, "Training"), ("9", GOOD_PIXELS, "Training"), ("2", GOOD_PIXELS, "PublicTest")],
    )
    with caplog.at_level(logging.WARNING, logger="fer_lib.data"):
        dataset = load_csv(path, on_error="skip")
    assert dataset.ids.tolist() == ["csv:0", "csv:2"]
    assert any(f"{path}:3: unknown emotion label 9" in message for message in caplog.messages)


@pytest.mark.realdata
def test_csv_and_folder_give_identical_arrays(fer2013_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "subset"
    for split_folder, per_class in (("train", 30), ("test", 10)):
        for class_folder in sorted((fer2013_dir / split_folder).iterdir()):
            target = copy / split_folder / class_folder.name
            target.mkdir(parents=True)
            for image in sorted(class_folder.iterdir())[:per_class]:
                shutil.copy(image, target / image.name)
    from_folder = load_image_folder(copy)
    assert len(from_folder) == 7 * 40
    rows = [
        (str(label), pixel_text(face), usage)
        for face, label, usage in zip(from_folder.faces, from_folder.labels, from_folder.usage, strict=True)
    ]
    from_csv = load_csv(write_csv(tmp_path / "fer2013.csv", rows))
    np.testing.assert_array_equal(from_csv.faces, from_folder.faces)
    np.testing.assert_array_equal(from_csv.labels, from_folder.labels)
    np.testing.assert_array_equal(from_csv.usage, from_folder.usage)


# --- cache ----------------------------------------------------------------------------------------


def assert_same(first: FaceDataset, second: FaceDataset) -> None:
    for name in ("faces", "labels", "usage", "ids"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    assert first.source == second.source


def forbid_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any uncached load fail, to prove that a load came from the cache."""

    def fail(path: Path) -> None:
        raise AssertionError(f"{path} was loaded instead of read from the cache")

    monkeypatch.setattr(data, "_load_image_folder", fail)
    monkeypatch.setattr(data, "_load_csv", fail)


def test_cache_hit_returns_identical_arrays(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    first = load_fer2013(folder, cache_dir=cache)
    cached_files = list(cache.glob("*.npz"))
    assert len(cached_files) == 1 and not list(cache.glob("*.tmp"))
    forbid_loading(monkeypatch)
    second = load_fer2013(folder, cache_dir=cache)
    assert_same(first, second)
    assert second.usage.dtype.kind == "U" and second.ids.dtype.kind == "U"


def test_cache_is_invalidated_when_a_file_changes(folder: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    load_fer2013(folder, cache_dir=cache)
    changed = folder / "train" / "sad" / "Training_12.png"
    write_image(changed, random_face(99))
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    dataset = load_fer2013(folder, cache_dir=cache)
    np.testing.assert_array_equal(dataset.faces[dataset.ids == "Training_12"][0], random_face(99))
    write_image(folder / "train" / "sad" / "Training_15.png", random_face(15))
    assert "Training_15" in load_fer2013(folder, cache_dir=cache).ids
    assert len(list(cache.glob("*.npz"))) == 1, "older caches of the same folder are deleted"


def test_csv_cache_is_invalidated_when_the_file_changes(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "fer2013.csv", [("0", GOOD_PIXELS, "Training")])
    assert load_fer2013(path, cache_dir=tmp_path / "cache").labels.tolist() == [0]
    write_csv(path, [("5", GOOD_PIXELS, "Training"), ("1", GOOD_PIXELS, "Training")])
    assert load_fer2013(path, cache_dir=tmp_path / "cache").labels.tolist() == [1, 5]


def test_corrupt_cache_is_rebuilt(folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = tmp_path / "cache"
    first = load_fer2013(folder, cache_dir=cache)
    (cache_file,) = cache.glob("*.npz")
    cache_file.write_bytes(cache_file.read_bytes()[:500])
    with caplog.at_level(logging.WARNING, logger="fer_lib.data"):
        assert_same(first, load_fer2013(folder, cache_dir=cache))
    assert any("ignoring unreadable dataset cache" in message for message in caplog.messages)
    assert_same(first, load_fer2013(folder, cache_dir=cache))
    assert np.load(cache_file, allow_pickle=False)["faces"].shape == (7, 48, 48)


def test_cache_in_skip_mode_repeats_the_warnings(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (folder / "train" / "angry" / "Training_1.jpg").write_bytes(b"")
    load_fer2013(folder, cache_dir=tmp_path / "cache", on_error="skip")
    forbid_loading(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="fer_lib.data"):
        assert len(load_fer2013(folder, cache_dir=tmp_path / "cache", on_error="skip")) == 7
    assert f"{folder}: skipped 1 bad inputs" in caplog.messages
    monkeypatch.undo()
    with pytest.raises(DataError, match="empty file"):
        load_fer2013(folder, cache_dir=tmp_path / "cache")


def test_load_fer2013_rejects_missing_and_non_csv_paths(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=f"^{re.escape(str(tmp_path / 'absent'))}: not found"):
        load_fer2013(tmp_path / "absent", cache_dir=tmp_path / "cache")
    text = tmp_path / "faces.txt"
    text.write_text("hello")
    with pytest.raises(DataError, match=f"^{re.escape(str(text))}: not a folder or a .csv file"):
        load_fer2013(text, cache_dir=tmp_path / "cache")


# --- load_dataset, subsets, duplicates -------------------------------------------------------------


def test_load_dataset_is_synthetic_by_default_and_fer2013_with_override(folder: Path, tmp_path: Path) -> None:
    params = Params()
    params.data.synthetic_per_class = 6
    synthetic = load_dataset(params, cache_dir=tmp_path)
    assert synthetic.synthetic and len(synthetic.split("Training")) == 42
    real = load_dataset(params, data_override=str(folder), cache_dir=tmp_path)
    assert not real.synthetic and real.source == str(folder) and len(real) == 7


def test_stratified_subset_keeps_class_shares() -> None:
    labels = np.repeat(np.arange(7), [100, 10, 100, 200, 120, 80, 130])
    dataset = FaceDataset(
        np.zeros((len(labels), 48, 48), np.uint8),
        labels,
        np.full(len(labels), "Training"),
        np.array([f"x:{n}" for n in range(len(labels))]),
        "test",
    )
    subset = stratified_subset(dataset, 148, seed=0)
    assert len(subset) == 148
    assert list(subset.class_counts().values()) == [20, 2, 20, 40, 24, 16, 26]
    assert np.all(np.diff([int(face_id[2:]) for face_id in subset.ids]) > 0)
    np.testing.assert_array_equal(subset.ids, stratified_subset(dataset, 148, seed=0).ids)
    assert not np.array_equal(subset.ids, stratified_subset(dataset, 148, seed=1).ids)
    assert stratified_subset(dataset, 10_000, seed=0) is dataset
    with pytest.raises(DataError, match="stratified subset of 3 faces"):
        stratified_subset(dataset, 3, seed=0)


def test_drop_cross_split_duplicates_drops_leaked_held_out_faces() -> None:
    faces = np.stack([random_face(1), random_face(2), random_face(1), random_face(3), random_face(2)])
    usage = ["Training", "Training", "PublicTest", "PublicTest", "PrivateTest"]
    dataset = face_dataset(faces, [0, 1, 0, 2, 3], usage, ids=["a", "b", "c", "d", "e"])
    assert drop_cross_split_duplicates(dataset).ids.tolist() == ["a", "b", "d"]


# --- real FER-2013 ----------------------------------------------------------------------------------


@pytest.mark.realdata
def test_real_fer2013_counts(fer2013_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    dataset = load_fer2013(fer2013_dir, cache_dir=tmp_path_factory.getbasetemp() / "fer-cache")
    assert dataset.splits == ["Training", "PublicTest"]
    assert dataset.split("Training").class_counts() == REAL_TRAINING
    assert dataset.split("PublicTest").class_counts() == REAL_PUBLIC_TEST
    assert len(dataset) == 28_709 + 3_589
