"""Metrics 1 and 2: bytes of our default output at equal SSIM against the libjpeg-turbo baseline, and its SSIM.

For every photo of the corpus:

* our output is ``compress(upload, CompressionOptions())`` - the real core with its defaults;
* its SSIM is the luma SSIM against the decoded upload (:mod:`bench.metrics`);
* the baseline (:func:`bench.encoders.baseline`: Pillow, no optimize, no progressive) encodes the decoded upload
  at the lowest quality whose SSIM reaches ours (:func:`bench.metrics.lowest_quality_reaching`, qualities 1-100);
* ``bytes_ratio_at_equal_ssim`` = total bytes of our outputs / total bytes of those baseline files.

The seed's method (quality 20) goes through the same steps for contrast, and each candidate encoder of
:mod:`bench.encoders` is measured the same way at a few fixed qualities (and, in the full run, with a per-image
quality search towards an SSIM target).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from PIL import Image

from bench import encoders
from bench.corpus import Photo
from bench.metrics import bytes_ratio, jpeg_luma, lowest_quality_reaching, luma, median, ssim

log = logging.getLogger(__name__)

#: Qualities of the baseline curve drawn in the plot.
CURVE_QUALITIES = (10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95)


class Reference:
    """One decoded upload and its baseline encodings (memoised by quality).

    Parameters
    ----------
    photo : Photo
        The upload.
    """

    def __init__(self, photo: Photo) -> None:
        self.photo = photo
        with Image.open(io.BytesIO(photo.data)) as img:
            img.load()
            self.image = img.convert("RGB") if img.mode not in ("L", "RGB") else img.copy()
        self.luma = luma(self.image)
        self._baseline: dict[int, tuple[int, float]] = {}

    def measure(self, data: bytes) -> float:
        """Return the luma SSIM of JPEG ``data`` against this upload."""
        return ssim(self.luma, jpeg_luma(data))

    def baseline_at(self, quality: int) -> tuple[int, float]:
        """Return (bytes, SSIM) of the baseline encoder at ``quality`` (memoised)."""
        if quality not in self._baseline:
            data = encoders.baseline(self.image, quality)
            self._baseline[quality] = (len(data), self.measure(data))
        return self._baseline[quality]

    def baseline_match(self, target_ssim: float) -> tuple[int, int, bool]:
        """Return (quality, bytes, capped) of the lowest-quality baseline reaching ``target_ssim``.

        ``capped`` is true when even quality 100 does not reach it; quality 100's bytes are returned then.
        """
        quality = lowest_quality_reaching(target_ssim, lambda q: self.baseline_at(q)[1], 1, 100)
        if quality is None:
            return 100, self.baseline_at(100)[0], True
        return quality, self.baseline_at(quality)[0], False


@dataclass
class ImageResult:
    """Metrics 1-2 for one photo."""

    name: str
    megapixels: float
    input_bytes: int
    status: str
    output_bytes: int
    quality: int
    ssim: float
    baseline_quality: int
    baseline_bytes: int
    baseline_capped: bool
    seed_bytes: int
    seed_ssim: float
    seed_baseline_quality: int
    seed_baseline_bytes: int


@dataclass
class CandidateResult:
    """One candidate encoder at one quality setting over the corpus."""

    encoder: str
    description: str
    quality: str
    bytes_ratio_at_equal_ssim: float
    min_ssim: float
    median_ssim: float
    output_input_ratio: float
    qualities: list[int] = field(default_factory=list)


@dataclass
class QualityReport:
    """Everything metrics 1-2 produced."""

    images: list[ImageResult]
    candidates: list[CandidateResult]
    curve: list[dict[str, float]]
    summary: dict[str, float]
    #: Our output for each photo and the decoded uploads, for the side-by-side comparison (not in the JSON).
    outputs: list[bytes] = field(default_factory=list, repr=False)
    references: list[Reference] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (without the output bytes and decoded uploads)."""
        return {
            "images": [asdict(r) for r in self.images],
            "candidates": [asdict(c) for c in self.candidates],
            "curve": self.curve,
            "summary": self.summary,
        }


def measure_default(
    photos: Sequence[Photo],
    compress: Callable[[bytes], tuple[str, bytes, int]],
) -> tuple[list[ImageResult], dict[int, Reference], list[bytes]]:
    """Run our default compression and the seed's method on every photo and match each against the baseline.

    Parameters
    ----------
    photos : Sequence[Photo]
        The corpus.
    compress : Callable[[bytes], tuple[str, bytes, int]]
        Upload bytes to (status, output bytes, quality used); the real core in the bench.

    Raises
    ------
    RuntimeError
        When the core fails on a corpus photo (that is a bug worth stopping for) or changes its pixel size.
    """
    results = []
    outputs: list[bytes] = []
    refs: dict[int, Reference] = {}
    for index, photo in enumerate(photos):
        ref = Reference(photo)
        refs[index] = ref
        status, out, quality = compress(photo.data)
        if status == "failed":
            raise RuntimeError(f"the core failed on corpus photo {photo.name}; fix the core before benchmarking")
        out_luma = jpeg_luma(out)
        if out_luma.shape != ref.luma.shape:
            raise RuntimeError(
                f"the core changed the size of {photo.name} ({ref.luma.shape} -> {out_luma.shape}); the bench "
                "compares at the source size, so run it with default options that keep the size"
            )
        our_ssim = ssim(ref.luma, out_luma)
        outputs.append(out)
        bq, bbytes, capped = ref.baseline_match(our_ssim)
        seed_data = encoders.seed(ref.image)
        seed_ssim = ref.measure(seed_data)
        sq, sbytes, _ = ref.baseline_match(seed_ssim)
        results.append(
            ImageResult(
                name=photo.name,
                megapixels=round(photo.megapixels, 3),
                input_bytes=len(photo.data),
                status=status,
                output_bytes=len(out),
                quality=quality,
                ssim=our_ssim,
                baseline_quality=bq,
                baseline_bytes=bbytes,
                baseline_capped=capped,
                seed_bytes=len(seed_data),
                seed_ssim=seed_ssim,
                seed_baseline_quality=sq,
                seed_baseline_bytes=sbytes,
            )
        )
        log.info(
            "quality %2d/%d %-22s %s %6d -> %6d bytes (q%d) SSIM %.4f; baseline q%d %6d bytes",
            index + 1,
            len(photos),
            photo.name,
            status,
            len(photo.data),
            len(out),
            quality,
            our_ssim,
            bq,
            bbytes,
        )
    return results, refs, outputs


