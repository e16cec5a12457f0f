"""Deadline and memory guards: estimate whether one image can finish in the time and memory the function has.

Pure: the estimate comes from the frame header (:mod:`image_compressor.jpegfile`, nothing decoded) and a few
measured constants. The function calls :func:`preflight` after downloading an object and before compressing it; an
image that cannot finish goes to the failed bucket with a reason that says what to change, instead of a silent
timeout (retried three times, then the dead-letter queue) or an out-of-memory kill.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from image_compressor import jpegfile, sniff
from image_compressor.settings import CompressionOptions

#: Compute milliseconds per megapixel on one full vCPU, by encoder: about twice what the whole core (decode, quality
#: search, encode) takes on these machines (jpegli with the SSIM search 25-40 ms/MP, pillow fixed quality ~60 ms/MP;
#: jpegli is given the same allowance as pillow).
MS_PER_MEGAPIXEL = {"jpegli": 120.0, "pillow": 120.0}
#: Lambda gives a function one full vCPU at 1769 MB and proportionally less below: compute time stretches by this.
FULL_VCPU_MB = 1769
#: Peak bytes per declared pixel: the decoded RGB image, a resized or oriented copy, encoder and SSIM buffers.
BYTES_PER_PIXEL = 8
#: Memory the runtime, Pillow, numpy and the encoders hold before any image, in MB.
BASE_MEMORY_MB = 120

#: The outcome reserve: time kept back, after compressing, for writing the outcome and notifying. It is the slowest
#: recent outcome write times :data:`RESERVE_FACTOR` (:data:`FIRST_OUTCOME_MS` before any was measured), at least
#: :data:`MIN_RESERVE_MS`, and at most :data:`MAX_RESERVE_MS` or the invocation's :data:`MAX_RESERVE_SHARE`. A cold
#: container keeps 10 s of a 60 s timeout, 1 s of a 3 s one and a third of a second of a 1 s one; once it measured
#: its writes (tens of milliseconds on S3 and SNS), twice the slowest of them.
FIRST_OUTCOME_MS = 5_000.0
RESERVE_FACTOR = 2.0
MIN_RESERVE_MS = 150.0
MAX_RESERVE_MS = 10_000.0
MAX_RESERVE_SHARE = 1 / 3
#: Outcome writes remembered by a warm container (the reserve follows the slowest of them).
OUTCOMES_REMEMBERED = 20


class OutcomeCosts:
    """What writing an outcome really cost in this container, and the reserve that follows from it.

    It remembers the last :data:`OUTCOMES_REMEMBERED` writes. Thread-safe; pure (no clock of its own: the caller
    measures).
    """

    def __init__(self, remembered: int = OUTCOMES_REMEMBERED) -> None:
        self._costs: deque[float] = deque(maxlen=remembered)
        self._lock = threading.Lock()

    def record(self, ms: float) -> None:
        """Remember that writing one outcome (output or failure copy, tag, notification) took ``ms``."""
        with self._lock:
            self._costs.append(max(0.0, ms))

    def slowest_ms(self) -> float | None:
        """The slowest remembered outcome write, or ``None`` before the first."""
        with self._lock:
            return max(self._costs) if self._costs else None

    def reserve_ms(self, invocation_ms: float | None) -> float:
        """Return the milliseconds to keep back for the outcome in an invocation of ``invocation_ms`` in all.

        ``invocation_ms`` is the time the invocation had when it started (about the function's timeout; ``None``:
        unknown, then the cap is :data:`MAX_RESERVE_MS` only).
        """
        slowest = self.slowest_ms()
        wanted = max(MIN_RESERVE_MS, RESERVE_FACTOR * (FIRST_OUTCOME_MS if slowest is None else slowest))
        cap = MAX_RESERVE_MS if invocation_ms is None else min(MAX_RESERVE_MS, invocation_ms * MAX_RESERVE_SHARE)
        return min(wanted, cap)


@dataclass(frozen=True, slots=True)
class Estimate:
    """What compressing one image is expected to cost.

    Attributes
    ----------
    width, height : int
        Declared frame size.
    ms : float
        Compute milliseconds on the function's CPU share (``memory_mb``; one full vCPU when unknown).
    memory_mb : float
        Peak memory in MB, the input object included.
    """

    width: int
    height: int
    ms: float
    memory_mb: float

    @property
    def megapixels(self) -> float:
        """Declared pixels in millions."""
        return self.width * self.height / 1e6


def estimate(data: bytes, options: CompressionOptions, memory_mb: int | None = None) -> Estimate | None:
    """Estimate time and memory for compressing ``data`` from its frame header alone.

    Returns ``None`` when the core refuses the image anyway before decoding (not a JPEG, broken header, unsupported
    variant, over ``max_pixels``): its own reason is the better one, and refusing costs nothing.
    """
    if not sniff.is_jpeg(data):
        return None
    try:
        layout = jpegfile.parse(data, find_end=False)
    except jpegfile.JpegStructureError:
        return None
    if layout.unsupported() or layout.pixels > options.max_pixels:
        return None
    megapixels = layout.pixels / 1e6
    cpu_share = min(1.0, memory_mb / FULL_VCPU_MB) if memory_mb else 1.0
    ms = megapixels * MS_PER_MEGAPIXEL.get(options.encoder, max(MS_PER_MEGAPIXEL.values())) / cpu_share
    memory = BASE_MEMORY_MB + (layout.pixels * BYTES_PER_PIXEL + 2 * len(data)) / 2**20
    return Estimate(layout.width, layout.height, ms, memory)


def preflight(
    data: bytes,
    options: CompressionOptions,
    *,
    remaining_ms: float | None,
    memory_mb: int | None,
    margin_ms: float,
) -> str | None:
    """Return why compressing ``data`` cannot finish in the function's memory or remaining time, or ``None``.

    Parameters
    ----------
    data : bytes
        The whole object.
    options : CompressionOptions
        The compression settings (encoder, pixel cap).
    remaining_ms : float | None
        Milliseconds left before the function times out (``context.get_remaining_time_in_millis()``); ``None``
        skips the deadline check (the CLI, tests without a context).
    memory_mb : int | None
        The function's memory size; ``None`` skips the memory check.
    margin_ms : float
        Time kept back for writing the outcome and notifying.

    Returns
    -------
    str | None
        A reason that names the numbers and what to change (the function's memory or timeout, the pixel cap), or
        ``None`` when the estimate fits.
    """
    found = estimate(data, options, memory_mb)
    if found is None:
        return None
    size = f"{found.width}x{found.height} = {found.megapixels:.1f} MP"
    if memory_mb and found.memory_mb > memory_mb:
        return (
            f"not enough memory: decoding {size} needs about {found.memory_mb:.0f} MB, the function has {memory_mb} "
            "MB; raise the function's memory (Terraform variable memory_size) or lower MAX_PIXELS, or downscale the "
            "image before uploading"
        )
    if remaining_ms is not None and found.ms > remaining_ms - margin_ms:
        left = max(0.0, remaining_ms - margin_ms) / 1000
        needed = (found.ms + margin_ms) / 1000
        return (
            f"not enough time: compressing {size} takes about {found.ms / 1000:.1f} s of compute"
            + (f" at {memory_mb} MB" if memory_mb else "")
            + f", but only {left:.1f} s of the function's timeout were left (after {margin_ms / 1000:.1f} s kept for "
            f"writing the outcome); it needs about {needed:.1f} s more than the download: raise the function's "
            "timeout (Terraform variable timeout, or the function's Timeout setting) or its memory (memory_size: "
            "more memory gives more CPU), or downscale the image before uploading"
        )
    return None
