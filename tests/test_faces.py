"""Face detection, cropping, batched classification, image reading and the ``predict`` command."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest
from skimage import data

from fer_lib import classifiers, faces
from fer_lib.classifiers import KerasClassifier, load_classifier
from fer_lib.errors import MediaError, ModelError
from fer_lib.labels import EMOTIONS, FACE_SIZE, NUM_CLASSES
from fer_lib.study.cli import main
from fer_lib.synthetic import SAMPLE_PHOTOS


@pytest.fixture(scope="module")
def astronaut_bgr() -> np.ndarray:
    """scikit-image's astronaut photo (Eileen Collins, one frontal face), BGR (512, 512, 3)."""
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


class CountingModel:
    """Quacks like a Keras model that ends in a softmax, for :class:`KerasClassifier`; records the batch size
    of each call."""

    layers = (keras.layers.Softmax(),)  # so the classifier sends no probe batch

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []

    def predict_on_batch(self, inputs: np.ndarray) -> np.ndarray:
        assert inputs.dtype == np.float32 and inputs.shape[1:] == (FACE_SIZE, FACE_SIZE, 1)
        self.batch_sizes.append(len(inputs))
        probabilities = np.zeros((len(inputs), NUM_CLASSES), np.float32)
        probabilities[:, EMOTIONS.index("happy")] = 1.0
        return probabilities


def test_haar_finds_exactly_one_face_in_astronaut(astronaut_bgr: np.ndarray) -> None:
    boxes = faces.HaarDetector().detect(astronaut_bgr)
    assert boxes.shape == (1, 4) and boxes.dtype == np.int32
    x, y, w, h = boxes[0]
    assert 150 < x + w / 2 < 300 and 60 < y + h / 2 < 170  # her face, not the flag or the suit


def test_downscaled_detection_finds_the_same_face(astronaut_bgr: np.ndarray) -> None:
    full = faces.HaarDetector().detect(astronaut_bgr)[0]
    small = faces.HaarDetector(detect_width=256).detect(cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2GRAY))
    assert small.shape == (1, 4)
    assert np.abs(small[0] - full).max() <= 0.15 * full[2]


def test_make_detector_needs_a_yunet_model(tmp_path: Path) -> None:
    from fer_lib.params import FacesParams

    assert isinstance(faces.make_detector(FacesParams(detector="haar")), faces.HaarDetector)
    with pytest.raises(ModelError, match="detector_model"):
        faces.make_detector(FacesParams(detector="yunet"))
    with pytest.raises(ModelError, match=r"yunet\.onnx: YuNet face detector model not found"):
        faces.YuNetDetector(tmp_path / "yunet.onnx")
    (tmp_path / "bad.onnx").write_text("not a network")
    with pytest.raises(ModelError, match="cannot load"):
        faces.YuNetDetector(tmp_path / "bad.onnx")


def test_crop_faces_shape_and_dtype(astronaut_bgr: np.ndarray) -> None:
    boxes = np.array([[177, 66, 94, 94], [10, 10, 30, 60]])
    crops = faces.crop_faces(astronaut_bgr, boxes, margin=0.1)
    assert crops.shape == (2, FACE_SIZE, FACE_SIZE) and crops.dtype == np.uint8
    assert faces.crop_faces(astronaut_bgr, np.empty((0, 4), int)).shape == (0, FACE_SIZE, FACE_SIZE)


def test_crop_margin_is_clipped_to_the_image() -> None:
    grey = np.zeros((100, 100), np.uint8)
    grey[:60, :60] = 200  # a bright square in the top-left corner
    crop = faces.crop_faces(grey, np.array([[0, 0, 40, 40]]), margin=0.5)[0]
    # Margin 0.5 asks for x, y in -20..60; clipped to 0..60: exactly the bright square, no padding.
    np.testing.assert_array_equal(crop, np.full((FACE_SIZE, FACE_SIZE), 200, np.uint8))
    corner = faces.crop_faces(grey, np.array([[90, 90, 10, 10]]), margin=0.5)[0]
    assert corner.shape == (FACE_SIZE, FACE_SIZE) and corner.max() == 0


