"""The whole study: every real notebook executed through papermill on tiny parameters."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fer_lib.report import run_report, study_notebooks

TINY_STUDY = {
    "name": "tiny-study",
    "description": "SYNTHETIC smoke test of all notebooks",
    "seed": 3,
    "data": {"source": "synthetic", "synthetic_per_class": 6},
    "model": {"input_size": 32, "weights": "none", "bn_momentum": 0.9},
    "train": {"epochs": 1, "batch_size": 16, "train_eval_subset": None},
    "evaluate": {"mistakes_shown": 4},
    "faces": {"model": "run"},
}


@pytest.mark.slow
def test_every_notebook_runs_and_the_report_links_them(tmp_path: Path) -> None:
    params_path = tmp_path / "tiny.yaml"
    params_path.write_text(yaml.safe_dump(TINY_STUDY))
    run_dir = run_report(params_path, reports_root=tmp_path / "reports")

    notebooks = [path.stem for path in study_notebooks()]
    assert len(notebooks) == 5
    index = (run_dir / "index.html").read_text()
    for name in notebooks:
        assert (run_dir / f"{name}.html").stat().st_size > 10_000
        assert f"{name}.html" in index
    assert "SYNTHETIC" in index
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) == {"data", "training", "evaluation", "photos", "video"}
    assert metrics["evaluation"]["mode"] == "inference"
    assert set(metrics["evaluation"]["splits"]) == {"Training", "PublicTest", "PrivateTest"}
    assert metrics["video"]["frames"] > 0
    assert any(photo["faces"] for photo in metrics["photos"]["photos"]), "the astronaut's face was not found"
    assert len(list((run_dir / "figures").glob("*.png"))) >= 8
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["params"]["name"] == "tiny-study"
