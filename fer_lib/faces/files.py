"""Finding and reading the photos faces are looked for in: folders searched, images read with their
header checked first (bounded memory), and files written without overwriting.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from fer_lib.errors import MediaError
from fer_lib.image_header import read_header
from fer_lib.params import FacesParams
from fer_lib.paths import project_path
from fer_lib.synthetic.photos import write_sample_photos

__all__ = [
    "MAX_MEGAPIXELS",
    "find_files",
    "COMPANION_FILES",
    "given_paths",
    "photo_paths",
    "find_photos",
    "read_image",
    "read_image_reduced",
    "MAX_DECODED_MB",
    "unused_path",
    "write_image",
]
"""The public names, re-exported by :mod:`fer_lib.faces`."""

MAX_MEGAPIXELS: float = 50.0
"""Most pixels :func:`read_image_reduced` decodes: a larger JPEG is decoded at 1/2, 1/4 or 1/8 of its side
(boxes are then scaled back to the file's pixels), a larger file of another format is refused unread."""


def find_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Yield the given files, and every non-hidden file under the given folders (recursive, sorted).

    A dangling symbolic link under a folder is yielded too, so that reading it says what is wrong
    rather than the file silently missing from the results."""
    for path in map(Path, paths):
        if path.is_dir():
            yield from (
                found
                for found in sorted(path.rglob("*"))
                if (found.is_file() or (found.is_symlink() and not found.exists()))
                and not any(part.startswith(".") for part in found.relative_to(path).parts)
            )
        else:
            yield path


COMPANION_FILES: frozenset[str] = frozenset({"labels.csv", "readme.md"})
"""Lower-case names of the files that describe a folder of photos: not read as photos when a folder is searched."""


def given_paths(paths: Iterable[str], faces_params: FacesParams, key: str) -> list[Path] | None:
    """Resolve the paths of ``faces.<key>`` (relative to the project root).

    Returns:
        The paths, or None when there are none, or when one is missing and ``faces.if_missing`` is
        ``default`` (the caller then uses its built-in inputs).

    Raises:
        MediaError: naming the first missing path when ``faces.if_missing`` is ``error``.
    """
    resolved = [project_path(path) for path in paths]
    missing = [path for path in resolved if not path.exists()]
    if not resolved or (missing and faces_params.if_missing == "default"):
        return None
    if missing:
        raise MediaError(
            f"{missing[0]}: faces.{key} names a file or folder that does not exist "
            "(set faces.if_missing: default to fall back to the built-in inputs)"
        )
    return resolved


def photo_paths(faces_params: FacesParams, inputs_dir: str | os.PathLike[str]) -> list[Path]:
    """Return the photos to check: ``faces.images`` (files or folders, relative to the project root)
    expanded with :func:`find_files` (skipping :data:`COMPANION_FILES` in folders), or else
    :data:`fer_lib.synthetic.photos.SAMPLE_PHOTOS` written into ``inputs_dir`` (see :func:`given_paths`
    for missing paths)."""
    given = given_paths(faces_params.images, faces_params, "images")
    if given is None:
        return write_sample_photos(inputs_dir)
    return find_photos(given)


def find_photos(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """:func:`find_files`, leaving out the :data:`COMPANION_FILES` found in folders (files named are kept)."""
    named = [Path(path) for path in paths]
    return [path for path in find_files(named) if path in named or path.name.lower() not in COMPANION_FILES]


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a photo as an 8-bit BGR array (H, W, 3), decoded within bounded memory (:func:`read_image_reduced`)."""
    return read_image_reduced(path)[0]


def read_image_reduced(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Read a photo as an 8-bit BGR array, at a reduced size when it is too large to decode whole.

    The header (size, bands, bit depth, frames) is read first, with Pillow, and nothing is decoded
    whose pixels exceed :data:`MAX_MEGAPIXELS` or whose decoded buffer exceeds :data:`MAX_DECODED_MB`.
    A larger JPEG is decoded at 1/2, 1/4 or 1/8 of its side by libjpeg's DCT scaling (OpenCV's
    ``IMREAD_REDUCED_COLOR_*``), which never holds the full-size pixels: faces need few pixels, and a
    200-megapixel phone photo decodes at 1/2 or 1/4. Other formats cannot be decoded at reduced
    size and are refused over the limit. Grey, 16-bit and RGBA files become 8-bit BGR (alpha dropped),
    EXIF orientation is applied; a multi-frame file gives its first frame.

    Returns:
        The image (H, W, 3) uint8 and the reduction: file pixels per image pixel along each side (1, 2,
        4 or 8); boxes found in the image times the reduction are in the file's pixels.

    Raises:
        MediaError: naming the file, if it is missing, not a regular file, empty, not an image,
            truncated, in a format neither Pillow nor OpenCV reads, or too large even reduced.
    """
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise MediaError(f"{path}: a symbolic link to {os.readlink(path)}, which does not exist")
    if not path.exists():
        raise MediaError(f"{path}: file not found")
    if not path.is_file():
        raise MediaError(f"{path}: not a regular file (a folder, pipe or device), not an image")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: empty file (0 bytes), not an image")
    header = read_header(path)
    reduction = 1
    while header.megapixels / reduction**2 > MAX_MEGAPIXELS or header.decoded_mb / reduction**2 > MAX_DECODED_MB:
        if header.format != "JPEG" or reduction == 8:
            why = (
                "even at 1/8 of its side"
                if header.format == "JPEG"
                else f"and a {header.format} file cannot be decoded"
            )
            raise MediaError(
                f"{path}: image is {header.width}x{header.height} ({header.megapixels:.0f} megapixels), over the "
                f"{MAX_MEGAPIXELS:.0f}-megapixel limit ({header.decoded_mb:.0f} MB decoded, at most "
                f"{MAX_DECODED_MB:.0f}) {why} at reduced size; downscale it first (faces need far fewer pixels)"
            )
        reduction *= 2
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise MediaError(f"{path}: cannot be read ({error.strerror or error})") from None
    try:
        image = cv2.imdecode(data, _REDUCED_COLOR[reduction])
    except cv2.error:
        image = None
    if image is None:
        raise MediaError(f"{path}: not a readable image (not an image, truncated, or a format OpenCV cannot decode)")
    return image, reduction


MAX_DECODED_MB: float = 300.0
"""Largest decoded buffer (width x height x bands x bytes per sample, from the header) :func:`read_image_reduced`
lets OpenCV allocate: a 50-megapixel 16-bit RGB image."""

_REDUCED_COLOR: dict[int, int] = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}
"""OpenCV's decode flag for each reduction of the side."""


def unused_path(path: str | os.PathLike[str]) -> Path:
    """Return ``path``, or ``stem-1.ext``, ``stem-2.ext``... whichever does not exist yet (never overwrite)."""
    path = Path(path)
    candidate, number = path, 0
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
    return candidate


def write_image(path: str | os.PathLike[str], image_bgr: np.ndarray) -> Path:
    """Write a BGR image to ``path`` or, if that exists, to the next unused name; return the path written.

    Missing parent folders are created.

    Raises:
        MediaError: if OpenCV cannot write that format or location.
    """
    target = unused_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        written = cv2.imwrite(str(target), image_bgr)
    except cv2.error:
        written = False
    if not written:
        raise MediaError(f"{target}: cannot write image (unknown extension or unwritable folder)")
    return target
