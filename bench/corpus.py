"""The benchmark corpus: real photographs shipped inside the scikit-image wheel, re-encoded like a camera would.

No file is downloaded: only images bundled in the installed ``skimage/data`` folder are used (scikit-image
functions that fetch data with pooch are avoided on purpose). Each photo becomes an RGB, quality 95, 4:2:0 JPEG
with a small camera-like EXIF block (make, model, time, orientation 1): the kind of file a phone or camera
uploads. The large images (12 and 24 MP, for speed and memory only) are real photos upscaled with Lanczos and
saved the same way. Everything is generated at run time and cached in ``bench/results/corpus/`` (git-ignored).
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

log = logging.getLogger(__name__)

#: Photographs bundled in scikit-image 0.26.0's wheel (``skimage/data``). Excluded on purpose: drawings and
#: synthetic images (chessboard, logo, horse silhouette, phantom, colour wheel) and the 102 px microaneurysms crop.
PHOTOS: tuple[str, ...] = (
    "astronaut.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "brick.png",
    "moon.png",
    "motorcycle_left.png",
    "hubble_deep_field.jpg",
    "retina.jpg",
    "rocket.jpg",
    "ihc.png",
    "clock_motion.png",
    "cell.png",
    "text.png",
    "page.png",
)

#: A smaller, still varied subset for ``--quick`` (faces, animals, texture, text, a dark star field, a large photo).
QUICK_PHOTOS: tuple[str, ...] = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "gravel.png",
    "hubble_deep_field.jpg",
    "retina.jpg",
    "rocket.jpg",
    "text.png",
)

#: Source photo of the large images: 741x500, close to a camera's 3:2.
LARGE_SOURCE = "motorcycle_left.png"
LARGE_SIZES: dict[str, tuple[int, int]] = {"1mp": (1224, 816), "12mp": (4240, 2832), "24mp": (6000, 4000)}

CAMERA_QUALITY = 95
_CACHE_VERSION = "v1"
DEFAULT_CACHE_DIR = Path(__file__).resolve().parent / "results" / "corpus"


class CorpusError(RuntimeError):
    """The scikit-image data files are missing; the message says how to get them."""


@dataclass(frozen=True, slots=True)
class Photo:
    """One upload of the corpus.

    Attributes
    ----------
    name : str
        File name of the source photo in ``skimage/data`` (or ``<source>@<size>`` for an upscale).
    data : bytes
        The camera-like JPEG bytes.
    width, height : int
        Pixel size.
    """

    name: str
    data: bytes
    width: int
    height: int

    @property
    def megapixels(self) -> float:
        """Return the pixel count in millions."""
        return self.width * self.height / 1e6


def skimage_data_dir() -> Path:
    """Return the ``skimage/data`` folder of the installed scikit-image (the photos bundled in its wheel).

    Raises
    ------
    CorpusError
        When scikit-image is not installed or its folder lacks the bundled photos.
    """
    try:
        import skimage
    except ImportError as exc:  # pragma: no cover - the dev install has it
        raise CorpusError("scikit-image is not installed; run `make install` (it is a dev dependency)") from exc
    folder = Path(skimage.__file__).resolve().parent / "data"
    missing = [name for name in PHOTOS if not (folder / name).is_file()]
    if missing:
        raise CorpusError(
            f"scikit-image's bundled photos are missing from {folder}: {', '.join(missing)}; "
            "reinstall scikit-image==0.26.0 from its wheel (`make install`)"
        )
    return folder


def camera_jpeg(image: Image.Image, quality: int = CAMERA_QUALITY) -> bytes:
    """Return ``image`` as a camera-like JPEG: RGB, 4:2:0, ``quality``, with a small EXIF block (orientation 1).

    Parameters
    ----------
    image : Image.Image
        Any Pillow image; it is converted to RGB (cameras write colour JPEGs, grey photos included).
    quality : int
        JPEG quality (95 like a camera's "fine" setting).

    Returns
    -------
    bytes
        The JPEG file.
    """
    exif = Image.Exif()
    exif[0x010F] = "BenchCam"  # Make
    exif[0x0110] = "Model 1"  # Model
    exif[0x0112] = 1  # Orientation: top-left
    exif[0x0132] = "2026:01:01 12:00:00"  # DateTime
    buf = io.BytesIO()
    image.convert("RGB").save(buf, "JPEG", quality=quality, subsampling="4:2:0", exif=exif.tobytes())
    return buf.getvalue()


def _cached(cache_dir: Path | None, key: str, make: Callable[[], bytes]) -> bytes:
    if cache_dir is None:
        return make()
    path = cache_dir / f"{key}.jpg"
    if path.is_file():
        return path.read_bytes()
    data = make()
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return data


def _key(name: str, extra: str = "") -> str:
    digest = hashlib.sha256(f"{_CACHE_VERSION}|{name}|{extra}|q{CAMERA_QUALITY}".encode()).hexdigest()[:10]
    stem = name.replace(".", "_").replace("@", "-")
    return f"{stem}-{digest}"


def load_photos(names: tuple[str, ...] = PHOTOS, cache_dir: Path | None = DEFAULT_CACHE_DIR) -> list[Photo]:
    """Return the corpus photos as camera-like q95 JPEGs (built once, then read from ``cache_dir``).

    Parameters
    ----------
    names : tuple[str, ...]
        File names in ``skimage/data`` (default: all of :data:`PHOTOS`).
    cache_dir : Path | None
        Where generated JPEGs are kept between runs; ``None`` builds them in memory every time.
    """
    folder = skimage_data_dir()
    photos = []
    for name in names:

        def make(name: str = name) -> bytes:
            with Image.open(folder / name) as src:
                return camera_jpeg(src)

        data = _cached(cache_dir, _key(name), make)
        with Image.open(io.BytesIO(data)) as img:
            photos.append(Photo(name, data, img.width, img.height))
    return photos


def large_photo(size_name: str, cache_dir: Path | None = DEFAULT_CACHE_DIR) -> Photo:
    """Return a real photo upscaled (Lanczos) to ``size_name`` (``1mp``, ``12mp`` or ``24mp``) as a camera JPEG.

    Upscaled photos are smoother than native ones, so they are used for speed and memory only, never for bytes
    or SSIM.
    """
    try:
        width, height = LARGE_SIZES[size_name]
    except KeyError:
        raise ValueError(f"unknown size {size_name!r}; use one of {', '.join(LARGE_SIZES)}") from None
    folder = skimage_data_dir()

    def make() -> bytes:
        with Image.open(folder / LARGE_SOURCE) as src:
            return camera_jpeg(src.convert("RGB").resize((width, height), Image.Resampling.LANCZOS))

    name = f"{LARGE_SOURCE}@{size_name}"
    data = _cached(cache_dir, _key(name, f"{width}x{height}"), make)
    return Photo(name, data, width, height)
