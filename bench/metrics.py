"""Metric functions of the benchmark: luma SSIM, the lowest-quality search, medians, percentiles and ratios.

SSIM is the usual Gaussian SSIM (Wang et al. 2004) on luma: 11x11 Gaussian window with sigma 1.5, population
covariance, data range 255, computed by :func:`skimage.metrics.structural_similarity`. Luma is BT.601
``Y = 0.299 R + 0.587 G + 0.114 B`` of the decoded RGB pixels (a grey image is its own luma).
"""

from __future__ import annotations

import io
import statistics
from collections.abc import Callable, Iterable

import numpy as np
from PIL import Image
from skimage.metrics import structural_similarity

_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])


def luma(image: Image.Image) -> np.ndarray:
    """Return the BT.601 luma of ``image`` as a float64 array (height x width), values 0-255."""
    if image.mode == "L":
        return np.asarray(image, dtype=np.float64)
    rgb = np.asarray(image.convert("RGB"), dtype=np.float64)
    return rgb @ _LUMA_WEIGHTS


def jpeg_luma(data: bytes) -> np.ndarray:
    """Decode JPEG (or any Pillow-readable) ``data`` and return its luma (see :func:`luma`)."""
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return luma(img)


def ssim(reference: np.ndarray, test: np.ndarray) -> float:
    """Return the Gaussian SSIM of two luma arrays of the same shape (1.0 means identical).

    Raises
    ------
    ValueError
        When the shapes differ (for example an output that was rotated or downscaled).
    """
    if reference.shape != test.shape:
        raise ValueError(f"SSIM needs images of the same size, got {reference.shape} and {test.shape}")
    return float(
        structural_similarity(
            reference,
            test,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=255,
        )
    )


def lowest_quality_reaching(
    target: float,
    measure: Callable[[int], float],
    lo: int = 1,
    hi: int = 100,
    window: int = 5,
) -> int | None:
    """Return the lowest quality in ``lo..hi`` whose ``measure(quality)`` is at least ``target``.

    A binary search over the quality, which assumes ``measure`` grows with quality. SSIM of a JPEG does, apart
    from small wiggles, so the ``window`` qualities just below the binary search's answer are also measured and
    the lowest of them that reaches the target wins: a wiggle of up to ``window`` steps cannot hide a lower
    quality.

    Parameters
    ----------
    target : float
        The value to reach (for example our output's SSIM).
    measure : Callable[[int], float]
        Quality to value (for example the SSIM of the baseline encoder at that quality). Called about
        ``log2(hi - lo) + 1 + window`` times; callers may memoise it.
    lo, hi : int
        The quality range searched, both included.
    window : int
        How many qualities below the binary search's answer are checked as well.

    Returns
    -------
    int | None
        The quality, or ``None`` when even ``hi`` does not reach ``target``.
    """
    if lo > hi:
        raise ValueError(f"empty quality range {lo}..{hi}")
    if measure(hi) < target:
        return None
    low, high = lo, hi  # invariant: measure(high) >= target
    while low < high:
        mid = (low + high) // 2
        if measure(mid) >= target:
            high = mid
        else:
            low = mid + 1
    best = high
    for q in range(high - 1, max(lo, high - window) - 1, -1):
        if measure(q) >= target:
            best = q
    return best


def median(values: Iterable[float]) -> float:
    """Return the median of ``values`` (raises ``statistics.StatisticsError`` when empty)."""
    return float(statistics.median(list(values)))


def bytes_ratio(ours: Iterable[int], reference: Iterable[int]) -> float:
    """Return total bytes of ``ours`` divided by total bytes of ``reference`` (the same images, same order)."""
    total_ours = sum(ours)
    total_ref = sum(reference)
    if total_ref <= 0:
        raise ValueError("the reference holds no bytes")
    return total_ours / total_ref
