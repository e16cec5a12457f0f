"""Pure JPEG compression core: bytes in, bytes and a result record out. No AWS imports here.

The steps of :func:`compress`:

1. Check the content really is a JPEG (``FF D8 FF``); otherwise name what it is.
2. Read the marker structure without decoding (:mod:`image_compressor.jpegfile`): frame size, precision,
   components, coding process, end of image. Pixel bombs, truncated headers and unsupported variants fail here,
   before a single pixel is decoded.
3. Decode with Pillow (DCT-domain downscaling via ``draft`` when ``max_dimension`` asks for a smaller image),
   resample to the exact size, bring the pixels to a JPEG mode (CMYK through its ICC profile to sRGB) and apply the
   EXIF orientation.
4. Pick the quality: with ``target_ssim`` the lowest quality whose output reaches that luma SSIM, found on a tile
   sample (:mod:`image_compressor.search`); else the fixed ``quality``.
5. Encode once with the chosen encoder (:mod:`image_compressor.encoders`; by default jpegli: progressive,
   optimal Huffman tables, in one pass), with the ICC profile and only the metadata the options
   keep.
6. Pick the output: the re-encoded image, or the original's own compressed data with metadata removed losslessly,
   or the untouched original (``kept-original``), so the output is never bigger than the input and private
   metadata (GPS) never survives by default. See ``docs/compression.md`` for the exact rules.
"""

from __future__ import annotations

import io
import re
import time
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageCms, UnidentifiedImageError

from image_compressor import jpegfile, metadata, search, sniff
from image_compressor.encoders import EncodeParams, JpegEncoder, PillowEncoder, encoder_for
from image_compressor.jpegfile import JpegLayout, JpegStructureError
from image_compressor.result import Result, Status
from image_compressor.settings import CompressionOptions

# EncodeParams, JpegEncoder and PillowEncoder live in image_compressor.encoders; they are re-exported here.
__all__ = [
    "DEFAULT_ENCODER",
    "Compressed",
    "EncodeParams",
    "JpegEncoder",
    "PillowEncoder",
    "compress",
    "normalize_mode",
]

# Reducing gap for Image.resize: shrink by whole factors first while the image stays 3x the target, then
# resample with Lanczos. Visually the same as a full Lanczos resample, several times faster on big reductions.
_REDUCING_GAP = 3.0
_XMP_ORIENTATION = re.compile(rb'(tiff:Orientation(?:="|>))[1-8]')


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


def _encoder(name: str) -> JpegEncoder:
    """Return the shared encoder instance for an ``encoder`` option value (built on first use)."""
    encoder = _ENCODERS.get(name)
    if encoder is None:
        encoder = _ENCODERS[name] = encoder_for(name)
    return encoder


_ENCODERS: dict[str, JpegEncoder] = {}
#: The encoder ``compress`` uses with default options (``CompressionOptions().encoder``).
DEFAULT_ENCODER: JpegEncoder = _encoder(CompressionOptions().encoder)


class _EncodeError(Exception):
    """Internal: the encoder (not the input) failed; the cause is chained."""


