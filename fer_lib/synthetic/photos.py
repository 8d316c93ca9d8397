"""The sample photos the photo check uses when it is given none: real photos that ship with scikit-image."""

from __future__ import annotations

import os
from pathlib import Path

import cv2

SAMPLE_PHOTOS: tuple[str, ...] = ("astronaut", "camera", "chelsea", "coffee")
"""Real photos that ship with scikit-image: a frontal smiling face (astronaut Eileen Collins), a
man behind a camera (face turned and shaded), a cat and a coffee cup (no human face)."""


def write_sample_photos(folder: str | os.PathLike[str]) -> list[Path]:
    """Write scikit-image's :data:`SAMPLE_PHOTOS` into ``folder`` as PNG files; return their paths."""
    from skimage import data  # the photos ship with scikit-image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in SAMPLE_PHOTOS:
        photo = getattr(data, name)()
        path = folder / f"{name}.png"
        cv2.imwrite(str(path), photo if photo.ndim == 2 else cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths
