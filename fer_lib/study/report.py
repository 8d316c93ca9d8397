"""Run the study's notebooks with papermill and turn them into a browsable HTML report.

One report is one new folder ``reports/<params name>-<YYYYmmdd-HHMMSS>/`` holding::

    manifest.json      provenance (params, versions, backend, device, git commit)
    params.yaml        the params the study ran with, resolved (inherited keys included: it loads on its own)
    NN_name.ipynb      each notebook, executed (outputs included)
    NN_name.html       the same as a standalone web page (figures embedded)
    figures/*.png      every figure, saved by the notebooks
    metrics/*.json     the numbers each notebook recorded
    metrics.json       all of metrics/*.json merged: {file stem: contents}
    training_history.csv, training_manifest.json
                       the training run's history and manifest (from --train-run, or the run
                       notebook 02 trained), which ``reproduce`` compares a new run with
    index.html         the front page: headline numbers, the commands that made the report and
                       the one that reproduces its training, links to notebooks and figures

The study's notebooks (:data:`STUDY_NOTEBOOKS`) receive those of the papermill parameters
``params_path``, ``output_dir``, ``data_dir``, ``model_path`` and ``train_run`` that their parameters
cell declares (notebook 1 takes no model, notebooks 4 and 5 no FER-2013 data). The ablation
notebook (:data:`ABLATION_NOTEBOOK`) is run on its own by :func:`run_ablation_report`, into a
folder ``reports/ablations-<YYYYmmdd-HHMMSS>/`` of the same layout, with ``params_path``,
``variants_path``, ``output_dir``, ``data_dir``, ``runs_dir``, ``overrides``, ``workers``, ``ray``
and ``ray_address``.

Reports are portable: the notebooks run with the project root as working folder and receive
paths relative to it (:func:`fer_lib.study.runs.portable_path`); a FER-2013 location outside the
project reaches them as ``"$FER2013_DIR"`` (the variable set to it for the kernel). What the
notebooks print or record with this machine's paths (e.g. the shipped model's absolute path) is
rewritten the same way in the report's text files (:func:`make_portable`), so that a committed
report names no folder of the machine that made it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jinja2
import nbformat
import papermill
import yaml
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from nbclient.exceptions import DeadKernelError
from nbconvert import HTMLExporter

from fer_lib.console import native_stderr_muted
from fer_lib.errors import DataError, FerError, ModelError
from fer_lib.params import TTA_MODES, Params, load_params, mode_label, resolve_data_dir
from fer_lib.paths import NOTEBOOKS_DIR, PROJECT_ROOT, REPORTS_DIR, ReportLayout, RunLayout
from fer_lib.plots import TRAINING_CURVES
from fer_lib.study.runs import (
    DATA_VARIABLE,
    data_label,
    dirty_tree_warning,
    new_run_dir,
    portable_command,
    portable_path,
    require_finished,
    write_manifest,
)
from fer_lib.study.variants import publictest_column

STUDY_NOTEBOOKS: tuple[str, ...] = (
    "01_data_exploration.ipynb",
    "02_fine_tuning.ipynb",
    "03_fer2013_evaluation.ipynb",
    "04_random_images.ipynb",
    "05_video_clips.ipynb",
)
"""The notebooks of the study (``report``), in the order they run."""

ABLATION_NOTEBOOK: str = "06_ablations.ipynb"
"""The ablation study's notebook (``ablate``), run on its own: it trains one model per variant."""

TEXT_SUFFIXES: tuple[str, ...] = (".ipynb", ".html", ".json", ".csv", ".md", ".yaml", ".txt")
"""The files of a report that :func:`make_portable` rewrites (figures are left alone)."""

INJECTED_TAG: str = "injected-parameters"
"""Tag of the cell papermill adds to set the parameters; not counted when naming a source cell."""


class NotebookFailedError(FerError):
    """A notebook raised an error during a report; ``run_dir`` holds the partial report."""

    def __init__(self, message: str, run_dir: Path) -> None:
        super().__init__(message)
        self.run_dir = run_dir


@dataclass
class NotebookRun:
    """What happened to one notebook of a report."""

    source: Path
    status: Literal["not run", "ok", "failed"] = "not run"
    seconds: float | None = None
    executed: Path | None = None
    html: Path | None = None
    problem: str | None = None
    """One line naming the failing cell and error, for ``failed``."""


