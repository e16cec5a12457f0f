"""The result record shared by the core, the handler, the CLI, SNS, object metadata and the dashboard.

This module is the one definition of the result vocabulary: the statuses (:class:`Status`), the record
(:class:`Result`), the S3 object metadata keys the function writes (:class:`MetadataKey`), and how that metadata is
read back into a record (:func:`read_metadata`, used by the function's idempotency check and by the dashboard).
"""

from __future__ import annotations

from collections.abc import Mapping
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


#: Every status, in the order they are shown.
STATUSES: tuple[str, ...] = tuple(status.value for status in Status)


class MetadataKey(StrEnum):
    """S3 user-metadata keys of a destination object or failed copy (S3 stores them lower-case).

    ``original-bytes`` holds the record's ``input_bytes``, ``processing-ms`` its ``ms``; the other keys are the
    record's field names with dashes. ``source-etag`` and ``settings`` tie the object to the source version and the
    settings that produced it (an output is re-used for a new upload of the same bytes under the same settings);
    ``source-event``, ``source-sequencer``, ``source-version-id`` and ``source-last-modified`` identify the event and
    the source version that produced the object (a retry of the same event is a duplicate; an older event never
    replaces a newer one's outcome); ``output-reused`` says an earlier upload's output was re-used without
    re-encoding; ``retry-requested`` and ``retried-source-etag`` are written when a failed copy is resubmitted.
    """

    STATUS = "status"
    INPUT_BYTES = "original-bytes"
    OUTPUT_BYTES = "output-bytes"
    QUALITY = "quality"
    MS = "processing-ms"
    WIDTH = "width"
    HEIGHT = "height"
    REASON = "reason"
    SOURCE_ETAG = "source-etag"
    SETTINGS = "settings"
    RETRY_REQUESTED = "retry-requested"
    RETRIED_SOURCE_ETAG = "retried-source-etag"
    SOURCE_EVENT = "source-event"
    SOURCE_SEQUENCER = "source-sequencer"
    SOURCE_VERSION = "source-version-id"
    SOURCE_MODIFIED = "source-last-modified"
    REUSED = "output-reused"


#: Object tag on a destination object or failed copy once its notification was published: the ``source-event`` id
#: it was published for (a tag, not metadata, so it is added without rewriting the object or changing its ETag).
NOTIFIED_TAG = "notified"


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


@dataclass(frozen=True, slots=True)
class StoredResult:
    """A result record as read back from an object's metadata (every figure may be missing on old objects).

    Attributes
    ----------
    status : str
        One of :data:`STATUSES`.
    input_bytes, output_bytes : int | None
        Sizes before and after (``output_bytes`` is ``None`` for ``failed``).
    width, height, quality : int | None
        As in :class:`Result`.
    ms : float | None
        Processing time in milliseconds.
    reason : str | None
        Why the image was not compressed.
    source_etag : str | None
        ETag (unquoted) of the source object this result belongs to.
    settings : str | None
        Fingerprint of the compression settings used.
    retry_requested : str | None
        For a resubmitted failed copy: when it was resubmitted (ISO time), until a new outcome is written.
    """

    status: str
    input_bytes: int | None
    output_bytes: int | None
    width: int | None = None
    height: int | None = None
    quality: int | None = None
    ms: float | None = None
    reason: str | None = None
    source_etag: str | None = None
    settings: str | None = None
    retry_requested: str | None = None

    @property
    def saved_bytes(self) -> int:
        """Bytes saved against the input (0 for ``failed`` or unknown sizes)."""
        if self.status == Status.FAILED or not self.input_bytes or self.output_bytes is None:
            return 0
        return max(0, self.input_bytes - self.output_bytes)

    @property
    def saved_ratio(self) -> float:
        """Fraction of the input saved, 0.0-1.0."""
        return self.saved_bytes / self.input_bytes if self.input_bytes else 0.0


def read_metadata(metadata: Mapping[str, Any], *, object_bytes: int, failed_copy: bool) -> StoredResult:
    """Read the result record from an object's S3 metadata.

    Parameters
    ----------
    metadata : Mapping[str, Any]
        The object's user metadata (keys of any case).
    object_bytes : int
        Size of the object itself: the output size of a destination object without ``output-bytes``, the input size
        of a failed copy without ``original-bytes``.
    failed_copy : bool
        Whether the object is in the failed bucket; a status that is missing or unknown then reads as ``failed``
        (also when a ``reason`` is present), else as ``compressed``.

    Returns
    -------
    StoredResult
        The record; figures that are missing or unreadable are ``None``.
    """
    meta = {str(k).lower(): str(v) for k, v in metadata.items()}
    status = meta.get(MetadataKey.STATUS) or ""
    if status not in STATUSES:
        status = Status.FAILED.value if meta.get(MetadataKey.REASON) or failed_copy else Status.COMPRESSED.value
    input_bytes = _int(meta.get(MetadataKey.INPUT_BYTES))
    output_bytes = _int(meta.get(MetadataKey.OUTPUT_BYTES))
    if status == Status.FAILED:
        input_bytes = input_bytes if input_bytes is not None else object_bytes
        output_bytes = None
    elif output_bytes is None:
        output_bytes = object_bytes
    has_source = MetadataKey.SOURCE_ETAG in meta
    return StoredResult(
        status=status,
        input_bytes=input_bytes,
        output_bytes=output_bytes,
        width=_int(meta.get(MetadataKey.WIDTH)),
        height=_int(meta.get(MetadataKey.HEIGHT)),
        quality=_int(meta.get(MetadataKey.QUALITY)),
        ms=_float(meta.get(MetadataKey.MS)),
        reason=meta.get(MetadataKey.REASON) or None,
        source_etag=unquote_etag(meta.get(MetadataKey.SOURCE_ETAG)),
        settings=meta.get(MetadataKey.SETTINGS) or None,
        retry_requested=None if has_source else meta.get(MetadataKey.RETRY_REQUESTED),
    )


def unquote_etag(value: Any) -> str | None:
    """Return an ETag without its quotes, ``None`` when empty."""
    if not value:
        return None
    return str(value).strip().strip('"') or None


def _int(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        return None
