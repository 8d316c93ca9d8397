"""Many clips and photos at once: one Ray task per file, the ``video`` and ``predict`` code paths, a summary.

:func:`run_batch` finds every clip (:data:`fer_lib.video.VIDEO_SUFFIXES`) and photo
(:data:`PHOTO_SUFFIXES`) under a folder and analyses each in its own Ray task
(:func:`fer_lib.study.cluster.run_tasks`, on a local Ray or a cluster): a clip with
:func:`fer_lib.video.process_video` exactly as ``python -m fer_lib video`` runs it (the same
TFLite classifier, detector and settings, so the same rows), a photo with
:func:`fer_lib.faces.analyse_photos` as ``predict`` does (on that TFLite classifier). Workers read
the inputs by path (on a cluster: a folder every machine sees at the same path) and send the
tables back; this process writes them. The output folder::

    batch.json                 the settings; a re-run with other settings is refused
    <input path>.json          per input (its path under the input folder, suffix kept: a/clip.mp4.json):
                               its summary row
    <input path>.csv           a clip's per-frame table (:data:`fer_lib.video.FRAME_COLUMNS`) or a
                               photo's per-face table (:func:`fer_lib.faces.photos_table`)
    summary.csv, summary.png   one row and one bar per input (:data:`SUMMARY_COLUMNS`); a later run
                               writes summary-1.csv and summary-1.png, and so on

An input's JSON and then its CSV are written atomically (a temporary file renamed) as soon as its
task returns, so an interrupted batch keeps every finished file. A re-run skips the inputs whose
CSV exists (never rewriting it) and retries those that failed. A file that cannot be read
becomes a summary row with its one-line reason; the other files go on.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from fer_lib.classifiers import EmotionClassifier
from fer_lib.errors import MediaError, RunExistsError
from fer_lib.faces import FaceDetector, analyse_photos, find_files, make_detector, photos_table
from fer_lib.labels import EMOTIONS, NUM_CLASSES
from fer_lib.params import FacesParams
from fer_lib.paths import SHIPPED_MODEL
from fer_lib.plots import FIGURE_DPI
from fer_lib.study.cluster import TaskFailure, import_ray, ray_session, run_tasks
from fer_lib.study.export import load_fast_classifier
from fer_lib.study.runs import file_sha256, write_atomically
from fer_lib.video import VIDEO_SUFFIXES, process_video

PHOTO_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
"""File endings taken as photos (clips: :data:`fer_lib.video.VIDEO_SUFFIXES`); other files are ignored."""

SETTINGS_FILE: str = "batch.json"
"""The output folder's record of the settings its results were made with."""

SUMMARY_COLUMNS: dict[str, str] = {
    "file": "the input, relative to the input folder",
    "kind": "video or photo",
    "status": "done (by this run), done earlier (an earlier run's result, not redone) or failed",
    "error": "why the file failed, one line (empty otherwise)",
    "frames": "frames analysed (1 for a photo)",
    "frames_with_face": "frames where a face was found",
    "dominant_emotion": "the main face's most frequent label over the frames with a face (a photo: its largest face)",
    **{
        f"share_{emotion}": f"share of the frames with a face whose main face is labelled {emotion} (0-1)"
        for emotion in EMOTIONS
    },
    "achieved_fps": "frames analysed per second of the worker's wall time (decoding included)",
    "seconds": "the worker's wall time for the file, in seconds",
    "csv": "the file's per-frame (clip) or per-face (photo) table, relative to the output folder",
}
"""Columns of the batch summary and what each holds."""


