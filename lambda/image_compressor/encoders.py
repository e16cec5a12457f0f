"""JPEG encoders for :func:`image_compressor.core.compress`: jpegli (the default) and Pillow.

An encoder turns an ``L`` or ``RGB`` image plus :class:`EncodeParams` (quality, progressive, optimize and the
metadata to write) into JPEG bytes; :class:`JpegEncoder` is the protocol, and :func:`encoder_for` maps the
``encoder`` option (``JPEG_ENCODER``) to an instance.

- :class:`JpegliEncoder` (``jpegli``, the default): Google's jpegli (package ``ajpegli``, which exposes jpegli's
  progressive level, subsampling and Huffman optimisation) writes a progressive JPEG with optimal Huffman tables in
  one pass; our code splices the kept metadata segments in after SOI (jpegli writes none). About 9 % fewer bytes
  than sharp's mozjpeg preset at the same SSIMULACRA2, in a quarter of the time that jpegli + mozjpeg's lossless
  pass took for the same bytes (``bench/FINDINGS.md``).
- :class:`PillowEncoder` (``pillow``): Pillow's libjpeg-turbo, progressive and optimised.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Protocol

from PIL import Image

from image_compressor.jpegfile import SOI, segment_bytes
from image_compressor.settings import ENCODERS as ENCODER_NAMES

_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
_ICC_HEADER = b"ICC_PROFILE\x00"
#: ICC payload bytes per APP2 segment: 65533 minus the 14-byte header (name, sequence number, count).
_ICC_CHUNK = 65533 - len(_ICC_HEADER) - 2
#: Bytes of pixels copied at a time when packing them for jpegli.
_STRIP_BYTES = 4 << 20
#: jpegli's progressive scan script: level 2 is its default (DC, then AC bands with successive approximation).
_PROGRESSIVE_LEVEL = 2


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
    release_pixels : bool
        The caller has no further use for the image: an encoder that copies the pixels first may close it (free
        its memory) before encoding. The core sets it on the final encode only.
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
    release_pixels: bool = False


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


class JpegliEncoder:
    """Google's jpegli (package ``ajpegli``) writes the whole JPEG: progressive, optimal Huffman tables, 4:2:0.

    ``RGB`` images are encoded with 4:2:0 chroma, ``L`` images as one grey component. jpegli's adaptive
    quantisation (coarser steps where its butteraugli model hides the error) is off by default: with it off the
    same bytes score higher by SSIMULACRA2 on the corpus, the star field most of all (``bench/FINDINGS.md``).

    With ``params.progressive`` jpegli writes its own progressive scan script (level 2) with optimised Huffman
    tables in the same pass; without it, a sequential JPEG whose Huffman tables are optimised when
    ``params.optimize`` says so. The pixels are the same either way: only the entropy coding differs.

    jpegli writes no APPn segments; ours are spliced in after SOI, in this order: JFIF (with ``params.dpi``), EXIF,
    XMP, the ICC profile (split into as many APP2 chunks as it needs), IPTC (``params.extra_segments``), comment.

    Parameters
    ----------
    adaptive_quantization : bool
        Turn jpegli's adaptive quantisation on (the bench's research rows compare both).

    Raises
    ------
    RuntimeError
        At construction, when ``ajpegli`` is not installed.
    """

    name = "jpegli"

    def __init__(self, *, adaptive_quantization: bool = False) -> None:
        self.adaptive_quantization = adaptive_quantization
        try:
            import ajpegli
            import numpy
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise RuntimeError(
                "the jpegli encoder needs the packages ajpegli and numpy (pip install ajpegli==1.0.0); "
                "or choose JPEG_ENCODER=pillow"
            ) from exc
        self._jpegli = ajpegli.encode
        self._numpy = numpy

    def encode(self, image: Image.Image, params: EncodeParams) -> bytes:
        """Encode ``image`` (``L`` or ``RGB``) at ``params.quality`` with the metadata in ``params``."""
        if image.mode not in ("L", "RGB"):
            raise ValueError(f"the jpegli encoder takes L or RGB images, got mode {image.mode}")
        channels = 3 if image.mode == "RGB" else 1
        shape = (image.height, image.width, channels) if channels == 3 else (image.height, image.width)
        pixels = self._numpy.frombuffer(packed_pixels(image), dtype=self._numpy.uint8).reshape(shape)
        if params.release_pixels:
            image.close()  # the packed copy is all jpegli needs: at 24 MP this frees Pillow's 96 MB before encoding
        data = self._jpegli(
            pixels,
            quality=params.quality,
            progressive=_PROGRESSIVE_LEVEL if params.progressive else 0,
            optimize=params.progressive or params.optimize,
            subsampling="420" if channels == 3 else "gray",
            adaptive_quantization=self.adaptive_quantization,
        )
        del pixels  # a 24 MP image is 72 MB of pixels; free it before the splice copies the output
        return splice_segments(data, metadata_segments(params))


def packed_pixels(image: Image.Image, strip_bytes: int = _STRIP_BYTES) -> bytearray:
    """Return the pixels of an ``L`` or ``RGB`` image as packed bytes (one byte per channel, row after row).

    Same bytes as ``image.tobytes()``, written a strip of rows at a time into one buffer: ``tobytes`` joins its
    chunks at the end, so for a moment it holds the pixels twice (another 72 MB at 24 MP). Each strip goes through
    Pillow's raw encoder pointed at that band of the image (``setimage`` with extents, as ``ImageFile._save`` does
    for tiles), so no cropped copy is made: one pass over the pixels, about as fast as ``tobytes``.
    """
    image.load()
    width, height = image.size
    row = width * len(image.getbands())
    out = bytearray(row * height)
    view = memoryview(out)
    rows = max(1, strip_bytes // max(row, 1))
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        encoder = Image._getencoder(image.mode, "raw", (image.mode, 0, 1))
        encoder.setimage(image.im, (0, top, width, bottom))
        start, end = top * row, bottom * row
        while True:
            _, status, chunk = encoder.encode(end - start)
            view[start : start + len(chunk)] = chunk
            start += len(chunk)
            if status:
                break
        if status < 0 or start != end:
            raise RuntimeError(f"Pillow's raw encoder stopped with status {status} at byte {start} of {end}")
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
        return JpegliEncoder()
    if name == "pillow":
        return PillowEncoder()
    raise ValueError(f"unknown encoder {name!r}; use one of: {', '.join(ENCODER_NAMES)}")
