"""Every figure of the study, one function each (matplotlib + seaborn); notebook 4 draws its saliency overlay itself.

Each ``plot_*`` function returns a :class:`matplotlib.figure.Figure` made without pyplot, so
nothing is shown or kept alive behind the caller's back. A notebook (after ``%matplotlib
inline``) displays a figure by ending a cell with it or with ``display(figure)``, exactly once;
:func:`save_figure` writes it to ``<output_dir>/figures/<name>.png``.
Classes always appear in the canonical order of :data:`fer_lib.labels.EMOTIONS`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from fer_lib.dataset import FaceDataset
from fer_lib.labels import EMOTIONS, NUM_CLASSES, SPLITS
from fer_lib.paths import ReportLayout

FIGURE_DPI: int = 110
"""Resolution of saved PNG figures, in dots per inch."""

TRAINING_CURVES: tuple[tuple[str, str, str], ...] = (
    ("fit", "Training, fit-time (training mode)", ":"),
    ("train", "Training, inference mode", "-"),
    ("val", "PublicTest, inference mode", "-"),
)
"""History column prefix, legend label and line style of each training curve."""


def save_figure(figure: Figure, output_dir: str | Path, name: str) -> Path:
    """Save ``figure`` as ``output_dir/figures/<name>.png`` (110 dpi) and return the path.

    The figure is left open, so a notebook can still display it.

    Raises:
        ValueError: if ``name`` is not a plain file stem (letters, digits, ``_``, ``-``, ``.``).
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ValueError(f"figure name {name!r} must be a plain file stem")
    figures_dir = ReportLayout(Path(output_dir)).figures
    figures_dir.mkdir(parents=True, exist_ok=True)
    path = figures_dir / f"{name}.png"
    figure.savefig(path, dpi=FIGURE_DPI, bbox_inches="tight")
    return path


def plot_class_distribution(counts_by_split: dict[str, dict[str, int]]) -> Figure:
    """Grouped bars of faces per emotion, one colour per split (paper A's Table 3 as a chart).

    Args:
        counts_by_split: ``{split: {emotion: number of faces}}``; missing emotions count 0.
    """
    table = pd.DataFrame(
        [(split, emotion, counts.get(emotion, 0)) for split, counts in counts_by_split.items() for emotion in EMOTIONS],
        columns=["split", "emotion", "faces"],
    )
    splits = [split for split in SPLITS if split in counts_by_split]  # canonical order, unknown splits last
    splits += [split for split in counts_by_split if split not in SPLITS]
    figure = Figure(figsize=(9, 4), layout="constrained")
    axes = figure.subplots()
    sns.barplot(
        table,
        x="emotion",
        y="faces",
        hue="split",
        order=list(EMOTIONS),
        hue_order=splits,
        ax=axes,
    )
    for bars in axes.containers:
        axes.bar_label(bars, fontsize=7)
    axes.set(xlabel="emotion", ylabel="number of faces", title="Faces per emotion and split")
    return figure


def plot_sample_grid(dataset: FaceDataset, *, per_class: int = 6, seed: int = 0) -> Figure:
    """A grid of random faces: one row per emotion, ``per_class`` columns (paper A's Fig. 1).

    Faces are drawn from all splits with ``numpy.random.default_rng(seed)``; a class with fewer
    faces leaves its remaining cells empty. The title says SYNTHETIC for the generated dataset.
    """
    rng = np.random.default_rng(seed)
    figure = Figure(figsize=(1.2 * per_class, 1.25 * NUM_CLASSES), layout="constrained")
    axes = figure.subplots(NUM_CLASSES, per_class, squeeze=False)
    for label, emotion in enumerate(EMOTIONS):
        indices = np.flatnonzero(dataset.labels == label)
        chosen = rng.choice(indices, size=min(per_class, len(indices)), replace=False)
        for column, ax in enumerate(axes[label]):
            ax.set(xticks=[], yticks=[])
            if column < len(chosen):
                ax.imshow(dataset.faces[chosen[column]], cmap="gray", vmin=0, vmax=255)
            else:
                ax.set_axis_off()
        axes[label, 0].set_axis_on()
        axes[label, 0].set_ylabel(emotion)
    figure.suptitle(_dataset_title(dataset, "sample faces per emotion"))
    return figure


