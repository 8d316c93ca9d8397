"""Video clips, the demo clip, per-frame smoothing and the webcam's error messages."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from fer_lib import video
from fer_lib.classifiers import EmotionClassifier
from fer_lib.errors import MediaError
from fer_lib.faces import HaarDetector
from fer_lib.labels import EMOTIONS, FACE_SIZE, NUM_CLASSES
from fer_lib.study import webcam
from fer_lib.study.cli import main
from fer_lib.synthetic import make_demo_clip


class ScriptedClassifier(EmotionClassifier):
    """Returns the next row of a script (one (7,) vector per call) for every face; counts calls."""

    def __init__(self, script: list[np.ndarray] | None = None) -> None:
        self.script = list(script or [])
        self.calls = 0

    def _run(self, inputs: np.ndarray) -> np.ndarray:
        assert inputs.shape[1:] == (FACE_SIZE, FACE_SIZE, 1)
        row = self.script[self.calls] if self.script else np.full(NUM_CLASSES, 1 / NUM_CLASSES)
        self.calls += 1
        return np.tile(np.asarray(row, np.float32), (len(inputs), 1))


class ScriptedDetector:
    """Returns the next entry of a script of boxes (K, 4) per call; counts calls."""

    def __init__(self, script: list[np.ndarray]) -> None:
        self.script = script
        self.calls = 0

    def detect(self, image: np.ndarray) -> np.ndarray:
        boxes = np.asarray(self.script[self.calls % len(self.script)], np.int32).reshape(-1, 4)
        self.calls += 1
        return boxes


@pytest.fixture(scope="module")
def demo_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2 s, 10 FPS, 320x240 demo clip (20 frames; frames 9-11 show the faceless coffee photo)."""
    return make_demo_clip(tmp_path_factory.mktemp("clip") / "demo.mp4", seconds=2, fps=10, size=(320, 240))


def count_frames(path: Path) -> tuple[int, tuple[int, int]]:
    """Return the number of decodable frames of a video and its (width, height)."""
    capture = cv2.VideoCapture(str(path))
    frames, size = 0, (0, 0)
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames, size = frames + 1, (frame.shape[1], frame.shape[0])
    capture.release()
    return frames, size


def test_demo_clip_has_faces_and_faceless_frames(demo_clip: Path) -> None:
    assert count_frames(demo_clip) == (20, (320, 240))
    frames = video.process_video(demo_clip, HaarDetector(min_size=30), ScriptedClassifier(), progress=False)
    with_face = frames["n_faces"] > 0
    assert with_face.sum() >= 14 and (~with_face).sum() >= 3


def test_process_video_writes_one_csv_row_and_one_video_frame_per_frame(demo_clip: Path, tmp_path: Path) -> None:
    frames = video.process_video(
        demo_clip,
        HaarDetector(min_size=30),
        ScriptedClassifier(),
        out_video=tmp_path / "annotated.mp4",
        out_csv=tmp_path / "frames.csv",
        progress=False,
    )
    table = pd.read_csv(tmp_path / "frames.csv", keep_default_na=False)
    assert list(table.columns) == list(video.FRAME_COLUMNS)
    assert len(table) == len(frames) == 20 and table["frame"].tolist() == list(range(20))
    np.testing.assert_allclose(table["time_s"], np.arange(20) / 10, atol=1e-3)
    faceless = table[table["n_faces"] == 0]
    assert len(faceless) > 0 and (faceless["label"] == "").all() and (faceless["x"] == "").all()
    assert count_frames(tmp_path / "annotated.mp4") == (20, (320, 240))
    assert frames.attrs["achieved_fps"] > 0 and frames.attrs["out_video"] == tmp_path / "annotated.mp4"
    summary = video.video_summary(frames)
    assert summary["frames"] == 20 and summary["frames_with_face"] == 20 - len(faceless)
    assert summary["dominant_emotion"] == "angry"  # uniform probabilities: the first emotion wins
    shown = video.read_frames(tmp_path / "annotated.mp4", [0, 19, 25])
    assert sorted(shown) == [0, 19] and shown[0].shape == (240, 320, 3)


def test_resolve_videos_makes_a_demo_clip_unless_params_name_clips(tmp_path: Path) -> None:
    from fer_lib.params import FacesParams
    from fer_lib.paths import PROJECT_ROOT

    (tmp_path / "clips").mkdir()
    for name in ("b.mp4", "a.MOV", "notes.txt"):
        (tmp_path / "clips" / name).touch()
    named = FacesParams(videos=[str(tmp_path / "clips"), "README.md"])
    assert video.resolve_videos(named, tmp_path) == [
        tmp_path / "clips" / "a.MOV",
        tmp_path / "clips" / "b.mp4",
        PROJECT_ROOT / "README.md",
    ]
    missing = FacesParams(videos=[str(tmp_path / "absent")])
    with pytest.raises(MediaError, match="absent: faces.videos names a file or folder that does not exist"):
        video.resolve_videos(missing, tmp_path)
    missing.if_missing = "default"
    for params in (FacesParams(), missing):
        [clip] = video.resolve_videos(params, tmp_path)
        assert clip == tmp_path / "demo_clip.mp4" and count_frames(clip) == (60, (640, 480))


