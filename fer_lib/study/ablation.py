"""Ablation studies: one factor changed at a time from a base recipe, every variant trained and scored alike.

The variants come from a variants file (:mod:`fer_lib.study.variants`: the format,
:func:`~fer_lib.study.variants.load_variants`).

:func:`run_ablation` trains each variant into its own run folder ``<runs_dir>/<variant>-<8 hex
digits>`` (the digits hash the variant's params and the data location): an interrupted ablation
resumes where it stopped, a finished variant is never retrained, and ablations with other
settings never share a folder. It returns one row per variant (columns: :data:`COLUMNS`), scored
on Training and PublicTest only; PrivateTest is never looked at. With ``on_ray`` each variant is
one Ray task (:mod:`fer_lib.study.cluster`, the optional ``scale`` extra) in the same run folder; a variant
that fails is reported and the others finish.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import seaborn as sns
import yaml
from matplotlib.figure import Figure

from fer_lib.classifiers import KerasClassifier
from fer_lib.data import load_dataset
from fer_lib.dataset import FaceDataset
from fer_lib.errors import ClusterError, DataError
from fer_lib.evaluation import evaluate_splits
from fer_lib.faces import analyse_photos, find_photos, given_paths, make_detector
from fer_lib.labels import FACE_SIZE
from fer_lib.model import parameter_counts
from fer_lib.params import TTA_MODES, Params, resolve_data_dir
from fer_lib.paths import PROJECT_ROOT, RunLayout
from fer_lib.photo_check import faces_by_photo, labelled_metrics, labelled_table, photo_labels
from fer_lib.study.runs import describe_device, device_info, is_finished, safe_name, write_metrics
from fer_lib.study.training_run import TrainResult, load_run, train
from fer_lib.study.variants import Ablation, Variant, describe_overrides, publictest_column
from fer_lib.training import train_eval_data, training_data

DEFAULT_RUNS_DIR: Path = PROJECT_ROOT / "runs" / "ablations"
"""Where variant runs go unless told otherwise."""

TIMING_BATCH: int = 64
"""Faces per batch when measuring inference milliseconds per face."""

COLUMNS: dict[str, str] = {
    "variant": "variant name (the first row is the baseline: the base recipe unchanged)",
    "overrides": "what the variant changes in the base recipe (dotted key=value)",
    "publictest_n": "PublicTest faces scored",
    "publictest_accuracy": "PublicTest accuracy, inference mode, no test-time augmentation",
    "publictest_macro_f1": "PublicTest macro-F1, inference mode, no test-time augmentation",
    "publictest_accuracy_tta_flip": "PublicTest accuracy, inference mode, flip test-time augmentation",
    "publictest_macro_f1_tta_flip": "PublicTest macro-F1, inference mode, flip test-time augmentation",
    "publictest_accuracy_tta_tencrop": "PublicTest accuracy, inference mode, ten-crop test-time augmentation",
    "publictest_macro_f1_tta_tencrop": "PublicTest macro-F1, inference mode, ten-crop test-time augmentation",
    "photos_n": "labelled real photos scored: the variant's faces.images (0 when it names none that exist)",
    "photos_accuracy": "labelled photos: the main face's emotion right, a photo without a face counted as wrong "
    "(the variant's faces.detector, inference mode, no test-time augmentation)",
    "photos_macro_f1": "labelled photos: macro-F1 of the main face over the emotions the labels hold, a photo "
    "without a face counted as wrong",
    "training_n": "Training faces scored in inference mode (train.train_eval_subset of the faces fitted)",
    "training_accuracy": "Training accuracy, inference mode, no test-time augmentation",
    "training_fit_time_accuracy": "Training accuracy, fit-time (training mode: batch statistics, dropout, "
    "augmentation, running mean over the epoch), of the kept epoch",
    "kept_epoch": "the epoch whose weights are scored (train.select: last, best PublicTest epoch, or the last of "
    "the epochs averaged)",
    "epochs": "epochs trained",
    "seconds_per_epoch": "training wall time per epoch in seconds (median over epochs; on training_device)",
    "training_seconds": "training wall time of all epochs in seconds (on training_device)",
    "parameters": "parameters of the model (trainable and not)",
    "ms_per_face": f"inference milliseconds per face at batch {TIMING_BATCH}, median of repeats, "
    "without test-time augmentation (flip doubles it, ten-crop multiplies it by 10; on inference_device)",
    "training_device": "Keras backend and device that trained the variant (its run's manifest.json)",
    "inference_device": "Keras backend and device that measured ms_per_face (the machine that scored)",
    "dataset": "synthetic (generated faces) or fer2013",
    "run_dir": "the variant's training run folder",
    "scored_in": "empty when this report trained or scored the variant; else the earlier report's ablation.csv "
    "whose row it reuses (ablate --reuse: same variant name and run-folder hash, its run not here)",
}
"""Columns of :func:`run_ablation`'s table and what each measures (split, mode, unit)."""

