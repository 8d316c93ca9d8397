"""An image file's header, read without decoding its pixels: the first check of every image reader.

A few megabytes of PNG can hold a 30000x30000 image (a decompression bomb), so the readers
(:func:`fer_lib.faces.read_image_reduced` for photos, :func:`fer_lib.data.decode_face` for FER-2013
faces) read the size, bands and bit depth here first and refuse what they cannot decode within bounded
memory. Pillow reads headers lazily; its own decompression-bomb check is left to those readers, which
apply their own limits (and must know the size to say it).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

from fer_lib.errors import MediaError

SIXTEEN_BIT_MODES: frozenset[str] = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
"""Pillow modes whose samples take more than one byte (decoded as 16-bit or wider)."""


@dataclass(frozen=True)
class ImageHeader:
    """What an image file's header says.

    Attributes:
        width, height: pixels.
        bands: channels (1 grey, 3 RGB, 4 RGBA, ...).
        bytes_per_sample: 1 for 8-bit images, 2 or more for 16-bit and float ones.
        format: Pillow's format name (``JPEG``, ``PNG``, ...).
    """

    width: int
    height: int
    bands: int
    bytes_per_sample: int
    format: str

    @property
    def megapixels(self) -> float:
        """Width x height / 10^6."""
        return self.width * self.height / 1e6

    @property
    def decoded_mb(self) -> float:
        """Megabytes of a full-size decode: at least 3 bands (OpenCV decodes to BGR) of ``bytes_per_sample``."""
        return self.width * self.height * max(self.bands, 3) * self.bytes_per_sample / 1e6


def read_header(source: str | os.PathLike[str] | bytes) -> ImageHeader:
    """Read the header of an image file (a path, or the file's bytes); no pixel is decoded.

    Raises:
        MediaError: if Pillow cannot identify the data as an image (the caller prefixes the file name
            for bytes; a path is named in the message).
    """
    from PIL import Image, UnidentifiedImageError  # Pillow comes with matplotlib and scikit-image

    name = "" if isinstance(source, bytes) else f"{os.fspath(source)}: "
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # the callers apply their own limits
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:  # lazy: header only
            return ImageHeader(
                width=image.size[0],
                height=image.size[1],
                bands=len(image.getbands()),
                bytes_per_sample=2 if image.mode in SIXTEEN_BIT_MODES or "16" in image.mode else 1,
                format=image.format or "unknown",
            )
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise MediaError(
            f"{name}not a readable image (not an image, or a format whose header cannot be read)"
        ) from None
    finally:
        Image.MAX_IMAGE_PIXELS = limit
