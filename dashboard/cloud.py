"""The dashboard's AWS reads for one stack (health, results read through the result contract, the dead-letter queue),
and the operations its pages start, each through the operations layer: uploads (:mod:`ops.upload`), reprocessing
(:mod:`ops.reprocess`, as ``make reprocess``), running the function again on an object (:mod:`ops.invoke`, as
``make invoke``) and replaying the dead-letter queue (:mod:`ops.redrive`, as
``make redrive``); the embedded cloud's IAM record is read and cleared through :mod:`ops.iamrecord`. Nothing here
writes to S3, SQS or Lambda itself (``tests/unit/test_architecture.py``).

No Streamlit in here. Each result object's metadata is read with :func:`image_compressor.result.read_metadata`, the
same vocabulary the function writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from image_compressor.result import STATUSES, Status, StoredResult, read_metadata, unquote_etag

from dashboard.errors import DashboardError, StackDownError, explain
from dashboard.text import md
from ops import iammode, iamrecord, invoke, procs, redrive, reprocess
from ops import upload as ops_upload
from ops.stack import INTERACTIVE, Stack, StackError, head_or_none


@dataclass(frozen=True, kw_only=True)
class ImageResult(StoredResult):
    """One processed object as the pipeline left it (destination or failed copy): its result record and the object.

    The record's fields (``status``, ``input_bytes``, ``output_bytes``, ``ms``, ``reason``, ...) come from
    :class:`image_compressor.result.StoredResult`, read from the object's metadata.

    Attributes
    ----------
    key : str
        Object key (the same in source, destination and failed).
    bucket : str
        Bucket holding the result object.
    object_bytes : int
        Size of the result object itself.
    last_modified : datetime
        When the result object was written (UTC).
    """

    key: str
    bucket: str
    object_bytes: int
    last_modified: datetime

    def row(self) -> dict[str, Any]:
        """Return a flat dict for tables, in the result record's words: key, status, sizes, saved %, ms, time."""
        return {
            "key": self.key,
            "status": self.status,
            "input_bytes": self.input_bytes,
            "output_bytes": self.output_bytes,
            "saved_pct": None if self.status == Status.FAILED else round(self.saved_ratio * 100, 1),
            "ms": self.ms,
            "width": self.width,
            "height": self.height,
            "quality": self.quality,
            "time": self.last_modified,
            "reason": self.reason,
        }


def result_from_head(bucket: str, key: str, head: Mapping[str, Any], *, failed_copy: bool) -> ImageResult:
    """Build an :class:`ImageResult` from an S3 ``HeadObject`` response and the metadata the function wrote."""
    size = int(head.get("ContentLength") or 0)
    record = read_metadata(head.get("Metadata") or {}, object_bytes=size, failed_copy=failed_copy)
    modified = head.get("LastModified") or datetime.now(UTC)
    return ImageResult(
        **{name: getattr(record, name) for name in StoredResult.__dataclass_fields__},
        key=key,
        bucket=bucket,
        object_bytes=size,
        last_modified=modified if modified.tzinfo else modified.replace(tzinfo=UTC),
    )


@dataclass(frozen=True)
class ServiceHealth:
    """Whether one service of the stack answers.

    Attributes
    ----------
    service : str
        Short name shown in the sidebar (``S3``, ``SNS``, ...).
    ok : bool
        The check call succeeded.
    detail : str
        A short figure (queue depth, function state) or, when not ok, the problem in one sentence.
    """

    service: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class StoredObject:
    """A listed S3 object: key, size, ETag (unquoted) and time."""

    key: str
    size: int
    etag: str
    last_modified: datetime


