"""Host-side augmentation of training faces and the views of test-time augmentation."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import random_faces

from fer_lib.augment import TENCROP_SIZE, cutmix, mixup, tta_views
from fer_lib.classifiers import KerasClassifier
from fer_lib.params import TTA_MODES, AugmentParams
from fer_lib.recipe import augment_batch

FULL = AugmentParams(flip=True, rotation_degrees=10, shift_fraction=0.1, zoom_fraction=0.1, erasing_probability=0.5)


def test_augmentation_depends_only_on_the_generator_seed() -> None:
    batch = random_faces(8)
    first = augment_batch(batch, FULL, np.random.default_rng(5))
    again = augment_batch(batch, FULL, np.random.default_rng(5))
    other = augment_batch(batch, FULL, np.random.default_rng(6))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert first.shape == (8, 48, 48) and first.dtype == np.float32
    assert first.min() >= 0 and first.max() <= 255


def test_no_augmentation_returns_an_unchanged_float_copy() -> None:
    batch = random_faces(4)
    out = augment_batch(batch, AugmentParams(), np.random.default_rng(0))
    np.testing.assert_array_equal(out, batch.astype(np.float32))
    assert out.dtype == np.float32


def test_flip_alone_mirrors_about_half_the_faces() -> None:
    batch = random_faces(200)
    out = augment_batch(batch, AugmentParams(flip=True), np.random.default_rng(0))
    mirrored = np.array([np.array_equal(o, f[:, ::-1]) for o, f in zip(out, batch, strict=True)])
    unchanged = np.array([np.array_equal(o, f) for o, f in zip(out, batch, strict=True)])
    assert np.all(mirrored ^ unchanged)
    assert 70 < mirrored.sum() < 130


def test_erasing_fills_one_rectangle_of_each_erased_face() -> None:
    batch = np.zeros((50, 48, 48), np.uint8)
    out = augment_batch(batch, AugmentParams(erasing_probability=1.0), np.random.default_rng(0))
    for face in out:
        rows, cols = np.nonzero(face)
        assert len(rows) > 0
        box = face[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert np.count_nonzero(box) >= 0.95 * box.size  # one filled rectangle (noise is rarely exactly 0)
        assert 0.02 * 48 * 48 * 0.5 <= box.size <= 0.25 * 48 * 48 * 1.2


def test_random_crops_are_squares_of_the_face_resized_back() -> None:
    ramp = np.tile(np.arange(48, dtype=np.uint8) * 5, (48, 1))  # columns 0, 5, ..., 235
    out = augment_batch(np.repeat(ramp[None], 40, axis=0), AugmentParams(crop_size=40), np.random.default_rng(1))
    assert out.shape == (40, 48, 48)
    left_edges = out[:, 0, 0]
    assert left_edges.min() >= 0 and left_edges.max() <= 5 * 8  # the crop starts at one of columns 0-8
    assert len(np.unique(left_edges)) > 3  # at random places
    np.testing.assert_array_equal(out, np.repeat(out[:, :1], 48, axis=1))  # every row alike: no rotation
    np.testing.assert_allclose(out[:, 0, -1] - out[:, 0, 0], 5 * 39, atol=0.5)  # 40 px stretched to 48


def test_mixup_blends_faces_targets_and_weights_with_one_weight_per_face() -> None:
    batch = np.stack([np.full((48, 48), 0.0), np.full((48, 48), 100.0)]).astype(np.float32)
    targets = np.eye(7, dtype=np.float32)[[0, 3]]
    weights = np.array([1.0, 3.0], np.float32)
    mixed, mixed_targets, mixed_weights = mixup(batch, targets, weights, 0.4, np.random.default_rng(2))
    np.testing.assert_allclose(mixed_targets.sum(axis=1), 1.0, rtol=1e-6)
    share_of_face_1 = mixed[:, 0, 0] / 100.0  # each face: lam * own + (1 - lam) * partner, same lam below
    np.testing.assert_allclose(mixed_targets[:, 3], share_of_face_1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mixed_weights, 1.0 + 2.0 * share_of_face_1, rtol=1e-5)
    again = mixup(batch, targets, weights, 0.4, np.random.default_rng(2))
    np.testing.assert_array_equal(mixed, again[0])


@pytest.mark.parametrize(("tta", "count"), [("none", 1), ("flip", 2), ("tencrop", 10)])
def test_each_test_time_augmentation_yields_its_views(tta: str, count: int) -> None:
    views = list(tta_views(random_faces(3), tta))
    assert len(views) == count
    assert all(view.shape == (3, 48, 48) and view.dtype == np.float32 for view in views)
    if tta != "none":
        for view, mirror in zip(views[::2], views[1::2], strict=True):
            np.testing.assert_array_equal(mirror, view[:, :, ::-1])


def test_tencrop_views_are_the_corner_and_centre_crops_resized_back() -> None:
    face = np.zeros((1, 48, 48), np.uint8)
    face[0, :2, :2] = 255  # a bright top-left corner: only the crops that start at row 0 and column 0 hold it
    views = list(tta_views(face, "tencrop"))[::2]  # without mirrors: top-left, top-right, bottom-left,
    assert [view[0].max() > 0 for view in views] == [True, False, False, False, False]  # bottom-right, centre
    assert views[0][0, 0, 0] == 255 and views[0][0, 3:, 3:].max() == 0  # resized back: 2 px become about 2.2
    assert TENCROP_SIZE < 48
    constant = np.full((2, 48, 48), 77, np.uint8)
    for view in tta_views(constant, "tencrop"):
        np.testing.assert_allclose(view, 77)


@pytest.mark.parametrize("tta", TTA_MODES)
def test_predict_proba_averages_the_model_over_the_views(tta: str) -> None:
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((48, 48, 1)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Flatten(),
            keras.layers.Dense(7, activation="softmax"),
        ]
    )
    batch = random_faces(5)
    expected = np.mean([model.predict(view[..., None], verbose=0) for view in tta_views(batch, tta)], axis=0)
    probabilities = KerasClassifier(model).predict_proba(batch, batch_size=2, tta=tta)
    assert probabilities.shape == (5, 7)
    np.testing.assert_allclose(probabilities, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-12)


REAL_PIPELINE = {
    "gamma": AugmentParams(gamma=0.4),
    "contrast": AugmentParams(contrast=0.3),
    "lowres": AugmentParams(lowres_probability=1.0),
    "jpeg": AugmentParams(jpeg_probability=1.0),
    "noise": AugmentParams(noise_std=8),
}


@pytest.mark.parametrize("name", REAL_PIPELINE)
def test_real_pipeline_factors_change_every_face_within_grey_levels_and_repeat_with_the_seed(name: str) -> None:
    augment = REAL_PIPELINE[name]
    batch = random_faces(16)
    out = augment_batch(batch, augment, np.random.default_rng(3))
    np.testing.assert_array_equal(out, augment_batch(batch, augment, np.random.default_rng(3)))
    assert out.shape == (16, 48, 48) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 255
    assert all(not np.array_equal(o, f) for o, f in zip(out, batch.astype(np.float32), strict=True))


def test_gamma_keeps_black_and_white_and_moves_the_mid_greys_both_ways() -> None:
    ramp = np.repeat(np.linspace(0, 255, 48, dtype=np.float32)[None, None], 48, axis=1).repeat(200, axis=0)
    out = augment_batch(ramp, AugmentParams(gamma=0.4), np.random.default_rng(0))
    np.testing.assert_allclose(out[:, :, 0], 0, atol=1e-3)
    np.testing.assert_allclose(out[:, :, -1], 255, atol=1e-2)
    middle = out[:, 0, 24] - ramp[:, 0, 24]
    assert middle.min() < -10 and middle.max() > 10  # darker and brighter faces


def test_lowres_removes_fine_detail() -> None:
    checker = (np.indices((48, 48)).sum(axis=0) % 2 * 255).astype(np.uint8)  # 1 px checkerboard
    out = augment_batch(
        np.repeat(checker[None], 20, axis=0), AugmentParams(lowres_probability=1.0), np.random.default_rng(0)
    )
    assert (out.std(axis=(1, 2)) < 0.5 * checker.std()).all()


def test_jpeg_recompression_leaves_8x8_block_artefacts_close_to_the_face() -> None:
    batch = random_faces(10)
    out = augment_batch(batch, AugmentParams(jpeg_probability=1.0), np.random.default_rng(0))
    assert np.allclose(out, out.round())  # decoded 8-bit pixels
    assert 2 < np.abs(out - batch).mean() < 60


def test_cutmix_pastes_one_box_of_the_partner_and_mixes_targets_by_its_area() -> None:
    faces = np.stack([np.zeros((48, 48)), np.full((48, 48), 255.0)]).astype(np.float32)
    targets = np.eye(7, dtype=np.float32)[[0, 3]]
    for seed in range(10):
        mixed, mixed_targets, weights = cutmix(faces, targets, np.ones(2, np.float32), 1.0, np.random.default_rng(seed))
        for index in range(2):
            partner = 1 - index if not np.array_equal(mixed[index], faces[index]) else index
            pasted = np.mean(mixed[index] != faces[index])
            if partner != index:
                np.testing.assert_allclose(mixed_targets[index, [0, 3][partner]], pasted, atol=1e-6)
            np.testing.assert_allclose(mixed_targets[index].sum(), 1.0, atol=1e-6)
        np.testing.assert_array_equal(weights, 1.0)
