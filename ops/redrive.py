"""Redrive: replay the events of the dead-letter queue through the deployed function, then delete their messages.

The dead-letter queue (output ``dlq_url``) is the function's asynchronous on-failure destination. It holds one of two
shapes per message, both handled by :func:`parse_message`:

* a Lambda **destination record** (what an on-failure destination receives): a JSON body with ``requestPayload``
  (the original event), ``requestContext`` (``condition``: ``RetriesExhausted`` / ``EventAgeExceeded``,
  ``approximateInvokeCount``) and ``responsePayload`` (the function's ``errorType`` and ``errorMessage``);
* a plain **DLQ message** (a function's ``DeadLetterConfig``): the body is the event itself, the error is in the
  message attributes ``ErrorCode`` and ``ErrorMessage``.

The event must be an S3 notification (``Records`` with ``s3.bucket.name`` and ``s3.object.key``) or an S3 Batch
Operations event (``tasks``). Anything else is not replayed: it stays in the queue with a reason that says what it is.

A replay (:func:`replay`) invokes the function asynchronously (``InvocationType=Event``) with the original event; the
message is deleted only after Lambda answered 202 (accepted). The function is idempotent per event (see
``lambda/image_compressor/service.py``): replaying an event whose outcome is already written writes nothing and
publishes only if that outcome was never notified, so a message replayed twice (a crash between the invoke and the
delete) or a second redrive is harmless. :func:`redrive` does the whole queue; :func:`peek` lists it without
consuming it (the dashboard's dead-letter view). :func:`redrive_stack` and :func:`dead_letters` do the same for a
:class:`ops.stack.Stack` (its ``dlq_url`` and ``function_name``), with the clients of its :data:`ops.stack.OPERATION`
policy.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus, unquote_plus

import botocore.exceptions as bx

from ops.stack import OPERATION, Stack, error_code

#: Outputs of the stack a redrive needs.
NEEDED_OUTPUTS = ("function_name", "dlq_url")
#: How long a received message stays hidden from other readers while it is replayed (seconds).
VISIBILITY_TIMEOUT_S = 120
#: SQS's largest batch.
BATCH = 10
#: Lambda's answer to an accepted asynchronous invocation.
ACCEPTED = 202
_QUEUE_MISSING = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NonExistentQueue"}


class RedriveError(RuntimeError):
    """The redrive cannot run as asked (no stack, wrong target, missing queue or function); the message says why."""


class MissingResourceError(RedriveError):
    """The stack's dead-letter queue or function does not exist (destroyed, or never applied)."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One message of the dead-letter queue, read.

    Attributes
    ----------
    message_id : str
        The SQS message id.
    receipt_handle : str
        The handle of this receive (deleting or releasing the message needs it).
    event : dict | None
        The original event, ``None`` when the message holds none that can be replayed (see ``problem``).
    keys : tuple[str, ...]
        ``s3://bucket/key`` of each object the event names (keys URL-decoded), for people to read.
    error : str | None
        Why the function failed on it, as the message records it (error type and message, condition, attempts).
    problem : str | None
        Why the message cannot be replayed; ``None`` when it can.
    sent_at : datetime | None
        When the message reached the queue (UTC), if SQS said.
    """

    message_id: str
    receipt_handle: str
    event: dict[str, Any] | None
    keys: tuple[str, ...] = ()
    error: str | None = None
    problem: str | None = None
    sent_at: datetime | None = None

    @property
    def replayable(self) -> bool:
        """True when the message holds an event :func:`replay` can send."""
        return self.event is not None and self.problem is None


@dataclass(slots=True)
class Summary:
    """What a redrive did.

    Attributes
    ----------
    replayed : list[DeadLetter]
        Messages whose event the function accepted; each was deleted from the queue.
    left : list[tuple[DeadLetter, str]]
        Messages that stay in the queue, each with the reason (unreadable, or the replay was not accepted).
    """

    replayed: list[DeadLetter] = field(default_factory=list)
    left: list[tuple[DeadLetter, str]] = field(default_factory=list)

    @property
    def found(self) -> int:
        """How many messages were read."""
        return len(self.replayed) + len(self.left)

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as a JSON-ready dict (``found``, ``replayed``, ``left`` and each message's keys)."""
        return {
            "found": self.found,
            "replayed": len(self.replayed),
            "left": len(self.left),
            "replayed_messages": [{"message_id": m.message_id, "keys": list(m.keys)} for m in self.replayed],
            "left_messages": [
                {"message_id": m.message_id, "keys": list(m.keys), "reason": reason} for m, reason in self.left
            ],
        }