def study_notebooks(folder: Path = NOTEBOOKS_DIR) -> list[Path]:
    """Return the paths of :data:`STUDY_NOTEBOOKS` in ``folder``, in the order they run."""
    return [folder / name for name in STUDY_NOTEBOOKS]


def run_report(
    params_path: str | Path,
    *,
    reports_root: str | Path = REPORTS_DIR,
    data_dir: str | None = None,
    model_path: str | None = None,
    train_run: str | None = None,
    notebooks: list[Path] | None = None,
    kernel_name: str = "python3",
    name: str | None = None,
) -> Path:
    """Execute the study's notebooks into a new report folder and return that folder.

    Args:
        params_path: the params YAML file, validated before anything runs.
        reports_root: where the report folder is created.
        data_dir: FER-2013 folder or csv (overrides the params file; implies FER-2013).
        model_path: a ``.keras`` model to evaluate instead of the one trained in this report.
        train_run: a finished training run folder to report on instead of training again.
        notebooks: the notebooks to run, in order; default: :func:`study_notebooks`.
        kernel_name: the Jupyter kernel that executes them.
        name: the report folder's exact name (e.g. ``fer2013-cpu_best``); default
            ``<params name>-<time>``.

    Raises:
        ParamsError: if the params file is invalid, or asks for FER-2013 without a location
            (before any folder is created).
        DataError, ModelError: if the dataset, ``model_path`` or ``train_run`` does not exist (idem).
        FerError: if there are no notebooks, one is missing, or the kernel is not installed.
        RunExistsError: if ``name`` is given and that folder exists.
        NotebookFailedError: if a notebook raises; its partial .ipynb and .html, and index.html,
            are kept in the report folder.
    """
    params_path = Path(params_path).expanduser().resolve()
    params, notebooks = check_report(
        params_path,
        data_dir=data_dir,
        model_path=model_path,
        train_run=train_run,
        notebooks=notebooks,
        kernel_name=kernel_name,
    )
    parameters = {"data_dir": data_dir, "model_path": _portable(model_path), "train_run": _portable(train_run)}
    return execute_report(
        params,
        params_path,
        notebooks,
        reports_root,
        name or params.name,
        parameters,
        data_dir,
        kernel_name,
        exact_name=name is not None,
        training_run=Path(train_run).expanduser() if train_run else None,
    )


def check_report(
    params_path: str | Path,
    *,
    data_dir: str | None = None,
    model_path: str | None = None,
    train_run: str | None = None,
    notebooks: list[Path] | None = None,
    kernel_name: str = "python3",
) -> tuple[Params, list[Path]]:
    """Check everything :func:`run_report` needs before anything runs; imports no Keras.

    Returns:
        The loaded params and the notebooks to run (absolute paths).

    Raises:
        The errors :func:`run_report` lists, except ``RunExistsError`` and ``NotebookFailedError``.
    """
    params = load_params(params_path)
    notebooks = study_notebooks() if notebooks is None else [Path(notebook).resolve() for notebook in notebooks]
    _check_inputs(notebooks, kernel_name)
    _check_sources(params, Path(params_path), data_dir, model_path, train_run)
    return params, notebooks