def test_smoothing_is_a_moving_average_that_restarts_when_the_face_is_lost() -> None:
    happy, sad = np.eye(NUM_CLASSES)[EMOTIONS.index("happy")], np.eye(NUM_CLASSES)[EMOTIONS.index("sad")]
    box, nothing = [[10, 10, 40, 40]], np.empty((0, 4))
    analyser = video.FrameAnalyser(
        ScriptedDetector([box, box, nothing, box]), ScriptedClassifier([happy, sad, sad]), smoothing=0.6
    )
    frame = np.zeros((100, 100, 3), np.uint8)
    first, second, lost, back = (analyser.analyse(frame) for _ in range(4))
    np.testing.assert_allclose(first[0].probabilities, happy)
    np.testing.assert_allclose(second[0].probabilities, 0.6 * happy + 0.4 * sad)
    assert second[0].label == "happy" and lost == []
    np.testing.assert_allclose(back[0].probabilities, sad)  # restarted, no memory of the happy frames


def test_detect_every_reuses_boxes_between_detections() -> None:
    detector = ScriptedDetector([[[10, 10, 40, 40]]])
    classifier = ScriptedClassifier()
    analyser = video.FrameAnalyser(detector, classifier, detect_every=3)
    results = [analyser.analyse(np.zeros((100, 100, 3), np.uint8)) for _ in range(10)]
    assert detector.calls == 4 and classifier.calls == 10
    assert all(len(faces) == 1 and faces[0].box == (10, 10, 40, 40) for faces in results)


def test_first_main_face_is_the_largest_and_all_faces_share_one_call() -> None:
    classifier = ScriptedClassifier()
    analyser = video.FrameAnalyser(ScriptedDetector([[[0, 0, 20, 20], [50, 50, 40, 40]]]), classifier)
    results = analyser.analyse(np.zeros((100, 100, 3), np.uint8))
    assert [result.box for result in results] == [(50, 50, 40, 40), (0, 0, 20, 20)] and classifier.calls == 1


def test_missing_and_unreadable_videos_are_media_errors(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="absent.mp4: video file not found"):
        video.process_video(tmp_path / "absent.mp4", HaarDetector(), ScriptedClassifier())
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(MediaError, match="notes.mp4: cannot open as a video"):
        video.process_video(tmp_path / "notes.mp4", HaarDetector(), ScriptedClassifier())


@pytest.mark.parametrize(
    ("name", "fourcc", "problem"),
    [("empty.avi", "MJPG", "video has no frames"), ("empty.mp4", "mp4v", "cannot open as a video")],
)
def test_zero_frame_video_is_a_media_error(tmp_path: Path, name: str, fourcc: str, problem: str) -> None:
    writer = cv2.VideoWriter(str(tmp_path / name), cv2.VideoWriter_fourcc(*fourcc), 10, (64, 48))
    writer.release()
    with pytest.raises(MediaError, match=problem):
        video.process_video(tmp_path / name, HaarDetector(), ScriptedClassifier(), out_csv=tmp_path / "f.csv")
    assert not (tmp_path / "f.csv").exists()


def test_webcam_without_camera_is_a_media_error() -> None:
    with pytest.raises(MediaError, match="^camera 99 could not be opened"):
        webcam.run_webcam(99, HaarDetector(), ScriptedClassifier())


@pytest.mark.skipif(
    "NONE" not in cv2.getBuildInformation().split("GUI:")[1].splitlines()[0], reason="this OpenCV has a GUI"
)
def test_webcam_without_gui_says_to_install_opencv_python(demo_clip: Path) -> None:
    with pytest.raises(MediaError, match="install opencv-python"):
        webcam.run_webcam(str(demo_clip), HaarDetector(), ScriptedClassifier())


