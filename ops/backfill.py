"""Backfill: give every JPEG already in the source bucket its outcome, through the deployed function.

``make backfill`` runs ``image-compressor backfill`` (``image_compressor_cli``), which calls :func:`run`. Steps:

1. **Scan** (paginated, bounded concurrency): list the source bucket under the prefix page by page; for each
   ``.jpg``/``.jpeg`` key (any case) look at its destination object and failed copy. One whose metadata records the
   source's current ETag (``source-etag``; and ``source-version-id`` when both sides know it) is its *current
   outcome*: the object is skipped unless ``force``. The rest are written to a spool file on disk (JSON lines), so
   a bucket of millions of keys is never held in memory.
2. **Queue and wait, paced** (below ``batch_threshold`` objects, or on a local target: S3 Batch Operations is not
   emulated): each object is sent to the function with an asynchronous invoke of a one-task Batch Operations event
   (:func:`image_compressor.batch.build_event`, with ``onTemporaryFailure=raise`` so Lambda's retries and the
   dead-letter queue apply), at most ``runs`` of them without an outcome at once: the function's reserved
   concurrency (:func:`function_runs`; :data:`DEFAULT_RUNS` when it has none), or ``--concurrency``. As outcomes
   land in the destination and failed buckets (counted compressed / kept-original / failed), more are sent, so a
   function or an emulator with little concurrency is never flooded. When no outcome lands for ``wait_s``, the
   objects in flight are reported pending and the rest is not sent (what to do is said). ``wait_s=0`` sends
   everything at once and does not wait (Lambda's own queue paces them then).
3. **Batch Operations** (AWS, at or above ``batch_threshold``): the spool becomes a CSV manifest in the stack's batch
   bucket and one S3 Batch Operations job invokes the function per object (:mod:`ops.batchjob`); it is not waited
   for: its id and how to follow it are printed, and its completion report lands in the batch bucket. Either way the
   function runs its one per-object path (``index.handle_batch``).

The event identity (the function's idempotency key) is the source version's own, so a second backfill of an object
whose first one is still in flight is a duplicate (no second write, no second notification); a forced run sends a
run id (``backfillRun``), so each forced run processes once more.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, TypeVar

import botocore.exceptions as bx
import image_compressor.batch as batch
from image_compressor.result import MetadataKey, Status, read_metadata, unquote_etag

from ops import batchjob, procs, stackfile
from ops.stack import BULK, Stack, error_code, head_or_none

JPEG_SUFFIXES = (".jpg", ".jpeg")
#: Objects from which an AWS backfill runs as one S3 Batch Operations job instead of one invoke per object.
DEFAULT_BATCH_THRESHOLD = 1000
#: Requests in flight at once while scanning and looking at outcomes (HeadObject).
REQUEST_WORKERS = 8
#: Function runs at once when the function has no reserved concurrency (AWS's concurrency limit of a new account).
DEFAULT_RUNS = 10
#: Seconds the command waits with no new outcome before it stops sending and reports what is in flight as pending.
DEFAULT_WAIT_S = 600.0
#: Keys per ListObjectsV2 page (S3's maximum).
PAGE_SIZE = 1000
#: Errors kept for the summary (the count of all is ``not_queued``).
MAX_ERRORS = 20
#: Seconds between two looks at the objects in flight.
POLL_INTERVAL_S = 0.5
#: Outputs of the stack a backfill needs (a Batch Operations job needs :data:`ops.batchjob.BATCH_OUTPUTS` too).
NEEDED_OUTPUTS = ("source_bucket", "destination_bucket", "failed_bucket", "function_name")

#: Phases reported to the progress callback; the progress file adds the last two.
SCAN, QUEUE, WAIT = "scan", "queue", "wait"
DONE, STOPPED = "done", "stopped"
#: The progress file of the latest backfill of a stack (read by the dashboard), and its format version.
PROGRESS_FILE = "backfill.json"
PROGRESS_VERSION = 1
#: Seconds between two writes of the progress file while a backfill runs.
PROGRESS_EVERY_S = 1.0

T = TypeVar("T")
R = TypeVar("R")
#: ``progress(phase, done, total)``: ``total`` is ``None`` while the number is not known yet (the scan).
Progress = Callable[[str, int, int | None], None]


class BackfillError(RuntimeError):
    """A backfill cannot run as asked; the message says what to do."""


@dataclass(frozen=True, slots=True)
class SourceObject:
    """A JPEG in the source bucket as listed: key, ETag (unquoted), size, and its version id when known."""

    key: str
    etag: str
    size: int = 0
    version_id: str | None = None


@dataclass(frozen=True, slots=True)
class Queued:
    """An object the backfill sends to the function, and the ``source-event`` of its current outcome (forced runs)."""

    key: str
    etag: str
    seen_event: str | None = None


@dataclass(slots=True)
class Summary:
    """What a backfill found and did (the closing summary; ``--json`` prints it)."""

    target: str
    bucket: str
    prefix: str
    dry_run: bool = False
    force: bool = False
    found: int = 0
    skipped: int = 0
    queued: int = 0
    compressed: int = 0
    kept: int = 0
    failed: int = 0
    pending: int = 0
    not_queued: int = 0
    mode: str = "invoke"
    runs: int = 0
    job_id: str | None = None
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as a JSON-ready dict."""
        return asdict(self)


