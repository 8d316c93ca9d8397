"""A report made inside the project names no machine path, records its commands, and its training reproduces.

Its training is notebook 2's visible cells on a staged recipe (head only for one epoch, then everything);
``reproduce`` trains the same run with :func:`fer_lib.study.training_run.train` (the CLI's training) in this
process, so the bit-identical histories and weights show that notebook 2 trains what ``train`` trains.

The real study notebooks run on a tiny FER-2013-like image folder (synthetic faces written as PNG
files) outside the project, as ``report --data DIR`` would be given it; the report folder lies
inside the project (in a temporary folder under the git-ignored ``runs/``), as committed reports do.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import nbformat
import numpy as np
import pytest
import yaml
from conftest import write_image

from fer_lib.labels import EMOTIONS
from fer_lib.model import load_model
from fer_lib.paths import PROJECT_ROOT
from fer_lib.study.cli import main
from fer_lib.study.report import TEXT_SUFFIXES, run_report
from fer_lib.synthetic import make_synthetic_dataset

TINY_STUDY = {
    "name": "tiny-portable",
    "description": "SYNTHETIC faces in FER-2013's folder layout",
    "seed": 5,
    "data": {"source": "fer2013"},
    "model": {"input_size": 32, "alpha": 0.35, "weights": "none", "bn_momentum": 0.9, "freeze": "staged"},
    "train": {
        "epochs": 2,
        "warmup_epochs": 1,
        "head_learning_rate": 0.004,
        "batch_size": 16,
        "train_eval_subset": None,
    },
    "evaluate": {"mistakes_shown": 4},
    "faces": {"model": "run"},
}


def write_image_folder(root: Path) -> Path:
    """Write synthetic faces as FER-2013's Kaggle folders ``root/{train,test}/<emotion>/<Usage>_<n>.png``."""
    dataset = make_synthetic_dataset(per_class=6, seed=1)
    for number, (face, label, usage) in enumerate(zip(dataset.faces, dataset.labels, dataset.usage, strict=True)):
        folder = root / ("train" if usage == "Training" else "test") / EMOTIONS[label]
        write_image(folder / f"{usage}_{number}.png", face)
    return root


@pytest.mark.slow
@pytest.mark.usefixtures("graph_mode")  # reproduce trains here as the notebook kernel did, traced
def test_report_inside_the_project_is_portable_and_its_training_reproduces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_image_folder(tmp_path / "fer2013")
    (PROJECT_ROOT / "runs").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=PROJECT_ROOT / "runs", prefix="test-portable-") as inside:
        inside = Path(inside)
        relative = inside.relative_to(PROJECT_ROOT).as_posix()
        params = inside / "tiny.yaml"
        params.write_text(yaml.safe_dump(TINY_STUDY))

        run_dir = run_report(params, reports_root=inside / "reports", data_dir=str(data), name="fer2013-tiny")

        assert run_dir == inside / "reports" / "fer2013-tiny"
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["report"]["params_path"] == f"{relative}/tiny.yaml"
        assert manifest["report"]["output_dir"] == f"{relative}/reports/fer2013-tiny"
        assert manifest["report"]["data_dir"] == "$FER2013_DIR"
        injected = next(
            cell.source
            for cell in nbformat.read(run_dir / "01_data_exploration.ipynb", 4).cells
            if "injected-parameters" in cell.metadata.get("tags", [])
        )
        assert f'params_path = "{relative}/tiny.yaml"' in injected and 'data_dir = "$FER2013_DIR"' in injected
        for path in run_dir.rglob("*"):
            if path.suffix in TEXT_SUFFIXES:
                text = path.read_text()
                for machine_path in (str(PROJECT_ROOT), str(data), str(tmp_path), str(Path.home())):
                    assert machine_path not in text, f"{path.name} names {machine_path}"
        assert "faces from $FER2013_DIR" in (run_dir / "01_data_exploration.html").read_text()
        index = (run_dir / "index.html").read_text()
        assert f"python -m fer_lib reproduce {relative}/reports/fer2013-tiny --epochs 2 --data" in index
        assert "trained by notebook 02 of this report" in index
        assert (run_dir / "training_history.csv").is_file() and (run_dir / "training_manifest.json").is_file()
        notebook_2 = (run_dir / "02_fine_tuning.html").read_text()
        assert "train.head_learning_rate" in notebook_2 and "make_optimizer" in notebook_2
        for shown in ("MobileNetV2", "include_top", "trainable", "compile", "fit", "Dense"):
            assert shown in notebook_2  # the recipe as code in visible cells (HTML splits code into tokens)
        assert all(
            (run_dir / "figures" / f"02_{name}.png").is_file()
            for name in ("augmentation", "learning_rate", "training_curves")
        )
        capsys.readouterr()

        code = main(["reproduce", str(run_dir), "--epochs", "2", "--data", str(data), "--out", str(inside / "again")])

        out = capsys.readouterr().out
        assert code == 0, out
        # the kernel that trained and this process: same machine and threads
        assert "verdict: IDENTICAL: every metric of epochs 1-2 is bit-identical" in out
        notebook_model, train_model = (
            load_model(run / "model.keras") for run in (run_dir / "training", inside / "again")
        )
        for ours, theirs in zip(notebook_model.get_weights(), train_model.get_weights(), strict=True):
            np.testing.assert_array_equal(ours, theirs)
