"""Lambda entry point ``index.handler``: parse the S3 event, log, and hand the objects to the service."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.typing import LambdaContext
from image_compressor import service
from image_compressor.observability import logger, metrics
from image_compressor.settings import Settings, SettingsError


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Compress every object an S3 ``ObjectCreated`` event names.

    Parameters
    ----------
    event : dict
        An S3 event notification (``Records``); other records are logged and ignored.
    context : LambdaContext
        The Lambda context.

    Returns
    -------
    dict
        ``{"processed": n, "results": [...]}``, one entry per object (see ``service.Outcome.to_dict``).

    Raises
    ------
    SettingsError
        When the function's environment is misconfigured (nothing is touched).
    service.UnprocessedObjectsError
        After all records were tried, when an object ended in neither the destination nor the failed bucket,
        so Lambda retries the event (retries are idempotent).
    """
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


def parse_event(event: dict[str, Any]) -> list[service.ObjectRef]:
    """Return the source objects of the ``ObjectCreated`` records in ``event``, keys URL-decoded.

    Each carries the record's identity fields (``eTag``, ``versionId``, ``sequencer``, each optional) for the
    service's duplicate and ordering checks.

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
