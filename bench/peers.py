"""The encoders users would pick instead of ours, run side by side on the same pixels.

* ``mozjpeg`` - **sharp's mozjpeg preset**: libvips + mozjpeg (``pyvips`` with ``pyvips-binary``, whose libvips
  carries mozjpeg): trellis quantisation, overshoot deringing, optimised progressive scans, quantisation table 3,
  progressive, 4:2:0 at every quality (libvips would switch 4:2:0 off at Q >= 90; sharp's preset does not).
* ``imgproxy`` - **imgproxy's defaults**: libvips ``jpegsave`` with optimised Huffman tables, baseline, libvips'
  own chroma rule (4:2:0 below Q 90), no mozjpeg extras; imgproxy's default quality is 80.
* ``libjpeg-turbo`` - the baseline the bench always had: Pillow, no optimize, no progressive, 4:2:0.
* ``jpegli`` - jpegli alone (:func:`bench.encoders.jpegli`: sequential, 4:2:0, its standard Huffman tables).

Every encoder takes decoded ``RGB`` pixels and a quality and returns JPEG bytes without metadata. The libvips
pipeline timed against ``compress()`` (decode with libvips, encode with sharp's preset) is :func:`libvips_mozjpeg`.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from PIL import Image

from bench.encoders import jpegli

#: imgproxy's default ``IMGPROXY_QUALITY``.
IMGPROXY_QUALITY = 80

PeerEncoder = Callable[[Image.Image, int], bytes]


def _vips() -> object:
    try:
        import pyvips
    except ImportError as exc:  # pragma: no cover - dev dependency
        raise RuntimeError(
            "pyvips is not installed; run `make install` (pyvips and pyvips-binary are dev extras)"
        ) from exc
    return pyvips


def _vips_image(image: Image.Image) -> object:
    pyvips = _vips()
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return pyvips.Image.new_from_memory(rgb.tobytes(), rgb.width, rgb.height, 3, "uchar")  # type: ignore[attr-defined]


#: jpegsave arguments of sharp's ``jpeg({ mozjpeg: true })``.
MOZJPEG_PRESET: dict[str, object] = {
    "trellis_quant": True,
    "overshoot_deringing": True,
    "optimize_scans": True,
    "quant_table": 3,
    "interlace": True,
    "subsample_mode": "on",
    "optimize_coding": True,
    "keep": "none",
}
#: jpegsave arguments of imgproxy's defaults (no progressive, optimised Huffman tables, metadata stripped).
IMGPROXY_DEFAULTS: dict[str, object] = {"optimize_coding": True, "interlace": False, "keep": "none"}


def mozjpeg(image: Image.Image, quality: int) -> bytes:
    """Return sharp's mozjpeg preset output (libvips + mozjpeg) at ``quality``."""
    return bytes(_vips_image(image).jpegsave_buffer(Q=quality, **MOZJPEG_PRESET))  # type: ignore[attr-defined]


def imgproxy(image: Image.Image, quality: int) -> bytes:
    """Return imgproxy's default JPEG (libvips ``jpegsave``, optimised Huffman, baseline) at ``quality``."""
    return bytes(_vips_image(image).jpegsave_buffer(Q=quality, **IMGPROXY_DEFAULTS))  # type: ignore[attr-defined]


def libjpeg_turbo(image: Image.Image, quality: int) -> bytes:
    """Return the libjpeg-turbo baseline (Pillow: no optimize, no progressive, 4:2:0)."""
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


#: Peers compared at equal quality: name -> (encoder, description).
PEERS: dict[str, tuple[PeerEncoder, str]] = {
    "mozjpeg": (mozjpeg, "sharp's mozjpeg preset (libvips + mozjpeg: trellis, deringing, optimised scans, table 3)"),
    "imgproxy": (imgproxy, "imgproxy's defaults (libvips jpegsave, optimised Huffman, baseline)"),
    "libjpeg-turbo": (libjpeg_turbo, "libjpeg-turbo baseline (Pillow, no optimize, no progressive)"),
    "jpegli": (jpegli, "jpegli alone (sequential, 4:2:0, its standard Huffman tables)"),
}


def libvips_mozjpeg(data: bytes, quality: int = IMGPROXY_QUALITY) -> bytes:
    """Decode JPEG ``data`` with libvips and encode it with sharp's mozjpeg preset: the peer's whole pipeline.

    This is what sharp does for a JPEG in, JPEG out at ``quality`` (sharp's default is 80): libvips' sequential
    decode, then ``jpegsave`` with :data:`MOZJPEG_PRESET`.
    """
    pyvips = _vips()
    image = pyvips.Image.new_from_buffer(data, "", access="sequential")  # type: ignore[attr-defined]
    return bytes(image.jpegsave_buffer(Q=quality, **MOZJPEG_PRESET))