def compress(
    data: bytes,
    options: CompressionOptions | None = None,
    *,
    encoder: JpegEncoder | None = None,
) -> Compressed:
    """Compress one JPEG: orient, optionally downscale, strip private metadata, re-encode; never return more bytes.

    Parameters
    ----------
    data : bytes
        The whole input object.
    options : CompressionOptions | None
        How to compress; ``None`` means ``CompressionOptions()`` (jpegli, quality 78, raised up to 95
        where needed for luma SSIM 0.95, progressive, metadata stripped except the ICC profile, 50 MP cap).
    encoder : JpegEncoder | None
        Encoder for the quality search and the re-encode; ``None`` uses the one ``options.encoder`` names.

    Returns
    -------
    Compressed
        ``compressed`` with the new bytes (re-encoded, or the original's compressed data with metadata removed
        losslessly, whichever is smaller and allowed); ``kept-original`` with the input bytes unchanged when
        nothing smaller can be written and the input carries nothing that must be removed; or ``failed`` with
        ``data=None`` and a reason naming the problem (not a JPEG, empty, truncated, corrupt, unsupported, too
        many pixels). Bad input never raises.
    """
    options = options or CompressionOptions()
    encoder = encoder or _encoder(options.encoder)
    start = time.perf_counter()
    size = len(data)

    def failed(reason: str, width: int = 0, height: int = 0) -> Compressed:
        return Compressed(Result(Status.FAILED, size, 0, width, height, 0, _ms(start), reason), None)

    if not sniff.is_jpeg(data):
        return failed(sniff.not_jpeg_reason(data))
    try:
        layout = jpegfile.parse(data)
    except JpegStructureError as exc:
        return failed(f"{exc}; upload the complete, undamaged file again")
    width, height = layout.width, layout.height
    unsupported = layout.unsupported()
    if unsupported:
        return failed(unsupported, width, height)
    if layout.end is None:
        # Decided from the structure, not left to the decoder: whether libjpeg notices a missing end-of-image marker
        # depends on how many bytes of look-ahead the last entropy-coded bits leave, so the same kind of cut file
        # would sometimes fail and sometimes compress.
        return failed(
            f"truncated JPEG: no end-of-image marker after the image data ({size} bytes), so the file was cut short; "
            "upload the complete file again",
            width,
            height,
        )
    if layout.scans > options.max_scans:
        return failed(
            f"too many scans: the file has {layout.scans} progressive scans, over the limit of {options.max_scans} "
            "(MAX_SCANS); each scan makes the decoder go over the whole image again. Export it again as a baseline "
            "or ordinary progressive JPEG, or raise MAX_SCANS",
            width,
            height,
        )
    if layout.pixels > options.max_pixels:
        return failed(
            f"too many pixels: the header declares {width}x{height} = {layout.pixels / 1e6:.1f} MP, over the "
            f"{options.max_pixels / 1e6:.1f} MP limit (MAX_PIXELS); downscale the image before uploading "
            "or raise MAX_PIXELS",
            width,
            height,
        )

    meta = metadata.collect(data, layout)
    orientation = meta.orientation
    target = _target_size((width, height), options.max_dimension)
    try:
        encoded, out_size, quality = _reencode(data, meta, target, options, encoder)
    except _EncodeError as exc:
        cause = exc.__cause__
        return failed(
            f"the JPEG encoder ({encoder.name}) failed: {type(cause).__name__}: {cause}; "
            "keep the original and report the file",
            width,
            height,
        )
    except MemoryError:
        return failed(
            f"out of memory decoding {width}x{height} pixels; give the function more memory or lower MAX_PIXELS",
            width,
            height,
        )
    except Exception as exc:  # noqa: BLE001 - any decoder error on bad input must become a failed result
        return failed(_decode_reason(exc), width, height)

    # Choose the output. Re-encoding is required to apply orientation or downscaling; the lossless copy (original
    # compressed data, metadata policy applied) is the fallback that keeps the output from growing.
    must_reencode = orientation != 1 or target is not None
    if must_reencode and len(encoded) < size:
        return _done(Status.COMPRESSED, size, encoded, out_size, quality, start)
    shown = (height, width) if orientation >= 5 else (width, height)
    stripped = _lossless_copy(data, layout, meta, options)  # None when nothing needs removing
    if stripped is not None and (must_reencode or len(stripped) <= len(encoded)):
        return _done(Status.COMPRESSED, size, stripped, shown, 0, start)
    if len(encoded) < size:
        return _done(Status.COMPRESSED, size, encoded, out_size, quality, start)
    what = "downscaling and re-encoding" if target is not None else "re-encoding"
    reason = f"{what} would not make it smaller ({size} -> {len(encoded)} bytes)"
    return _done(Status.KEPT_ORIGINAL, size, data, shown, 0, start, reason)


def _done(
    status: Status,
    size: int,
    out: bytes,
    dims: tuple[int, int],
    quality: int,
    start: float,
    reason: str | None = None,
) -> Compressed:
    result = Result(status, size, len(out), dims[0], dims[1], quality, _ms(start), reason)
    return Compressed(result, out)


