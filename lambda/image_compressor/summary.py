"""Logs and metrics of one object: its one summary log line and its CloudWatch metrics (EMF), from its outcome."""

from __future__ import annotations

from image_compressor.observability import MetricUnit, logger, metrics
from image_compressor.outcomes import ERROR, REFUSED, SUPERSEDED, Outcome
from image_compressor.result import Status, rounded_ms

#: The message of the one summary log line per object.
SUMMARY_MESSAGE = "image processed"

#: The counter of each written status.
_COUNTERS = {
    Status.COMPRESSED.value: "ImagesCompressed",
    Status.KEPT_ORIGINAL.value: "ImagesKeptOriginal",
    Status.FAILED.value: "ImagesFailed",
}


def log_summary(outcome: Outcome) -> None:
    """Write the one summary log line of an object (``bucket`` and ``key`` come from the appended keys).

    The line's fields are the outcome's status, sizes, ``ms``, ``total_ms``, reason, flags and target, plus width,
    height and quality when it has a result record and ``compress_ms`` when the core ran. Its level is error for an
    object left unplaced (``error``, ``refused``), warning for a new ``failed`` outcome, info otherwise.
    """
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


def emit_metrics(outcome: Outcome) -> None:
    """Add the object's metrics to the invocation's EMF document.

    A duplicate counts as ``DuplicatesSkipped`` and a superseded event as ``EventsSuperseded``, nothing else. A
    written outcome counts as ``ImagesCompressed``, ``ImagesKeptOriginal`` or ``ImagesFailed`` with its
    ``ProcessingTime``, plus ``OutputsReused`` when re-used and ``BytesSaved`` when compressed. Other outcomes
    (``error``, ``refused``, ``missing``) add nothing here.
    """
    if outcome.duplicate:
        metrics.add_metric(name="DuplicatesSkipped", unit=MetricUnit.Count, value=1)
        return
    if outcome.status == SUPERSEDED:
        metrics.add_metric(name="EventsSuperseded", unit=MetricUnit.Count, value=1)
        return
    if outcome.reused:
        metrics.add_metric(name="OutputsReused", unit=MetricUnit.Count, value=1)
    counter = _COUNTERS.get(outcome.status)
    if counter is None:
        return
    metrics.add_metric(name=counter, unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ProcessingTime", unit=MetricUnit.Milliseconds, value=rounded_ms(outcome.ms))
    if outcome.status == Status.COMPRESSED.value:
        metrics.add_metric(
            name="BytesSaved", unit=MetricUnit.Bytes, value=max(0, outcome.input_bytes - outcome.output_bytes)
        )
