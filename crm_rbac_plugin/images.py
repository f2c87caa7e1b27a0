"""Pictures people upload, checked by decoding them and stored as the plugin's own encoding.

Threat model: a profile picture is shown to every colleague, so an upload
must never be anything but a picture, whatever its name or declared type
says. An SVG or an HTML page (script on the site's origin), a polyglot
that starts like a PNG and goes on as something else, a truncated file
that crashes a decoder, a small file declaring billions of pixels (a
"decompression bomb" that takes the worker's memory) and a photo carrying
the GPS position of someone's home in its EXIF block are all refused or
made harmless here:

* the bytes are opened by Pillow with only the PNG, JPEG, GIF and WebP
  decoders allowed (no SVG, which Pillow cannot read anyway, no TIFF, PSD
  or EPS, whose decoders are larger attack surfaces);
* the size the header declares is checked against ``max_pixels`` before
  any pixel is decoded, and Pillow's own bomb guard is an error too;
* the whole image is decoded; a file that does not decode is refused;
* what is stored is never the upload: the first frame, turned upright as
  its EXIF orientation says, square-cropped around its centre, resized and
  encoded afresh as WebP with no metadata at all (no EXIF, no XMP, no ICC
  profile, no comment), so nothing of the original file but its pixels
  survives.

Pure functions of bytes: no Flask, no database (the service is
:mod:`.team.pictures`).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ValidationError

__all__ = ["ACCEPTED_FORMATS", "STORED_TYPE", "EncodedPicture", "PictureRejected", "encode_picture"]

#: The decoders an upload may go through (Pillow format names).
ACCEPTED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "GIF", "WEBP")
#: The type of every stored picture.
STORED_TYPE = "image/webp"
#: WebP quality of the stored picture: no visible loss at avatar sizes, a few kilobytes.
QUALITY = 85
#: What a decoder raises on bytes that are not a whole image of its format.
_UNDECODABLE = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError,
                IndexError, TypeError, ZeroDivisionError, MemoryError, struct.error)


class PictureRejected(ValidationError):
    """An upload that is not an acceptable picture: 400 naming the field (413 when too large)."""

    def __init__(self, message: str, *, field: str = "picture", status: int = 400) -> None:
        super().__init__(message, field=field)
        self.status = status


@dataclass(frozen=True)
class EncodedPicture:
    """A picture as the plugin stores it: its bytes and their content type."""

    data: bytes
    content_type: str


def encode_picture(data: bytes, *, max_pixels: int, size: int,
                   field: str = "picture") -> EncodedPicture:
    """Decode ``data`` as a PNG, JPEG, GIF or WebP picture and return it re-encoded.

    The result is a ``size`` x ``size`` WebP without metadata (see the
    module). Raises :class:`PictureRejected` naming ``field`` for anything
    that is not such a picture or declares more than ``max_pixels`` pixels.

    >>> encode_picture(png_bytes, max_pixels=25_000_000, size=256).content_type
    'image/webp'
    """
    image = _decoded(data, max_pixels=max_pixels, size=size, field=field)
    try:
        image = ImageOps.exif_transpose(image)
        image = image.convert("RGBA" if _has_alpha(image) else "RGB")
        square = ImageOps.fit(image, (size, size), method=Image.Resampling.LANCZOS)
    except _UNDECODABLE as exc:
        raise PictureRejected("This picture could not be read.", field=field) from exc
    # A new image holds the pixels only: nothing of the upload's metadata
    # (``info``: EXIF, XMP, ICC profile, comments) can reach the encoder.
    clean = Image.new(square.mode, square.size)
    clean.paste(square)
    out = io.BytesIO()
    clean.save(out, format="WEBP", quality=QUALITY)
    return EncodedPicture(out.getvalue(), STORED_TYPE)


def _decoded(data: bytes, *, max_pixels: int, size: int, field: str) -> Image.Image:
    """The first frame of ``data``, fully decoded, or :class:`PictureRejected`."""
    if not data:
        raise PictureRejected("The file is empty.", field=field)
    refused = PictureRejected("This file is not a PNG, JPEG, GIF or WebP picture.", field=field)
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_many_pixels(max_pixels, field) from exc
    except _UNDECODABLE as exc:
        raise refused from exc
    width, height = image.size
    if width < 1 or height < 1:
        raise refused
    if width * height > max_pixels:
        raise _too_many_pixels(max_pixels, field)
    try:
        if image.format == "JPEG":
            # A JPEG decodes at 1/2, 1/4 or 1/8 scale when asked: the smallest
            # one still twice the stored side in both directions saves memory.
            image.draft(None, (2 * size, 2 * size))
        image.seek(0)
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_many_pixels(max_pixels, field) from exc
    except _UNDECODABLE as exc:
        raise refused from exc
    return image


def _too_many_pixels(max_pixels: int, field: str) -> PictureRejected:
    return PictureRejected(f"This picture is too large: at most {max_pixels:,} pixels, please.",
                           field=field)


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