def run_ablation_report(
    variants_path: str | Path,
    params_path: str | Path | None = None,
    *,
    reports_root: str | Path = REPORTS_DIR,
    data_dir: str | None = None,
    overrides: dict[str, Any] | None = None,
    runs_dir: str | Path | None = None,
    reuse: list[str | Path] | None = None,
    train: bool = True,
    workers: int = 1,
    on_ray: bool = False,
    ray_address: str | None = None,
    kernel_name: str = "python3",
    name: str | None = None,
) -> Path:
    """Run the ablation notebook into a new report folder ``<reports_root>/ablations-<time>/``; return it.

    Args:
        variants_path: the variants YAML file (see :mod:`fer_lib.study.ablation`).
        params_path: the base recipe, replacing the variants file's ``base``; None keeps it.
        reports_root: where the report folder is created.
        data_dir: FER-2013 folder or csv (overrides the params; implies FER-2013).
        overrides: dotted params keys set for every variant, e.g. ``{"train.epochs": 3}``.
        runs_dir: the folder of the variants' training runs (default
            :data:`fer_lib.study.ablation.DEFAULT_RUNS_DIR`); finished runs there are reused.
        reuse: earlier reports' ``ablation.csv`` files whose rows stand in for variants not finished under
            ``runs_dir`` (:func:`fer_lib.study.ablation.reusable_rows`).
        train: False: train nothing; the report holds the variants whose runs are finished or reused
            (an ablation so far), and lists the others.
        workers: host threads preparing training batches.
        on_ray: train and score each variant as one Ray task (see :func:`fer_lib.study.ablation.run_ablation`).
        ray_address: with ``on_ray``, the Ray cluster to join; None: a local Ray.
        kernel_name: the Jupyter kernel that executes the notebook.
        name: the report folder's exact name (e.g. ``ablations``); default ``ablations-<time>``.

    Raises:
        ParamsError: for an invalid variants or params file or override (before any folder is created).
        ClusterError: with ``on_ray``, if Ray is not installed (idem).
        DataError, ModelError: if the dataset or, for a variant still to train, the ImageNet weights
            file is missing, or with ``train`` False if the baseline has no finished run or reused row (idem).
        RunExistsError: if ``name`` is given and that folder exists.
        FerError, NotebookFailedError: as :func:`run_report`.
    """
    from fer_lib.study.ablation import DEFAULT_RUNS_DIR, reusable_rows, untrained_variants, variants_left_out
    from fer_lib.study.cluster import import_ray
    from fer_lib.study.variants import load_variants
    from fer_lib.weights import resolve_weights

    if on_ray:
        import_ray("ablate --ray")

    variants_path = Path(variants_path).expanduser().resolve()
    base = Path(params_path).expanduser().resolve() if params_path else None
    ablation = load_variants(variants_path, overrides=overrides, base=base)
    notebooks = [NOTEBOOKS_DIR / ABLATION_NOTEBOOK]
    _check_inputs(notebooks, kernel_name)
    for variant in ablation.distinct():
        _check_sources(variant.params, ablation.base_path, data_dir, None, None)
    runs_dir = Path(runs_dir).expanduser().resolve() if runs_dir else DEFAULT_RUNS_DIR
    reuse = [Path(table).expanduser().resolve() for table in reuse or []]
    reused = reusable_rows(ablation, reuse, runs_dir, data_dir=data_dir)  # a bad table fails here, not in the notebook
    if train:  # a variant still to train needs the weights file
        for variant in untrained_variants(ablation, runs_dir, reused, data_dir=data_dir):
            resolve_weights(variant.params.model.weights, alpha=variant.params.model.alpha)
    else:
        variants_left_out(ablation, runs_dir, reused, data_dir=data_dir)  # the baseline must be there
    parameters = {
        "variants_path": portable_path(variants_path),
        "data_dir": data_dir,
        "runs_dir": portable_path(runs_dir),
        "reuse": [portable_path(table) for table in reuse],
        "train": train,
        "overrides": ablation.overrides,
        "workers": workers,
        "ray": on_ray,
        "ray_address": ray_address,
    }
    return execute_report(
        ablation.baseline.params,
        ablation.base_path.resolve(),
        notebooks,
        reports_root,
        name or "ablations",
        parameters,
        data_dir,
        kernel_name,
        exact_name=name is not None,
    )


