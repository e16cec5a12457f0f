"""The SNS notification contract: build the message the function publishes, parse it back anywhere.

A message is human-readable text for email, then a line ``---``, then one line of JSON (the payload) that machines
read with :func:`parse_message`. Pure Python: no AWS imports, so the dashboard and tests use it as they are.
"""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, datetime
from typing import Any

from image_compressor.result import Result, Status, rounded_ms

#: The line between the human-readable text and the JSON payload.
SEPARATOR = "---"
#: SNS subjects must be shorter than 100 characters.
MAX_SUBJECT_CHARS = 99

_SUBJECT_PREFIX = {
    Status.COMPRESSED.value: "Image compressed",
    Status.KEPT_ORIGINAL.value: "Image kept original",
    Status.FAILED.value: "Image compression failed",
}


def ascii_safe(text: str) -> str:
    r"""Return ``text`` as printable ASCII on one line.

    Accents are dropped (``é`` becomes ``e``), other non-ASCII characters become ``\uXXXX`` escapes, and line breaks,
    tabs and other control characters become single spaces. Used for SNS subjects and S3 metadata values, which
    accept ASCII only.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    without_marks = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    escaped = without_marks.encode("ascii", "backslashreplace").decode("ascii")
    printable = "".join(ch if 32 <= ord(ch) < 127 else " " for ch in escaped)
    return " ".join(printable.split())


def truncate(text: str, limit: int, marker: str = "...") -> str:
    """Return ``text`` cut to at most ``limit`` characters, ending in ``marker`` when it was cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(marker))] + marker


def build_payload(
    *,
    bucket: str,
    key: str,
    result: Result,
    source_etag: str,
    destination_bucket: str | None = None,
    failed_bucket: str | None = None,
    when: datetime | None = None,
    event_id: str | None = None,
    reused: bool = False,
) -> dict[str, Any]:
    """Return the machine-readable JSON payload of one notification.

    Parameters
    ----------
    bucket, key : str
        Source bucket and decoded object key.
    result : Result
        What happened to the image.
    source_etag : str
        ETag of the source object that was processed (without quotes).
    destination_bucket, failed_bucket : str | None
        Where the object went: the destination bucket for ``compressed``/``kept-original``, the failed bucket for
        ``failed``; the other one is ``None``.
    when : datetime | None
        Time of the outcome; defaults to now (UTC).
    event_id : str | None
        The deterministic id of the upload event this outcome belongs to: the same for every publication about
        that event (a retry that publishes again included), so subscribers can drop duplicates.
    reused : bool
        True when the output of an earlier upload of the same bytes and settings was re-used (not re-encoded).

    Returns
    -------
    dict
        ``status, bucket, key, destination_bucket, failed_bucket, input_bytes, output_bytes, saved_pct, width,
        height, quality, ms, reason, source_etag, event_id, reused, time`` (ISO 8601 UTC).
    """
    when = when or datetime.now(UTC)
    return {
        "status": result.status.value,
        "bucket": bucket,
        "key": key,
        "destination_bucket": destination_bucket,
        "failed_bucket": failed_bucket,
        "input_bytes": result.input_bytes,
        "output_bytes": result.output_bytes,
        "saved_pct": round(result.saved_ratio * 100, 1),
        "width": result.width,
        "height": result.height,
        "quality": result.quality,
        "ms": rounded_ms(result.ms),
        "reason": result.reason,
        "source_etag": source_etag,
        "event_id": event_id,
        "reused": reused,
        "time": when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


def build_subject(payload: dict[str, Any]) -> str:
    """Return the SNS subject for ``payload``: ``"<what happened>: <key>"``, ASCII, under 100 characters."""
    prefix = _SUBJECT_PREFIX.get(payload["status"], f"Image {payload['status']}")
    return truncate(ascii_safe(f"{prefix}: {payload['key']}"), MAX_SUBJECT_CHARS)


def build_message(payload: dict[str, Any]) -> str:
    """Return the SNS message body: readable text for email, a ``---`` line, then the payload as one line of JSON.

    :func:`parse_message` reads the payload back.
    """
    status = payload["status"]
    source = f"s3://{payload['bucket']}/{payload['key']}"
    reason = " ".join(str(payload.get("reason") or "").split())
    lines = [f"{_SUBJECT_PREFIX.get(status, 'Image ' + status)}: {payload['key']}", ""]
    if status == Status.FAILED.value:
        lines += [
            f"Source:     {source} (left in place)",
            f"Original:   copied to s3://{payload['failed_bucket']}/{payload['key']}",
            f"Size:       {payload['input_bytes']:,} bytes",
            f"Reason:     {reason}",
            "Next step:  fix or replace the image as the reason says, then upload it to the source bucket again.",
        ]
    else:
        lines += [
            f"Source:     {source}",
            f"Output:     s3://{payload['destination_bucket']}/{payload['key']}",
            f"Size:       {payload['input_bytes']:,} -> {payload['output_bytes']:,} bytes "
            f"(saved {payload['saved_pct']}%)",
            f"Dimensions: {payload['width']} x {payload['height']} pixels",
        ]
        if status == Status.COMPRESSED.value:
            lines.append(f"Quality:    {payload['quality']}")
        if reason:
            lines.append(f"Note:       {reason}")
        if payload.get("reused"):
            lines.append("Note:       unchanged bytes: the output of an earlier upload was re-used (not re-encoded)")
    lines += [
        f"Time:       {payload['ms']} ms",
        *([f"Event:      {payload['event_id']}"] if payload.get("event_id") else []),
        "",
        SEPARATOR,
        json.dumps(payload, ensure_ascii=True, separators=(",", ":")),
    ]
    return "\n".join(lines)


def message_attributes(payload: dict[str, Any]) -> dict[str, str]:
    """Return the SNS message attributes for ``payload`` (``status`` and ``key``) so subscribers can filter."""
    return {"status": payload["status"], "key": payload["key"]}


def parse_message(message: str | bytes | dict[str, Any]) -> dict[str, Any]:
    """Return the JSON payload of a notification, however it arrived.

    Accepts the SNS message body itself (an SQS message body with raw delivery, an email text), the SNS envelope
    (an SQS message body without raw delivery: JSON with ``Type`` ``Notification`` and ``Message``, as text or an
    already-decoded dict), and a bare JSON payload.

    Raises
    ------
    ValueError
        When the input holds no image-compressor payload; the message says what was expected.
    """
    if isinstance(message, bytes):
        message = message.decode("utf-8")
    if isinstance(message, dict):
        envelope: Any = message
    else:
        envelope = _json_or_none(message.strip()) if message.strip().startswith("{") else None
    if isinstance(envelope, dict):
        if envelope.get("Type") == "Notification" and isinstance(envelope.get("Message"), str):
            return parse_message(envelope["Message"])
        if "status" in envelope and "key" in envelope:
            return envelope
    if isinstance(message, dict):
        raise ValueError("not an image-compressor notification: a dict must be an SNS envelope or the payload itself")
    marker = f"\n{SEPARATOR}\n"
    index = message.rfind(marker)
    payload = _json_or_none(message[index + len(marker) :].strip()) if index >= 0 else None
    if not isinstance(payload, dict) or "status" not in payload:
        raise ValueError(
            "not an image-compressor notification: expected text ending in a '---' line and a JSON object with "
            "'status' (or an SNS envelope around it); check that the queue is subscribed to the function's topic"
        )
    return payload


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None
