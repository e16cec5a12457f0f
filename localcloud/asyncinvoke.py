"""Asynchronous Lambda invocations (``InvocationType=Event``, S3 notifications) with Lambda's retry semantics.

An event is queued and the caller returns at once. Nothing that can fail runs before that: the caller hands over a
:class:`~localcloud.invocation.FunctionRef`, whose spec (code and layers extracted) is built when an attempt starts.
Worker threads run each attempt through the executor; every failure of an attempt (an exception of the function, a
timeout, a crash or kill of the worker, running out of memory, a spec that cannot be built, a worker that cannot be
started) is a failed attempt, retried up to ``MaximumRetryAttempts`` times (default 2) with a backoff. An attempt
over the function's reserved concurrency (:mod:`localcloud.concurrency`) is throttled instead: it does not run, is
not counted, and the event goes back to the queue after a short backoff (:data:`DEFAULT_THROTTLE_DELAYS`), as
Lambda keeps throttled events in its queue. When the retries are exhausted, or the event got older than
``MaximumEventAgeInSeconds`` (throttled or between retries), a Lambda destination record goes to the ``OnFailure``
destination (condition ``RetriesExhausted`` or ``EventAgeExceeded``); a success goes to ``OnSuccess`` when one is
configured. A shutdown drops what is still queued or waiting to retry, and says how many
(:meth:`AsyncInvoker.shutdown`), unless :meth:`AsyncInvoker.drain` handed them over first (persistence: they are
saved with the data and submitted again by the next server).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from localcloud.concurrency import ReservedConcurrency
from localcloud.executor import DEFAULT_CONCURRENCY, LocalExecutor
from localcloud.invocation import FunctionRef, FunctionSpec, Invocation

log = logging.getLogger(__name__)

#: Seconds before asynchronous retry 1, 2, ... (the last repeats): AWS waits about one and then two minutes; locally
#: seconds are enough. The default of :class:`AsyncInvoker`, :func:`localcloud.motopatch.install` and the server's
#: ``--retry-delays``.
DEFAULT_RETRY_DELAYS: tuple[float, ...] = (1.0, 2.0)
#: Seconds before a throttled event is tried again, the 1st, 2nd, ... time (the last repeats). Lambda retries
#: throttled events with a backoff for up to the maximum event age; locally a second at most, so a freed unit of
#: concurrency is taken up soon. ``localcloud.ministackasync.THROTTLE_DELAYS`` repeats it (pinned equal by a test).
DEFAULT_THROTTLE_DELAYS: tuple[float, ...] = (0.1, 0.2, 0.5, 1.0)


class Destinations(Protocol):
    """Delivers destination records to an ARN (an SQS queue, SNS topic, Lambda function, ...)."""

    def send(self, destination_arn: str, record: dict[str, Any]) -> None:
        """Deliver ``record`` to ``destination_arn``."""


@dataclass(frozen=True, slots=True)
class EventInvokeSettings:
    """A function's event invoke config (``PutFunctionEventInvokeConfig``); the defaults are Lambda's."""

    maximum_retry_attempts: int = 2
    maximum_event_age_s: int = 21600
    on_success: str | None = None
    on_failure: str | None = None


#: What :meth:`AsyncInvoker.submit` takes: a spec, or a reference whose spec is built when an attempt starts.
Target = FunctionSpec | FunctionRef


@dataclass(slots=True)
class _Job:
    spec: Target
    event: Any
    settings: EventInvokeSettings
    request_id: str
    enqueued: float = field(default_factory=time.monotonic)
    attempts: int = 0
    throttles: int = 0
    #: When the event was first queued (seconds since the epoch): its age survives a restart.
    queued_at: float = field(default_factory=time.time)

    def record(self, interrupted: bool = False) -> dict[str, Any]:
        """Return what a new server needs to queue this event again (JSON-ready).

        ``attempts`` counts the failed attempts so far; an ``interrupted`` attempt (cut short by the shutdown, not
        failed by the function) does not count.
        """
        return {
            "request_id": self.request_id,
            "function_arn": self.spec.arn,
            "version": self.spec.version,
            "event": self.event,
            "attempts": self.attempts - 1 if interrupted else self.attempts,
            "queued_at": self.queued_at,
        }


def destination_record(
    request_payload: Any,
    spec: Target,
    request_id: str,
    attempts: int,
    condition: str,
    invocation: Invocation | None,
) -> dict[str, Any]:
    """Return the record Lambda sends to a destination.

    ``condition`` is ``Success``, ``RetriesExhausted`` or ``EventAgeExceeded``; ``invocation`` is the last attempt
    (``None`` when the event expired before it ran).
    """
    response_context: dict[str, Any] = {"statusCode": 200, "executedVersion": spec.version}
    response_payload: Any = None
    if invocation is not None:
        if invocation.function_error:
            response_context["functionError"] = invocation.function_error
        try:
            response_payload = json.loads(invocation.payload or b"null")
        except ValueError:
            response_payload = invocation.payload.decode("utf-8", errors="replace")
    return {
        "version": "1.0",
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "requestContext": {
            "requestId": request_id,
            "functionArn": spec.qualified_arn,
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "requestPayload": request_payload,
        "responseContext": response_context,
        "responsePayload": response_payload,
    }


def runner_failure(request_id: str, exc: BaseException) -> Invocation:
    """Return the failed :class:`Invocation` that stands for an attempt the executor could not run at all.

    Lambda reports such failures (no execution environment, the runtime could not start) like a crash of the
    runtime, so the event is retried and in the end reaches the on-failure destination instead of being lost.
    """
    document = {
        "errorMessage": f"RequestId: {request_id} Error: the local executor could not run the function: {exc}",
        "errorType": "Runtime.ExitError",
        "requestId": request_id,
        "stackTrace": [],
    }
    return Invocation(request_id, json.dumps(document).encode(), "Unhandled", "Runtime.ExitError")


class AsyncInvoker:
    """Queue of asynchronous invocations served by ``threads`` background threads.

    Parameters
    ----------
    executor : LocalExecutor
        Runs each attempt.
    destinations : Destinations
        Delivers ``OnSuccess``/``OnFailure`` records.
    retry_delays : tuple[float, ...]
        Seconds to wait before retry 1, 2, ...; the last value repeats.
    threads : int
        Background threads, i.e. asynchronous invocations running at once.
    concurrency : ReservedConcurrency | None
        The functions' reserved concurrency: an attempt over it is throttled (tried again after
        ``throttle_delays``, not counted as an attempt). ``None`` runs every attempt.
    throttle_delays : tuple[float, ...]
        Seconds before a throttled event is tried again, the 1st, 2nd, ... time; the last value repeats.
    """

    def __init__(
        self,
        executor: LocalExecutor,
        destinations: Destinations,
        retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS,
        threads: int = DEFAULT_CONCURRENCY,
        concurrency: ReservedConcurrency | None = None,
        throttle_delays: tuple[float, ...] = DEFAULT_THROTTLE_DELAYS,
    ) -> None:
        self.executor = executor
        self.destinations = destinations
        self.retry_delays = tuple(retry_delays) or (0.0,)
        self.concurrency = concurrency
        self.throttle_delays = tuple(throttle_delays) or (0.0,)
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._delayed: dict[str, threading.Timer] = {}  # request id -> the timer that queues its next attempt
        self._lock = threading.Lock()
        self._pending = 0
        self._idle = threading.Condition(self._lock)
        self._closed = False
        self._paused = False  # drain: no attempt starts; queued jobs are held for the hand-over
        self._held: list[_Job] = []
        self._active: dict[str, _Job] = {}  # request id -> the job a thread is working on (attempt or its outcome)
        self._handed: set[str] = set()  # request ids saved by a hand-over: their late outcomes are ignored
        self._running: dict[str, tuple[str, int, float]] = {}  # request id -> function, attempt, start (monotonic)
        self._oldest: dict[str, float] = {}  # request id -> enqueued (monotonic), for every pending job
        self._threads = [
            threading.Thread(target=self._serve, name=f"lambda-async-{i}", daemon=True) for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(
        self, spec: Target, event: Any, settings: EventInvokeSettings, saved: dict[str, Any] | None = None
    ) -> str:
        """Queue one invocation of ``spec`` with ``event``; return its request id at once.

        ``spec`` may be a :class:`~localcloud.invocation.FunctionRef`: its spec is built at each attempt, so a
        failure to build it is a failed attempt, not an error here. ``saved`` is the record of an event an earlier
        server handed over (:meth:`drain`): it keeps its request id, its failed attempts and its age (wall-clock
        time, so the time the cloud was down counts towards ``MaximumEventAgeInSeconds``, as on AWS). Raises
        ``RuntimeError`` only after :meth:`shutdown`.
        """
        if self._closed:
            raise RuntimeError("the asynchronous invoker is shut down")
        job = _Job(spec, event, settings, str(uuid.uuid4()))
        if saved is not None:
            job.request_id = str(saved["request_id"])
            job.attempts = int(saved.get("attempts", 0))
            job.queued_at = float(saved.get("queued_at", job.queued_at))
            job.enqueued -= max(0.0, time.time() - job.queued_at)
        with self._lock:
            self._pending += 1
            self._oldest[job.request_id] = job.enqueued
        self._queue.put(job)
        return job.request_id

    def pending(self) -> int:
        """Return how many submitted invocations have not finished (retries included)."""
        with self._lock:
            return self._pending

    def running(self) -> list[dict[str, Any]]:
        """Describe the attempts running now: request id, function, attempt number and seconds since it started."""
        now = time.monotonic()
        with self._lock:
            items = list(self._running.items())
        return [
            {"request_id": rid, "function": fn, "attempt": attempt, "running_s": round(now - started, 1)}
            for rid, (fn, attempt, started) in items
        ]

    def oldest_pending_s(self) -> float:
        """Return how long the oldest unfinished invocation has been waiting or running (0 when none)."""
        with self._lock:
            oldest = min(self._oldest.values(), default=None)
        return 0.0 if oldest is None else round(time.monotonic() - oldest, 1)

    def wait_idle(self, timeout: float) -> bool:
        """Block until no invocation is queued, running or waiting to retry; return False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def drain(self, timeout: float) -> bool:
        """Stop starting attempts and wait up to ``timeout`` s for those in progress; return True when none is left.

        Submitting still works (an upload that races the drain queues its event, and :meth:`take` collects it).
        Nothing runs a queued job any more until :meth:`resume`.
        """
        deadline = time.monotonic() + timeout
        with self._idle:
            self._paused = True
            while self._active and (left := deadline - time.monotonic()) > 0:
                self._idle.wait(left)
            return not self._active

    def take(self) -> list[_Job]:
        """Return every unfinished job after :meth:`drain`: queued, held, waiting to retry, still running.

        A job still running has its attempt cut short by the shutdown that follows (:meth:`interrupted`).
        """
        with self._lock:
            jobs, self._held = self._held, []
            while True:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    jobs.append(job)
            timers, self._delayed = self._delayed, {}
            for timer in timers.values():
                timer.cancel()
                jobs.append(timer.args[0])  # type: ignore[index]
            return jobs + list(self._active.values())

    def interrupted(self, job: _Job) -> bool:
        """Return True when ``job``'s attempt is still running (a job :meth:`drain` returned after its timeout)."""
        with self._lock:
            return job.request_id in self._active

    def hand_over(self, jobs: list[_Job]) -> None:
        """Record that ``jobs`` (from :meth:`take`) were saved: no longer this invoker's to finish or count."""
        with self._idle:
            for job in jobs:
                self._handed.add(job.request_id)
                self._oldest.pop(job.request_id, None)
            self._pending -= len(jobs)
            self._idle.notify_all()

    def resume(self, jobs: list[_Job]) -> None:
        """Undo :meth:`drain` (the save failed): queue ``jobs`` again and let attempts start."""
        with self._lock:
            self._paused = False
            queued = [job for job in jobs if job.request_id not in self._active]
        for job in queued:
            self._queue.put(job)

    def shutdown(self) -> int:
        """Stop the threads, drop queued invocations and pending retries; return how many were not finished.

        The count is every submitted invocation without an outcome: queued, waiting to retry, or running (a running
        attempt is not waited for beyond a few seconds, and is not retried). When it is not zero a warning says
        so, e.g. "shutting down with 3 asynchronous invocation(s) not finished (2 queued, 1 waiting to retry,
        0 running); they are dropped".
        """
        self._closed = True
        queued = 0
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            queued += job is not None
        with self._lock:
            timers, self._delayed = self._delayed, {}
            unfinished = self._pending
        for timer in timers.values():
            timer.cancel()
        waiting = len(timers)
        if self._handed:
            log.info("%d asynchronous invocation(s) were saved for the next start", len(self._handed))
        if unfinished:
            log.warning(
                "shutting down with %d asynchronous invocation(s) not finished (%d queued, %d waiting to retry, "
                "%d running); they are dropped",
                unfinished,
                queued,
                waiting,
                max(0, unfinished - queued - waiting),
            )
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=5)
        return unfinished

    def _done(self, job: _Job) -> None:
        with self._idle:
            if job.request_id in self._handed:  # its attempt was cut short after the hand-over: not counted twice
                return
            self._pending -= 1
            self._oldest.pop(job.request_id, None)
            self._idle.notify_all()

    def _serve(self) -> None:
        # One failure must neither kill this thread nor lose the event: an attempt that raises (the worker could
        # not be started, the code could not be extracted, ...) counts as a failed attempt and is retried, and
        # after the retries the record goes to the on-failure destination like any other failure.
        while True:
            job = self._queue.get()
            if job is None or self._closed:  # shut down: queued invocations are dropped, not run
                return
            with self._lock:
                if self._paused:  # drained: held for the hand-over, not run
                    self._held.append(job)
                    continue
                self._active[job.request_id] = job
            try:
                self._attempt(job)
            except Exception:
                log.exception("asynchronous invocation %s of %s failed in the invoker", job.request_id, job.spec.name)
                self._done(job)
            finally:
                with self._idle:
                    self._active.pop(job.request_id, None)
                    self._idle.notify_all()

    def _attempt(self, job: _Job) -> None:
        age = time.monotonic() - job.enqueued
        if (job.attempts or job.throttles) and age > job.settings.maximum_event_age_s:
            self._finish(job, "EventAgeExceeded", None)
            return
        if self.concurrency is not None and not self.concurrency.acquire(job.spec.arn):
            self._throttled(job)
            return
        job.attempts += 1
        with self._lock:
            self._running[job.request_id] = (job.spec.name, job.attempts, time.monotonic())
        try:
            invocation = self.executor.invoke(job.spec.resolve(), job.event, request_id=job.request_id)
        except Exception as exc:
            log.exception("attempt %d of asynchronous invocation %s of %s could not run", job.attempts,
                          job.request_id, job.spec.name)  # fmt: skip
            invocation = runner_failure(job.request_id, exc)
        finally:
            with self._lock:
                self._running.pop(job.request_id, None)
            if self.concurrency is not None:
                self.concurrency.release(job.spec.arn)
        if invocation.ok:
            self._finish(job, "Success", invocation)
            return
        if job.attempts > job.settings.maximum_retry_attempts:
            self._finish(job, "RetriesExhausted", invocation)
            return
        delay = self.retry_delays[min(job.attempts - 1, len(self.retry_delays) - 1)]
        log.info(
            "asynchronous invocation %s of %s failed (%s, attempt %d of %d); retrying in %.1f s",
            job.request_id,
            job.spec.name,
            invocation.error_type,
            job.attempts,
            job.settings.maximum_retry_attempts + 1,
            delay,
        )
        self._later(job, delay)

    def _throttled(self, job: _Job) -> None:
        """Queue ``job`` again after a backoff: its function is at its reserved concurrency (not an attempt)."""
        job.throttles += 1
        delay = self.throttle_delays[min(job.throttles - 1, len(self.throttle_delays) - 1)]
        (log.info if job.throttles == 1 else log.debug)(
            "asynchronous invocation %s of %s throttled (the function is at its reserved concurrency; throttle %d, "
            "%d attempt(s) so far); trying again in %.1f s",
            job.request_id,
            job.spec.name,
            job.throttles,
            job.attempts,
            delay,
        )
        self._later(job, delay)

    def _later(self, job: _Job, delay: float) -> None:
        """Put ``job`` back on the queue after ``delay`` seconds (it counts as waiting to retry meanwhile)."""
        timer = threading.Timer(delay, self._requeue, args=(job,))
        timer.daemon = True
        with self._lock:
            if self._closed or job.request_id in self._handed:  # shut down or saved while this attempt ran
                return
            self._delayed[job.request_id] = timer
        timer.start()

    def _requeue(self, job: _Job) -> None:
        with self._lock:
            if self._delayed.pop(job.request_id, None) is None:  # shutdown took (and counted) it
                return
        self._queue.put(job)

    def _finish(self, job: _Job, condition: str, invocation: Invocation | None) -> None:
        try:
            if job.request_id in self._handed:  # saved for the next start, which runs it again
                return
            target = job.settings.on_success if condition == "Success" else job.settings.on_failure
            if condition != "Success":
                log.warning(
                    "asynchronous invocation %s of %s dropped after %d attempt(s) (%s)%s",
                    job.request_id,
                    job.spec.name,
                    job.attempts,
                    condition,
                    f"; record sent to {target}" if target else "; no on-failure destination configured",
                )
            if target:
                record = destination_record(job.event, job.spec, job.request_id, job.attempts, condition, invocation)
                self.destinations.send(target, record)
        except Exception:
            log.exception("could not deliver the destination record of %s", job.request_id)
        finally:
            self._done(job)