def execute_report(
    params: Params,
    params_path: Path,
    notebooks: list[Path],
    reports_root: str | Path,
    name: str,
    parameters: dict[str, Any],
    data_dir: str | None,
    kernel_name: str,
    *,
    exact_name: bool = False,
    training_run: Path | None = None,
) -> Path:
    """Run checked ``notebooks`` into a new folder ``<reports_root>/<name>-<time>/`` and write its index.

    Every notebook receives ``params_path``, ``output_dir`` and ``parameters`` (paths portable, the
    data location as :func:`data_parameter` gives it); the folder gets ``manifest.json`` (for
    ``params``), a copy of the params file, the executed notebooks, their HTML pages,
    ``metrics.json``, the training run's records (:func:`copy_training_records`, from ``training_run``
    or the run notebook 02 trained into ``training/``) and ``index.html``. Prints a one-line
    warning first when the project's tree has uncommitted changes.

    Args:
        exact_name: the folder is ``<reports_root>/<name>`` itself.

    Raises:
        NotebookFailedError: if a notebook raises (see :func:`run_report`).
        RunExistsError: with ``exact_name``, if the folder exists.
    """
    warning = dirty_tree_warning("this report")
    if warning:
        print(warning, file=sys.stderr, flush=True)
    run_dir = new_run_dir(Path(reports_root).expanduser().resolve(), name, exact=exact_name)
    layout = ReportLayout(run_dir)
    injected_data, environment = data_parameter(data_dir)
    parameters = {
        "params_path": portable_path(params_path),
        "output_dir": portable_path(run_dir),
        **parameters,
        "data_dir": injected_data,
    }
    write_manifest(run_dir, params, extra={"report": {**parameters, "notebooks": [nb.name for nb in notebooks]}})
    layout.params.write_text(yaml.safe_dump(params.to_dict(), sort_keys=False))
    print(f"Report folder: {portable_path(run_dir)}", flush=True)
    notebook_runs = [NotebookRun(notebook) for notebook in notebooks]
    replacements = machine_paths(environment.get(DATA_VARIABLE))
    with _environment(environment):
        for notebook_run in notebook_runs:
            execute_notebook(notebook_run, run_dir, parameters, kernel_name, replacements=replacements)
            if notebook_run.status == "failed":
                break
    copy_training_records(training_run or layout.training_run, run_dir)
    make_portable(run_dir, replacements)
    metrics = merge_metrics(run_dir)
    write_index(run_dir, params, notebook_runs, metrics, data_dir=data_dir)
    failed = [notebook_run for notebook_run in notebook_runs if notebook_run.status == "failed"]
    if failed:
        raise NotebookFailedError(failed[0].problem or "", run_dir)
    return run_dir


def data_parameter(data_dir: str | None) -> tuple[str | None, dict[str, str]]:
    """The ``data_dir`` the notebooks receive for a report's ``--data``, and the environment they need.

    Returns:
        ``(None, {})`` without ``data_dir``; a location inside the project: its path relative to
        the project root; outside it: ``"$FER2013_DIR"`` and ``{"FER2013_DIR": absolute location}``.
    """
    if not data_dir:
        return None, {}
    label = data_label(data_dir)
    if label != f"${DATA_VARIABLE}":
        return label, {}
    return label, {DATA_VARIABLE: str(Path(os.path.expandvars(data_dir)).expanduser().resolve())}


def machine_paths(data_location: str | None = None) -> dict[str, str]:
    """This machine's paths in a report's outputs -> their portable form, for :func:`make_portable`.

    The FER-2013 location (``data_location``, else env ``FER2013_DIR``) -> ``$FER2013_DIR``;
    the project root -> ``.`` (so ``<root>/models/x`` -> ``models/x``); the data folder beside it
    (photos, clips) -> ``../shared``, as the presets name it; the temporary folder (where TensorFlow
    writes while converting to TFLite) -> ``$TMPDIR``; the home folder -> ``~``.
    A report folder elsewhere (outside the project and the temporary folder) keeps its absolute
    path: make reports meant for the repository in ``reports/`` (``report --name``).
    """
    replacements = {}
    location = data_location or os.environ.get(DATA_VARIABLE)
    if location:
        for form in {str(Path(location).expanduser()), str(Path(location).expanduser().resolve())}:
            if not Path(form).is_relative_to(PROJECT_ROOT):
                replacements[form.rstrip("/")] = f"${DATA_VARIABLE}"
    replacements[str(PROJECT_ROOT)] = "."
    replacements[str(PROJECT_ROOT.parent / "shared")] = "../shared"
    replacements[tempfile.gettempdir()] = "$TMPDIR"
    if len(Path.home().parts) > 1:
        replacements[str(Path.home())] = "~"
    return replacements


def make_portable(folder: Path, replacements: dict[str, str]) -> list[Path]:
    """Rewrite this machine's paths in the text files of ``folder`` (recursively); return those changed.

    Each key of ``replacements`` (an absolute path) is replaced where it is a whole path or a
    path's leading folders (followed by ``/``, a quote, space or end), longest first; a key
    replaced by ``.`` drops its ``/``: ``/work/p/models/m.keras`` -> ``models/m.keras``. Files with
    :data:`TEXT_SUFFIXES` are rewritten; figures and other binary files are left alone.
    """
    return [
        path
        for path in sorted(folder.rglob("*"))
        if path.suffix in TEXT_SUFFIXES and path.is_file() and make_portable_file(path, replacements)
    ]