@dataclass(frozen=True)
class BatchSettings:
    """How every input is analysed: the ``video`` command's options (sent to every task).

    Attributes:
        model: absolute path of the .keras or .tflite classifier; None: the shipped model.
        threads: TFLite interpreter threads per task.
        detector: ``blazeface``, ``haar`` or ``yunet`` (:class:`fer_lib.params.FacesParams`).
        detector_model: YuNet .onnx file for ``yunet``.
        detect_every: clips: detect on every N-th frame, reusing the boxes in between.
        detect_width: clips: detect on frames shrunk to this width in pixels (None: full size).
        smoothing: clips: weight of the previous frame in the moving average of probabilities.
        margin: crop margin as a fraction of the box side.
        align: BlazeFace: align each face on its eyes instead of cropping its box (``faces.align``).
    """

    model: str | None = None
    threads: int = 1
    detector: str = FacesParams().detector
    detector_model: str | None = None
    detect_every: int = 1
    detect_width: int | None = None
    smoothing: float = FacesParams().smoothing
    margin: float = FacesParams().margin
    align: bool = FacesParams().align

    def faces_params(self) -> FacesParams:
        """The detector's params (everything else at its default, as the commands do)."""
        return FacesParams(detector=self.detector, detector_model=self.detector_model, align=self.align)

    def record(self) -> dict[str, Any]:
        """The settings as ``batch.json`` holds them, with the classifier file's SHA-256."""
        return {**asdict(self), "model_sha256": file_sha256(self.model or SHIPPED_MODEL)}


@dataclass(frozen=True)
class FileResult:
    """What a task sends back for one input: its table (written as its CSV) and its summary numbers."""

    table: pd.DataFrame
    summary: dict[str, Any]


@dataclass(frozen=True)
class BatchResult:
    """A finished :func:`run_batch`: the summary (:data:`SUMMARY_COLUMNS`, one row per input, in
    path order), where it was written, and the files under the input folder that were not inputs."""

    summary: pd.DataFrame
    summary_csv: Path
    summary_figure: Path
    ignored: list[Path]


def input_kind(path: Path) -> str | None:
    """``"video"`` or ``"photo"`` by the file's ending, None for any other file."""
    suffix = path.suffix.lower()
    return "video" if suffix in VIDEO_SUFFIXES else "photo" if suffix in PHOTO_SUFFIXES else None


def find_inputs(in_dir: Path) -> tuple[list[Path], list[Path]]:
    """The clips and photos under ``in_dir`` (recursive, sorted, hidden files left out) and the other files."""
    files = list(find_files([in_dir]))
    return [path for path in files if input_kind(path)], [path for path in files if not input_kind(path)]


@functools.cache
def worker_tools(settings: BatchSettings, *, for_video: bool) -> tuple[FaceDetector, EmotionClassifier]:
    """The detector and classifier, loaded once per worker process: for clips as the ``video``
    command makes them (``detect_width`` applies), for photos as ``predict`` does."""
    detect_width = settings.detect_width if for_video else None
    return (
        make_detector(settings.faces_params(), detect_width=detect_width),
        load_fast_classifier(settings.model, num_threads=settings.threads),
    )


def analyse_input(path: str, settings: BatchSettings) -> FileResult:
    """The Ray task: analyse one clip or photo (see the module docstring).

    Returns:
        The table (a clip: one row per frame; a photo: one per face, or one with ``face`` 0 if it has
        none) and its summary numbers (:data:`SUMMARY_COLUMNS` from ``frames`` to ``seconds``).

    Raises:
        MediaError: naming the file, if it is missing, unreadable or has no decodable frame.
    """
    is_video = input_kind(Path(path)) == "video"
    detector, classifier = worker_tools(settings, for_video=is_video)
    if is_video:
        frames = process_video(
            path,
            detector,
            classifier,
            smoothing=settings.smoothing,
            detect_every=settings.detect_every,
            margin=settings.margin,
            progress=False,
        )
        labels = frames.loc[frames["n_faces"] > 0, "label"]
        return FileResult(frames, file_summary(len(frames), labels, float(frames.attrs["seconds"])))
    start = time.perf_counter()
    [photo] = analyse_photos([path], detector, classifier, margin=settings.margin)
    seconds = time.perf_counter() - start
    areas = [face.box[2] * face.box[3] for face in photo.faces]
    labels = pd.Series([photo.faces[int(np.argmax(areas))].label] if areas else [], dtype=object)
    return FileResult(photos_table([photo]), file_summary(1, labels, seconds))


def file_summary(frames: int, labels: pd.Series, seconds: float) -> dict[str, Any]:
    """Summary numbers of one input from its frame count, the main face's label on each frame with a
    face, and the wall time in seconds."""
    shares = labels.value_counts(normalize=True)
    return {
        "frames": frames,
        "frames_with_face": int(len(labels)),
        "dominant_emotion": str(labels.mode().iloc[0]) if len(labels) else "",
        **{f"share_{emotion}": float(shares.get(emotion, 0.0)) for emotion in EMOTIONS},
        "achieved_fps": frames / seconds if seconds > 0 else float("nan"),
        "seconds": seconds,
    }