# ---------------------------------------------------------------------------------------------------------------------
# Pure parts
# ---------------------------------------------------------------------------------------------------------------------


def is_jpeg_key(key: str) -> bool:
    """Return True for a key ending in ``.jpg`` or ``.jpeg``, any case (the suffixes the function is triggered by)."""
    return key.lower().endswith(JPEG_SUFFIXES)


def current_outcome(
    source: SourceObject, records: Iterable[Mapping[str, Any] | None], *, pending: bool = True
) -> Mapping[str, str] | None:
    """Return the metadata of the record (destination object or failed copy) that is ``source``'s current outcome.

    A record is current when its ``source-etag`` is the source's ETag and, when both sides know one, its
    ``source-version-id`` is the source's version id. With ``pending`` (the scan), a failed copy whose reprocess is
    on its way (:mod:`ops.reprocess`: ``retry-requested``, and ``retried-source-etag`` the source's ETag) counts too:
    that version's outcome is coming, so it is not queued a second time. ``records`` are user-metadata mappings
    (``None``: no object). Returns ``None`` when no record is current (the object needs processing).
    """
    for metadata in records:
        if not metadata:
            continue
        meta = {str(k).lower(): str(v) for k, v in metadata.items()}
        etag = meta.get(MetadataKey.SOURCE_ETAG)
        if etag is None and pending and MetadataKey.RETRY_REQUESTED in meta:
            etag = meta.get(MetadataKey.RETRIED_SOURCE_ETAG)
        if unquote_etag(etag) != source.etag:
            continue
        recorded_version = meta.get(MetadataKey.SOURCE_VERSION)
        if source.version_id and recorded_version and recorded_version != source.version_id:
            continue
        return meta
    return None


def bounded_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """Yield ``fn(item)`` for every item, at most ``workers`` calls running and ``2 * workers`` submitted at once.

    ``items`` is consumed lazily (a generator over a listing is never read ahead by more than the window); results
    come in completion order. An exception of ``fn`` is raised here when its result is reached.
    """
    window = max(1, workers) * 2
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        running: set[Future[R]] = set()
        for item in items:
            running.add(pool.submit(fn, item))
            if len(running) >= window:
                done, running = _wait_first(running)
                yield from (f.result() for f in done)
        while running:
            done, running = _wait_first(running)
            yield from (f.result() for f in done)


def _wait_first(running: set[Future[R]]) -> tuple[set[Future[R]], set[Future[R]]]:
    done, pending = wait(running, return_when=FIRST_COMPLETED)
    return set(done), set(pending)


# ---------------------------------------------------------------------------------------------------------------------
# The progress file (the dashboard's view of a running backfill)
# ---------------------------------------------------------------------------------------------------------------------


def progress_path(target: str, state_dir: Path | None = None) -> Path:
    """Return the progress file of ``target``'s backfills (``backfill.json``).

    It lives in the local stack's state directory (``.local/``), or for the AWS stack in its ``aws/`` subdirectory
    (where the dashboard keeps that stack's state).
    """
    base = state_dir or stackfile.state_dir()
    return (base if target == "local" else base / "aws") / PROGRESS_FILE