def _reencode(
    data: bytes,
    meta: metadata.SourceMetadata,
    target: tuple[int, int] | None,
    options: CompressionOptions,
    encoder: JpegEncoder,
) -> tuple[bytes, tuple[int, int], int]:
    """Decode, resize, normalise, orient, pick the quality and encode; return the JPEG, its size and the quality."""
    img = Image.open(io.BytesIO(data), formats=["JPEG"])
    try:
        if target is not None:
            img.draft(img.mode, target)  # DCT scaling by 1/2, 1/4 or 1/8 while decoding; never below target
        img.load()
        icc = meta.icc_profile  # our own reader: Pillow drops a profile stored after SOF
        dpi = _dpi(img.info.get("dpi"))
        pixels: Image.Image = img
        if target is not None and pixels.size != target:
            pixels = pixels.resize(target, Image.Resampling.LANCZOS, reducing_gap=_REDUCING_GAP)
        if pixels is not img:
            img.close()  # free the full-size decode as soon as a smaller copy exists
        pixels, icc = normalize_mode(pixels, icc)
        if pixels is not img:
            img.close()
        transpose = metadata.TRANSPOSE_FOR_ORIENTATION[meta.orientation]
        if transpose is not None:
            pixels = pixels.transpose(transpose)
            img.close()
        quality = _quality(pixels, options, encoder)
        params = EncodeParams(
            quality=quality,
            progressive=options.progressive,
            optimize=options.optimize,
            icc_profile=icc,
            dpi=dpi,
            release_pixels=True,
            **(_kept_metadata(meta, options, pixels.size) if options.keep_metadata else {}),
        )
        size = pixels.size
        try:
            return encoder.encode(pixels, params), size, quality
        except Exception as exc:
            raise _EncodeError from exc
    finally:
        img.close()


def _quality(pixels: Image.Image, options: CompressionOptions, encoder: JpegEncoder) -> int:
    """Return ``options.quality``, or with a ``target_ssim`` the quality the search on a sample picks."""
    if options.target_ssim is None:
        return options.quality

    def encode_sample(image: Image.Image, quality: int) -> bytes:
        # Sequential, no metadata: the same pixels as the final encode, without the lossless pass's cost.
        return encoder.encode(image, EncodeParams(quality=quality, progressive=False, optimize=False))

    try:
        found = search.choose_quality(pixels, encode_sample, options.target_ssim, options.min_quality, options.quality)
    except Exception as exc:
        raise _EncodeError from exc
    return found.quality


def _kept_metadata(
    meta: metadata.SourceMetadata, options: CompressionOptions, size: tuple[int, int]
) -> dict[str, bytes | None]:
    """EXIF (orientation 1, no thumbnail, GPS only with keep_gps), XMP, comment and IPTC for the re-encode."""
    keep_gps = _keep_gps(options)
    exif = None
    if meta.exif is not None:
        exif = metadata.rewrite_exif(meta.exif, orientation=1, keep_gps=keep_gps, size=size)
    xmp = meta.xmp
    if xmp is not None:
        if not keep_gps and metadata.xmp_mentions_gps(xmp):
            xmp = None
        else:
            xmp = _XMP_ORIENTATION.sub(rb"\g<1>1", xmp)
            if len(xmp) > 65504:
                xmp = None
    return {"exif": exif, "xmp": xmp, "comment": meta.comment, "extra_segments": meta.iptc or b""}


def _keep_gps(options: CompressionOptions) -> bool:
    return bool(options.keep_metadata and getattr(options, "keep_gps", False))


def _lossless_copy(
    data: bytes, layout: JpegLayout, meta: metadata.SourceMetadata, options: CompressionOptions
) -> bytes | None:
    """Return the original with the metadata policy applied losslessly, or None when there is nothing to remove."""
    for keep_metadata in (options.keep_metadata, False) if options.keep_metadata else (False,):
        edit = metadata.strip_edit(
            data, layout, meta, keep_metadata=keep_metadata, keep_gps=keep_metadata and _keep_gps(options)
        )
        out = jpegfile.rebuild(data, layout, edit)
        if out == data:
            return None
        if len(out) < len(data):
            return out
    return None