def result_paths(out_dir: Path, relative: Path) -> tuple[Path, Path]:
    """The (CSV, JSON) result files of the input at ``relative`` under the input folder."""
    return out_dir / f"{relative}.csv", out_dir / f"{relative}.json"


def check_settings(out_dir: Path, settings: BatchSettings) -> None:
    """Record the settings in ``out_dir/batch.json``, or check they are those recorded there.

    Raises:
        RunExistsError: if the folder holds results made with other settings (another model,
            detector, ...), which a re-run must not mix with its own.
    """
    record, path = settings.record(), out_dir / SETTINGS_FILE
    if not path.is_file():
        write_atomically(path, json.dumps(record, indent=2))
        return
    earlier = json.loads(path.read_text(encoding="utf-8"))
    differ = [key for key in record if key != "model" and earlier.get(key) != record[key]]
    if differ:
        raise RunExistsError(
            f"{path}: this folder holds results made with other settings ({', '.join(differ)} differ); "
            "write to another --out folder"
        )


def summary_paths(out_dir: Path) -> tuple[Path, Path]:
    """The first unused pair ``summary.csv``/``summary.png``, ``summary-1.csv``/``summary-1.png``, ..."""
    number = 0
    while True:
        stem = "summary" if number == 0 else f"summary-{number}"
        csv_path, png_path = out_dir / f"{stem}.csv", out_dir / f"{stem}.png"
        if not csv_path.exists() and not png_path.exists():
            return csv_path, png_path
        number += 1


def earlier_row(relative: Path, out_dir: Path) -> dict[str, Any]:
    """The summary row of an input finished by an earlier run (its CSV exists)."""
    csv_path, json_path = result_paths(out_dir, relative)
    row = {"file": str(relative), "kind": input_kind(relative), "csv": str(csv_path.relative_to(out_dir))}
    if not json_path.is_file():
        reason = f"{json_path}: missing beside the finished {csv_path.name}, which is not redone (delete it to redo)"
        return {**row, "status": "failed", "error": reason}
    return {**row, **json.loads(json_path.read_text(encoding="utf-8")), "status": "done earlier", "error": ""}


def save_result(relative: Path, out_dir: Path, result: FileResult | TaskFailure) -> dict[str, Any]:
    """Write a returned task's JSON then CSV (atomically); return its summary row (a failure's too)."""
    row = {"file": str(relative), "kind": input_kind(relative)}
    if isinstance(result, TaskFailure):
        return {**row, "status": "failed", "error": result.message, "csv": ""}
    csv_path, json_path = result_paths(out_dir, relative)
    write_atomically(json_path, json.dumps(result.summary, indent=2))
    write_atomically(csv_path, result.table.to_csv(index=False))
    return {**row, **result.summary, "status": "done", "error": "", "csv": str(csv_path.relative_to(out_dir))}


