"""The failure copy: the original goes to the failed bucket with the reason, and an older output leaves the destination.

Only what the content or a permanent misconfiguration causes comes here; the copy is server-side (CopyObject), so
the function never uploads the original's bytes again.
"""

from __future__ import annotations

from dataclasses import replace

from image_compressor import aws
from image_compressor.identity import Identity, ObjectRef
from image_compressor.notify import notify_once, written
from image_compressor.observability import logger
from image_compressor.outcomes import Outcome, elapsed_ms, superseded, unplaced
from image_compressor.outputs import remove_older_output
from image_compressor.result import MetadataKey, Result, Status, rounded_ms
from image_compressor.settings import Settings


def fail(
    ref: ObjectRef,
    source: aws.ObjectInfo,
    identity: Identity,
    result: Result,
    settings: Settings,
    started: float,
    records: dict[str, aws.ObjectInfo | None],
    compress_ms: float | None = None,
) -> Outcome:
    """Copy the original to the failed bucket with the reason, remove an older output from the destination, notify.

    The copy is conditional on the source still being the version judged (else ``superseded``). When the
    destination holds an output of an older upload of this key (``records``), the reason says it is removed, and it
    is (latest wins: the destination never shows an older version's output after a newer one failed).

    Parameters
    ----------
    ref : ObjectRef
        The source object.
    source : aws.ObjectInfo
        The source version judged (its ETag conditions the copy).
    identity : Identity
        The event.
    result : Result
        The ``failed`` result record; its ``ms`` becomes the handling time since ``started``.
    settings : Settings
        The buckets, the topic and the settings fingerprint.
    started : float
        ``time.perf_counter()`` when the handling of the object began.
    records : dict[str, aws.ObjectInfo | None]
        The destination object and failed copy as found before (see ``idempotency.read_records``).
    compress_ms : float | None
        The core's own compute time, when it ran.

    Returns
    -------
    Outcome
        ``failed`` (notified once); ``superseded`` when the source changed; ``error`` when the copy, the removal
        or the notification failed transiently, or the copy failed for good (the event is retried).
    """
    reason = result.reason or "unknown"
    if records.get(settings.dest_bucket) is not None:
        reason += (
            f"; the output of an earlier upload of this key was removed from s3://{settings.dest_bucket}/{ref.key} "
            "so that the destination does not show an older version"
        )
    result = replace(result, status=Status.FAILED, ms=elapsed_ms(started), reason=reason)
    try:
        aws.copy_object(
            ref.bucket,
            ref.key,
            settings.failed_bucket,
            _failed_metadata(result, source.etag, settings.fingerprint(), identity),
            source.content_type,
            source_etag=source.etag,
        )
    except aws.AwsError as exc:
        if exc.precondition_failed:
            return superseded(ref, "the source object was replaced before its failed copy was made", identity.event_id)
        logger.error(f"copying the original to the failed bucket failed: {exc}")
        why = (
            "Lambda retries the event"
            if exc.transient
            else (f"check that bucket {settings.failed_bucket!r} exists and the function may s3:PutObject to it")
        )
        return unplaced(
            ref,
            f"{result.reason}; and the copy to the failed bucket failed ({exc}); {why}",
            identity.event_id,
            input_bytes=result.input_bytes,
        )
    error = remove_older_output(ref, identity, settings, records)
    if error is not None:
        return error
    done = written(
        ref, identity.event_id, settings.failed_bucket, result, source.etag, failed_copy=True, compress_ms=compress_ms
    )
    return notify_once(settings, done)


def _failed_metadata(result: Result, etag: str, fingerprint: str, identity: Identity) -> dict[str, str]:
    """The failed copy's metadata: status, source ETag, settings, input size, ms, reason, identity, dimensions."""
    metadata = {
        MetadataKey.STATUS: Status.FAILED.value,
        MetadataKey.SOURCE_ETAG: etag,
        MetadataKey.SETTINGS: fingerprint,
        MetadataKey.INPUT_BYTES: str(result.input_bytes),
        MetadataKey.MS: str(rounded_ms(result.ms)),
        MetadataKey.REASON: result.reason or "",
        **identity.metadata(),
    }
    if result.width and result.height:
        metadata[MetadataKey.WIDTH] = str(result.width)
        metadata[MetadataKey.HEIGHT] = str(result.height)
    return {str(k): v for k, v in metadata.items()}
