"""The embedded default dataset: SYNTHETIC cartoon faces, generated here. This is NOT FER-2013.

So that the whole study runs with no download, the project draws its own 48x48 grey faces with
OpenCV: a head, eyes, brows, nose and mouth whose shapes encode one of the seven FER-2013
emotions (angry: brows slanted down to the nose, narrowed eyes, tight flat mouth; disgust:
wrinkled nose, lowered brows, lopsided mouth; fear: raised brows pulled together, wide eyes, small
stretched open mouth; happy: smile arc, slightly squinting eyes; sad: brows raised at the inner
ends, frown arc; surprise: raised arched brows, wide eyes, round open mouth; neutral: level brows,
straight mouth). Each face shows its expression at a random intensity (a subtle face is close to
neutral) with random face position, size, rotation, hair, glasses, occlusion, brightness, contrast,
blur and noise, so a classifier has to learn the expression rather than a fixed template and cannot
be right on every face. Numbers measured on this dataset say nothing about FER-2013; everything
that shows them must say SYNTHETIC (``FaceDataset.synthetic`` is True).
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from fer_lib.dataset import FaceDataset
from fer_lib.labels import EMOTIONS, FACE_SIZE, SPLITS

CANVAS: int = 2 * FACE_SIZE
"""Faces are drawn at twice the final size (96x96) and shrunk to 48x48 with area averaging."""

SUBPIXEL_BITS: int = 4
"""OpenCV drawing coordinates carry this many fractional bits (1/16 pixel)."""

_CANVAS_Y, _CANVAS_X = np.mgrid[0:CANVAS, 0:CANVAS].astype(np.float32) - CANVAS / 2


class Expression(NamedTuple):
    """Shape of the expressive features, in units of the face's half-width (image y points down)."""

    brow_raise: float
    """How far both brows are raised above their rest position."""
    brow_slant: float
    """How far the inner brow ends are lowered (positive: angry V; negative: sad/fearful)."""
    brow_arch: float
    """How far the middle of each brow bulges up."""
    eye_open: float
    """Eye height relative to a neutral eye."""
    mouth_width: float
    """Half-width of the mouth."""
    mouth_curve: float
    """How far the mouth corners rise above its middle (positive: smile; negative: frown)."""
    mouth_open: float
    """Height of the open mouth (0: closed lips drawn as a line)."""
    mouth_skew: float
    """How far one mouth corner rises above the other (disgust's lopsided sneer)."""
    nose_wrinkle: float
    """Nose wrinkles are drawn when this exceeds 0.5."""


NEUTRAL = Expression(
    brow_raise=0.0,
    brow_slant=0.0,
    brow_arch=0.03,
    eye_open=1.0,
    mouth_width=0.42,
    mouth_curve=0.0,
    mouth_open=0.0,
    mouth_skew=0.0,
    nose_wrinkle=0.0,
)

EXPRESSIONS: dict[str, Expression] = {
    "angry": NEUTRAL._replace(
        brow_raise=-0.07, brow_slant=0.17, brow_arch=0.0, eye_open=0.65, mouth_width=0.34, mouth_curve=-0.05
    ),
    "disgust": NEUTRAL._replace(
        brow_raise=-0.05,
        brow_slant=0.08,
        eye_open=0.6,
        mouth_width=0.38,
        mouth_curve=-0.07,
        mouth_open=0.03,
        mouth_skew=0.11,
        nose_wrinkle=1.0,
    ),
    "fear": NEUTRAL._replace(
        brow_raise=0.11, brow_slant=-0.09, eye_open=1.5, mouth_width=0.48, mouth_curve=-0.04, mouth_open=0.08
    ),
    "happy": NEUTRAL._replace(brow_raise=0.02, eye_open=0.75, mouth_width=0.55, mouth_curve=0.17, mouth_open=0.04),
    "sad": NEUTRAL._replace(brow_raise=0.03, brow_slant=-0.13, eye_open=0.8, mouth_width=0.4, mouth_curve=-0.13),
    "surprise": NEUTRAL._replace(
        brow_raise=0.18, brow_arch=0.08, eye_open=1.6, mouth_width=0.24, mouth_curve=0.0, mouth_open=0.24
    ),
    "neutral": NEUTRAL,
}
"""The full-intensity expression of each emotion (keys in canonical label order)."""

