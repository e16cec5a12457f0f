"""Per-object orchestration of the function: settings + the pure core + the AWS glue.

For each source object: refuse recursion, skip work already done (idempotent retries), compress, write the output to
the destination bucket or copy the original server-side to the failed bucket, notify, log one summary line and emit
metrics. An object that ends in neither bucket is reported by :class:`UnprocessedObjectsError`, raised after every
object of the event had its turn, so Lambda retries the event (and finally sends it to the dead-letter queue).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from image_compressor import aws, core
from image_compressor.notification import build_message, build_payload, build_subject, message_attributes
from image_compressor.observability import MetricUnit, logger, metrics
from image_compressor.result import MetadataKey, Result, Status, rounded_ms
from image_compressor.settings import Settings

#: Summary statuses beyond the result record's: nothing was written and the event is retried.
ERROR = "error"
#: The source bucket is the destination or failed bucket: refused, nothing written, the event is retried.
REFUSED = "refused"
#: The source object was gone when the function looked: nothing to do.
MISSING = "missing"

#: The message of the one summary log line per object.
SUMMARY_MESSAGE = "image processed"


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """A source object named by an S3 event record (key already URL-decoded)."""

    bucket: str
    key: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the function did with one source object.

    Attributes
    ----------
    bucket, key : str
        The source object.
    status : str
        ``compressed``, ``kept-original`` or ``failed`` (the result record's words), or ``error`` (could not be put
        anywhere: retried), ``refused`` (recursion guard), ``missing`` (source gone).
    input_bytes, output_bytes : int
        Sizes of the source object and of what was written to the destination (0 if nothing).
    ms : float
        Wall-clock milliseconds of the function's handling of this object until its outcome was written (source
        HeadObject, checks, GetObject, compression): the number the message, the object metadata and the dashboard
        show. For an object that got no outcome (error, refused, missing, duplicate) the whole handling.
    total_ms : float
        The whole handling, the outcome write and the notification included (only the log line has it: the
        object metadata is written before the write ends).
    reason : str | None
        Why it was not compressed, or what went wrong.
    target : str | None
        ``s3://bucket/key`` where the object ended (destination or failed bucket).
    duplicate : bool
        True when an earlier run already produced this outcome and nothing was written this time.
    result : Result | None
        The result record written to the metadata and the message (its ``ms`` is ``ms``), when there was one.
    compress_ms : float | None
        The compression core's own compute time, when it ran.
    """

    bucket: str
    key: str
    status: str
    input_bytes: int = 0
    output_bytes: int = 0
    ms: float = 0.0
    total_ms: float = 0.0
    reason: str | None = None
    target: str | None = None
    duplicate: bool = False
    result: Result | None = None
    compress_ms: float | None = None

    @property
    def placed(self) -> bool:
        """True when nothing is left to do: the object is in the destination or failed bucket, or is gone."""
        return self.status not in (ERROR, REFUSED)

    def to_dict(self) -> dict[str, Any]:
        """Return the outcome as a JSON-ready dict (the handler's response lists these)."""
        return {
            "bucket": self.bucket,
            "key": self.key,
            "status": self.status,
            "input_bytes": self.input_bytes,
            "output_bytes": self.output_bytes,
            "ms": rounded_ms(self.ms),
            "reason": self.reason,
            "target": self.target,
            "duplicate": self.duplicate,
        }


class UnprocessedObjectsError(RuntimeError):
    """Some objects of the event ended in neither the destination nor the failed bucket; Lambda should retry.

    Attributes
    ----------
    outcomes : list[Outcome]
        The objects left in the source bucket only, each with its reason.
    """

    def __init__(self, outcomes: Sequence[Outcome]) -> None:
        self.outcomes = list(outcomes)
        listed = "; ".join(f"s3://{o.bucket}/{o.key} ({o.status}: {o.reason})" for o in self.outcomes)
        super().__init__(
            f"{len(self.outcomes)} object(s) were neither written to the destination nor copied to the failed "
            f"bucket and stay in the source bucket only: {listed}. Fix the cause named above; Lambda retries the "
            "event and then sends it to the dead-letter queue, from where it can be replayed."
        )


