"""The BlazeFace detector: anchors, weighted NMS, faces found in real photos, the default detector."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from fer_lib import faces
from fer_lib.errors import ModelError
from fer_lib.params import FacesParams
from fer_lib.paths import PROJECT_ROOT

SHARED_PHOTOS = PROJECT_ROOT.parent / "shared" / "photos"


@pytest.fixture(scope="module")
def astronaut_bgr() -> np.ndarray:
    """scikit-image's astronaut photo (Eileen Collins, one frontal face near (225, 115)), BGR (512, 512, 3)."""
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="module")
def detector() -> faces.BlazeFaceDetector:
    """The default detector: BlazeFace full range, then short range."""
    return faces.make_detector(FacesParams())


def test_anchor_layouts_match_the_models_outputs() -> None:
    for name, spec in faces.BLAZEFACE_MODELS.items():
        anchors = faces.ssd_anchors(spec.input_size, spec.anchor_layers)
        runner = faces.BlazeFaceDetector(models=[name])._runners[0]
        outputs = {int(detail["shape"][-1]): detail["shape"][1] for detail in runner.interpreter.get_output_details()}
        assert anchors.shape == (outputs[16], 2) == (outputs[1], 2)
        assert anchors.min() > 0 and anchors.max() < 1
    short = faces.ssd_anchors(128, ((8, 2), (16, 6)))
    np.testing.assert_allclose(short[:3], [[0.5 / 16, 0.5 / 16]] * 2 + [[1.5 / 16, 0.5 / 16]])


def test_weighted_nms_merges_overlapping_boxes_by_score() -> None:
    boxes = np.array([[0, 0, 10, 10], [2, 0, 10, 10], [50, 50, 10, 10]], np.float64)
    merged, scores = faces.weighted_nms(boxes, np.array([0.6, 0.9, 0.7]), iou_threshold=0.3)
    np.testing.assert_allclose(scores, [0.9, 0.7])
    np.testing.assert_allclose(merged[0], [0.9 * 2 / 1.5, 0, 10, 10])  # (0.9 * 2 + 0.6 * 0) / 1.5
    np.testing.assert_allclose(merged[1], [50, 50, 10, 10])
    empty, no_scores = faces.weighted_nms(np.empty((0, 4)), np.empty(0), 0.3)
    assert empty.shape == (0, 4) and no_scores.shape == (0,)


def test_blazeface_is_the_default_and_haar_stays_selectable() -> None:
    assert isinstance(faces.make_detector(FacesParams()), faces.BlazeFaceDetector)
    assert isinstance(faces.make_detector(FacesParams(detector="haar")), faces.HaarDetector)
    assert faces.make_detector(FacesParams(blazeface_models=["short"])).models == ("short",)
    with pytest.raises(ModelError, match="unknown or no BlazeFace model"):
        faces.BlazeFaceDetector(models=["tiny"])
    assert "BlazeFace" in faces.describe_detector(FacesParams())
    assert "Haar" in faces.describe_detector(FacesParams(detector="haar"))


def test_finds_her_face_and_no_face_in_the_cat_or_the_cup(
    detector: faces.BlazeFaceDetector, astronaut_bgr: np.ndarray
) -> None:
    boxes, scores = detector.detect_with_scores(astronaut_bgr)
    assert boxes.shape == (1, 4) and boxes.dtype == np.int32 and 0.5 < scores[0] <= 1
    x, y, w, h = boxes[0]
    assert 200 < x + w / 2 < 250 and 90 < y + h / 2 < 150 and 80 < w < 130
    grey = detector.detect(cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2GRAY))
    assert grey.shape == (1, 4) and np.abs(grey[0] - boxes[0]).max() < 10
    for name in ("chelsea", "coffee"):
        assert len(detector.detect(cv2.cvtColor(getattr(data, name)(), cv2.COLOR_RGB2BGR))) == 0


def test_close_up_and_small_face_are_both_found(detector: faces.BlazeFaceDetector, astronaut_bgr: np.ndarray) -> None:
    close_up = astronaut_bgr[70:190, 165:285]  # her face fills the image
    assert len(detector.detect(close_up)) == 1 and len(faces.BlazeFaceDetector(models=["short"]).detect(close_up)) == 1
    distant = cv2.copyMakeBorder(astronaut_bgr, 100, 100, 300, 300, cv2.BORDER_CONSTANT, value=(90, 90, 90))
    assert len(faces.BlazeFaceDetector(models=["short"]).detect(distant)) == 0  # a face 9% of the width: too small
    [box] = detector.detect(distant)
    assert abs(box[0] + box[2] / 2 - 525) < 25 and abs(box[1] + box[3] / 2 - 215) < 25


def test_a_face_cropped_tighter_than_its_outline_is_found_on_a_padded_second_try(astronaut_bgr: np.ndarray) -> None:
    tight = cv2.resize(astronaut_bgr[95:165, 190:260], (300, 300))  # brows to chin: no margin around the face
    assert len(faces.BlazeFaceDetector(pad_fraction=0).detect(tight)) == 0
    boxes, keypoints, _ = faces.BlazeFaceDetector().detect_with_keypoints(tight)
    assert boxes.tolist() == [[0, 0, 300, 300]]  # clipped to the image
    right_eye, left_eye = keypoints[0, :2]  # back in the image's pixels: the eyes in its upper half
    assert 0 < right_eye[0] < 150 < left_eye[0] < 300 and 0 < right_eye[1] < 150 and 0 < left_eye[1] < 150


def test_six_faces_in_a_group(detector: faces.BlazeFaceDetector, astronaut_bgr: np.ndarray) -> None:
    portrait = cv2.resize(astronaut_bgr[20:300, 90:370], (200, 200), interpolation=cv2.INTER_AREA)
    group = np.full((560, 760, 3), 120, np.uint8)
    for index in range(6):
        row, column = divmod(index, 3)
        group[40 + row * 280 : 240 + row * 280, 40 + column * 240 : 240 + column * 240] = portrait
    assert len(detector.detect(group)) == 6


def test_a_missing_model_file_is_a_model_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(faces.detect, "DETECTOR_MODELS", tmp_path)
    with pytest.raises(ModelError, match="face_detection_full_range.tflite: BlazeFace model file missing"):
        faces.BlazeFaceDetector()


@pytest.mark.skipif(not SHARED_PHOTOS.is_dir(), reason="needs ../shared/photos")
def test_one_face_in_every_shared_photo(detector: faces.BlazeFaceDetector) -> None:
    photos = faces.find_photos([SHARED_PHOTOS])
    counts = np.array([len(detector.detect(faces.read_image(path))) for path in photos])
    assert len(photos) >= 100 and (counts == 1).all()  # two tight crops only on the padded second try
