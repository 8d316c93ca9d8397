"""Hostile and awkward inputs (issue 27): bounded memory, checked model outputs, honest one-line messages.

Each test names the defect it pins down. Memory bounds are the peak resident memory (Linux's ``VmHWM``)
of a fresh Python process that imports only what the reader needs (no TensorFlow); no test asserts on
wall-clock time.
"""

from __future__ import annotations

import errno
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import keras
import numpy as np
import pandas as pd
import pytest
from conftest import random_face, random_faces, write_image, write_params

from fer_lib import params as params_module
from fer_lib.classifiers import KerasClassifier, load_classifier
from fer_lib.data import load_fer2013
from fer_lib.errors import DataError, MediaError, ModelError, ParamsError, StorageError, partial_file
from fer_lib.evaluation import split_metrics
from fer_lib.faces import PhotoResult, face_results, find_photos, read_image, read_image_reduced
from fer_lib.labels import EMOTIONS, FACE_SIZE, NUM_CLASSES
from fer_lib.params import load_params
from fer_lib.paths import PROJECT_ROOT
from fer_lib.photo_check import photo_labels
from fer_lib.study.cli import main
from fer_lib.study.runs import new_run_dir, write_atomically
from fer_lib.synthetic import make_demo_clip

MEASURE_READ = """
import json, sys
from fer_lib.errors import MediaError
from fer_lib.faces import make_detector, read_image_reduced
from fer_lib.params import FacesParams
result = {}
try:
    image, reduction = read_image_reduced(sys.argv[1])
    boxes = make_detector(FacesParams()).detect(image) * reduction
    result = {"shape": list(image.shape), "reduction": reduction, "boxes": boxes.tolist()}
except MediaError as error:
    result = {"error": str(error)}
status = open("/proc/self/status").read().split("VmHWM:")[1]
result["peak_mb"] = int(status.split()[0]) / 1024  # kB; getrusage's ru_maxrss would count the parent's, kept over exec
print(json.dumps(result))
"""
"""Read one photo and detect its faces (BlazeFace) in a fresh process; print the result and the peak resident
memory of the process since its exec (``VmHWM``)."""


def read_in_fresh_process(path: Path) -> dict:
    """Run :data:`MEASURE_READ` on ``path``; return its JSON."""
    completed = subprocess.run(
        [sys.executable, "-c", MEASURE_READ, str(path)], capture_output=True, text=True, check=True, cwd=PROJECT_ROOT
    )
    return json.loads(completed.stdout.splitlines()[-1])


