"""Per-object orchestration of the function: settings + the pure core + the AWS glue.

For each source object: refuse recursion; identify the event (:class:`Identity`); treat a retry of the same event as a
duplicate (no second write; publish only if the first attempt did not); skip an event older than the outcome already
recorded for the key (``superseded``: latest wins); re-use the output of an earlier upload of the same bytes and
settings; check the deadline and memory budget; compress; write the output to the destination bucket (conditional
write) or copy the original server-side to the failed bucket (removing an older output from the destination);
notify and mark the outcome ``notified``; log one summary line and emit metrics.

Transient AWS errors (throttling, 5xx, timeouts, connection errors; botocore already retried them with backoff) leave
the object unplaced, and :class:`UnprocessedObjectsError`, raised after every object of the event had its turn,
makes Lambda retry the event (and finally send it to the dead-letter queue). Only what the content or a permanent
misconfiguration causes goes to the failed bucket. See ``docs/function.md`` for the guarantees.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from image_compressor import aws, budget, core
from image_compressor.notification import build_message, build_payload, build_subject, message_attributes
from image_compressor.observability import MetricUnit, logger, metrics
from image_compressor.result import NOTIFIED_TAG, MetadataKey, Result, Status, read_metadata, rounded_ms
from image_compressor.settings import Settings

#: Summary statuses beyond the result record's: nothing was written and the event is retried.
ERROR = "error"
#: The source bucket is the destination or failed bucket: refused, nothing written, the event is retried.
REFUSED = "refused"
#: The source object was gone when the function looked: nothing to do.
MISSING = "missing"
#: The event is for an older version of the key than the outcome already recorded (or the source was replaced):
#: nothing written, nothing published; the newer upload's own event gives the key its outcome.
SUPERSEDED = "superseded"

#: Milliseconds of the function's remaining time kept back for writing the outcome and notifying: an image whose
#: estimated compute time does not fit in the rest fails with a reason instead of timing out.
DEADLINE_MARGIN_MS = 10_000
#: Conditional writes that found the destination changed are re-evaluated this many times before the event is retried.
MAX_WRITE_ATTEMPTS = 3

#: The message of the one summary log line per object.
SUMMARY_MESSAGE = "image processed"


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """A source object named by an S3 event record (key already URL-decoded), with the record's identity fields.

    Attributes
    ----------
    bucket, key : str
        The source object.
    etag : str | None
        The record's ``s3.object.eTag``: the version the event is about (``None`` when the event has none).
    version_id : str | None
        The record's ``s3.object.versionId`` (versioned buckets).
    sequencer : str | None
        The record's ``s3.object.sequencer``: hex, growing with each event of one key (S3 sends it; moto and
        manual or backfill invocations may not).
    event_id : str | None
        An explicit identity for an invocation that is not an S3 notification (e.g. a batch task id).
    """

    bucket: str
    key: str
    etag: str | None = None
    version_id: str | None = None
    sequencer: str | None = None
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    """What the invocation has left: the deadline and memory guards read them.

    Attributes
    ----------
    remaining_ms : Callable[[], int] | None
        ``context.get_remaining_time_in_millis``; ``None`` switches the deadline guard off.
    memory_mb : int | None
        The function's memory size (``context.memory_limit_in_mb``); ``None`` switches the memory guard off.
    """

    remaining_ms: Callable[[], int] | None = None
    memory_mb: int | None = None

    def left_ms(self) -> float | None:
        """Milliseconds left before the function times out, or ``None`` when unknown."""
        return float(self.remaining_ms()) if self.remaining_ms is not None else None


@dataclass(frozen=True, slots=True)
class Identity:
    """Who an outcome belongs to: one upload event of one source version.

    Attributes
    ----------
    event_id : str
        Deterministic id (32 hex): a hash of bucket, key, version id and the event's sequencer; without a
        sequencer, of the explicit event id, or else of the source object's ETag and LastModified as found (a
        manual or backfill invocation). A retry of the same event has the same id.
    sequencer : str | None
        The event's sequencer (orders events of one key).
    modified : int | None
        The source version's LastModified in epoch seconds (orders when a side has no sequencer).
    version_id : str | None
        The source version id, when versioned.
    """

    event_id: str
    sequencer: str | None
    modified: int | None
    version_id: str | None

    def metadata(self) -> dict[str, str]:
        """The identity as object metadata (``source-event`` and the ordering fields)."""
        meta = {MetadataKey.SOURCE_EVENT.value: self.event_id}
        if self.sequencer:
            meta[MetadataKey.SOURCE_SEQUENCER.value] = self.sequencer
        if self.modified is not None:
            meta[MetadataKey.SOURCE_MODIFIED.value] = str(self.modified)
        if self.version_id:
            meta[MetadataKey.SOURCE_VERSION.value] = self.version_id
        return meta


def identify(ref: ObjectRef, source: aws.ObjectInfo) -> Identity:
    """Return the identity of the event ``ref`` for the source version ``source`` (see :class:`Identity`)."""
    version = ref.version_id or source.version_id
    if ref.sequencer:
        basis = f"sequencer:{ref.sequencer.upper().lstrip('0')}"
    elif ref.event_id:
        basis = f"event:{ref.event_id}"
    else:
        basis = f"object:{source.etag}:{source.last_modified}"
    text = "\n".join((ref.bucket, ref.key, version or "", basis))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
    return Identity(digest, ref.sequencer, source.last_modified, version)


def compare(ours: Identity, recorded: dict[str, str]) -> int:
    """Order the event ``ours`` against the one that produced an object with metadata ``recorded``.

    Sequencers are compared as integers when both sides have one (S3's rule: left-pad the shorter with zeros and
    compare, meaningful for one key only); else the source LastModified seconds. Returns 1 when ours is newer, -1
    when the recorded one is, 0 when they are the same or cannot be told apart (an object written before event
    identities existed, the same second without sequencers).
    """
    theirs = recorded.get(MetadataKey.SOURCE_SEQUENCER)
    if ours.sequencer and theirs:
        a, b = _hex(ours.sequencer), _hex(theirs)
        if a is not None and b is not None:
            return (a > b) - (a < b)
    modified = _int_or_none(recorded.get(MetadataKey.SOURCE_MODIFIED))
    if ours.modified is not None and modified is not None:
        return (ours.modified > modified) - (ours.modified < modified)
    return 0


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the function did with one source object.

    Attributes
    ----------
    bucket, key : str
        The source object.
    status : str
        ``compressed``, ``kept-original`` or ``failed`` (the result record's words), or ``error`` (could not be put
        anywhere: retried), ``refused`` (recursion guard), ``missing`` (source gone), ``superseded`` (an older
        event than the outcome already recorded for the key: nothing written).
    input_bytes, output_bytes : int
        Sizes of the source object and of what was written to the destination (0 if nothing).
    ms : float
        Wall-clock milliseconds of the function's handling of this object until its outcome was written (source
        HeadObject, checks, GetObject, compression): the number the message, the object metadata and the dashboard
        show. For an object that got no outcome (error, refused, missing, superseded, duplicate) the whole handling.
    total_ms : float
        The whole handling, the outcome write and the notification included (only the log line has it: the
        object metadata is written before the write ends).
    reason : str | None
        Why it was not compressed, or what went wrong.
    target : str | None
        ``s3://bucket/key`` where the object ended (destination or failed bucket).
    duplicate : bool
        True when an earlier attempt of the same event already produced this outcome and nothing was written this
        time (the notification was published only if that attempt had not).
    result : Result | None
        The result record written to the metadata and the message (its ``ms`` is ``ms``), when there was one.
    compress_ms : float | None
        The compression core's own compute time, when it ran.
    event_id : str | None
        The event's identity (:class:`Identity`), once known.
    reused : bool
        True when the output of an earlier upload of the same bytes and settings was re-used (no re-encode).
    notified : bool
        True when this attempt published the notification.
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
    event_id: str | None = None
    reused: bool = False
    notified: bool = False

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
            "reused": self.reused,
            "event_id": self.event_id,
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


def process_objects(refs: Sequence[ObjectRef], settings: Settings, limits: Limits | None = None) -> list[Outcome]:
    """Process every object in ``refs`` in order and return their outcomes.

    ``limits`` carries the invocation's remaining time and memory for the deadline and memory guards.

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
            outcome = process_object(ref, settings, started=start, limits=limits)
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


