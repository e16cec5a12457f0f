"""The inspection queue: the SNS notifications the stack delivers to SQS (output ``notifications_queue_url``), consumed.

The dashboard's Notifications page keeps them in a file of its own; :func:`drain` hands each batch to the caller's
``keep`` before deleting it from the queue, so a crash in between means a message is seen twice, never lost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: SQS's largest batch.
BATCH = 10


def drain(sqs: Any, queue_url: str, keep: Callable[[list[dict[str, Any]]], int], max_batches: int = 20) -> int:
    """Move waiting messages out of the queue at ``queue_url``; return the sum of what ``keep`` returned.

    Each batch of ``ReceiveMessage`` entries (with their attributes and ``SentTimestamp``) goes to ``keep(messages)``,
    which must persist them (and return how many were new) before they are deleted from the queue. Stops at an empty
    receive or after ``max_batches`` batches.
    """
    added = 0
    for _ in range(max_batches):
        reply = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=BATCH,
            WaitTimeSeconds=0,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["SentTimestamp"],
        )
        messages = reply.get("Messages", [])
        if not messages:
            break
        added += keep(messages)
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
    return added
