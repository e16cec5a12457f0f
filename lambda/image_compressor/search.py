"""Per-image JPEG quality search towards a target luma SSIM, measured on a small sample of the image.

The search answers: what is the lowest quality in ``lo..hi`` whose encoded image still has a luma SSIM of at
least ``target`` against the pixels that were encoded? Each step encodes the sample, decodes it and measures SSIM
(:mod:`image_compressor.ssim`); SSIM grows with quality, so the steps close in on the answer like a bisection,
guided by interpolation (``log(1 - SSIM)`` is close to linear in quality): 2-6 steps, 3.3 on average on the
benchmark corpus, where a plain bisection of 60..95 needs 5-6.

To stay cheap on 12-24 MP photos the steps do not encode the whole image but a mosaic of tiles
(:func:`make_sample`): up to :data:`TILES` tiles of :data:`TILE` x :data:`TILE` pixels taken on an even grid over
the image, each starting on a multiple of 16 pixels so its 8x8 blocks and 16x16 chroma MCUs are the very blocks
of the full image. SSIM is averaged over windows that lie inside one tile (never across a seam), which is an
unbiased sample of the full image's SSIM map. Images of at most :data:`WHOLE_IMAGE_PIXELS` pixels are searched
whole, so for them the answer is exact.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from image_compressor import ssim

#: Side of a sample tile in pixels (a multiple of the 16-pixel MCU).
TILE = 128
#: Most tiles in a sample: 24 tiles of 128 px = 0.39 MP.
TILES = 24
#: Images with at most this many pixels are searched whole instead of through tiles.
WHOLE_IMAGE_PIXELS = TILES * TILE * TILE
#: SSIM map positions measured: every second one along each axis (an estimate of the mean at a third of the cost).
STRIDE = 2
#: The search stops without measuring the quality just below a passing one when its fitted line predicts an SSIM
#: at least this far under the target (costs a quality step only when the line is that wrong).
STOP_MARGIN = 0.001
#: Every tile starts on a multiple of this (the JPEG MCU of 4:2:0 chroma).
_ALIGN = 16
# Initial guess: jpegli reaches SSIM 0.96 at about quality 79 on photos, and log(1 - SSIM) falls by about 0.05 per
# quality step. Only the first step uses this; later ones interpolate what was measured.
_ANCHOR_QUALITY = 79
_ANCHOR_SSIM = 0.96
_SLOPE = -0.05


@dataclass(frozen=True, slots=True)
class Sample:
    """The pixels the search encodes and the luma it compares against.

    Attributes
    ----------
    image : Image.Image
        The mosaic of tiles (or the whole image), in the image's own mode.
    reference : ssim.Reference
        Luma of ``image``, as a stack of tiles, ready for SSIM.
    tile_size : tuple[int, int]
        Width and height of one tile (the whole image when it is not tiled).
    grid : tuple[int, int]
        Columns and rows of tiles in the mosaic ((1, 1) for the whole image).
    """

    image: Image.Image
    reference: ssim.Reference
    tile_size: tuple[int, int]
    grid: tuple[int, int]

    @property
    def whole(self) -> bool:
        """True when the sample is the whole image."""
        return self.grid == (1, 1)

    def tiles(self, mosaic: Image.Image) -> np.ndarray:
        """Return the luma of a decoded mosaic as a stack of tiles (n x h x w), the layout of ``reference``."""
        return _tile_stack(ssim.luma(mosaic), self.grid, self.tile_size)


def _tile_stack(plane: np.ndarray, grid: tuple[int, int], tile_size: tuple[int, int]) -> np.ndarray:
    """Cut a mosaic's luma plane into its tiles: (rows * cols) x tile height x tile width, row by row."""
    cols, rows = grid
    width, height = tile_size
    return plane.reshape(rows, height, cols, width).transpose(0, 2, 1, 3).reshape(rows * cols, height, width)