def process_object(
    ref: ObjectRef, settings: Settings, started: float | None = None, limits: Limits | None = None
) -> Outcome:
    """Give one upload event its outcome and notification, exactly once; return what happened.

    ``started`` is the ``time.perf_counter()`` value when the handling of this object began (default: now); the
    result record written to the object metadata and the message carries the milliseconds from then until the
    outcome write, and so does the returned outcome's ``ms``. ``limits`` feeds the deadline and memory guards.

    Steps: recursion guard; HeadObject the source (an event whose eTag or version is no longer the source's is
    ``superseded``); identify the event; look at the destination object and the failed copy: the same event already
    recorded is a duplicate (publish only if it was not notified), a newer one makes this event ``superseded``; the
    destination's output for the same source ETag and settings is re-used (metadata rewritten server-side, no
    re-encode); over ``MAX_OBJECT_BYTES`` fails without downloading; download; deadline and memory guards; compress;
    conditional PutObject to the destination, or a copy of the original to the failed bucket that also removes an
    older output from the destination; publish; tag the outcome ``notified``.

    Per-object problems become the returned outcome; nothing is raised for them. Transient AWS errors give an
    ``error`` outcome (the event is retried).
    """
    started = time.perf_counter() if started is None else started
    limits = limits or Limits()
    if ref.bucket in (settings.dest_bucket, settings.failed_bucket):
        which = "DEST_BUCKET" if ref.bucket == settings.dest_bucket else "FAILED_BUCKET"
        reason = (
            f"refusing to process: {which} is the source bucket {ref.bucket!r}, so every write would trigger the "
            f"function again (recursion); set {which} to a different bucket, or remove the {ref.bucket!r} trigger"
        )
        logger.error(reason)
        return Outcome(ref.bucket, ref.key, REFUSED, reason=reason)
    left = limits.left_ms()
    if left is not None and left < DEADLINE_MARGIN_MS:
        return _unplaced(ref, f"only {left:.0f} ms of this invocation were left when the object's turn came")

    try:
        source = aws.head_object(ref.bucket, ref.key)
    except aws.AwsError as exc:
        return _unplaced(ref, f"cannot read the source object ({exc}); check the function's s3:GetObject permission")
    if source is None:
        logger.warning("the source object no longer exists; nothing to do")
        return Outcome(ref.bucket, ref.key, MISSING, reason="source object no longer exists")
    replaced = _replaced(ref, source)
    if replaced:
        return _superseded(ref, replaced)

    identity = identify(ref, source)
    logger.append_keys(event_id=identity.event_id)
    fingerprint = settings.fingerprint()
    try:
        records = _records(ref.key, settings)
    except aws.AwsError as exc:
        return _unplaced(ref, f"cannot read the earlier outcome of this key ({exc})", event_id=identity.event_id)

    for bucket, info in records.items():
        if info is not None and info.metadata.get(MetadataKey.SOURCE_EVENT) == identity.event_id:
            return _duplicate(ref, bucket, info, identity, settings, records)
    for bucket, info in records.items():
        if info is not None and compare(identity, info.metadata) < 0:
            return _superseded(
                ref,
                f"an outcome of a newer upload of this key is already in s3://{bucket}/{ref.key}",
                identity.event_id,
            )

    dest = records[settings.dest_bucket]
    if (
        dest is not None
        and dest.metadata.get(MetadataKey.SOURCE_ETAG) == source.etag
        and dest.metadata.get(MetadataKey.SETTINGS) == fingerprint
        and dest.metadata.get(MetadataKey.STATUS) in (Status.COMPRESSED.value, Status.KEPT_ORIGINAL.value)
    ):
        return _reuse(ref, source, dest, identity, settings, started)

    if source.size > settings.max_object_bytes:
        reason = (
            f"object is {source.size} bytes, larger than MAX_OBJECT_BYTES={settings.max_object_bytes}, so it was not "
            "downloaded; shrink the image before uploading, or raise MAX_OBJECT_BYTES (and the function's memory)"
        )
        result = Result(Status.FAILED, source.size, 0, 0, 0, 0, 0.0, reason)
        return _fail(ref, source, identity, result, settings, started, records)

    try:
        data, got = aws.get_object(ref.bucket, ref.key)
    except aws.AwsError as exc:
        return _unplaced(ref, f"cannot download the source object ({exc})", event_id=identity.event_id)
    if got.etag != source.etag:
        return _superseded(ref, "the source object was replaced while it was being read", identity.event_id)

    guard = budget.preflight(
        data,
        settings.compression,
        remaining_ms=limits.left_ms(),
        memory_mb=limits.memory_mb,
        margin_ms=DEADLINE_MARGIN_MS,
    )
    if guard is not None:
        metrics.add_metric(name="ImagesOverBudget", unit=MetricUnit.Count, value=1)
        result = Result(Status.FAILED, len(data), 0, 0, 0, 0, 0.0, guard)
        return _fail(ref, got, identity, result, settings, started, records)

    try:
        compressed = core.compress(data, settings.compression)
    except Exception as exc:  # the core promises not to raise; if it does, the original must still be kept
        logger.exception("the compression core raised")
        reason = f"internal error in the compression core: {type(exc).__name__}: {exc}; report it with this image"
        compressed = core.Compressed(Result(Status.FAILED, len(data), 0, 0, 0, 0, 0.0, reason), None)
    compress_ms = compressed.result.ms
    result = replace(compressed.result, ms=_elapsed_ms(started))
    if result.status is Status.FAILED or compressed.data is None:
        return _fail(ref, got, identity, result, settings, started, records, compress_ms)

    metadata = _output_metadata(result, got.etag, fingerprint, identity)
    written = _write_output(ref, got, identity, settings, compressed.data, metadata, dest)
    if isinstance(written, Outcome):
        if written.status == Status.FAILED.value and written.result is not None:  # a permanent write error
            failed = replace(written.result, width=result.width, height=result.height)
            return _fail(ref, got, identity, failed, settings, started, records, compress_ms)
        return replace(written, compress_ms=compress_ms)
    target = f"s3://{settings.dest_bucket}/{ref.key}"
    payload = build_payload(
        bucket=ref.bucket,
        key=ref.key,
        result=result,
        source_etag=got.etag,
        destination_bucket=settings.dest_bucket,
        event_id=identity.event_id,
    )
    outcome = Outcome(
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
        event_id=identity.event_id,
    )
    return _notify_once(settings, settings.dest_bucket, ref.key, identity, payload, outcome)


