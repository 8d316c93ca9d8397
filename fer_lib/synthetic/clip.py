"""The demo clip the video check uses when it is given none: real photos that ship with scikit-image,
panned and zoomed (no download, no synthetic faces)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from fer_lib.errors import MediaError

FOURCC: str = "mp4v"
"""Codec of written ``.mp4`` files (MPEG-4 Part 2: in every OpenCV build, played by common players)."""


def make_demo_clip(
    path: str | os.PathLike[str], *, seconds: float = 4.0, fps: int = 15, size: tuple[int, int] = (640, 480)
) -> Path:
    """Make a test clip from real photos that ship with scikit-image (no download, no synthetic faces).

    The clip slowly pans and zooms from the whole astronaut photo (Eileen Collins, one smiling
    face) towards her face; from 45% to 60% of the clip it cuts to the coffee-cup photo, so that
    frames without a face occur and smoothing has to restart.

    Args:
        path: the ``.mp4`` file to write (overwritten if it exists).
        seconds: clip length.
        fps: frames per second.
        size: frame (width, height) in pixels.

    Returns:
        ``path``.
    """
    from skimage import data  # the photos ship with scikit-image

    astronaut = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    coffee = cv2.resize(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR), size, interpolation=cv2.INTER_AREA)
    width, height = size
    frame_count = max(1, round(seconds * fps))
    face_centre = np.array([225.0, 115.0])  # her face in the 512x512 photo, in pixels
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*FOURCC), fps, size)
    if not writer.isOpened():
        raise MediaError(f"{path}: cannot write a video here (use an .mp4 name in a writable folder)")
    try:
        for index in range(frame_count):
            progress = index / max(1, frame_count - 1)
            if 0.45 <= progress < 0.6:
                writer.write(coffee)
                continue
            writer.write(_pan_zoom(astronaut, face_centre, progress, width, height))
    finally:
        writer.release()
    return path


def _pan_zoom(photo: np.ndarray, target: np.ndarray, progress: float, width: int, height: int) -> np.ndarray:
    """Return a (height, width, 3) view of ``photo`` zoomed 1x -> 1.8x towards ``target`` as progress goes 0 -> 1."""
    zoom = 1.0 + 0.8 * progress
    crop_h = photo.shape[0] / zoom
    crop_w = min(photo.shape[1], crop_h * width / height)
    centre = (1 - progress) * np.array([photo.shape[1] / 2, photo.shape[0] / 2]) + progress * target
    x0 = float(np.clip(centre[0] - crop_w / 2, 0, photo.shape[1] - crop_w))
    y0 = float(np.clip(centre[1] - crop_h / 2, 0, photo.shape[0] - crop_h))
    # An affine warp samples the sub-pixel window directly, so the motion is smooth.
    scale = width / crop_w
    matrix = np.array([[scale, 0, -x0 * scale], [0, height / crop_h, -y0 * height / crop_h]])
    return cv2.warpAffine(photo, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
