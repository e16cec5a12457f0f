"""Metric 3 (codec overhead) and metric 5 (peak memory of a 24 MP compress()).

Codec overhead
    For each photo, ``compress(upload, CompressionOptions())`` is timed against a *bare* decode + encode with
    identical encoder settings: Pillow decodes the upload, and the core's own default encoder
    (``image_compressor.core.DEFAULT_ENCODER``) encodes the pixels once with the same quality (the quality the
    core reports it used), progressive and optimize flags and ICC profile. Everything else compress() does
    (header checks, metadata parsing and policy, orientation, mode normalisation, the per-image quality search
    when the defaults ask for one, the lossless-copy candidate, picking the smaller output, the result record) is
    the overhead. A second reference also runs the same quality search (:func:`bare_search_encoder`), to show the
    wrapper's own overhead. They run alternately with compress(), and the per-image ratio is median(compress) /
    median(reference); the metric is the median of those ratios over the photos.

Peak memory
    A small launcher process starts a fresh Python child that imports the core, reads the 24 MP upload and calls
    compress() once with the defaults; the child's peak RSS (``getrusage(RUSAGE_CHILDREN).ru_maxrss`` in the
    launcher, which has no other child) is the metric, raw. The same child without the compress() call gives the
    interpreter + imports + input baseline, and one that also imports the handler's libraries (boto3,
    Powertools) shows what the function adds around the core.
"""

from __future__ import annotations

import gc
import io
import json
import logging
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from bench import encoders
from bench.corpus import Photo
from bench.metrics import median

log = logging.getLogger(__name__)

#: Lambda gives a function one full vCPU at this memory size (CPU share grows linearly with memory).
LAMBDA_FULL_VCPU_MB = 1769


def default_options() -> Any:
    """Return the core's default ``CompressionOptions``."""
    from image_compressor.settings import CompressionOptions

    return CompressionOptions()


def core_compress(data: bytes) -> tuple[str, bytes, int]:
    """Run the real core with default options; return (status, output bytes or b"", quality used)."""
    from image_compressor.core import compress

    result = compress(data, default_options())
    return result.result.status.value, result.data or b"", result.result.quality


def bare_encoder() -> tuple[str, Callable[[bytes, int], bytes]]:
    """Return (description, function) of the bare decode + encode with the core's default encoder settings.

    The function decodes ``data`` with Pillow and encodes it once at the given quality with the core's default
    encoder and the default options' progressive/optimize flags, passing the ICC profile through (as the core
    does). Nothing else.
    """
    from image_compressor import core

    options = default_options()
    encoder = core.DEFAULT_ENCODER

    def bare(data: bytes, quality: int) -> bytes:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            pixels = img if img.mode in ("L", "RGB") else img.convert("RGB")
            params = core.EncodeParams(
                quality=quality,
                progressive=options.progressive,
                optimize=options.optimize,
                icc_profile=img.info.get("icc_profile"),
            )
            return encoder.encode(pixels, params)

    name = getattr(encoder, "name", type(encoder).__name__)
    description = (
        f"Pillow decode + core.DEFAULT_ENCODER ({name}) encode once, quality as compress() reported, "
        f"progressive={options.progressive}, optimize={options.optimize}, ICC passed through"
    )
    return description, bare


def bare_search_encoder() -> tuple[str, Callable[[bytes, int], bytes]] | None:
    """Return (description, function) of the bare decode + quality search + encode, or None without a search.

    When the default options ask for a per-image quality search (``target_ssim``), this reference does the codec
    work of that search too: decode, ``image_compressor.search.choose_quality`` with the same sample encodes the
    core makes (the default encoder, sequential, no metadata), then one encode at the quality found, with the same
    flags and ICC profile. compress() divided by this is the wrapper's own overhead. The ``quality`` argument is
    ignored (the search picks it).
    """
    from image_compressor import core

    options = default_options()
    if getattr(options, "target_ssim", None) is None:
        return None
    try:
        from image_compressor import search
    except ImportError:
        return None
    encoder = core.DEFAULT_ENCODER

    def bare_search(data: bytes, quality: int) -> bytes:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            pixels = img if img.mode in ("L", "RGB") else img.convert("RGB")

            def encode_sample(image: Image.Image, q: int) -> bytes:
                return encoder.encode(image, core.EncodeParams(quality=q, progressive=False, optimize=False))

            found = search.choose_quality(
                pixels, encode_sample, options.target_ssim, options.min_quality, options.quality
            )
            params = core.EncodeParams(
                quality=found.quality,
                progressive=options.progressive,
                optimize=options.optimize,
                icc_profile=img.info.get("icc_profile"),
            )
            return encoder.encode(pixels, params)

    description = (
        "Pillow decode + image_compressor.search.choose_quality (sample encodes with the default encoder, "
        f"target SSIM {options.target_ssim}, qualities {options.min_quality}-{options.quality}) + one encode at the "
        "quality found, same flags and ICC profile"
    )
    return description, bare_search