def _replaced(ref: ObjectRef, source: aws.ObjectInfo) -> str | None:
    """Why the event is not about the source object now in the bucket, or ``None`` when it is."""
    if ref.version_id and source.version_id and ref.version_id != source.version_id:
        return f"version {ref.version_id} is no longer the current version of the source object"
    if ref.etag and ref.etag.strip('"') != source.etag:
        return "the source object was replaced by a newer upload before this event was processed"
    return None


def _records(key: str, settings: Settings) -> dict[str, aws.ObjectInfo | None]:
    """HeadObject the destination object and the failed copy of ``key`` (``None`` where there is none).

    A permanent error (e.g. access denied) is logged and read as "no record"; a transient one is raised.
    """
    records: dict[str, aws.ObjectInfo | None] = {}
    for bucket in (settings.dest_bucket, settings.failed_bucket):
        try:
            records[bucket] = aws.head_object(bucket, key)
        except aws.AwsError as exc:
            if exc.transient:
                raise
            logger.warning(
                f"cannot check s3://{bucket}/{key} for an earlier outcome ({exc}); processing anyway. Grant the "
                "function s3:GetObject and s3:ListBucket on that bucket to make retries idempotent"
            )
            records[bucket] = None
    return records


def _write_output(
    ref: ObjectRef,
    source: aws.ObjectInfo,
    identity: Identity,
    settings: Settings,
    data: bytes,
    metadata: dict[str, str],
    dest: aws.ObjectInfo | None,
) -> str | Outcome:
    """Write the output with a conditional PutObject; return its ETag, or the outcome when it was not written.

    The write is conditional on the destination object being the one inspected (``If-Match``) or absent
    (``If-None-Match: *``); when another writer got there first the destination is looked at again (a newer event:
    ``superseded``; this very event: written). After an ambiguous error (a timeout or 5xx after which the write may
    have happened) the destination is looked at before deciding. A permanent error returns a ``failed`` outcome
    whose reason names it (the caller copies the original to the failed bucket); a transient one an ``error``.
    After the write, the source is looked at again: if it was replaced meanwhile, the output is taken back
    (``superseded``) so it never stands for a newer upload.
    """
    target = f"s3://{settings.dest_bucket}/{ref.key}"
    for _attempt in range(MAX_WRITE_ATTEMPTS):
        try:
            current = aws.head_object(ref.bucket, ref.key)
        except aws.AwsError as exc:
            return _unplaced(ref, f"cannot read the source object again before writing ({exc})", identity.event_id)
        if current is None or current.etag != source.etag:
            return _superseded(ref, "the source object was replaced while it was being compressed", identity.event_id)
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
                logger.warning(f"the output write may or may not have happened ({exc}); looking before deciding")
                try:
                    seen = aws.head_object(settings.dest_bucket, ref.key)
                except aws.AwsError as again:
                    return _unplaced(ref, f"{exc}; and the check after it failed too ({again})", identity.event_id)
                if (
                    seen is not None
                    and seen.metadata.get(MetadataKey.SOURCE_EVENT) == identity.event_id
                    and seen.size == len(data)
                ):
                    logger.info("the output write had happened; carrying on")
                    return seen.etag
                return _unplaced(ref, f"the output was not written ({exc})", identity.event_id)
            elif exc.transient:
                return _unplaced(ref, f"the output was not written ({exc})", identity.event_id)
            else:
                logger.warning("writing to the destination bucket failed permanently; the original goes to failed")
                reason = (
                    f"could not write the output to the destination bucket ({exc}); check that bucket "
                    f"{settings.dest_bucket!r} exists and the function may s3:PutObject to it, then upload the "
                    "image again"
                )
                size = source.size
                return Outcome(
                    ref.bucket,
                    ref.key,
                    Status.FAILED.value,
                    reason=reason,
                    result=Result(Status.FAILED, size, 0, 0, 0, 0, 0.0, reason),
                )
            try:
                dest = aws.head_object(settings.dest_bucket, ref.key)
            except aws.AwsError as again:
                return _unplaced(ref, f"cannot look at {target} again ({again})", identity.event_id)
            if dest is not None and dest.metadata.get(MetadataKey.SOURCE_EVENT) == identity.event_id:
                return dest.etag  # a concurrent attempt of this same event wrote it
            if dest is not None and compare(identity, dest.metadata) < 0:
                return _superseded(ref, f"a newer upload's output reached {target} first", identity.event_id)
            continue
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
            return _superseded(ref, "the source object was replaced while the output was written", identity.event_id)
        return etag
    return _unplaced(ref, f"{target} kept changing under {MAX_WRITE_ATTEMPTS} conditional writes", identity.event_id)


