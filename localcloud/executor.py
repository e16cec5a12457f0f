"""Local Lambda executor: runs a deployed function zip in warm Python worker subprocesses.

The executor knows nothing about moto. It gets a :class:`FunctionSpec` (what Lambda would know about the function
version: handler, runtime, timeout, memory, environment, extracted code and layers) and an event, runs the handler in
a worker process started from ``bootstrap.py``, and writes the function's output plus Lambda's ``START``/``END``/
``REPORT`` lines to a :class:`LogSink` (CloudWatch Logs, in the embedded local cloud).

Workers stay alive between invocations (a warm call does not import the handler again). Each function version has a
small pool of at most ``concurrency`` workers; one worker runs one invocation at a time. A worker that times out or
crashes is killed and replaced on the next call. A worker whose resident memory goes over the function's
``MemorySize`` is killed (:mod:`localcloud.memlimit`) and its invocation fails as Lambda reports it:
``Runtime.OutOfMemory``, ``Runtime exited with error: signal: killed``, ``Max Memory Used`` = the limit.

This module is the façade; the parts are, by job:

- :mod:`localcloud.invocation`: :class:`FunctionSpec` in, :class:`Invocation` out, Lambda's error document;
- :mod:`localcloud.codecache`: the extracted zips (:class:`CodeCache`);
- :mod:`localcloud.lambdaenv`: a worker's ``sys.path`` and environment variables;
- :mod:`localcloud.protocol`: the pipe protocol with ``bootstrap.py`` (requests, replies, log channel);
- :mod:`localcloud.workers`: the worker processes and their pools;
- :mod:`localcloud.lambdalogs`: the log sink and the ``INIT_START``/``START``/``END``/``REPORT`` lines.

Hot reload (:mod:`localcloud.hotreload`) needs nothing more here: a spec whose ``code_signature`` changed is a new
pool, so the version's warm workers are retired and the next invocation is a cold start of the saved code.

Debug mode (:mod:`localcloud.debugger`, :meth:`LocalExecutor.debug`): the debugged function gets pools of one worker
that listens for a debugger (a pool of its own, so switching debug mode on or off retires the warm workers), started
at once by :meth:`LocalExecutor.prestart`; time an invocation spends stopped by the debugger does not count against
its timeout (:meth:`localcloud.workers.Worker.request`).
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from localcloud import debugger, lambdaenv, lambdalogs, memlimit, protocol, runtime
from localcloud.codecache import CodeCache
from localcloud.invocation import Credentials, FunctionSpec, Invocation, error_document, spec_environment
from localcloud.lambdalogs import ListLogSink, LogSink, now_ms
from localcloud.workers import Worker, WorkerDied, WorkerPool

__all__ = [
    "INIT_TIMEOUT_S",
    "LOCAL_INIT_TIMEOUT_S",
    "CodeCache",
    "FunctionSpec",
    "Invocation",
    "ListLogSink",
    "LocalExecutor",
    "LogSink",
    "spec_environment",
]

log = logging.getLogger(__name__)

INIT_TIMEOUT_S = 10.0  # Lambda's limit for the init phase; the function timeout is added on top.
# Locally the init phase gets more: a cold start on a busy laptop (or a CI machine running several test sessions)
# can take far longer than on Lambda, and a slow start must not turn every invocation into a failure.
LOCAL_INIT_TIMEOUT_S = 60.0
#: Workers (parallel invocations) per function version, and threads serving asynchronous invocations: the default of
#: :class:`LocalExecutor`, :class:`localcloud.asyncinvoke.AsyncInvoker`, :func:`localcloud.motopatch.install` and the
#: server's ``--concurrency``.
DEFAULT_CONCURRENCY = 2


@dataclass(slots=True)
class _Attempt:
    """One request on one worker while it runs: the log so far, the reply or the error, the ``REPORT`` status."""

    request_id: str
    events: list[tuple[int, str]] = field(default_factory=list)
    reply: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    status: str = ""
    healthy: bool = True
    max_memory_mb: int | None = None  # what REPORT says when the worker's reply cannot (it was killed for memory)

    def log(self, message: str) -> None:
        self.events.append((now_ms(), message))

    def fail(self, error: dict[str, Any], status: str) -> None:
        """Record that the worker is unusable after this request, which failed with ``error``."""
        self.error = error
        self.status = status
        self.healthy = False


class LocalExecutor:
    """Runs Lambda functions from their deployed zips in local worker processes.

    Parameters
    ----------
    cache_dir : Path
        Where code and layer zips are extracted (one directory per SHA-256) and runtime packages are linked.
    endpoint_url : str
        ``AWS_ENDPOINT_URL`` handed to the function, so its boto3 calls reach the local cloud.
    log_sink : LogSink
        Receives the function's log events.
    concurrency : int
        Maximum workers (parallel invocations) per function version.
    project_python : str | None
        Interpreter for the fallback when no interpreter of the function's runtime (or no matching layer) exists.
    init_timeout : float
        Seconds a new worker may take to start and import the handler, on top of the function's timeout (Lambda
        allows 10 s; the default :data:`LOCAL_INIT_TIMEOUT_S` leaves room for a busy machine).
    enforce_memory : bool
        Kill a worker whose resident memory goes over its function's ``MemorySize`` (:mod:`localcloud.memlimit`).
    credentials : Callable[[FunctionSpec], Credentials | None] | None
        Gives each new worker its credentials (a session of the function's role, :mod:`localcloud.rolesession`);
        ``None`` (or a ``None`` answer): the administrator's ``test`` keys. An exception fails the invocation.
    """

    def __init__(
        self,
        cache_dir: Path,
        endpoint_url: str,
        log_sink: LogSink,
        concurrency: int = DEFAULT_CONCURRENCY,
        project_python: str | None = None,
        init_timeout: float = LOCAL_INIT_TIMEOUT_S,
        enforce_memory: bool = True,
        credentials: Callable[[FunctionSpec], Credentials | None] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if init_timeout <= 0:
            raise ValueError(f"init_timeout must be more than 0 seconds, got {init_timeout}")
        self.init_timeout = init_timeout
        self.enforce_memory = enforce_memory
        self.credentials = credentials
        self.cache = CodeCache(cache_dir)
        self.cache_dir = cache_dir
        self.endpoint_url = endpoint_url
        self.log_sink = log_sink
        self.concurrency = concurrency
        self.project_python = project_python
        self._pools: dict[str, WorkerPool] = {}
        self._latest_key: dict[str, str] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._debug: debugger.DebugTarget | None = None

    # -- public API -------------------------------------------------------------------------------------------

    def invoke(self, spec: FunctionSpec, event: Any, request_id: str | None = None) -> Invocation:
        """Run ``spec``'s handler with ``event`` and return the outcome; never raises for function failures.

        A handler exception, a timeout (``Sandbox.Timedout``, the worker is killed), a worker crash or kill
        (``Runtime.ExitError``), a worker over its memory (``Runtime.OutOfMemory``) or an import error
        (``Runtime.ImportModuleError``) all come back as an :class:`Invocation` with ``function_error="Unhandled"``
        and Lambda's error document as payload. The log lines go to the log sink in every case. Raises only when
        no worker can be started at all (the caller decides what that means; the asynchronous invoker counts it as
        a failed attempt).
        """
        if self._closed:
            raise RuntimeError("the local Lambda executor is shut down")
        request_id = request_id or str(uuid.uuid4())
        pool = self._pool(spec)
        worker = pool.acquire()
        cold = worker is None
        pending: list[tuple[int, str]] = []
        if worker is None:
            worker, pending = self._start_in(pool, spec)
        healthy = False
        try:
            invocation, healthy = self._run(worker, spec, event, request_id, cold, pending)
        finally:
            pool.release(worker, healthy)
        return invocation

    def workers(self) -> list[dict[str, Any]]:
        """Describe the live workers (what a test needs to find and kill one, too).

        Each: function, version, pid, busy (running an invocation now), memory size, whether that memory is
        enforced, interpreter, whether the layers are used, log stream.
        """
        with self._lock:
            pools = list(self._pools.values())
        return [
            {
                "function": w.spec.name,
                "version": w.spec.version,
                "pid": w.pid,
                "busy": busy,
                "memory_size": w.spec.memory_size,
                "memory_enforced": w.memory is not None,
                "python": w.choice.python,
                "uses_layers": w.choice.use_layers,
                "log_stream": w.stream,
            }
            for pool in pools
            for w, busy in pool.states()
        ]

    def debug(self, target: debugger.DebugTarget | None) -> None:
        """Debug ``target``'s function from now on (``None``: debug nothing); retire the workers this changes.

        The function's warm workers are stopped now (a debug worker's port closes with it); the next invocation, or
        :meth:`prestart`, starts a worker of the new kind.

        Raises
        ------
        debugger.DebuggerUnavailable
            When debugpy is not installed in this environment.
        """
        if target is not None:
            debugger.link_debugpy(self._debug_packages)
        with self._lock:
            previous, self._debug = self._debug, target
            names = {t.function for t in (previous, target) if t is not None}
            stale = [key for key, pool in self._pools.items() if pool.function in names]
            pools = [self._pools.pop(key) for key in stale]
        for pool in pools:
            for worker in pool.retire():
                worker.stop(grace_s=0.5)

    def debug_state(self) -> dict[str, Any]:
        """Return the health document's ``debugger`` entry (:func:`localcloud.debugger.describe`)."""
        with self._lock:
            target = self._debug
            pools = list(self._pools.values())
        workers = [w.debug_state() for pool in pools for w in pool.all_workers() if w.debug and w.alive()]
        return debugger.describe(target, workers)

    def prestart(self, spec: FunctionSpec) -> None:
        """Start a worker for ``spec`` now unless its pool has one (for a debugger to attach before an invocation).

        Its init log lines (``INIT_START``, notes) go to the log at once; the first invocation is then warm.
        """
        pool = self._pool(spec)
        if not pool.reserve():
            return
        worker, pending = self._start_in(pool, spec)
        self._write_logs(spec, worker.stream, pending)
        pool.release(worker, worker.init_error is None and worker.alive())

    def shutdown(self) -> None:
        """Stop every worker (idle ones get a moment to exit, then all are killed); later calls fail."""
        self._closed = True
        with self._lock:
            pools = list(self._pools.values())
            self._pools.clear()
        for pool in pools:
            pool.retire()
            for worker in pool.all_workers():
                worker.stop(grace_s=0.5)

    # -- workers ----------------------------------------------------------------------------------------------

    @property
    def _pycache_dir(self) -> Path:
        """Where workers write bytecode (``PYTHONPYCACHEPREFIX``)."""
        return self.cache_dir / "pycache"

    @property
    def _debug_packages(self) -> Path:
        """Where the link to debugpy lives (:func:`localcloud.debugger.link_debugpy`)."""
        return self.cache_dir / "debug-packages"

    @property
    def _debug_code(self) -> Path:
        """Where the debugged function's code link lives (:func:`localcloud.debugger.code_link`)."""
        return self.cache_dir / "debug"

    def _debugged(self, spec: FunctionSpec) -> debugger.DebugTarget | None:
        target = self._debug
        return target if target is not None and target.matches(spec.name) else None

    def _pool(self, spec: FunctionSpec) -> WorkerPool:
        """Return the pool of ``spec``; a changed code or configuration retires the version's previous pool.

        The debugged function's pool is one of its own, of one worker.
        """
        stale: WorkerPool | None = None
        with self._lock:
            target = self._debugged(spec)
            key = spec.pool_key() + (f"-debug-{target.address}" if target is not None else "")
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = WorkerPool(1 if target is not None else self.concurrency, spec.name)
                if spec.hot_reload:
                    lambdaenv.drop_bytecode(self._pycache_dir, spec.code_dir)
                    if target is not None:
                        lambdaenv.drop_bytecode(self._pycache_dir, self._debug_code / spec.name)
            old_key = self._latest_key.get(spec.qualified_arn)
            if old_key is not None and old_key != key:
                stale = self._pools.pop(old_key, None)
            self._latest_key[spec.qualified_arn] = key
        if stale is not None:
            for worker in stale.retire():
                worker.stop(grace_s=0.5)
        return pool

    def _start_in(self, pool: WorkerPool, spec: FunctionSpec) -> tuple[Worker, list[tuple[int, str]]]:
        """Start a worker in the slot ``pool`` reserved for it (:meth:`_start_worker`); give the slot up on failure."""
        try:
            worker, pending = self._start_worker(spec)
        except Exception:
            pool.started(None)
            raise
        pool.started(worker)
        return worker, pending

    def _start_worker(self, spec: FunctionSpec) -> tuple[Worker, list[tuple[int, str]]]:
        """Start a worker and wait for its handler import; return it with its ``INIT_START`` and init log lines.

        A worker that dies or hangs during init is returned with ``init_error`` set (``Runtime.ExitError``), so the
        invocation fails with the init log rather than raising.
        """
        target = self._debugged(spec)
        if target is not None:  # the code runs through the link of one fixed path the editor maps lambda/ to
            spec = replace(spec, code_dir=debugger.code_link(self._debug_code, spec.name, spec.code_dir))
        layer_python = lambdaenv.layer_python_dirs(spec)
        choice = runtime.choose(spec.runtime, layer_python, self.project_python)
        stream = lambdalogs.stream_name(spec.version)
        sys_path = lambdaenv.worker_sys_path(spec, choice, layer_python, self.cache_dir / "runtime-packages")
        notes = [choice.note] if choice.note else []
        if spec.hot_reload:
            notes.append(f"local executor: hot reload: running the code in {spec.code_dir} as it is now")
        credentials = self.credentials(spec) if self.credentials is not None else None
        env = lambdaenv.worker_environment(
            spec, stream, sys_path, notes, self.endpoint_url, self._pycache_dir, protocol.BOOTSTRAP.parent, credentials
        )
        if target is not None:
            env.update(debugger.worker_environment(target, self._debug_packages))
        started = now_ms()
        worker = Worker(spec, choice, env, stream, enforce_memory=self.enforce_memory, debug=target is not None)
        worker.credentials_expire_at = credentials.expires_at if credentials is not None else None
        pending = [(started, lambdalogs.init_start_line(spec.runtime, choice.python))]
        try:
            worker.wait_ready(self.init_timeout + spec.timeout)
        except WorkerDied as exc:
            error_type = memlimit.OUT_OF_MEMORY if worker.out_of_memory else "Runtime.ExitError"
            worker.init_error = {"errorType": error_type, "errorMessage": str(exc), "stackTrace": []}
        pending.extend(worker.init_lines)
        return worker, pending

    # -- one invocation, step by step ---------------------------------------------------------------------------

    def _run(
        self,
        worker: Worker,
        spec: FunctionSpec,
        event: Any,
        request_id: str,
        cold: bool,
        pending: list[tuple[int, str]],
    ) -> tuple[Invocation, bool]:
        """Run one request on ``worker``; write its log; return the outcome and whether the worker may be reused."""
        attempt = _Attempt(request_id, list(pending))
        attempt.log(lambdalogs.start_line(request_id, spec.version))
        started = time.monotonic()
        if worker.init_error is not None:
            error = dict(worker.init_error)
            attempt.fail(error, lambdalogs.error_status(error["errorType"]))
            if worker.out_of_memory:
                attempt.max_memory_mb = spec.memory_size
        else:
            self._request(worker, spec, event, attempt)
        duration_ms = protocol.result_duration_ms(attempt.reply, (time.monotonic() - started) * 1000)
        self._finish_log(worker, spec, attempt, duration_ms, cold)
        return self._outcome(attempt, duration_ms, cold), attempt.healthy and worker.alive()

    def _request(self, worker: Worker, spec: FunctionSpec, event: Any, attempt: _Attempt) -> None:
        """Send the request and record how it ended: a reply, a crash or a timeout."""
        line = protocol.request_line(spec, attempt.request_id, event, worker.stream)
        try:
            reply = worker.request(line, spec.timeout, attempt.request_id)
        except WorkerDied as exc:
            if worker.out_of_memory:
                self._out_of_memory(worker, spec, attempt)
            else:
                self._crashed(worker, attempt, str(exc))
            return
        if reply is None:
            self._timed_out(worker, spec, attempt)
        else:
            self._replied(worker, attempt, reply)

    @staticmethod
    def _replied(worker: Worker, attempt: _Attempt, reply: dict[str, Any]) -> None:
        attempt.reply = reply
        attempt.events.extend(worker.collect(attempt.request_id, protocol.MARK_WAIT_S))
        if reply.get("paused_ms"):
            attempt.log(lambdalogs.paused_line(float(reply["paused_ms"])))
        attempt.error = protocol.result_error(reply)
        if attempt.error is not None and reply.get("error_log"):
            attempt.log(reply["error_log"])

    @staticmethod
    def _crashed(worker: Worker, attempt: _Attempt, reason: str) -> None:
        attempt.events.extend(worker.collect(attempt.request_id, 5.0))
        message = lambdalogs.crash_message(attempt.request_id, reason)
        attempt.log(message)
        attempt.log("Runtime.ExitError")
        error = {"errorType": "Runtime.ExitError", "errorMessage": message, "stackTrace": []}
        attempt.fail(error, lambdalogs.error_status("Runtime.ExitError"))

    @staticmethod
    def _out_of_memory(worker: Worker, spec: FunctionSpec, attempt: _Attempt) -> None:
        """Record Lambda's out-of-memory failure: the worker was killed over ``MemorySize`` during the request."""
        attempt.events.extend(worker.collect(attempt.request_id, 5.0))
        message = lambdalogs.crash_message(attempt.request_id, protocol.exit_reason(-signal.SIGKILL))
        attempt.log(message)
        attempt.log(memlimit.OUT_OF_MEMORY)
        error = {"errorType": memlimit.OUT_OF_MEMORY, "errorMessage": message, "stackTrace": []}
        attempt.fail(error, lambdalogs.error_status(memlimit.OUT_OF_MEMORY))
        attempt.max_memory_mb = spec.memory_size

    @staticmethod
    def _timed_out(worker: Worker, spec: FunctionSpec, attempt: _Attempt) -> None:
        worker.kill()
        attempt.events.extend(worker.collect(attempt.request_id, 5.0))
        message = lambdalogs.timeout_message(attempt.request_id, spec.timeout)
        attempt.log(message)
        attempt.fail({"errorType": "Sandbox.Timedout", "errorMessage": message}, lambdalogs.TIMEOUT_STATUS)

    def _finish_log(
        self, worker: Worker, spec: FunctionSpec, attempt: _Attempt, duration_ms: float, cold: bool
    ) -> None:
        """Append ``END`` and ``REPORT`` and write the invocation's log lines to the sink."""
        attempt.log(lambdalogs.end_line(attempt.request_id))
        max_memory_mb = attempt.max_memory_mb
        if max_memory_mb is None:
            max_memory_mb = protocol.result_max_memory_mb(attempt.reply)
        report = lambdalogs.report_line(
            attempt.request_id,
            duration_ms,
            spec.memory_size,
            max_memory_mb,
            worker.init_ms if cold else None,
            attempt.status,
        )
        attempt.log(report)
        self._write_logs(spec, worker.stream, attempt.events)

    @staticmethod
    def _outcome(attempt: _Attempt, duration_ms: float, cold: bool) -> Invocation:
        """Return the :class:`Invocation`: the handler's result, or Lambda's error document."""
        lines = [message for _, message in attempt.events]
        if attempt.error is None and attempt.reply is not None:
            payload = protocol.result_payload(attempt.reply)
            return Invocation(attempt.request_id, payload, None, None, lines, duration_ms, cold)
        assert attempt.error is not None
        document = error_document(attempt.error, attempt.request_id)
        payload = json.dumps(document).encode()
        return Invocation(attempt.request_id, payload, "Unhandled", document["errorType"], lines, duration_ms, cold)

    def _write_logs(self, spec: FunctionSpec, stream: str, events: Iterable[tuple[int, str]]) -> None:
        batch = list(events)
        try:
            self.log_sink.put(spec.account_id, spec.region, spec.log_group, stream, batch)
        except Exception:
            log.exception("could not write %d log events of %s to %s", len(batch), spec.name, spec.log_group)