def summarize(images: Sequence[ImageResult]) -> dict[str, float]:
    """Return the metric 1-2 keys of ``latest.json`` (and a few companions) from per-image results."""
    input_total = sum(r.input_bytes for r in images)
    return {
        "bytes_ratio_at_equal_ssim": bytes_ratio((r.output_bytes for r in images), (r.baseline_bytes for r in images)),
        "min_ssim": min(r.ssim for r in images),
        "median_ssim": median(r.ssim for r in images),
        "seed_median_ssim": median(r.seed_ssim for r in images),
        "seed_bytes_ratio": bytes_ratio((r.seed_bytes for r in images), (r.seed_baseline_bytes for r in images)),
        "output_input_ratio": sum(r.output_bytes for r in images) / input_total,
        "seed_output_input_ratio": sum(r.seed_bytes for r in images) / input_total,
        "baseline_capped_images": sum(1 for r in images if r.baseline_capped),
    }


def measure_candidate(
    name: str,
    refs: Sequence[Reference],
    quality: int | None,
    target_ssim: float | None = None,
    search_range: tuple[int, int] = (30, 95),
) -> CandidateResult:
    """Measure candidate encoder ``name`` over the corpus at a fixed ``quality`` or searched per image.

    Parameters
    ----------
    name : str
        A key of :data:`bench.encoders.CANDIDATES`.
    refs : Sequence[Reference]
        The decoded corpus with its baseline memo.
    quality : int | None
        Fixed quality for every image; ``None`` with ``target_ssim`` searches per image instead.
    target_ssim : float | None
        For the per-image search: the lowest quality in ``search_range`` whose SSIM reaches this target.
    search_range : tuple[int, int]
        Qualities the per-image search may pick.
    """
    encode, description = encoders.CANDIDATES[name]
    ours: list[int] = []
    matched: list[int] = []
    ssims: list[float] = []
    qualities: list[int] = []
    input_total = 0
    for ref in refs:
        memo: dict[int, tuple[bytes, float]] = {}

        def at(q: int, ref: Reference = ref, memo: dict[int, tuple[bytes, float]] = memo) -> tuple[bytes, float]:
            if q not in memo:
                data = encode(ref.image, q)
                memo[q] = (data, ref.measure(data))
            return memo[q]

        if quality is not None:
            q = quality
        else:
            assert target_ssim is not None
            found = lowest_quality_reaching(target_ssim, lambda v: at(v)[1], *search_range)
            q = search_range[1] if found is None else found
        data, value = at(q)
        ours.append(len(data))
        matched.append(ref.baseline_match(value)[1])
        ssims.append(value)
        qualities.append(q)
        input_total += len(ref.photo.data)
    label = f"q{quality}" if quality is not None else f"search SSIM>={target_ssim}"
    return CandidateResult(
        encoder=name,
        description=description,
        quality=label,
        bytes_ratio_at_equal_ssim=bytes_ratio(ours, matched),
        min_ssim=min(ssims),
        median_ssim=median(ssims),
        output_input_ratio=sum(ours) / input_total,
        qualities=qualities,
    )


def baseline_curve(refs: Sequence[Reference], qualities: Sequence[int] = CURVE_QUALITIES) -> list[dict[str, float]]:
    """Return the baseline's corpus-level (quality, median SSIM, min SSIM, output/input bytes) for the plot."""
    input_total = sum(len(ref.photo.data) for ref in refs)
    curve = []
    for q in qualities:
        points = [ref.baseline_at(q) for ref in refs]
        curve.append(
            {
                "quality": q,
                "median_ssim": median(p[1] for p in points),
                "min_ssim": min(p[1] for p in points),
                "output_input_ratio": sum(p[0] for p in points) / input_total,
            }
        )
    return curve


def run(
    photos: Sequence[Photo],
    compress: Callable[[bytes], tuple[str, bytes, int]],
    candidate_names: Sequence[str],
    candidate_qualities: Sequence[int],
    search_targets: Sequence[float] = (),
) -> QualityReport:
    """Run metrics 1-2, the candidate comparison and the baseline curve; return the report part."""
    images, refs, outputs = measure_default(photos, compress)
    ref_list = [refs[i] for i in range(len(photos))]
    candidates = []
    for name in candidate_names:
        for q in candidate_qualities:
            candidates.append(measure_candidate(name, ref_list, q))
            log.info("candidate %-26s q%d ratio %.3f", name, q, candidates[-1].bytes_ratio_at_equal_ssim)
        for target in search_targets:
            candidates.append(measure_candidate(name, ref_list, None, target_ssim=target))
            log.info("candidate %-26s search %.3f ratio %.3f", name, target, candidates[-1].bytes_ratio_at_equal_ssim)
    curve = baseline_curve(ref_list)
    return QualityReport(images, candidates, curve, summarize(images), outputs, ref_list)