def _delete_quietly(bucket: str, key: str, etag: str) -> bool:
    """Delete ``s3://bucket/key`` if it still has ``etag``; log instead of raising."""
    try:
        return aws.delete_object(bucket, key, if_match=etag)
    except aws.AwsError as exc:
        logger.warning(f"could not delete s3://{bucket}/{key} ({exc})")
        return False


def _duplicate(
    ref: ObjectRef,
    bucket: str,
    info: aws.ObjectInfo,
    identity: Identity,
    settings: Settings,
    records: dict[str, aws.ObjectInfo | None],
) -> Outcome:
    """A retry of an event whose outcome is already written: finish what the first attempt may not have.

    Nothing is written again. A failed copy's older destination output is removed if the first attempt stopped
    before; the notification is published if the outcome carries no ``notified`` tag for this event (the first
    attempt crashed or timed out between the write and the publish).
    """
    meta = info.metadata
    failed_copy = bucket == settings.failed_bucket
    stored = read_metadata(meta, object_bytes=info.size, failed_copy=failed_copy)
    if failed_copy:
        error = _remove_older_output(ref, identity, settings, records)
        if error is not None:
            return error
    outcome = Outcome(
        ref.bucket,
        ref.key,
        stored.status,
        input_bytes=stored.input_bytes or 0,
        output_bytes=stored.output_bytes or 0,
        ms=stored.ms or 0.0,
        reason=stored.reason,
        target=f"s3://{bucket}/{ref.key}",
        duplicate=True,
        event_id=identity.event_id,
        reused=meta.get(MetadataKey.REUSED) == "true",
    )
    try:
        tags = aws.get_tags(bucket, ref.key)
    except aws.AwsError as exc:
        if exc.transient:
            return _unplaced(ref, f"cannot tell whether the outcome was notified ({exc})", identity.event_id)
        logger.warning(f"cannot read the notified tag ({exc}); publishing again (subscribers dedup on event_id)")
        tags = {}
    if tags.get(NOTIFIED_TAG) == identity.event_id or not settings.sns_topic_arn:
        return outcome
    logger.info("the outcome of this event was written but not notified; publishing now")
    try:
        status = Status(stored.status)
    except ValueError:
        status = Status.FAILED if failed_copy else Status.COMPRESSED
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
    payload = build_payload(
        bucket=ref.bucket,
        key=ref.key,
        result=result,
        source_etag=stored.source_etag or "",
        destination_bucket=None if failed_copy else bucket,
        failed_bucket=bucket if failed_copy else None,
        event_id=identity.event_id,
        reused=outcome.reused,
    )
    return _notify_once(settings, bucket, ref.key, identity, payload, outcome)


