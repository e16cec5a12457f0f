"""Downscaled previews of JPEGs for the before/after view (no Streamlit here).

The figures on the page describe the full objects; only the pictures are made small, so a 50-megapixel photo does not
travel to the browser twice. Only JPEG is decoded (``formats=["JPEG"]``): whatever else sits in a bucket under a
``.jpg`` name (a PNG, a TIFF, a crafted file for another of Pillow's decoders) gets no preview, never a decoder run.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

#: Longest side of a preview, in pixels.
PREVIEW_SIDE = 1024
#: Side of the 1:1 detail crop, in pixels of the original.
DETAIL_SIDE = 320


@dataclass(frozen=True)
class Preview:
    """A browser-sized PNG/JPEG of an image plus the size of the full image it shows."""

    data: bytes
    width: int
    height: int
    full_width: int
    full_height: int


#: The only format previews decode.
FORMATS = ["JPEG"]


def _open(data: bytes, box: tuple[int, int] | None = None) -> Image.Image:
    image = Image.open(io.BytesIO(data), formats=FORMATS)
    if box is not None:
        image.draft("RGB", box)  # decode at 1/2, 1/4 or 1/8 scale when that is enough: fast for big photos
    image = ImageOps.exif_transpose(image)
    return image.convert("RGB")


def full_size(data: bytes) -> tuple[int, int] | None:
    """Return the displayed (orientation applied) width and height of ``data`` without decoding it, or ``None``."""
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as image:
            width, height = image.size
            orientation = image.getexif().get(0x0112, 1)
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def preview_pair(before: bytes, after: bytes | None, side: int = PREVIEW_SIDE) -> tuple[Preview, Preview | None]:
    """Return previews of ``before`` and ``after`` at the same pixel size, so they show at the same zoom.

    The before image is fitted into ``side`` x ``side``; the after image is resized to exactly that size (it may
    have been downscaled by the pipeline), so one pixel of either preview covers the same part of the scene.

    Raises
    ------
    ValueError
        When ``before`` is not a JPEG (previews decode nothing else) or cannot be decoded (e.g. a corrupt upload).
    """
    try:
        first = _open(before, (side, side))
    except UnidentifiedImageError as exc:
        raise ValueError("the original is not a JPEG (previews show JPEG images only)") from exc
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot decode the original image: {exc}") from exc
    full = full_size(before) or first.size
    first.thumbnail((side, side), Image.Resampling.LANCZOS)
    left = Preview(_png(first), first.width, first.height, full[0], full[1])
    if after is None:
        return left, None
    try:
        second = _open(after, (first.width, first.height))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ValueError(f"cannot decode the compressed image: {exc}") from exc
    full_after = full_size(after) or second.size
    second = second.resize(first.size, Image.Resampling.LANCZOS)
    return left, Preview(_png(second), second.width, second.height, full_after[0], full_after[1])


def detail_pair(before: bytes, after: bytes, side: int = DETAIL_SIDE) -> tuple[bytes, bytes]:
    """Return a 1:1 crop from the centre of ``before`` and the same part of ``after``, as PNGs of equal size.

    This shows compression artefacts that a fitted preview hides. When the pipeline downscaled the output, its crop
    is taken from the matching region and scaled to the same size.
    """
    first = _open(before)
    second = _open(after)
    w, h = first.size
    s = min(side, w, h)
    left, top = (w - s) // 2, (h - s) // 2
    box = (left, top, left + s, top + s)
    crop_a = first.crop(box)
    sx, sy = second.width / w, second.height / h
    crop_b = second.crop((round(box[0] * sx), round(box[1] * sy), round(box[2] * sx), round(box[3] * sy)))
    if crop_b.size != crop_a.size:
        crop_b = crop_b.resize(crop_a.size, Image.Resampling.NEAREST)
    return _png(crop_a), _png(crop_b)


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", optimize=False, compress_level=3)
    return buf.getvalue()
