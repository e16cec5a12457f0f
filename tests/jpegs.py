"""In-memory test images: photo-like JPEGs and friends, built with Pillow so no binary fixture is committed."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFilter


def photo_image(width: int = 640, height: int = 480, mode: str = "RGB", seed: int = 1) -> Image.Image:
    """Return a photo-like image: smooth gradients, shapes and mild noise, so compression behaves as on a photo."""
    base = Image.linear_gradient("L").resize((width, height))
    r = base
    g = base.transpose(Image.Transpose.ROTATE_90).resize((width, height))
    b = Image.radial_gradient("L").resize((width, height))
    img = Image.merge("RGB", (r, g, b))
    draw = ImageDraw.Draw(img)
    step = max(8, min(width, height) // 6)
    for i in range(0, max(width, height), step):
        colour = ((i * 37 + seed * 11) % 255, (i * 91 + seed * 7) % 255, (i * 53) % 255)
        draw.ellipse((i % width, (i * 3) % height, i % width + step, (i * 3) % height + step), fill=colour)
    noise = Image.effect_noise((width, height), 24 + seed % 5).convert("RGB")
    img = Image.blend(img, noise, 0.12).filter(ImageFilter.GaussianBlur(0.6))
    return img.convert(mode) if mode != "RGB" else img


def photo_jpeg(width: int = 640, height: int = 480, quality: int = 95, mode: str = "RGB", **save_kwargs) -> bytes:
    """Return JPEG bytes of :func:`photo_image`, saved at ``quality`` with extra Pillow ``save_kwargs``."""
    buf = io.BytesIO()
    photo_image(width, height, mode).save(buf, "JPEG", quality=quality, **save_kwargs)
    return buf.getvalue()
