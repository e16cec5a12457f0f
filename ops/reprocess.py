"""Reprocess: run failed images through the deployed function again, and report their new outcomes.

``image-compressor reprocess KEY...`` (``make reprocess KEYS=...``) and the dashboard's Failed page call
:func:`reprocess`. For each key:

1. **Request** (:func:`request`): the failed copy must exist. When the source bucket still holds the version that
   failed (the copy's ``source-etag``), the copy's event record is retired first (server-side, bytes and reason kept):
   ``source-etag`` becomes ``retried-source-etag``, ``source-event`` is dropped and ``retry-requested`` records the
   time. Without that the function would take the replay for a retry of the event it already answered (its
   idempotency is per event) and do nothing. Then an S3 ``ObjectCreated`` event for that version is replayed through
   the function (:func:`ops.redrive.replay`: an asynchronous invoke, the path of ``make redrive``). When the source
   object is gone, the failed copy is copied back to the source key instead: that upload is the event. A copy whose
   source holds a newer upload is refused (the newer upload's own outcome replaces the failure).
2. **Wait** (``wait_s``; 0 does not wait): poll until the source version has an outcome written after the request
   (destination object or a fresh failed copy whose ``source-etag`` is the version's).
3. **Settle**: after a success, the stale failed copy (``retry-requested`` and no ``source-etag``) is deleted
   (:func:`forget_failed_copy`); after a new failure the function's fresh copy replaced it already.

While a reprocess is pending, the copy's ``retry-requested`` and ``retried-source-etag`` tell a backfill that the
source version's outcome is on its way (:func:`ops.backfill.current_outcome`), so it is not queued a second time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from image_compressor.result import MetadataKey, Status, StoredResult, read_metadata, unquote_etag

from ops import redrive
from ops.stack import OPERATION, Stack, head_or_none

#: Outputs of the stack a reprocess needs.
NEEDED_OUTPUTS = ("source_bucket", "destination_bucket", "failed_bucket", "function_name")
#: Seconds :func:`reprocess` waits for the outcomes by default.
DEFAULT_WAIT_S = 60.0
#: Seconds between two looks at the outcomes.
POLL_INTERVAL_S = 0.5


class ReprocessError(RuntimeError):
    """A key cannot be reprocessed; the message says why and what to do."""


@dataclass(slots=True)
class Item:
    """One key of a reprocess: the source version it replayed, and its outcome.

    Attributes
    ----------
    key : str
        The object key (the same in the source, destination and failed buckets).
    source_etag : str | None
        ETag of the source version that was reprocessed (``None`` when the request was refused).
    result : StoredResult | None
        The new outcome, ``None`` while none arrived.
    error : str | None
        Why the key was not reprocessed (nothing was changed for it then).
    """

    key: str
    source_etag: str | None = None
    result: StoredResult | None = None
    error: str | None = None

    @property
    def state(self) -> str:
        """``error``, ``pending`` (no outcome yet), or the outcome's status."""
        if self.error is not None:
            return "error"
        return self.result.status if self.result is not None else "pending"


