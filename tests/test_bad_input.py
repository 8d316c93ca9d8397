"""Bad files given to every command that reads data, models or media, run as a user runs them.

Each case asserts what the user sees: a non-zero exit code, exactly one line ``error: <path>: <problem>``
on stderr and no traceback; or, where skipping is the documented behaviour (``predict`` skips files
that are not images), a ``warning: skipped <path>: <problem>`` line. Every case runs in-process
through :func:`fer_lib.study.cli.main`; one real subprocess per command checks the whole stderr, including
what OpenCV, FFmpeg or TensorFlow might print below Python (those of the Keras commands marked slow;
``data audit`` imports no Keras, so its subprocess is quick).
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest
from conftest import pixel_text, random_face, write_image

from fer_lib.paths import PROJECT_ROOT
from fer_lib.study.cli import main

# --- helpers ----------------------------------------------------------------------------------------


def truncated_jpeg(path: Path, image: np.ndarray) -> Path:
    """A JPEG cut off halfway through its compressed data."""
    data = cv2.imencode(".jpg", image)[1].tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: len(data) // 2])
    return path


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a user with no FER2013_DIR and a private dataset cache."""
    env = {key: value for key, value in os.environ.items() if key != "FER2013_DIR"}
    return {**env, "FER_CACHE_DIR": str(tmp_path / "cache"), **extra}


