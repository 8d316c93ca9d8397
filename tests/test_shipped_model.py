"""The committed model, models/fer_mobilenetv2.keras: contract, a real photo, FER-2013 accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from fer_lib.data import load_fer2013
from fer_lib.dataset import FaceDataset
from fer_lib.evaluation import evaluate_splits
from fer_lib.labels import EMOTIONS
from fer_lib.model import load_model
from fer_lib.paths import SHIPPED_MODEL
from fer_lib.study.cli import main


@pytest.fixture(scope="module")
def fer2013(fer2013_dir: Path) -> FaceDataset:
    """FER-2013's Training and PublicTest faces, read once for the module's three accuracy checks."""
    return load_fer2013(fer2013_dir)


def test_shipped_model_loads_safely_with_the_input_contract() -> None:
    model = load_model(SHIPPED_MODEL)
    assert model.input_shape == (None, 48, 48, 1)
    assert model.output_shape == (None, len(EMOTIONS))
    probabilities = model.predict(np.zeros((2, 48, 48, 1), np.float32), verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_predict_finds_the_astronaut_smiling(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    assert main(["predict", str(photo), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    faces = result["images"][0]["faces"]
    assert len(faces) == 1
    assert faces[0]["label"] == "happy"


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.usefixtures("graph_mode")  # 3,589 to 35,890 views at 96 px: traced steps are faster
@pytest.mark.parametrize(("tta", "readme_accuracy"), [("none", 0.682), ("flip", 0.685), ("tencrop", 0.695)])
def test_publictest_accuracy_is_what_the_readme_claims(fer2013: FaceDataset, tta: str, readme_accuracy: float) -> None:
    metrics = evaluate_splits(load_model(SHIPPED_MODEL), fer2013, tta=tta, splits=["PublicTest"])["PublicTest"]
    assert metrics["n"] == 3589
    assert metrics["accuracy"] == pytest.approx(readme_accuracy, abs=0.005)  # README's figures, inference mode