class ProgressFile:
    """Writes a backfill's summary and phase to a JSON file, at most every :data:`PROGRESS_EVERY_S` seconds.

    The file holds ``version``, ``phase`` (``scan``, ``queue``, ``wait``, ``done``, ``stopped``), ``done`` and
    ``total`` of that phase (``total`` null while scanning), ``pid``, ``started_at``, ``updated_at`` and the fields of
    :class:`Summary`. It is replaced atomically.
    """

    def __init__(self, path: Path, summary: Summary) -> None:
        self.path = path
        self.summary = summary
        self.started_at = _now()
        self._last = 0.0
        self._done = 0
        self._total: int | None = None

    def update(self, phase: str, done: int | None = None, total: int | None = None, *, force: bool = False) -> None:
        """Record ``done`` of ``total`` in ``phase``; write the file if the last write is older than the interval.

        With ``force`` the file is always written; without ``done``, the last ``done``/``total`` are kept.
        """
        if done is not None:
            self._done, self._total = done, total
        now = time.monotonic()
        if not force and now - self._last < PROGRESS_EVERY_S:
            return
        self._last = now
        record = {
            "version": PROGRESS_VERSION,
            "phase": phase,
            "done": self._done,
            "total": self._total,
            "pid": os.getpid(),
            "started_at": self.started_at,
            "updated_at": _now(),
            **self.summary.to_dict(),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)


def read_progress(path: Path) -> dict[str, Any] | None:
    """Return the progress record in ``path``, or ``None`` when there is none (or it is unreadable).

    A record whose phase is not ``done`` but whose process is gone reads as ``stopped`` (interrupted or crashed).
    """
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("version") != PROGRESS_VERSION:
        return None
    if record.get("phase") not in (DONE, STOPPED) and not procs.pid_alive(int(record.get("pid") or 0)):
        record["phase"] = STOPPED
    return record


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------------------------------------
# The stack
# ---------------------------------------------------------------------------------------------------------------------


def check_source(stack: Stack) -> None:
    """Fail early, with what to run, when the source bucket of ``stack`` cannot be read.

    Raises
    ------
    BackfillError
        When the local cloud does not answer, the bucket cannot be read, or there are no AWS credentials.
    """
    bucket = stack.output("source_bucket")
    try:
        _s3(stack).head_bucket(Bucket=bucket)
    except bx.EndpointConnectionError as exc:
        raise BackfillError(
            f"the local cloud at {stack.endpoint} does not answer: start it with `make local-up` "
            "(or `make local-status`)"
        ) from exc
    except bx.ClientError as exc:
        raise BackfillError(
            f"the source bucket {bucket!r} cannot be read ({error_code(exc)}): is the stack up? "
            + ("run `make local-up`" if stack.is_local else "run `make deploy-aws`, and check your AWS credentials")
        ) from exc
    except bx.NoCredentialsError as exc:
        raise BackfillError("no AWS credentials: set AWS_PROFILE (or run `aws sso login`) and try again") from exc


def _s3(stack: Stack) -> Any:
    return stack.client("s3", BULK)


def _lambda(stack: Stack) -> Any:
    return stack.client("lambda", BULK)


# ---------------------------------------------------------------------------------------------------------------------
# Scan, queue, wait
# ---------------------------------------------------------------------------------------------------------------------


def list_jpegs(s3: Any, bucket: str, prefix: str, page_size: int = PAGE_SIZE) -> Iterator[SourceObject]:
    """Yield the ``.jpg``/``.jpeg`` objects (any case) under ``prefix`` in ``bucket``, one listing page at a time.

    Raises
    ------
    BackfillError
        When nothing at all is under ``prefix`` (an empty bucket, or a prefix that names nothing).
    """
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size}
    )
    listed = 0
    for page in pages:
        for obj in page.get("Contents", []):
            listed += 1
            if is_jpeg_key(obj["Key"]):
                yield SourceObject(obj["Key"], unquote_etag(obj.get("ETag")) or "", int(obj.get("Size", 0)))
    if listed == 0 and prefix:
        raise BackfillError(
            f"nothing under the prefix {prefix!r} in s3://{bucket}: check the prefix (keys are case-sensitive; "
            f"list them with `aws s3 ls s3://{bucket}/`)"
        )
    if listed == 0:
        raise BackfillError(f"the source bucket s3://{bucket} is empty: nothing to backfill; upload images first")


def records_of(stack: Stack, key: str) -> list[dict[str, str] | None]:
    """Return the user metadata of the destination object and the failed copy of ``key`` (``None`` where absent)."""
    heads = [head_or_none(_s3(stack), stack.output(name), key) for name in ("destination_bucket", "failed_bucket")]
    return [None if head is None else head.get("Metadata", {}) for head in heads]