# -- reading messages -------------------------------------------------------------------------------------------------


def parse_message(message: Mapping[str, Any]) -> DeadLetter:
    """Read one SQS message of the dead-letter queue (a ``ReceiveMessage`` entry) into a :class:`DeadLetter`.

    A destination record gives its ``requestPayload`` as the event; a plain DLQ message its body. A message that is
    neither, or whose event is not an S3 or S3 Batch Operations event, gets a ``problem`` naming what was found and
    how to look at it; it is never replayed.
    """
    message_id = str(message.get("MessageId", ""))
    receipt = str(message.get("ReceiptHandle", ""))
    sent_at = _sent_at(message.get("Attributes") or {})

    def unreadable(problem: str, error: str | None = None) -> DeadLetter:
        return DeadLetter(message_id, receipt, None, (), error, problem, sent_at)

    try:
        body = json.loads(message.get("Body") or "")
    except ValueError:
        preview = (message.get("Body") or "")[:80]
        return unreadable(
            f"the body is not JSON ({preview!r}...): not a Lambda destination record or an event; left in the queue, "
            "read it with `aws sqs receive-message` and delete it by hand once understood"
        )
    if not isinstance(body, dict):
        return unreadable(
            f"the body is a JSON {type(body).__name__}, not a Lambda destination record or an event; left in the queue"
        )
    if "requestPayload" in body:
        event, error = body.get("requestPayload"), _destination_error(body)
        where = "the destination record's requestPayload"
    else:
        event, error = body, _attribute_error(message.get("MessageAttributes") or {})
        where = "the message"
    try:
        keys = event_keys(event)
    except ValueError as exc:
        return unreadable(f"{where} is not replayable: {exc}; left in the queue", error)
    return DeadLetter(message_id, receipt, event, tuple(keys), error, None, sent_at)


def event_keys(event: Any) -> list[str]:
    """Return ``s3://bucket/key`` for each object an S3 notification or S3 Batch Operations event names.

    Raises
    ------
    ValueError
        When ``event`` is neither, or names no object (the message says what it found).
    """
    if not isinstance(event, dict):
        raise ValueError(f"expected an S3 event object, found a JSON {type(event).__name__}")
    if isinstance(event.get("Records"), list):
        keys = []
        for index, record in enumerate(event["Records"]):
            try:
                keys.append(f"s3://{record['s3']['bucket']['name']}/{unquote_plus(record['s3']['object']['key'])}")
            except (KeyError, TypeError):
                raise ValueError(f"record #{index} has no s3.bucket.name and s3.object.key") from None
        if not keys:
            raise ValueError("the S3 event has no records")
        return keys
    if isinstance(event.get("tasks"), list) and event.get("invocationSchemaVersion"):
        try:
            keys = [f"s3://{t['s3BucketName']}/{unquote_plus(t['s3Key'])}" for t in event["tasks"]]
        except (KeyError, TypeError):
            raise ValueError("an S3 Batch Operations task has no s3BucketName and s3Key") from None
        if not keys:
            raise ValueError("the S3 Batch Operations event has no tasks")
        return keys
    found = ", ".join(sorted(map(str, event))[:6]) or "nothing"
    raise ValueError(f"expected an S3 event (Records) or an S3 Batch Operations event (tasks), found keys: {found}")