def plot_pixel_statistics(dataset: FaceDataset) -> Figure:
    """Top: histogram of each face's mean intensity (0-255) per split. Bottom: mean face per emotion."""
    figure = Figure(figsize=(12, 5.5), layout="constrained")
    grid = figure.add_gridspec(2, NUM_CLASSES, height_ratios=[2, 1])
    histogram_axes = figure.add_subplot(grid[0, :])
    brightness = pd.DataFrame({"mean intensity": dataset.faces.mean(axis=(1, 2)), "split": dataset.usage})
    sns.histplot(
        brightness,
        x="mean intensity",
        hue="split",
        hue_order=dataset.splits,
        stat="density",
        common_norm=False,
        element="step",
        bins=40,
        ax=histogram_axes,
    )
    histogram_axes.set(xlabel="mean pixel intensity of a face (0-255)", title="Brightness of faces per split (density)")
    for label, emotion in enumerate(EMOTIONS):
        ax = figure.add_subplot(grid[1, label])
        members = dataset.faces[dataset.labels == label]
        if len(members):
            ax.imshow(members.mean(axis=0), cmap="gray", vmin=0, vmax=255)
        ax.set(xticks=[], yticks=[], title=f"{emotion}\n(n={len(members)})")
    figure.suptitle(_dataset_title(dataset, "pixel statistics; bottom row: mean face per emotion"))
    return figure