def process_objects(refs: Sequence[ObjectRef], settings: Settings) -> list[Outcome]:
    """Process every object in ``refs`` in order and return their outcomes.

    Each object gets ``bucket``/``key`` appended to the log keys, exactly one summary log line
    (message ``"image processed"``) and its metrics; ``ImagesReceived`` counts the objects of the event.

    Raises
    ------
    UnprocessedObjectsError
        After all objects were tried, when any of them ended in neither bucket (``error`` or ``refused``).
    """
    metrics.add_metric(name="ImagesReceived", unit=MetricUnit.Count, value=len(refs))
    outcomes: list[Outcome] = []
    for ref in refs:
        logger.append_keys(bucket=ref.bucket, key=ref.key)
        start = time.perf_counter()
        try:
            outcome = process_object(ref, settings, started=start)
        except Exception as exc:  # a bug of ours must not stop the other records; the event is retried
            logger.exception("unexpected error while processing the object")
            outcome = Outcome(ref.bucket, ref.key, ERROR, reason=f"unexpected error: {type(exc).__name__}: {exc}")
        total = _elapsed_ms(start)
        outcome = replace(outcome, ms=outcome.ms if outcome.result is not None else total, total_ms=total)
        _log_summary(outcome)
        _emit_metrics(outcome)
        outcomes.append(outcome)
    logger.remove_keys(["bucket", "key"])
    unplaced = [o for o in outcomes if not o.placed]
    if unplaced:
        metrics.add_metric(name="ObjectsUnprocessed", unit=MetricUnit.Count, value=len(unplaced))
        raise UnprocessedObjectsError(unplaced)
    return outcomes


def process_object(ref: ObjectRef, settings: Settings, started: float | None = None) -> Outcome:
    """Compress one source object and put the result where it belongs; return what happened.

    ``started`` is the ``time.perf_counter()`` value when the handling of this object began (default: now); the
    result record written to the object metadata and the message carries the milliseconds from then until the
    outcome write, and so does the returned outcome's ``ms``.

    Steps: recursion guard; HeadObject the source (size, ETag); skip when the destination or failed bucket already
    holds an output for this ETag and settings fingerprint; refuse objects above ``MAX_OBJECT_BYTES`` without
    downloading them; download, compress with the core, PutObject to the destination. Every failure copies the
    original server-side to the failed bucket with the reason; success and failure are published to SNS.
    Per-object problems become the returned outcome; nothing is raised for them.
    """
    started = time.perf_counter() if started is None else started
    if ref.bucket in (settings.dest_bucket, settings.failed_bucket):
        which = "DEST_BUCKET" if ref.bucket == settings.dest_bucket else "FAILED_BUCKET"
        reason = (
            f"refusing to process: {which} is the source bucket {ref.bucket!r}, so every write would trigger the "
            f"function again (recursion); set {which} to a different bucket, or remove the {ref.bucket!r} trigger"
        )
        logger.error(reason)
        return Outcome(ref.bucket, ref.key, REFUSED, reason=reason)

    try:
        source = aws.head_object(ref.bucket, ref.key)
    except aws.AwsError as exc:
        return _unplaced(ref, f"cannot read the source object ({exc}); check the function's s3:GetObject permission")
    if source is None:
        logger.warning("the source object no longer exists; nothing to do")
        return Outcome(ref.bucket, ref.key, MISSING, reason="source object no longer exists")

    fingerprint = settings.compression.fingerprint()
    previous = _previous_outcome(ref, source.etag, fingerprint, settings)
    if previous is not None:
        return previous

    if source.size > settings.max_object_bytes:
        reason = (
            f"object is {source.size} bytes, larger than MAX_OBJECT_BYTES={settings.max_object_bytes}, so it was not "
            "downloaded; shrink the image before uploading, or raise MAX_OBJECT_BYTES (and the function's memory)"
        )
        result = Result(Status.FAILED, source.size, 0, 0, 0, 0, 0.0, reason)
        return _fail(ref, source, source.etag, result, settings, started)

    try:
        data, got = aws.get_object(ref.bucket, ref.key)
    except aws.AwsError as exc:
        return _unplaced(ref, f"cannot download the source object ({exc}); Lambda retries the event")

    try:
        compressed = core.compress(data, settings.compression)
    except Exception as exc:  # the core promises not to raise; if it does, the original must still be kept
        logger.exception("the compression core raised")
        reason = f"internal error in the compression core: {type(exc).__name__}: {exc}; report it with this image"
        compressed = core.Compressed(Result(Status.FAILED, len(data), 0, 0, 0, 0, 0.0, reason), None)
    compress_ms = compressed.result.ms
    result = replace(compressed.result, ms=_elapsed_ms(started))
    if result.status is Status.FAILED or compressed.data is None:
        return _fail(ref, got, got.etag, result, settings, started, compress_ms)

    metadata = _output_metadata(result, got.etag, fingerprint)
    try:
        aws.put_object(settings.dest_bucket, ref.key, compressed.data, metadata)
    except aws.AwsError as exc:
        logger.warning("writing to the destination bucket failed; copying the original to the failed bucket")
        reason = (
            f"could not write the output to the destination bucket ({exc}); check that bucket {settings.dest_bucket!r} "
            "exists and the function may s3:PutObject to it, then upload the image again"
        )
        failed = Result(Status.FAILED, result.input_bytes, 0, result.width, result.height, 0, result.ms, reason)
        return _fail(ref, got, got.etag, failed, settings, started, compress_ms)

    target = f"s3://{settings.dest_bucket}/{ref.key}"
    _notify(
        settings,
        build_payload(
            bucket=ref.bucket,
            key=ref.key,
            result=result,
            source_etag=got.etag,
            destination_bucket=settings.dest_bucket,
        ),
    )
    return Outcome(
        ref.bucket,
        ref.key,
        result.status.value,
        input_bytes=result.input_bytes,
        output_bytes=result.output_bytes,
        ms=result.ms,
        reason=result.reason,
        target=target,
        result=result,
        compress_ms=compress_ms,
    )