class Cloud:
    """boto3 clients for one stack plus the operations the dashboard needs.

    Parameters
    ----------
    stack : Stack
        The stack to talk to; its ``endpoint`` (if any) goes to every client as ``endpoint_url``.
    """

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def client(self, name: str) -> Any:
        """Return the stack's boto3 client for ``name`` (``s3``, ``sns``, ``sqs``, ``lambda`` or ``logs``).

        Its policy is :data:`ops.stack.INTERACTIVE` (a page waits on it: two attempts, a short connect timeout).
        """
        try:
            return self.stack.client(name, INTERACTIVE)
        except StackError as exc:
            raise StackDownError(f"{exc}.") from exc

    # -- reachability -------------------------------------------------------------------------------------------------

    def check_reachable(self) -> None:
        """Fail fast when a local endpoint has no listener (boto3 would retry for seconds).

        Raises
        ------
        StackDownError
            When nothing accepts TCP connections at the stack's endpoint.
        """
        if not self.stack.endpoint:
            return
        error = procs.probe_url(self.stack.endpoint, timeout=1.5)
        if error is not None:
            raise StackDownError(
                f"The {self.stack.label} at {self.stack.endpoint} is not answering ({error.strerror or error}). "
                "Start it with `make local-up` (or check `make local-status`), then reload this page."
            )

    def health(self) -> list[ServiceHealth]:
        """Check each service of the stack with one cheap call; never raises for a failing service."""
        out = self.stack.outputs
        checks: list[tuple[str, Callable[[], str]]] = [
            ("S3 source", partial(self._bucket_text, out.get("source_bucket", ""))),
            ("S3 destination", partial(self._bucket_text, out.get("destination_bucket", ""))),
            ("S3 failed", partial(self._bucket_text, out.get("failed_bucket", ""))),
            ("SNS", self._topic_text),
            ("SQS", self._queue_depth_text),
            ("Lambda", self._function_state_text),
            ("Logs", self._log_group_text),
        ]
        results = []
        for name, check in checks:
            try:
                results.append(ServiceHealth(name, True, check()))
            except Exception as exc:  # health is a display: every failure is a red light
                results.append(ServiceHealth(name, False, explain(exc, self.stack)))
        return results

    def _bucket_text(self, bucket: str) -> str:
        self.client("s3").head_bucket(Bucket=bucket)
        return ""

    def _topic_text(self) -> str:
        self.client("sns").get_topic_attributes(TopicArn=self.stack.output("sns_topic_arn"))
        return ""

    def _queue_depth_text(self) -> str:
        sqs = self.client("sqs")
        parts = []
        queue = self.stack.outputs.get("notifications_queue_url")
        if queue:
            attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])
            parts.append(f"{attrs['Attributes'].get('ApproximateNumberOfMessages', '?')} unread")
        else:
            parts.append("no inspection queue")
        dlq = sqs.get_queue_attributes(
            QueueUrl=self.stack.output("dlq_url"), AttributeNames=["ApproximateNumberOfMessages"]
        )
        parts.append(f"{dlq['Attributes'].get('ApproximateNumberOfMessages', '?')} in the DLQ")
        return ", ".join(parts)

    def _function_state_text(self) -> str:
        conf = self.function_configuration()
        return f"{conf.get('State', 'Active')}, {conf.get('MemorySize', '?')} MB"

    def _log_group_text(self) -> str:
        name = self.stack.output("log_group_name")
        groups = self.client("logs").describe_log_groups(logGroupNamePrefix=name).get("logGroups", [])
        if not any(g.get("logGroupName") == name for g in groups):
            raise DashboardError(f"log group {name} does not exist yet")
        return ""

    def function_configuration(self) -> dict[str, Any]:
        """Return Lambda ``GetFunctionConfiguration`` for the stack's function."""
        return self.client("lambda").get_function_configuration(FunctionName=self.stack.output("function_name"))

    # -- objects ------------------------------------------------------------------------------------------------------

    def upload(self, key: str, data: bytes, progress: Callable[[int], None] | None = None) -> str:
        """Put ``data`` into the source bucket under ``key`` (:func:`ops.upload.upload`); return its ETag (unquoted)."""
        return ops_upload.upload(self.stack, key, data, progress)

    def head_result(self, bucket: str, key: str) -> ImageResult | None:
        """Return the result stored at ``bucket``/``key``, or ``None`` when there is no such object."""
        head = head_or_none(self.client("s3"), bucket, key)
        if head is None:
            return None
        return result_from_head(bucket, key, head, failed_copy=bucket == self.stack.outputs.get("failed_bucket"))

    def find_result(self, key: str, source_etag: str | None = None) -> ImageResult | None:
        """Return the pipeline's result for ``key``: the destination object or the failed copy, whichever is newer.

        With ``source_etag``, only a result whose ``source-etag`` metadata names that exact source object counts, so
        an older result for the same key (or a failed copy being retried) is not mistaken for the new one.
        """
        etag = unquote_etag(source_etag)
        found = [
            result
            for result in (
                self.head_result(self.stack.output("destination_bucket"), key),
                self.head_result(self.stack.output("failed_bucket"), key),
            )
            if result is not None and (etag is None or result.source_etag == etag)
        ]
        return max(found, key=lambda r: r.last_modified, default=None)

    def wait_for_results(
        self,
        pending: Mapping[str, str],
        timeout: float = 60.0,
        interval: float = 0.5,
        on_result: Callable[[str, ImageResult], None] | None = None,
    ) -> dict[str, ImageResult | None]:
        """Poll until each ``key -> source ETag`` in ``pending`` has its result, or ``timeout`` seconds passed.

        ``on_result`` is called as each result appears. Returns every key with its result, ``None`` for the keys
        that had none in time.
        """
        waiting = dict(pending)
        found: dict[str, ImageResult | None] = dict.fromkeys(pending)
        deadline = time.monotonic() + timeout
        while waiting:
            for key, etag in list(waiting.items()):
                result = self.find_result(key, etag)
                if result is not None:
                    found[key] = result
                    del waiting[key]
                    if on_result is not None:
                        on_result(key, result)
            if not waiting or time.monotonic() >= deadline:
                break
            time.sleep(interval)
        return found

    def list_objects(self, bucket: str, limit: int | None = None) -> list[StoredObject]:
        """List ``bucket`` newest first (``limit`` keeps only the newest entries)."""
        paginator = self.client("s3").get_paginator("list_objects_v2")
        found = [
            StoredObject(
                key=item["Key"],
                size=int(item.get("Size", 0)),
                etag=unquote_etag(item.get("ETag")) or "",
                last_modified=item["LastModified"],
            )
            for page in paginator.paginate(Bucket=bucket)
            for item in page.get("Contents", [])
        ]
        found.sort(key=lambda o: o.last_modified, reverse=True)
        return found[:limit] if limit else found

    def list_results(self, limit: int = 500, statuses: Iterable[str] | None = None) -> list[ImageResult]:
        """Return the results in the destination and failed buckets, newest first (at most ``limit`` of each).

        Reads each object's metadata with ``HeadObject`` (a few at a time).
        """
        wanted = set(statuses or STATUSES)
        buckets = []
        if wanted & {Status.COMPRESSED, Status.KEPT_ORIGINAL}:
            buckets.append(self.stack.output("destination_bucket"))
        if Status.FAILED in wanted:
            buckets.append(self.stack.output("failed_bucket"))
        jobs = [(bucket, obj.key) for bucket in buckets for obj in self.list_objects(bucket, limit)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = [r for r in pool.map(lambda job: self.head_result(*job), jobs) if r is not None]
        results = [r for r in results if r.status in wanted]
        results.sort(key=lambda r: r.last_modified, reverse=True)
        return results

    def failed_results(self, limit: int = 500) -> list[ImageResult]:
        """Return the failed copies, newest first, each with its reason."""
        return self.list_results(limit=limit, statuses=[Status.FAILED.value])

    def read_object(self, bucket: str, key: str) -> bytes:
        """Return the bytes of ``bucket``/``key``."""
        return self.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()

    def reprocess(self, key: str, timeout: float) -> reprocess.Item:
        """Reprocess the failed image ``key`` and wait up to ``timeout`` s for its outcome.

        The path of ``make reprocess`` (:func:`ops.reprocess.reprocess`): the stale failed copy is removed after a
        success. Raises :class:`DashboardError` with the reason when the key cannot be reprocessed.
        """
        item = reprocess.reprocess(self.stack, [key], wait_s=timeout).items[0]
        if item.error is not None:
            raise _sentence(item.error)
        return item

    def run_again(self, key: str, event: str = "batch") -> invoke.Invocation:
        """Run the function once more on the source object ``key`` and return what it did and logged.

        The path of ``make invoke`` (:func:`ops.invoke.invoke_object`): a synchronous invoke with a run of its own, so
        an object that already has its outcome is really processed again. Raises :class:`DashboardError` with the
        reason when nothing was invoked (the object is no longer in the source bucket, no function).
        """
        try:
            return invoke.invoke_object(self.stack, key, event=event)
        except invoke.InvokeError as exc:
            raise _sentence(exc) from exc

    # -- the dead-letter queue ----------------------------------------------------------------------------------------

    def dead_letters(self, limit: int = 100) -> tuple[int, list[redrive.DeadLetter]]:
        """Return the number of messages in the dead-letter queue and (up to about ``limit`` of) them, none consumed.

        Each message comes with its keys and error (:class:`ops.redrive.DeadLetter`), oldest first
        (:func:`ops.redrive.dead_letters`).
        """
        try:
            return redrive.dead_letters(self.stack, limit=limit)
        except redrive.RedriveError as exc:
            raise DashboardError(str(exc)) from exc

    def replay_dead_letters(self) -> redrive.Summary:
        """Replay every event in the dead-letter queue through the function, as ``make redrive`` does."""
        try:
            return redrive.redrive_stack(self.stack)
        except redrive.RedriveError as exc:
            raise DashboardError(str(exc)) from exc

    # -- IAM --------------------------------------------------------------------------------------------------------

    def iam_mode(self) -> str:
        """Return the stack's IAM mode in words (:func:`ops.iammode.stack_text`): the embedded cloud's, with denials."""
        return iammode.stack_text(self.stack)

    def iam_unrecorded(self) -> str | None:
        """Return why this stack keeps no IAM record, with what to do (:func:`ops.iamrecord.why_unrecorded`)."""
        return iamrecord.why_unrecorded(self.stack)

    def iam_record(self) -> iamrecord.Record:
        """Return the embedded cloud's IAM record: mode, denials newest first, counted calls.

        Raises :class:`DashboardError` with what to do when there is none (not embedded, the cloud is down).
        """
        try:
            return iamrecord.fetch(self.stack)
        except iamrecord.RecordError as exc:
            raise _sentence(exc) from exc

    def clear_iam_record(self) -> None:
        """Forget the embedded cloud's IAM record (:func:`ops.iamrecord.clear`), as ``iam-report --clear`` does."""
        try:
            iamrecord.clear(self.stack)
        except iamrecord.RecordError as exc:
            raise _sentence(exc) from exc


def _sentence(problem: BaseException | str) -> DashboardError:
    """Return a :class:`DashboardError` of an operation's message as one sentence (capitalised, shown as text)."""
    text = str(problem)
    return DashboardError(md(text[:1].upper() + text[1:]) + ".")