def png_of_zero_rows(path: Path, width: int, height: int, *, rows: int | None = None) -> Path:
    """A grey 8-bit PNG whose pixels are all 0 (a few MB for hundreds of megapixels: a decompression bomb);
    with ``rows`` only that many rows of data follow the header (a truncated file)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    compressor, row = zlib.compressobj(6), b"\0" * (width + 1)
    idat = b"".join(compressor.compress(row) for _ in range(height if rows is None else rows)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


# --- 1, 2: image size is read from the header; large JPEGs decode reduced ---------------------------


def test_a_decompression_bomb_is_refused_from_its_header_within_bounded_memory(tmp_path: Path) -> None:
    bomb = png_of_zero_rows(tmp_path / "bomb.png", 30000, 30000)
    assert bomb.stat().st_size < 5_000_000  # 900 megapixels in a few MB

    result = read_in_fresh_process(bomb)

    assert result["error"].startswith(f"{bomb}: image is 30000x30000 (900 megapixels), over the 50-megapixel limit")
    assert "PNG file cannot be decoded at reduced size" in result["error"]
    assert result["peak_mb"] < 400  # decoding it would take 900 MB or more (6.1 GB before the fix)


def test_a_huge_truncated_png_is_called_too_large_not_unreadable(tmp_path: Path) -> None:
    path = png_of_zero_rows(tmp_path / "huge.png", 60000, 60000, rows=10)
    with pytest.raises(MediaError, match=r"image is 60000x60000 \(3600 megapixels\), over the 50-megapixel limit"):
        read_image(path)


@pytest.fixture(scope="module")
def photo_100mp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 10000x10000 JPEG (100 megapixels) of scikit-image's astronaut photo, one face."""
    from skimage import data

    big = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (10000, 10000), interpolation=cv2.INTER_LINEAR)
    path = tmp_path_factory.mktemp("big") / "astronaut_100mp.jpg"
    cv2.imwrite(str(path), big, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return path


def test_a_100_megapixel_jpeg_is_decoded_reduced_within_bounded_memory_and_its_face_found(photo_100mp: Path) -> None:
    result = read_in_fresh_process(photo_100mp)

    assert "error" not in result
    assert result["reduction"] == 2 and result["shape"] == [5000, 5000, 3]
    assert len(result["boxes"]) == 1
    x, y, w, h = result["boxes"][0]
    assert 1500 < w < 4000 and 3000 < x + w / 2 < 7000 and 1000 < y + h / 2 < 5000  # the face, in file pixels
    assert result["peak_mb"] < 600  # the full-size image alone is 300 MB of BGR pixels


def test_photo_results_give_boxes_and_size_in_the_files_pixels() -> None:
    faces = face_results(np.array([[10, 20, 30, 40]]), np.eye(NUM_CLASSES)[[3]])
    record = PhotoResult(Path("big.jpg"), np.zeros((50, 60, 3), np.uint8), faces, reduction=4).to_dict()
    assert (record["width"], record["height"], record["reduction"]) == (240, 200, 4)
    assert record["faces"][0]["box"] == {"x": 40, "y": 80, "w": 120, "h": 160}


def test_the_fer2013_reader_checks_the_header_before_decoding(tmp_path: Path) -> None:
    (tmp_path / "train" / "happy").mkdir(parents=True)
    png_of_zero_rows(tmp_path / "train" / "happy" / "Training_1.png", 30000, 30000, rows=2)
    with pytest.raises(DataError, match=r"Training_1.png: 30000x30000 pixels; expected 48x48"):
        load_fer2013(tmp_path, cache_dir=tmp_path / "cache")


# --- 3: model outputs must be probabilities ----------------------------------------------------------


def logits_model() -> keras.Model:
    """(N, 48, 48, 1) -> (N, 7) logits: no softmax."""
    inputs = keras.Input((FACE_SIZE, FACE_SIZE, 1))
    x = keras.layers.Rescaling(1 / 255)(keras.layers.AveragePooling2D(8)(inputs))
    outputs = keras.layers.Dense(NUM_CLASSES, kernel_initializer=keras.initializers.RandomNormal(stddev=3, seed=1))(
        keras.layers.Flatten()(x)
    )
    return keras.Model(inputs, outputs)


def test_a_model_that_returns_logits_is_refused_at_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "logits.keras"
    logits_model().save(path)

    with pytest.raises(ModelError, match=r"logits.keras: the model's outputs are not probabilities"):
        load_classifier(path)
    photo = write_image(tmp_path / "photo.png", np.zeros((64, 64, 3), np.uint8))
    code = main(["predict", str(photo), "--model", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1 and "must end in a softmax" in err


def test_a_model_whose_outputs_sum_to_one_without_a_softmax_layer_is_accepted() -> None:
    model = logits_model()
    normalised = keras.Model(model.input, keras.layers.Activation("sigmoid")(model.output))
    with pytest.raises(ModelError):  # sigmoid outputs lie in [0, 1] but do not sum to 1
        KerasClassifier(normalised, source="sigmoid.keras")
    probabilities = keras.Model(model.input, keras.layers.Softmax()(model.output))
    assert KerasClassifier(probabilities).predict_proba(random_faces(3)).shape == (3, NUM_CLASSES)


# --- 4: macro-F1 over the classes present ------------------------------------------------------------


def test_macro_f1_averages_over_the_classes_the_data_holds() -> None:
    happy, sad = EMOTIONS.index("happy"), EMOTIONS.index("sad")
    labels = np.array([happy] * 5 + [sad] * 5)
    predicted = np.array([happy] * 4 + [sad] + [sad] * 4 + [happy])
    metrics = split_metrics(labels, np.eye(NUM_CLASSES)[predicted])
    assert metrics["macro_f1_classes"] == ["happy", "sad"]
    assert metrics["macro_f1"] == pytest.approx(0.8)  # 0.229 (over 7 classes) before


# --- 5: labels.csv -----------------------------------------------------------------------------------


def labelled_folder(root: Path, rows: list[tuple[str, str]]) -> list[Path]:
    """Two photos in ``root`` and a labels.csv with ``rows``; return the photos."""
    photos = [write_image(root / name, np.zeros((8, 8), np.uint8)) for name in ("a.jpg", "b.jpg")]
    pd.DataFrame(rows, columns=["file", "label"]).to_csv(root / "labels.csv", index=False)
    return photos


def test_a_photo_listed_twice_in_labels_csv_is_an_error_naming_both_lines(tmp_path: Path) -> None:
    photos = labelled_folder(tmp_path, [("a.jpg", "happy"), ("b.jpg", "sad"), ("a.jpg", "angry")])
    with pytest.raises(DataError, match=r"labels.csv: line 4: 'a.jpg' is listed twice \(first on line 2\)"):
        photo_labels(photos)


def test_a_labels_csv_row_for_a_missing_file_is_an_error_naming_the_line(tmp_path: Path) -> None:
    photos = labelled_folder(tmp_path, [("a.jpg", "happy"), ("gone.jpg", "sad")])
    with pytest.raises(DataError, match=r"labels.csv: line 3: 'gone.jpg' does not exist"):
        photo_labels(photos)


# --- 6, 9, 10: params files --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [-1, 10**20])
def test_a_seed_out_of_range_is_refused_naming_seed(tmp_path: Path, seed: int) -> None:
    path = write_params(tmp_path / "p.yaml", {"seed": seed})
    with pytest.raises(ParamsError, match=r"p.yaml: seed must be in 0 to 4294967295"):
        load_params(path)


def billion_laughs(levels: int) -> str:
    """A YAML "billion laughs": each level a list of ten aliases of the level before."""
    lines = ['a0: &a0 ["lol"]']
    lines += [f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 10)}]" for level in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_a_yaml_alias_bomb_is_refused_before_anything_is_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(billion_laughs(9), encoding="utf-8")

    def must_not_run(*args: object) -> None:
        raise AssertionError("the duplicate-key check walked the aliases")

    monkeypatch.setattr(params_module, "_reject_duplicate_keys", must_not_run)
    with pytest.raises(ParamsError, match=r"bomb.yaml: line 1: YAML anchors and aliases .* are not allowed"):
        load_params(path)


@pytest.mark.parametrize("text", ["", "# only a comment\n\n"], ids=["empty", "comments only"])
def test_an_empty_params_file_is_an_error_naming_it(tmp_path: Path, text: str) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ParamsError, match=r"empty.yaml: the params file is empty"):
        load_params(path)


