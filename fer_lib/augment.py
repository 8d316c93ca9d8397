"""Host-side augmentation of 48x48 faces with NumPy and OpenCV: the steps that notebook 2's
``augment_batch`` (:func:`fer_lib.recipe.augment_batch`) applies, and mixup, CutMix and test-time views.

Augmenting on the host, before the batch reaches the model, keeps the model graph free of
random layers (which were very slow to compile under JAX/XLA) and costs microseconds per 48x48
face. Every random draw comes from a ``numpy.random.Generator`` the caller seeds, so a batch
is reproducible from (seed, epoch, batch index), which makes resumed training exact.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

from fer_lib.labels import FACE_SIZE
from fer_lib.params import AugmentParams, TestTimeAugmentation

TENCROP_SIZE: int = 44
"""Side in pixels of the ten-crop test-time views (corners and centre of a 48x48 face)."""


def chosen(count: int, probability: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of the faces (of ``count``) a step with ``probability`` applies to; none drawn when it is 0."""
    return np.flatnonzero(rng.random(count) < probability) if probability else np.array([], dtype=np.intp)


def add_noise(faces: np.ndarray, noise_std: float, rng: np.random.Generator) -> np.ndarray:
    """(B, H, W) faces 0-255 plus Gaussian noise of a random sigma U(0, noise_std) per face, clipped."""
    sigma = rng.uniform(0, noise_std, size=(len(faces), 1, 1)).astype(np.float32)
    return np.clip(faces + sigma * rng.standard_normal(faces.shape, dtype=np.float32), 0, 255)