def run_subprocess(tmp_path: Path, *argv: object, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m fer_lib ARGV`` from the repository root, as a user types it."""
    return subprocess.run(
        [sys.executable, "-m", "fer_lib", *map(str, argv)],
        cwd=PROJECT_ROOT,
        env=cli_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def run_in_process(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error(code: int, err: str, starts: str, *fragments: str) -> str:
    """Exit code 2, stderr exactly ``error: <starts>...`` on one line with every fragment, no traceback."""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got:\n{err}"
    assert lines[0].startswith(f"error: {starts}"), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    assert code == 2
    return lines[0]


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process commands cache datasets under tmp_path and see no FER2013_DIR."""
    monkeypatch.setenv("FER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("FER2013_DIR", raising=False)


# --- data audit: image folders ----------------------------------------------------------------------


def good_folder(root: Path) -> Path:
    """A Kaggle-layout folder with two good faces."""
    write_image(root / "train" / "angry" / "Training_1.png", random_face(1))
    write_image(root / "test" / "happy" / "PublicTest_2.png", random_face(2))
    return root


BAD_FILES = {
    "zero-byte jpg": ("Training_9.jpg", lambda path: path.write_bytes(b""), "empty file (0 bytes)"),
    "text named jpg": (
        "Training_9.jpg",
        lambda path: path.write_text("not an image\n"),
        "not a readable image (corrupt, truncated or not an image file)",
    ),
    "truncated jpeg": (
        "Training_9.jpg",
        lambda path: truncated_jpeg(path, random_face(9)),
        "not a readable image (corrupt, truncated or not an image file)",
    ),
    "rgba png": (
        "Training_9.png",
        lambda path: write_image(path, np.dstack([random_face(9)] * 3 + [np.full((48, 48), 255, np.uint8)])),
        "4-channel image; expected 1-channel grey",
    ),
    "16-bit png": (
        "Training_9.png",
        lambda path: write_image(path, random_face(9).astype(np.uint16) * 257),
        "uint16 pixels; expected 8-bit grey",
    ),
    "1x1 image": (
        "Training_9.png",
        lambda path: write_image(path, np.zeros((1, 1), np.uint8)),
        "1x1 pixels; expected 48x48",
    ),
    "8000x8000 image": (
        "Training_9.png",
        lambda path: write_image(path, np.zeros((8000, 8000), np.uint8)),
        "8000x8000 pixels; expected 48x48",
    ),
    "colour image": (
        "Training_9.png",
        lambda path: write_image(path, np.dstack([random_face(9), random_face(10), random_face(11)])),
        "colour image (its 3 channels differ); expected grey",
    ),
    "no usage prefix": (
        "IMG_9.png",
        lambda path: write_image(path, random_face(9)),
        "file name does not start with a FER-2013 usage",
    ),
}


@pytest.mark.parametrize("case", BAD_FILES, ids=list(BAD_FILES))
def test_data_audit_names_the_bad_image(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    name, make, problem = BAD_FILES[case]
    root = good_folder(tmp_path / "fer")
    bad = root / "train" / "sad" / name
    bad.parent.mkdir(parents=True, exist_ok=True)
    make(bad)

    code, out, err = run_in_process(capsys, "data", "audit", "--data", root)

    line = assert_one_error(code, err, f"{bad}: {problem}")
    assert out == "" and "more bad inputs" not in line
    assert not list((tmp_path / "cache").glob("*.npz"))  # a failed load caches nothing


def test_data_audit_counts_further_bad_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = good_folder(tmp_path / "fer")
    for index in range(3):
        (root / "train" / "sad" / f"Training_{index}.jpg").parent.mkdir(parents=True, exist_ok=True)
        (root / "train" / "sad" / f"Training_{index}.jpg").write_bytes(b"")

    code, _, err = run_in_process(capsys, "data", "audit", "--data", root)

    assert_one_error(
        code,
        err,
        f"{root / 'train' / 'sad' / 'Training_0.jpg'}: empty file",
        "(and 2 more bad inputs",
    )


@pytest.mark.parametrize("only_unknown", [False, True], ids=["beside good folders", "alone"])
def test_data_audit_names_an_unknown_class_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], only_unknown: bool
) -> None:
    root = tmp_path / "fer" if only_unknown else good_folder(tmp_path / "fer")
    write_image(root / "train" / "angri" / "Training_5.png", random_face(5))

    code, _, err = run_in_process(capsys, "data", "audit", "--data", root)

    assert_one_error(
        code,
        err,
        f"{root / 'train' / 'angri'}: unknown class folder 'angri'",
        "valid class folders: angry, disgust",
    )


def test_data_audit_of_a_folder_without_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "fer"
    (root / "train" / "angry").mkdir(parents=True)
    (root / "train" / "angry" / "README.txt").write_text("faces go here")

    code, _, err = run_in_process(capsys, "data", "audit", "--data", root)

    assert_one_error(code, err, f"{root}: no images found", "train/angry/Training_10118481.jpg")


def test_data_audit_of_a_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_in_process(capsys, "data", "audit", "--data", tmp_path / "nowhere")

    assert_one_error(
        code,
        err,
        f"{tmp_path / 'nowhere'}: not found",
        "expected a FER-2013 image folder or fer2013.csv",
    )


def test_data_audit_without_data_or_env(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_in_process(capsys, "data", "audit")

    assert_one_error(code, err, "no dataset given: pass --data DIR", "FER2013_DIR")


def test_data_audit_takes_fer2013_dir_from_the_env(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FER2013_DIR", str(tmp_path / "env-dir"))

    code, _, err = run_in_process(capsys, "data", "audit")

    assert_one_error(code, err, f"{tmp_path / 'env-dir'}: not found")


def test_data_audit_of_a_good_folder_succeeds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The control case: the same helpers with nothing wrong exit 0 with the audit on stdout."""
    code, out, err = run_in_process(capsys, "data", "audit", "--data", good_folder(tmp_path / "fer"), "--json")

    assert code == 0 and err == ""
    assert '"faces": 2' in out


def test_data_audit_debug_shows_the_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_in_process(capsys, "--debug", "data", "audit", "--data", tmp_path / "nowhere")

    assert code == 2
    assert err.startswith("Traceback (most recent call last):")
    assert "fer_lib.errors.DataError" in err
    assert (
        err.splitlines()[-1] == f"error: {tmp_path / 'nowhere'}: not found; expected a FER-2013 "
        "image folder or fer2013.csv"
    )


def test_data_audit_subprocess_prints_one_line(tmp_path: Path) -> None:
    """As a user runs it: what OpenCV's decoders print below Python about bad images never reaches the user."""
    root = good_folder(tmp_path / "fer")
    bad = root / "train" / "sad"
    truncated_jpeg(bad / "Training_0.jpg", random_face(9))
    write_image(bad / "Training_1.png", np.dstack([random_face(9)] * 3 + [np.full((48, 48), 255, np.uint8)]))
    write_image(bad / "Training_2.png", random_face(9).astype(np.uint16) * 257)
    (bad / "Training_3.jpg").write_text("not an image\n")

    result = run_subprocess(tmp_path, "data", "audit", "--data", root)

    assert_one_error(
        result.returncode,
        result.stderr,
        f"{bad / 'Training_0.jpg'}: not a readable image (corrupt, truncated or not an image file)",
        "(and 3 more bad inputs",
    )
    assert result.stdout == ""


# --- data audit: fer2013.csv ------------------------------------------------------------------------


def write_csv(path: Path, header: str, *rows: str) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


GOOD_ROW = f"0,{pixel_text(random_face(1))},Training"

BAD_CSVS = {
    "2303 pixels": (
        ("emotion,pixels,Usage", GOOD_ROW, f"1,{' '.join(pixel_text(random_face(2)).split()[:2303])},Training"),
        ":3: 2303 pixel values; expected 2304 (48x48)",
    ),
    "missing column": (
        ("emotion,pixels", f"0,{pixel_text(random_face(1))}"),
        ":1: missing column Usage; expected the header emotion,pixels,Usage (found emotion,pixels)",
    ),
    "non-numeric label": (
        ("emotion,pixels,Usage", GOOD_ROW, f"happy,{pixel_text(random_face(2))},Training"),
        ":3: non-numeric emotion label 'happy'; expected 0-6",
    ),
    "label out of range": (
        ("emotion,pixels,Usage", GOOD_ROW, f"7,{pixel_text(random_face(2))},Training"),
        ":3: unknown emotion label 7; expected 0-6",
    ),
    "pixel out of range": (
        ("emotion,pixels,Usage", GOOD_ROW, f"1,256 {pixel_text(random_face(2)).split(' ', 1)[1]},Training"),
        ":3: pixel value 256 out of range 0-255 (value 1)",
    ),
    "non-numeric pixel": (
        ("emotion,pixels,Usage", GOOD_ROW, f"1,12 x3 {pixel_text(random_face(2)).split(' ', 2)[2]},Training"),
        ":3: non-numeric pixel value 'x3' (value 2)",
    ),
    "unknown usage": (
        ("emotion,pixels,Usage", GOOD_ROW, f"1,{pixel_text(random_face(2))},Validation"),
        ":3: unknown Usage 'Validation'; expected Training, PublicTest, PrivateTest",
    ),
    "header only": (("emotion,pixels,Usage",), ": no faces found (only a header)"),
}


@pytest.mark.parametrize("case", BAD_CSVS, ids=list(BAD_CSVS))
def test_data_audit_names_the_bad_csv_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    lines, problem = BAD_CSVS[case]
    csv = write_csv(tmp_path / "fer2013.csv", *lines)

    code, _, err = run_in_process(capsys, "data", "audit", "--data", csv)

    assert_one_error(code, err, f"{csv}{problem}")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "empty file; expected a header emotion,pixels,Usage"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" * 50, "not a valid fer2013.csv ('utf-8' codec can't decode byte 0xff"),
        (
            b'emotion,pixels,Usage\n0,"1 2\n',
            "not a valid fer2013.csv (Error tokenizing data. C error: EOF inside string",
        ),
    ],
    ids=["empty", "binary", "unclosed quote"],
)
def test_data_audit_of_an_empty_binary_or_broken_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, problem: str
) -> None:
    csv = tmp_path / "fer2013.csv"
    csv.write_bytes(content)

    code, _, err = run_in_process(capsys, "data", "audit", "--data", csv)

    assert_one_error(code, err, f"{csv}: {problem}")


def test_data_audit_of_a_file_that_is_neither_folder_nor_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = write_image(tmp_path / "face.png", random_face(1))

    code, _, err = run_in_process(capsys, "data", "audit", "--data", image)

    assert_one_error(code, err, f"{image}: not a folder or a .csv file")


# --- evaluate ---------------------------------------------------------------------------------------


@pytest.fixture
def two_splits(tmp_path: Path) -> Path:
    """A folder with Training and PublicTest faces only (no PrivateTest)."""
    root = tmp_path / "fer"
    for index, emotion in enumerate(["angry", "happy", "sad"]):
        write_image(root / "train" / emotion / f"Training_{index}.png", random_face(index))
        write_image(root / "test" / emotion / f"PublicTest_{index}.png", random_face(10 + index))
    return root


def not_a_model(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "model.keras"
    if kind == "text":
        path.write_text("this is not a model\n")
    elif kind == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("readme.txt", "a zip, but not a Keras archive")
    elif kind == "bad config":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("config.json", "{not json")
            archive.writestr("metadata.json", "{}")
    return path


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ("text", "not a Keras model (.keras zip archive expected)"),
        ("zip", "cannot load Keras model ("),
        ("bad config", "cannot load Keras model ("),
        ("missing", "model file not found"),
    ],
)
def test_evaluate_rejects_what_is_not_a_keras_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], two_splits: Path, kind: str, problem: str
) -> None:
    model = not_a_model(tmp_path, kind)

    code, out, err = run_in_process(capsys, "evaluate", "--model", model, "--data", two_splits)

    assert_one_error(code, err, f"{model}: {problem}")
    assert out == ""


