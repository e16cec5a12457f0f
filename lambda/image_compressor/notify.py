"""The notification of a written outcome: one builder for every path, published once per event.

:func:`written` builds the outcome record and the SNS payload of every outcome that is in a bucket (compressed,
kept-original, failed, a re-used output, a duplicate of an earlier attempt) from the same facts, so the two always
agree; :func:`notify_once` publishes the payload and tags the outcome object ``notified=<event id>``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from image_compressor import aws
from image_compressor.identity import ObjectRef
from image_compressor.notification import build_message, build_payload, build_subject, message_attributes
from image_compressor.observability import MetricUnit, logger, metrics
from image_compressor.outcomes import Outcome, unplaced
from image_compressor.result import NOTIFIED_TAG, Result
from image_compressor.settings import Settings


@dataclass(frozen=True, slots=True)
class Written:
    """An outcome that is in a bucket, with the notification it owes.

    Attributes
    ----------
    bucket : str
        Where the outcome object is: the destination bucket, or the failed bucket for a failed copy.
    event_id : str
        The event's identity (the ``notified`` tag's value).
    outcome : Outcome
        What the function did with the source object.
    payload : dict[str, Any]
        The SNS payload (``notification.build_payload``) of the same outcome.
    """

    bucket: str
    event_id: str
    outcome: Outcome
    payload: dict[str, Any]


def written(
    ref: ObjectRef,
    event_id: str,
    bucket: str,
    result: Result,
    source_etag: str,
    *,
    failed_copy: bool = False,
    compress_ms: float | None = None,
    reused: bool = False,
    duplicate: bool = False,
) -> Written:
    """Build the outcome record and the notification payload of an outcome written to ``bucket``.

    Every path that puts an object somewhere calls this: the output write, the failure copy, the re-use of an
    earlier output and a duplicate of an attempt that already wrote.

    Parameters
    ----------
    ref : ObjectRef
        The source object.
    event_id : str
        The event's identity.
    bucket : str
        Where the outcome object is.
    result : Result
        The result record: status, sizes, dimensions, quality, milliseconds and reason of both the outcome and
        the payload.
    source_etag : str
        ETag of the source version the outcome is about.
    failed_copy : bool
        True when ``bucket`` is the failed bucket (the payload's ``failed_bucket``), else it is the payload's
        ``destination_bucket``.
    compress_ms : float | None
        The core's own compute time, when it ran this time.
    reused : bool
        True when an earlier upload's output was re-used (no re-encode).
    duplicate : bool
        True when an earlier attempt of this event wrote the outcome: the outcome then carries no result record
        (its figures are the recorded ones; the log line's ``ms`` becomes this attempt's whole handling).

    Returns
    -------
    Written
        ``bucket``, ``event_id``, the outcome (target ``s3://<bucket>/<key>``) and the payload.
    """
    payload = build_payload(
        bucket=ref.bucket,
        key=ref.key,
        result=result,
        source_etag=source_etag,
        destination_bucket=None if failed_copy else bucket,
        failed_bucket=bucket if failed_copy else None,
        event_id=event_id,
        reused=reused,
    )
    outcome = Outcome(
        ref.bucket,
        ref.key,
        result.status.value,
        input_bytes=result.input_bytes,
        output_bytes=result.output_bytes,
        ms=result.ms,
        reason=result.reason,
        target=f"s3://{bucket}/{ref.key}",
        duplicate=duplicate,
        result=None if duplicate else result,
        compress_ms=compress_ms,
        event_id=event_id,
        reused=reused,
    )
    return Written(bucket, event_id, outcome, payload)


def notify_once(settings: Settings, done: Written) -> Outcome:
    """Publish the payload of ``done`` and tag its outcome object ``notified=<event id>``; return the outcome.

    Without ``SNS_TOPIC_ARN`` nothing is published. A transient publish error turns the outcome into ``error`` (the
    outcome stays written; Lambda retries the event and the retry, a duplicate, publishes). A permanent one (no such
    topic, no permission) is logged and counted (``NotificationsFailed``, alarmed) and the outcome stands: retrying
    cannot fix it. A failed tag write is logged only: the retry it would need could publish a second time.

    Returns
    -------
    Outcome
        The outcome with ``notified=True`` when published, as it was when not, or an ``error`` outcome.
    """
    outcome = done.outcome
    if not settings.sns_topic_arn:
        logger.debug("SNS_TOPIC_ARN is not set; no notification published")
        return outcome
    payload, event_id = done.payload, done.event_id
    try:
        aws.publish(settings.sns_topic_arn, build_subject(payload), build_message(payload), message_attributes(payload))
    except aws.AwsError as exc:
        metrics.add_metric(name="NotificationsFailed", unit=MetricUnit.Count, value=1)
        if exc.transient:
            return unplaced(
                ref=ObjectRef(outcome.bucket, outcome.key),
                reason=f"the outcome is written to {outcome.target} but the notification was not published ({exc})",
                event_id=event_id,
                input_bytes=outcome.input_bytes,
            )
        logger.warning(
            f"the notification was not published ({exc}); the object itself is fine. Check SNS_TOPIC_ARN and the "
            "function's sns:Publish permission"
        )
        return outcome
    try:
        aws.put_tags(done.bucket, outcome.key, {NOTIFIED_TAG: event_id})
    except aws.AwsError as exc:
        logger.warning(f"published, but the notified tag was not written ({exc}); a retry would publish again")
    return replace(outcome, notified=True)
