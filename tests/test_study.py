"""The whole study as a new user runs it: ``make study``'s command in a copy of the project with
nothing beside it (no ../shared, no FER_WEIGHTS, an empty Keras cache, no network)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fer_lib.paths import PROJECT_ROOT
from fer_lib.study.report import study_notebooks

NOT_IN_A_CLONE = (
    ".git",
    ".venv",
    "runs",
    "reports",
    "__pycache__",
    "*.egg-info",
    ".pytest_cache",
    ".cache",
    ".ipynb_checkpoints",
    ".device",
    ".whl",
)
"""What a fresh clone lacks: git-ignored outputs (and the committed reports, which the study does not read)."""


def isolated_copy(parent: Path) -> Path:
    """Copy the project to ``parent/p``; ``parent`` holds nothing else (so no ``shared/`` beside it)."""
    parent.mkdir()
    return Path(shutil.copytree(PROJECT_ROOT, parent / "p", ignore=shutil.ignore_patterns(*NOT_IN_A_CLONE)))


def offline_environment(project: Path, keras_home: Path) -> dict[str, str]:
    """The environment of a user with nothing but the clone: its own fer_lib first on the path,
    no FER_WEIGHTS, an empty Keras cache, and every download refused (proxy on the discard port)."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("FER_WEIGHTS", "FER2013_DIR", "no_proxy", "NO_PROXY")
    }
    proxy = "http://127.0.0.1:9"
    environment.update(
        PYTHONPATH=str(project),
        KERAS_HOME=str(keras_home),
        http_proxy=proxy,
        https_proxy=proxy,
        HTTP_PROXY=proxy,
        HTTPS_PROXY=proxy,
    )
    return environment


@pytest.mark.slow
def test_the_default_study_runs_from_the_clone_alone(tmp_path: Path) -> None:
    project = isolated_copy(tmp_path / "empty")
    keras_home = tmp_path / "keras-home"
    keras_home.mkdir()
    assert not (project.parent / "shared").exists() and not any(keras_home.iterdir())

    done = subprocess.run(
        [sys.executable, "-m", "fer_lib", "report", "--params", "params/default.yaml"],
        cwd=project,
        env=offline_environment(project, keras_home),
        capture_output=True,
        text=True,
        timeout=1800,
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (run_dir,) = (project / "reports").glob("default-*")  # the copy's own fer_lib wrote it
    notebooks = [path.stem for path in study_notebooks()]
    assert len(notebooks) == 5
    index = (run_dir / "index.html").read_text()
    for name in notebooks:
        assert (run_dir / f"{name}.html").stat().st_size > 10_000
        assert f"{name}.html" in index
    assert "SYNTHETIC" in index
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) == {"data", "training", "evaluation", "tta", "photos", "video"}
    assert set(metrics["tta"]) == {"none", "flip", "tencrop"}  # notebook 3 scores the held-out splits each way
    assert set(metrics["tta"]["tencrop"]) == {"PublicTest", "PrivateTest"}
    assert metrics["evaluation"]["mode"] == "inference"
    assert set(metrics["evaluation"]["splits"]) == {"Training", "PublicTest", "PrivateTest"}
    assert metrics["video"]["frames"] > 0
    assert any(photo["faces"] for photo in metrics["photos"]["photos"]), "the astronaut's face was not found"
    assert len(list((run_dir / "figures").glob("*.png"))) >= 8
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["params"]["name"] == "default" and manifest["params"]["model"]["weights"] == "shipped"
    assert not any(keras_home.rglob("*.h5")), "the default study downloaded weights"