def test_evaluate_rejects_a_model_with_the_wrong_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], two_splits: Path
) -> None:
    inputs = keras.Input((64, 64, 3))
    path = tmp_path / "rgb.keras"
    keras.Model(
        inputs, keras.layers.Dense(7, activation="softmax")(keras.layers.GlobalAveragePooling2D()(inputs))
    ).save(path)

    code, _, err = run_in_process(capsys, "evaluate", "--model", path, "--data", two_splits)

    assert_one_error(code, err, f"{path}: model takes (None, 64, 64, 3)", "expected (None, 48, 48, 1) -> (None, 7)")


def test_evaluate_split_not_in_the_data(
    capsys: pytest.CaptureFixture[str], tiny_model_path: Path, two_splits: Path
) -> None:
    code, out, err = run_in_process(
        capsys, "evaluate", "--model", tiny_model_path, "--data", two_splits, "--split", "PrivateTest"
    )

    assert_one_error(code, err, f"{two_splits}: no PrivateTest faces (present: Training, PublicTest)")
    assert out == ""


def test_evaluate_bad_data_names_the_file(
    capsys: pytest.CaptureFixture[str], tiny_model_path: Path, two_splits: Path
) -> None:
    bad = two_splits / "test" / "happy" / "PublicTest_99.jpg"
    bad.write_bytes(b"")

    code, _, err = run_in_process(capsys, "evaluate", "--model", tiny_model_path, "--data", two_splits)

    assert_one_error(code, err, f"{bad}: empty file (0 bytes)")


