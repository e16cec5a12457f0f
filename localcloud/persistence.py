"""Persistence (``make local-up PERSIST=1``, LocalStack's ``PERSISTENCE``): the data saved before a stop, back at start.

Built on the warm snapshot (:mod:`localcloud.snapshot`): the same pickle of every moto backend, taken at ``local-down``
instead of right after an apply, so it holds the session's data too: objects with their metadata and tags, queue
messages (the dead-letter queue's included), log groups with their events.

``POST /_localcloud/persist`` (the server's ``--persist-file``) saves it. Nothing acknowledged may be lost, so it
first settles what is in flight, in this order:

1. **Drain.** No new asynchronous attempt starts; the attempts running finish, up to the drain time (``drain_s`` in
   the request, default :data:`DRAIN_S`), with the server still answering their own S3/SNS calls.
2. **Gate.** Every other request is answered ``503 ServiceUnavailable`` from now on, and the requests already
   inside finish: an upload answered 200 before this point has its object and its queued event in the state.
3. **Save.** The state and the invocations not finished (queued, waiting to retry, or still running after the drain
   time) go into the file, each with its request id, its failed attempts and its first-queued time.

The server then stops as usual. The next server started with ``--restore`` of that file queues those invocations
again (:func:`resubmit`) once it listens: an event in flight at ``local-down`` is processed after ``local-up``, and
ends in the on-failure destination (the DLQ) only as any event does, after its retries or past its maximum age (the
time the cloud was down counts, as on AWS). An attempt cut short by the stop is not counted as a failed one: the
function did not fail, the emulator stopped. The function's idempotency (invariant 5) makes that re-run safe.

When the save fails, the gate opens again and the drained invocations run: the server keeps serving everything.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Seconds the drain waits for running asynchronous attempts before their events are saved as unfinished.
DRAIN_S = 30.0
#: Seconds the gate waits for the requests already inside to finish.
SETTLE_S = 30.0


def data_counts() -> dict[str, int]:
    """Return how much data moto holds: ``objects`` (S3 keys), ``messages`` (SQS), ``log_events`` (CloudWatch Logs).

    Read from moto 5.2.5's models; a count moto no longer exposes that way is left out.
    """
    from moto.logs.models import logs_backends
    from moto.s3.models import s3_backends
    from moto.sqs.models import sqs_backends

    counts: dict[str, int] = {}
    try:
        counts["objects"] = sum(
            len(bucket.keys) for backend in _backends(s3_backends) for bucket in backend.buckets.values()
        )
    except AttributeError:
        pass
    try:
        counts["messages"] = sum(
            len(queue._messages) for backend in _backends(sqs_backends) for queue in backend.queues.values()
        )
    except AttributeError:
        pass
    try:
        counts["log_events"] = sum(
            len(stream.events)
            for backend in _backends(logs_backends)
            for group in backend.groups.values()
            for stream in group.streams.values()
        )
    except AttributeError:
        pass
    return counts


def _backends(backend_dict: Any) -> Iterable[Any]:
    """Yield every backend object of a moto ``BackendDict`` (account -> region -> backend) that exists."""
    for regions in list(dict.values(backend_dict)):
        yield from list(dict.values(regions))


class Gate:
    """Counts the requests inside the server and, once closed, turns new ones away."""

    def __init__(self) -> None:
        self.closed = False
        self._inside = 0
        self._changed = threading.Condition()

    def enter(self) -> bool:
        """Let a request in (True), or refuse it because the gate is closed (False)."""
        with self._changed:
            if self.closed:
                return False
            self._inside += 1
            return True

    def leave(self) -> None:
        """A request that :meth:`enter` let in has been answered."""
        with self._changed:
            self._inside -= 1
            self._changed.notify_all()

    def close(self, timeout: float) -> bool:
        """Turn new requests away and wait up to ``timeout`` s for those inside; return True when none is left."""
        with self._changed:
            self.closed = True
            return self._changed.wait_for(lambda: self._inside == 0, timeout)

    def open(self) -> None:
        """Let requests in again."""
        with self._changed:
            self.closed = False


class PersistMiddleware:
    """WSGI middleware: ``POST`` :data:`path` saves the data (drain, gate, save); the gate guards everything else.

    Parameters
    ----------
    app : Any
        The WSGI application behind it (moto, with the snapshot and fault endpoints).
    target : Path | None
        Where the data is saved (``--persist-file``); ``None`` answers 404 (persistence is off).
    invoker : Any
        The :class:`~localcloud.asyncinvoke.AsyncInvoker` whose unfinished invocations are saved.
    path : str
        The endpoint's path (``localcloud.server.PERSIST_PATH``).
    """

    def __init__(self, app: Any, target: Path | None, invoker: Any, path: str) -> None:
        self.app = app
        self.target = target
        self.invoker = invoker
        self.path = path
        self.gate = Gate()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Serve the save endpoint; pass other requests to ``app`` while the gate is open, else answer 503."""
        if environ.get("PATH_INFO") == self.path:
            status, document = self._persist(environ)
            return _json(start_response, status, document)
        if not self.gate.enter():
            document = {"__type": "ServiceUnavailable", "message": "the local cloud is saving its data and stopping"}
            return _json(start_response, "503 Service Unavailable", document)
        try:
            return self.app(environ, start_response)
        finally:
            self.gate.leave()

    def _persist(self, environ: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if environ.get("REQUEST_METHOD") != "POST":
            return "405 Method Not Allowed", {"error": f"use POST {self.path}"}
        if self.target is None:
            return "404 Not Found", {"error": "persistence is off: this server was started without --persist-file"}
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            options = json.loads(environ["wsgi.input"].read(length) or b"{}") if length else {}
            drain_s = float(options.get("drain_s", DRAIN_S))
        except (ValueError, TypeError, AttributeError):
            return "400 Bad Request", {"error": 'the body must be JSON like {"drain_s": 30}'}
        return save(self.target, self.invoker, self.gate, drain_s)


def save(target: Path, invoker: Any, gate: Gate, drain_s: float) -> tuple[str, dict[str, Any]]:
    """Drain ``invoker``, close ``gate``, save the state and the unfinished invocations to ``target``.

    Returns the HTTP status and the summary (the snapshot's, plus ``counts`` of the data, ``pending_async`` saved,
    of which ``interrupted`` were still running); on failure the gate opens and the invocations run again.
    """
    from localcloud import snapshot

    drained = invoker.drain(drain_s)
    settled = gate.close(SETTLE_S)
    jobs = invoker.take()
    records = [job.record(interrupted=invoker.interrupted(job)) for job in jobs]
    interrupted = sum(1 for job in jobs if invoker.interrupted(job))
    try:
        summary = snapshot.dump(target, extra={"pending_async": records})
    except snapshot.SnapshotError as exc:
        log.error("the data was not saved, the server keeps serving: %s", exc)
        invoker.resume(jobs)
        gate.open()
        return "500 Internal Server Error", {"error": str(exc)}
    invoker.hand_over(jobs)
    summary |= {
        "counts": data_counts(),
        "pending_async": len(records),
        "interrupted": interrupted,
        "drained": drained,
        "settled": settled,
    }
    log.info(
        "saved the data to %s (%s; %d asynchronous invocation(s) not finished, %d cut short)",
        target,
        ", ".join(f"{count} {name}" for name, count in summary["counts"].items()),
        len(records),
        interrupted,
    )
    return "200 OK", summary


def resubmit(records: list[dict[str, Any]], patch: Any) -> int:
    """Queue again the invocations a stopped server saved (``pending_async``); return how many were queued.

    Each keeps its request id, attempts and age. One whose function no longer exists is logged and left out.
    """
    from moto.awslambda.models import lambda_backends

    queued = 0
    for record in records:
        arn = str(record.get("function_arn", ""))
        parts = arn.split(":")
        try:
            version = record.get("version")
            fn = lambda_backends[parts[4]][parts[3]].get_function(parts[6], None if version == "$LATEST" else version)
        except Exception:  # moto raises its own not-found errors; a malformed ARN an IndexError
            log.warning("not queuing saved invocation %s again: function %s is gone", record.get("request_id"), arn)
            continue
        patch.invoker.submit(patch.ref(fn), record.get("event"), patch.settings(fn), saved=record)
        queued += 1
    if queued:
        log.info("queued %d asynchronous invocation(s) saved by the last stop again", queued)
    return queued


def _json(start_response: Callable[..., Any], status: str, document: dict[str, Any]) -> list[bytes]:
    body = json.dumps(document).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
