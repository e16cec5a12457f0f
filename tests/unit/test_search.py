"""The per-image quality search: its tile sample, its answer, and how well the sample predicts the whole image."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import skimage
from image_compressor import search, ssim
from image_compressor.core import compress
from image_compressor.encoders import EncodeParams, JpegliEncoder, PillowEncoder
from image_compressor.settings import CompressionOptions
from PIL import Image

from tests.jpegs import photo_image, photo_jpeg

JPEGLI = JpegliEncoder()
#: How far below the target the whole image's SSIM may fall when the search ran on tiles (documented in
#: docs/compression.md; the worst seen on mixed-content collages was 0.003).
TILE_TOLERANCE = 0.005


def jpegli(image: Image.Image, quality: int) -> bytes:
    return JPEGLI.encode(image, EncodeParams(quality=quality, progressive=False, optimize=False))


def pillow(image: Image.Image, quality: int) -> bytes:
    return PillowEncoder().encode(image, EncodeParams(quality=quality, progressive=False, optimize=False))


def full_ssim(image: Image.Image, encoded: bytes) -> float:
    with Image.open(io.BytesIO(encoded)) as decoded:
        return ssim.ssim(ssim.luma(image), ssim.luma(decoded))


def skimage_photo(name: str) -> Image.Image:
    """A real photograph bundled in the scikit-image wheel (no download)."""
    with Image.open(Path(skimage.__file__).parent / "data" / name) as img:
        return img.convert("RGB")


def collage(names: list[str], cols: int, cell: tuple[int, int] = (600, 450)) -> Image.Image:
    """Real photographs side by side: mixed content, the hardest case for a tile sample."""
    rows = -(-len(names) // cols)
    out = Image.new("RGB", (cols * cell[0], rows * cell[1]))
    for i, name in enumerate(names):
        photo = skimage_photo(name).resize(cell, Image.Resampling.LANCZOS)
        out.paste(photo, ((i % cols) * cell[0], (i // cols) * cell[1]))
    return out


# --- the sample --------------------------------------------------------------------------------------------------


def test_a_small_image_is_its_own_sample():
    image = photo_image(600, 400)
    sample = search.make_sample(image)
    assert sample.whole and sample.image is image
    assert sample.grid == (1, 1) and sample.tile_size == (600, 400)


def coordinates_image(width: int, height: int) -> Image.Image:
    """An RGB image whose every pixel spells its own position: R = x mod 256, G = y mod 256, B = the rest."""
    x = np.arange(width)[np.newaxis, :].repeat(height, 0)
    y = np.arange(height)[:, np.newaxis].repeat(width, 1)
    pixels = np.stack([x % 256, y % 256, (x // 256) * 16 + (y // 256) % 16], axis=-1).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


@pytest.mark.parametrize("size", [(6000, 4000), (4000, 6000), (2000, 700), (130, 3900)])
def test_a_large_image_is_sampled_by_aligned_tiles_on_an_even_grid(size):
    image = coordinates_image(*size)
    sample = search.make_sample(image)
    cols, rows = sample.grid
    width, height = sample.tile_size
    assert not sample.whole
    assert 2 <= cols * rows <= search.TILES
    assert sample.image.size == (cols * width, rows * height)
    assert (width, height) == (search.TILE, search.TILE)
    source = np.asarray(image)
    mosaic = np.asarray(sample.image)
    lefts, tops = set(), set()
    for row in range(rows):
        for col in range(cols):
            tile = mosaic[row * height : (row + 1) * height, col * width : (col + 1) * width]
            r, g, b = (int(v) for v in tile[0, 0])
            left, top = r + 256 * (b // 16), g + 256 * (b % 16)
            # Each tile is the crop at a 16-pixel boundary: the very JPEG blocks of the full encode.
            assert left % 16 == 0 and top % 16 == 0
            assert np.array_equal(source[top : top + height, left : left + width], tile)
            lefts.add(left)
            tops.add(top)
    assert len(lefts) == cols and len(tops) == rows  # a grid, no tile taken twice


def test_tiles_spread_over_the_whole_image():
    image = Image.new("L", (4000, 3000))
    image.paste(255, (0, 0, 2000, 3000))  # left half white, right half black
    sample = search.make_sample(image)
    values = np.asarray(sample.image)
    assert 0.3 < (values == 255).mean() < 0.7


def test_an_image_smaller_than_the_ssim_window_gets_the_ceiling_without_measuring():
    image = photo_image(10, 300)
    assert search.make_sample(image) is None
    found = search.choose_quality(image, jpegli, 0.96, 60, 90)
    assert (found.quality, found.ssim, found.steps) == (90, None, 0)


# --- the answer -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", [0.93, 0.95, 0.97])
@pytest.mark.parametrize("encode", [jpegli, pillow], ids=["jpegli", "pillow"])
def test_finds_the_lowest_quality_that_reaches_the_target(target, encode):
    image = skimage_photo("chelsea.png")
    found = search.choose_quality(image, encode, target, 30, 95)
    assert not found.sampled
    assert found.ssim is not None and found.ssim >= target
    assert found.ssim == pytest.approx(full_ssim(image, encode(image, found.quality)), abs=5e-4)
    # The quality just below misses the target (brute force over the same encoder).
    assert full_ssim(image, encode(image, found.quality - 1)) < target
    assert found.steps <= 7  # a plain bisection of the 66 qualities 30..95 needs up to 7


def test_a_target_beyond_reach_gets_the_ceiling_and_an_easy_one_the_floor():
    image = photo_image(320, 240)
    assert search.choose_quality(image, jpegli, 0.9999, 60, 85).quality == 85
    assert search.choose_quality(image, jpegli, 0.2, 60, 85).quality == 60
    # A ceiling below the floor wins: the range is just the ceiling.
    assert search.choose_quality(image, jpegli, 0.96, 60, 40) == search.SearchResult(40, None, 0, False)


def test_grey_images_are_searched_in_grey():
    image = photo_image(300, 200).convert("L")
    found = search.choose_quality(image, jpegli, 0.95, 40, 95)
    assert found.ssim >= 0.95
    assert full_ssim(image, jpegli(image, found.quality)) >= 0.95


# --- the sample predicts the whole image ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: collage(["astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg"], 2),
        lambda: collage(["camera.png", "gravel.png", "motorcycle_left.png", "ihc.png", "coins.png", "moon.png"], 3),
        lambda: skimage_photo("retina.jpg"),
        lambda: photo_image(2400, 1600, seed=5),
    ],
    ids=["faces-food-cat-rocket", "mixed-six", "retina", "synthetic"],
)
def test_the_tile_sample_predicts_the_whole_images_ssim(make):
    image = make()
    assert image.width * image.height > search.WHOLE_IMAGE_PIXELS
    found = search.choose_quality(image, jpegli, 0.96, 60, 95)
    assert found.sampled
    assert full_ssim(image, jpegli(image, found.quality)) >= 0.96 - TILE_TOLERANCE


# --- in the core ------------------------------------------------------------------------------------------------------


def test_compress_reports_the_searched_quality_and_reaches_the_target():
    data = photo_jpeg(900, 700, quality=95)
    out = compress(data, CompressionOptions(target_ssim=0.95, min_quality=50, quality=92))
    assert 50 <= out.result.quality <= 92
    with Image.open(io.BytesIO(data)) as source, Image.open(io.BytesIO(out.data)) as result:
        assert ssim.ssim(ssim.luma(source), ssim.luma(result)) >= 0.95 - TILE_TOLERANCE
    higher = compress(data, CompressionOptions(target_ssim=0.98, min_quality=50, quality=92))
    assert higher.result.quality > out.result.quality
    assert higher.result.output_bytes > out.result.output_bytes


def test_without_a_target_the_quality_is_fixed():
    data = photo_jpeg(640, 480)
    assert compress(data, CompressionOptions(target_ssim=None, quality=72)).result.quality == 72
    assert compress(data, CompressionOptions(target_ssim=None)).result.quality == 85