def _reuse(
    ref: ObjectRef,
    source: aws.ObjectInfo,
    dest: aws.ObjectInfo,
    identity: Identity,
    settings: Settings,
    started: float,
) -> Outcome:
    """A new upload of bytes whose output is already current: rewrite its record server-side, notify, no re-encode.

    The destination object is copied onto itself with the new event's identity (``CopySourceIfMatch`` on the
    inspected ETag, so a concurrent change is noticed) and ``output-reused=true``.
    """
    stored = read_metadata(dest.metadata, object_bytes=dest.size, failed_copy=False)
    status = Status(stored.status)
    result = Result(
        status,
        stored.input_bytes or source.size,
        stored.output_bytes or dest.size,
        stored.width or 0,
        stored.height or 0,
        stored.quality or 0,
        _elapsed_ms(started),
        stored.reason,
    )
    metadata = _output_metadata(result, source.etag, settings.fingerprint(), identity)
    metadata[MetadataKey.REUSED.value] = "true"
    try:
        aws.copy_object(
            settings.dest_bucket, ref.key, settings.dest_bucket, metadata, dest.content_type, source_etag=dest.etag
        )
    except aws.AwsError as exc:
        if exc.precondition_failed:
            return _unplaced(ref, "the destination object changed while its record was rewritten", identity.event_id)
        if exc.transient:
            return _unplaced(ref, f"the output's record was not rewritten ({exc})", identity.event_id)
        logger.warning(f"re-using the earlier output failed ({exc}); processing the object again")
        return _unplaced(ref, f"cannot rewrite the record of the re-used output ({exc})", identity.event_id)
    logger.info("unchanged bytes and settings: the existing output was re-used, not re-encoded")
    payload = build_payload(
        bucket=ref.bucket,
        key=ref.key,
        result=result,
        source_etag=source.etag,
        destination_bucket=settings.dest_bucket,
        event_id=identity.event_id,
        reused=True,
    )
    outcome = Outcome(
        ref.bucket,
        ref.key,
        status.value,
        input_bytes=result.input_bytes,
        output_bytes=result.output_bytes,
        ms=result.ms,
        reason=result.reason,
        target=f"s3://{settings.dest_bucket}/{ref.key}",
        result=result,
        event_id=identity.event_id,
        reused=True,
    )
    return _notify_once(settings, settings.dest_bucket, ref.key, identity, payload, outcome)


