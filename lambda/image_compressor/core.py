"""Pure JPEG compression core: bytes in, bytes and a result record out. No AWS imports here."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

from PIL import Image, ImageOps

from image_compressor.result import Result, Status
from image_compressor.settings import CompressionOptions


@dataclass(frozen=True, slots=True)
class Compressed:
    """Output of :func:`compress`.

    Attributes
    ----------
    result : Result
        The result record.
    data : bytes | None
        Bytes for the destination: the new JPEG (``compressed``), the unchanged input (``kept-original``),
        or ``None`` (``failed``).
    """

    result: Result
    data: bytes | None


def compress(data: bytes, options: CompressionOptions | None = None) -> Compressed:
    """Re-encode one JPEG with orientation applied and private metadata dropped (first cut; being refined).

    Parameters
    ----------
    data : bytes
        The whole input object.
    options : CompressionOptions | None
        How to compress; defaults to ``CompressionOptions()``.

    Returns
    -------
    Compressed
        The result record and the bytes for the destination (``None`` when the image failed).
    """
    options = options or CompressionOptions()
    start = time.perf_counter()
    size = len(data)

    def failed(reason: str) -> Compressed:
        return Compressed(Result(Status.FAILED, size, 0, 0, 0, 0, _ms(start), reason), None)

    if size == 0:
        return failed("empty object (0 bytes); upload a real JPEG file")
    if not data.startswith(b"\xff\xd8\xff"):
        return failed("not a JPEG: content does not start with the JPEG signature FF D8 FF; upload a JPEG file")
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as img:
            w, h = img.size
            if w * h > options.max_pixels:
                return failed(f"image has {w}x{h} pixels, more than the {options.max_pixels} pixel cap (MAX_PIXELS)")
            img.load()
            out_img = ImageOps.exif_transpose(img)
            if options.max_dimension and max(out_img.size) > options.max_dimension:
                out_img.thumbnail((options.max_dimension, options.max_dimension), Image.Resampling.LANCZOS)
            if out_img.mode not in ("L", "RGB"):
                out_img = out_img.convert("RGB")
            buf = io.BytesIO()
            out_img.save(
                buf,
                "JPEG",
                quality=options.quality,
                progressive=options.progressive,
                optimize=options.optimize,
                icc_profile=img.info.get("icc_profile"),
                comment=b"",
            )
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        return failed(f"cannot decode the JPEG ({exc}); the file is damaged or truncated, upload it again")
    out = buf.getvalue()
    ow, oh = out_img.size
    if len(out) >= size:
        reason = f"re-encoding would not make it smaller ({size} -> {len(out)} bytes)"
        return Compressed(Result(Status.KEPT_ORIGINAL, size, size, ow, oh, 0, _ms(start), reason), data)
    return Compressed(Result(Status.COMPRESSED, size, len(out), ow, oh, options.quality, _ms(start)), out)


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
