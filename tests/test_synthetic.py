"""Tests of fer_lib.synthetic: the generated SYNTHETIC default dataset."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.feature import hog
from sklearn.linear_model import RidgeClassifier

import fer_lib.synthetic.faces as synthetic
from fer_lib.labels import EMOTIONS
from fer_lib.synthetic import EXPRESSIONS, make_synthetic_dataset


def test_splits_sizes_types_and_ids() -> None:
    dataset = make_synthetic_dataset(per_class=6, seed=0)
    assert dataset.synthetic and dataset.source == "synthetic"
    assert dataset.splits == ["Training", "PublicTest", "PrivateTest"]
    assert dataset.split("Training").class_counts() == {emotion: 6 for emotion in EMOTIONS}
    assert dataset.split("PublicTest").class_counts() == {emotion: 2 for emotion in EMOTIONS}
    assert dataset.split("PrivateTest").class_counts() == {emotion: 2 for emotion in EMOTIONS}
    assert dataset.faces.shape == (70, 48, 48) and dataset.faces.dtype == np.uint8
    assert dataset.labels.dtype == np.int64
    assert dataset.ids.tolist() == [f"synthetic:{n}" for n in range(70)]
    assert dataset.usage.dtype.kind == "U" and dataset.ids.dtype.kind == "U"


def test_small_per_class_still_has_every_held_out_split() -> None:
    dataset = make_synthetic_dataset(per_class=2, seed=0)
    assert len(dataset.split("PublicTest")) == 7 and len(dataset.split("PrivateTest")) == 7


def test_same_seed_same_faces_other_seed_other_faces() -> None:
    first = make_synthetic_dataset(per_class=3, seed=5)
    np.testing.assert_array_equal(first.faces, make_synthetic_dataset(per_class=3, seed=5).faces)
    assert not np.array_equal(first.faces, make_synthetic_dataset(per_class=3, seed=6).faces)


def test_faces_vary_and_are_never_blank() -> None:
    faces = make_synthetic_dataset(per_class=20, seed=1).faces.reshape(-1, 48 * 48).astype(np.float64)
    assert faces.std(axis=1).min() > 5.0
    assert len(np.unique(faces, axis=0)) == len(faces)


def test_expressions_cover_every_emotion_in_label_order() -> None:
    assert tuple(EXPRESSIONS) == EMOTIONS
    assert len(set(EXPRESSIONS.values())) == len(EMOTIONS)


def test_expressions_are_learnable_but_not_trivial() -> None:
    """A linear model on HOG features does far better than chance (1/7) yet far from perfectly."""
    dataset = make_synthetic_dataset(per_class=45, seed=3)
    training, held_out = dataset.split("Training"), dataset.split("PublicTest")

    def features(faces: np.ndarray) -> np.ndarray:
        return np.array([hog(face, orientations=8, pixels_per_cell=(8, 8), cells_per_block=(2, 2)) for face in faces])

    model = RidgeClassifier(alpha=10.0).fit(features(training.faces), training.labels)
    accuracy = float((model.predict(features(held_out.faces)) == held_out.labels).mean())
    assert 0.3 < accuracy < 0.9


@pytest.mark.parametrize("label", range(len(EMOTIONS)))
def test_full_intensity_expression_is_drawn_differently_from_neutral(
    label: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the expression pinned to its full intensity, each emotion differs from neutral in the same pose."""
    monkeypatch.setattr(synthetic, "sample_expression", lambda index, rng: EXPRESSIONS[EMOTIONS[index]])
    face = synthetic.draw_face(label, np.random.default_rng(11)).astype(np.int16)
    neutral = synthetic.draw_face(EMOTIONS.index("neutral"), np.random.default_rng(11)).astype(np.int16)
    difference = np.abs(face - neutral).mean()
    assert difference == 0 if EMOTIONS[label] == "neutral" else difference > 0.5