@dataclass
class OverheadResult:
    """Metric 3 for one photo."""

    name: str
    megapixels: float
    compress_ms: float
    bare_ms: float
    ratio: float
    pairs: int
    bare_search_ms: float | None = None
    ratio_with_search_in_reference: float | None = None


def codec_overhead(
    photos: Sequence[Photo], repeats: int, min_seconds: float = 0.3, max_repeats: int = 200
) -> tuple[list[OverheadResult], dict[str, str]]:
    """Time compress() against the bare references on every photo, alternating them.

    The references are :func:`bare_encoder` (decode + one encode: the metric) and, when the defaults search the
    quality per image, :func:`bare_search_encoder` (decode + the same search + one encode). Each photo gets at
    least ``repeats`` rounds, and more (up to ``max_repeats``) until the rounds took ``min_seconds``, so that
    millisecond-sized photos get enough samples for a stable median on a noisy machine. The garbage collector is
    run before and paused during each photo's loop.

    Returns
    -------
    tuple[list[OverheadResult], dict[str, str]]
        Per-photo medians and ratios, and the descriptions of the references (``bare``, ``bare_search``).
    """
    description, bare = bare_encoder()
    searching = bare_search_encoder()
    descriptions = {"bare": description}
    if searching is not None:
        descriptions["bare_search"] = searching[0]
    results = []
    for photo in photos:
        _, _, quality = core_compress(photo.data)  # warm-up, and the quality the core chose
        quality = quality or default_options().quality
        bare(photo.data, quality)
        timed: dict[str, list[float]] = {"compress": [], "bare": [], "bare_search": []}
        runs: list[tuple[str, Callable[[], object]]] = [
            ("compress", lambda data=photo.data: core_compress(data)),
            ("bare", lambda data=photo.data, q=quality: bare(data, q)),
        ]
        if searching is not None:
            runs.append(("bare_search", lambda data=photo.data, q=quality: searching[1](data, q)))
        gc.collect()
        gc.disable()
        try:
            loop_start = time.perf_counter()
            while len(timed["compress"]) < repeats or (
                time.perf_counter() - loop_start < min_seconds and len(timed["compress"]) < max_repeats
            ):
                for name, call in runs:
                    start = time.perf_counter()
                    call()
                    timed[name].append(time.perf_counter() - start)
        finally:
            gc.enable()
        c_ms, b_ms = median(timed["compress"]) * 1000, median(timed["bare"]) * 1000
        s_ms = median(timed["bare_search"]) * 1000 if timed["bare_search"] else None
        results.append(
            OverheadResult(
                photo.name,
                round(photo.megapixels, 3),
                c_ms,
                b_ms,
                c_ms / b_ms,
                len(timed["compress"]),
                s_ms,
                c_ms / s_ms if s_ms else None,
            )
        )
        log.info(
            "overhead %-26s compress %7.1f ms  bare %7.1f ms  ratio %.3f  bare+search %s ms  (%d rounds)",
            photo.name,
            c_ms,
            b_ms,
            c_ms / b_ms,
            f"{s_ms:.1f}" if s_ms else "-",
            len(timed["compress"]),
        )
    return results, descriptions