# --- 7: a full disk ----------------------------------------------------------------------------------


def test_a_full_disk_names_the_folder_and_leaves_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "run" / "history.csv"
    target.parent.mkdir()
    with pytest.raises(StorageError, match=rf"{tmp_path / 'run'}: no space left on the device writing x.partial"):
        with partial_file(target.parent / "x.partial") as partial:
            partial.write_text("half a fi")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert list(target.parent.iterdir()) == []


def test_a_full_disk_while_saving_a_checkpoint_keeps_the_previous_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fer_lib.study.training_run import _atomic_save_model

    model, checkpoint = logits_model(), tmp_path / "checkpoint.keras"
    _atomic_save_model(model, checkpoint)
    before = checkpoint.read_bytes()

    def save_half(self: keras.Model, path: str | os.PathLike[str], **kwargs: object) -> None:
        Path(path).write_bytes(b"PK\x03\x04 half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", save_half)
    with pytest.raises(StorageError, match=rf"{tmp_path}: no space left on the device writing .checkpoint.tmp.keras"):
        _atomic_save_model(model, checkpoint)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["checkpoint.keras"]
    assert checkpoint.read_bytes() == before


def test_a_full_disk_while_writing_the_video_csv_leaves_no_empty_csv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_video import ScriptedClassifier

    from fer_lib import video
    from fer_lib.faces import HaarDetector

    clip = make_demo_clip(tmp_path / "clip.mp4", seconds=1, fps=4, size=(160, 120))

    def full_disk(self: pd.DataFrame, path: object, **kwargs: object) -> None:
        Path(path).write_text("")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", full_disk)
    out = tmp_path / "out"
    with pytest.raises(StorageError, match=rf"{out}: no space left on the device writing frames.csv"):
        video.process_video(clip, HaarDetector(), ScriptedClassifier(), out_csv=out / "frames.csv", progress=False)
    assert list(out.iterdir()) == []


def test_write_atomically_on_a_full_disk_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    write_atomically(path, "{}")

    def full(self: Path, text: str, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(StorageError, match=rf"{tmp_path}: no space left"):
        write_atomically(path, '{"epochs_done": 2}')
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"] and path.read_bytes() == b"{}"


# --- 8: a damaged checkpoint -------------------------------------------------------------------------

STOPPED_RUN = {
    "name": "stopped",
    "seed": 3,
    "data": {"source": "synthetic", "synthetic_per_class": 3},
    "model": {"input_size": 32, "alpha": 0.35, "weights": "none"},
    "train": {"epochs": 2, "batch_size": 16, "train_eval_subset": None},
}


def test_a_truncated_checkpoint_says_what_is_wrong_and_what_to_do(tmp_path: Path) -> None:
    from fer_lib.data import load_dataset
    from fer_lib.study.training_run import train

    params = load_params(write_params(tmp_path / "stopped.yaml", STOPPED_RUN))
    dataset = load_dataset(params)
    run_dir = tmp_path / "run"
    train(params, dataset, run_dir, verbose=0, max_epochs=1)
    checkpoint = run_dir / "checkpoint.keras"
    checkpoint.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])

    with pytest.raises(ModelError) as raised:
        train(params, dataset, run_dir, verbose=0)
    message = str(raised.value)
    assert message.startswith(f"{checkpoint}: the checkpoint of epoch 1 is damaged and cannot be read")
    assert "File not found" not in message.partition("(")[0] and f"move {run_dir} aside" in message
    assert "\n" not in message


