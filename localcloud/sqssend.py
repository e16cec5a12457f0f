"""SQS ``SendMessage`` to a standard queue in time that does not grow with the queue (moto 5.2.5 exactly).

moto's ``SQSBackend.send_message`` reads ``queue.attributes`` only to learn whether content-based deduplication is
on. That property builds every attribute of the queue, the three ``ApproximateNumberOfMessages*`` counts included,
each a pass over every message in the queue with two clock conversions per message. So each message sent costs more
than the one before: every notification of the function goes through SNS to the stack's notifications queue, which
nobody drains while one develops, and profiled on the embedded cloud this detour was half of the server's time for
an ``sns:Publish`` after a few hundred uploads.

For a standard queue that answer is always "no" (``ContentBasedDeduplication`` is a FIFO attribute; moto lists it
for FIFO queues only), so :func:`send_message` does what moto's method does without asking. FIFO queues go to
moto's own method unchanged. :func:`install` puts it in place (the server does, at start); :func:`uninstall` undoes.
"""

from __future__ import annotations

from typing import Any

from moto.moto_api._internal import mock_random as random
from moto.sqs import models as sqs_models
from moto.sqs.exceptions import InvalidParameterValue

_original: Any = None


def install() -> None:
    """Replace moto's ``SQSBackend.send_message`` with :func:`send_message` (once)."""
    global _original
    if _original is None:
        _original = sqs_models.SQSBackend.send_message
        sqs_models.SQSBackend.send_message = send_message  # type: ignore[method-assign]


def uninstall() -> None:
    """Restore moto's own ``SQSBackend.send_message``."""
    global _original
    if _original is not None:
        sqs_models.SQSBackend.send_message = _original  # type: ignore[method-assign]
        _original = None


def send_message(
    self: sqs_models.SQSBackend,
    queue_name: str,
    message_body: str,
    message_attributes: dict[str, Any] | None = None,
    delay_seconds: int | None = None,
    deduplication_id: str | None = None,
    group_id: str | None = None,
    system_attributes: dict[str, Any] | None = None,
    validate_group_id: bool = True,
) -> sqs_models.Message:
    """Do what moto 5.2.5's ``send_message`` does, minus the read of every queue attribute for a standard queue.

    The same checks, message and errors as moto's (a FIFO queue is moto's own method); see the module docstring.
    """
    queue = self.get_queue(queue_name)
    if queue.fifo_queue or _original is None:
        original = _original or sqs_models.SQSBackend.send_message
        return original(  # type: ignore[no-any-return]
            self,
            queue_name,
            message_body,
            message_attributes,
            delay_seconds,
            deduplication_id,
            group_id,
            system_attributes,
            validate_group_id,
        )
    self._validate_message(
        queue,
        message_body=message_body,
        delay_seconds=int(delay_seconds or 0),
        deduplication_id=deduplication_id,
        group_id=group_id,
        validate_group_id=validate_group_id,
    )
    delay = int(delay_seconds) if delay_seconds is not None else int(queue.delay_seconds)  # type: ignore[arg-type]
    message = sqs_models.Message(str(random.uuid4()), message_body, system_attributes)
    if deduplication_id is not None:
        message.deduplication_id = deduplication_id
        message.sequence_number = "".join(random.choice("0123456789") for _ in range(20))
    if group_id is not None:
        message.group_id = group_id
    if message_attributes:
        message.message_attributes = message_attributes
    if delay > sqs_models.MAXIMUM_MESSAGE_DELAY:
        raise InvalidParameterValue(
            f"Value {delay} for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= 900."
        )
    message.mark_sent(delay_seconds=delay)
    queue.add_message(message)
    return message