def test_evaluate_control_case_succeeds(
    capsys: pytest.CaptureFixture[str], tiny_model_path: Path, two_splits: Path
) -> None:
    code, out, err = run_in_process(
        capsys, "evaluate", "--model", tiny_model_path, "--data", two_splits, "--split", "PublicTest"
    )

    assert code == 0 and err == ""
    assert out.splitlines()[1].split()[:2] == ["PublicTest", "3"]


@pytest.mark.slow
def test_evaluate_subprocess_prints_one_line(tmp_path: Path, two_splits: Path) -> None:
    model = not_a_model(tmp_path, "zip")

    result = run_subprocess(tmp_path, "evaluate", "--model", model, "--data", two_splits)

    assert_one_error(result.returncode, result.stderr, f"{model}: cannot load Keras model")


# --- predict (black box: fer_lib/faces/ and fer_lib/study/cli/predict.py) -------------------------------


def photo(seed: int = 0) -> np.ndarray:
    """A 120x160 BGR image without a face (smooth noise)."""
    noise = np.random.default_rng(seed).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 8)


UNREADABLE_PHOTOS = {
    "zero-byte jpg": ("empty.jpg", lambda path: path.write_bytes(b""), "empty file (0 bytes), not an image"),
    "text named jpg": ("notes.jpg", lambda path: path.write_text("not an image\n"), "not a readable image"),
    "truncated jpeg": ("cut.jpg", lambda path: truncated_jpeg(path, photo()), "not a readable image"),
    "8000x8000 image": (
        "huge.png",
        lambda path: write_image(path, np.zeros((8000, 8000), np.uint8)),
        "image is 8000x8000 (64 megapixels), over the 50-megapixel limit",
    ),
    "missing file": ("missing.jpg", lambda path: None, "file not found"),
}


@pytest.mark.parametrize("case", UNREADABLE_PHOTOS, ids=list(UNREADABLE_PHOTOS))
def test_predict_skips_an_unreadable_photo_and_fails_when_nothing_was_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_model_path: Path, case: str
) -> None:
    name, make, problem = UNREADABLE_PHOTOS[case]
    path = tmp_path / name
    make(path)

    code, out, err = run_in_process(capsys, "predict", path, "--model", tiny_model_path)

    assert code == 2 and out == "" and "Traceback" not in err
    warning, error = err.splitlines()
    assert warning.startswith(f"warning: skipped {path}: {problem}")
    assert error.startswith(f"error: {path}: no image could be read") and "1 file(s) skipped" in error