# --- 11, 12: the smaller wording problems ------------------------------------------------------------


def test_video_help_says_detect_width_does_not_apply_to_blazeface(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["video", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "Haar and YuNet: detect on frames shrunk to this width" in help_text
    assert "BlazeFace always sees the frame shrunk to its 128 or 192 px input, so it does not apply" in help_text


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_named_jpg_is_called_not_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    with pytest.raises(MediaError, match=r"pipe.jpg: not a regular file"):
        read_image(fifo)


def test_a_safe_mode_refusal_is_one_whole_sentence(tmp_path: Path) -> None:
    from fer_lib.model import load_model

    inputs = keras.Input((FACE_SIZE, FACE_SIZE, 1))
    x = keras.layers.Lambda(lambda faces: faces / 255.0)(inputs)
    outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax")(keras.layers.Flatten()(x))
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)

    with pytest.raises(ModelError) as raised:
        load_model(path)
    assert str(raised.value) == (
        f"{path}: refused: the model holds Python code (e.g. a Lambda layer) that would run when it is loaded, "
        "and this project loads models in Keras' safe mode only; rebuild it without such layers"
    )


def test_a_dangling_symlink_in_a_folder_is_reported_not_dropped(tmp_path: Path) -> None:
    write_image(tmp_path / "a.jpg", np.zeros((8, 8), np.uint8))
    (tmp_path / "b.jpg").symlink_to(tmp_path / "gone.jpg")
    found = find_photos([tmp_path])
    assert [path.name for path in found] == ["a.jpg", "b.jpg"]
    with pytest.raises(MediaError, match=rf"b.jpg: a symbolic link to {tmp_path / 'gone.jpg'}, which does not exist"):
        read_image_reduced(found[1])


def test_yunet_without_its_model_names_the_option_the_user_typed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = write_image(tmp_path / "photo.png", np.zeros((64, 64, 3), np.uint8))
    code = main(["predict", str(photo), "--detector", "yunet"])
    err = capsys.readouterr().err
    assert code == 2 and err == "error: --detector yunet needs --detector-model PATH, the YuNet .onnx file\n"


@pytest.mark.parametrize("command", ["report", "ablate"])
def test_a_report_name_that_is_not_a_folder_name_is_refused_not_renamed(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as raised:
        main([command, "--name", ".."])
    assert raised.value.code == 2 and "argument --name: '..' is not a folder name" in capsys.readouterr().err


def test_an_exact_run_folder_name_is_never_changed(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match=r"'\.\.': not usable as a folder name"):
        new_run_dir(tmp_path, "..", exact=True)
    assert new_run_dir(tmp_path, "fer2013-x", exact=True) == tmp_path / "fer2013-x"


def test_publictest_files_under_train_are_counted_as_publictest_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_image(tmp_path / "train" / "happy" / "Training_1.png", random_face(1))
    write_image(tmp_path / "train" / "happy" / "PublicTest_2.png", random_face(2))
    write_image(tmp_path / "test" / "sad" / "PublicTest_3.png", random_face(3))
    dataset = load_fer2013(tmp_path, cache_dir=tmp_path / "cache")
    assert len(dataset.split("PublicTest")) == 2
    assert [record.getMessage() for record in caplog.records] == [
        f"{tmp_path / 'train'}: 1 file(s) named PublicTest_* lie in this train folder; each counts as PublicTest, "
        "the split its name gives"
    ]


def test_data_errors_suggest_only_what_the_command_line_offers(tmp_path: Path) -> None:
    write_image(tmp_path / "train" / "happy" / "Training_1.png", random_face(1))
    (tmp_path / "train" / "happy" / "Training_2.png").write_bytes(b"")
    (tmp_path / "train" / "happy" / "Training_3.png").write_bytes(b"")
    with pytest.raises(DataError) as raised:
        load_fer2013(tmp_path, cache_dir=tmp_path / "cache")
    assert str(raised.value).endswith("(and 1 more bad inputs; fix or remove them)")
    assert "on_error" not in str(raised.value)


def test_make_lab_passes_allow_root_exactly_when_run_as_root() -> None:
    completed = subprocess.run(["make", "-n", "lab"], capture_output=True, text=True, cwd=PROJECT_ROOT, check=True)
    command = [line for line in completed.stdout.splitlines() if "jupyter lab" in line]
    assert len(command) == 1
    assert command[0].endswith("--allow-root") == (os.getuid() == 0)