def run_batch(
    in_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    settings: BatchSettings,
    address: str | None = None,
    workers: int | None = None,
    on_file: Callable[[dict[str, Any]], None] | None = None,
) -> BatchResult:
    """Analyse every clip and photo under ``in_dir`` as one Ray task each; write results and a summary.

    Args:
        in_dir: the folder searched (recursively) for clips and photos.
        out_dir: the output folder (see the module docstring), created if needed; outside ``in_dir``.
        settings: how every input is analysed.
        address: a Ray cluster to join (``HOST:6379``); None starts a local Ray on this machine.
        workers: files analysed at a time (and the local Ray's CPUs); None: one per CPU.
        on_file: called with each input's summary row as it is known (earlier results first).

    Returns:
        The summary and where it was written.

    Raises:
        MediaError: if ``in_dir`` is not a folder, holds no clip or photo, or contains ``out_dir``.
        RunExistsError: if ``out_dir`` holds results made with other settings.
        ModelError: if the classifier cannot be loaded (checked here, before Ray starts).
        ClusterError: if Ray is not installed or the cluster cannot be joined.
    """
    in_dir, out_dir = Path(in_dir).expanduser().resolve(), Path(out_dir).expanduser().resolve()
    if not in_dir.is_dir():
        raise MediaError(f"{in_dir}: not a folder (batch takes a folder of clips and photos)")
    if out_dir == in_dir or in_dir in out_dir.parents:
        raise MediaError(f"{out_dir}: inside the input folder {in_dir}; write the results outside it")
    inputs, ignored = find_inputs(in_dir)
    if not inputs:
        endings = " ".join(sorted(VIDEO_SUFFIXES | PHOTO_SUFFIXES))
        raise MediaError(f"{in_dir}: no clip or photo in this folder (file endings taken: {endings})")
    make_detector(settings.faces_params(), detect_width=settings.detect_width)  # bad settings fail here, once
    load_fast_classifier(settings.model, num_threads=settings.threads)  # ... and a .keras model is converted once
    import_ray("batch")  # before anything is written
    out_dir.mkdir(parents=True, exist_ok=True)
    check_settings(out_dir, settings)
    report = on_file or (lambda row: None)
    rows: dict[Path, dict[str, Any]] = {}
    todo = []
    for path in inputs:
        relative = path.relative_to(in_dir)
        if result_paths(out_dir, relative)[0].is_file():
            rows[path] = earlier_row(relative, out_dir)
            report(rows[path])
        else:
            todo.append(path)
    if todo:
        with ray_session(address, workers=workers, what="batch"):
            for index, result in run_tasks(
                analyse_input, [str(path) for path in todo], settings, max_in_flight=workers
            ):
                rows[todo[index]] = save_result(todo[index].relative_to(in_dir), out_dir, result)
                report(rows[todo[index]])
    summary = pd.DataFrame([rows[path] for path in inputs], columns=list(SUMMARY_COLUMNS)).astype(
        {"frames": "Int64", "frames_with_face": "Int64"}
    )
    csv_path, png_path = summary_paths(out_dir)
    write_atomically(csv_path, summary.to_csv(index=False))
    plot_batch_summary(summary).savefig(png_path, dpi=FIGURE_DPI, bbox_inches="tight")
    return BatchResult(summary, csv_path, png_path, ignored)


def plot_batch_summary(summary: pd.DataFrame) -> Figure:
    """Stacked horizontal bars, one per input of a batch: the shares of the main face's labels over
    the frames with a face; the frames found and the achieved FPS under each name, or why the file failed.

    Args:
        summary: one row per input with ``file``, ``status``, ``error``, ``frames``,
            ``frames_with_face``, ``achieved_fps`` (frames per second) and ``share_<emotion>``
            (0-1) for each of :data:`EMOTIONS` (:data:`fer_lib.study.batch.SUMMARY_COLUMNS`).
    """
    figure = Figure(figsize=(10, 1.6 + 0.5 * max(len(summary), 1)), layout="constrained")
    axes = figure.subplots()
    palette = sns.color_palette("tab10", NUM_CLASSES)
    rows = np.arange(len(summary))
    left = np.zeros(len(summary))
    for colour, emotion in zip(palette, EMOTIONS, strict=True):
        shares = pd.to_numeric(summary[f"share_{emotion}"], errors="coerce").fillna(0.0).to_numpy(float)
        axes.barh(rows, shares, left=left, color=colour, label=emotion)
        left += shares
    names = []
    for row, (_, entry) in zip(rows, summary.iterrows(), strict=True):
        if entry["status"] == "failed":
            names.append(f"{entry['file']}\nfailed")
            axes.text(0.01, row, str(entry["error"])[:110], va="center", fontsize=7, color="tab:red")
        else:
            names.append(
                f"{entry['file']}\n{entry['frames_with_face']}/{entry['frames']} with a face, "
                f"{entry['achieved_fps']:.0f} FPS"
            )
    axes.set(yticks=rows, xlim=(0, 1), xlabel="share of the frames with a face (the main face's label)")
    axes.set_yticklabels(names, fontsize=8)
    axes.invert_yaxis()
    axes.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=NUM_CLASSES, frameon=False, fontsize=8)
    figure.suptitle("Batch: the emotions of each file")
    return figure