def run(
    stack: Stack,
    *,
    prefix: str = "",
    force: bool = False,
    dry_run: bool = False,
    concurrency: int | None = None,
    batch_threshold: int = DEFAULT_BATCH_THRESHOLD,
    wait_s: float = DEFAULT_WAIT_S,
    progress: Progress | None = None,
    progress_file: Path | None = None,
) -> Summary:
    """Backfill the source bucket of ``stack`` under ``prefix`` (see the module docstring); return the summary.

    ``concurrency`` is the number of function runs at once (default: :func:`function_runs`). ``progress(phase, done,
    total)`` is called as work advances; with ``progress_file`` the summary so far is also written there
    (:class:`ProgressFile`), ending in phase ``done`` or, when the run raised, ``stopped``.

    Raises
    ------
    BackfillError
        For an empty bucket or a prefix that names nothing, and when a Batch Operations job cannot be created.
    """
    check_source(stack)
    source = stack.output("source_bucket")
    summary = Summary(stack.target, source, prefix, dry_run=dry_run, force=force)
    recorder = ProgressFile(progress_file, summary) if progress_file else None

    def report(phase: str, done: int, total: int | None) -> None:
        if progress is not None:
            progress(phase, done, total)
        if recorder is not None:
            recorder.update(phase, done, total)

    final = STOPPED
    try:
        _run(stack, summary, force, dry_run, concurrency, batch_threshold, wait_s, report)
        final = DONE
    finally:
        if recorder is not None:
            recorder.update(final, force=True)
    return summary


def _run(
    stack: Stack,
    summary: Summary,
    force: bool,
    dry_run: bool,
    concurrency: int | None,
    batch_threshold: int,
    wait_s: float,
    report: Progress,
) -> None:
    with tempfile.TemporaryFile("w+", encoding="utf-8") as spool:
        _scan(stack, summary, spool, force, REQUEST_WORKERS, report)
        if dry_run or summary.queued == 0:
            return
        if not stack.is_local and summary.queued >= batch_threshold:
            _start_job(stack, summary, spool, force)
            return
        summary.runs = concurrency or function_runs(stack)
        if wait_s > 0:
            _paced(stack, summary, spool, force, wait_s, report)
        else:
            _invoke_all(stack, summary, spool, force, report)
            summary.pending = summary.queued - summary.not_queued


def function_runs(stack: Stack) -> int:
    """Return how many runs of the stack's function may go at once.

    Its reserved concurrency, else :data:`DEFAULT_RUNS` (none reserved, or the call is not allowed or not emulated).
    """
    try:
        answer = _lambda(stack).get_function_concurrency(FunctionName=stack.output("function_name"))
    except (bx.ClientError, bx.BotoCoreError):
        return DEFAULT_RUNS
    reserved = answer.get("ReservedConcurrentExecutions")
    return max(1, int(reserved)) if isinstance(reserved, int) else DEFAULT_RUNS


def _scan(stack: Stack, summary: Summary, spool: IO[str], force: bool, workers: int, report: Progress) -> None:
    def check(obj: SourceObject) -> tuple[SourceObject, Mapping[str, str] | None]:
        try:
            return obj, current_outcome(obj, records_of(stack, obj.key))
        except (bx.ClientError, bx.BotoCoreError) as exc:
            raise BackfillError(
                f"cannot look at the outcome of {obj.key!r} ({exc}); your credentials need s3:GetObject and "
                "s3:ListBucket on the destination and failed buckets"
            ) from exc

    objects = list_jpegs(_s3(stack), summary.bucket, summary.prefix)
    for obj, current in bounded_map(check, objects, workers):
        summary.found += 1
        if current is not None and not force:
            summary.skipped += 1
        else:
            seen = current.get(MetadataKey.SOURCE_EVENT) if current else None
            spool.write(json.dumps(asdict(Queued(obj.key, obj.etag, seen))) + "\n")
            summary.queued += 1
        report(SCAN, summary.found, None)
    spool.flush()


def _spooled(spool: IO[str]) -> Iterator[Queued]:
    spool.seek(0)
    for line in spool:
        if line.strip():
            yield Queued(**json.loads(line))


