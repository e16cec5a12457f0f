"""The function's per-object path, the entry point of ``index.py`` and the batch path: one object, one story.

For each source object: refuse recursion; identify the event (``identity``); let an outcome already recorded for the
key decide (``idempotency``: a duplicate of the same event, ``superseded`` by a newer one, an output re-used for the
same bytes and settings); check the deadline and memory budget; compress; write the output to the destination bucket
(``outputs``) or copy the original to the failed bucket (``failed_copy``); notify once (``notify``); log one summary
line and emit metrics (``summary``).

Transient AWS errors (throttling, 5xx, timeouts, connection errors; botocore already retried them with backoff) leave
the object unplaced, and :class:`UnprocessedObjectsError`, raised after every object of the event had its turn,
makes Lambda retry the event (and finally send it to the dead-letter queue). Only what the content or a permanent
misconfiguration causes goes to the failed bucket. See ``docs/function.md`` for the guarantees.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from image_compressor import aws, budget, core, idempotency
from image_compressor.failed_copy import fail
from image_compressor.identity import Identity, ObjectRef, identify, replaced
from image_compressor.notify import notify_once, written
from image_compressor.observability import MetricUnit, logger, metrics
from image_compressor.outcomes import (
    ERROR,
    MISSING,
    REFUSED,
    SUPERSEDED,
    Outcome,
    UnprocessedObjectsError,
    elapsed_ms,
    superseded,
    unplaced,
)
from image_compressor.outputs import NotWritten, output_metadata, write_output
from image_compressor.result import Result, Status
from image_compressor.settings import Settings
from image_compressor.summary import emit_metrics, log_summary

__all__ = [
    "ERROR",
    "OUTCOME_COSTS",
    "MISSING",
    "REFUSED",
    "SUPERSEDED",
    "Limits",
    "ObjectRef",
    "Outcome",
    "UnprocessedObjectsError",
    "process_object",
    "process_objects",
]

#: What writing an outcome cost in this warm container: the time kept back for it (the outcome reserve) follows it,
#: scaled to the invocation's timeout (:class:`image_compressor.budget.OutcomeCosts`).
OUTCOME_COSTS = budget.OutcomeCosts()


@dataclass(frozen=True, slots=True)
class Limits:
    """What the invocation has left: the deadline and memory guards read them.

    Attributes
    ----------
    remaining_ms : Callable[[], int] | None
        ``context.get_remaining_time_in_millis``; ``None`` switches the deadline guard off.
    memory_mb : int | None
        The function's memory size (``context.memory_limit_in_mb``); ``None`` switches the memory guard off.
    invocation_ms : float | None
        The time the invocation had when it started (about the function's timeout): the outcome reserve is scaled
        to it. ``None``: read from ``remaining_ms`` when the limits are made.
    """

    remaining_ms: Callable[[], int] | None = None
    memory_mb: int | None = None
    invocation_ms: float | None = None

    def __post_init__(self) -> None:
        if self.invocation_ms is None and self.remaining_ms is not None:
            object.__setattr__(self, "invocation_ms", float(self.remaining_ms()))

    def left_ms(self) -> float | None:
        """Milliseconds left before the function times out, or ``None`` when unknown."""
        return float(self.remaining_ms()) if self.remaining_ms is not None else None

    def reserve_ms(self) -> float:
        """Milliseconds kept back for writing the outcome (:data:`OUTCOME_COSTS`, scaled to this invocation)."""
        return OUTCOME_COSTS.reserve_ms(self.invocation_ms)


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
        total = elapsed_ms(start)
        outcome = replace(outcome, ms=outcome.ms if outcome.result is not None else total, total_ms=total)
        log_summary(outcome)
        emit_metrics(outcome)
        outcomes.append(outcome)
    logger.remove_keys(["bucket", "key"])
    unplaced_outcomes = [o for o in outcomes if not o.placed]
    if unplaced_outcomes:
        metrics.add_metric(name="ObjectsUnprocessed", unit=MetricUnit.Count, value=len(unplaced_outcomes))
        raise UnprocessedObjectsError(unplaced_outcomes)
    return outcomes


def process_object(
    ref: ObjectRef, settings: Settings, started: float | None = None, limits: Limits | None = None
) -> Outcome:
    """Give one upload event its outcome and notification, exactly once; return what happened.

    ``started`` is the ``time.perf_counter()`` value when the handling of this object began (default: now); the
    result record written to the object metadata and the message carries the milliseconds from then until the
    outcome write, and so does the returned outcome's ``ms``. ``limits`` feeds the deadline and memory guards.

    Steps: recursion and deadline guards; GetObject the source, and meanwhile HeadObject the destination object and
    the failed copy (:func:`idempotency.reading_records`); from the GET's head alone (its body not read yet): source
    gone: ``missing``; an event whose eTag or version is no longer the source's: ``superseded``; identify the event;
    the outcome already recorded for the key decides a duplicate, ``superseded`` or a re-used output
    (``idempotency.recorded_outcome``); over ``MAX_OBJECT_BYTES`` fails without downloading. Then read the body,
    compress and place the result (:func:`_compress_and_place`).

    Per-object problems become the returned outcome; nothing is raised for them. Transient AWS errors give an
    ``error`` outcome (the event is retried).
    """
    started = time.perf_counter() if started is None else started
    limits = limits or Limits()
    stopped = _recursion_guard(ref, settings) or _deadline_guard(ref, limits)
    if stopped is not None:
        return stopped
    with idempotency.reading_records(ref.key, settings) as read_records:
        try:
            opened = aws.open_object(ref.bucket, ref.key)
        except aws.AwsError as exc:
            return unplaced(
                ref,
                f"cannot read the source object ({exc}); check the function's s3:GetObject permission on it and "
                "s3:ListBucket on its bucket (without ListBucket S3 answers 403 for an object that no longer exists)",
            )
    if opened is None:
        logger.warning("the source object no longer exists; nothing to do")
        return Outcome(ref.bucket, ref.key, MISSING, reason="source object no longer exists")
    source = opened.info
    try:  # the body is read only when the object is to be compressed, and dropped unread otherwise
        if why := replaced(ref, source):
            return superseded(ref, why)

        identity = identify(ref, source)
        logger.append_keys(event_id=identity.event_id)
        try:
            records = read_records()
        except aws.AwsError as exc:
            return unplaced(ref, f"cannot read the earlier outcome of this key ({exc})", event_id=identity.event_id)
        decided = idempotency.recorded_outcome(ref, source, identity, settings, records, started)
        if decided is not None:
            return decided

        if source.size > settings.max_object_bytes:
            return fail(ref, source, identity, _too_large(source.size, settings), settings, started, records)
        try:
            data = opened.read()
        except aws.AwsError as exc:
            return unplaced(ref, f"cannot download the source object ({exc})", event_id=identity.event_id)
    finally:
        opened.close()
    return _compress_and_place(ref, source, data, identity, settings, limits, started, records)


def _compress_and_place(
    ref: ObjectRef,
    source: aws.ObjectInfo,
    data: bytes,
    identity: Identity,
    settings: Settings,
    limits: Limits,
    started: float,
    records: dict[str, aws.ObjectInfo | None],
) -> Outcome:
    """Budget guard, compress, then write the output and notify, or copy the original to the failed bucket."""
    guard = budget.preflight(
        data,
        settings.compression,
        remaining_ms=limits.left_ms(),
        memory_mb=limits.memory_mb,
        margin_ms=limits.reserve_ms(),
    )
    if guard is not None:
        metrics.add_metric(name="ImagesOverBudget", unit=MetricUnit.Count, value=1)
        result = Result(Status.FAILED, len(data), 0, 0, 0, 0, 0.0, guard)
        return _timed_outcome(lambda: fail(ref, source, identity, result, settings, started, records))

    compressed = _compress(data, settings)
    return _timed_outcome(lambda: _place(ref, source, compressed, identity, settings, started, records))


def _timed_outcome(write: Callable[[], Outcome]) -> Outcome:
    """Run ``write`` (an outcome's writes and notification) and remember what it cost (:data:`OUTCOME_COSTS`)."""
    began = time.perf_counter()
    outcome = write()
    if outcome.placed:
        OUTCOME_COSTS.record(elapsed_ms(began))
    return outcome


def _place(
    ref: ObjectRef,
    source: aws.ObjectInfo,
    compressed: core.Compressed,
    identity: Identity,
    settings: Settings,
    started: float,
    records: dict[str, aws.ObjectInfo | None],
) -> Outcome:
    """Write the compressed output and notify, or copy the original to the failed bucket when the core failed."""
    compress_ms = compressed.result.ms
    result = replace(compressed.result, ms=elapsed_ms(started))
    if result.status is Status.FAILED or compressed.data is None:
        return fail(ref, source, identity, result, settings, started, records, compress_ms)

    metadata = output_metadata(result, source.etag, settings.fingerprint(), identity)
    put = write_output(ref, source, identity, settings, compressed.data, metadata, records[settings.dest_bucket])
    if isinstance(put, NotWritten):  # a permanent write error: the original goes to the failed bucket
        failed = Result(Status.FAILED, source.size, 0, result.width, result.height, 0, 0.0, put.reason)
        return fail(ref, source, identity, failed, settings, started, records, compress_ms)
    if isinstance(put, Outcome):
        return replace(put, compress_ms=compress_ms)
    done = written(ref, identity.event_id, settings.dest_bucket, result, source.etag, compress_ms=compress_ms)
    return notify_once(settings, done)


def _recursion_guard(ref: ObjectRef, settings: Settings) -> Outcome | None:
    """``refused`` when the source bucket is the destination or failed bucket (every write would re-trigger)."""
    if ref.bucket not in (settings.dest_bucket, settings.failed_bucket):
        return None
    which = "DEST_BUCKET" if ref.bucket == settings.dest_bucket else "FAILED_BUCKET"
    reason = (
        f"refusing to process: {which} is the source bucket {ref.bucket!r}, so every write would trigger the "
        f"function again (recursion); set {which} to a different bucket, or remove the {ref.bucket!r} trigger"
    )
    logger.error(reason)
    return Outcome(ref.bucket, ref.key, REFUSED, reason=reason)


def _deadline_guard(ref: ObjectRef, limits: Limits) -> Outcome | None:
    """``error`` (retried) when less than the outcome reserve of the invocation is left when the object's turn comes."""
    left = limits.left_ms()
    if left is not None and left < limits.reserve_ms():
        return unplaced(ref, f"only {left:.0f} ms of this invocation were left when the object's turn came")
    return None


def _too_large(size: int, settings: Settings) -> Result:
    """The ``failed`` result of an object over ``MAX_OBJECT_BYTES`` (not downloaded)."""
    reason = (
        f"object is {size} bytes, larger than MAX_OBJECT_BYTES={settings.max_object_bytes}, so it was not "
        "downloaded; shrink the image before uploading, or raise MAX_OBJECT_BYTES (and the function's memory)"
    )
    return Result(Status.FAILED, size, 0, 0, 0, 0, 0.0, reason)


def _compress(data: bytes, settings: Settings) -> core.Compressed:
    """Run the core; should it raise (it promises not to), a ``failed`` result so the original is still kept."""
    try:
        return core.compress(data, settings.compression)
    except Exception as exc:
        logger.exception("the compression core raised")
        reason = f"internal error in the compression core: {type(exc).__name__}: {exc}; report it with this image"
        return core.Compressed(Result(Status.FAILED, len(data), 0, 0, 0, 0, 0.0, reason), None)