def plot_training_curves(history: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Accuracy (left) and loss (right) per epoch (paper A's Fig. 4 a/b), drawn three ways.

    Args:
        history: one row per epoch with an ``epoch`` column (else rows count from 1) and any of
            ``fit_accuracy``/``fit_loss`` (fit-time, training mode), ``train_accuracy``/
            ``train_loss`` (inference mode on Training) and ``val_accuracy``/``val_loss``
            (inference mode on PublicTest). Missing columns are skipped.
        title: a title over both panels, e.g. naming the recipe and its input size.
    """
    epochs = history["epoch"] if "epoch" in history else pd.Series(np.arange(1, len(history) + 1))
    figure = Figure(figsize=(11, 5), layout="constrained")
    accuracy_axes, loss_axes = figure.subplots(1, 2)
    for ax, metric in ((accuracy_axes, "accuracy"), (loss_axes, "loss")):
        for prefix, label, style in TRAINING_CURVES:
            column = f"{prefix}_{metric}"
            if column in history:
                ax.plot(epochs, history[column], style, marker="o", label=label)
        ax.set(xlabel="epoch", ylabel=metric, title=f"{metric.capitalize()} per epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        if ax.lines:  # below the axes: over them it hides the last epochs' points
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    if title:
        figure.suptitle(title)
    return figure


def plot_confusion_matrix(confusion: np.ndarray, normalize: bool, title: str) -> Figure:
    """Heatmap of a (7, 7) confusion matrix: rows true emotion, columns predicted emotion.

    Args:
        confusion: counts, ``confusion[i, j]`` = faces of class i predicted as class j.
        normalize: show row fractions (recall on the diagonal) instead of counts.
        title: figure title; name the split and the mode (e.g. "PublicTest, inference mode").
    """
    confusion = np.asarray(confusion)
    if confusion.shape != (NUM_CLASSES, NUM_CLASSES):
        raise ValueError(f"confusion matrix must be {NUM_CLASSES}x{NUM_CLASSES}, got {confusion.shape}")
    values = confusion
    if normalize:  # row fractions: (i, j) is the share of class-i faces predicted j; a row of zeros stays zero
        totals = confusion.sum(axis=1, keepdims=True)
        values = np.divide(confusion, totals, out=np.zeros(confusion.shape), where=totals > 0)
    figure = Figure(figsize=(6.5, 5.5), layout="constrained")
    axes = figure.subplots()
    sns.heatmap(
        values,
        annot=True,
        fmt=".2f" if normalize else "d",
        cmap="Blues",
        square=True,
        vmin=0,
        vmax=1 if normalize else None,
        xticklabels=EMOTIONS,
        yticklabels=EMOTIONS,
        cbar_kws={"label": "fraction of the true class" if normalize else "faces"},
        ax=axes,
    )
    axes.set(xlabel="predicted emotion", ylabel="true emotion", title=title)
    return figure


def plot_mistakes(
    faces: np.ndarray, true: np.ndarray, predicted: np.ndarray, confidence: np.ndarray, *, columns: int = 8
) -> Figure:
    """Faces the model got wrong, titled with the true label, prediction and its probability.

    Args:
        faces: uint8 (K, 48, 48). true, predicted: (K,) canonical labels. confidence: (K,)
            probability given to the predicted class.
        columns: faces per row.
    """
    count = len(faces)
    rows = max(1, math.ceil(count / columns))
    figure = Figure(figsize=(1.6 * columns, 1.9 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for index, ax in enumerate(axes):
        ax.set_axis_off()
        if index < count:
            ax.imshow(faces[index], cmap="gray", vmin=0, vmax=255)
            ax.set_title(
                f"true {EMOTIONS[true[index]]}\npred {EMOTIONS[predicted[index]]} (p={confidence[index]:.2f})",
                fontsize=8,
            )
    figure.suptitle("Most confident mistakes" if count else "No mistakes to show")
    return figure


def plot_face_probabilities(probabilities: np.ndarray, title: str) -> Figure:
    """Bar chart of one face's (7,) class probabilities, the predicted emotion highlighted."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.shape != (NUM_CLASSES,):
        raise ValueError(f"probabilities must have shape ({NUM_CLASSES},), got {probabilities.shape}")
    winner = EMOTIONS[int(probabilities.argmax())]
    figure = Figure(figsize=(6, 3), layout="constrained")
    axes = figure.subplots()
    sns.barplot(
        x=list(EMOTIONS),
        y=probabilities,
        hue=list(EMOTIONS),
        legend=False,
        ax=axes,
        palette={emotion: "tab:orange" if emotion == winner else "tab:blue" for emotion in EMOTIONS},
    )
    axes.set(ylim=(0, 1), xlabel="emotion", ylabel="probability", title=title)
    return figure


def plot_emotion_timeline(frames: pd.DataFrame) -> Figure:
    """Probability of each emotion over a video's time.

    Args:
        frames: one row per frame with a ``time_s`` column (seconds) and one probability column
            per emotion named as in :data:`EMOTIONS`; NaN probabilities mean no face was found
            and show as gaps.

    Raises:
        ValueError: if ``time_s`` or every emotion column is missing.
    """
    present = [emotion for emotion in EMOTIONS if emotion in frames]
    if "time_s" not in frames or not present:
        raise ValueError(f"frames need a time_s column and emotion columns; got {list(frames.columns)}")
    figure = Figure(figsize=(11, 3.5), layout="constrained")
    axes = figure.subplots()
    palette = sns.color_palette("tab10", NUM_CLASSES)
    for emotion in present:
        axes.plot(frames["time_s"], frames[emotion], label=emotion, color=palette[EMOTIONS.index(emotion)])
    axes.set(
        xlabel="time (s)",
        ylabel="probability",
        ylim=(0, 1),
        title="Emotion probabilities over time (gaps: no face found)",
    )
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return figure


def _dataset_title(dataset: FaceDataset, what: str) -> str:
    """Figure title naming the dataset, in capitals when it is the generated SYNTHETIC one."""
    return f"SYNTHETIC dataset (generated, not FER-2013): {what}" if dataset.synthetic else f"FER-2013: {what}"