def _sender(stack: Stack, summary: Summary, force: bool) -> Callable[[Queued], str | None]:
    """Return ``send(item)``: one asynchronous invoke of the item's Batch event; ``None``, or why it was not queued."""
    run_id = uuid.uuid4().hex
    arguments = {batch.ARG_ON_TEMPORARY_FAILURE: batch.RAISE}
    if force:
        arguments[batch.ARG_RUN] = run_id
    function = stack.output("function_name")

    def send(item: Queued) -> str | None:
        event = batch.build_event(
            summary.bucket, item.key, job_id=f"backfill-{run_id}", task_id=uuid.uuid4().hex, user_arguments=arguments
        )
        try:
            _lambda(stack).invoke(FunctionName=function, InvocationType="Event", Payload=json.dumps(event).encode())
        except (bx.ClientError, bx.BotoCoreError) as exc:
            return f"{item.key}: not queued ({exc})"
        return None

    return send


def _not_queued(summary: Summary, error: str) -> None:
    summary.not_queued += 1
    if len(summary.errors) < MAX_ERRORS:
        summary.errors.append(error)


def _invoke_all(stack: Stack, summary: Summary, spool: IO[str], force: bool, report: Progress) -> None:
    """Invoke the function asynchronously for every spooled object at once (``wait_s=0``: nothing is waited for)."""
    send = _sender(stack, summary, force)
    for done, item in enumerate(_spooled(spool), start=1):
        error = send(item)
        if error:
            _not_queued(summary, error)
        report(QUEUE, done, summary.queued)


def _paced(stack: Stack, summary: Summary, spool: IO[str], force: bool, wait_s: float, report: Progress) -> None:
    """Send the spooled objects, at most ``summary.runs`` without an outcome at once, and count their outcomes.

    Stops sending when no outcome landed for ``wait_s`` seconds: what is in flight is then ``pending``, what was not
    sent ``not_queued`` (with the reason in ``errors``).
    """
    send = _sender(stack, summary, force)
    items = _spooled(spool)
    in_flight: dict[str, Queued] = {}
    sent = landed = 0
    last_landed = time.monotonic()
    exhausted = False

    def look(item: Queued) -> tuple[Queued, str | None]:
        try:
            records = records_of(stack, item.key)
        except (bx.ClientError, bx.BotoCoreError):
            return item, None  # looked at again in the next pass
        current = current_outcome(SourceObject(item.key, item.etag), records, pending=False)
        if current is None or (item.seen_event and current.get(MetadataKey.SOURCE_EVENT) == item.seen_event):
            return item, None
        failed_copy = current_outcome(SourceObject(item.key, item.etag), records[:1], pending=False) is None
        return item, read_metadata(current, object_bytes=0, failed_copy=failed_copy).status

    while True:
        while not exhausted and len(in_flight) < summary.runs:
            item = next(items, None)
            if item is None:
                exhausted = True
                break
            sent += 1
            error = send(item)
            if error:
                _not_queued(summary, error)
            else:
                in_flight[item.key] = item
            report(QUEUE, sent, summary.queued)
        if not in_flight:
            return
        arrived = 0
        for item, status in bounded_map(look, list(in_flight.values()), REQUEST_WORKERS):
            if status is None:
                continue
            del in_flight[item.key]
            arrived += 1
            landed += 1
            if status == Status.COMPRESSED:
                summary.compressed += 1
            elif status == Status.KEPT_ORIGINAL:
                summary.kept += 1
            else:
                summary.failed += 1
            report(WAIT, landed, summary.queued - summary.not_queued)
        if arrived:
            last_landed = time.monotonic()
        elif time.monotonic() - last_landed >= wait_s:
            summary.pending = len(in_flight)
            unsent = summary.queued - sent
            if unsent:
                summary.not_queued += unsent
                summary.errors.append(
                    f"no outcome landed for {wait_s:.0f} s with {len(in_flight)} objects in flight, so the other "
                    f"{unsent} were not sent: look at the function's log and the dead-letter queue (`make "
                    "local-status`, the dashboard), then run the backfill again (objects with an outcome are skipped)"
                )
            return
        else:
            time.sleep(POLL_INTERVAL_S)


def _start_job(stack: Stack, summary: Summary, spool: IO[str], force: bool) -> None:
    """Create the S3 Batch Operations job of the spooled objects (:func:`ops.batchjob.start`)."""
    try:
        summary.job_id = batchjob.start(
            stack, summary.bucket, (item.key for item in _spooled(spool)), summary.queued, force=force
        )
    except batchjob.JobError as exc:
        raise BackfillError(str(exc)) from exc
    summary.mode = "batch-operations"
    summary.pending = summary.queued