def normalize_mode(image: Image.Image, icc_profile: bytes | None) -> tuple[Image.Image, bytes | None]:
    """Bring an image to a mode JPEG stores (``L`` or ``RGB``) and return the ICC profile that still fits it.

    Parameters
    ----------
    image : Image.Image
        Decoded pixels in any Pillow mode.
    icc_profile : bytes | None
        The source's ICC profile.

    Returns
    -------
    tuple[Image.Image, bytes | None]
        ``L`` and ``RGB`` images come back as they are. ``CMYK`` (including Adobe/Photoshop inverted CMYK and
        YCCK, which the decoder already turned into plain CMYK) is converted to sRGB through its embedded CMYK
        profile when there is a usable one, else with Pillow's plain formula; the result carries no profile
        (untagged means sRGB). Images with alpha (``RGBA``, ``LA``, ``PA``, palette with transparency) are
        flattened onto white; palette and 1-bit images become ``RGB``/``L``; 16/32-bit and float grey become
        8-bit ``L``. A profile whose colour space does not match the output mode is dropped.
    """
    mode = image.mode
    if mode == "CMYK":
        return _cmyk_to_srgb(image, icc_profile), None
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "PA":
        image = image.convert("RGBA")
    elif mode == "1":
        image = image.convert("L")
    elif mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        image = image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    elif mode in ("I", "F"):
        image = image.convert("L")
    elif mode in ("RGBX", "YCbCr", "LAB", "HSV"):
        image = image.convert("RGB")
    elif mode == "La":
        image = image.convert("LA")
    elif mode in ("RGBa",):
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        base = image.mode[:-1]
        flat = Image.new(base, image.size, 255 if base == "L" else (255, 255, 255))
        flat.paste(image.convert(base), mask=image.getchannel("A"))
        image = flat
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    return image, _matching_profile(icc_profile, image.mode)


def _matching_profile(icc_profile: bytes | None, mode: str) -> bytes | None:
    """Return the profile when its colour space (ICC header bytes 16-19) fits ``mode``, else None."""
    if not icc_profile or len(icc_profile) < 128:
        return None
    space = icc_profile[16:20]
    return icc_profile if (mode, space) in {("RGB", b"RGB "), ("L", b"GRAY")} else None


@lru_cache(maxsize=1)
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _cmyk_to_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """Convert CMYK to sRGB through the embedded CMYK profile when usable, else Pillow's plain conversion."""
    if icc_profile and icc_profile[16:20] == b"CMYK":
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
            converted = ImageCms.profileToProfile(
                image,
                source,
                _srgb_profile(),
                renderingIntent=ImageCms.Intent.PERCEPTUAL,
                outputMode="RGB",
            )
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            converted = None
        if isinstance(converted, Image.Image):
            return converted
    return image.convert("RGB")


def _target_size(size: tuple[int, int], max_dimension: int | None) -> tuple[int, int] | None:
    """Return the downscaled size (longest side ``max_dimension``, aspect kept), or None when no downscale."""
    width, height = size
    if not max_dimension or max(width, height) <= max_dimension:
        return None
    scale = max_dimension / max(width, height)
    if width >= height:
        return max_dimension, max(1, round(height * scale))
    return max(1, round(width * scale)), max_dimension


def _dpi(value: object) -> tuple[int, int] | None:
    """Return a usable (x, y) density from Pillow's ``info['dpi']``, or None."""
    if not isinstance(value, tuple) or len(value) != 2:
        return None
    try:
        x, y = (round(float(v)) for v in value)
    except (TypeError, ValueError, OverflowError):
        return None
    return (x, y) if 0 < x < 65536 and 0 < y < 65536 else None


def _decode_reason(exc: Exception) -> str:
    """Turn a Pillow/libjpeg error into a failure reason that says what is wrong and what to do next."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, Image.DecompressionBombError):
        return f"too many pixels for the decoder ({text}); downscale the image before uploading"
    if "truncated" in text:
        return f"truncated JPEG: the image data ends early ({text}); upload the complete file again"
    if isinstance(exc, UnidentifiedImageError):
        text = "the decoder cannot read its header"
    return f"corrupt JPEG: the decoder failed ({text}); export the image again and re-upload it"


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