def _fail(
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
    destination holds an output of an older upload of this key, the reason says it is removed, and it is (latest
    wins: the destination never shows an older version's output after a newer one failed). A copy that fails
    gives an ``error`` outcome (retried). The result's ``ms`` becomes the handling time since ``started``.
    """
    dest = records.get(settings.dest_bucket)
    reason = result.reason or "unknown"
    if dest is not None:
        reason += (
            f"; the output of an earlier upload of this key was removed from s3://{settings.dest_bucket}/{ref.key} "
            "so that the destination does not show an older version"
        )
    result = replace(result, ms=_elapsed_ms(started), reason=reason)
    metadata = {
        MetadataKey.STATUS: Status.FAILED.value,
        MetadataKey.SOURCE_ETAG: source.etag,
        MetadataKey.SETTINGS: settings.fingerprint(),
        MetadataKey.INPUT_BYTES: str(result.input_bytes),
        MetadataKey.MS: str(rounded_ms(result.ms)),
        MetadataKey.REASON: reason,
        **identity.metadata(),
    }
    if result.width and result.height:
        metadata[MetadataKey.WIDTH] = str(result.width)
        metadata[MetadataKey.HEIGHT] = str(result.height)
    try:
        aws.copy_object(
            ref.bucket,
            ref.key,
            settings.failed_bucket,
            {str(k): v for k, v in metadata.items()},
            source.content_type,
            source_etag=source.etag,
        )
    except aws.AwsError as exc:
        if exc.precondition_failed:
            return _superseded(ref, "the source object was replaced before its failed copy was made", identity.event_id)
        logger.error(f"copying the original to the failed bucket failed: {exc}")
        why = (
            "Lambda retries the event"
            if exc.transient
            else (f"check that bucket {settings.failed_bucket!r} exists and the function may s3:PutObject to it")
        )
        return _unplaced(
            ref,
            f"{result.reason}; and the copy to the failed bucket failed ({exc}); {why}",
            identity.event_id,
            input_bytes=result.input_bytes,
        )
    error = _remove_older_output(ref, identity, settings, records)
    if error is not None:
        return error
    payload = build_payload(
        bucket=ref.bucket,
        key=ref.key,
        result=result,
        source_etag=source.etag,
        failed_bucket=settings.failed_bucket,
        event_id=identity.event_id,
    )
    outcome = Outcome(
        ref.bucket,
        ref.key,
        Status.FAILED.value,
        input_bytes=result.input_bytes,
        ms=result.ms,
        reason=result.reason,
        target=f"s3://{settings.failed_bucket}/{ref.key}",
        result=result,
        compress_ms=compress_ms,
        event_id=identity.event_id,
    )
    return _notify_once(settings, settings.failed_bucket, ref.key, identity, payload, outcome)


def _remove_older_output(
    ref: ObjectRef, identity: Identity, settings: Settings, records: dict[str, aws.ObjectInfo | None]
) -> Outcome | None:
    """Delete the destination's output of an older upload of the key (``If-Match`` its ETag); an error outcome if not.

    The destination is looked at again first (it may have changed since ``records`` was read); an output of a newer
    event (or of this one) stays.
    """
    try:
        dest = aws.head_object(settings.dest_bucket, ref.key)
    except aws.AwsError as exc:
        if not exc.transient:
            logger.warning(f"cannot check the destination for an older output ({exc})")
            return None
        return _unplaced(ref, f"cannot check the destination for an older output ({exc})", identity.event_id)
    if dest is None:
        return None
    if dest.metadata.get(MetadataKey.SOURCE_EVENT) == identity.event_id or compare(identity, dest.metadata) < 0:
        return None
    try:
        deleted = aws.delete_object(settings.dest_bucket, ref.key, if_match=dest.etag)
    except aws.AwsError as exc:
        if exc.transient:
            return _unplaced(ref, f"the older output was not removed from the destination ({exc})", identity.event_id)
        logger.error(f"the older output could not be removed from the destination ({exc}); grant s3:DeleteObject")
        metrics.add_metric(name="StaleOutputsKept", unit=MetricUnit.Count, value=1)
        return None
    logger.info("removed the output of an older upload from the destination", extra={"deleted": deleted})
    return None


def _notify_once(
    settings: Settings, bucket: str, key: str, identity: Identity, payload: dict[str, Any], outcome: Outcome
) -> Outcome:
    """Publish ``payload`` and tag the outcome object ``notified=<event id>``; return the outcome.

    A transient publish error turns the outcome into ``error`` (the outcome stays written; Lambda retries the event
    and the retry publishes, see :func:`_duplicate`). A permanent one (no such topic, no permission) is logged and
    counted (``NotificationsFailed``, alarmed) and the outcome stands: retrying cannot fix it. A failed tag write is
    logged only: the retry it would need could publish a second time.
    """
    if not settings.sns_topic_arn:
        logger.debug("SNS_TOPIC_ARN is not set; no notification published")
        return outcome
    try:
        aws.publish(settings.sns_topic_arn, build_subject(payload), build_message(payload), message_attributes(payload))
    except aws.AwsError as exc:
        metrics.add_metric(name="NotificationsFailed", unit=MetricUnit.Count, value=1)
        if exc.transient:
            return _unplaced(
                ref=ObjectRef(outcome.bucket, outcome.key),
                reason=f"the outcome is written to {outcome.target} but the notification was not published ({exc})",
                event_id=identity.event_id,
                input_bytes=outcome.input_bytes,
            )
        logger.warning(
            f"the notification was not published ({exc}); the object itself is fine. Check SNS_TOPIC_ARN and the "
            "function's sns:Publish permission"
        )
        return outcome
    try:
        aws.put_tags(bucket, key, {NOTIFIED_TAG: identity.event_id})
    except aws.AwsError as exc:
        logger.warning(f"published, but the notified tag was not written ({exc}); a retry would publish again")
    return replace(outcome, notified=True)


def _superseded(ref: ObjectRef, why: str, event_id: str | None = None) -> Outcome:
    reason = f"superseded: {why}; nothing written, the newer upload's event gives the key its outcome"
    logger.info(reason)
    return Outcome(ref.bucket, ref.key, SUPERSEDED, reason=reason, event_id=event_id)


def _output_metadata(result: Result, etag: str, fingerprint: str, identity: Identity) -> dict[str, str]:
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


def _hex(value: str) -> int | None:
    try:
        return int(value, 16)
    except ValueError:
        return None


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _unplaced(ref: ObjectRef, reason: str, event_id: str | None = None, input_bytes: int = 0) -> Outcome:
    logger.error(f"the object has no complete outcome yet and the event will be retried: {reason}")
    return Outcome(ref.bucket, ref.key, ERROR, input_bytes=input_bytes, reason=reason, event_id=event_id)


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
        "reused": outcome.reused,
        "notified": outcome.notified,
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
    if outcome.status == SUPERSEDED:
        metrics.add_metric(name="EventsSuperseded", unit=MetricUnit.Count, value=1)
        return
    if outcome.reused:
        metrics.add_metric(name="OutputsReused", unit=MetricUnit.Count, value=1)
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
