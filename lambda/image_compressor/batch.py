"""The S3 Batch Operations invocation contract (``LambdaInvoke``, schema 2.0): event in, answer out. Pure.

S3 Batch Operations invokes the function synchronously with one task per invocation::

    {"invocationSchemaVersion": "2.0", "invocationId": "...",
     "job": {"id": "...", "userArguments": {"k": "v"}},
     "tasks": [{"taskId": "...", "s3Key": "photos/a%20b.jpg", "s3VersionId": null, "s3Bucket": "source-bucket"}]}

and expects one result per task::

    {"invocationSchemaVersion": "2.0", "treatMissingKeysAs": "PermanentFailure", "invocationId": "...",
     "results": [{"taskId": "...", "resultCode": "Succeeded", "resultString": "compressed s3://dest/a b.jpg"}]}

``s3Key`` is URL-encoded (decoded here with ``unquote_plus``). Schema 1.0 tasks name the bucket by ARN
(``s3BucketArn``); both are read. The backfill (``ops.backfill``) builds the same event with :func:`build_event` for
its asynchronous invocations, so the function has one per-object path for both; its ``userArguments`` keys are
defined here (:data:`ARG_RUN`, :data:`ARG_ON_TEMPORARY_FAILURE`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from image_compressor import runs

SCHEMA_VERSION = "2.0"
SUCCEEDED = "Succeeded"
TEMPORARY_FAILURE = "TemporaryFailure"
PERMANENT_FAILURE = "PermanentFailure"
#: S3 keeps at most this many characters of a ``resultString`` in the completion report; longer ones are cut.
MAX_RESULT_STRING = 1024

#: ``userArguments`` key: a run id of a forced backfill. Present, each object's event identity is ``run:<id>`` (a new
#: run processes again; a retry of the same run is a duplicate). Absent, the identity is the source version's (any
#: backfill of one source version is one event, however often it is queued).
ARG_RUN = "backfillRun"
#: ``userArguments`` key: with the value :data:`RAISE`, a task that ends ``TemporaryFailure`` makes the function raise
#: after answering every task, so Lambda's asynchronous retries and the dead-letter queue take over (the backfill
#: invokes asynchronously, where nobody reads the answer). S3 Batch Operations jobs leave it out: S3 retries
#: ``TemporaryFailure`` tasks itself.
ARG_ON_TEMPORARY_FAILURE = "onTemporaryFailure"
RAISE = "raise"


class BatchEventError(ValueError):
    """The event has the Batch Operations shape but cannot be answered (no invocation id or task list)."""


@dataclass(frozen=True, slots=True)
class Task:
    """One task of a Batch Operations event: a source object, key decoded.

    Attributes
    ----------
    task_id : str
        The task's id, echoed in its result.
    bucket, key : str
        The source object (``key`` URL-decoded).
    version_id : str | None
        ``s3VersionId`` (versioned buckets, when the manifest names versions).
    """

    task_id: str
    bucket: str
    key: str
    version_id: str | None = None


@dataclass(frozen=True, slots=True)
class BatchEvent:
    """A parsed Batch Operations event.

    Attributes
    ----------
    invocation_id, job_id : str
        As in the event.
    user_arguments : dict[str, str]
        The job's ``userArguments`` (schema 2.0; empty otherwise).
    tasks : list[Task]
        The well-formed tasks, in order.
    malformed : list[tuple[str, str]]
        ``(taskId, reason)`` of tasks that name no bucket or key: answered ``PermanentFailure``.
    """

    invocation_id: str
    job_id: str
    user_arguments: dict[str, str] = field(default_factory=dict)
    tasks: list[Task] = field(default_factory=list)
    malformed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def raise_on_temporary_failure(self) -> bool:
        """True when the invoker asked for a raise instead of ``TemporaryFailure`` (``ARG_ON_TEMPORARY_FAILURE``)."""
        return self.user_arguments.get(ARG_ON_TEMPORARY_FAILURE) == RAISE

    @property
    def event_id(self) -> str | None:
        """The explicit event identity of every task of this event (``run:<id>`` of a forced run), else ``None``."""
        return runs.event_id(self.user_arguments.get(ARG_RUN))


def is_batch_event(event: Any) -> bool:
    """Return True when ``event`` has the shape of a Batch Operations invocation (schema version and tasks)."""
    return isinstance(event, Mapping) and "invocationSchemaVersion" in event and "tasks" in event


def parse(event: Mapping[str, Any]) -> BatchEvent:
    """Return the Batch Operations event ``event`` parsed; malformed tasks are kept apart with the reason.

    Raises
    ------
    BatchEventError
        When the event has no ``invocationId`` or its ``tasks`` is not a list (nothing can be answered).
    """
    invocation_id = event.get("invocationId")
    tasks = event.get("tasks")
    if not isinstance(invocation_id, str) or not invocation_id or not isinstance(tasks, list):
        raise BatchEventError("a Batch Operations event needs an 'invocationId' string and a 'tasks' list")
    job = event.get("job") if isinstance(event.get("job"), Mapping) else {}
    arguments = job.get("userArguments") if isinstance(job.get("userArguments"), Mapping) else {}
    parsed = BatchEvent(
        invocation_id=invocation_id,
        job_id=str(job.get("id") or ""),
        user_arguments={str(k): str(v) for k, v in arguments.items()},
    )
    for index, task in enumerate(tasks):
        task_id = str(task.get("taskId") or f"#{index}") if isinstance(task, Mapping) else f"#{index}"
        if not isinstance(task, Mapping):
            parsed.malformed.append((task_id, "the task is not an object"))
            continue
        bucket = task.get("s3Bucket") or _bucket_from_arn(task.get("s3BucketArn"))
        key = task.get("s3Key")
        if not bucket or not isinstance(key, str) or not key:
            parsed.malformed.append((task_id, "the task names no s3Bucket (or s3BucketArn) and s3Key"))
            continue
        version = task.get("s3VersionId")
        parsed.tasks.append(Task(task_id, str(bucket), unquote_plus(key), str(version) if version else None))
    return parsed


def result(task_id: str, code: str, text: str) -> dict[str, str]:
    """Return one task's result (``text`` cut to :data:`MAX_RESULT_STRING` characters)."""
    return {"taskId": task_id, "resultCode": code, "resultString": text[:MAX_RESULT_STRING]}


def response(invocation_id: str, results: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """Return the function's answer to the invocation ``invocation_id`` with one result per task."""
    return {
        "invocationSchemaVersion": SCHEMA_VERSION,
        "treatMissingKeysAs": PERMANENT_FAILURE,
        "invocationId": invocation_id,
        "results": [dict(r) for r in results],
    }


def build_event(
    bucket: str,
    key: str,
    *,
    job_id: str,
    task_id: str,
    version_id: str | None = None,
    user_arguments: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Return a schema-2.0 event with one task for ``s3://bucket/key``, as S3 Batch Operations sends it.

    The key is URL-encoded (``quote_plus``, ``/`` kept); ``invocationId`` is ``<job_id>/<task_id>``.
    """
    return {
        "invocationSchemaVersion": SCHEMA_VERSION,
        "invocationId": f"{job_id}/{task_id}",
        "job": {"id": job_id, "userArguments": dict(user_arguments or {})},
        "tasks": [
            {"taskId": task_id, "s3Key": quote_plus(key, safe="/"), "s3VersionId": version_id, "s3Bucket": bucket}
        ],
    }


def _bucket_from_arn(arn: Any) -> str | None:
    if isinstance(arn, str) and arn.startswith("arn:") and ":::" in arn:
        return arn.split(":::", 1)[1] or None
    return None