@dataclass(slots=True)
class Summary:
    """What a reprocess did, key by key, in the order asked."""

    items: list[Item] = field(default_factory=list)

    def count(self, state: str) -> int:
        """Return how many keys ended in ``state`` (see :attr:`Item.state`)."""
        return sum(1 for item in self.items if item.state == state)

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as a JSON-ready dict: each key with its state, outcome figures and error."""
        return {
            "items": [
                {
                    "key": item.key,
                    "state": item.state,
                    "source_etag": item.source_etag,
                    "reason": item.result.reason if item.result else None,
                    "input_bytes": item.result.input_bytes if item.result else None,
                    "output_bytes": item.result.output_bytes if item.result else None,
                    "error": item.error,
                }
                for item in self.items
            ]
        }


def reprocess(
    stack: Stack,
    keys: Iterable[str],
    *,
    wait_s: float = DEFAULT_WAIT_S,
    interval: float = POLL_INTERVAL_S,
    on_item: Callable[[Item], None] | None = None,
) -> Summary:
    """Reprocess the failed copies of ``keys`` on ``stack`` (see the module docstring); return what became of each.

    A key that cannot be reprocessed (no failed copy, a newer upload in the source, Lambda refused the event) gets its
    ``error`` and the others go on. ``on_item(item)`` is called once per key when its request was refused or its
    outcome is known (or, after ``wait_s``, still pending).
    """
    summary = Summary()
    for key in dict.fromkeys(keys):
        item = Item(key)
        try:
            item.source_etag = request(stack, key)
        except ReprocessError as exc:
            item.error = str(exc)
            if on_item is not None:
                on_item(item)
        summary.items.append(item)
    waiting = [item for item in summary.items if item.error is None]
    deadline = time.monotonic() + wait_s
    while waiting:
        for item in list(waiting):
            item.result = outcome(stack, item.key, item.source_etag or "")
            if item.result is not None:
                waiting.remove(item)
                if item.result.status != Status.FAILED:
                    forget_failed_copy(stack, item.key)
                if on_item is not None:
                    on_item(item)
        if not waiting or time.monotonic() >= deadline:
            break
        time.sleep(interval)
    for item in waiting:
        if on_item is not None:
            on_item(item)
    return summary


def request(stack: Stack, key: str) -> str:
    """Send the failed copy of ``key`` through the function again (steps 1 of the module docstring).

    Returns
    -------
    str
        The ETag (unquoted) of the source version whose outcome is now on its way.

    Raises
    ------
    ReprocessError
        When there is no failed copy under ``key``, the source holds a newer upload of it, or Lambda did not accept the
        replayed event (nothing replayed then; the copy's event record may be retired, which a second request does
        again harmlessly).
    """
    s3 = stack.client("s3", OPERATION)
    failed_bucket, source_bucket = stack.output("failed_bucket"), stack.output("source_bucket")
    head = head_or_none(s3, failed_bucket, key)
    if head is None:
        raise ReprocessError(f"{key} is not in the failed bucket {failed_bucket} (refresh the list of failed images)")
    content_type = head.get("ContentType") or "image/jpeg"
    meta = dict(head.get("Metadata") or {})
    failed_etag = meta.get(MetadataKey.SOURCE_ETAG) or meta.get(MetadataKey.RETRIED_SOURCE_ETAG)
    source = head_or_none(s3, source_bucket, key)
    source_etag = unquote_etag(source.get("ETag")) if source else None
    if source is not None and failed_etag and source_etag != failed_etag:
        raise ReprocessError(
            f"the source bucket holds a newer upload of {key} than the one that failed; its own outcome replaces this "
            "failure (look for it in the destination bucket or on the dashboard's History page)"
        )
    if MetadataKey.SOURCE_ETAG in meta:
        meta[MetadataKey.RETRIED_SOURCE_ETAG.value] = meta.pop(MetadataKey.SOURCE_ETAG)
    meta.pop(MetadataKey.SOURCE_EVENT, None)
    meta[MetadataKey.RETRY_REQUESTED.value] = datetime.now(UTC).isoformat(timespec="seconds")
    s3.copy_object(
        Bucket=failed_bucket,
        Key=key,
        CopySource={"Bucket": failed_bucket, "Key": key},
        MetadataDirective="REPLACE",
        ContentType=content_type,
        Metadata=meta,
    )
    if source is None:
        copied = s3.copy_object(
            Bucket=source_bucket,
            Key=key,
            CopySource={"Bucket": failed_bucket, "Key": key},
            MetadataDirective="REPLACE",
            ContentType=content_type,
            Metadata={},
        )
        return unquote_etag(copied.get("CopyObjectResult", {}).get("ETag")) or ""
    event = redrive.s3_event(
        source_bucket,
        key,
        etag=source_etag or "",
        size=int(source.get("ContentLength") or 0),
        version_id=source.get("VersionId"),
        region=stack.region,
    )
    try:
        redrive.replay(stack.client("lambda", OPERATION), stack.output("function_name"), event)
    except redrive.RedriveError as exc:
        raise ReprocessError(str(exc)) from exc
    return source_etag or ""


def outcome(stack: Stack, key: str, source_etag: str) -> StoredResult | None:
    """Return the newest outcome of ``key`` written for the source version ``source_etag``, ``None`` while none is.

    Looks at the destination object and the failed copy; a copy whose reprocess is pending (its ``source-etag``
    retired) does not count.
    """
    s3 = stack.client("s3", OPERATION)
    found: list[tuple[datetime, StoredResult]] = []
    for name, failed_copy in (("destination_bucket", False), ("failed_bucket", True)):
        head = head_or_none(s3, stack.output(name), key)
        if head is None:
            continue
        size = int(head.get("ContentLength") or 0)
        record = read_metadata(head.get("Metadata") or {}, object_bytes=size, failed_copy=failed_copy)
        if record.source_etag and record.source_etag == unquote_etag(source_etag):
            found.append((head.get("LastModified") or datetime.now(UTC), record))
    return max(found, key=lambda pair: pair[0])[1] if found else None


def forget_failed_copy(stack: Stack, key: str) -> bool:
    """Delete the failed copy of ``key`` if it is a stale one a reprocess left behind after a success.

    Only a copy whose metadata says ``retry-requested`` and that carries no current ``source-etag`` is deleted;
    returns whether something was deleted.
    """
    s3 = stack.client("s3", OPERATION)
    failed_bucket = stack.output("failed_bucket")
    head = head_or_none(s3, failed_bucket, key)
    meta: Mapping[str, str] = (head or {}).get("Metadata") or {}
    if head is None or MetadataKey.RETRY_REQUESTED not in meta or MetadataKey.SOURCE_ETAG in meta:
        return False
    s3.delete_object(Bucket=failed_bucket, Key=key)
    return True