DELTA_COLUMNS: dict[str, str] = {
    "publictest_accuracy": "PublicTest accuracy, no TTA",
    "publictest_accuracy_tta_flip": "PublicTest accuracy, flip TTA",
    "publictest_accuracy_tta_tencrop": "PublicTest accuracy, ten-crop TTA",
    "publictest_macro_f1": "PublicTest macro-F1, no TTA",
    "publictest_macro_f1_tta_flip": "PublicTest macro-F1, flip TTA",
    "publictest_macro_f1_tta_tencrop": "PublicTest macro-F1, ten-crop TTA",
    "photos_accuracy": "labelled photos accuracy, main face, no TTA",
    "photos_macro_f1": "labelled photos macro-F1, main face, no TTA",
}
"""Metrics compared with the baseline by :func:`deltas_vs_baseline`, with short labels."""


def variant_run_dir(runs_dir: str | os.PathLike[str], variant: Variant, *, data_dir: str | None = None) -> Path:
    """The run folder of ``variant``: ``<runs_dir>/<variant name>-<hash of params and data location>``.

    The hash covers the parameters that differ from the defaults (:meth:`Params.non_defaults`),
    so runs keep their folders when a new parameter with a default joins the schema.

    Raises:
        ParamsError: if the variant asks for FER-2013 and neither ``data_dir`` nor its params say where.
    """
    location = resolve_data_dir(variant.params, override=data_dir)
    record = yaml.safe_dump(
        {
            "params": variant.params.non_defaults(),
            "data": str(location.expanduser().resolve()) if location else "synthetic",
        },
        sort_keys=True,
    )
    return Path(runs_dir) / f"{safe_name(variant.name)}-{hashlib.sha256(record.encode()).hexdigest()[:8]}"


def pending_variants(
    ablation: Ablation, runs_dir: str | os.PathLike[str] = DEFAULT_RUNS_DIR, *, data_dir: str | None = None
) -> list[Variant]:
    """The variants :func:`run_ablation` would train: distinct ones whose runs have not finished."""
    return [
        variant
        for variant in ablation.distinct()
        if not is_finished(variant_run_dir(runs_dir, variant, data_dir=data_dir))
    ]


