"""Lambda entry point ``index.handler``: parse the event (S3 notification or Batch Operations), log, delegate."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.typing import LambdaContext
from image_compressor import batch, runs, service
from image_compressor.observability import logger, metrics
from image_compressor.settings import Settings, SettingsError


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Compress every object an S3 ``ObjectCreated`` event or an S3 Batch Operations event names.

    Parameters
    ----------
    event : dict
        An S3 event notification (``Records``; other records are logged and ignored), or an S3 Batch Operations
        ``LambdaInvoke`` event (``invocationSchemaVersion``, ``tasks``; see :func:`handle_batch`).
    context : LambdaContext
        The Lambda context.

    Returns
    -------
    dict
        For a notification ``{"processed": n, "results": [...]}``, one entry per object (see
        ``service.Outcome.to_dict``); for a Batch Operations event its answer (:func:`handle_batch`).

    Raises
    ------
    SettingsError
        When the function's environment is misconfigured (nothing is touched).
    service.UnprocessedObjectsError
        After all records were tried, when an object ended in neither the destination nor the failed bucket,
        so Lambda retries the event (retries are idempotent).
    """
    if batch.is_batch_event(event):
        return handle_batch(event, context)
    refs = parse_event(event)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        logger.error(f"the function is misconfigured, nothing was processed: {exc}; fix its environment variables")
        raise
    logger.info("processing event", extra={"objects": len(refs)})
    try:
        outcomes = service.process_objects(refs, settings, limits(context))
    except service.UnprocessedObjectsError as exc:
        logger.error(str(exc), extra={"unprocessed_keys": [o.key for o in exc.outcomes]})
        raise
    return {"processed": len(outcomes), "results": [o.to_dict() for o in outcomes]}


def handle_batch(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Answer an S3 Batch Operations event: each task goes through the same per-object path as an upload event.

    Each task's object is processed alone (``service.process_objects``) and answered ``Succeeded`` when it has its
    outcome (compressed, kept-original, failed, or nothing to do: duplicate, superseded, source gone),
    ``TemporaryFailure`` when it could not be placed (a transient AWS error: S3 retries the task), and
    ``PermanentFailure`` for a malformed task, the recursion guard, or a misconfigured function. The object's event
    identity is ``batch.BatchEvent.event_id`` (a forced backfill run), else the source version's own.

    Raises
    ------
    service.UnprocessedObjectsError
        Only when the invoker asked for it (``userArguments`` ``onTemporaryFailure=raise``: the backfill's
        asynchronous invocations), after every task was answered, when a task ended ``TemporaryFailure``.
    SettingsError
        Likewise, when the function is misconfigured.
    """
    try:
        parsed = batch.parse(event)
    except batch.BatchEventError as exc:
        logger.error(f"ignored a malformed Batch Operations event: {exc}")
        return batch.response(str(event.get("invocationId") or ""), [])
    results = [batch.result(task_id, batch.PERMANENT_FAILURE, reason) for task_id, reason in parsed.malformed]
    for task_id, reason in parsed.malformed:
        logger.error(f"malformed Batch Operations task {task_id}: {reason}")
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        logger.error(f"the function is misconfigured, nothing was processed: {exc}; fix its environment variables")
        if parsed.raise_on_temporary_failure:
            raise
        reason = f"the function is misconfigured: {exc}"
        results += [batch.result(t.task_id, batch.PERMANENT_FAILURE, reason) for t in parsed.tasks]
        return batch.response(parsed.invocation_id, results)
    logger.info("processing Batch Operations event", extra={"job_id": parsed.job_id, "objects": len(parsed.tasks)})
    unplaced: list[service.Outcome] = []
    for task in parsed.tasks:
        ref = service.ObjectRef(task.bucket, task.key, version_id=task.version_id, event_id=parsed.event_id)
        try:
            outcome = service.process_objects([ref], settings, limits(context))[0]
        except service.UnprocessedObjectsError as exc:
            outcome = exc.outcomes[0]
        results.append(batch.result(task.task_id, _result_code(outcome), _result_string(outcome)))
        if outcome.status == service.ERROR:
            unplaced.append(outcome)
    if unplaced and parsed.raise_on_temporary_failure:
        error = service.UnprocessedObjectsError(unplaced)
        logger.error(str(error), extra={"unprocessed_keys": [o.key for o in unplaced]})
        raise error
    return batch.response(parsed.invocation_id, results)


def _result_code(outcome: service.Outcome) -> str:
    if outcome.status == service.ERROR:
        return batch.TEMPORARY_FAILURE
    if outcome.status == service.REFUSED:
        return batch.PERMANENT_FAILURE
    return batch.SUCCEEDED


def _result_string(outcome: service.Outcome) -> str:
    parts = [outcome.status + (" (duplicate)" if outcome.duplicate else "")]
    if outcome.target:
        parts.append(outcome.target)
    if outcome.reason:
        parts.append(outcome.reason)
    return ": ".join(parts)


def parse_event(event: dict[str, Any]) -> list[service.ObjectRef]:
    """Return the source objects of the ``ObjectCreated`` records in ``event``, keys URL-decoded.

    Each carries the record's identity fields (``eTag``, ``versionId``, ``sequencer``, each optional) for the
    service's duplicate and ordering checks, and the run of a hand invoke (``runs.S3_RECORD_RUN``) as its explicit
    event identity.

    Every record's key is decoded with ``unquote_plus`` here (Powertools decodes only the first record's).
    Records of other event types, and malformed records, are logged and skipped.
    """
    if not isinstance(event, dict) or not isinstance(event.get("Records"), list):
        logger.warning("ignored an event that is not an S3 notification (no 'Records' list)")
        return []
    refs: list[service.ObjectRef] = []
    for index, record in enumerate(S3Event(event).records):
        try:
            event_name = record.event_name.removeprefix("s3:")
            bucket = record.s3.bucket.name
            key = unquote_plus(record.s3.get_object.key)
            raw = record["s3"]["object"]
        except (KeyError, TypeError, AttributeError) as exc:
            logger.error(f"ignored malformed S3 record #{index}: missing {exc}; expected an S3 event notification")
            continue
        if not event_name.startswith("ObjectCreated:"):
            logger.info(
                "ignored record: only ObjectCreated events are processed",
                extra={"event_name": event_name, "bucket": bucket, "key": key},
            )
            continue
        refs.append(
            service.ObjectRef(
                bucket=bucket,
                key=key,
                etag=_text(raw.get("eTag")),
                version_id=_text(raw.get("versionId")),
                sequencer=_text(raw.get("sequencer")),
                event_id=runs.s3_record_event_id(record.raw_event),
            )
        )
    return refs


def limits(context: LambdaContext) -> service.Limits:
    """Return the invocation's remaining time and memory size from the Lambda context (either may be missing)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    try:
        memory = int(getattr(context, "memory_limit_in_mb", 0) or 0) or None
    except (TypeError, ValueError):
        memory = None
    return service.Limits(remaining_ms=remaining if callable(remaining) else None, memory_mb=memory)


def _text(value: object) -> str | None:
    return str(value).strip('"') if value not in (None, "", "null") else None
