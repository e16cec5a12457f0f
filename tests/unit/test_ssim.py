"""The numpy-only Gaussian SSIM against scikit-image's reference implementation (a test-only dependency)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from image_compressor import ssim
from PIL import Image
from skimage.metrics import structural_similarity

from tests.jpegs import photo_image


def skimage_ssim(x: np.ndarray, y: np.ndarray) -> float:
    return float(
        structural_similarity(
            x.astype(np.float64),
            y.astype(np.float64),
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=255,
        )
    )


def jpeg_round_trip(image: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    decoded = Image.open(buf)
    decoded.load()
    return decoded


@pytest.mark.parametrize("quality", [10, 50, 80, 95])
@pytest.mark.parametrize("size", [(640, 480), (257, 131), (11, 11), (700, 20)])
def test_matches_scikit_image(size, quality):
    image = photo_image(*size)
    x = ssim.luma(image)
    y = ssim.luma(jpeg_round_trip(image, quality))
    assert ssim.ssim(x, y) == pytest.approx(skimage_ssim(x, y), abs=1e-4)


def test_matches_scikit_image_on_extremes():
    rng = np.random.default_rng(7)
    noise = rng.uniform(0, 255, (96, 200))
    black = np.zeros((96, 200))
    white = np.full((96, 200), 255.0)
    for x, y in [(noise, rng.uniform(0, 255, (96, 200))), (black, white), (noise, noise), (black, noise)]:
        assert ssim.ssim(x, y) == pytest.approx(skimage_ssim(x, y), abs=1e-4)
    assert ssim.ssim(noise, noise) == pytest.approx(1.0, abs=1e-6)


def test_luma_is_bt601_of_rgb_and_grey_is_its_own_luma():
    rgb = Image.new("RGB", (12, 12), (200, 100, 50))
    assert ssim.luma(rgb)[0, 0] == pytest.approx(0.299 * 200 + 0.587 * 100 + 0.114 * 50, abs=1e-3)
    grey = Image.new("L", (12, 12), 77)
    assert ssim.luma(grey).dtype == np.float32
    assert ssim.luma(grey)[5, 5] == 77.0
    assert ssim.luma(Image.new("RGBA", (12, 12), (200, 100, 50, 0)))[0, 0] == pytest.approx(ssim.luma(rgb)[0, 0])


def test_a_stack_of_tiles_averages_every_tiles_map():
    image = photo_image(256, 128)
    x = ssim.luma(image)
    y = ssim.luma(jpeg_round_trip(image, 40))
    left, right = (slice(None), slice(0, 128)), (slice(None), slice(128, 256))
    stacked = ssim.ssim(np.stack([x[left], x[right]]), np.stack([y[left], y[right]]))
    # Both tiles are the same size, so the stack's SSIM is the mean of the two tiles' SSIMs (no window crosses).
    assert stacked == pytest.approx((skimage_ssim(x[left], y[left]) + skimage_ssim(x[right], y[right])) / 2, abs=1e-4)


def test_a_reference_compares_many_candidates_and_stride_two_estimates_the_same_mean():
    image = photo_image(400, 300)
    x = ssim.luma(image)
    exact = ssim.Reference(x)
    strided = ssim.Reference(x, stride=2)
    for quality in (30, 60, 90):
        y = ssim.luma(jpeg_round_trip(image, quality))
        value = exact.ssim(y)
        assert value == pytest.approx(skimage_ssim(x, y), abs=1e-4)
        assert strided.ssim(y) == pytest.approx(value, abs=5e-4)


def test_bad_shapes_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="same size"):
        ssim.ssim(np.zeros((20, 20)), np.zeros((20, 21)))
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim.ssim(np.zeros((10, 40)), np.zeros((10, 40)))
    with pytest.raises(ValueError, match="2-D luma array"):
        ssim.Reference(np.zeros((2, 2, 20, 20)))
    with pytest.raises(ValueError, match="stride"):
        ssim.Reference(np.zeros((20, 20)), stride=0)
