"""JPEG encoders for :func:`image_compressor.core.compress`: jpegli + mozjpeg (the default) and Pillow.

An encoder turns an ``L`` or ``RGB`` image plus :class:`EncodeParams` (quality, progressive, optimize and the
metadata to write) into JPEG bytes; :class:`JpegEncoder` is the protocol, and :func:`encoder_for` maps the
``encoder`` option (``JPEG_ENCODER``) to an instance.

- :class:`JpegliMozEncoder` (``jpegli``, the default): Google's jpegli (package ``pyjpegli``) encodes the pixels,
  our code splices the kept metadata segments in after SOI (jpegli writes none), then mozjpeg's lossless pass
  (package ``mozjpeg-lossless-optimization``) rewrites the coding as progressive with optimal Huffman tables,
  copying every marker. About 15 % fewer bytes than libjpeg-turbo at the same luma SSIM (``bench/FINDINGS.md``).
  Grey images go through Pillow (jpegli takes RGB only) and then the same mozjpeg pass, so they stay grey.
- :class:`PillowEncoder` (``pillow``): Pillow's libjpeg-turbo, progressive and optimised; fastest.
- :class:`MozjpegLosslessEncoder`: Pillow, then the mozjpeg pass (pluggable, not selectable by option).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from PIL import Image

from image_compressor.jpegfile import SOI, segment_bytes
from image_compressor.settings import ENCODERS as ENCODER_NAMES

_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
_ICC_HEADER = b"ICC_PROFILE\x00"
#: ICC payload bytes per APP2 segment: 65533 minus the 14-byte header (name, sequence number, count).
_ICC_CHUNK = 65533 - len(_ICC_HEADER) - 2
#: Rows of pixels copied at a time when packing RGB for jpegli.
_STRIP_BYTES = 4 << 20


@dataclass(frozen=True, slots=True)
class EncodeParams:
    """Everything an encoder needs besides the pixels.

    Attributes
    ----------
    quality : int
        JPEG quality 1-95 (each encoder's own scale: jpegli's 80 is not libjpeg's 80).
    progressive : bool
        Write a progressive JPEG.
    optimize : bool
        Optimise the Huffman tables.
    icc_profile : bytes | None
        ICC profile to embed (matches the image's colour space), or ``None``.
    exif : bytes | None
        APP1 EXIF payload (``"Exif" 00 00`` + TIFF) to embed, or ``None``.
    xmp : bytes | None
        XMP packet to embed, or ``None``.
    comment : bytes | None
        COM segment payload, or ``None``.
    extra_segments : bytes
        Complete extra marker segments to write after the others (IPTC), or ``b""``.
    dpi : tuple[int, int] | None
        Pixel density for the JFIF header, or ``None``.
    """

    quality: int
    progressive: bool
    optimize: bool
    icc_profile: bytes | None = None
    exif: bytes | None = None
    xmp: bytes | None = None
    comment: bytes | None = None
    extra_segments: bytes = b""
    dpi: tuple[int, int] | None = None


class JpegEncoder(Protocol):
    """Turns an ``L`` or ``RGB`` image into JPEG bytes; plug another encoder into ``compress`` with this."""

    name: str

    def encode(self, image: Image.Image, params: EncodeParams) -> bytes:
        """Return the JPEG bytes of ``image`` encoded as ``params`` say, metadata included."""
        ...


class PillowEncoder:
    """Pillow's libjpeg-turbo, writing only the metadata passed in ``params``."""

    name = "pillow"

    def encode(self, image: Image.Image, params: EncodeParams) -> bytes:
        """Encode ``image`` with Pillow; no metadata from ``image.info`` leaks in (the comment is set explicitly)."""
        kwargs: dict[str, object] = {
            "quality": params.quality,
            "progressive": params.progressive,
            "optimize": params.optimize,
            # Pillow would otherwise copy image.info["comment"] into the output.
            "comment": params.comment or b"",
        }
        if params.icc_profile:
            kwargs["icc_profile"] = params.icc_profile
        if params.exif:
            kwargs["exif"] = params.exif
        if params.xmp:
            kwargs["xmp"] = params.xmp
        if params.extra_segments:
            kwargs["extra"] = params.extra_segments
        if params.dpi:
            kwargs["dpi"] = params.dpi
        buf = io.BytesIO()
        image.save(buf, "JPEG", **kwargs)
        return buf.getvalue()


def _mozjpeg() -> Callable[[bytes], bytes]:
    """Return mozjpeg's lossless optimiser set to copy every marker, or raise a clear error when it is missing."""
    try:
        import mozjpeg_lossless_optimization as moz
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "this encoder needs the package mozjpeg-lossless-optimization (pip install "
            "mozjpeg-lossless-optimization==1.3.2); or choose JPEG_ENCODER=pillow"
        ) from exc
    copy_all = moz.COPY_MARKERS.ALL

    def optimize(data: bytes) -> bytes:
        return moz.optimize(data, copy=copy_all)

    return optimize


class MozjpegLosslessEncoder(PillowEncoder):
    """Pillow encode, then mozjpeg's lossless re-optimisation (``mozjpeg-lossless-optimization`` package).

    Same pixels and metadata as :class:`PillowEncoder` (every marker is copied), a few per cent fewer bytes, at
    roughly the cost of a second encode.
    """

    name = "pillow+mozjpeg-lossless"

    def __init__(self) -> None:
        self._optimize = _mozjpeg()

    def encode(self, image: Image.Image, params: EncodeParams) -> bytes:
        """Encode with Pillow, then losslessly re-optimise the Huffman coding and progression with mozjpeg."""
        return self._optimize(super().encode(image, params))


class JpegliMozEncoder:
    """jpegli encode, our metadata segments spliced in, then mozjpeg's lossless pass (progressive, optimal Huffman).

    ``RGB`` images are encoded by jpegli (4:2:0, its adaptive quantisation). ``L`` images are encoded by Pillow
    (jpegli's Python binding takes packed RGB only, and grey must stay one component). With ``params.progressive``
    the mozjpeg pass runs, copying every marker: the output is progressive with optimised Huffman tables, whatever
    ``params.optimize`` says. Without it the output is the sequential encoder output as is (jpegli: baseline with
    its standard Huffman tables; Pillow: ``params.optimize`` applies). The pixels are the same either way.

    Written metadata, in this order after SOI: JFIF (with ``params.dpi``), EXIF, XMP, the ICC profile (split into
    as many APP2 chunks as it needs), IPTC (``params.extra_segments``), comment.

    Raises
    ------
    RuntimeError
        At construction, when ``pyjpegli`` or ``mozjpeg-lossless-optimization`` is not installed.
    """

    name = "jpegli"

    def __init__(self) -> None:
        try:
            import pyjpegli
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise RuntimeError(
                "the jpegli encoder needs the package pyjpegli (pip install pyjpegli==0.3.2); "
                "or choose JPEG_ENCODER=pillow"
            ) from exc
        self._jpegli = pyjpegli.encode
        self._optimize = _mozjpeg()
        self._grey = PillowEncoder()

    def encode(self, image: Image.Image, params: EncodeParams) -> bytes:
        """Encode ``image`` (``L`` or ``RGB``) at ``params.quality`` with the metadata in ``params``."""
        if image.mode == "L":
            if not params.progressive:
                return self._grey.encode(image, params)
            # mozjpeg redoes the Huffman coding and progression, so Pillow writes the quick sequential form.
            return self._optimize(self._grey.encode(image, replace(params, progressive=False, optimize=False)))
        if image.mode != "RGB":
            raise ValueError(f"the jpegli encoder takes L or RGB images, got mode {image.mode}")
        pixels = packed_rgb(image)
        data = self._jpegli(pixels, image.width, image.height, params.quality)
        del pixels  # a 24 MP image is 72 MB of bytes; free it before the mozjpeg pass
        data = splice_segments(data, metadata_segments(params))
        return self._optimize(data) if params.progressive else data


def packed_rgb(image: Image.Image, strip_bytes: int = _STRIP_BYTES) -> bytearray:
    """Return the pixels of an ``RGB`` image as packed bytes (R, G, B per pixel, row after row).

    Same bytes as ``image.tobytes()``, copied a strip of rows at a time into one buffer: ``tobytes`` joins its
    chunks at the end, so for a moment it holds the pixels twice (another 72 MB at 24 MP).
    """
    width, height = image.size
    row = width * 3
    out = bytearray(row * height)
    rows = max(1, strip_bytes // max(row, 1))
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        out[top * row : bottom * row] = image.crop((0, top, width, bottom)).tobytes()
    return out


def metadata_segments(params: EncodeParams) -> bytes:
    """Return the complete APPn/COM marker segments that ``params`` asks for, in the usual file order.

    JFIF APP0 (density from ``params.dpi``, else 1:1 aspect), APP1 EXIF, APP1 XMP, APP2 ICC chunks
    (``ICC_PROFILE`` with sequence numbers, 65519 profile bytes each), ``params.extra_segments`` as given, COM.

    Raises
    ------
    ValueError
        When a payload does not fit one segment (EXIF, XMP or comment over 64 KB) or the profile needs more than
        255 chunks.
    """
    if params.dpi:
        units, x_density, y_density = 1, *params.dpi
    else:
        units, x_density, y_density = 0, 1, 1
    jfif = b"JFIF\x00\x01\x01" + bytes([units]) + x_density.to_bytes(2, "big") + y_density.to_bytes(2, "big")
    parts = [segment_bytes(0xE0, jfif + b"\x00\x00")]
    if params.exif:
        parts.append(segment_bytes(0xE1, params.exif))
    if params.xmp:
        parts.append(segment_bytes(0xE1, _XMP_HEADER + params.xmp))
    if params.icc_profile:
        chunks = [params.icc_profile[i : i + _ICC_CHUNK] for i in range(0, len(params.icc_profile), _ICC_CHUNK)]
        if len(chunks) > 255:
            raise ValueError(f"an ICC profile of {len(params.icc_profile)} bytes does not fit in 255 APP2 segments")
        for number, chunk in enumerate(chunks, start=1):
            parts.append(segment_bytes(0xE2, _ICC_HEADER + bytes([number, len(chunks)]) + chunk))
    if params.extra_segments:
        parts.append(params.extra_segments)
    if params.comment:
        parts.append(segment_bytes(0xFE, params.comment))
    return b"".join(parts)


def splice_segments(jpeg: bytes, segments: bytes) -> bytes:
    """Return ``jpeg`` with ``segments`` (complete marker segments) inserted right after its SOI marker.

    Raises
    ------
    ValueError
        When ``jpeg`` does not start with SOI.
    """
    if not jpeg.startswith(SOI):
        raise ValueError("the encoder's output does not start with the JPEG start-of-image marker")
    return SOI + segments + jpeg[len(SOI) :]


def encoder_for(name: str) -> JpegEncoder:
    """Return a new encoder for an ``encoder`` option value (``jpegli`` or ``pillow``).

    Raises
    ------
    ValueError
        When ``name`` is not one of :data:`ENCODER_NAMES`.
    RuntimeError
        When the encoder's package is not installed.
    """
    if name == "jpegli":
        return JpegliMozEncoder()
    if name == "pillow":
        return PillowEncoder()
    raise ValueError(f"unknown encoder {name!r}; use one of: {', '.join(ENCODER_NAMES)}")
