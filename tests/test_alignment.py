"""Face alignment: BlazeFace's eye keypoints, the warp onto FER-2013's eye positions, and its use in the pipeline."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from fer_lib import faces, video
from fer_lib.faces import FER_EYES, BlazeFaceDetector, align_face, crop_faces, detect_faces, weighted_nms
from fer_lib.params import FacesParams
from fer_lib.study.cli import main
from fer_lib.synthetic import make_demo_clip


def two_eyes(right: tuple[float, float], left: tuple[float, float], shape: tuple[int, int] = (400, 400)) -> np.ndarray:
    """A black grey image with two small white discs at ``right`` and ``left`` (x, y)."""
    image = np.zeros(shape, np.uint8)
    for x, y in (right, left):
        cv2.circle(image, (round(x), round(y)), 6, 255, -1, cv2.LINE_AA)
    return image


def bright_centres(face: np.ndarray) -> np.ndarray:
    """(2, 2) intensity-weighted centres of the left and right halves' bright pixels, x, y."""
    centres = []
    for half in (slice(0, 24), slice(24, 48)):
        part = face[:, half].astype(np.float64)
        ys, xs = np.indices(part.shape)
        centres.append([(xs * part).sum() / part.sum() + half.start, (ys * part).sum() / part.sum()])
    return np.array(centres)


@pytest.mark.parametrize("angle", [-25.0, 0.0, 30.0])
def test_align_face_puts_the_eyes_on_fer2013s_eye_positions(angle: float) -> None:
    centre, half = np.array([200.0, 180.0]), 60.0  # eyes 120 px apart: a 7x larger face than FER-2013's
    offset = half * np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
    eyes = np.stack([centre - offset, centre + offset])
    face = align_face(two_eyes(*eyes), eyes)
    assert face.shape == (48, 48) and face.dtype == np.uint8
    np.testing.assert_allclose(bright_centres(face), FER_EYES, atol=0.6)


def test_crop_faces_aligns_faces_whose_eyes_are_given_and_crops_the_others() -> None:
    image = two_eyes((150, 150), (250, 170))
    boxes = np.array([[100, 80, 200, 200], [100, 80, 200, 200]])
    eyes = np.array([[[150, 150], [250, 170]], [[200, 200], [201, 200]]], dtype=float)  # the second: eyes 1 px apart
    aligned, cropped = crop_faces(image, boxes, margin=0.0, eyes=eyes)
    np.testing.assert_allclose(bright_centres(aligned), FER_EYES, atol=0.6)
    np.testing.assert_array_equal(cropped, crop_faces(image, boxes[1:], margin=0.0)[0])


def test_weighted_nms_averages_the_extra_columns_with_the_boxes() -> None:
    rows = np.array([[0, 0, 10, 10, 1, 1], [1, 0, 10, 10, 3, 5], [50, 50, 10, 10, 7, 7]], dtype=float)
    merged, scores = weighted_nms(rows, np.array([0.5, 0.5, 0.9]), iou_threshold=0.3)
    np.testing.assert_allclose(merged, [[50, 50, 10, 10, 7, 7], [0.5, 0, 10, 10, 2, 3]])
    np.testing.assert_allclose(scores, [0.9, 0.5])


def test_blazeface_finds_the_astronauts_eyes_inside_her_face() -> None:
    image = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    boxes, eyes = BlazeFaceDetector().detect_eyes(image)
    assert len(boxes) == 1 and eyes.shape == (1, 2, 2)
    (x, y, w, h), (right, left) = boxes[0], eyes[0]
    assert x < right[0] < left[0] < x + w  # the subject's right eye lies on the image's left
    assert y < right[1] < y + h / 2 and y < left[1] < y + h / 2
    assert 0.25 * w < left[0] - right[0] < 0.6 * w


def test_detectors_give_eyes_only_when_they_align() -> None:
    image = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    boxes, eyes = detect_faces(faces.make_detector(FacesParams(align=True)), image)
    assert len(boxes) == 1 and eyes.shape == (1, 2, 2)
    plain_boxes, no_eyes = detect_faces(faces.make_detector(FacesParams()), image)
    assert no_eyes is None
    np.testing.assert_array_equal(plain_boxes, boxes)
    assert detect_faces(faces.make_detector(FacesParams(detector="haar", align=True)), image)[1] is None


def test_video_frames_are_aligned_when_the_detector_aligns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_video import ScriptedClassifier

    clip = make_demo_clip(tmp_path / "clip.mp4", seconds=1, fps=6, size=(320, 240))
    detector = faces.make_detector(FacesParams(align=True))
    crops = []
    original = faces.align_face

    def recording_align(grey: np.ndarray, eyes: np.ndarray) -> np.ndarray:
        crops.append(eyes)
        return original(grey, eyes)

    monkeypatch.setattr(faces.crops, "align_face", recording_align)
    frames = video.process_video(clip, detector, ScriptedClassifier(), detect_every=2, progress=False)
    assert (frames["n_faces"] > 0).sum() == len(crops) > 0  # every face of every frame, reused eyes included


def test_predict_aligns_with_align(tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_model_path: Path) -> None:
    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    assert main(["predict", str(photo), "--model", str(tiny_model_path), "--align", "--json"]) == 0
    aligned = capsys.readouterr().out
    assert main(["predict", str(photo), "--model", str(tiny_model_path), "--json"]) == 0
    plain = capsys.readouterr().out
    assert '"box"' in aligned and aligned != plain  # the same box, another crop: other probabilities