def test_all_faces_of_an_image_are_classified_in_one_call(astronaut_bgr: np.ndarray) -> None:
    model = CountingModel()
    two_faces = np.hstack([astronaut_bgr, astronaut_bgr])
    results = faces.analyse_image(two_faces, faces.HaarDetector(), KerasClassifier(model))
    assert len(results) == 2 and model.batch_sizes == [2]
    assert all(result.label == "happy" and result.score == 1.0 for result in results)
    largest = faces.analyse_image(two_faces, faces.HaarDetector(), KerasClassifier(model), largest_only=True)
    assert len(largest) == 1 and model.batch_sizes == [2, 1]


def test_keras_classifier_returns_probabilities(tiny_model_path: Path, astronaut_bgr: np.ndarray) -> None:
    classifier = load_classifier(tiny_model_path)
    crops = faces.crop_faces(astronaut_bgr, np.array([[177, 66, 94, 94]] * 3))
    probabilities = classifier.predict_proba(crops)
    assert probabilities.shape == (3, NUM_CLASSES) and probabilities.dtype == np.float64
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-12)
    assert classifier.predict(crops).tolist() == probabilities.argmax(axis=1).tolist()
    assert classifier.predict_proba(np.empty((0, FACE_SIZE, FACE_SIZE), np.uint8)).shape == (0, NUM_CLASSES)


def test_missing_shipped_model_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(classifiers, "SHIPPED_MODEL", tmp_path / "models" / "fer_mobilenetv2.keras")
    with pytest.raises(ModelError, match=r"fer_mobilenetv2\.keras: the shipped model is missing; pass --model"):
        load_classifier(None)


def test_tiny_image_has_no_face_and_does_not_crash() -> None:
    one_pixel = np.zeros((1, 1, 3), np.uint8)
    assert faces.HaarDetector(detect_width=320).detect(one_pixel).shape == (0, 4)
    assert faces.analyse_image(one_pixel, faces.HaarDetector(), KerasClassifier(CountingModel())) == []


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("empty.jpg", b"", "empty file"),
        ("notes.jpg", b"just some text, not a JPEG\n", "not a readable image"),
        ("truncated.jpg", None, "not a readable image"),
        ("picture.xyz", b"\x00\x01\x02\x03" * 64, "not a readable image"),
    ],
)
def test_read_image_rejects_bad_files(
    tmp_path: Path, astronaut_bgr: np.ndarray, name: str, content: bytes | None, problem: str
) -> None:
    path = tmp_path / name
    if content is None:
        encoded = cv2.imencode(".jpg", astronaut_bgr)[1].tobytes()
        content = encoded[: len(encoded) // 2]
    path.write_bytes(content)
    with pytest.raises(MediaError, match=problem) as error:
        faces.read_image(path)
    assert str(error.value).startswith(str(path))


def test_read_image_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="file not found"):
        faces.read_image(tmp_path / "absent.png")


def test_read_image_converts_rgba_and_16_bit_to_8_bit_bgr(tmp_path: Path, astronaut_bgr: np.ndarray) -> None:
    rgba = np.dstack([astronaut_bgr, np.full(astronaut_bgr.shape[:2], 128, np.uint8)])
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    cv2.imwrite(str(tmp_path / "deep.png"), astronaut_bgr.astype(np.uint16) * 257)
    cv2.imwrite(str(tmp_path / "grey16.png"), cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257)
    for name in ("rgba.png", "deep.png", "grey16.png"):
        image = faces.read_image(tmp_path / name)
        assert image.dtype == np.uint8 and image.shape == (512, 512, 3), name
        assert len(faces.HaarDetector().detect(image)) == 1, name
    np.testing.assert_array_equal(faces.read_image(tmp_path / "deep.png"), astronaut_bgr)


@pytest.mark.slow
def test_read_image_refuses_absurd_sizes(tmp_path: Path) -> None:
    path = tmp_path / "huge.png"
    cv2.imwrite(str(path), np.zeros((8000, 8000), np.uint8))
    with pytest.raises(MediaError, match="8000x8000 .64 megapixels., over the 50-megapixel limit"):
        faces.read_image(path)