def _previous_outcome(ref: ObjectRef, etag: str, fingerprint: str, settings: Settings) -> Outcome | None:
    """Return the outcome of an earlier run on the same source ETag and settings, if its output is there."""
    for bucket in (settings.dest_bucket, settings.failed_bucket):
        try:
            info = aws.head_object(bucket, ref.key)
        except aws.AwsError as exc:
            logger.warning(
                f"cannot check s3://{bucket}/{ref.key} for an earlier result ({exc}); processing anyway. Grant the "
                "function s3:GetObject and s3:ListBucket on that bucket to make retries idempotent"
            )
            continue
        meta = info.metadata if info is not None else {}
        if info is None or meta.get(MetadataKey.SOURCE_ETAG) != etag or meta.get(MetadataKey.SETTINGS) != fingerprint:
            continue
        return Outcome(
            ref.bucket,
            ref.key,
            meta.get(MetadataKey.STATUS, Status.FAILED.value if bucket == settings.failed_bucket else "unknown"),
            input_bytes=_int(meta.get(MetadataKey.INPUT_BYTES)),
            output_bytes=_int(meta.get(MetadataKey.OUTPUT_BYTES)),
            reason=meta.get(MetadataKey.REASON),
            target=f"s3://{bucket}/{ref.key}",
            duplicate=True,
        )
    return None


