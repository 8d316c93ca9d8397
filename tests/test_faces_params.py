"""The ``faces`` section of the params: detector choice, real photos and clips from ../shared when there."""

from __future__ import annotations

from pathlib import Path

import pytest

from fer_lib.errors import ParamsError
from fer_lib.params import load_params
from fer_lib.paths import PROJECT_ROOT

FER2013_PRESETS = ("classroom", "best", "cpu_best", "paper_a", "paper_b")


@pytest.mark.parametrize("name", FER2013_PRESETS)
def test_fer2013_presets_read_real_photos_and_clips_when_there(name: str) -> None:
    faces = load_params(PROJECT_ROOT / "params" / f"{name}.yaml").faces
    assert faces.images == ["../shared/photos"] and faces.videos == ["../shared/videos"]
    assert faces.if_missing == "default"
    assert faces.detector == ("haar" if name.startswith("paper") else "blazeface")


def test_default_keeps_the_built_in_photos_and_clip() -> None:
    faces = load_params(PROJECT_ROOT / "params" / "default.yaml").faces
    assert faces.images == [] and faces.videos == [] and faces.detector == "blazeface"
    assert faces.blazeface_models == ["full", "short"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("faces: {detector: viola}", "faces.detector"),
        ("faces: {detect_every: 0}", "faces.detect_every must be at least 1"),
        ("faces: {video_step: 0}", "faces.video_step must be at least 1"),
        ("faces: {if_missing: skip}", "faces.if_missing"),
    ],
)
def test_bad_faces_values_are_params_errors(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ParamsError, match=problem):
        load_params(path)