EXPRESSION_NOISE = Expression(
    brow_raise=0.03,
    brow_slant=0.03,
    brow_arch=0.02,
    eye_open=0.12,
    mouth_width=0.05,
    mouth_curve=0.03,
    mouth_open=0.02,
    mouth_skew=0.03,
    nose_wrinkle=0.2,
)
"""Standard deviation of the random variation added to every expression parameter."""


def make_synthetic_dataset(per_class: int, seed: int) -> FaceDataset:
    """Generate the SYNTHETIC dataset (cartoon faces; not FER-2013).

    Args:
        per_class: Training faces per emotion; PublicTest and PrivateTest get
            ``max(1, per_class // 3)`` per emotion each.
        seed: random seed; the same seed gives the same faces.

    Returns:
        A :class:`FaceDataset` with ``source="synthetic"``, ids ``synthetic:<n>`` (n = 0, 1, ...),
        ordered by split, then class index.
    """
    rng = np.random.default_rng(seed)
    held_out = max(1, per_class // 3)
    plan = [
        (split, label)
        for split in SPLITS
        for label in range(len(EMOTIONS))
        for _ in range(per_class if split == "Training" else held_out)
    ]
    faces = np.stack([draw_face(label, rng) for _, label in plan])
    return FaceDataset(
        faces=faces,
        labels=np.array([label for _, label in plan], dtype=np.int64),
        usage=np.array([split for split, _ in plan], dtype=str),
        ids=np.array([f"synthetic:{n}" for n in range(len(plan))], dtype=str),
        source="synthetic",
    )


def draw_face(label: int, rng: np.random.Generator) -> np.ndarray:
    """Draw one SYNTHETIC face showing emotion ``label`` (index into :data:`EMOTIONS`).

    Returns:
        uint8 array (48, 48), grey.
    """
    expression = sample_expression(label, rng)
    canvas = _background(rng)
    centre = np.array([CANVAS / 2, CANVAS / 2 + 4]) + rng.uniform(-5, 5, size=2)
    half_width = rng.uniform(31, 40)
    frame = _FaceFrame(centre, half_width, half_height=half_width * rng.uniform(1.15, 1.3))
    skin = float(rng.uniform(105, 205))
    ink = float(rng.uniform(10, 70))
    thickness = int(rng.integers(3, 5))
    if rng.random() < 0.6:
        _draw_hair(canvas, frame, rng)
    cv2.ellipse(
        canvas, frame.point(0, 0), frame.axes(1.0, frame.aspect), 0, 0, 360, skin, -1, cv2.LINE_AA, SUBPIXEL_BITS
    )
    _draw_eyes(canvas, frame, expression, skin, ink, rng)
    _draw_brows(canvas, frame, expression, ink, thickness)
    _draw_nose(canvas, frame, expression, skin, thickness)
    _draw_mouth(canvas, frame, expression, ink, thickness, rng)
    if rng.random() < 0.15:
        _draw_glasses(canvas, frame, ink)
    if rng.random() < 0.1:
        _draw_occluder(canvas, frame, rng)
    return _finish(canvas, centre, rng)


def sample_expression(label: int, rng: np.random.Generator) -> Expression:
    """Return the expression of one face: neutral moved towards ``label``'s at a random intensity, plus noise.

    Intensity is uniform in [0.5, 1]; a low-intensity face looks almost neutral. The mouth skew's
    side is random.
    """
    target = np.array(EXPRESSIONS[EMOTIONS[label]])
    intensity = rng.uniform(0.5, 1.0)
    values = np.array(NEUTRAL) + intensity * (target - np.array(NEUTRAL)) + rng.normal(0.0, EXPRESSION_NOISE)
    expression = Expression(*values.tolist())
    side = float(rng.choice([-1.0, 1.0]))
    return expression._replace(
        eye_open=max(expression.eye_open, 0.15),
        mouth_width=max(expression.mouth_width, 0.12),
        mouth_open=max(expression.mouth_open, 0.0),
        mouth_skew=side * expression.mouth_skew,
    )


class _FaceFrame:
    """Maps face coordinates (units of the face's half-width from its centre; y down) to canvas pixels."""

    def __init__(self, centre: np.ndarray, half_width: float, half_height: float) -> None:
        self.centre = centre
        self.scale = half_width
        self.aspect = half_height / half_width

    def points(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """Return int32 (K, 2) OpenCV coordinates (with :data:`SUBPIXEL_BITS` fraction bits) of K face points."""
        pixels = self.centre + self.scale * np.stack([xs, ys], axis=-1)
        return np.round(pixels * (1 << SUBPIXEL_BITS)).astype(np.int32)

    def point(self, x: float, y: float) -> tuple[int, int]:
        """Return the OpenCV coordinates of one face point."""
        unit = 1 << SUBPIXEL_BITS
        return (round((self.centre[0] + self.scale * x) * unit), round((self.centre[1] + self.scale * y) * unit))

    def axes(self, x_radius: float, y_radius: float) -> tuple[int, int]:
        """Return OpenCV ellipse half-axes (fraction bits included) for radii in face units."""
        unit = self.scale * (1 << SUBPIXEL_BITS)
        return (round(x_radius * unit), round(y_radius * unit))


def _background(rng: np.random.Generator) -> np.ndarray:
    """Return a float32 (96, 96) canvas holding a random linear grey gradient."""
    level, slope_x, slope_y = rng.uniform(20, 235), *rng.uniform(-0.6, 0.6, size=2)
    return np.clip(level + slope_x * _CANVAS_X + slope_y * _CANVAS_Y, 0, 255).astype(np.float32)


def _draw_hair(canvas: np.ndarray, frame: _FaceFrame, rng: np.random.Generator) -> None:
    """Draw a hair cap behind the top of the head."""
    colour = float(rng.choice([rng.uniform(5, 70), rng.uniform(150, 230)]))
    cv2.ellipse(
        canvas,
        frame.point(0, -0.25 * frame.aspect),
        frame.axes(1.12, 0.95 * frame.aspect),
        0,
        180,
        360,
        colour,
        -1,
        cv2.LINE_AA,
        SUBPIXEL_BITS,
    )


def _draw_eyes(
    canvas: np.ndarray, frame: _FaceFrame, expression: Expression, skin: float, ink: float, rng: np.random.Generator
) -> None:
    """Draw both eyes: a light eye white whose height follows ``eye_open``, and a dark iris."""
    white = min(skin + rng.uniform(20, 60), 255.0)
    height = 0.075 * expression.eye_open
    gaze = rng.uniform(-0.04, 0.04)
    for side in (-1, 1):
        centre = frame.point(0.38 * side, -0.12)
        cv2.ellipse(canvas, centre, frame.axes(0.15, height), 0, 0, 360, white, -1, cv2.LINE_AA, SUBPIXEL_BITS)
        iris = min(height, 0.075)
        cv2.ellipse(
            canvas,
            frame.point(0.38 * side + gaze, -0.12),
            frame.axes(iris, iris),
            0,
            0,
            360,
            ink,
            -1,
            cv2.LINE_AA,
            SUBPIXEL_BITS,
        )


def _draw_brows(canvas: np.ndarray, frame: _FaceFrame, expression: Expression, ink: float, thickness: int) -> None:
    """Draw both brows from inner to outer end, raised, slanted and arched by the expression."""
    base = -0.36 - expression.brow_raise
    xs = np.array([0.14, 0.36, 0.58])
    ys = np.array([base + expression.brow_slant, base - expression.brow_arch, base - 0.3 * expression.brow_slant])
    for side in (-1, 1):
        cv2.polylines(canvas, [frame.points(side * xs, ys)], False, ink, thickness, cv2.LINE_AA, SUBPIXEL_BITS)


def _draw_nose(canvas: np.ndarray, frame: _FaceFrame, expression: Expression, skin: float, thickness: int) -> None:
    """Draw the nose a little darker than the skin, with wrinkles across its bridge for disgust."""
    shade = skin * 0.7
    cv2.polylines(
        canvas,
        [frame.points(np.array([0.0, 0.05, -0.08]), np.array([-0.05, 0.22, 0.25]))],
        False,
        shade,
        max(thickness - 1, 1),
        cv2.LINE_AA,
        SUBPIXEL_BITS,
    )
    if expression.nose_wrinkle > 0.5:
        for y in (-0.02, 0.06):
            cv2.polylines(
                canvas,
                [frame.points(np.array([-0.13, 0.0, 0.13]), np.array([y + 0.02, y, y + 0.02]))],
                False,
                shade * 0.8,
                1,
                cv2.LINE_AA,
                SUBPIXEL_BITS,
            )


def _draw_mouth(
    canvas: np.ndarray, frame: _FaceFrame, expression: Expression, ink: float, thickness: int, rng: np.random.Generator
) -> None:
    """Draw the mouth: a curved line when closed, a filled dark opening between two lip curves when open."""
    interior = float(rng.uniform(0, 50))
    xs = np.linspace(-1.0, 1.0, 17)
    middle = 0.5 - expression.mouth_curve * xs**2 + expression.mouth_skew * xs
    opening = expression.mouth_open * np.sqrt(1.0 - xs**2)
    x_pixels = expression.mouth_width * xs
    if expression.mouth_open * frame.scale < 1.0:
        cv2.polylines(canvas, [frame.points(x_pixels, middle)], False, ink, thickness, cv2.LINE_AA, SUBPIXEL_BITS)
        return
    outline = np.concatenate(
        [frame.points(x_pixels, middle - 0.35 * opening), frame.points(x_pixels[::-1], (middle + 0.65 * opening)[::-1])]
    )
    cv2.fillPoly(canvas, [outline], interior, cv2.LINE_AA, SUBPIXEL_BITS)
    cv2.polylines(canvas, [outline], True, ink, max(thickness - 1, 1), cv2.LINE_AA, SUBPIXEL_BITS)


def _draw_glasses(canvas: np.ndarray, frame: _FaceFrame, ink: float) -> None:
    """Draw round glasses over the eyes."""
    for side in (-1, 1):
        cv2.ellipse(
            canvas,
            frame.point(0.38 * side, -0.12),
            frame.axes(0.22, 0.17),
            0,
            0,
            360,
            ink,
            1,
            cv2.LINE_AA,
            SUBPIXEL_BITS,
        )
    cv2.line(canvas, frame.point(-0.16, -0.14), frame.point(0.16, -0.14), ink, 1, cv2.LINE_AA, SUBPIXEL_BITS)


def _draw_occluder(canvas: np.ndarray, frame: _FaceFrame, rng: np.random.Generator) -> None:
    """Cover part of the face with a random blob (a hand, a microphone, a watermark...)."""
    centre = frame.point(*rng.uniform(-0.8, 0.8, size=2))
    cv2.ellipse(
        canvas,
        centre,
        frame.axes(*rng.uniform(0.2, 0.45, size=2)),
        float(rng.uniform(0, 180)),
        0,
        360,
        float(rng.uniform(0, 255)),
        -1,
        cv2.LINE_AA,
        SUBPIXEL_BITS,
    )


def _finish(canvas: np.ndarray, centre: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotate, blur, shrink to 48x48, change brightness and contrast and add noise; return uint8 (48, 48)."""
    rotation = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(rng.uniform(-15, 15)), 1.0)
    image = cv2.warpAffine(canvas, rotation, (CANVAS, CANVAS), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    image = cv2.GaussianBlur(image, (0, 0), float(rng.uniform(0.3, 1.2)))
    image = cv2.resize(image, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)
    mean = float(image.mean())
    image = (image - mean) * rng.uniform(0.7, 1.3) + mean + rng.uniform(-30, 30)
    image += rng.normal(0.0, rng.uniform(2, 8), size=image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)