@pytest.mark.parametrize(
    ("name", "image"),
    [
        ("rgba.png", np.dstack([photo()] + [np.full((120, 160), 255, np.uint8)])),
        ("sixteen.png", (photo()[..., 0].astype(np.uint16) * 257)),
        ("dot.png", np.zeros((1, 1), np.uint8)),
        ("noface.jpg", photo()),
    ],
)
def test_predict_reads_odd_photos_and_reports_zero_faces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_model_path: Path, name: str, image: np.ndarray
) -> None:
    path = write_image(tmp_path / name, image)

    code, out, err = run_in_process(capsys, "predict", path, "--model", tiny_model_path)

    assert (code, err) == (0, "")
    assert out == f"{path}: 0 faces ({image.shape[1]}x{image.shape[0]})\n"


def test_predict_json_of_a_photo_without_faces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_model_path: Path
) -> None:
    import json

    path = write_image(tmp_path / "noface.png", photo())

    code, out, err = run_in_process(capsys, "predict", path, "--model", tiny_model_path, "--json")

    assert (code, err) == (0, "")
    assert json.loads(out)["images"] == [{"path": str(path), "width": 160, "height": 120, "reduction": 1, "faces": []}]


def test_predict_of_a_folder_without_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_model_path: Path
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()

    code, out, err = run_in_process(capsys, "predict", folder, "--model", tiny_model_path)

    assert_one_error(code, err, f"{folder}: no image could be read")
    assert out == ""


def test_predict_folder_with_good_and_bad_files_reports_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_model_path: Path
) -> None:
    folder = tmp_path / "photos"
    good = write_image(folder / "a_good.png", photo())
    (folder / "b_empty.jpg").write_bytes(b"")
    (folder / "c_notes.jpg").write_text("text")

    code, out, err = run_in_process(capsys, "predict", folder, "--model", tiny_model_path)

    assert code == 0 and "Traceback" not in err
    assert out == f"{good}: 0 faces (160x120)\n"
    warnings = err.splitlines()
    assert len(warnings) == 2
    assert warnings[0].startswith(f"warning: skipped {folder / 'b_empty.jpg'}: empty file")
    assert warnings[1].startswith(f"warning: skipped {folder / 'c_notes.jpg'}: not a readable image")


def test_predict_with_a_model_that_is_not_a_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = not_a_model(tmp_path, "text")
    image = write_image(tmp_path / "p.png", photo())

    code, _, err = run_in_process(capsys, "predict", image, "--model", model)

    assert_one_error(code, err, f"{model}: not a Keras model")


@pytest.mark.slow
def test_predict_subprocess_stderr(tmp_path: Path, tiny_model_path: Path) -> None:
    path = tmp_path / "cut.jpg"
    truncated_jpeg(path, photo())

    result = run_subprocess(tmp_path, "predict", path, "--model", tiny_model_path)

    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"warning: skipped {path}: not a readable image (not an image, truncated, or a format OpenCV cannot decode)",
        f"error: {path}: no image could be read from {path} (1 file(s) skipped)",
    ]


# --- video and webcam (black box: fer_lib/video.py, fer_lib/study/cli/video.py, fer_lib/study/cli/webcam.py) -----


def zero_frame_avi(path: Path) -> Path:
    """An AVI container that OpenCV opens but that holds no frame."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    writer.release()
    return path


@pytest.mark.parametrize(
    ("name", "make", "problem"),
    [
        ("empty.avi", zero_frame_avi, "video has no frames that can be decoded"),
        ("empty.mp4", lambda path: path.write_bytes(b""), "cannot open as a video"),
        ("notes.mp4", lambda path: path.write_text("not a video"), "cannot open as a video"),
        ("missing.mp4", lambda path: None, "video file not found"),
    ],
)
def test_video_with_no_frames_or_no_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_model_path: Path, name: str, make, problem: str
) -> None:  # noqa: ANN001
    path = tmp_path / name
    make(path)

    code, out, err = run_in_process(
        capsys, "video", path, "--model", tiny_model_path, "--no-progress", "--csv", tmp_path / "frames.csv"
    )

    assert_one_error(code, err, f"{path}: {problem}")
    assert not (tmp_path / "frames.csv").exists()


def test_webcam_with_a_camera_that_does_not_exist(capsys: pytest.CaptureFixture[str], tiny_model_path: Path) -> None:
    code, out, err = run_in_process(capsys, "webcam", "--camera", "99", "--model", tiny_model_path)

    assert_one_error(code, err, "camera 99 could not be opened", "--camera")
    assert out == ""


@pytest.mark.slow
@pytest.mark.parametrize("command", ["video", "webcam"])
def test_video_and_webcam_subprocess_print_one_line(tmp_path: Path, tiny_model_path: Path, command: str) -> None:
    """OpenCV's "can't open camera by index" and FFmpeg's "moov atom not found" must not reach the user."""
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    argv = ["video", empty, "--no-progress"] if command == "video" else ["webcam", "--camera", "99"]

    result = run_subprocess(tmp_path, *argv, "--model", tiny_model_path)

    expected = f"{empty}: cannot open as a video" if command == "video" else "camera 99 could not be opened"
    assert_one_error(result.returncode, result.stderr, expected)