def candidate_times(photo: Photo, names: Sequence[str], repeats: int, quality: int = 85) -> dict[str, float]:
    """Return the median encode time in ms of each candidate encoder (and of the decode) on ``photo``."""
    times: dict[str, float] = {}
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        with Image.open(io.BytesIO(photo.data)) as img:
            img.load()
            image = img.copy()
        samples.append(time.perf_counter() - start)
    times["decode"] = median(samples) * 1000
    for name in ("baseline", *names):
        encode = encoders.baseline if name == "baseline" else encoders.CANDIDATES[name][0]
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            encode(image, quality)
            samples.append(time.perf_counter() - start)
        times[name] = median(samples) * 1000
        log.info("encode %.1f MP %-26s %7.1f ms", photo.megapixels, name, times[name])
    return times


@dataclass
class PeerTime:
    """compress() against libvips + mozjpeg (sharp's preset) on one upload, timed alternately."""

    name: str
    megapixels: float
    compress_ms: float
    libvips_mozjpeg_ms: float
    ratio: float
    rounds: int
    compress_bytes: int
    libvips_mozjpeg_bytes: int


def peer_times(photos: dict[str, Photo], repeats: int) -> dict[str, PeerTime]:
    """Time compress() with the defaults and libvips + mozjpeg (decode + sharp's preset at quality 80) per size.

    Both run in this process one after the other, ``repeats`` rounds each (after one warm-up), with the garbage
    collector paused; the figure per size is median / median. libvips runs with one worker thread
    (``pyvips.concurrency_set(1)``): the function gets one vCPU at its default memory, and compress() uses one
    thread.
    """
    import pyvips

    from bench import peers

    pyvips.concurrency_set(1)
    pyvips.cache_set_max(0)  # no operation cache: each round decodes and encodes for real
    out: dict[str, PeerTime] = {}
    for size, photo in photos.items():
        ours = core_compress(photo.data)[1]
        theirs = peers.libvips_mozjpeg(photo.data)
        timed: dict[str, list[float]] = {"compress": [], "libvips": []}
        gc.collect()
        gc.disable()
        try:
            for _ in range(repeats):
                start = time.perf_counter()
                core_compress(photo.data)
                timed["compress"].append(time.perf_counter() - start)
                start = time.perf_counter()
                peers.libvips_mozjpeg(photo.data)
                timed["libvips"].append(time.perf_counter() - start)
        finally:
            gc.enable()
        c_ms, v_ms = median(timed["compress"]) * 1000, median(timed["libvips"]) * 1000
        out[size] = PeerTime(
            photo.name, round(photo.megapixels, 2), c_ms, v_ms, c_ms / v_ms, repeats, len(ours), len(theirs)
        )
        log.info(
            "time %-5s %-22s compress %7.1f ms  libvips+mozjpeg %7.1f ms  ratio %.3f",
            size,
            photo.name,
            c_ms,
            v_ms,
            c_ms / v_ms,
        )
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Peak memory
# ---------------------------------------------------------------------------------------------------------------------

_CHILD = r"""
import json, sys
mode, path = sys.argv[1], sys.argv[2]
from image_compressor.core import compress
from image_compressor.settings import CompressionOptions
if mode == "handler":
    import boto3  # noqa: F401
    import aws_lambda_powertools  # noqa: F401
with open(path, "rb") as fh:
    data = fh.read()
status = None
if mode == "compress":
    out = compress(data, CompressionOptions())
    status = out.result.status.value
if mode == "libvips":
    import pyvips
    pyvips.concurrency_set(1)
    image = pyvips.Image.new_from_buffer(data, "", access="sequential")
    out = image.jpegsave_buffer(Q=80, trellis_quant=True, overshoot_deringing=True, optimize_scans=True,
                                quant_table=3, interlace=True, subsample_mode="on", optimize_coding=True, keep="none")
    status = "compressed" if out else "failed"
print(json.dumps({"status": status}))
"""

