"""SNS notifications from the inspection queue, persisted as JSON lines (no Streamlit here).

A message received from SQS is gone from the queue once deleted, so every message is first appended to a JSON-lines
file in the dashboard's state directory (next to the stack state, or ``DASHBOARD_STATE_DIR``) and deleted from the
queue only after the file was written and flushed to disk. Reading shows the file newest first.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from image_compressor.notification import SEPARATOR, build_subject, parse_message

from ops import notifications as inspection

FILE_NAME = "notifications.jsonl"


@dataclass(frozen=True)
class Notification:
    """One SNS message as the dashboard keeps it.

    Attributes
    ----------
    id : str
        SNS ``MessageId`` (or the SQS message id with raw delivery); used to drop duplicates.
    subject : str
        SNS subject (rebuilt from the payload with raw delivery, which drops it).
    status : str
        ``status`` message attribute, else the payload's status; ``unknown`` if neither.
    key : str
        Object key from the payload.
    time : str
        When SNS sent it (ISO 8601 UTC).
    body : str
        The human-readable part of the message.
    payload : dict
        The machine-readable JSON (empty when the message was not one of ours).
    received : str
        When the dashboard read it from the queue (ISO 8601 UTC).
    """

    id: str
    subject: str
    status: str
    key: str
    time: str
    body: str
    payload: dict[str, Any] = field(default_factory=dict)
    received: str = ""

    def to_json(self) -> str:
        """Return one JSON line."""
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Notification:
        """Rebuild from a parsed JSON line, ignoring unknown fields."""
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def from_sqs(message: dict[str, Any], now: datetime | None = None) -> Notification:
    """Turn one SQS message from the SNS subscription into a :class:`Notification`.

    Handles both the SNS envelope (raw delivery off) and raw delivery (message attributes on the SQS message).
    The stack's CloudWatch alarms publish to the same topic: they get status ``alarm``. Any other message is kept
    too, with status ``unknown`` and its raw body, so nothing read from the queue is lost.
    """
    now = now or datetime.now(UTC)
    raw_body = str(message.get("Body", ""))
    envelope: dict[str, Any] | None = None
    if raw_body.lstrip().startswith("{"):
        try:
            decoded = json.loads(raw_body)
        except ValueError:
            decoded = None
        if isinstance(decoded, dict) and decoded.get("Type") == "Notification":
            envelope = decoded
    text = str(envelope.get("Message", "")) if envelope else raw_body
    try:
        payload = parse_message(envelope if envelope else raw_body)
    except ValueError:
        payload = {}
    attributes = _attributes(envelope, message)
    alarm = _alarm(text) if not payload else None
    status = attributes.get("status") or str(payload.get("status") or ("alarm" if alarm else "unknown"))
    subject = str(envelope.get("Subject") or "") if envelope else ""
    if not subject:
        subject = build_subject(payload) if payload.get("status") and payload.get("key") else "(no subject)"
    sent = (envelope or {}).get("Timestamp") or payload.get("time") or _sqs_sent(message) or _iso(now)
    message_id = (envelope or {}).get("MessageId") or message.get("MessageId") or f"local-{now.timestamp()}"
    marker = f"\n{SEPARATOR}\n"
    body = text[: text.rfind(marker)].rstrip() if payload and marker in text else text
    if alarm:
        body = f"{alarm.get('AlarmName')}: {alarm.get('NewStateValue')}\n{alarm.get('NewStateReason', '')}".strip()
        payload = {"alarm": alarm.get("AlarmName"), "state": alarm.get("NewStateValue")}
    return Notification(
        id=str(message_id),
        subject=subject,
        status=status,
        key=str(payload.get("key") or attributes.get("key") or ""),
        time=_normalise_time(str(sent)),
        body=body,
        payload=payload,
        received=_iso(now),
    )


class NotificationStore:
    """A JSON-lines file of notifications, safe for several dashboard sessions at once (``flock``).

    Parameters
    ----------
    path : Path
        The file; its directory is created on the first write.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def add(self, items: Iterable[Notification]) -> int:
        """Append the notifications not stored yet (by ``id``), flush them to disk, return how many were new."""
        items = list(items)
        if not items:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                handle.seek(0)
                known = {n.id for n in _parse_lines(handle)}
                new = [n for n in items if n.id not in known]
                for item in new:
                    handle.write(item.to_json() + "\n")
                    known.add(item.id)
                handle.flush()
                os.fsync(handle.fileno())
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return len(new)

    def read(self) -> list[Notification]:
        """Return every stored notification, newest first (by send time); unreadable lines are skipped."""
        if not self.path.is_file():
            return []
        with open(self.path, encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH)
            try:
                items = list(_parse_lines(handle))
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        items.sort(key=lambda n: (n.time, n.received), reverse=True)
        return items


def store_path(state_dir: str | Path) -> Path:
    """Return the notifications file inside the dashboard's state directory."""
    return Path(state_dir) / FILE_NAME


def drain_queue(sqs_client: Any, queue_url: str, store: NotificationStore, max_batches: int = 20) -> int:
    """Move waiting messages from the SQS queue into ``store`` (:func:`ops.notifications.drain`); return how many new.

    Each batch is persisted (appended and fsynced) before its messages are deleted from the queue, so a crash in
    between means a message is seen twice (and dropped as a duplicate by id), never lost.
    """
    return inspection.drain(
        sqs_client, queue_url, lambda messages: store.add(from_sqs(m) for m in messages), max_batches=max_batches
    )


def _parse_lines(handle: Iterable[str]) -> Iterable[Notification]:
    for line in handle:
        line = line.strip()
        if not line:
            continue
        try:
            yield Notification.from_dict(json.loads(line))
        except (ValueError, TypeError):
            continue


def _alarm(text: str) -> dict[str, Any] | None:
    """The JSON a CloudWatch alarm publishes to the topic (the stack's error and DLQ alarms), else ``None``."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) and "AlarmName" in data else None


def _attributes(envelope: dict[str, Any] | None, message: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in ((envelope or {}).get("MessageAttributes") or {}).items():
        if isinstance(value, dict) and "Value" in value:
            found[name] = str(value["Value"])
    for name, value in (message.get("MessageAttributes") or {}).items():
        if isinstance(value, dict) and "StringValue" in value:
            found.setdefault(name, str(value["StringValue"]))
    return found


def _sqs_sent(message: dict[str, Any]) -> str | None:
    stamp = (message.get("Attributes") or {}).get("SentTimestamp")
    if not stamp:
        return None
    return _iso(datetime.fromtimestamp(int(stamp) / 1000, tz=UTC))


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _normalise_time(text: str) -> str:
    try:
        return _iso(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return text
