"""The labelled-photo check: labels from labels.csv or folder names, metrics, the mistakes sheet, predict's scores."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from fer_lib import faces, photo_check
from fer_lib.classifiers import EmotionClassifier
from fer_lib.errors import DataError, MediaError
from fer_lib.labels import EMOTIONS, NUM_CLASSES
from fer_lib.params import FacesParams
from fer_lib.study.cli import main
from fer_lib.synthetic import SAMPLE_PHOTOS


def face(label: str, side: int = 50) -> faces.FaceResult:
    """A face of the given label and box side."""
    probabilities = np.eye(NUM_CLASSES, dtype=np.float32)[EMOTIONS.index(label)]
    return faces.FaceResult((0, 0, side, side), probabilities, label, 1.0)


def test_labels_come_from_labels_csv_else_from_emotion_folders(tmp_path: Path) -> None:
    for name in ("set/happy/a.jpg", "set/happy/b.jpg", "loose/sad/c.jpg", "loose/holiday/d.jpg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).touch()
    (tmp_path / "set" / "labels.csv").write_text("file,label,source\nhappy/a.jpg,Surprise,x\n")
    photos = faces.find_photos([tmp_path / "set", tmp_path / "loose"])
    assert tmp_path / "set" / "labels.csv" not in photos and len(photos) == 4
    labels = photo_check.photo_labels(photos)
    assert labels == {
        tmp_path / "set/happy/a.jpg": "surprise",
        tmp_path / "set/happy/b.jpg": "happy",
        tmp_path / "loose/sad/c.jpg": "sad",
    }
    (tmp_path / "set" / "labels.csv").write_text("file,label\nhappy/a.jpg,contempt\n")
    with pytest.raises(DataError, match=r"labels.csv: labels \['contempt'\] are not emotions"):
        photo_check.photo_labels(photos)
    (tmp_path / "set" / "labels.csv").write_text("name,emotion\nhappy/a.jpg,happy\n")
    with pytest.raises(DataError, match="labels.csv needs the columns 'file' and 'label'"):
        photo_check.photo_labels(photos)


def test_metrics_score_the_largest_face_and_count_misses() -> None:
    found = {
        Path("a.jpg"): [face("happy", 30), face("sad", 80)],  # main face: the larger, sad
        Path("b.jpg"): [face("happy")],
        Path("c.jpg"): [],
        Path("d.jpg"): [face("angry")],
        Path("unlabelled.jpg"): [face("fear")],
    }
    labels = {Path("a.jpg"): "sad", Path("b.jpg"): "happy", Path("c.jpg"): "happy", Path("d.jpg"): "sad"}
    table = photo_check.labelled_table(found, labels)
    assert table["predicted"].tolist() == ["sad", "happy", photo_check.MISSED, "angry"]
    assert table["correct"].tolist() == [True, True, False, False]
    metrics = photo_check.labelled_metrics(table)
    assert metrics["photos"] == 4 and metrics["detected"] == 3 and metrics["detection_rate"] == 0.75
    assert metrics["exactly_one_face"] == 2
    assert metrics["accuracy"] == pytest.approx(2 / 3) and metrics["accuracy_all"] == 0.5
    # detected: happy F1 1, sad F1 2/3 (1 of 2 sad found, precision 1) -> macro 5/6 over the labels' classes
    assert metrics["macro_f1"] == pytest.approx(5 / 6)
    confusion = photo_check.labelled_confusion(table)
    assert confusion.shape == (NUM_CLASSES, NUM_CLASSES) and confusion.sum() == 3
    assert confusion[EMOTIONS.index("sad"), EMOTIONS.index("angry")] == 1


def test_mistakes_sheet_and_detector_comparison(tmp_path: Path) -> None:
    astronaut = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    (tmp_path / "happy").mkdir()
    (tmp_path / "sad").mkdir()
    cv2.imwrite(str(tmp_path / "happy" / "astronaut.jpg"), astronaut)
    cv2.imwrite(str(tmp_path / "sad" / "astronaut.jpg"), astronaut)
    cv2.imwrite(str(tmp_path / "sad" / "coffee.jpg"), cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR))
    paths = faces.find_photos([tmp_path])
    labels = photo_check.photo_labels(paths)

    class Happy(EmotionClassifier):
        def _run(self, inputs: np.ndarray) -> np.ndarray:
            return np.tile(np.eye(NUM_CLASSES, dtype=np.float32)[EMOTIONS.index("happy")], (len(inputs), 1))

    photos = list(faces.analyse_photos(paths, faces.make_detector(FacesParams()), Happy()))
    table = photo_check.labelled_table(photo_check.faces_by_photo(photos), labels)
    sheet = photo_check.mistakes_sheet(photos, table, columns=2, tile=100)
    assert sheet.shape == (2 * 122, 200, 3) and sheet.dtype == np.uint8
    comparison = photo_check.compare_detectors(
        paths, {"blazeface": faces.make_detector(FacesParams()), "haar": faces.HaarDetector()}, Happy(), labels
    )
    assert comparison.loc["blazeface", "exactly_one_face"] == 2 and comparison.loc["blazeface", "no_face"] == 1
    assert comparison.loc["blazeface", "accuracy"] == 0.5 and comparison.loc["blazeface", "accuracy_all"] == 1 / 3
    assert comparison.loc["haar", "surplus_boxes"] == 0 and comparison.loc["haar", "detect_ms"] > 0
    unlabelled = photo_check.compare_detectors(paths, {"haar": faces.HaarDetector()}, Happy(), {})
    assert "accuracy" not in unlabelled and unlabelled.loc["haar", "faces_found"] == 2


def test_missing_photo_folders_fall_back_only_when_asked(tmp_path: Path) -> None:
    missing = FacesParams(images=[str(tmp_path / "absent")])
    with pytest.raises(MediaError, match="absent: faces.images names a file or folder that does not exist"):
        faces.photo_paths(missing, tmp_path / "inputs")
    missing.if_missing = "default"
    assert [path.stem for path in faces.photo_paths(missing, tmp_path / "inputs")] == list(SAMPLE_PHOTOS)


def test_predict_scores_a_labelled_folder(
    tmp_path: Path, tiny_model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "happy").mkdir()
    cv2.imwrite(str(tmp_path / "happy" / "astronaut.jpg"), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tmp_path / "happy" / "coffee.jpg"), cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR))
    (tmp_path / "README.md").write_text("two photos")
    assert main(["predict", str(tmp_path), "--model", str(tiny_model_path)]) == 0
    captured = capsys.readouterr()
    assert "labelled photos: 2, a face found in 1 (50.0%)" in captured.out and "README.md" not in captured.err
    assert main(["predict", str(tmp_path), "--model", str(tiny_model_path), "--json", "--detector", "haar"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["detector"] == "haar" and report["labelled"]["photos"] == 2
    assert len(report["labelled"]["confusion"]) == NUM_CLASSES
    assert {record["label"] for record in report["images"]} == {"happy"}


@pytest.mark.slow
def test_notebook_4_scores_labelled_photos_with_and_without_tta_and_shows_saliency(tmp_path: Path) -> None:
    """Notebook 4 alone (papermill, the shipped model) on a labelled folder: the labelled-photo branch
    (scores, confusion matrix, mistakes sheet, saliency figure, the three TTA modes) runs and is recorded."""
    import papermill
    import yaml

    from fer_lib.paths import NOTEBOOKS_DIR, PROJECT_ROOT

    photos = tmp_path / "photos"
    faces.write_image(photos / "happy" / "astronaut.png", cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    faces.write_image(
        photos / "sad" / "astronaut_small.png", cv2.cvtColor(data.astronaut()[::2, ::2], cv2.COLOR_RGB2BGR)
    )
    faces.write_image(photos / "neutral" / "coffee.png", cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR))  # no face
    params = tmp_path / "photos.yaml"
    params.write_text(yaml.safe_dump({"name": "labelled", "faces": {"images": [str(photos)], "tta": "flip"}}))
    report = tmp_path / "report"

    papermill.execute_notebook(
        NOTEBOOKS_DIR / "04_random_images.ipynb",
        tmp_path / "04.ipynb",
        parameters={"params_path": str(params), "output_dir": str(report)},
        cwd=str(PROJECT_ROOT),
        progress_bar=False,
    )

    record = json.loads((report / "metrics" / "photos.json").read_text())
    assert record["tta"] == "flip" and record["labelled"]["photos"] == 3
    assert list(record["labelled_by_tta"]) == ["none", "flip", "tencrop"]
    assert all(scores["photos"] == 3 and scores["detected"] == 2 for scores in record["labelled_by_tta"].values())
    assert record["labelled_by_tta"]["flip"] == record["labelled"]  # the main pass used faces.tta
    assert (report / "figures" / "04_saliency.png").is_file() and (
        report / "figures" / "04_photos_confusion.png"
    ).is_file()
