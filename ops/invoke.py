"""Invoke by hand: run the deployed function once on an object already in the source bucket, and show what it did.

``image-compressor invoke KEY`` (``make invoke KEY=...``) and the dashboard's History page ("Run again") call
:func:`invoke`:

1. **Head** the source object (ETag, size, version id). A missing object (or an event kind that is not ``s3`` or
   ``batch``) is an :class:`InvokeError` and nothing is invoked.
2. **Build** a real-shaped event for that version (:func:`build_event`): the S3 ``ObjectCreated:Put`` record S3 sends
   (:func:`ops.redrive.s3_event`: ETag, size, version id, no sequencer), or the S3 Batch Operations schema-2.0 event
   with one task (:func:`image_compressor.batch.build_event`).
3. **Invoke** synchronously (``InvocationType=RequestResponse``, ``LogType=Tail``), never retried by the client (a
   retry would run the function twice).
4. **Read** the answer: the response payload, the state it means (:func:`read_answer`: ``compressed``,
   ``kept-original``, ``failed``, ``duplicate``, ``superseded``, ``missing``, ``error``, ...), the ``REPORT`` line and
   the function's own log lines of that request id from the 4 KB log tail, or from the log group filtered by the
   request id when the tail was cut (:func:`split_log`, :func:`log_events`).

**An object that already has an outcome.** Every hand invoke is a run of its own: the event carries a run id
(``invoke-<hex>``), in each S3 record under :data:`image_compressor.runs.S3_RECORD_RUN` or in the Batch event's
``userArguments`` as a forced backfill's ``backfillRun``, so the function identifies it as ``run:<id>``: never a
duplicate of the upload's event (moto's S3 events carry no sequencer, so a bare hand-made S3 event would have the
upload's identity and be swallowed as its duplicate), and it really runs the object's whole path once more. What that
path decides is the function's, as for a forced backfill: an output made from the same bytes and settings is re-used
(its record rewritten, no re-encode; the result says ``re-used``), anything else is compressed again; an outcome of a
newer upload makes the invoke ``superseded``. One source version never keeps two contradictory outcomes: when the run
compressed (or kept) a version whose earlier run had failed, that failed copy is removed afterwards
(:func:`forget_contradicted_failure`), as a reprocess does; a new failure replaces the old failed copy itself.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import botocore.exceptions as bx
import image_compressor.batch as batch
import image_compressor.runs as runs
from image_compressor.result import STATUSES, MetadataKey, Status, read_metadata, unquote_etag

from ops import redrive
from ops.stack import OPERATION, Policy, Stack, error_code, head_or_none, is_not_found

#: Outputs of the stack an invoke needs.
NEEDED_OUTPUTS = ("source_bucket", "destination_bucket", "failed_bucket", "function_name", "log_group_name")
#: The event kinds an invoke can send.
EVENTS = ("s3", "batch")
#: The synchronous invoke's client: no retry (a retried invoke runs the function twice) and a read timeout over
#: Lambda's longest function timeout (900 s).
INVOKE_POLICY = Policy("invoke", retries=0, read_timeout=910.0)
#: Seconds to wait for the invocation's lines to reach the log group when the log tail was cut (CloudWatch Logs
#: takes a few seconds on AWS; the local cloud writes them before it answers).
LOG_WAIT_S = 15.0
#: Seconds between two looks at the log group.
LOG_POLL_S = 0.5
#: States in which the function did not give the object an outcome (the command exits 1).
NO_OUTCOME = ("error", "refused", "missing", "unknown")
_PLATFORM = ("START RequestId:", "END RequestId:", "REPORT RequestId:", "INIT_START ")


class InvokeError(RuntimeError):
    """Nothing was invoked: the object, the function or the event kind is not there; the message says what to do."""


@dataclass(slots=True)
class Invocation:
    """One hand invoke: what was sent, what the function answered and logged, and what that means.

    Attributes
    ----------
    key : str
        The source object's key.
    event : str
        ``s3`` or ``batch``: the kind of event sent.
    run_id : str
        The invoke's run id (the function's event identity is ``run:<run_id>``).
    source_etag : str
        The ETag (unquoted) of the source version the event named.
    request_id : str
        Lambda's request id of the invocation.
    state : str
        What happened to the object: an outcome status (``compressed``, ``kept-original``, ``failed``), or
        ``duplicate``, ``superseded``, ``missing`` (source gone meanwhile), ``refused``, ``error`` (nothing placed, or
        the function raised), ``unknown`` (an answer this module cannot read).
    reason : str | None
        The outcome's reason, or the function's error.
    target : str | None
        ``s3://bucket/key`` where the object ended.
    input_bytes, output_bytes : int | None
        The outcome's sizes, when it has them.
    reused : bool
        True when the function re-used the output of the same bytes and settings (no re-encode).
    function_error : str | None
        Lambda's ``FunctionError`` (``Unhandled``) when the function raised.
    payload : Any
        The function's response payload (parsed JSON, else the raw text).
    report : str | None
        The invocation's ``REPORT`` line.
    log_lines : list[str]
        The function's own log lines of this request (platform lines left out), in order.
    log_source : str
        Where the lines came from: ``tail`` (the invoke's 4 KB log tail) or ``log group``.
    round_trip_ms : float
        Milliseconds from sending the invoke to its answer.
    removed_failed_copy : bool
        True when a failed copy of the same source version was removed after this run's success.
    """

    key: str
    event: str
    run_id: str
    source_etag: str
    request_id: str = ""
    state: str = "unknown"
    reason: str | None = None
    target: str | None = None
    input_bytes: int | None = None
    output_bytes: int | None = None
    reused: bool = False
    function_error: str | None = None
    payload: Any = None
    report: str | None = None
    log_lines: list[str] = field(default_factory=list)
    log_source: str = "tail"
    round_trip_ms: float = 0.0
    removed_failed_copy: bool = False

    @property
    def ok(self) -> bool:
        """True when the function answered without an error and the object has its outcome (or already had it)."""
        return self.function_error is None and self.state not in NO_OUTCOME

    def headline(self) -> str:
        """One line that says what happened, in the result record's words."""
        text = self.state
        if self.state in (Status.COMPRESSED, Status.KEPT_ORIGINAL):
            if self.input_bytes is not None and self.output_bytes is not None:
                saved = (1 - self.output_bytes / self.input_bytes) * 100 if self.input_bytes else 0.0
                text += f": {self.input_bytes:,} -> {self.output_bytes:,} bytes ({saved:.1f} % saved)"
            if self.reused:
                text += ", output re-used (same bytes and settings, not re-encoded)"
        elif self.state == Status.FAILED and self.input_bytes is not None:
            text += f" ({self.input_bytes:,} bytes)"
        if self.target:
            text += f", in {self.target}"
        if self.reason:
            text += f" — {self.reason}"
        if self.removed_failed_copy:
            text += " (the failed copy of an earlier run of this version was removed)"
        return text

    def to_dict(self) -> dict[str, Any]:
        """Return the invocation as a JSON-ready dict (``--json``)."""
        return asdict(self) | {"ok": self.ok}


def new_run_id() -> str:
    """Return a fresh run id of a hand invoke (``invoke-`` and 16 hex digits)."""
    return f"invoke-{uuid.uuid4().hex[:16]}"


def build_event(
    kind: str,
    bucket: str,
    key: str,
    *,
    etag: str,
    size: int,
    version_id: str | None,
    run_id: str,
    region: str = "",
) -> dict[str, Any]:
    """Return the event of a hand invoke of ``s3://bucket/key`` (the version ``etag``/``version_id``), run ``run_id``.

    ``s3``: the ``ObjectCreated:Put`` notification S3 sends (:func:`ops.redrive.s3_event`: key URL-encoded, ETag, size,
    version id, no sequencer), each record naming the run (:func:`image_compressor.runs.mark_s3_event`). ``batch``: a
    Batch Operations schema-2.0 event with one task (:func:`image_compressor.batch.build_event`, job and task id
    ``run_id``), forced by ``userArguments`` ``backfillRun=run_id``.

    Raises
    ------
    InvokeError
        For another ``kind``.
    """
    if kind == "s3":
        event = redrive.s3_event(bucket, key, etag=etag, size=size, version_id=version_id, region=region)
        return runs.mark_s3_event(event, run_id)
    if kind == "batch":
        return batch.build_event(
            bucket, key, job_id=run_id, task_id=run_id, version_id=version_id, user_arguments={batch.ARG_RUN: run_id}
        )
    raise InvokeError(f"unknown event kind {kind!r}: choose one of {', '.join(EVENTS)}")


def read_answer(kind: str, payload: Any, function_error: str | None) -> dict[str, Any]:
    """Return what the function's answer says happened to the one object of a hand invoke.

    Parameters
    ----------
    kind : str
        ``s3`` (the answer is ``{"processed": n, "results": [outcome]}``) or ``batch`` (a schema-2.0 answer whose
        ``resultString`` starts with the status: ``compressed: s3://...``, ``failed: s3://...: reason``).
    payload : Any
        The parsed response payload.
    function_error : str | None
        Lambda's ``FunctionError``; set, the payload is the error document (``errorType``, ``errorMessage``).

    Returns
    -------
    dict
        ``state``, ``reason``, ``target``, ``input_bytes``, ``output_bytes``, ``reused`` (see :class:`Invocation`).
    """
    answer: dict[str, Any] = {"state": "unknown", "reason": None, "target": None}
    if function_error is not None:
        error = payload if isinstance(payload, Mapping) else {}
        message = str(error.get("errorMessage") or payload or "no error message")
        kind_of = error.get("errorType") or function_error
        return answer | {"state": "error", "reason": f"the function raised {kind_of}: {message}"}
    if kind == "s3":
        results = payload.get("results") if isinstance(payload, Mapping) else None
        if not results or not isinstance(results[0], Mapping):
            return answer | {"reason": f"the function processed no object: {json.dumps(payload)[:300]}"}
        outcome = results[0]
        state = "duplicate" if outcome.get("duplicate") else str(outcome.get("status") or "unknown")
        return answer | {
            "state": state,
            "reason": outcome.get("reason") or None,
            "target": outcome.get("target") or None,
            "input_bytes": outcome.get("input_bytes"),
            "output_bytes": outcome.get("output_bytes") if outcome.get("status") != Status.FAILED else None,
            "reused": bool(outcome.get("reused")),
        }
    results = payload.get("results") if isinstance(payload, Mapping) else None
    if not results or not isinstance(results[0], Mapping):
        return answer | {"reason": f"the function answered no task: {json.dumps(payload)[:300]}"}
    status, _, rest = str(results[0].get("resultString") or "").partition(": ")
    if status.endswith(" (duplicate)"):
        status = "duplicate"
    target, _, reason = rest.partition(": ") if rest.startswith("s3://") else ("", "", rest)
    return answer | {"state": status or "unknown", "reason": reason or None, "target": target or None}


def request_id_of(log_text: str) -> str | None:
    """Return the request id the ``REPORT`` (else ``START``, else ``END``) line of ``log_text`` names, else ``None``."""
    for platform in ("REPORT", "START", "END"):
        if found := re.search(rf"^{platform} RequestId: (\S+)", log_text, re.MULTILINE):
            return found.group(1)
    return None


def split_log(lines: list[str], request_id: str) -> tuple[str | None, list[str], bool]:
    """Split one invocation's log lines into its ``REPORT`` line and the function's own lines.

    Returns
    -------
    tuple[str | None, list[str], bool]
        The ``REPORT`` line of ``request_id`` (``None`` when absent), the other lines without Lambda's platform lines
        (``INIT_START``, ``START``, ``END``, ``REPORT``) and blank ones, and whether the log is whole: it holds the
        ``START`` line of ``request_id`` (a tail cut at 4 KB has lost it, and lines before it).
    """
    report = next((line for line in lines if line.startswith(f"REPORT RequestId: {request_id}")), None)
    whole = any(line.startswith(f"START RequestId: {request_id}") for line in lines)
    own = [line for line in lines if line.strip() and not line.startswith(_PLATFORM)]
    return report, own, whole


def invoke_object(stack: Stack, key: str, *, event: str = "s3", log_wait_s: float = LOG_WAIT_S) -> Invocation:
    """Invoke the function of ``stack`` synchronously on the source object ``key`` (see the module docstring).

    Parameters
    ----------
    stack : Stack
        The stack; needs :data:`NEEDED_OUTPUTS`.
    key : str
        The source object's key (as in the bucket, not URL-encoded).
    event : str
        ``s3`` or ``batch``: the kind of event (:func:`build_event`).
    log_wait_s : float
        How long to wait for the log group's lines when the log tail was cut.

    Returns
    -------
    Invocation
        What was sent, answered and logged; ``state`` says what happened.

    Raises
    ------
    InvokeError
        When nothing was invoked: an unknown event kind, no such source object (or it cannot be read), no such
        function, or Lambda refused the request.
    """
    if event not in EVENTS:
        raise InvokeError(f"unknown event kind {event!r}: choose one of {', '.join(EVENTS)}")
    bucket = stack.output("source_bucket")
    head = _head_source(stack, bucket, key)
    run_id = new_run_id()
    etag = unquote_etag(head.get("ETag")) or ""
    payload = build_event(
        event,
        bucket,
        key,
        etag=etag,
        size=int(head.get("ContentLength") or 0),
        version_id=head.get("VersionId"),
        run_id=run_id,
        region=stack.region,
    )
    since_ms = int(time.time() * 1000) - 1000
    started = time.perf_counter()
    answer = _call(stack, payload)
    done = Invocation(key, event, run_id, etag, round_trip_ms=round((time.perf_counter() - started) * 1000, 1))
    raw = answer["Payload"].read()
    try:
        done.payload = json.loads(raw) if raw else None
    except ValueError:
        done.payload = raw.decode("utf-8", errors="replace")
    done.function_error = answer.get("FunctionError")
    tail = base64.b64decode(answer.get("LogResult") or "").decode("utf-8", errors="replace")
    done.request_id = request_id_of(tail) or str(answer.get("ResponseMetadata", {}).get("RequestId") or "")
    done.report, done.log_lines, whole = split_log(tail.splitlines(), done.request_id)
    if not whole and done.request_id:
        lines = log_events(stack, done.request_id, since_ms=since_ms, wait_s=log_wait_s)
        report, own, _ = split_log(lines, done.request_id)
        if own or report:
            done.report, done.log_lines, done.log_source = report or done.report, own, "log group"
    for name, value in read_answer(event, done.payload, done.function_error).items():
        setattr(done, name, value)
    if event == "batch" and done.state in STATUSES:
        _sizes_from_outcome(stack, done)
    if done.state in (Status.COMPRESSED, Status.KEPT_ORIGINAL):
        done.removed_failed_copy = forget_contradicted_failure(stack, key, etag)
    return done


def log_events(stack: Stack, request_id: str, *, since_ms: int, wait_s: float = LOG_WAIT_S) -> list[str]:
    """Return the log lines of the invocation ``request_id`` from the log group, ``START`` to ``REPORT``, in order.

    The lines that name the request id (``filterPattern``, written since ``since_ms``) give its log stream and its
    ``START`` and ``REPORT`` times; the stream's lines between them are the invocation's (one execution environment
    runs one invocation at a time), including those that do not name the id (the metrics line). Polls until the
    ``REPORT`` line is there or ``wait_s`` passed (CloudWatch Logs shows lines a few seconds after they were written);
    without it, the lines that name the id. A missing log group gives no lines.
    """
    logs = stack.client("logs", OPERATION)
    group = stack.output("log_group_name")
    deadline = time.monotonic() + wait_s
    while True:
        marks = _named_events(logs, group, request_id, since_ms)
        start = next((e for e in marks if e["message"].startswith(f"START RequestId: {request_id}")), None)
        report = next((e for e in marks if e["message"].startswith(f"REPORT RequestId: {request_id}")), None)
        if report is not None or time.monotonic() >= deadline:
            break
        time.sleep(LOG_POLL_S)
    if start is None or report is None or start.get("logStreamName") != report.get("logStreamName"):
        return [e["message"] for e in marks]
    lines: list[str] = []
    request = {
        "logGroupName": group,
        "logStreamName": start["logStreamName"],
        "startTime": int(start["timestamp"]),
        "endTime": int(report["timestamp"]) + 1,
        "startFromHead": True,
    }
    token = None
    while True:
        page = logs.get_log_events(**request, **({"nextToken": token} if token else {}))
        lines += [str(e.get("message", "")).rstrip("\n") for e in page.get("events", [])]
        if not page.get("events") or page.get("nextForwardToken") in (None, token):
            break
        token = page.get("nextForwardToken")
    first = next((i for i, line in enumerate(lines) if line.startswith(f"START RequestId: {request_id}")), 0)
    last = next((i for i, line in enumerate(lines) if line.startswith(f"REPORT RequestId: {request_id}")), len(lines))
    return lines[first : last + 1]


def _named_events(logs: Any, group: str, request_id: str, since_ms: int) -> list[dict[str, Any]]:
    """Return the log group's events since ``since_ms`` whose message names ``request_id``, oldest first."""
    events: list[dict[str, Any]] = []
    try:
        for page in logs.get_paginator("filter_log_events").paginate(
            logGroupName=group, startTime=since_ms, filterPattern=f'"{request_id}"'
        ):
            events += [e | {"message": str(e.get("message", "")).rstrip("\n")} for e in page.get("events", [])]
    except bx.ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
    return sorted(events, key=lambda e: int(e.get("timestamp") or 0))


def forget_contradicted_failure(stack: Stack, key: str, source_etag: str) -> bool:
    """Delete the failed copy of ``key`` when it records a failure of the source version ``source_etag``.

    Called after a hand invoke gave that version a success: the version's outcome is now the destination object, and
    the older failed copy would contradict it. The delete is conditional on the copy's ETag as seen. Returns whether
    a copy was removed.
    """
    s3 = stack.client("s3", OPERATION)
    failed_bucket = stack.output("failed_bucket")
    head = head_or_none(s3, failed_bucket, key)
    if head is None:
        return False
    meta: Mapping[str, str] = head.get("Metadata") or {}
    if unquote_etag(meta.get(MetadataKey.SOURCE_ETAG)) != unquote_etag(source_etag):
        return False
    try:
        s3.delete_object(Bucket=failed_bucket, Key=key, IfMatch=head["ETag"])
    except bx.ClientError as exc:
        if is_not_found(exc) or error_code(exc) in ("PreconditionFailed", "412"):
            return False  # gone or replaced meanwhile: not the copy that was judged
        raise
    return True


def _head_source(stack: Stack, bucket: str, key: str) -> dict[str, Any]:
    """HeadObject the source object; a missing or unreadable one is an :class:`InvokeError`."""
    try:
        return stack.client("s3", OPERATION).head_object(Bucket=bucket, Key=key)
    except bx.ClientError as exc:
        code = error_code(exc)
        if is_not_found(exc):
            raise InvokeError(
                f"{key} is not in the source bucket {bucket}, so nothing was invoked: upload it first (the dashboard's "
                "Upload page, or `aws s3 cp`), or check the key (keys are case-sensitive; the History page lists them)"
            ) from exc
        raise InvokeError(f"cannot read s3://{bucket}/{key} ({code}), so nothing was invoked: {exc}") from exc
    except bx.BotoCoreError as exc:
        raise InvokeError(f"cannot read s3://{bucket}/{key}, so nothing was invoked: {exc}") from exc


def _call(stack: Stack, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Invoke the function synchronously with the log tail; Lambda refusing the request is an :class:`InvokeError`."""
    function = stack.output("function_name")
    try:
        return stack.client("lambda", INVOKE_POLICY).invoke(
            FunctionName=function,
            InvocationType="RequestResponse",
            LogType="Tail",
            Payload=json.dumps(payload).encode(),
        )
    except bx.ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise InvokeError(
                f"the function {function} does not exist: apply the stack again (`make local-up` or `make deploy-aws`)"
            ) from exc
        raise InvokeError(f"Lambda refused the invoke: {exc}") from exc


def _sizes_from_outcome(stack: Stack, done: Invocation) -> None:
    """Fill the sizes of a Batch invoke's outcome (its answer names only status, place and reason) from its object."""
    if not done.target or not done.target.startswith("s3://"):
        return
    bucket, _, key = done.target.removeprefix("s3://").partition("/")
    try:
        head = stack.client("s3", OPERATION).head_object(Bucket=bucket, Key=key)
    except bx.ClientError:
        return
    meta = head.get("Metadata") or {}
    record = read_metadata(meta, object_bytes=int(head.get("ContentLength") or 0), failed_copy=done.state == "failed")
    done.input_bytes = record.input_bytes
    done.output_bytes = record.output_bytes if done.state != Status.FAILED else None
    done.reused = meta.get(MetadataKey.REUSED) == "true"
