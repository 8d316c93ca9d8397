"""The method is written where it is taught: fer_lib/recipe.py is notebook 2's ``#| export`` cells, and an
edited cell changes what the notebook trains.

That notebook 2 and ``python -m fer_lib train`` give bit-identical weights (a staged recipe on synthetic
faces) is asserted by tests/test_portable_report.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import papermill
import pytest
import yaml

from fer_lib.model import load_model
from fer_lib.paths import NOTEBOOKS_DIR, PROJECT_ROOT
from fer_lib.study.notebook_export import EXPORTS, MARK, exported_cells, module_source, stale_modules

NOTEBOOK_2 = NOTEBOOKS_DIR / "02_fine_tuning.ipynb"

TINY = {
    "name": "tiny-edited",
    "description": "SYNTHETIC faces, one epoch",
    "seed": 2,
    "data": {"source": "synthetic", "synthetic_per_class": 6},
    "model": {"input_size": 32, "alpha": 0.35, "weights": "none"},
    "train": {"epochs": 1, "batch_size": 16, "train_eval_subset": None},
}


def test_the_recipe_module_is_the_notebooks_export_cells() -> None:
    assert EXPORTS == {"fer_lib/recipe.py": "notebooks/02_fine_tuning.ipynb"}
    assert stale_modules() == [], "run: python -m fer_lib.study.notebook_export"
    source = (PROJECT_ROOT / "fer_lib" / "recipe.py").read_text()
    for cell in exported_cells(NOTEBOOK_2):
        assert cell in source
    for shown in ("MobileNetV2(", "include_top=False", "keras.layers.Dense(", "trainable = False", "trainable = True"):
        assert shown in source
    assert source.count(".compile(") == 2 and source.count(".fit(") == 1


def test_a_cell_edit_makes_the_module_stale(tmp_path: Path) -> None:
    notebook = json.loads(NOTEBOOK_2.read_text())
    cell = next(c for c in notebook["cells"] if "def make_loss(" in "".join(c["source"]))
    cell["source"] = "".join(cell["source"]).replace("label_smoothing: float = 0.0", "label_smoothing: float = 0.1")
    (tmp_path / "notebooks").mkdir()
    edited = tmp_path / "notebooks" / "02.ipynb"
    edited.write_text(json.dumps(notebook))
    assert module_source(edited, root=tmp_path) != module_source(NOTEBOOK_2)
    assert "label_smoothing: float = 0.1" in module_source(edited, root=tmp_path)


EDITED_HEAD = '''#| export
def head(features, *, pooling, units, activation, dropout, seed):
    """A teacher's head: 32 ReLU units, then the softmax."""
    x = keras.layers.GlobalAveragePooling2D(name="pool")(features)
    x = keras.layers.Dense(32, activation="relu", name="teacher_dense")(x)
    return keras.layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="probabilities")(x)'''


@pytest.mark.slow
@pytest.mark.usefixtures("eager_kernels")
def test_an_edited_head_cell_is_the_head_the_notebook_trains(tmp_path: Path) -> None:
    notebook = json.loads(NOTEBOOK_2.read_text())
    (cell,) = (c for c in notebook["cells"] if "".join(c["source"]).startswith(MARK + "\ndef head("))
    cell["source"] = EDITED_HEAD.splitlines(True)
    edited, params = tmp_path / "02_edited.ipynb", tmp_path / "tiny.yaml"
    edited.write_text(json.dumps(notebook))
    params.write_text(yaml.safe_dump(TINY))

    papermill.execute_notebook(
        edited,
        tmp_path / "02_executed.ipynb",
        parameters={"params_path": str(params), "output_dir": str(tmp_path / "report")},
        cwd=PROJECT_ROOT,
        progress_bar=False,
    )

    model = load_model(tmp_path / "report" / "training" / "model.keras")
    assert [layer.name for layer in model.layers][-3:] == ["pool", "teacher_dense", "probabilities"]
    assert model.get_layer("teacher_dense").units == 32
    history = (tmp_path / "report" / "training" / "history.csv").read_text().splitlines()
    assert len(history) == 2  # the header and the one epoch trained