def mixup(
    faces: np.ndarray, targets: np.ndarray, weights: np.ndarray, alpha: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blend each face of a batch with a random other face of it (mixup, Zhang et al. 2018).

    Face i becomes ``lam_i * face_i + (1 - lam_i) * face_j`` with ``lam_i ~ Beta(alpha, alpha)`` and j a
    random permutation of the batch; its target and loss weight are mixed with the same ``lam_i``.

    Args:
        faces: (B, 48, 48) float32 faces, 0-255.
        targets: (B, 7) float32 one-hot (or smoothed) targets.
        weights: (B,) per-face loss weights.
        alpha: the Beta distribution's parameter (> 0).
        rng: source of randomness.

    Returns:
        Mixed faces (B, 48, 48), targets (B, 7) and weights (B,), float32.
    """
    lam = rng.beta(alpha, alpha, size=len(faces)).astype(np.float32)
    partner = rng.permutation(len(faces))
    mixed_faces = lam[:, None, None] * faces + (1 - lam[:, None, None]) * faces[partner]
    mixed_targets = lam[:, None] * targets + (1 - lam[:, None]) * targets[partner]
    mixed_weights = lam * weights + (1 - lam) * weights[partner]
    return mixed_faces.astype(np.float32), mixed_targets.astype(np.float32), mixed_weights.astype(np.float32)


def cutmix(
    faces: np.ndarray, targets: np.ndarray, weights: np.ndarray, alpha: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Paste a random rectangle of another face of the batch into each face (CutMix, Yun et al. 2019).

    Face i gets the box of face j (j a random permutation of the batch) covering about ``1 - lam_i`` of
    its area, ``lam_i ~ Beta(alpha, alpha)``; its target and loss weight are mixed by the share of the
    area actually kept (the box is clipped to the face). Arguments and returns as :func:`mixup`'s.
    """
    height, width = faces.shape[1:]
    partner = rng.permutation(len(faces))
    mixed = faces.astype(np.float32, copy=True)
    kept = np.ones(len(faces), dtype=np.float32)
    for index, lam in enumerate(rng.beta(alpha, alpha, size=len(faces))):
        box_h, box_w = int(round(height * np.sqrt(1 - lam))), int(round(width * np.sqrt(1 - lam)))
        centre_y, centre_x = rng.integers(0, height), rng.integers(0, width)
        top, bottom = max(0, centre_y - box_h // 2), min(height, centre_y + box_h - box_h // 2)
        left, right = max(0, centre_x - box_w // 2), min(width, centre_x + box_w - box_w // 2)
        mixed[index, top:bottom, left:right] = faces[partner[index], top:bottom, left:right]
        kept[index] = 1 - (bottom - top) * (right - left) / (height * width)
    mixed_targets = kept[:, None] * targets + (1 - kept[:, None]) * targets[partner]
    mixed_weights = kept * weights + (1 - kept) * weights[partner]
    return mixed, mixed_targets.astype(np.float32), mixed_weights.astype(np.float32)


def photometric(faces: np.ndarray, gamma: float, contrast: float, rng: np.random.Generator) -> np.ndarray:
    """(B, H, W) faces 0-255 with a random gamma power exp(U(-gamma, gamma)) and contrast factor
    1 + U(-contrast, contrast) about each face's mean, one draw per face; clipped to 0-255."""
    count = len(faces)
    power = np.exp(rng.uniform(-gamma, gamma, size=(count, 1, 1))).astype(np.float32)
    factor = (1 + rng.uniform(-contrast, contrast, size=(count, 1, 1))).astype(np.float32)
    out = 255.0 * (faces / 255.0) ** power
    mean = out.mean(axis=(1, 2), keepdims=True)
    return np.clip(mean + factor * (out - mean), 0, 255).astype(np.float32)


def degrade(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One (H, W) face shrunk to a random 12-32 px side and scaled back, or blurred (sigma 0.5-1.5 px)."""
    height, width = face.shape
    if rng.random() < 0.5:
        side = int(rng.integers(12, 33))
        small = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    return cv2.GaussianBlur(face, (0, 0), sigmaX=float(rng.uniform(0.5, 1.5)), borderType=cv2.BORDER_REFLECT_101)


def jpeg(face: np.ndarray, quality: int) -> np.ndarray:
    """One (H, W) float face 0-255 encoded as a JPEG of ``quality`` (0-100) and decoded again, float32."""
    encoded = cv2.imencode(".jpg", np.clip(face, 0, 255).round().astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])[
        1
    ]
    return cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE).astype(np.float32)


def random_crop(face: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``size`` x ``size`` square of one (H, W) face, resized back to (H, W) (:func:`_crop_resized`)."""
    height, width = face.shape
    return _crop_resized(face, rng.integers(0, height - size + 1), rng.integers(0, width - size + 1), size)


def _crop_resized(face: np.ndarray, top: int, left: int, size: int) -> np.ndarray:
    """The ``size`` x ``size`` square at (top, left) of one (H, W) face, resized back to (H, W) (bilinear)."""
    height, width = face.shape
    return cv2.resize(face[top : top + size, left : left + size], (width, height), interpolation=cv2.INTER_LINEAR)


def random_affine(face: np.ndarray, augment: AugmentParams, rng: np.random.Generator) -> np.ndarray:
    """Rotate (degrees), zoom (fraction) and shift (fraction of the side) one (H, W) face."""
    height, width = face.shape
    angle = rng.uniform(-augment.rotation_degrees, augment.rotation_degrees)
    zoom = 1.0 + rng.uniform(-augment.zoom_fraction, augment.zoom_fraction)
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, zoom)
    matrix[:, 2] += rng.uniform(-augment.shift_fraction, augment.shift_fraction, size=2) * (width, height)
    return cv2.warpAffine(face, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def random_erase(face: np.ndarray, rng: np.random.Generator) -> None:
    """Fill a random rectangle (2-25% of the area, aspect 0.3-3.3) of ``face`` with noise, in place."""
    height, width = face.shape
    area = rng.uniform(0.02, 0.25) * height * width
    aspect = np.exp(rng.uniform(np.log(0.3), np.log(3.3)))
    box_h = int(min(height, round(np.sqrt(area * aspect))))
    box_w = int(min(width, round(np.sqrt(area / aspect))))
    top = rng.integers(0, height - box_h + 1)
    left = rng.integers(0, width - box_w + 1)
    face[top : top + box_h, left : left + box_w] = rng.uniform(0, 255, size=(box_h, box_w))


def tta_views(faces: np.ndarray, tta: TestTimeAugmentation) -> Iterator[np.ndarray]:
    """Yield the views of a batch of faces that test-time augmentation averages over.

    ``"none"``: the faces; ``"flip"``: the faces and their left-right mirrors (2 views);
    ``"tencrop"``: the four corner and the centre ``TENCROP_SIZE`` crops, each resized back to
    48x48 (bilinear) and each with its mirror (10 views, a 9% zoom and up to 2 px of shift, as
    in training augmentation).

    Args:
        faces: (N, 48, 48) grey faces, pixel values 0-255.
        tta: which views.

    Yields:
        (N, 48, 48) float32 views, pixel values 0-255, one at a time (to bound memory).
    """
    faces = faces.astype(np.float32, copy=False)
    crops = [faces]
    if tta == "tencrop":
        margin = FACE_SIZE - TENCROP_SIZE
        corners = [(0, 0), (0, margin), (margin, 0), (margin, margin), (margin // 2, margin // 2)]
        crops = [
            np.array([_crop_resized(face, top, left, TENCROP_SIZE) for face in faces], np.float32).reshape(faces.shape)
            for top, left in corners
        ]
    for crop in crops:
        yield crop
        if tta != "none":
            yield crop[:, :, ::-1]
