"""Idempotency per event: what an outcome already recorded for the key decides before anything is computed.

The destination object and the failed copy of the key carry the identity of the event that wrote them. A retry of
that same event is a duplicate (nothing written again; published only if the first attempt did not); an outcome of a
newer event makes this one ``superseded`` (latest wins); an output made from the same source bytes and settings is
re-used for a new upload (its record rewritten server-side, no re-encode).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager

from image_compressor import aws
from image_compressor.identity import Identity, ObjectRef, compare
from image_compressor.notify import notify_once, written
from image_compressor.observability import logger
from image_compressor.outcomes import Outcome, elapsed_ms, superseded, unplaced
from image_compressor.outputs import output_metadata, remove_older_output
from image_compressor.result import NOTIFIED_TAG, MetadataKey, Result, Status, read_metadata
from image_compressor.settings import Settings

#: Outcomes whose destination object can serve a new upload of the same bytes and settings.
_REUSABLE = (Status.COMPRESSED.value, Status.KEPT_ORIGINAL.value)


#: Threads that HeadObject the destination object and the failed copy while the handler opens the source: made on
#: first use and kept for the container's lifetime (boto3 clients are thread-safe).
_LOOKUPS = 2
_pool: ThreadPoolExecutor | None = None


def _lookups() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=_LOOKUPS, thread_name_prefix="records")
    return _pool


@contextmanager
def reading_records(key: str, settings: Settings) -> Iterator[Callable[[], dict[str, aws.ObjectInfo | None]]]:
    """HeadObject the destination object and the failed copy of ``key`` in two threads while the block runs.

    The three requests an event starts with (the source's GetObject, these two lookups) then cost one round trip
    instead of three. Leaving the block waits for both lookups, so none outlives the event, whatever the block returns.

    Yields
    ------
    Callable[[], dict[str, aws.ObjectInfo | None]]
        Returns the destination and failed bucket names to what they hold under ``key`` (``None`` where nothing).
        A permanent error (e.g. access denied) is logged and read as "no record"; a transient one is raised as
        :class:`aws.AwsError` (the caller leaves the object unplaced, so the event is retried).
    """
    aws.client("s3")  # made once, here, not raced for by the two threads
    pool = _lookups()
    buckets = (settings.dest_bucket, settings.failed_bucket)
    futures = {bucket: pool.submit(_read_record, bucket, key) for bucket in buckets}

    def records() -> dict[str, aws.ObjectInfo | None]:
        return {bucket: future.result() for bucket, future in futures.items()}

    try:
        yield records
    finally:
        wait(futures.values())


def _read_record(bucket: str, key: str) -> aws.ObjectInfo | None:
    """HeadObject ``bucket``/``key``; ``None`` when absent or not readable (logged); raise a transient error."""
    try:
        return aws.head_object(bucket, key)
    except aws.AwsError as exc:
        if exc.transient:
            raise
        logger.warning(
            f"cannot check s3://{bucket}/{key} for an earlier outcome ({exc}); processing anyway. Grant the "
            "function s3:GetObject and s3:ListBucket on that bucket to make retries idempotent"
        )
        return None


def recorded_outcome(
    ref: ObjectRef,
    source: aws.ObjectInfo,
    identity: Identity,
    settings: Settings,
    records: dict[str, aws.ObjectInfo | None],
    started: float,
) -> Outcome | None:
    """Return the outcome the records of the key already decide for this event, or ``None`` to process it.

    In this order: an outcome of this very event (a retry) is a duplicate (:func:`duplicate`); an outcome of a newer
    event makes this one ``superseded``; a destination output made from the same source ETag and settings (compressed
    or kept-original) is re-used (:func:`reuse`).
    """
    for bucket, info in records.items():
        if info is not None and info.metadata.get(MetadataKey.SOURCE_EVENT) == identity.event_id:
            return duplicate(ref, bucket, info, identity, settings, records)
    for bucket, info in records.items():
        if info is not None and compare(identity, info.metadata) < 0:
            newer = f"an outcome of a newer upload of this key is already in s3://{bucket}/{ref.key}"
            return superseded(ref, newer, identity.event_id)
    dest = records[settings.dest_bucket]
    if (
        dest is not None
        and dest.metadata.get(MetadataKey.SOURCE_ETAG) == source.etag
        and dest.metadata.get(MetadataKey.SETTINGS) == settings.fingerprint()
        and dest.metadata.get(MetadataKey.STATUS) in _REUSABLE
    ):
        return reuse(ref, source, dest, identity, settings, started)
    return None


def duplicate(
    ref: ObjectRef,
    bucket: str,
    info: aws.ObjectInfo,
    identity: Identity,
    settings: Settings,
    records: dict[str, aws.ObjectInfo | None],
) -> Outcome:
    """Finish a retry of an event whose outcome is already written in ``bucket`` (``info``); write nothing again.

    A failed copy's older destination output is removed if the first attempt stopped before; the notification is
    published if the outcome carries no ``notified`` tag for this event (the first attempt crashed or timed out
    between the write and the publish). The outcome's figures are the recorded ones.

    Returns
    -------
    Outcome
        The recorded outcome, ``duplicate=True``; ``error`` when a transient error stopped the removal, the tag read
        or the publish (the event is retried).
    """
    failed_copy = bucket == settings.failed_bucket
    if failed_copy:
        error = remove_older_output(ref, identity, settings, records)
        if error is not None:
            return error
    stored = read_metadata(info.metadata, object_bytes=info.size, failed_copy=failed_copy)
    status = Status(stored.status)  # read_metadata reads any status as one of the result record's words
    result = Result(
        status,
        stored.input_bytes or 0,
        stored.output_bytes or 0 if status is not Status.FAILED else 0,
        stored.width or 0,
        stored.height or 0,
        stored.quality or 0,
        stored.ms or 0.0,
        stored.reason,
    )
    reused = info.metadata.get(MetadataKey.REUSED) == "true"
    source_etag = stored.source_etag or ""
    done = written(
        ref, identity.event_id, bucket, result, source_etag, failed_copy=failed_copy, reused=reused, duplicate=True
    )
    try:
        tags = aws.get_tags(bucket, ref.key)
    except aws.AwsError as exc:
        if exc.transient:
            return unplaced(ref, f"cannot tell whether the outcome was notified ({exc})", identity.event_id)
        logger.warning(f"cannot read the notified tag ({exc}); publishing again (subscribers dedup on event_id)")
        tags = {}
    if tags.get(NOTIFIED_TAG) == identity.event_id or not settings.sns_topic_arn:
        return done.outcome
    logger.info("the outcome of this event was written but not notified; publishing now")
    return notify_once(settings, done)


def reuse(
    ref: ObjectRef,
    source: aws.ObjectInfo,
    dest: aws.ObjectInfo,
    identity: Identity,
    settings: Settings,
    started: float,
) -> Outcome:
    """Give a new upload of bytes whose output ``dest`` is already current its outcome without re-encoding.

    The destination object is copied onto itself with the new event's identity (``CopySourceIfMatch`` on the
    inspected ETag, so a concurrent change is noticed) and ``output-reused=true``; then the outcome is notified.

    Returns
    -------
    Outcome
        The recorded status and figures with this handling's ``ms``, ``reused=True``; ``error`` when the record
        could not be rewritten (the event is retried).
    """
    stored = read_metadata(dest.metadata, object_bytes=dest.size, failed_copy=False)
    result = Result(
        Status(stored.status),
        stored.input_bytes or source.size,
        stored.output_bytes or dest.size,
        stored.width or 0,
        stored.height or 0,
        stored.quality or 0,
        elapsed_ms(started),
        stored.reason,
    )
    metadata = output_metadata(result, source.etag, settings.fingerprint(), identity)
    metadata[MetadataKey.REUSED.value] = "true"
    try:
        aws.copy_object(
            settings.dest_bucket, ref.key, settings.dest_bucket, metadata, dest.content_type, source_etag=dest.etag
        )
    except aws.AwsError as exc:
        if exc.precondition_failed:
            return unplaced(ref, "the destination object changed while its record was rewritten", identity.event_id)
        if exc.transient:
            return unplaced(ref, f"the output's record was not rewritten ({exc})", identity.event_id)
        logger.warning(f"re-using the earlier output failed ({exc}); processing the object again")
        return unplaced(ref, f"cannot rewrite the record of the re-used output ({exc})", identity.event_id)
    logger.info("unchanged bytes and settings: the existing output was re-used, not re-encoded")
    done = written(ref, identity.event_id, settings.dest_bucket, result, source.etag, reused=True)
    return notify_once(settings, done)