def portable_text(text: str, replacements: dict[str, str]) -> str:
    """``text`` with the paths of ``replacements`` rewritten (see :func:`make_portable`)."""
    for old in sorted(replacements, key=len, reverse=True):
        new = replacements[old]
        if new == ".":
            text = text.replace(old + "/", "")
        text = re.sub(r"(?<![\w.~$/-])" + re.escape(old) + r"(?=[/\\\s\"'`&,:;)\]<]|$)", lambda _, new=new: new, text)
    return text


def copy_training_records(training_run: Path, run_dir: Path) -> list[Path]:
    """Copy a training run's history and manifest into the report (what ``reproduce`` compares with).

    Returns:
        The copies made (:attr:`ReportLayout.training_history`, :attr:`ReportLayout.training_manifest`);
        a record the run lacks is left out.
    """
    run, report = RunLayout(training_run), ReportLayout(run_dir)
    return [
        Path(shutil.copy2(source, copy))
        for source, copy in ((run.history, report.training_history), (run.manifest, report.training_manifest))
        if source.is_file()
    ]


def execute_notebook(
    notebook_run: NotebookRun,
    run_dir: Path,
    parameters: dict[str, Any],
    kernel_name: str,
    *,
    replacements: dict[str, str] | None = None,
) -> None:
    """Execute one notebook with papermill into ``run_dir`` and convert it to HTML.

    The notebook runs with the project root as working folder, with a :class:`CellProgress` line
    while it runs (on a terminal); the kernel's own start-up lines (TensorFlow's C++ notices, Jupyter's) are
    discarded unless env ``TF_CPP_MIN_LOG_LEVEL=0``. The executed notebook's machine paths are
    rewritten by ``replacements`` (see :func:`make_portable`) before it becomes HTML. Updates
    ``notebook_run`` in place (status, seconds, output paths, problem) and prints one line with
    the elapsed time when it ends.
    """
    source = notebook_run.source
    executed = run_dir / source.name
    started = time.perf_counter()
    progress = CellProgress(f"  {source.stem}", code_cells(source) + 1)  # + papermill's parameters cell
    declared = papermill.inspect_notebook(source)  # each notebook is given only the parameters it declares
    try:
        with native_stderr_muted(), progress:
            papermill.execute_notebook(
                source,
                executed,
                parameters={name: value for name, value in parameters.items() if name in declared},
                kernel_name=kernel_name,
                cwd=PROJECT_ROOT,
                progress_bar=False,
                log_output=False,
                on_cell_executed=progress.cell_done,
            )
        notebook_run.status = "ok"
    except papermill.PapermillExecutionError as error:
        notebook_run.status = "failed"
        notebook_run.problem = f"raised {error.ename}: {_first_line(str(error.evalue), 300)}"
    except DeadKernelError as error:
        notebook_run.status = "failed"
        notebook_run.problem = f"killed the kernel ({_first_line(str(error), 300)}; out of memory?)"
    notebook_run.seconds = time.perf_counter() - started
    notebook_run.executed = executed
    make_portable_file(executed, replacements or {})
    notebook_run.html = notebook_to_html(executed, executed.with_suffix(".html"))
    if notebook_run.status == "failed":
        notebook_run.problem = (
            f"{portable_path(source)}: {describe_failed_cell(executed)} {notebook_run.problem}"
            f"; partial output: {portable_path(notebook_run.html)}"
        )
    print(f"  {source.stem}: {notebook_run.status} in {notebook_run.seconds:.1f} s", flush=True)


