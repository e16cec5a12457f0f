"""Pure JPEG compression core: bytes in, bytes and a result record out. No AWS imports here."""

from __future__ import annotations

from dataclasses import dataclass

from image_compressor.result import Result
from image_compressor.settings import CompressionOptions


@dataclass(frozen=True, slots=True)
class Compressed:
    """Output of :func:`compress`.

    Attributes
    ----------
    result : Result
        The result record.
    data : bytes | None
        Bytes for the destination: the new JPEG (``compressed``), the unchanged input (``kept-original``),
        or ``None`` (``failed``).
    """

    result: Result
    data: bytes | None


def compress(data: bytes, options: CompressionOptions | None = None) -> Compressed:
    """Compress one JPEG (stub: being implemented)."""
    raise NotImplementedError
