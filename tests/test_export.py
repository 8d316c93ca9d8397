"""TFLite export (float and int8), the TFLite runtime and the ``export`` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import smooth_faces, write_image

from fer_lib.classifiers import KerasClassifier, TFLiteClassifier
from fer_lib.errors import ModelError
from fer_lib.labels import EMOTIONS, NUM_CLASSES
from fer_lib.model import load_model
from fer_lib.study.cli import main
from fer_lib.study.export import export_tflite, tflite_parity


@pytest.fixture(scope="module")
def exported(tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The stand-in model exported as float and int8 TFLite files."""
    folder = tmp_path_factory.mktemp("tflite")
    model = load_model(tiny_model_path)
    return {
        "float": export_tflite(model, folder / "tiny_float.tflite"),
        "int8": export_tflite(
            model, folder / "tiny_int8.tflite", quantize="int8", representative_faces=smooth_faces(100, seed=1)
        ),
        "dynamic": export_tflite(model, folder / "tiny_dynamic.tflite", quantize="dynamic"),
    }


@pytest.mark.slow
def test_float_tflite_matches_keras(exported: dict[str, Path], tiny_model_path: Path) -> None:
    faces = smooth_faces(64, seed=2)
    labels = np.arange(64) % NUM_CLASSES
    parity = tflite_parity(load_model(tiny_model_path), exported["float"], faces, labels)
    assert parity["faces"] == 64 and parity["top1_agreement"] == 1.0
    assert parity["max_abs_probability_difference"] < 1e-4
    assert parity["keras_accuracy"] == parity["tflite_accuracy"]


@pytest.mark.slow
def test_int8_tflite_agrees_with_keras_and_is_smaller(exported: dict[str, Path], tiny_model_path: Path) -> None:
    parity = tflite_parity(
        load_model(tiny_model_path), exported["int8"], smooth_faces(64, seed=2), np.arange(64) % NUM_CLASSES
    )
    assert parity["top1_agreement"] >= 0.85 and parity["max_abs_probability_difference"] < 0.25
    assert exported["int8"].stat().st_size < exported["float"].stat().st_size


@pytest.mark.slow
def test_dynamic_range_tflite_agrees_closer_than_full_int8(exported: dict[str, Path], tiny_model_path: Path) -> None:
    model, faces, labels = load_model(tiny_model_path), smooth_faces(64, seed=2), np.arange(64) % NUM_CLASSES
    dynamic = tflite_parity(model, exported["dynamic"], faces, labels)
    full = tflite_parity(model, exported["int8"], faces, labels)
    assert dynamic["top1_agreement"] >= 0.95
    assert dynamic["mean_abs_probability_difference"] < full["mean_abs_probability_difference"]
    assert exported["dynamic"].stat().st_size < 0.5 * exported["float"].stat().st_size


@pytest.mark.slow
def test_tflite_classifier_has_the_keras_classifier_interface(exported: dict[str, Path], tiny_model_path: Path) -> None:
    classifier = TFLiteClassifier(exported["float"])
    faces = smooth_faces(5, seed=3)
    for count in (1, 5, 0, 2):  # the interpreter is resized whenever the batch changes
        probabilities = classifier.predict_proba(faces[:count])
        assert probabilities.shape == (count, NUM_CLASSES) and probabilities.dtype == np.float64
        assert classifier.predict(faces[:count]).tolist() == probabilities.argmax(axis=1).tolist()
    np.testing.assert_allclose(
        classifier.predict_proba(faces), KerasClassifier(load_model(tiny_model_path)).predict_proba(faces), atol=1e-5
    )


def test_tflite_classifier_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"absent\.tflite: TFLite model file not found"):
        TFLiteClassifier(tmp_path / "absent.tflite")
    (tmp_path / "bad.tflite").write_bytes(b"definitely not a flatbuffer")
    with pytest.raises(ModelError, match=r"bad\.tflite: not a loadable TFLite model"):
        TFLiteClassifier(tmp_path / "bad.tflite")


@pytest.mark.slow
def test_export_command_writes_both_files_and_parity(tmp_path: Path, tiny_model_path: Path) -> None:
    data = tmp_path / "fer2013"
    for folder, usage, count in (("train", "Training", 4), ("test", "PublicTest", 3)):
        for label, emotion in enumerate(EMOTIONS):
            for index, face in enumerate(smooth_faces(count, seed=10 * label + count)):
                write_image(data / folder / emotion / f"{usage}_{label}{index}.png", face)
    assert main(["export", "--model", str(tiny_model_path), "--out", str(tmp_path / "out"), "--data", str(data)]) == 0
    report = json.loads((tmp_path / "out" / "parity.json").read_text())
    assert report["split"] == "PublicTest" and report["calibration_split"] == "Training"
    assert {name: entry["faces"] for name, entry in report["files"].items()} == {
        "float": 21,
        "int8": 21,
        "int8_full": 21,
    }
    assert report["files"]["float"]["top1_agreement"] == 1.0
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [
        "parity.json",
        "tiny_float.tflite",
        "tiny_int8.tflite",
        "tiny_int8_full.tflite",
    ]