def _destination_error(body: Mapping[str, Any]) -> str | None:
    payload = body.get("responsePayload")
    context = body.get("requestContext") or {}
    parts = []
    if isinstance(payload, dict) and (payload.get("errorType") or payload.get("errorMessage")):
        parts.append(": ".join(str(p) for p in (payload.get("errorType"), payload.get("errorMessage")) if p))
    elif payload:
        parts.append(str(payload))
    if isinstance(context, dict) and context.get("condition"):
        attempts = context.get("approximateInvokeCount")
        parts.append(f"{context['condition']}" + (f" after {attempts} attempt(s)" if attempts else ""))
    return " · ".join(parts) or None


def _attribute_error(attributes: Mapping[str, Any]) -> str | None:
    def value(name: str) -> str | None:
        entry = attributes.get(name)
        return str(entry.get("StringValue")) if isinstance(entry, dict) and entry.get("StringValue") else None

    parts = [p for p in (value("ErrorCode"), value("ErrorMessage")) if p]
    return ": ".join(parts) or None


def _sent_at(attributes: Mapping[str, Any]) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(attributes["SentTimestamp"]) / 1000, UTC)
    except (KeyError, TypeError, ValueError):
        return None


def queue_depth(sqs: Any, queue_url: str) -> int:
    """Return the number of messages in the queue, visible or being read (SQS's approximate counts).

    Raises
    ------
    RedriveError
        When the queue does not exist.
    """
    with _queue_errors(queue_url):
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
    return int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
        attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
    )


def _batches(sqs: Any, queue_url: str, visibility: int) -> Iterator[list[DeadLetter]]:
    """Yield every message of the queue once, a batch at a time, each hidden for ``visibility`` seconds."""
    seen: set[str] = set()
    while True:
        with _queue_errors(queue_url):
            got = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=BATCH,
                VisibilityTimeout=visibility,
                WaitTimeSeconds=1,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
        fresh = [m for m in got if m.get("MessageId") not in seen]
        if not fresh:
            return
        seen.update(str(m.get("MessageId")) for m in fresh)
        yield [parse_message(m) for m in fresh]


def _release(sqs: Any, queue_url: str, letters: list[DeadLetter]) -> None:
    """Make ``letters`` visible again at once (they stay in the queue for the next reader)."""
    for start in range(0, len(letters), BATCH):
        entries = [
            {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": 0}
            for i, m in enumerate(letters[start : start + BATCH])
        ]
        sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)


def peek(sqs: Any, queue_url: str, limit: int | None = None) -> list[DeadLetter]:
    """Return the messages of the dead-letter queue (all, or about ``limit``), oldest first, leaving them in the queue.

    Each message is received once (hidden briefly while the queue is read) and made visible again before returning.
    With ``limit``, reading stops at the first batch that reaches it (SQS hands out messages in no set order, so on a
    long queue these are some of them, not necessarily the oldest).

    Raises
    ------
    RedriveError
        When the queue does not exist.
    """
    letters: list[DeadLetter] = []
    for batch in _batches(sqs, queue_url, visibility=30):
        letters.extend(batch)
        if limit is not None and len(letters) >= limit:
            break
    _release(sqs, queue_url, letters)
    letters.sort(key=lambda m: m.sent_at or datetime.max.replace(tzinfo=UTC))
    return letters


# -- replaying --------------------------------------------------------------------------------------------------------


def replay(lam: Any, function_name: str, event: Mapping[str, Any]) -> None:
    """Invoke ``function_name`` asynchronously with ``event``; return once Lambda accepted it (HTTP 202).

    The function then processes it like any asynchronous event: with its retries and, if it fails again, a new
    dead-letter message.

    Raises
    ------
    RedriveError
        When the function does not exist or Lambda did not accept the event (the message says why).
    """
    try:
        answer = lam.invoke(FunctionName=function_name, InvocationType="Event", Payload=json.dumps(event).encode())
    except bx.ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise MissingResourceError(
                f"the function {function_name} does not exist: apply the stack again (`make local-up` or "
                "`make deploy-aws`)"
            ) from exc
        raise RedriveError(f"Lambda did not accept the event: {exc}") from exc
    except bx.BotoCoreError as exc:
        raise RedriveError(f"Lambda did not accept the event: {exc}") from exc
    status = int(answer.get("StatusCode") or 0)
    if status != ACCEPTED:
        raise RedriveError(f"Lambda answered {status} instead of {ACCEPTED} (accepted) to the asynchronous invoke")