def _fail(
    ref: ObjectRef,
    source: aws.ObjectInfo,
    etag: str,
    result: Result,
    settings: Settings,
    started: float,
    compress_ms: float | None = None,
) -> Outcome:
    """Copy the original to the failed bucket with the reason and notify; ``error`` outcome if the copy fails.

    The result's ``ms`` becomes the handling time since ``started``, as written to the metadata and the message.
    """
    result = replace(result, ms=_elapsed_ms(started))
    metadata = {
        MetadataKey.STATUS: Status.FAILED.value,
        MetadataKey.SOURCE_ETAG: etag,
        MetadataKey.SETTINGS: settings.compression.fingerprint(),
        MetadataKey.INPUT_BYTES: str(result.input_bytes),
        MetadataKey.MS: str(rounded_ms(result.ms)),
        MetadataKey.REASON: result.reason or "unknown",
    }
    try:
        aws.copy_object(ref.bucket, ref.key, settings.failed_bucket, metadata, source.content_type)
    except aws.AwsError as exc:
        logger.error(f"copying the original to the failed bucket failed too: {exc}")
        return _unplaced(
            ref,
            f"{result.reason}; and the copy to the failed bucket failed ({exc}); check that bucket "
            f"{settings.failed_bucket!r} exists and the function may s3:PutObject to it",
            input_bytes=result.input_bytes,
        )
    _notify(
        settings,
        build_payload(
            bucket=ref.bucket, key=ref.key, result=result, source_etag=etag, failed_bucket=settings.failed_bucket
        ),
    )
    return Outcome(
        ref.bucket,
        ref.key,
        Status.FAILED.value,
        input_bytes=result.input_bytes,
        ms=result.ms,
        reason=result.reason,
        target=f"s3://{settings.failed_bucket}/{ref.key}",
        result=result,
        compress_ms=compress_ms,
    )


def _notify(settings: Settings, payload: dict[str, Any]) -> None:
    """Publish the notification; a failure is logged and counted but never changes the object's outcome."""
    if not settings.sns_topic_arn:
        logger.debug("SNS_TOPIC_ARN is not set; no notification published")
        return
    try:
        aws.publish(settings.sns_topic_arn, build_subject(payload), build_message(payload), message_attributes(payload))
    except aws.AwsError as exc:
        logger.warning(
            f"the notification was not published ({exc}); the object itself is fine. Check SNS_TOPIC_ARN and the "
            "function's sns:Publish permission"
        )
        metrics.add_metric(name="NotificationsFailed", unit=MetricUnit.Count, value=1)


def _output_metadata(result: Result, etag: str, fingerprint: str) -> dict[str, str]:
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
    }
    if result.reason:
        metadata[MetadataKey.REASON] = result.reason
    return {str(key): value for key, value in metadata.items()}


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _unplaced(ref: ObjectRef, reason: str, input_bytes: int = 0) -> Outcome:
    logger.error(f"the object stays in the source bucket only and the event will be retried: {reason}")
    return Outcome(ref.bucket, ref.key, ERROR, input_bytes=input_bytes, reason=reason)


def _log_summary(outcome: Outcome) -> None:
    """Write the one summary log line of an object (``bucket`` and ``key`` come from the appended keys)."""
    fields = {
        "status": outcome.status,
        "input_bytes": outcome.input_bytes,
        "output_bytes": outcome.output_bytes,
        "ms": rounded_ms(outcome.ms),
        "total_ms": rounded_ms(outcome.total_ms),
        "reason": outcome.reason or "",
        "duplicate": outcome.duplicate,
        "target": outcome.target or "",
    }
    if outcome.result is not None:
        fields.update(
            width=outcome.result.width,
            height=outcome.result.height,
            quality=outcome.result.quality,
        )
    if outcome.compress_ms is not None:
        fields["compress_ms"] = rounded_ms(outcome.compress_ms)
    if outcome.status in (ERROR, REFUSED):
        logger.error(SUMMARY_MESSAGE, extra=fields)
    elif outcome.status == Status.FAILED.value and not outcome.duplicate:
        logger.warning(SUMMARY_MESSAGE, extra=fields)
    else:
        logger.info(SUMMARY_MESSAGE, extra=fields)


def _emit_metrics(outcome: Outcome) -> None:
    if outcome.duplicate:
        metrics.add_metric(name="DuplicatesSkipped", unit=MetricUnit.Count, value=1)
        return
    counter = {
        Status.COMPRESSED.value: "ImagesCompressed",
        Status.KEPT_ORIGINAL.value: "ImagesKeptOriginal",
        Status.FAILED.value: "ImagesFailed",
    }.get(outcome.status)
    if counter is None:
        return
    metrics.add_metric(name=counter, unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ProcessingTime", unit=MetricUnit.Milliseconds, value=rounded_ms(outcome.ms))
    if outcome.status == Status.COMPRESSED.value:
        metrics.add_metric(
            name="BytesSaved", unit=MetricUnit.Bytes, value=max(0, outcome.input_bytes - outcome.output_bytes)
        )


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0