@dataclass(frozen=True, slots=True)
class SearchResult:
    """What the quality search found.

    Attributes
    ----------
    quality : int
        The chosen quality: the lowest measured to reach the target, ``hi`` when none reached it (or when it
        could not be measured), ``lo`` when every quality reaches it.
    ssim : float | None
        SSIM of the sample at ``quality``, or ``None`` when that quality was not measured (``hi`` as a ceiling,
        or an image smaller than the 11x11 SSIM window).
    steps : int
        Encode + decode + SSIM rounds it took.
    sampled : bool
        True when a mosaic of tiles stood in for the image; False when the whole image was measured.
    """

    quality: int
    ssim: float | None
    steps: int
    sampled: bool


def make_sample(image: Image.Image, tile: int = TILE, tiles: int = TILES) -> Sample | None:
    """Return the pixels to search on: the whole image when small, else a mosaic of tiles cut on an even grid.

    Parameters
    ----------
    image : Image.Image
        The ``L`` or ``RGB`` image that will be encoded (already oriented and resized).
    tile : int
        Tile side in pixels (a multiple of 16). Sides shorter than a tile give tiles as long as that side.
    tiles : int
        Most tiles to take; the grid follows the image's aspect ratio.

    Returns
    -------
    Sample | None
        The sample, or ``None`` when the image is narrower or lower than the 11-pixel SSIM window.
    """
    width, height = image.size
    if min(width, height) < ssim.WINDOW:
        return None
    if width * height <= tiles * tile * tile:
        return Sample(image, ssim.Reference(ssim.luma(image), STRIDE), (width, height), (1, 1))
    tile_w = tile if width >= tile else width
    tile_h = tile if height >= tile else height
    rows = max(1, min(height // tile_h, tiles, round(math.sqrt(tiles * height / width))))
    cols = max(1, min(width // tile_w, tiles // rows))
    mosaic = Image.new(image.mode, (cols * tile_w, rows * tile_h))
    for row, top in enumerate(_starts(height, tile_h, rows)):
        for col, left in enumerate(_starts(width, tile_w, cols)):
            mosaic.paste(image.crop((left, top, left + tile_w, top + tile_h)), (col * tile_w, row * tile_h))
    grid, tile_size = (cols, rows), (tile_w, tile_h)
    return Sample(mosaic, ssim.Reference(_tile_stack(ssim.luma(mosaic), grid, tile_size), STRIDE), tile_size, grid)


def _starts(length: int, size: int, count: int) -> list[int]:
    """Offsets of ``count`` tiles of ``size`` centred in equal cells of ``length``, aligned to 16, in range."""
    last = length - size
    starts = []
    for i in range(count):
        centre = (i + 0.5) * length / count
        start = int(centre - size / 2) // _ALIGN * _ALIGN
        starts.append(min(max(0, start), last - last % _ALIGN))
    return starts


def sample_ssim(sample: Sample, encoded: bytes) -> float:
    """Decode an encoded sample and return its SSIM against the sample's own pixels."""
    with Image.open(io.BytesIO(encoded)) as decoded:
        decoded.load()
        return sample.reference.ssim(sample.tiles(decoded))


def choose_quality(
    image: Image.Image,
    encode: Callable[[Image.Image, int], bytes],
    target: float,
    lo: int,
    hi: int,
    *,
    sample: Sample | None = None,
) -> SearchResult:
    """Return the lowest quality in ``lo..hi`` whose encoding of ``image`` reaches luma SSIM ``target``.

    The returned quality always reaches the target when it was measured (``ssim`` is set). It is the lowest one
    unless the line fitted through the steps predicted the quality just below it to miss the target by more than
    :data:`STOP_MARGIN` and was wrong: then the search stopped one step early and the answer is one step high.

    Parameters
    ----------
    image : Image.Image
        The ``L`` or ``RGB`` pixels that will be encoded.
    encode : Callable[[Image.Image, int], bytes]
        Encodes an image at a quality; must give the same pixels as the final encode (progressive scans and
        Huffman optimisation may be left out: they do not change the pixels).
    target : float
        Luma SSIM to reach (0-1).
    lo, hi : int
        Quality range; ``hi`` is the ceiling, used when even it falls short.
    sample : Sample | None
        A ready sample of ``image``; by default :func:`make_sample` builds one.

    Returns
    -------
    SearchResult
        The quality with its measured sample SSIM and the number of steps. Assumes SSIM does not fall as quality
        rises (true for JPEG apart from tiny wiggles).
    """
    lo = min(lo, hi)
    sample = sample if sample is not None else make_sample(image)
    if sample is None:
        return SearchResult(hi, None, 0, False)
    measured: dict[int, float] = {}

    def measure(quality: int) -> float:
        value = sample_ssim(sample, encode(sample.image, quality))
        measured[quality] = value
        return value

    fail, ok = lo - 1, hi  # every quality <= fail misses the target; ok reaches it (or is the ceiling)
    width_before = ok - fail
    streak = 0  # > 0: that many passes in a row (moving down); < 0: fails in a row (moving up)
    while ok - fail > 1:
        if ok in measured and len(measured) >= 2 and _predicted(measured, ok - 1) < target - STOP_MARGIN:
            break  # the fitted line puts the next lower quality clearly below the target: not worth a step
        # Once two measured qualities bracket the answer, bisect when the bracket is narrow (the line's one-step
        # errors cost more there than halving) or when it did not at least halve in the last step.
        bracketed = fail in measured and ok in measured
        guess = _next_guess(
            measured, target, fail, ok, bisect=bracketed and (ok - fail <= 4 or ok - fail > width_before / 2)
        )
        # Creeping towards the answer one step at a time means the model is biased: gallop instead.
        if streak >= 2:
            guess = max(min(guess, ok - 2 ** (streak - 1)), fail + 1)
        elif streak <= -2:
            guess = min(max(guess, fail + 2 ** (-streak - 1)), ok - 1)
        width_before = ok - fail
        if measure(guess) >= target:
            ok = guess
            streak = streak + 1 if streak > 0 else 1
        else:
            fail = guess
            streak = streak - 1 if streak < 0 else -1
    return SearchResult(ok, measured.get(ok), len(measured), not sample.whole)


def _z(value: float) -> float:
    return math.log(max(1.0 - value, 1e-6))


def _next_guess(measured: dict[int, float], target: float, fail: int, ok: int, *, bisect: bool) -> int:
    """Pick the next quality strictly between ``fail`` and ``ok``.

    Models ``log(1 - SSIM)`` as linear in quality: the slope is the least-squares fit through every measurement
    (a typical slope until there are two), the line goes through the measurement closest to the target, and the
    guess is the first quality the line puts at or above the target. ``bisect`` takes the midpoint instead.
    """
    if bisect:
        return (fail + ok + 1) // 2
    z_target = _z(target)
    if not measured:
        estimate = _ANCHOR_QUALITY + (z_target - _z(_ANCHOR_SSIM)) / _SLOPE
    else:
        points = [(q, _z(value)) for q, value in measured.items()]
        nearest_q, nearest_z = min(points, key=lambda p: abs(p[1] - z_target))
        estimate = nearest_q + (z_target - nearest_z) / _fitted_slope(points)
    return min(max(math.ceil(estimate - 1e-9), fail + 1), ok - 1)


def _predicted(measured: dict[int, float], quality: int) -> float:
    """SSIM the fitted line predicts at ``quality``, from the measurement closest to it."""
    points = [(q, _z(value)) for q, value in measured.items()]
    nearest_q, nearest_z = min(points, key=lambda p: abs(p[0] - quality))
    return 1.0 - math.exp(nearest_z + (quality - nearest_q) * _fitted_slope(points))


def _fitted_slope(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of z over quality, or the typical slope when there is too little or odd data."""
    if len(points) < 2:
        return _SLOPE
    mean_q = sum(q for q, _ in points) / len(points)
    mean_z = sum(z for _, z in points) / len(points)
    spread = sum((q - mean_q) ** 2 for q, _ in points)
    slope = sum((q - mean_q) * (z - mean_z) for q, z in points) / spread
    return slope if -0.5 < slope < -0.005 else _SLOPE
