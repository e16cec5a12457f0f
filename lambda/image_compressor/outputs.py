"""The destination bucket: write an output exactly once and never let an older upload's output stand.

The output's metadata (the result record and the event's identity), the conditional write that re-looks when another
writer got there first or the answer was ambiguous, and the removal of an older upload's output.
"""

from __future__ import annotations

from dataclasses import dataclass

from image_compressor import aws
from image_compressor.identity import Identity, ObjectRef, compare
from image_compressor.observability import MetricUnit, logger, metrics
from image_compressor.outcomes import Outcome, superseded, unplaced
from image_compressor.result import MetadataKey, Result, rounded_ms
from image_compressor.settings import Settings

#: Conditional writes that found the destination changed are re-evaluated this many times before the event is retried.
MAX_WRITE_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class NotWritten:
    """The destination refused the output for good (a permanent error): the original goes to the failed bucket.

    Attributes
    ----------
    reason : str
        What failed and what to check, worded for the failed copy's reason.
    """

    reason: str


def output_metadata(result: Result, etag: str, fingerprint: str, identity: Identity) -> dict[str, str]:
    """Return the S3 metadata of an output: the result record, the source ETag, the settings and the event identity.

    Parameters
    ----------
    result : Result
        The result record (``reason`` only when there is one).
    etag : str
        ETag of the source version the output was made from.
    fingerprint : str
        ``Settings.fingerprint()`` of the settings it was made with.
    identity : Identity
        The event the output belongs to.

    Returns
    -------
    dict[str, str]
        Metadata keys (``result.MetadataKey`` values) to string values.
    """
    metadata = {
        MetadataKey.STATUS: result.status.value,
        MetadataKey.INPUT_BYTES: str(result.input_bytes),
        MetadataKey.OUTPUT_BYTES: str(result.output_bytes),
        MetadataKey.QUALITY: str(result.quality),
        MetadataKey.MS: str(rounded_ms(result.ms)),
        MetadataKey.SOURCE_ETAG: etag,
        MetadataKey.SETTINGS: fingerprint,
        MetadataKey.WIDTH: str(result.width),
        MetadataKey.HEIGHT: str(result.height),
        **identity.metadata(),
    }
    if result.reason:
        metadata[MetadataKey.REASON] = result.reason
    return {str(key): value for key, value in metadata.items()}


def write_output(
    ref: ObjectRef,
    source: aws.ObjectInfo,
    identity: Identity,
    settings: Settings,
    data: bytes,
    metadata: dict[str, str],
    dest: aws.ObjectInfo | None,
) -> str | Outcome | NotWritten:
    """Write the output to the destination with a conditional PutObject.

    The write is conditional on the destination object being the one inspected (``dest``: ``If-Match``) or absent
    (``If-None-Match: *``); when another writer got there first the destination is looked at again (a newer event:
    ``superseded``; this very event: written), at most :data:`MAX_WRITE_ATTEMPTS` times. After an ambiguous error (a
    timeout or 5xx after which the write may have happened) the destination is looked at before deciding. After the
    write, the source is looked at again: if it was replaced meanwhile, the output is taken back (``superseded``) so
    it never stands for a newer upload.

    Returns
    -------
    str | Outcome | NotWritten
        The output's ETag when it is written; an ``error`` or ``superseded`` outcome when it is not (a transient
        error, a newer upload); :class:`NotWritten` after a permanent error (the caller copies the original to the
        failed bucket).
    """
    target = f"s3://{settings.dest_bucket}/{ref.key}"
    for _attempt in range(MAX_WRITE_ATTEMPTS):
        try:
            current = aws.head_object(ref.bucket, ref.key)
        except aws.AwsError as exc:
            return unplaced(ref, f"cannot read the source object again before writing ({exc})", identity.event_id)
        if current is None or current.etag != source.etag:
            return superseded(ref, "the source object was replaced while it was being compressed", identity.event_id)
        try:
            etag = aws.put_object(
                settings.dest_bucket,
                ref.key,
                data,
                metadata,
                if_match=dest.etag if dest is not None else None,
                if_absent=dest is None,
            )
        except aws.AwsError as exc:
            if exc.precondition_failed or exc.code in ("NoSuchKey", "404"):
                logger.info(f"the destination object changed while this event was processed ({exc.code}); looking")
            elif exc.ambiguous:
                return _after_ambiguous_write(ref, identity, settings, len(data), exc)
            elif exc.transient:
                return unplaced(ref, f"the output was not written ({exc})", identity.event_id)
            else:
                logger.warning("writing to the destination bucket failed permanently; the original goes to failed")
                return NotWritten(
                    f"could not write the output to the destination bucket ({exc}); check that bucket "
                    f"{settings.dest_bucket!r} exists and the function may s3:PutObject to it, then upload the "
                    "image again"
                )
            try:
                dest = aws.head_object(settings.dest_bucket, ref.key)
            except aws.AwsError as again:
                return unplaced(ref, f"cannot look at {target} again ({again})", identity.event_id)
            if dest is not None and dest.metadata.get(MetadataKey.SOURCE_EVENT) == identity.event_id:
                return dest.etag  # a concurrent attempt of this same event wrote it
            if dest is not None and compare(identity, dest.metadata) < 0:
                return superseded(ref, f"a newer upload's output reached {target} first", identity.event_id)
            continue
        return _unless_source_replaced(ref, source, identity, settings, etag)
    return unplaced(ref, f"{target} kept changing under {MAX_WRITE_ATTEMPTS} conditional writes", identity.event_id)