def redrive(
    sqs: Any,
    lam: Any,
    queue_url: str,
    function_name: str,
    *,
    on_message: Callable[[DeadLetter, str | None], None] | None = None,
) -> Summary:
    """Replay every event in the dead-letter queue through the function; delete each message once it was accepted.

    Messages are read in batches, each hidden for :data:`VISIBILITY_TIMEOUT_S` while its event is replayed. A message
    that cannot be replayed (not a destination record or an S3 event) or whose replay Lambda did not accept stays in
    the queue, visible again at the end. ``on_message(letter, reason)`` is called after each message (``reason`` is
    ``None`` when it was replayed). An empty queue gives an empty summary; so does a second run right after a
    complete one.

    Raises
    ------
    RedriveError
        When the queue or the function does not exist (nothing is deleted).
    """
    summary = Summary()
    for batch in _batches(sqs, queue_url, visibility=VISIBILITY_TIMEOUT_S):
        for index, letter in enumerate(batch):
            reason = letter.problem
            if reason is None and letter.event is not None:
                try:
                    replay(lam, function_name, letter.event)
                except MissingResourceError:
                    _release(sqs, queue_url, [*(m for m, _ in summary.left), *batch[index:]])
                    raise
                except RedriveError as exc:
                    reason = f"not replayed, the message stays: {exc}"
            if reason is None:
                with _queue_errors(queue_url):
                    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=letter.receipt_handle)
                summary.replayed.append(letter)
            else:
                summary.left.append((letter, reason))
            if on_message is not None:
                on_message(letter, reason)
    _release(sqs, queue_url, [m for m, _ in summary.left])
    return summary


def redrive_stack(stack: Stack, *, on_message: Callable[[DeadLetter, str | None], None] | None = None) -> Summary:
    """:func:`redrive` the dead-letter queue of ``stack`` through its function (``make redrive``, the dashboard).

    Raises
    ------
    RedriveError
        As :func:`redrive`.
    """
    return redrive(
        stack.client("sqs", OPERATION),
        stack.client("lambda", OPERATION),
        stack.output("dlq_url"),
        stack.output("function_name"),
        on_message=on_message,
    )


def dead_letters(stack: Stack, limit: int = 100) -> tuple[int, list[DeadLetter]]:
    """Return how many messages the dead-letter queue of ``stack`` holds, and (up to about ``limit`` of) them.

    None is consumed: each is visible again at once (:func:`peek`). Oldest first.

    Raises
    ------
    RedriveError
        When the queue does not exist.
    """
    sqs, url = stack.client("sqs", OPERATION), stack.output("dlq_url")
    letters = peek(sqs, url, limit=limit)
    return max(queue_depth(sqs, url), len(letters)), letters


def s3_event(
    bucket: str, key: str, *, etag: str, size: int, version_id: str | None = None, region: str = ""
) -> dict[str, Any]:
    """Return an S3 ``ObjectCreated:Put`` notification for one object, as S3 would send it (key URL-encoded).

    It carries the object's ETag (and version), so the function treats it as an event for exactly that version
    (a newer upload makes it ``superseded``), and no sequencer: the function identifies it by the object's ETag and
    LastModified. Used to reprocess an object through :func:`replay`.
    """
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "size": size, "eTag": etag.strip('"')}
    if version_id:
        obj["versionId"] = version_id
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": obj,
                },
            }
        ]
    }


@contextmanager
def _queue_errors(queue_url: str) -> Iterator[None]:
    """Turn SQS's "no such queue" into a :class:`RedriveError` that says what to do."""
    try:
        yield
    except bx.ClientError as exc:
        if error_code(exc) in _QUEUE_MISSING:
            raise MissingResourceError(
                f"the dead-letter queue {queue_url} does not exist: the stack was destroyed or not applied; "
                "apply it again (`make local-up` or `make deploy-aws`)"
            ) from exc
        raise
