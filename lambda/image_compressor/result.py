"""The result record shared by the core, the handler, the CLI, SNS, object metadata and the dashboard."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """Outcome of compressing one object; the same words everywhere."""

    COMPRESSED = "compressed"
    KEPT_ORIGINAL = "kept-original"
    FAILED = "failed"


#: Decimals of every time in milliseconds that leaves the function (message, metadata, log line, dashboard).
MS_DECIMALS = 1


def rounded_ms(ms: float) -> float:
    """Return ``ms`` rounded to :data:`MS_DECIMALS`: the one number the message, metadata, log and dashboard show."""
    return round(ms, MS_DECIMALS)


@dataclass(frozen=True, slots=True)
class Result:
    """What happened to one image.

    Attributes
    ----------
    status : Status
        ``compressed`` (smaller output written), ``kept-original`` (output would not be smaller,
        so the original bytes are the output) or ``failed`` (nothing usable; ``reason`` says why).
    input_bytes : int
        Size of the input object.
    output_bytes : int
        Size of the bytes that go to the destination (equals ``input_bytes`` for ``kept-original``,
        0 for ``failed``).
    width, height : int
        Output pixel dimensions after orientation and any downscale (0 when unknown).
    quality : int
        JPEG quality used by the encoder (0 when nothing was encoded).
    ms : float
        Wall-clock milliseconds. From the core: its own compute time. From the function (message, object
        metadata, summary log line, dashboard): the whole handling of the object until its outcome was written,
        S3 reads and compression included (see :func:`rounded_ms` for the one rounding all of them show).
    reason : str | None
        Why the image was not compressed; ``None`` for ``compressed``.
    """

    status: Status
    input_bytes: int
    output_bytes: int
    width: int
    height: int
    quality: int
    ms: float
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the record as a JSON-ready dict with ``status`` as its plain string value."""
        data = asdict(self)
        data["status"] = self.status.value
        data["ms"] = rounded_ms(self.ms)
        return data

    @property
    def saved_ratio(self) -> float:
        """Fraction of input bytes saved (0.0 when nothing was saved or the input was empty)."""
        if self.input_bytes <= 0 or self.status is Status.FAILED:
            return 0.0
        return max(0.0, 1.0 - self.output_bytes / self.input_bytes)
