"""Gaussian SSIM on luma with numpy only (no scipy, no scikit-image: both are far too big for the Lambda layer).

The definition is the usual one (Wang et al. 2004) and the same as
``skimage.metrics.structural_similarity(x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=255)``: an 11x11 Gaussian window (sigma 1.5, truncated at 3.5 sigma), population (co)variances,
``C1 = (0.01 * 255)**2``, ``C2 = (0.03 * 255)**2``, and the mean of the SSIM map without the 5-pixel border
(scikit-image crops the filter radius too). Because that border is dropped, only windows that lie wholly inside
the image count, so the filtering here is a plain "valid" convolution and no border mode is needed; it is done as
two small matrix products per plane (a banded Gaussian matrix on each side), which numpy hands to BLAS.

Luma is BT.601 ``Y = 0.299 R + 0.587 G + 0.114 B`` of the RGB pixels (a grey image is its own luma), as the
benchmark measures it.

Stacks of equally sized planes (``n x h x w``, for example tiles cut from one image) are compared in one go; the
SSIM of a stack is the mean over all planes' maps, that is over every window that lies inside one tile.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

#: Gaussian window: sigma 1.5, truncated at 3.5 sigma -> radius 5, 11 taps (scikit-image's defaults).
SIGMA = 1.5
RADIUS = int(3.5 * SIGMA + 0.5)
WINDOW = 2 * RADIUS + 1
DATA_RANGE = 255.0
C1 = (0.01 * DATA_RANGE) ** 2
C2 = (0.03 * DATA_RANGE) ** 2
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def luma(image: Image.Image) -> np.ndarray:
    """Return the BT.601 luma of an ``L`` or ``RGB`` image (any other mode is converted to RGB first).

    Returns
    -------
    np.ndarray
        ``float32`` array of shape (height, width), values 0-255 (not rounded).
    """
    if image.mode == "L":
        return np.asarray(image, dtype=np.float32)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.float32) @ _LUMA


def _kernel() -> np.ndarray:
    taps = np.arange(-RADIUS, RADIUS + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (taps / SIGMA) ** 2)
    return kernel / kernel.sum()


_KERNEL = _kernel()
#: Output positions computed by one matrix product along an axis (the band matrix is _BLOCK + 10 rows high).
_BLOCK = 128
_SINGLE_THREAD_WORK = 65536 * 4


@lru_cache(maxsize=32)
def _band(outputs: int, stride: int) -> np.ndarray:
    """Return the float32 matrix that filters ``(outputs - 1) * stride + 11`` samples into ``outputs`` positions."""
    size = (outputs - 1) * stride + WINDOW
    band = np.zeros((size, outputs), dtype=np.float32)
    columns = np.arange(outputs)
    for k, weight in enumerate(_KERNEL):
        band[columns * stride + k, columns] = weight
    band.setflags(write=False)
    return band


def _pass(planes: np.ndarray, stride: int) -> np.ndarray:
    """Filter along the last axis, keeping fully covered positions (every ``stride``-th), as block matrix products.

    The band matrix is the same for every block of outputs, so a row of any length costs about ``_BLOCK + 10``
    multiply-adds per output, done by BLAS. The products are cut into small pieces of rows: OpenBLAS runs those on
    the calling thread, where a thread pool would mostly wait on a busy or single-vCPU machine.
    """
    length = planes.shape[-1]
    outputs = (length - WINDOW) // stride + 1
    flat = planes.reshape(-1, length)
    out = np.empty((flat.shape[0], outputs), dtype=np.float32)
    per_block = _BLOCK // stride
    for first in range(0, outputs, per_block):
        count = min(per_block, outputs - first)
        start = first * stride
        band = _band(count, stride)
        block = flat[:, start : start + band.shape[0]]
        # OpenBLAS stays single-threaded while rows x inner x outputs <= 262144.
        step = max(1, _SINGLE_THREAD_WORK // (band.shape[0] * count))
        for row in range(0, flat.shape[0], step):
            np.matmul(block[row : row + step], band, out=out[row : row + step, first : first + count])
    return out.reshape(*planes.shape[:-1], outputs)


def _filter(planes: np.ndarray, stride: int = 1) -> np.ndarray:
    """Gaussian-filter the last two axes, keeping only fully covered positions (each axis shrinks by 10).

    With ``stride`` > 1 only every ``stride``-th position along each axis is computed (for a cheap estimate of a
    mean over the map). The result is transposed (``... x w' x h'``): callers only combine maps filtered the same
    way and average them, so the order does not matter.
    """
    rows = _pass(planes, stride)
    return _pass(np.ascontiguousarray(np.swapaxes(rows, -1, -2)), stride)


def _as_planes(array: np.ndarray) -> np.ndarray:
    """Return ``array`` as a float32 stack of planes (n x h x w), checking it can hold an SSIM window."""
    planes = np.asarray(array, dtype=np.float32)
    if planes.ndim == 2:
        planes = planes[np.newaxis]
    if planes.ndim != 3:
        raise ValueError(f"SSIM needs a 2-D luma array or a stack of them (n x h x w), got shape {planes.shape}")
    if planes.shape[1] < WINDOW or planes.shape[2] < WINDOW:
        raise ValueError(f"SSIM needs planes of at least {WINDOW}x{WINDOW} pixels, got {planes.shape[1:]}")
    return planes


class Reference:
    """The reference side of SSIM, filtered once, to compare many candidates against it cheaply.

    Parameters
    ----------
    reference : np.ndarray
        Luma (values 0-255) of the reference: ``h x w``, or a stack ``n x h x w`` of equally sized planes; each
        side at least 11 pixels.
    stride : int
        1 (the default) averages the SSIM map at every position: the exact SSIM. 2 averages every second position
        along each axis, a quarter of them: an estimate of the same mean (typically within 1e-3) at about a third
        of the cost, for searches that compare many candidates.

    Raises
    ------
    ValueError
        When the array is not 2-D or 3-D, a plane is smaller than the 11x11 window, or ``stride`` is below 1.
    """

    def __init__(self, reference: np.ndarray, stride: int = 1) -> None:
        if stride < 1:
            raise ValueError(f"stride must be 1 or more, got {stride}")
        x = _as_planes(reference)
        self._shape = x.shape
        self._stride = stride
        # Means, variances and covariances are computed on values centred at 128: the same numbers, computed in
        # float32 with less cancellation.
        self._xc = x - 128.0
        mu_xc, xx = _filter(np.stack([self._xc, self._xc * self._xc]), stride)
        self._mu_x = mu_xc + 128.0
        self._mu_xc = mu_xc
        self._var_x = xx - mu_xc * mu_xc

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the reference as a stack of planes (n, h, w)."""
        return self._shape

    def ssim(self, test: np.ndarray) -> float:
        """Return the mean SSIM of ``test`` (same shape as the reference) against the reference; 1.0 = identical.

        Raises
        ------
        ValueError
            When the shapes differ.
        """
        y = np.asarray(test)
        if y.ndim == 2:
            y = y[np.newaxis]
        if y.shape != self._shape:
            raise ValueError(f"SSIM needs images of the same size, got {self._shape} and {y.shape}")
        maps = np.empty((3, *self._shape), dtype=np.float32)
        yc = maps[0]
        yc[...] = y
        yc -= 128.0
        np.multiply(yc, yc, out=maps[1])
        np.multiply(self._xc, yc, out=maps[2])
        mu_yc, yy, xy = _filter(maps, self._stride)
        mu_y = mu_yc + 128.0
        var_y = yy - mu_yc * mu_yc
        cov = xy - self._mu_xc * mu_yc
        mu_x = self._mu_x
        num = (2.0 * mu_x * mu_y + C1) * (2.0 * cov + C2)
        den = (mu_x * mu_x + mu_y * mu_y + C1) * (self._var_x + var_y + C2)
        return float(np.mean(num / den, dtype=np.float64))


def ssim(reference: np.ndarray, test: np.ndarray) -> float:
    """Return the Gaussian SSIM of two luma arrays (or two stacks of planes) of the same shape.

    Same value as scikit-image's ``structural_similarity(reference, test, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255)`` for 2-D arrays (to about 1e-6).

    Raises
    ------
    ValueError
        When the shapes differ or a side is shorter than 11 pixels.
    """
    return Reference(reference).ssim(test)