def test_annotate_draws_on_a_copy(astronaut_bgr: np.ndarray) -> None:
    result = faces.face_results(np.array([[177, 66, 94, 94]]), np.eye(NUM_CLASSES, dtype=np.float32)[[3]])
    annotated = faces.annotate(astronaut_bgr, result)
    assert annotated.shape == astronaut_bgr.shape and not np.array_equal(annotated, astronaut_bgr)
    record = result[0].to_dict()
    assert record["label"] == "happy" and record["box"] == {"x": 177, "y": 66, "w": 94, "h": 94}


def test_unused_path_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").touch()
    (tmp_path / "a-1.jpg").touch()
    assert faces.unused_path(tmp_path / "a.jpg") == tmp_path / "a-2.jpg"
    assert faces.unused_path(tmp_path / "b.jpg") == tmp_path / "b.jpg"


def test_predict_command_reports_faces_and_skips_non_images(
    tmp_path: Path, tiny_model_path: Path, astronaut_bgr: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = tmp_path / "photos"
    (photos / "more").mkdir(parents=True)
    cv2.imwrite(str(photos / "astronaut.png"), astronaut_bgr)
    cv2.imwrite(str(photos / "more" / "dot.png"), np.zeros((1, 1, 3), np.uint8))
    (photos / "notes.txt").write_text("not an image")
    (photos / "fake.jpg").write_text("not a JPEG either")
    out = tmp_path / "annotated"
    argv = ["predict", str(photos), "--model", str(tiny_model_path), "--json", "--annotate", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    by_name = {Path(record["path"]).name: record for record in report["images"]}
    assert set(by_name) == {"astronaut.png", "dot.png"}
    assert len(by_name["astronaut.png"]["faces"]) == 1 and by_name["dot.png"]["faces"] == []
    face = by_name["astronaut.png"]["faces"][0]
    assert set(face["probabilities"]) == set(EMOTIONS) and face["label"] in EMOTIONS
    assert "notes.txt" in captured.err and "fake.jpg" in captured.err
    assert main(argv) == 0  # a second run adds copies beside the first ones
    assert sorted(path.name for path in out.iterdir()) == [
        "astronaut_annotated-1.jpg",
        "astronaut_annotated.jpg",
        "dot_annotated-1.jpg",
        "dot_annotated.jpg",
    ]


def test_predict_command_text_output(
    tmp_path: Path, tiny_model_path: Path, astronaut_bgr: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    cv2.imwrite(str(tmp_path / "astronaut.jpg"), astronaut_bgr)
    assert main(["predict", str(tmp_path / "astronaut.jpg"), "--model", str(tiny_model_path)]) == 0
    assert "astronaut.jpg: 1 face (512x512)" in capsys.readouterr().out


@pytest.mark.parametrize("tta", ["flip", "tencrop"])
def test_predict_command_averages_the_views_of_each_face_with_tta(
    tmp_path: Path, tiny_model_path: Path, astronaut_bgr: np.ndarray, capsys: pytest.CaptureFixture[str], tta: str
) -> None:
    from fer_lib.params import FacesParams

    cv2.imwrite(str(tmp_path / "astronaut.png"), astronaut_bgr)
    faces_of = {}
    for mode in ("none", tta):
        assert main(["predict", str(tmp_path), "--model", str(tiny_model_path), "--json", "--tta", mode]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["tta"] == mode
        faces_of[mode] = report["images"][0]["faces"][0]

    box = faces_of[tta]["box"]
    crop = faces.crop_faces(astronaut_bgr, np.array([[box[key] for key in "xywh"]]), margin=FacesParams().margin)
    expected = load_classifier(tiny_model_path).predict_proba(crop, tta=tta)[0]
    shown = [faces_of[tta]["probabilities"][name] for name in EMOTIONS]
    np.testing.assert_allclose(shown, expected, atol=1e-4)  # the JSON rounds to 4 decimals
    assert faces_of["none"]["box"] == box and faces_of["none"]["probabilities"] != faces_of[tta]["probabilities"]


def test_predict_command_fails_when_no_image_can_be_read(
    tmp_path: Path, tiny_model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("not an image")
    assert main(["predict", str(tmp_path), str(tmp_path / "missing.png"), "--model", str(tiny_model_path)]) == 2
    errors = capsys.readouterr().err
    assert "missing.png: file not found" in errors and f"error: {tmp_path}: no image could be read" in errors


def test_predict_command_without_the_shipped_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(classifiers, "SHIPPED_MODEL", tmp_path / "fer_mobilenetv2.keras")
    assert main(["predict", str(tmp_path)]) == 2
    assert "fer_mobilenetv2.keras: the shipped model is missing" in capsys.readouterr().err


def test_sample_photos_are_analysed_and_tabulated(tmp_path: Path) -> None:
    from fer_lib.params import FacesParams

    paths = faces.photo_paths(FacesParams(), tmp_path / "inputs")
    assert [path.name for path in paths] == [f"{name}.png" for name in SAMPLE_PHOTOS]
    (tmp_path / "inputs" / "notes.png").write_text("not a PNG")
    skipped: list[MediaError] = []
    photos = list(
        faces.analyse_photos(
            [*paths, tmp_path / "inputs" / "notes.png"],
            faces.HaarDetector(),
            KerasClassifier(CountingModel()),
            on_error=skipped.append,
        )
    )
    assert {photo.path.name: len(photo.faces) for photo in photos} == {
        "astronaut.png": 1,
        "camera.png": 0,
        "chelsea.png": 0,
        "coffee.png": 0,
    }
    assert len(skipped) == 1 and str(skipped[0]).startswith(str(tmp_path / "inputs" / "notes.png"))
    table = faces.photos_table(photos)
    assert table["face"].tolist() == [1, 0, 0, 0] and table["label"].tolist() == ["happy", "", "", ""]
    assert str(table["x"].dtype) == "Int64" and list(table.columns[-NUM_CLASSES:]) == list(EMOTIONS)
    with pytest.raises(MediaError, match="notes.png"):
        list(
            faces.analyse_photos(
                [tmp_path / "inputs" / "notes.png"], faces.HaarDetector(), KerasClassifier(CountingModel())
            )
        )


def test_photo_paths_from_params_are_relative_to_the_project(tmp_path: Path) -> None:
    from fer_lib.params import FacesParams
    from fer_lib.paths import PROJECT_ROOT

    (tmp_path / "album").mkdir()
    (tmp_path / "album" / "b.jpg").touch()
    (tmp_path / "album" / ".hidden.jpg").touch()
    params = FacesParams(images=[str(tmp_path / "album"), "docs/ARCHITECTURE.md"])
    assert faces.photo_paths(params, tmp_path / "unused") == [
        tmp_path / "album" / "b.jpg",
        PROJECT_ROOT / "docs" / "ARCHITECTURE.md",
    ]


def test_resolve_model_is_the_one_rule_for_every_command_and_notebook(tmp_path: Path) -> None:
    from fer_lib.classifiers import resolve_model
    from fer_lib.params import FacesParams
    from fer_lib.paths import PROJECT_ROOT, SHIPPED_MODEL

    assert resolve_model() == SHIPPED_MODEL == resolve_model(FacesParams().model, report_dir=tmp_path)
    assert resolve_model("run", model_path="m.tflite", report_dir=tmp_path) == Path("m.tflite")  # given wins
    assert resolve_model("models/other.keras") == PROJECT_ROOT / "models" / "other.keras"
    with pytest.raises(ModelError, match="the model of this report's training is missing"):
        resolve_model("run", report_dir=tmp_path)  # no silent fallback to the shipped model
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "model.keras").touch()
    assert resolve_model("run", report_dir=tmp_path) == tmp_path / "training" / "model.keras"
    (tmp_path / "runs" / "x").mkdir(parents=True)
    (tmp_path / "runs" / "x" / "model.keras").touch()
    assert (
        resolve_model("run", train_run=tmp_path / "runs" / "x", report_dir=tmp_path)
        == tmp_path / "runs" / "x" / "model.keras"
    )
