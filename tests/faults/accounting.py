"""What the fault-injection suite counts for each scenario: every upload accounted, notified, never contradictory,
stale or lost; and the table docs/reliability.md publishes.

An *upload* is one PUT of a key; each is a new S3 event and must end with exactly one outcome and one notification.
After a scenario, when the local cloud has no asynchronous invocation left (its health document's
``lambda.pending_async`` is 0), :func:`account` reads the buckets, the inspection queue and the dead-letter queue:

- **accounted**: the upload has a notification or a record in the dead-letter queue;
- **notified**: the upload's event has a notification (one per distinct ``event_id``);
- **duplicate notifications**: more than one message for one event;
- **contradictory**: the current source version has both an output and a failed copy, or one event was notified
  with two different statuses;
- **stale**: the destination holds an output of another version than the key's current one, or an output while
  the key's newest outcome is a failure;
- **lost**: neither notified nor in the dead-letter queue.
"""

from __future__ import annotations

import json
import urllib.parse
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from image_compressor.notification import parse_message
from image_compressor.result import MetadataKey

from localcloud import ministackasync
from ops import launch
from ops.procs import get_json
from ops.stack import head_or_none
from tests.stacks import StackInfo, poll


@dataclass
class Row:
    """One scenario's line of the reliability table."""

    scenario: str
    uploads: int
    accounted: int
    notified: int
    duplicate_notifications: int
    contradictory: int
    stale: int
    lost: int
    in_dlq: int

    def meets_goal(self) -> bool:
        """Return True for 100 % accounted and notified, no duplicate, contradiction, stale output or loss."""
        return (
            self.accounted == self.uploads == self.notified
            and not self.duplicate_notifications
            and not (self.contradictory or self.stale or self.lost)
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the row as a JSON-ready dict."""
        return asdict(self)


def health(stack: StackInfo) -> dict[str, Any]:
    """Return the embedded server's health document (:func:`ops.launch.localcloud_health`); fail when none answers."""
    document = launch.localcloud_health(stack.port)
    assert document is not None, f"the embedded local cloud on port {stack.port} does not answer its health check"
    return document


def lambda_status(stack: StackInfo) -> dict[str, Any]:
    """Return what the local cloud's Lambda holds: ``pending_async`` (queued, running, throttled or waiting to retry)
    and ``throttles`` (invocations refused for the reserved concurrency so far).

    The embedded cloud's health document says it; on MiniStack, our front's ``/_localcloud/lambda``
    (:mod:`localcloud.ministackasync`).
    """
    if stack.backend == "ministack":
        document = get_json(f"http://127.0.0.1:{stack.port}{ministackasync.STATUS_PATH}")
        assert document is not None, f"MiniStack on port {stack.port} does not answer {ministackasync.STATUS_PATH}"
        return document
    return health(stack)["lambda"]


def throttles(stack: StackInfo) -> int:
    """Return how many invocations the local cloud throttled for the reserved concurrency so far."""
    return lambda_status(stack)["throttles"]


def wait_idle(stack: StackInfo, timeout: float = 240.0) -> None:
    """Wait until the local cloud runs no asynchronous invocation and has none queued or waiting to retry."""
    poll(lambda: lambda_status(stack)["pending_async"] == 0, timeout=timeout, interval=0.5, what="an idle Lambda")


def drain(stack: StackInfo, queue_url: str) -> list[dict[str, Any]]:
    """Receive and delete every message now in ``queue_url``; return the bodies, JSON-decoded where they are JSON."""
    sqs = stack.client("sqs")
    bodies: list[Any] = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages"):
        for message in batch:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def notifications(bodies: list[str], prefix: str) -> list[dict[str, Any]]:
    """Return the pipeline notifications among ``bodies`` about keys under ``prefix``."""
    found = []
    for body in bodies:
        try:
            payload = parse_message(body)
        except ValueError:
            continue
        if str(payload.get("key", "")).startswith(prefix):
            found.append(payload)
    return found


def dlq_keys(bodies: list[str], prefix: str) -> Counter[str]:
    """Count the dead-letter records per key under ``prefix`` (Lambda destination records or bare S3 events)."""
    keys: Counter[str] = Counter()
    for body in bodies:
        try:
            record = json.loads(body)
        except ValueError:
            continue
        event = record.get("requestPayload", record) if isinstance(record, dict) else {}
        for entry in event.get("Records", []) if isinstance(event, dict) else []:
            key = urllib.parse.unquote_plus(entry.get("s3", {}).get("object", {}).get("key", ""))
            if key.startswith(prefix):
                keys[key] += 1
    return keys


def account(
    stack: StackInfo,
    scenario: str,
    uploads: list[str],
    notes: list[dict[str, Any]],
    dead: Counter[str],
) -> Row:
    """Count one scenario: ``uploads`` lists the key of every PUT in order (a key twice = two uploads).

    ``notes`` are the scenario's notifications, ``dead`` its dead-letter records per key. The buckets are read now:
    call this once nothing runs any more (:func:`wait_idle`).
    """
    out = stack.outputs
    s3 = stack.client("s3")
    per_key = Counter(uploads)
    events: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))  # key -> event id -> statuses
    messages: Counter[str] = Counter()
    for note in notes:
        events[note["key"]][note.get("event_id") or ""].add(note["status"])
        messages[note["key"]] += 1
    accounted = notified = duplicates = contradictory = stale = 0
    for key, count in per_key.items():
        distinct = len(events[key])
        notified += min(distinct, count)
        duplicates += messages[key] - distinct
        accounted += min(count, distinct + dead[key])
        contradictory += sum(1 for statuses in events[key].values() if len(statuses) > 1)
        source = head_or_none(s3, out["source_bucket"], key)
        output = head_or_none(s3, out["destination_bucket"], key)
        failed = head_or_none(s3, out["failed_bucket"], key)
        etag = source["ETag"].strip('"') if source else None

        def version_of(head: dict[str, Any] | None) -> str | None:
            return None if head is None else head["Metadata"].get(MetadataKey.SOURCE_ETAG.value)

        if output is not None and failed is not None and version_of(output) == version_of(failed) == etag:
            contradictory += 1
        if output is not None and version_of(output) != etag:
            stale += 1
    total = len(uploads)
    return Row(
        scenario=scenario,
        uploads=total,
        accounted=accounted,
        notified=notified,
        duplicate_notifications=duplicates,
        contradictory=contradictory,
        stale=stale,
        lost=total - accounted,
        in_dlq=sum(dead.values()),
    )


def table(rows: list[Row]) -> str:
    """Return the rows as the Markdown table of docs/reliability.md."""
    lines = [
        "| scenario | uploads | accounted | notified | duplicate notifications | contradictory | stale | lost | goal |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def pct(n: int, total: int) -> str:
        return f"{n}/{total} ({100 * n // max(total, 1)} %)"

    for row in rows:
        lines.append(
            f"| {row.scenario} | {row.uploads} | {pct(row.accounted, row.uploads)} | "
            f"{pct(row.notified, row.uploads)} | "
            f"{row.duplicate_notifications} | {row.contradictory} | {row.stale} | {row.lost} | "
            f"{'met' if row.meets_goal() else 'MISSED'} |"
        )
    return "\n".join(lines) + "\n"