def reusable_rows(
    ablation: Ablation,
    tables: list[str | os.PathLike[str]],
    runs_dir: str | os.PathLike[str] = DEFAULT_RUNS_DIR,
    *,
    data_dir: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Rows of earlier reports' ``ablation.csv`` files for the variants whose run folders are not finished here.

    A row is reused when its variant name and its run folder's name (the variant's name and the hash of its
    parameters and data location, :func:`variant_run_dir`) both match: the same recipe, trained on the same
    data. A run finished under ``runs_dir`` wins over any earlier row (it is scored again); of several tables,
    the first that holds a variant wins. The rows get ``scored_in`` = the table's path.

    Raises:
        DataError: naming the file, if a table cannot be read or lacks a column of :data:`COLUMNS`.
    """
    wanted = {  # (variant name, run-folder name) of each variant whose run is not finished here
        (variant.name, variant_run_dir(runs_dir, variant, data_dir=data_dir).name)
        for variant in pending_variants(ablation, runs_dir, data_dir=data_dir)
    }
    rows: dict[str, dict[str, Any]] = {}
    for table_path in tables:
        try:
            table = pd.read_csv(table_path, keep_default_na=False, na_values=[""])
        except (OSError, ValueError) as error:
            raise DataError(f"{table_path}: cannot read an ablation table ({error})") from None
        missing = [column for column in COLUMNS if column not in table.columns and column != "scored_in"]
        if missing:
            raise DataError(f"{table_path}: not an ablation.csv (no column {missing[0]!r})")
        for row in table.to_dict("records"):
            key = (row["variant"], Path(str(row["run_dir"])).name)
            if key in wanted and row["variant"] not in rows:
                rows[row["variant"]] = {**{column: row.get(column) for column in COLUMNS}, "scored_in": str(table_path)}
    return rows


def run_ablation(
    ablation: Ablation,
    *,
    data_dir: str | None = None,
    runs_dir: str | os.PathLike[str] = DEFAULT_RUNS_DIR,
    reuse: dict[str, dict[str, Any]] | None = None,
    train: bool = True,
    verbose: int | str = 2,
    workers: int = 1,
    timing_repeats: int = 5,
    on_ray: bool = False,
    ray_address: str | None = None,
) -> pd.DataFrame:
    """Train every distinct variant (resuming or reusing finished runs) and score each one.

    Args:
        ablation: the variants (see :func:`load_variants`).
        data_dir: FER-2013 folder or csv (the CLI's ``--data``); None: as each variant's params say.
        runs_dir: the folder holding one run folder per variant (see :func:`variant_run_dir`).
        reuse: rows scored earlier, by variant name (:func:`reusable_rows`): those variants are neither
            trained nor scored here; their rows join the table in the file's order.
        train: False: train nothing, score only the variants whose runs are finished (a report of an
            ablation so far); the others are left out and listed in ``table.attrs["not_run"]``.
        verbose: Keras progress output while training (on Ray: in the workers' logs).
        workers: host threads preparing training batches.
        timing_repeats: timed inference batches per variant; their median gives ``ms_per_face``.
        on_ray: train and score each variant as one Ray task (:func:`fer_lib.study.cluster.run_tasks`), all
            at once; a variant that fails is reported and left out of the table, the others finish.
        ray_address: with ``on_ray``, the Ray cluster to join (``HOST:6379``); None: a local Ray.
            On a cluster every machine needs the data and ``runs_dir`` at the same paths.

    Returns:
        One row per distinct variant, baseline first, in the file's order; columns :data:`COLUMNS`.
        ``table.attrs["failed"]`` maps each variant that failed on Ray to its one-line reason;
        ``table.attrs["not_run"]`` lists the variants left out because ``train`` is False.

    Raises:
        DataError: if a variant's dataset has no PublicTest faces (before that variant trains), or,
            with ``train`` False, if the baseline has no finished run and no reused row.
        ClusterError: on Ray, if Ray is missing, the cluster cannot be joined, or the baseline failed
            (after the other variants finished: a re-run reuses them).
    """
    reuse = reuse or {}
    for name, row in reuse.items():
        print(f"{name}: scored earlier, row taken from {row['scored_in']}", flush=True)
    not_run = variants_left_out(ablation, runs_dir, reuse, data_dir=data_dir) if not train else []
    for name in not_run:
        print(f"{name}: no finished run and no reused row; left out (not trained: train is off)", flush=True)
    variants = [variant for variant in ablation.distinct() if variant.name not in reuse and variant.name not in not_run]
    if on_ray:
        rows, failed = run_ablation_on_ray(
            ablation,
            variants,
            data_dir=data_dir,
            runs_dir=runs_dir,
            verbose=verbose,
            workers=workers,
            timing_repeats=timing_repeats,
            address=ray_address,
        )
    else:
        inference_device = this_device()
        rows = {
            variant.name: train_and_score(
                variant,
                data_dir=data_dir,
                runs_dir=runs_dir,
                verbose=verbose,
                workers=workers,
                timing_repeats=timing_repeats,
                inference_device=inference_device,
            )
            for variant in variants
        }
        failed = {}
    rows.update(reuse)
    ordered = [rows[variant.name] for variant in ablation.distinct() if variant.name in rows]
    table = pd.DataFrame(ordered, columns=list(COLUMNS))
    table.attrs["failed"] = failed
    table.attrs["not_run"] = not_run
    return table


def untrained_variants(
    ablation: Ablation,
    runs_dir: str | os.PathLike[str],
    reuse: dict[str, dict[str, Any]],
    *,
    data_dir: str | None = None,
) -> list[Variant]:
    """The distinct variants with neither a finished run under ``runs_dir`` nor a row in ``reuse``: those an
    ablation trains (:func:`pending_variants` less the reused ones)."""
    return [variant for variant in pending_variants(ablation, runs_dir, data_dir=data_dir) if variant.name not in reuse]


def variants_left_out(
    ablation: Ablation,
    runs_dir: str | os.PathLike[str],
    reuse: dict[str, dict[str, Any]],
    *,
    data_dir: str | None = None,
) -> list[str]:
    """Names of the :func:`untrained_variants`, which an ablation without training leaves out.

    Raises:
        DataError: naming ``runs_dir``, if the baseline is one of them (a table without it compares nothing).
    """
    names = [variant.name for variant in untrained_variants(ablation, runs_dir, reuse, data_dir=data_dir)]
    if ablation.baseline.name in names:
        raise DataError(
            f"{runs_dir}: the baseline ({ablation.baseline.name!r}) has no finished run here and no reused row; "
            "train it first (ablate without --no-train)"
        )
    return names


def this_device() -> str:
    """The Keras backend and device of this process, as the table's device columns name them."""
    info = device_info()
    return describe_device(info.pop("keras_backend"), info)


def train_and_score(
    variant: Variant,
    *,
    data_dir: str | None,
    runs_dir: str | os.PathLike[str],
    verbose: int | str,
    workers: int,
    timing_repeats: int,
    inference_device: str | None = None,
) -> dict[str, Any]:
    """Train one variant into its run folder (resumed, or reused when finished) and score it.

    Args:
        inference_device: what :func:`this_device` says where the variant is scored; None: asks it here.

    Returns:
        The variant's row of the table (keys :data:`COLUMNS`).

    Raises:
        DataError: if the variant's dataset has no PublicTest faces (before it trains).
    """
    run_dir = variant_run_dir(runs_dir, variant, data_dir=data_dir)
    dataset = load_dataset(variant.params, data_override=data_dir)
    if len(dataset.split("PublicTest")) == 0:
        raise DataError(f"{dataset.source}: no PublicTest faces; an ablation scores every variant on PublicTest")
    if is_finished(run_dir):
        print(f"{variant.name}: finished earlier in {run_dir}; not retrained", flush=True)
        result = load_run(run_dir)
    else:
        print(f"{variant.name}: training in {run_dir}", flush=True)
        result = train(variant.params, dataset, run_dir, verbose=verbose, workers=workers)
    device = inference_device or this_device()
    return score_variant(variant, result, dataset, device, timing_repeats=timing_repeats)


def train_and_score_task(variant: Variant, options: dict[str, Any]) -> dict[str, Any]:
    """The Ray task of :func:`run_ablation_on_ray`: :func:`train_and_score` with ``options`` as its keywords."""
    return train_and_score(variant, **options)


def run_ablation_on_ray(
    ablation: Ablation,
    variants: list[Variant],
    *,
    data_dir: str | None,
    runs_dir: str | os.PathLike[str],
    verbose: int | str,
    workers: int,
    timing_repeats: int,
    address: str | None,
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """:func:`run_ablation`'s work on Ray: one task per variant of ``variants`` (see its arguments).

    Each task reserves one CPU; ``ms_per_face`` is measured on the task's machine while other
    variants may be training there, so compare it across variants with care.

    Returns:
        The rows of the variants that finished, by name, and the one-line reason of each that failed.
    """
    from fer_lib.study.cluster import TaskFailure, ray_session, run_tasks

    options = {  # absolute paths, environment variables expanded here: workers may run elsewhere
        "data_dir": str(Path(os.path.expandvars(data_dir)).expanduser().resolve()) if data_dir else None,
        "runs_dir": str(Path(runs_dir).expanduser().resolve()),
        "verbose": verbose,
        "workers": workers,
        "timing_repeats": timing_repeats,
    }
    rows: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    with ray_session(address, what="ablate --ray"):
        print(f"{len(variants)} variants as Ray tasks (each trains or reuses its run, then is scored)", flush=True)
        for index, result in run_tasks(train_and_score_task, variants, options):
            name = variants[index].name
            if isinstance(result, TaskFailure):
                failed[name] = result.message
                print(f"{name}: failed: {result.message}", flush=True)
            else:
                rows[name] = result
                print(f"{name}: finished in {result['run_dir']}", flush=True)
    baseline = ablation.baseline.name
    if baseline in failed:
        raise ClusterError(
            f"{ablation.source}: the baseline '{baseline}' failed on Ray ({failed[baseline]}); "
            f"{len(rows)} other variant(s) finished and are reused when the ablation is run again"
        )
    return rows, failed


def score_variant(
    variant: Variant, result: TrainResult, dataset: FaceDataset, inference_device: str, *, timing_repeats: int = 5
) -> dict[str, Any]:
    """One row of the ablation table (keys :data:`COLUMNS`) for a trained variant, in inference mode."""
    publictest = {
        tta: evaluate_splits(result.model, dataset, tta=tta, splits=["PublicTest"])["PublicTest"] for tta in TTA_MODES
    }
    params = variant.params
    fitted = training_data(dataset, subset=params.data.train_subset, seed=params.seed)
    training_faces = train_eval_data(fitted, subset=params.train.train_eval_subset, seed=params.seed)
    training = evaluate_splits(result.model, training_faces, splits=["Training"])["Training"]
    kept = result.history.loc[result.history["epoch"] == result.kept_epoch].iloc[0]
    manifest = json.loads(RunLayout(result.run_dir).manifest.read_text(encoding="utf-8"))
    return {
        "variant": variant.name,
        "overrides": describe_overrides(variant.overrides),
        "publictest_n": publictest["none"]["n"],
        **{
            publictest_column(metric, tta): publictest[tta][metric]
            for tta in TTA_MODES
            for metric in ("accuracy", "macro_f1")
        },
        **photo_scores(variant.params, result.model),
        "training_n": training["n"],
        "training_accuracy": training["accuracy"],
        "training_fit_time_accuracy": float(kept["fit_accuracy"]),
        "kept_epoch": result.kept_epoch,
        "epochs": len(result.history),
        "seconds_per_epoch": float(result.history["seconds"].median()),
        "training_seconds": float(result.history["seconds"].sum()),
        **inference_cost(result.model, repeats=timing_repeats),
        "training_device": describe_device(manifest["keras_backend"], manifest["device"]),
        "inference_device": inference_device,
        "dataset": "synthetic" if dataset.synthetic else "fer2013",
        "run_dir": str(result.run_dir),
        "scored_in": "",
    }


def photo_scores(params: Params, model: keras.Model) -> dict[str, float | int]:
    """``model`` on the labelled photos of ``params.faces.images``: ``photos_n``, and the main face's
    ``photos_accuracy`` and ``photos_macro_f1`` with a photo without a face counted as wrong (NaN without
    labelled photos). The detector is the variant's ``faces`` settings, as notebook 4 runs it."""
    paths = given_paths(params.faces.images, params.faces, "images")
    labels = photo_labels(find_photos(paths)) if paths else {}
    if not labels:
        return {"photos_n": 0, "photos_accuracy": float("nan"), "photos_macro_f1": float("nan")}
    found = analyse_photos(
        sorted(labels),
        make_detector(params.faces),
        KerasClassifier(model),
        margin=params.faces.margin,
        largest_only=True,
        on_error=lambda error: None,  # an unreadable photo counts as one without a face
    )
    metrics = labelled_metrics(labelled_table(faces_by_photo(found), labels))
    return {
        "photos_n": metrics["photos"],
        "photos_accuracy": metrics["accuracy_all"],
        "photos_macro_f1": metrics["macro_f1_all"],
    }


def inference_cost(model: keras.Model, *, batch_size: int = TIMING_BATCH, repeats: int = 5) -> dict[str, Any]:
    """Parameter count and inference milliseconds per face, measured on this machine.

    Times ``repeats`` calls of :meth:`fer_lib.classifiers.KerasClassifier.predict_proba` (the path
    every evaluation takes) on ``batch_size`` random faces after one warm-up call (which compiles).

    Returns:
        ``{"parameters": int, "ms_per_face": median call time in ms / batch_size}``.
    """
    faces = np.random.default_rng(0).integers(0, 256, (batch_size, FACE_SIZE, FACE_SIZE), dtype=np.uint8)
    classifier = KerasClassifier(model)
    classifier.predict_proba(faces, batch_size=batch_size)
    durations = []
    for _ in range(repeats):
        start = time.perf_counter()
        classifier.predict_proba(faces, batch_size=batch_size)
        durations.append(time.perf_counter() - start)
    return {
        "parameters": parameter_counts(model)["total"],
        "ms_per_face": 1000 * float(np.median(durations)) / batch_size,
    }


def deltas_vs_baseline(table: pd.DataFrame) -> pd.DataFrame:
    """Each variant minus the baseline (first row), in percentage points.

    Returns:
        Indexed by variant (table order, baseline included with zeros); one column per
        :data:`DELTA_COLUMNS` label.
    """
    metrics = table.set_index("variant")[list(DELTA_COLUMNS)]
    return (100 * (metrics - metrics.iloc[0])).rename(columns=DELTA_COLUMNS)


def accuracy_deltas(table: pd.DataFrame) -> pd.DataFrame:
    """PublicTest accuracy of each variant but the baseline minus the baseline's, in percentage
    points, without and with each test-time augmentation (what :func:`plot_ablation_deltas` draws)."""
    deltas = deltas_vs_baseline(table).iloc[1:]
    return deltas[[label for column, label in DELTA_COLUMNS.items() if column.startswith("publictest_accuracy")]]


def seed_repeats(ablation: Ablation) -> list[str]:
    """The variants that change only ``seed``: the baseline trained again, so their difference from
    the baseline is run-to-run noise (data order, initialisation of the head, augmentation draws)."""
    return [variant.name for variant in ablation.distinct()[1:] if set(variant.overrides) == {"seed"}]


def seed_noise(table: pd.DataFrame, ablation: Ablation) -> pd.Series | None:
    """How far the baseline's seed repeats (:func:`seed_repeats`) land from it: the largest absolute
    difference per metric, in percentage points, indexed by the :data:`DELTA_COLUMNS` labels.

    A variant whose difference from the baseline is no larger than this is not distinguished from
    training the baseline again. None when the ablation has no seed repeat.
    """
    scored = set(table["variant"])
    repeats = [name for name in seed_repeats(ablation) if name in scored]
    if not repeats:
        return None
    return deltas_vs_baseline(table).loc[repeats].abs().max().rename("seed noise (pp)")


def compare_to_baseline(table: pd.DataFrame, *, noise: pd.Series | None = None) -> pd.DataFrame:
    """The table for reading: accuracies in %, deltas vs the baseline in percentage points, costs;
    sorted by PublicTest accuracy (no test-time augmentation), best first.

    With ``noise`` (:func:`seed_noise`), a column ``|Δ| > seed noise`` says whether each variant's
    PublicTest accuracy (no TTA) differs from the baseline's by more than the seed repeats do.
    """
    deltas = deltas_vs_baseline(table)
    shown = table.set_index("variant")
    accuracy_delta = deltas[DELTA_COLUMNS["publictest_accuracy"]]
    beyond_noise = {}
    if noise is not None:
        beyond_noise["|Δ| > seed noise"] = accuracy_delta.abs() > noise[DELTA_COLUMNS["publictest_accuracy"]]
    readable = pd.DataFrame(
        {
            "overrides": shown["overrides"],
            "PublicTest acc. %": 100 * shown["publictest_accuracy"],
            "Δ pp": accuracy_delta,
            **beyond_noise,
            "PublicTest acc. % (flip TTA)": 100 * shown["publictest_accuracy_tta_flip"],
            "Δ pp (flip TTA)": deltas[DELTA_COLUMNS["publictest_accuracy_tta_flip"]],
            "PublicTest acc. % (ten-crop TTA)": 100 * shown["publictest_accuracy_tta_tencrop"],
            "Δ pp (ten-crop TTA)": deltas[DELTA_COLUMNS["publictest_accuracy_tta_tencrop"]],
            "PublicTest macro-F1 %": 100 * shown["publictest_macro_f1"],
            "Δ pp (macro-F1)": deltas[DELTA_COLUMNS["publictest_macro_f1"]],
            "Training acc. % (inference mode)": 100 * shown["training_accuracy"],
            "Training acc. % (fit-time, training mode)": 100 * shown["training_fit_time_accuracy"],
            "kept epoch": shown["kept_epoch"],
            "s / epoch": shown["seconds_per_epoch"],
            "ms / face": shown["ms_per_face"],
            "parameters": shown["parameters"],
        }
    )
    return readable.sort_values("PublicTest acc. %", ascending=False, kind="stable")


def save_table(table: pd.DataFrame, ablation: Ablation, output_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``output_dir/ablation.csv`` and ``output_dir/metrics/ablation.json``; return both paths.

    The JSON (merged into a report's ``metrics.json`` under ``ablation``) holds the base file, the
    variants source and description, the common overrides, the column descriptions, one record
    per row, the variants not trained because they equal another, those that failed on Ray
    (``table.attrs["failed"]``: variant -> reason) and those left out untrained (``table.attrs["not_run"]``).
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    csv_path = output_dir / "ablation.csv"
    table.to_csv(csv_path, index=False)
    json_path = write_metrics(
        output_dir,
        "ablation",
        {
            "base": str(ablation.base_path),
            "variants_file": ablation.source,
            "description": ablation.description,
            "overrides": ablation.overrides,
            "mode": "inference",
            "split": "PublicTest",
            "dataset": table["dataset"].iloc[0] if len(table) else None,
            "columns": COLUMNS,
            "variants": table.to_dict(orient="records"),
            "not_trained": {variant.name: variant.same_as for variant in ablation.variants if variant.same_as},
            "failed": table.attrs.get("failed", {}),
            "not_run": table.attrs.get("not_run", []),
        },
    )
    return csv_path, json_path


def plot_ablation_deltas(deltas: pd.DataFrame, *, noise: float | None = None) -> Figure:
    """Horizontal bars: how much each variant changes a metric compared with the baseline.

    Args:
        deltas: one row per variant (index: variant names, baseline left out), one column per
            bar colour (e.g. PublicTest accuracy without and with test-time augmentation), values
            in percentage points (positive: better than the baseline).
        noise: the seed-to-seed noise in percentage points (:func:`seed_noise`),
            drawn as a grey band from -noise to +noise: bars inside it are not told apart from
            training the baseline again.
    """
    long = deltas.rename_axis("variant").reset_index().melt(id_vars="variant", var_name="metric", value_name="delta")
    figure = Figure(figsize=(9, 1.5 + 0.3 * max(len(deltas), 1) * max(len(deltas.columns), 1)), layout="constrained")
    axes = figure.subplots()
    if len(long):
        sns.barplot(long, y="variant", x="delta", hue="metric", orient="h", ax=axes)
        for bars in axes.containers:
            axes.bar_label(bars, fmt="%+.1f", fontsize=7, padding=2)
    axes.axvline(0, color="black", linewidth=0.8)
    if noise is not None:
        axes.axvspan(-noise, noise, color="grey", alpha=0.2, zorder=0, label=f"seed-to-seed noise (±{noise:.1f} pp)")
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=2)  # below the axes, never over bars
    axes.margins(x=0.12)  # room for the bar labels
    axes.set(
        xlabel="difference from the baseline (percentage points)",
        ylabel="",
        title="One factor changed at a time: PublicTest, inference mode",
    )
    return figure


def plot_accuracy_vs_cost(table: pd.DataFrame) -> Figure:
    """Scatter of PublicTest accuracy against inference cost, one labelled point per variant.

    Args:
        table: one row per variant, the first the baseline (drawn in orange), with columns
            ``variant``, ``ms_per_face`` (milliseconds), ``publictest_accuracy`` (0-1, inference
            mode) and ``inference_device`` (named in the axis label).
    """
    figure = Figure(figsize=(8, 5), layout="constrained")
    axes = figure.subplots()
    colours = ["tab:orange"] + ["tab:blue"] * (len(table) - 1)
    axes.scatter(table["ms_per_face"], 100 * table["publictest_accuracy"], c=colours[: len(table)], zorder=2)
    for _, row in table.iterrows():
        axes.annotate(
            row["variant"],
            (row["ms_per_face"], 100 * row["publictest_accuracy"]),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=8,
        )
    device = table["inference_device"].iloc[0] if len(table) else "this machine"
    axes.set(
        xlabel=f"inference milliseconds per face (batch 64; {device})",
        ylabel="PublicTest accuracy, inference mode (%)",
        title="Accuracy against inference cost (orange: the baseline)",
    )
    axes.grid(alpha=0.3)
    return figure