# --- ablate (black box: fer_lib/study/ablation.py, fer_lib/study/cli/ablate.py) ----------------------------------


def ablation_files(tmp_path: Path, variants: bytes | str, params: str = "name: tiny\nmodel: {weights: none}\n") -> Path:
    """A base params file ``tiny.yaml`` and a variants file (``variants`` as given) in ``tmp_path``."""
    (tmp_path / "tiny.yaml").write_text(params)
    path = tmp_path / "variants.yaml"
    path.write_bytes(variants if isinstance(variants, bytes) else variants.encode())
    return path


GOOD_VARIANTS = "base: tiny.yaml\nvariants:\n  baseline: {}\n  unit scaling: {model.scale: unit}\n"


@pytest.mark.parametrize(
    ("variants", "problem"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF" * 20, "not a UTF-8 text file"),
        ("base: tiny.yaml\nvariants: [unclosed\n", ":3:1: not valid YAML"),
        ("- baseline\n- unit scaling\n", "expected a mapping with keys base and variants, got list"),
        ("base: missing.yaml\nvariants:\n  baseline: {}\n", "params file not found"),
        ("base: tiny.yaml\nvariants: [baseline]\n", "'variants' must be a mapping of variant names to overrides"),
    ],
    ids=["binary", "invalid yaml", "a list", "missing base", "variants a list"],
)
def test_ablate_names_the_bad_variants_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], variants: bytes | str, problem: str
) -> None:
    path = ablation_files(tmp_path, variants)
    expected = tmp_path / "missing.yaml" if problem == "params file not found" else path

    code, out, err = run_in_process(
        capsys, "ablate", "--variants", path, "--runs", tmp_path / "runs", "--out", tmp_path / "reports"
    )

    assert_one_error(code, err, f"{expected}", problem)
    assert out == "" and not (tmp_path / "reports").exists() and not (tmp_path / "runs").exists()


def test_ablate_of_a_missing_variants_file_or_data_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_in_process(capsys, "ablate", "--variants", tmp_path / "nope.yaml")
    assert_one_error(code, err, f"{tmp_path / 'nope.yaml'}: variants file not found")

    path = ablation_files(tmp_path, GOOD_VARIANTS)
    code, _, err = run_in_process(
        capsys, "ablate", "--variants", path, "--data", tmp_path / "nowhere", "--out", tmp_path / "reports"
    )
    assert_one_error(code, err, f"{tmp_path / 'nowhere'}: not found", "expected a FER-2013 image folder or fer2013.csv")
    assert not (tmp_path / "reports").exists()


def test_ablate_with_a_missing_weights_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = ablation_files(tmp_path, GOOD_VARIANTS, params=f"name: tiny\nmodel: {{weights: {tmp_path / 'no.h5'}}}\n")

    code, _, err = run_in_process(
        capsys, "ablate", "--variants", path, "--runs", tmp_path / "runs", "--out", tmp_path / "reports"
    )

    assert_one_error(code, err, f"{tmp_path / 'no.h5'}: ImageNet MobileNetV2 weights file not found")
    assert not (tmp_path / "reports").exists() and not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_ablate_subprocess_prints_one_line(tmp_path: Path) -> None:
    path = ablation_files(tmp_path, GOOD_VARIANTS.replace("model.scale", "model.scael"))

    result = run_subprocess(tmp_path, "ablate", "--variants", path, "--out", tmp_path / "reports")

    assert_one_error(
        result.returncode,
        result.stderr,
        f"{path} (variant 'unit scaling'): unknown key 'model.scael'",
        "did you mean 'model.scale'?",
    )
    assert result.stdout == ""
