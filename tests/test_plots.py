"""Each figure function returns a Figure with the expected panels and labels on tiny inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import face_dataset, random_faces
from matplotlib.figure import Figure

from fer_lib import plots
from fer_lib.dataset import FaceDataset
from fer_lib.labels import EMOTIONS, NUM_CLASSES
from fer_lib.study import ablation


@pytest.fixture
def dataset() -> FaceDataset:
    """28 random faces: 3 per class in Training, 1 per class in PublicTest (SYNTHETIC)."""
    labels = np.tile(np.arange(NUM_CLASSES), 4).tolist()
    usage = ["Training"] * 21 + ["PublicTest"] * 7
    ids = [f"synthetic:{index}" for index in range(28)]
    return face_dataset(random_faces(28), labels, usage, ids=ids, source="synthetic")


def tick_texts(ticks: list) -> list[str]:
    """The text of each tick label."""
    return [tick.get_text() for tick in ticks]


def test_save_figure_writes_png_and_keeps_figure_open(tmp_path: Path) -> None:
    figure = plots.plot_face_probabilities(np.full(NUM_CLASSES, 1 / NUM_CLASSES), "uniform")

    path = plots.save_figure(figure, tmp_path, "03_uniform")

    assert path == tmp_path / "figures" / "03_uniform.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert figure.axes  # still usable for display
    with pytest.raises(ValueError, match="plain file stem"):
        plots.save_figure(figure, tmp_path, "../escape")


def test_class_distribution_groups_bars_by_split_in_canonical_order() -> None:
    figure = plots.plot_class_distribution({"PublicTest": {"sad": 2}, "Training": {"happy": 5, "angry": 3}})

    (axes,) = figure.axes
    assert isinstance(figure, Figure)
    assert tick_texts(axes.get_xticklabels()) == list(EMOTIONS)
    assert tick_texts(axes.get_legend().get_texts()) == ["Training", "PublicTest"]
    training_heights = [bar.get_height() for bar in axes.containers[0]]
    assert training_heights == [3, 0, 0, 5, 0, 0, 0]


def test_sample_grid_has_a_row_per_emotion_and_says_synthetic(dataset: FaceDataset) -> None:
    figure = plots.plot_sample_grid(dataset, per_class=5)

    assert len(figure.axes) == NUM_CLASSES * 5
    assert [figure.axes[row * 5].get_ylabel() for row in range(NUM_CLASSES)] == list(EMOTIONS)
    assert sum(bool(axes.images) for axes in figure.axes) == NUM_CLASSES * 4  # 4 faces per class
    assert "SYNTHETIC" in figure.get_suptitle()
    real = FaceDataset(dataset.faces, dataset.labels, dataset.usage, dataset.ids, "/data/fer2013")
    assert "SYNTHETIC" not in plots.plot_sample_grid(real, per_class=2).get_suptitle()


def test_pixel_statistics_has_histogram_and_a_mean_face_per_emotion(dataset: FaceDataset) -> None:
    figure = plots.plot_pixel_statistics(dataset)

    histogram, *mean_faces = figure.axes
    assert "mean pixel intensity" in histogram.get_xlabel()
    assert tick_texts(histogram.get_legend().get_texts()) == ["Training", "PublicTest"]
    assert [axes.get_title().split("\n")[0] for axes in mean_faces] == list(EMOTIONS)


def test_training_curves_label_modes_and_tolerate_missing_columns() -> None:
    history = pd.DataFrame(
        {
            "epoch": [1, 2],
            "fit_accuracy": [0.5, 0.9],
            "fit_loss": [1.2, 0.3],
            "train_accuracy": [0.4, 0.7],
            "val_accuracy": [0.3, 0.5],
            "val_loss": [1.5, 1.4],
        }
    )

    figure = plots.plot_training_curves(history)
    accuracy, loss = figure.axes

    assert [line.get_label() for line in accuracy.lines] == [
        "Training, fit-time (training mode)",
        "Training, inference mode",
        "PublicTest, inference mode",
    ]
    assert [line.get_label() for line in loss.lines] == [
        "Training, fit-time (training mode)",
        "PublicTest, inference mode",
    ]
    assert list(accuracy.lines[0].get_xdata()) == [1, 2] and accuracy.get_ylabel() == "accuracy"
    figure.draw_without_rendering()
    for axes in (accuracy, loss):  # each legend lies below its panel, under the x label, never over the curves
        assert axes.get_legend().get_window_extent().y1 < axes.xaxis.label.get_window_extent().y0
    only_val = plots.plot_training_curves(pd.DataFrame({"val_accuracy": [0.2, 0.3, 0.4]}))
    assert list(only_val.axes[0].lines[0].get_xdata()) == [1, 2, 3] and not only_val.axes[1].lines


def test_confusion_matrix_rows_sum_to_one_when_normalised() -> None:
    confusion = np.arange(49).reshape(7, 7)
    confusion[2] = 0

    figure = plots.plot_confusion_matrix(confusion, normalize=True, title="PublicTest, inference mode")

    axes = figure.axes[0]
    shown = np.asarray(axes.collections[0].get_array()).reshape(7, 7)
    assert np.allclose(np.delete(shown, 2, axis=0).sum(axis=1), 1) and not shown[2].any()
    assert tick_texts(axes.get_yticklabels()) == list(EMOTIONS) and axes.get_ylabel() == "true emotion"
    assert axes.get_title() == "PublicTest, inference mode"
    counts = plots.plot_confusion_matrix(confusion, normalize=False, title="counts").axes[0]
    assert np.array_equal(np.asarray(counts.collections[0].get_array()).reshape(7, 7), confusion)
    with pytest.raises(ValueError, match="7x7"):
        plots.plot_confusion_matrix(np.ones((3, 3)), normalize=False, title="bad")


def test_mistakes_titles_name_true_and_predicted(dataset: FaceDataset) -> None:
    figure = plots.plot_mistakes(dataset.faces[:3], np.array([0, 1, 2]), np.array([6, 5, 4]), np.array([0.9, 0.8, 0.7]))

    shown = [axes for axes in figure.axes if axes.images]
    assert len(shown) == 3
    assert shown[0].get_title() == "true angry\npred neutral (p=0.90)"
    empty = plots.plot_mistakes(dataset.faces[:0], np.array([], int), np.array([], int), np.array([]))
    assert empty.get_suptitle() == "No mistakes to show"


def test_face_probabilities_has_one_bar_per_emotion() -> None:
    probabilities = np.array([0.1, 0.0, 0.1, 0.5, 0.1, 0.1, 0.1])

    axes = plots.plot_face_probabilities(probabilities, "face 1").axes[0]

    assert np.allclose([bar.get_height() for bar in axes.patches], probabilities)
    assert tick_texts(axes.get_xticklabels()) == list(EMOTIONS) and axes.get_title() == "face 1"
    with pytest.raises(ValueError, match="shape"):
        plots.plot_face_probabilities(np.ones(3), "bad")


def test_emotion_timeline_draws_a_line_per_emotion_with_gaps() -> None:
    frames = pd.DataFrame(
        {"time_s": [0.0, 0.5, 1.0], "happy": [0.9, np.nan, 0.8], "sad": [0.1, np.nan, 0.2], "face_count": [1, 0, 1]}
    )

    axes = plots.plot_emotion_timeline(frames).axes[0]

    assert [line.get_label() for line in axes.lines] == ["happy", "sad"]
    assert np.isnan(axes.lines[0].get_ydata()[1]) and axes.get_xlabel() == "time (s)"
    with pytest.raises(ValueError, match="time_s"):
        plots.plot_emotion_timeline(frames.drop(columns="time_s"))


def test_ablation_deltas_draw_one_bar_per_variant_and_metric() -> None:
    deltas = pd.DataFrame({"no TTA": [-1.5, 2.0], "flip TTA": [-1.0, 2.5]}, index=["no augmentation", "input 224 px"])

    axes = ablation.plot_ablation_deltas(deltas).axes[0]

    assert sorted(bar.get_width() for bar in axes.patches if bar.get_height() > 0) == [-1.5, -1.0, 2.0, 2.5]
    assert tick_texts(axes.get_yticklabels()) == ["no augmentation", "input 224 px"]
    assert "percentage points" in axes.get_xlabel()
    assert [text.get_text() for text in axes.get_legend().get_texts()] == ["no TTA", "flip TTA"]


def test_ablation_deltas_shade_the_seed_noise_band() -> None:
    deltas = pd.DataFrame({"no TTA": [-4.0, 6.0]}, index=["another seed", "no augmentation"])

    axes = ablation.plot_ablation_deltas(deltas, noise=4.0).axes[0]

    (band,) = [patch for patch in axes.patches if patch.get_label().startswith("seed-to-seed")]
    assert band.get_x() == pytest.approx(-4.0) and band.get_width() == pytest.approx(8.0)
    assert [text.get_text() for text in axes.get_legend().get_texts()] == ["no TTA", "seed-to-seed noise (±4.0 pp)"]


def test_accuracy_vs_cost_labels_every_variant_and_the_device() -> None:
    table = pd.DataFrame(
        {
            "variant": ["baseline", "input 48 px"],
            "ms_per_face": [1.5, 0.4],
            "publictest_accuracy": [0.66, 0.62],
            "inference_device": ["tensorflow on a CPU"] * 2,
        }
    )

    axes = ablation.plot_accuracy_vs_cost(table).axes[0]

    assert [text.get_text() for text in axes.texts] == ["baseline", "input 48 px"]
    assert np.allclose(axes.collections[0].get_offsets(), [[1.5, 66.0], [0.4, 62.0]])
    assert "tensorflow on a CPU" in axes.get_xlabel() and "inference mode" in axes.get_ylabel()