def _after_ambiguous_write(
    ref: ObjectRef, identity: Identity, settings: Settings, size: int, exc: aws.AwsError
) -> str | Outcome:
    """The output's ETag when the write ``exc`` left in doubt had happened (this event's object), else ``error``."""
    logger.warning(f"the output write may or may not have happened ({exc}); looking before deciding")
    try:
        seen = aws.head_object(settings.dest_bucket, ref.key)
    except aws.AwsError as again:
        return unplaced(ref, f"{exc}; and the check after it failed too ({again})", identity.event_id)
    if seen is not None and seen.metadata.get(MetadataKey.SOURCE_EVENT) == identity.event_id and seen.size == size:
        logger.info("the output write had happened; carrying on")
        return seen.etag
    return unplaced(ref, f"the output was not written ({exc})", identity.event_id)


def _unless_source_replaced(
    ref: ObjectRef, source: aws.ObjectInfo, identity: Identity, settings: Settings, etag: str
) -> str | Outcome:
    """The written output's ETag, or ``superseded`` (the output deleted again) when the source changed meanwhile."""
    try:
        after = aws.head_object(ref.bucket, ref.key)
    except aws.AwsError as exc:
        logger.warning(f"cannot check the source after writing ({exc}); keeping the output")
        return etag
    if after is None or after.etag != source.etag:
        deleted = _delete_quietly(settings.dest_bucket, ref.key, etag)
        logger.info(
            "the source was replaced while the output was written; output taken back", extra={"deleted": deleted}
        )
        return superseded(ref, "the source object was replaced while the output was written", identity.event_id)
    return etag


def remove_older_output(
    ref: ObjectRef, identity: Identity, settings: Settings, records: dict[str, aws.ObjectInfo | None]
) -> Outcome | None:
    """Delete the destination's output of an older upload of the key (``If-Match`` its ETag).

    The destination is looked at again first (it may have changed since ``records`` was read); an output of a newer
    event (or of this one) stays. A permanent error on the look or the delete is logged (the delete's is counted as
    ``StaleOutputsKept``) and the older output stays.

    Returns
    -------
    Outcome | None
        An ``error`` outcome after a transient error (the event is retried), else ``None``.
    """
    try:
        dest = aws.head_object(settings.dest_bucket, ref.key)
    except aws.AwsError as exc:
        if not exc.transient:
            logger.warning(f"cannot check the destination for an older output ({exc})")
            return None
        return unplaced(ref, f"cannot check the destination for an older output ({exc})", identity.event_id)
    if dest is None:
        return None
    if dest.metadata.get(MetadataKey.SOURCE_EVENT) == identity.event_id or compare(identity, dest.metadata) < 0:
        return None
    try:
        deleted = aws.delete_object(settings.dest_bucket, ref.key, if_match=dest.etag)
    except aws.AwsError as exc:
        if exc.transient:
            return unplaced(ref, f"the older output was not removed from the destination ({exc})", identity.event_id)
        logger.error(f"the older output could not be removed from the destination ({exc}); grant s3:DeleteObject")
        metrics.add_metric(name="StaleOutputsKept", unit=MetricUnit.Count, value=1)
        return None
    logger.info("removed the output of an older upload from the destination", extra={"deleted": deleted})
    return None


def _delete_quietly(bucket: str, key: str, etag: str) -> bool:
    """Delete ``s3://bucket/key`` if it still has ``etag``; log instead of raising."""
    try:
        return aws.delete_object(bucket, key, if_match=etag)
    except aws.AwsError as exc:
        logger.warning(f"could not delete s3://{bucket}/{key} ({exc})")
        return False
