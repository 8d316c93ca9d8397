"""The report runner on tiny throwaway notebooks (the real notebooks are the integration test)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import nbformat
import pytest

from fer_lib.errors import FerError, ParamsError
from fer_lib.params import load_params
from fer_lib.study.cli import main
from fer_lib.study.report import NotebookFailedError, headline_numbers, run_report

PARAMETERS_CELL = "params_path = None\noutput_dir = None\ndata_dir = None\nmodel_path = None\ntrain_run = None"

WRITE_METRICS_AND_FIGURE = """
%matplotlib inline
import json
from pathlib import Path
from matplotlib.figure import Figure
from fer_lib.plots import save_figure

from fer_lib.paths import PROJECT_ROOT
assert Path(params_path).is_absolute() and Path.cwd() == PROJECT_ROOT  # outside the project: absolute
output_dir = Path(output_dir)
(output_dir / "metrics").mkdir(exist_ok=True)
(output_dir / "metrics" / "evaluation.json").write_text(json.dumps(
    {"mode": "inference", "tta": "none", "splits": {"PublicTest": {"n": 10, "accuracy": 0.5, "macro_f1": 0.25}}}))
figure = Figure()
figure.subplots().plot([0, 1], [1, 0])
save_figure(figure, output_dir, "01_line")
figure
"""

WRITE_DATA_METRICS = """
import json
from pathlib import Path
(Path(output_dir) / "metrics").mkdir(exist_ok=True)
(Path(output_dir) / "metrics" / "data.json").write_text(json.dumps({"dataset": "synthetic"}))
"""


def write_notebook(path: Path, *code: str) -> Path:
    """Write a notebook: a markdown title, a ``parameters`` cell, then one code cell per ``code``."""
    notebook = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}}
    )
    notebook.cells = [
        nbformat.v4.new_markdown_cell(f"# {path.stem}"),
        nbformat.v4.new_code_cell(PARAMETERS_CELL, metadata={"tags": ["parameters"]}),
        *[nbformat.v4.new_code_cell(source) for source in code],
    ]
    nbformat.write(notebook, path)
    return path


@pytest.fixture
def study(tmp_path: Path) -> dict[str, Path]:
    """A params file, a notebooks folder and a reports folder in ``tmp_path``."""
    (tmp_path / "params").mkdir()
    (tmp_path / "notebooks").mkdir()
    params = tmp_path / "params" / "tiny.yaml"
    params.write_text("name: tiny\n")
    return {"params": params, "notebooks": tmp_path / "notebooks", "reports": tmp_path / "reports"}


@pytest.mark.slow
def test_report_runs_notebooks_in_order_into_new_folders(study: dict[str, Path]) -> None:
    notebooks = [
        write_notebook(study["notebooks"] / "01_metrics.ipynb", WRITE_METRICS_AND_FIGURE),
        write_notebook(study["notebooks"] / "02_data.ipynb", WRITE_DATA_METRICS),
    ]

    first = run_report(study["params"], reports_root=study["reports"], notebooks=notebooks)

    assert first.parent == study["reports"] and first.name.startswith("tiny-")
    for name in ("01_metrics", "02_data"):
        assert nbformat.read(first / f"{name}.ipynb", as_version=4).metadata.papermill.exception is None
        assert (first / f"{name}.html").is_file()
    assert 'src="data:image/png;base64,' in (first / "01_metrics.html").read_text()  # figure embedded
    assert (first / "figures" / "01_line.png").is_file()
    assert load_params(first / "params.yaml") == load_params(study["params"])  # resolved: loads on its own
    manifest = json.loads((first / "manifest.json").read_text())
    assert manifest["report"]["output_dir"] == str(first).replace(tempfile.gettempdir(), "$TMPDIR", 1)  # portable
    metrics = json.loads((first / "metrics.json").read_text())
    assert metrics["evaluation"]["splits"]["PublicTest"]["accuracy"] == 0.5
    assert metrics["data"] == {"dataset": "synthetic"}
    index = (first / "index.html").read_text()
    for expected in (
        'href="01_metrics.html"',
        'href="02_data.html"',
        'src="figures/01_line.png"',
        "SYNTHETIC",
        "tiny",
        "PublicTest accuracy (inference mode, n=10)",
        "0.5000",
    ):
        assert expected in index

    snapshot = {path: path.read_bytes() for path in first.rglob("*") if path.is_file()}
    second = run_report(study["params"], reports_root=study["reports"], notebooks=notebooks[1:])

    assert second != first and second.parent == first.parent
    assert {path: path.read_bytes() for path in first.rglob("*") if path.is_file()} == snapshot


@pytest.mark.slow
def test_failing_notebook_stops_the_report_and_keeps_partial_output(study: dict[str, Path]) -> None:
    notebooks = [
        write_notebook(study["notebooks"] / "01_fails.ipynb", "raise ValueError('boom')", "x = 1"),
        write_notebook(study["notebooks"] / "02_never.ipynb", "y = 2"),
    ]

    with pytest.raises(NotebookFailedError) as raised:
        run_report(study["params"], reports_root=study["reports"], notebooks=notebooks)

    message, run_dir = str(raised.value), raised.value.run_dir
    assert "01_fails.ipynb" in message and "code cell 2" in message and "ValueError: boom" in message
    assert "\n" not in message and str(run_dir / "01_fails.html") in message
    assert (run_dir / "01_fails.ipynb").is_file() and (run_dir / "01_fails.html").is_file()
    assert not (run_dir / "02_never.ipynb").exists()
    index = (run_dir / "index.html").read_text()
    assert "failed" in index and "not run" in index


def test_invalid_params_fail_before_any_notebook_runs(study: dict[str, Path]) -> None:
    study["params"].write_text("name: tiny\ntrain: {epoks: 3}\n")
    notebook = write_notebook(study["notebooks"] / "01_never.ipynb", "raise SystemExit(3)")

    with pytest.raises(ParamsError, match="epoks"):
        run_report(study["params"], reports_root=study["reports"], notebooks=[notebook])

    assert not study["reports"].exists()


def test_missing_notebook_or_kernel_is_a_user_error(study: dict[str, Path]) -> None:
    with pytest.raises(FerError, match="missing.ipynb: notebook not found"):
        run_report(study["params"], reports_root=study["reports"], notebooks=[study["notebooks"] / "01_missing.ipynb"])
    notebook = write_notebook(study["notebooks"] / "01_ok.ipynb")
    with pytest.raises(FerError, match="kernel 'no-such-kernel'"):
        run_report(study["params"], reports_root=study["reports"], notebooks=[notebook], kernel_name="no-such-kernel")
    assert not study["reports"].exists()


def test_headline_numbers_name_split_and_mode() -> None:
    metrics = {
        "evaluation": {"tta": "flip", "splits": {"PrivateTest": {"n": 7, "accuracy": 0.25, "macro_f1": 0.125}}},
        "training": {"final_epoch": {"epoch": 30, "fit_accuracy": 0.9423, "val_accuracy": 0.6}},
    }

    rows = dict(headline_numbers(metrics))

    assert rows["PrivateTest accuracy (inference mode, test-time augmentation flip, n=7)"] == "0.2500"
    assert rows["Training, fit-time (training mode) accuracy, last epoch (30)"] == "0.9423"
    assert rows["PublicTest, inference mode accuracy, last epoch (30)"] == "0.6000"
    assert headline_numbers({}) == []


def test_cli_report_rejects_invalid_params(study: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    study["params"].write_text("name: [not, a, string]\n")

    assert main(["report", "--params", str(study["params"]), "--out", str(study["reports"])]) == 2
    assert "tiny.yaml: 'name' must be a string" in capsys.readouterr().err
    assert not study["reports"].exists()


def test_make_portable_rewrites_machine_paths_in_text_files_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fer_lib.paths import PROJECT_ROOT
    from fer_lib.study.report import machine_paths, make_portable

    # temporary and home folders elsewhere, so that the project's sibling below lies under none of the
    # rewritten folders even in a clone under /tmp or ~
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "temporary"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    (tmp_path / "page.html").write_text(
        f'<span>"{PROJECT_ROOT}/params/a.yaml"</span> {PROJECT_ROOT}2/x from /data/fer&quot; {PROJECT_ROOT}'
    )
    (tmp_path / "figure.png").write_bytes(str(PROJECT_ROOT).encode())

    changed = make_portable(tmp_path, machine_paths("/data/fer"))

    assert changed == [tmp_path / "page.html"]
    assert (
        tmp_path / "page.html"
    ).read_text() == f'<span>"params/a.yaml"</span> {PROJECT_ROOT}2/x from $FER2013_DIR&quot; .'
    assert (tmp_path / "figure.png").read_bytes() == str(PROJECT_ROOT).encode()


@pytest.mark.slow
def test_report_from_a_dirty_tree_warns_in_one_line_and_records_it(
    study: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fer_lib.study import runs

    monkeypatch.setattr(runs, "git_dirty", lambda: True)
    notebook = write_notebook(study["notebooks"] / "01_ok.ipynb", "x = 1")

    run_dir = run_report(study["params"], reports_root=study["reports"], notebooks=[notebook], name="named")

    warnings = [line for line in capsys.readouterr().err.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "this report records commit" in warnings[0] and "dirty=true" in warnings[0]
    assert run_dir == study["reports"] / "named"
    assert json.loads((run_dir / "manifest.json").read_text())["git"]["dirty"] is True
    assert "with uncommitted changes" in (run_dir / "index.html").read_text()