class CellProgress:
    """A one-line display of a running notebook on a terminal: code cells done of ``total`` and the
    elapsed time, redrawn every second so that a long cell (training) shows time passing, and
    erased when done. Nothing is shown when stdout is not a terminal. A context manager."""

    def __init__(self, label: str, total: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(
            total=total,
            desc=label,
            leave=False,
            file=sys.stdout,
            disable=None,
            bar_format="{desc}: cell {n_fmt}/{total_fmt} [{elapsed}]",
        )
        self.stopped = threading.Event()
        self.ticker = threading.Thread(target=self._tick, daemon=True)

    def __enter__(self) -> CellProgress:
        if not self.bar.disable:
            self.ticker.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopped.set()
        if self.ticker.is_alive():
            self.ticker.join()
        self.bar.close()

    def cell_done(self, **_: Any) -> None:
        """nbclient's ``on_cell_executed`` hook: one more code cell finished."""
        self.bar.update()

    def _tick(self) -> None:
        """Redraw the line every second until stopped."""
        while not self.stopped.wait(1.0):
            self.bar.refresh()


def code_cells(notebook: Path) -> int:
    """The number of code cells with code in ``notebook`` (what nbclient executes)."""
    return sum(
        1 for cell in nbformat.read(notebook, as_version=4).cells if cell.cell_type == "code" and cell.source.strip()
    )


def make_portable_file(path: Path, replacements: dict[str, str]) -> bool:
    """Rewrite the machine paths of one text file (see :func:`make_portable`); True if it changed."""
    text = path.read_text(encoding="utf-8")
    portable = portable_text(text, replacements)
    if portable != text:
        path.write_text(portable, encoding="utf-8")
    return portable != text


def describe_failed_cell(executed: Path) -> str:
    """Name the cell of an executed notebook where execution stopped, as in the source notebook.

    Returns:
        e.g. ``code cell 2 (In [3]: "model = build(...)")``: the position among the source
        notebook's code cells (papermill's injected cells not counted), the execution count shown
        in the executed notebook, and the cell's first line.
    """
    cells = [
        cell
        for cell in nbformat.read(executed, as_version=4).cells
        if cell.cell_type == "code" and INJECTED_TAG not in cell.metadata.get("tags", [])
    ]
    started = [
        number for number, cell in enumerate(cells, start=1) if cell.metadata.get("papermill", {}).get("start_time")
    ]
    failed = [
        number for number, cell in enumerate(cells, start=1) if cell.metadata.get("papermill", {}).get("exception")
    ]
    number = (failed or started or [0])[-1]
    if number == 0:
        return "before its first cell"
    cell = cells[number - 1]
    return f'code cell {number} (In [{cell.execution_count}]: "{_first_line(cell.source, 80)}")'


def notebook_to_html(notebook: Path, html: Path) -> Path:
    """Convert an executed notebook to a standalone HTML page (images embedded); return ``html``."""
    body, _ = HTMLExporter(embed_images=True).from_filename(str(notebook))
    html.write_text(body, encoding="utf-8")
    return html


def merge_metrics(run_dir: Path) -> dict[str, Any]:
    """Merge ``run_dir/metrics/*.json`` into ``run_dir/metrics.json`` as ``{file stem: contents}``.

    Raises:
        FerError: naming the file, if one is not valid JSON.
    """
    merged = {}
    layout = ReportLayout(run_dir)
    for path in sorted(layout.metrics.glob("*.json")):
        try:
            merged[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise FerError(f"{path}: not valid JSON ({error})") from None
    layout.merged_metrics.write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")
    return merged


def headline_numbers(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """The numbers shown first in ``index.html``, each labelled with its split and mode.

    Reads ``metrics["evaluation"]`` (``tta``, ``splits`` and optionally
    ``without_cross_split_duplicates``, each ``{split: {n, accuracy, macro_f1}}``, and optionally
    ``merged_held_out`` ``{splits, n, accuracy}``; inference mode),
    ``metrics["training"]["final_epoch"]`` (the last history row: ``fit_accuracy``,
    ``train_accuracy``, ``val_accuracy``...) and ``metrics["ablation"]["variants"]`` (rows of
    :func:`fer_lib.study.ablation.run_ablation`); missing entries are left out.

    Returns:
        ``[(label, formatted value), ...]``.
    """
    rows = []
    evaluation = metrics.get("evaluation", {})
    mode = mode_label(evaluation.get("tta", "none"))
    for caption, key in (("", "splits"), (" without faces also in Training", "without_cross_split_duplicates")):
        for split, values in evaluation.get(key, {}).items():
            rows.append((f"{split} accuracy{caption} ({mode}, n={values['n']})", f"{values['accuracy']:.4f}"))
            rows.append((f"{split} macro-F1{caption} ({mode})", f"{values['macro_f1']:.4f}"))
    merged = evaluation.get("merged_held_out")
    if merged:
        rows.append(
            (
                f"{' + '.join(merged['splits'])} merged accuracy (paper A's test protocol, {mode}, n={merged['n']})",
                f"{merged['accuracy']:.4f}",
            )
        )
    final = metrics.get("training", {}).get("final_epoch", {})
    for prefix, label, _ in TRAINING_CURVES:
        if f"{prefix}_accuracy" in final:
            rows.append(
                (f"{label} accuracy, last epoch ({final.get('epoch', '?')})", f"{final[f'{prefix}_accuracy']:.4f}")
            )
    for variant in metrics.get("ablation", {}).get("variants", []):
        rows.append(
            (
                f"{variant['variant']}: PublicTest accuracy (inference mode, n={variant['publictest_n']}), "
                f"test-time augmentation {' / '.join(TTA_MODES)}",
                " / ".join(f"{variant[publictest_column('accuracy', tta)]:.4f}" for tta in TTA_MODES),
            )
        )
    return rows


INDEX_TEMPLATE = jinja2.Environment(autoescape=True).from_string("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>fer-study report: {{ params.name }}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; }
table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #ccc; padding: .3em .7em; }
th { background: #f3f3f3; text-align: left; } .ok { color: #070; } .failed { color: #b00; font-weight: bold; }
.synthetic { background: #fff3cd; border: 2px solid #c90; padding: .8em; font-size: 1.15em; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; } figure { margin: 0; width: 320px; }
figure img { width: 100%; border: 1px solid #ddd; } figcaption { font-size: .9em; }
</style></head><body>
<h1>fer-study report: {{ params.name }}</h1>
{% if params.description %}<p>{{ params.description }}</p>{% endif %}
{% if dataset == "synthetic" %}<p class="synthetic"><b>SYNTHETIC dataset.</b> This run used the generated faces that
ship with the project, not FER-2013: its numbers check that the pipeline works and say nothing about
facial expression recognition.</p>{% endif %}
<table>
<tr><th>params</th><td>{{ params.name }} (<a href="params.yaml">params.yaml</a>)</td></tr>
<tr><th>dataset</th><td>{{ "SYNTHETIC (generated faces)" if dataset == "synthetic" else "FER-2013" }}</td></tr>
<tr><th>git commit</th><td><code>{{ manifest.git.commit }}</code>
 {%- if manifest.git.dirty %} <span class="failed">with uncommitted changes</span>{% endif %}</td></tr>
<tr><th>created (UTC)</th><td>{{ manifest.created_utc }}</td></tr>
<tr><th>Keras backend, device</th><td>{{ manifest.keras_backend }},
 {{ (manifest.device.accelerators or ["no GPU reported"]) | join(", ") }}
 ({{ manifest.device.processor or manifest.device.machine }})</td></tr>
</table>
<h2>Headline numbers</h2>
{% if headlines %}<table><tr><th>what (split, mode)</th><th>value</th></tr>
{% for label, value in headlines %}<tr><td>{{ label }}</td><td>{{ value }}</td></tr>{% endfor %}</table>
{% else %}<p>No headline numbers were recorded.</p>{% endif %}
<p>All numbers: <a href="metrics.json">metrics.json</a>; provenance: <a href="manifest.json">manifest.json</a>.</p>
<h2>Commands</h2>
<table>
{% if training %}<tr><th>training</th><td>
{%- if training.command %}<code>{{ training.command }}</code>{% else %}{{ training.note }}{% endif %}
 (commit <code>{{ training.git.commit }}</code>
 {%- if training.git.dirty is not false %} <span class="failed">with uncommitted changes</span>{% endif %};
 <a href="training_manifest.json">training_manifest.json</a>,
 <a href="training_history.csv">training_history.csv</a>)</td></tr>{% endif %}
<tr><th>this report</th><td>{% if manifest.command %}<code>{{ manifest.command }}</code>
{%- else %}not recorded (made through the Python API){% endif %}</td></tr>
{% if reproduce_command %}<tr><th>reproduce the training</th><td><code>{{ reproduce_command }}</code><br>re-trains the
 first 2 epochs with the recorded params into a new run folder and compares them with training_history.csv
 (leave out <code>--epochs 2</code> for the whole run)</td></tr>{% endif %}
</table>
<h2>Notebooks</h2>
<table><tr><th>notebook</th><th>status</th><th>seconds</th><th>outputs</th></tr>
{% for run in notebook_runs %}<tr><td>{{ run.source.stem }}</td>
<td class="{{ run.status.replace(' ', '-') }}">{{ run.status }}</td>
<td>{{ "%.1f" | format(run.seconds) if run.seconds is not none else "" }}</td>
<td>{% if run.html %}<a href="{{ run.html.name }}">HTML</a> · <a href="{{ run.executed.name }}">notebook</a>{% endif %}
{% if run.problem %}<br>{{ run.problem }}{% endif %}</td></tr>
{% endfor %}</table>
<h2>Figures</h2>
<div class="figures">{% for figure in figures %}
<figure><a href="figures/{{ figure }}"><img src="figures/{{ figure }}" alt="{{ figure }}"></a>
<figcaption>{{ figure }}</figcaption></figure>
{% else %}<p>No figures were saved.</p>{% endfor %}</div>
</body></html>
""")


def write_index(
    run_dir: Path,
    params: Params,
    notebook_runs: list[NotebookRun],
    metrics: dict[str, Any],
    *,
    data_dir: str | None = None,
) -> Path:
    """Write ``run_dir/index.html``: dataset kind, provenance, headline numbers, notebooks, figures."""
    dataset = (
        metrics.get("data", {}).get("dataset")
        or metrics.get("ablation", {}).get("dataset")
        or ("fer2013" if data_dir or params.data.source == "fer2013" else "synthetic")
    )
    layout = ReportLayout(run_dir)
    manifest = json.loads(layout.manifest.read_text(encoding="utf-8"))
    page = INDEX_TEMPLATE.render(
        params=params,
        dataset=dataset,
        manifest=manifest,
        training=training_commands(run_dir, manifest),
        reproduce_command=reproduce_command(run_dir, manifest),
        headlines=headline_numbers(metrics),
        notebook_runs=notebook_runs,
        figures=[path.name for path in sorted(layout.figures.glob("*.png"))],
    )
    layout.index.write_text(page, encoding="utf-8")
    return layout.index


def training_commands(run_dir: Path, manifest: dict[str, Any]) -> dict[str, Any] | None:
    """What index.html says about the training run: ``{command, note, git}`` from the report's
    ``training_manifest.json``, or None without one."""
    path = ReportLayout(run_dir).training_manifest
    if not path.is_file():
        return None
    training = json.loads(path.read_text(encoding="utf-8"))
    trained_here = not manifest.get("report", {}).get("train_run")
    note = "trained by notebook 02 of this report" if trained_here else "command not recorded"
    return {"command": training.get("command"), "note": note, "git": training.get("git", {})}


def reproduce_command(run_dir: Path, manifest: dict[str, Any]) -> str | None:
    """The ``reproduce`` command for the report in ``run_dir`` (None without a training history)."""
    if not ReportLayout(run_dir).training_history.is_file():
        return None
    command = ["reproduce", portable_path(run_dir), "--epochs", "2"]
    data_dir = manifest.get("report", {}).get("data_dir")
    return portable_command([*command, "--data", data_dir] if data_dir else command)


def _check_inputs(notebooks: list[Path], kernel_name: str) -> None:
    """Raise FerError if there is no notebook, a notebook is missing, or the kernel is not installed."""
    if not notebooks:
        raise FerError(f"{NOTEBOOKS_DIR}: no notebooks to run")
    for notebook in notebooks:
        if not notebook.is_file():
            raise FerError(f"{notebook}: notebook not found")
    try:
        KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        raise FerError(f"Jupyter kernel '{kernel_name}': not installed (run `make` to install it)") from None


def _check_sources(
    params: Params, params_path: Path, data_dir: str | None, model_path: str | None, train_run: str | None
) -> None:
    """Raise a FerError naming the path if the dataset, model or training run a report needs is missing."""
    location = resolve_data_dir(params, override=data_dir, origin=params_path)
    if location is not None and not location.exists():
        raise DataError(f"{location}: not found; expected a FER-2013 image folder or fer2013.csv")
    if model_path and not Path(model_path).expanduser().is_file():
        raise ModelError(f"{model_path}: model file not found")
    if train_run:
        require_finished(Path(train_run).expanduser())


def _first_line(text: str, limit: int) -> str:
    """The first non-blank line of ``text``, cut to ``limit`` characters."""
    lines = text.strip().splitlines()
    return lines[0][:limit] if lines else ""


def _portable(path: str | None) -> str | None:
    """``path`` as the notebooks receive it (they run in the project root): see
    :func:`fer_lib.study.runs.portable_path`."""
    return portable_path(Path(path).expanduser().resolve()) if path else None


@contextlib.contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    """Set environment ``variables`` (inherited by the kernels started meanwhile), then restore them."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
