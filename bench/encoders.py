"""Encoders the benchmark compares against: the libjpeg-turbo baseline, the seed's method and candidate encoders.

Every function takes decoded pixels (``L`` or ``RGB``) and a quality and returns JPEG bytes without metadata.
The candidates are what the encoder research (``bench/FINDINGS.md``) tried; the report re-measures them each run
so the choice of the core's default encoder stays backed by numbers from the same run.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from PIL import Image

#: Quality of the seed's method (the project's original Lambda): Pillow's defaults at quality 20.
SEED_QUALITY = 20

# Quantisation tables tuned for MS-SSIM, as shipped by mozjpeg (its ``-quant-table 2``), natural (row) order.
# Used by the "pillow-ssim-tables" candidates through Pillow's ``qtables`` (scaled by quality like libjpeg's own).
_MSSSIM_LUMA = (
    *(12, 17, 20, 21, 30, 34, 56, 63),
    *(18, 20, 20, 26, 28, 51, 61, 55),
    *(19, 20, 21, 26, 33, 58, 69, 55),
    *(26, 26, 26, 30, 46, 87, 86, 66),
    *(31, 33, 36, 40, 46, 96, 100, 73),
    *(40, 35, 46, 62, 81, 100, 111, 91),
    *(46, 66, 76, 86, 102, 121, 120, 101),
    *(68, 90, 90, 96, 113, 102, 105, 103),
)
_MSSSIM_CHROMA = (
    *(8, 12, 15, 15, 86, 96, 96, 98),
    *(13, 13, 15, 26, 90, 96, 99, 98),
    *(12, 15, 18, 96, 99, 99, 99, 99),
    *(17, 16, 90, 96, 99, 99, 99, 99),
    *(96, 96, 99, 99, 99, 99, 99, 99),
    *([99] * 24),
)
MSSSIM_QTABLES = [list(_MSSSIM_LUMA), list(_MSSSIM_CHROMA)]

Encoder = Callable[[Image.Image, int], bytes]


def _pillow(image: Image.Image, quality: int, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality, **kwargs)
    return buf.getvalue()


def baseline(image: Image.Image, quality: int) -> bytes:
    """Return the baseline JPEG: libjpeg-turbo through Pillow, no optimize, no progressive, Pillow's 4:2:0."""
    return _pillow(image, quality)


def seed(image: Image.Image) -> bytes:
    """Return the seed's output: Pillow's default settings at quality 20 (no metadata, no orientation handling)."""
    return _pillow(image, SEED_QUALITY)


def pillow_optprog(image: Image.Image, quality: int) -> bytes:
    """Return Pillow's JPEG with optimised Huffman tables and progressive scans (4:2:0)."""
    return _pillow(image, quality, optimize=True, progressive=True)


def pillow_444_optprog(image: Image.Image, quality: int) -> bytes:
    """Return Pillow's optimised progressive JPEG without chroma subsampling (4:4:4)."""
    return _pillow(image, quality, optimize=True, progressive=True, subsampling=0)


def _mozjpeg_lossless(data: bytes) -> bytes:
    import mozjpeg_lossless_optimization as mozjpeg

    return mozjpeg.optimize(data, copy=mozjpeg.COPY_MARKERS.ALL)


def pillow_mozjpeg(image: Image.Image, quality: int) -> bytes:
    """Return the baseline JPEG after mozjpeg's lossless optimisation (optimal Huffman, progressive scan search)."""
    return _mozjpeg_lossless(baseline(image, quality))


def pillow_ssim_tables_optprog(image: Image.Image, quality: int) -> bytes:
    """Return Pillow's optimised progressive JPEG with mozjpeg's MS-SSIM-tuned quantisation tables."""
    return _pillow(image, quality, qtables=MSSSIM_QTABLES, optimize=True, progressive=True)


def pillow_ssim_tables_mozjpeg(image: Image.Image, quality: int) -> bytes:
    """Return Pillow's JPEG with MS-SSIM-tuned tables, then mozjpeg's lossless optimisation."""
    return _mozjpeg_lossless(_pillow(image, quality, qtables=MSSSIM_QTABLES))


def _ajpegli(image: Image.Image, quality: int, **kwargs: object) -> bytes:
    import ajpegli
    import numpy

    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return ajpegli.encode(numpy.asarray(rgb), quality=quality, subsampling="420", **kwargs)


def jpegli(image: Image.Image, quality: int) -> bytes:
    """Return jpegli's JPEG alone: sequential, 4:2:0, adaptive quantisation, standard Huffman tables (no metadata).

    The bytes ``pyjpegli.encode`` wrote (jpegli's defaults, sequential); grey images are encoded as RGB.
    """
    return _ajpegli(image, quality, progressive=0, optimize=False, adaptive_quantization=True)


def jpegli_progressive(image: Image.Image, quality: int, *, adaptive_quantization: bool = True) -> bytes:
    """Return jpegli's own progressive JPEG (level 2, optimised Huffman tables, 4:2:0) in one pass."""
    return _ajpegli(image, quality, progressive=2, optimize=True, adaptive_quantization=adaptive_quantization)


def jpegli_progressive_flat(image: Image.Image, quality: int) -> bytes:
    """Return :func:`jpegli_progressive` without adaptive quantisation (the core's default encoder)."""
    return jpegli_progressive(image, quality, adaptive_quantization=False)


def jpegli_mozjpeg(image: Image.Image, quality: int) -> bytes:
    """Return jpegli's JPEG after mozjpeg's lossless optimisation."""
    return _mozjpeg_lossless(jpegli(image, quality))


#: Candidates for the report's encoder table: name to (encoder, description).
CANDIDATES: dict[str, tuple[Encoder, str]] = {
    "pillow-optprog": (pillow_optprog, "Pillow optimize+progressive, 4:2:0"),
    "pillow-optprog-444": (pillow_444_optprog, "Pillow optimize+progressive, 4:4:4"),
    "pillow+mozjpeg": (pillow_mozjpeg, "Pillow baseline, then mozjpeg lossless optimisation"),
    "pillow-ssimtables-optprog": (pillow_ssim_tables_optprog, "Pillow with mozjpeg's MS-SSIM tables, opt+prog"),
    "pillow-ssimtables+mozjpeg": (pillow_ssim_tables_mozjpeg, "Pillow with MS-SSIM tables, then mozjpeg lossless"),
    "jpegli": (jpegli, "jpegli sequential, 4:2:0"),
    "jpegli+mozjpeg": (jpegli_mozjpeg, "jpegli sequential, then mozjpeg lossless optimisation (the earlier default)"),
    "jpegli-progressive": (jpegli_progressive, "jpegli progressive level 2, optimised Huffman, adaptive quantisation"),
    "jpegli-progressive-flat": (jpegli_progressive_flat, "the same without adaptive quantisation (the default)"),
}

#: The subset compared in ``--quick``.
QUICK_CANDIDATES: tuple[str, ...] = ("pillow-optprog", "jpegli+mozjpeg", "jpegli-progressive-flat")