def test_video_command_prints_the_achieved_fps(
    demo_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("fer_lib.study.export.load_fast_classifier", lambda path, num_threads: ScriptedClassifier())
    argv = ["video", str(demo_clip), "--csv", str(tmp_path / "frames.csv"), "--detect-every", "2", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "20 frames" in out and "achieved" in out and "FPS" in out and (tmp_path / "frames.csv").is_file()
    with pytest.raises(SystemExit):
        main(["video", str(demo_clip), "--smoothing", "1.5"])


def test_webcam_command_without_camera_exits_with_a_one_line_error(
    tiny_model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["webcam", "--camera", "99", "--model", str(tiny_model_path)]) == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith("error: camera 99 could not be opened")


def test_main_face_is_tracked_across_detections() -> None:
    happy, sad = np.eye(NUM_CLASSES)[EMOTIONS.index("happy")], np.eye(NUM_CLASSES)[EMOTIONS.index("sad")]
    face, moved, larger_stranger, elsewhere = [10, 10, 40, 40], [14, 12, 40, 40], [60, 50, 48, 48], [60, 10, 40, 40]
    analyser = video.FrameAnalyser(
        ScriptedDetector([[face], [moved, larger_stranger], [elsewhere]]),
        ScriptedClassifier([happy, sad, sad]),
        smoothing=0.5,
    )
    frame = np.zeros((120, 120, 3), np.uint8)
    first, second, third = (analyser.analyse(frame) for _ in range(3))
    assert second[0].box == tuple(moved) and second[1].box == tuple(larger_stranger)
    np.testing.assert_allclose(second[0].probabilities, 0.5 * happy + 0.5 * sad)  # same face: smoothed
    np.testing.assert_allclose(third[0].probabilities, sad)  # no overlap: a new main face, restarted


def test_csv_says_which_frames_were_detected_and_the_copy_can_be_small(demo_clip: Path, tmp_path: Path) -> None:
    frames = video.process_video(
        demo_clip,
        HaarDetector(min_size=30),
        ScriptedClassifier(),
        detect_every=3,
        out_video=tmp_path / "small.mp4",
        out_csv=tmp_path / "frames.csv",
        progress=False,
        out_width=160,
        out_step=2,
    )
    table = pd.read_csv(tmp_path / "frames.csv")
    assert table["detected"].tolist() == [index % 3 == 0 for index in range(20)]
    assert frames["detected"].tolist() == table["detected"].tolist()
    assert count_frames(tmp_path / "small.mp4") == (10, (160, 120))
    capture = cv2.VideoCapture(str(tmp_path / "small.mp4"))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(5)
    capture.release()


def test_label_changes_are_the_frames_where_the_main_label_changes() -> None:
    frames = pd.DataFrame(
        {"n_faces": [0, 1, 1, 1, 0, 1, 1, 2], "label": ["", "happy", "happy", "sad", "", "sad", "happy", "happy"]}
    )
    assert video.label_changes(frames) == [1, 3, 6]
    assert video.label_changes(frames.assign(n_faces=0)) == []


def test_video_command_fails_on_an_empty_clip_before_loading_a_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model must not be loaded")

    monkeypatch.setattr("fer_lib.study.export.load_fast_classifier", no_model)
    empty = tmp_path / "empty.avi"
    cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48)).release()
    assert main(["video", str(empty), "--no-progress"]) == 2
    assert "empty.avi: video has no frames that can be decoded" in capsys.readouterr().err


def test_fast_classifier_passes_tflite_through_and_converts_keras_once(
    tmp_path: Path, tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fer_lib.study import export

    calls: list[Path] = []

    def fake_export(model: object, path: Path) -> Path:
        calls.append(Path(path))
        Path(path).write_bytes(b"converted")
        return Path(path)

    monkeypatch.setattr(export, "export_tflite", fake_export)
    monkeypatch.setattr(export, "load_classifier", lambda path, num_threads: Path(path))
    first = export.load_fast_classifier(tiny_model_path, cache_dir=tmp_path)
    second = export.load_fast_classifier(tiny_model_path, cache_dir=tmp_path)
    assert first == second and first.parent == tmp_path / "tflite" and first.suffix == ".tflite"
    assert first.name.startswith("tiny-") and len(calls) == 1 and first.read_bytes() == b"converted"
    assert export.load_fast_classifier(tmp_path / "model.tflite") == tmp_path / "model.tflite"


def test_change_strip_shows_the_frames_where_the_label_changes(demo_clip: Path) -> None:
    happy, sad = np.eye(NUM_CLASSES)[EMOTIONS.index("happy")], np.eye(NUM_CLASSES)[EMOTIONS.index("sad")]
    frames = video.process_video(
        demo_clip,
        HaarDetector(min_size=30),
        ScriptedClassifier([happy] * 4 + [sad] * 16),
        smoothing=0.0,
        progress=False,
    )
    changes = video.label_changes(frames)
    assert changes[:2] == [0, 4]
    strip = video.change_strip(demo_clip, frames, columns=3, tile=100)
    assert strip.shape == (-(-len(changes) // 3) * 122, 300, 3)
    assert video.change_strip(demo_clip, frames.assign(n_faces=0)) is None