# A small launcher process starts the measured child and reports getrusage(RUSAGE_CHILDREN).ru_maxrss after it
# exits. The launcher is needed because a child's ru_maxrss also counts the memory of the process it was forked
# from (until exec): forked straight from the bench, which holds the decoded corpus, it would report the bench's
# size. Forked from the small launcher, that floor is a few MB, far below what is measured.
_LAUNCHER = r"""
import json, resource, subprocess, sys
proc = subprocess.run([sys.executable, "-c", sys.argv[1], *sys.argv[2:]], capture_output=True, text=True)
if proc.returncode != 0:
    sys.stderr.write(proc.stderr[-2000:])
    sys.exit(proc.returncode)
info = json.loads(proc.stdout.strip().splitlines()[-1])
info["launcher_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
info["child_maxrss_kib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps(info))
"""


@dataclass
class MemoryResult:
    """Metric 5: peak RSS of processes around one 24 MP compress()."""

    peak_rss_mb: float
    baseline_rss_mb: float
    libvips_mozjpeg_rss_mb: float | None
    handler_imports_rss_mb: float | None
    status: str | None
    megapixels: float
    implied_lambda_memory_mb: int
    terraform_default_mb: int | None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)


def _child_peak_mb(mode: str, path: Path) -> tuple[float, dict[str, Any]]:
    """Run the measuring child in ``mode`` through the launcher; return its peak RSS in MB and its JSON."""
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root / "lambda"), str(root), env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, _CHILD, mode, str(path)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the memory child ({mode}) failed with exit code {proc.returncode}: {proc.stderr[-800:]}")
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    return info["child_maxrss_kib"] / 1024.0, info  # ru_maxrss is in KiB on Linux


def implied_lambda_memory(peak_mb: float, handler_extra_mb: float, headroom: float = 1.25) -> int:
    """Return the Lambda memory size (MB) that fits ``peak_mb`` plus the handler's imports with ``headroom``.

    Rounded up to a multiple of 64 MB, at least 128 MB (Lambda's minimum).
    """
    need = (peak_mb + max(0.0, handler_extra_mb)) * headroom
    return max(128, int(math.ceil(need / 64.0)) * 64)


def terraform_memory_default(root: Path | None = None) -> int | None:
    """Return the ``memory_size`` default of the Terraform module, or ``None`` when it cannot be read."""
    import re

    root = root or Path(__file__).resolve().parents[1]
    path = root / "terraform" / "modules" / "image-pipeline" / "variables.tf"
    try:
        text = path.read_text()
    except OSError:
        return None
    match = re.search(r'variable\s+"memory_size"\s*\{.*?default\s*=\s*(\d+)', text, re.S)
    return int(match.group(1)) if match else None


def peak_memory(photo: Photo, workdir: Path) -> MemoryResult:
    """Measure metric 5 on ``photo`` (the 24 MP upload) with fresh child processes."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "peak-rss-input.jpg"
    path.write_bytes(photo.data)
    baseline_mb, _ = _child_peak_mb("baseline", path)
    peak_mb, info = _child_peak_mb("compress", path)
    try:
        handler_mb: float | None = _child_peak_mb("handler", path)[0]
    except RuntimeError as exc:
        log.warning("could not measure the handler's imports: %s", exc)
        handler_mb = None
    try:
        libvips_mb: float | None = _child_peak_mb("libvips", path)[0]
    except RuntimeError as exc:
        log.warning("could not measure libvips + mozjpeg: %s", exc)
        libvips_mb = None
    extra = (handler_mb - baseline_mb) if handler_mb is not None else 0.0
    log.info(
        "peak RSS %.1f MP: compress %.1f MB, interpreter+imports+input %.1f MB, with handler imports %s MB",
        photo.megapixels,
        peak_mb,
        baseline_mb,
        f"{handler_mb:.1f}" if handler_mb is not None else "n/a",
    )
    return MemoryResult(
        peak_rss_mb=round(peak_mb, 1),
        baseline_rss_mb=round(baseline_mb, 1),
        libvips_mozjpeg_rss_mb=round(libvips_mb, 1) if libvips_mb is not None else None,
        handler_imports_rss_mb=round(handler_mb, 1) if handler_mb is not None else None,
        status=info.get("status"),
        megapixels=round(photo.megapixels, 2),
        implied_lambda_memory_mb=implied_lambda_memory(peak_mb, extra),
        terraform_default_mb=terraform_memory_default(),
    )
