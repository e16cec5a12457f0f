"""Local Lambda executor: runs a deployed function zip in warm Python worker subprocesses.

The executor knows nothing about moto. It gets a :class:`FunctionSpec` (what Lambda would know about the function
version: handler, runtime, timeout, memory, environment, extracted code and layers) and an event, runs the handler in
a worker process started from ``bootstrap.py``, and writes the function's output plus Lambda's ``START``/``END``/
``REPORT`` lines to a :class:`LogSink` (CloudWatch Logs, in the embedded local cloud).

Workers stay alive between invocations (a warm call does not import the handler again). Each function version has a
small pool of at most ``concurrency`` workers; one worker runs one invocation at a time. A worker that times out or
crashes is killed and replaced on the next call.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from localcloud import bootstrap, runtime

log = logging.getLogger(__name__)

BOOTSTRAP = Path(bootstrap.__file__).resolve()
INIT_TIMEOUT_S = 10.0  # Lambda's limit for the init phase; the function timeout is added on top.
# Locally the init phase gets more: a cold start on a busy laptop (or a CI machine running several test sessions)
# can take far longer than on Lambda, and a slow start must not turn every invocation into a failure.
LOCAL_INIT_TIMEOUT_S = 60.0
# How long to wait for the end-of-phase marker on the log channel after the reply arrived. The worker writes the
# marker before the reply, so it is already in the pipe; only a busy machine delays its reader thread.
MARK_WAIT_S = 30.0
LOG_RESULT_BYTES = 4096  # Invoke's LogResult holds the last 4 KB of the log.

# Variables Lambda sets itself and does not let a function override.
RESERVED_ENV = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_DEFAULT_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_REGION",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "LAMBDA_RUNTIME_DIR",
        "LAMBDA_TASK_ROOT",
        # Not reserved on AWS, but the executor owns it: it is how the function finds the local cloud.
        "AWS_ENDPOINT_URL",
    }
)


class LogSink(Protocol):
    """Where function logs go: one call per batch of events of one log stream."""

    def put(self, account_id: str, region: str, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        """Append ``events`` (epoch ms, message) to ``stream`` in ``group`` of ``account_id``/``region``."""


class ListLogSink:
    """A :class:`LogSink` that keeps events in memory (for callers that have no CloudWatch Logs)."""

    def __init__(self) -> None:
        self.events: dict[tuple[str, str], list[tuple[int, str]]] = {}
        self._lock = threading.Lock()

    def put(self, account_id: str, region: str, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        """Append ``events`` to the in-memory stream ``(group, stream)``."""
        with self._lock:
            self.events.setdefault((group, stream), []).extend(events)


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """What the executor needs to know about one function version.

    Attributes
    ----------
    name, arn, version : str
        Function name, its ARN (unqualified) and version (``$LATEST`` or a number).
    handler : str
        ``module.function`` (``index.handler``).
    runtime : str | None
        Lambda runtime identifier, e.g. ``python3.13``.
    timeout : float
        Seconds an invocation may run before it is killed.
    memory_size : int
        Configured memory in MB (reported, not enforced).
    environment : tuple[tuple[str, str], ...]
        The function's environment variables, sorted.
    region, account_id : str
        Where the function lives.
    code_dir : Path
        The extracted function zip (``/var/task`` on Lambda).
    layer_dirs : tuple[Path, ...]
        The extracted layer zips in configuration order (each is ``/opt`` on Lambda).
    """

    name: str
    arn: str
    version: str
    handler: str
    runtime: str | None
    timeout: float
    memory_size: int
    environment: tuple[tuple[str, str], ...]
    region: str
    account_id: str
    code_dir: Path
    layer_dirs: tuple[Path, ...] = ()

    @property
    def log_group(self) -> str:
        """Return the function's CloudWatch Logs group, ``/aws/lambda/<name>``."""
        return f"/aws/lambda/{self.name}"

    @property
    def qualified_arn(self) -> str:
        """Return the ARN with the version qualifier, as Lambda reports it to the function."""
        return f"{self.arn}:{self.version}"

    def pool_key(self) -> str:
        """Return a digest of everything that needs a fresh worker when it changes (code, layers, configuration)."""
        parts = [
            self.arn,
            self.version,
            self.handler,
            str(self.runtime),
            str(self.timeout),
            str(self.memory_size),
            json.dumps(self.environment),
            str(self.code_dir),
            *map(str, self.layer_dirs),
        ]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


@dataclass(slots=True)
class Invocation:
    """Outcome of one invocation.

    Attributes
    ----------
    request_id : str
        The invocation's request id (also in the log lines).
    payload : bytes
        The handler's JSON result, or Lambda's error document (``errorMessage``, ``errorType``, ...).
    function_error : str | None
        ``"Unhandled"`` when the invocation failed (exception, timeout, crash, import error), else ``None``.
    error_type : str | None
        The error's type, e.g. ``ValueError``, ``Sandbox.Timedout``, ``Runtime.ExitError``.
    log_lines : list[str]
        The lines written to CloudWatch Logs for this invocation, ``START`` to ``REPORT``.
    duration_ms : float
        Handler run time as in the ``REPORT`` line.
    cold_start : bool
        A new worker was started (and the handler imported) for this invocation.
    """

    request_id: str
    payload: bytes
    function_error: str | None = None
    error_type: str | None = None
    log_lines: list[str] = field(default_factory=list)
    duration_ms: float = 0.0
    cold_start: bool = False

    @property
    def ok(self) -> bool:
        """Return True when the handler returned normally."""
        return self.function_error is None

    def log_tail(self) -> str:
        """Return the last 4 KB of the invocation's log, as Invoke's ``LogResult`` (before base64) holds it."""
        text = "\n".join(self.log_lines) + "\n"
        data = text.encode()[-LOG_RESULT_BYTES:]
        return data.decode("utf-8", errors="ignore")


class CodeCache:
    """Extracted function and layer zips under ``root``, one directory per SHA-256 of the zip."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()

    def extract(self, kind: str, sha256_hex: str, load: Callable[[], bytes]) -> Path:
        """Return the directory holding the zip with digest ``sha256_hex``; call ``load`` and extract it if absent.

        ``kind`` separates function code (``code``) from layers (``layers``). Extraction goes to a temporary
        directory that is renamed into place, so a half-written directory is never used.
        """
        target = self.root / kind / sha256_hex
        if target.is_dir():
            return target
        with self._lock:
            if target.is_dir():
                return target
            tmp = target.with_name(f".{sha256_hex}.{os.getpid()}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            data = load()
            zip_path = tmp.with_suffix(".zip")
            zip_path.write_bytes(data)
            try:
                with zipfile.ZipFile(zip_path) as archive:
                    archive.extractall(tmp)
            except zipfile.BadZipFile as exc:
                shutil.rmtree(tmp, ignore_errors=True)
                raise ValueError(f"the deployed {kind} zip ({sha256_hex[:12]}) is not a valid zip file: {exc}") from exc
            finally:
                zip_path.unlink(missing_ok=True)
            os.replace(tmp, target)
            return target


class _WorkerDied(Exception):
    """The worker process exited or stopped answering."""


class _Worker:
    """One worker subprocess for one function version, with reader threads for its two output pipes."""

    def __init__(self, spec: FunctionSpec, choice: runtime.RuntimeChoice, env: dict[str, str], stream: str) -> None:
        self.spec = spec
        self.choice = choice
        self.stream = stream
        self.replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.lines: queue.Queue[tuple[str, str]] = queue.Queue()
        self.init_ms = 0.0
        self.init_error: dict[str, Any] | None = None
        self.init_lines: list[tuple[int, str]] = []
        self.proc = subprocess.Popen(
            [choice.python, "-u", str(BOOTSTRAP)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=spec.code_dir,
            start_new_session=True,
        )
        threading.Thread(target=self._read_replies, name=f"lambda-replies-{self.proc.pid}", daemon=True).start()
        threading.Thread(target=self._read_lines, name=f"lambda-logs-{self.proc.pid}", daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read_replies(self) -> None:
        # The end-of-channel sentinel is always queued, whatever happens here, so nobody waits for a dead worker.
        pipe = self.proc.stdout
        assert pipe is not None
        try:
            for raw in pipe:
                try:
                    self.replies.put(json.loads(raw))
                except ValueError:
                    log.warning("worker %s wrote a line that is not JSON on the reply channel: %r", self.pid, raw[:200])
        except Exception:
            log.exception("reading the replies of worker %s failed", self.pid)
        finally:
            self.replies.put(None)
            with contextlib.suppress(OSError):
                pipe.close()

    def _read_lines(self) -> None:
        pipe = self.proc.stderr
        assert pipe is not None
        held_blank = False
        try:
            for raw in pipe:
                text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if bootstrap.MARK in text:
                    before, _, phase = text.partition(bootstrap.MARK)
                    if before:
                        self.lines.put(("line", before))
                    self.lines.put(("mark", phase.strip()))
                    held_blank = False
                    continue
                if held_blank:
                    self.lines.put(("line", ""))
                held_blank = text == ""
                if not held_blank:
                    self.lines.put(("line", text))
            if held_blank:
                self.lines.put(("line", ""))
        except Exception:
            log.exception("reading the log output of worker %s failed", self.pid)
        finally:
            self.lines.put(("eof", ""))
            with contextlib.suppress(OSError):
                pipe.close()

    def collect(self, phase: str, wait_s: float) -> list[tuple[int, str]]:
        """Return the output lines up to the marker of ``phase`` (waiting at most ``wait_s`` for it)."""
        out: list[tuple[int, str]] = []
        deadline = time.monotonic() + wait_s
        while True:
            try:
                kind, text = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return out
            if kind == "line":
                out.append((_now_ms(), text))
            elif kind == "eof" or text == phase:
                return out

    def wait_ready(self, timeout: float) -> None:
        """Wait for the handler import to finish; raise :class:`_WorkerDied` when the worker gives up or hangs."""
        try:
            reply = self.replies.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            self.init_lines = self.collect("init", 5.0)
            raise _WorkerDied(f"init did not finish within {timeout:.0f} s") from None
        self.init_lines = self.collect("init", MARK_WAIT_S)
        if reply is None:
            raise _WorkerDied(self._exit_text())
        self.init_ms = float(reply.get("init_ms", 0.0))
        self.init_error = reply.get("error")

    def request(self, request: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        """Send one request; return its reply, or ``None`` on timeout. Raise :class:`_WorkerDied` on a crash."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            self.proc.stdin.flush()
        except (OSError, ValueError):  # ValueError: the pipe was closed because the worker was stopped
            raise _WorkerDied(self._exit_text()) from None
        try:
            reply = self.replies.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None
        if reply is None:
            raise _WorkerDied(self._exit_text())
        return reply

    def _exit_text(self) -> str:
        try:
            code = self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return "Runtime exited without providing a reason"
        if code < 0:
            return f"Runtime exited with error: signal: {signal.Signals(-code).name.removeprefix('SIG').lower()}"
        return f"Runtime exited with error: exit status {code}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """Kill the worker's process group (the handler's own subprocesses included) and reap it."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.warning("worker %s did not exit after SIGKILL", self.pid)
        # stdout and stderr are closed by their reader threads once they reach the end (closing them here, while
        # a reader is blocked in read(), could leave that thread stuck or dying without its end-of-channel mark).
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                self.proc.stdin.close()

    def stop(self, grace_s: float = 2.0) -> None:
        """Close the request channel (the worker exits when idle), then kill it if it is still running."""
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
        self.kill()


class _Pool:
    """Workers of one function version: at most ``size`` exist; idle ones are reused."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.idle: list[_Worker] = []
        self.busy: set[_Worker] = set()
        self.starting = 0
        self.retired = False
        self.cond = threading.Condition()

    def acquire(self) -> _Worker | None:
        """Return an idle worker, or ``None`` when the caller may start a new one; block while the pool is full."""
        with self.cond:
            while True:
                while self.idle:
                    worker = self.idle.pop()
                    if worker.alive():
                        self.busy.add(worker)
                        return worker
                    worker.kill()
                if len(self.busy) + self.starting < self.size:
                    self.starting += 1
                    return None
                self.cond.wait()

    def started(self, worker: _Worker | None) -> None:
        """Record that a slot reserved by :meth:`acquire` now holds ``worker`` (or was given up when ``None``)."""
        with self.cond:
            self.starting -= 1
            if worker is not None:
                self.busy.add(worker)
            self.cond.notify()

    def release(self, worker: _Worker, healthy: bool) -> None:
        """Return ``worker`` to the pool, or kill it when it is broken or the pool was retired."""
        with self.cond:
            self.busy.discard(worker)
            keep = healthy and not self.retired and worker.alive()
            if keep:
                self.idle.append(worker)
            self.cond.notify()
        if not keep:
            worker.kill()

    def retire(self) -> list[_Worker]:
        """Stop handing out workers; return the idle ones (to stop). Busy ones are killed when released."""
        with self.cond:
            self.retired = True
            idle, self.idle = self.idle, []
            self.cond.notify_all()
            return idle

    def all_workers(self) -> list[_Worker]:
        with self.cond:
            return [*self.idle, *self.busy]


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
    """

    def __init__(
        self,
        cache_dir: Path,
        endpoint_url: str,
        log_sink: LogSink,
        concurrency: int = 2,
        project_python: str | None = None,
        init_timeout: float = LOCAL_INIT_TIMEOUT_S,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if init_timeout <= 0:
            raise ValueError(f"init_timeout must be more than 0 seconds, got {init_timeout}")
        self.init_timeout = init_timeout
        self.cache = CodeCache(cache_dir)
        self.cache_dir = cache_dir
        self.endpoint_url = endpoint_url
        self.log_sink = log_sink
        self.concurrency = concurrency
        self.project_python = project_python
        self._pools: dict[str, _Pool] = {}
        self._latest_key: dict[str, str] = {}
        self._lock = threading.Lock()
        self._closed = False

    # -- public API -------------------------------------------------------------------------------------------

    def invoke(self, spec: FunctionSpec, event: Any, request_id: str | None = None) -> Invocation:
        """Run ``spec``'s handler with ``event`` and return the outcome; never raises for function failures.

        A handler exception, a timeout (``Sandbox.Timedout``, the worker is killed), a worker crash
        (``Runtime.ExitError``) or an import error (``Runtime.ImportModuleError``) all come back as an
        :class:`Invocation` with ``function_error="Unhandled"`` and Lambda's error document as payload. The log
        lines go to the log sink in every case.
        """
        if self._closed:
            raise RuntimeError("the local Lambda executor is shut down")
        request_id = request_id or str(uuid.uuid4())
        pool = self._pool(spec)
        worker = pool.acquire()
        cold = worker is None
        pending: list[tuple[int, str]] = []
        if worker is None:
            try:
                worker, pending = self._start_worker(spec)
            except Exception:
                pool.started(None)
                raise
            pool.started(worker)
        healthy = False
        try:
            invocation, healthy = self._run(worker, spec, event, request_id, cold, pending)
        finally:
            pool.release(worker, healthy)
        return invocation

    def workers(self) -> list[dict[str, Any]]:
        """Describe the live workers: function, version, pid, interpreter, log stream."""
        with self._lock:
            pools = list(self._pools.values())
        return [
            {
                "function": w.spec.name,
                "version": w.spec.version,
                "pid": w.pid,
                "python": w.choice.python,
                "uses_layers": w.choice.use_layers,
                "log_stream": w.stream,
            }
            for pool in pools
            for w in pool.all_workers()
        ]

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

    # -- internals --------------------------------------------------------------------------------------------

    def _pool(self, spec: FunctionSpec) -> _Pool:
        key = spec.pool_key()
        stale: _Pool | None = None
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = _Pool(self.concurrency)
            old_key = self._latest_key.get(spec.qualified_arn)
            if old_key is not None and old_key != key:
                stale = self._pools.pop(old_key, None)
            self._latest_key[spec.qualified_arn] = key
        if stale is not None:
            for worker in stale.retire():
                worker.stop(grace_s=0.5)
        return pool

    def _start_worker(self, spec: FunctionSpec) -> tuple[_Worker, list[tuple[int, str]]]:
        layer_python = [d / "python" for d in spec.layer_dirs if (d / "python").is_dir()]
        choice = runtime.choose(spec.runtime, layer_python, self.project_python)
        now = datetime.now(UTC)
        stream = f"{now:%Y/%m/%d}/[{spec.version}]{uuid.uuid4().hex}"
        sys_path = [str(spec.code_dir)]
        notes: list[str] = []
        if choice.use_layers:
            version = runtime.runtime_version(spec.runtime)
            assert version is not None
            for layer in layer_python:
                site = layer / "lib" / f"python{version[0]}.{version[1]}" / "site-packages"
                if site.is_dir():
                    sys_path.append(str(site))
                sys_path.append(str(layer))
            sys_path.append(str(runtime.link_runtime_packages(self.cache_dir / "runtime-packages")))
        if choice.note:
            notes.append(choice.note)
        env = self._env(spec, stream, sys_path, notes)
        started = _now_ms()
        worker = _Worker(spec, choice, env, stream)
        pending = [(started, f"INIT_START Runtime Version: {spec.runtime} (local executor, {choice.python})")]
        try:
            worker.wait_ready(self.init_timeout + spec.timeout)
        except _WorkerDied as exc:
            pending.extend(worker.init_lines)
            worker.init_error = {"errorType": "Runtime.ExitError", "errorMessage": str(exc), "stackTrace": []}
            return worker, pending
        pending.extend(worker.init_lines)
        return worker, pending

    def _env(self, spec: FunctionSpec, stream: str, sys_path: list[str], notes: list[str]) -> dict[str, str]:
        env = {k: v for k, v in spec.environment if k not in RESERVED_ENV}
        env.update(
            {
                "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
                "LANG": "C.UTF-8",
                "TZ": ":UTC",
                "PYTHONUNBUFFERED": "1",
                # Bytecode goes to the cache (not into the extracted code), so cold starts after the first are faster.
                "PYTHONPYCACHEPREFIX": str(self.cache_dir / "pycache"),
                "LAMBDA_TASK_ROOT": str(spec.code_dir),
                "LAMBDA_RUNTIME_DIR": str(BOOTSTRAP.parent),
                "_HANDLER": spec.handler,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
                "AWS_LAMBDA_FUNCTION_NAME": spec.name,
                "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
                "AWS_LAMBDA_LOG_STREAM_NAME": stream,
                "AWS_REGION": spec.region,
                "AWS_DEFAULT_REGION": spec.region,
                "AWS_ACCESS_KEY_ID": "test",
                "AWS_SECRET_ACCESS_KEY": "test",
                "AWS_SESSION_TOKEN": "test",
                "AWS_ENDPOINT_URL": self.endpoint_url,
                # Keep the developer's own AWS profile and credentials away from the function.
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "LOCALCLOUD_SYS_PATH": json.dumps(sys_path),
                "LOCALCLOUD_INIT_NOTES": json.dumps(notes),
            }
        )
        return env

    def _run(
        self,
        worker: _Worker,
        spec: FunctionSpec,
        event: Any,
        request_id: str,
        cold: bool,
        pending: list[tuple[int, str]],
    ) -> tuple[Invocation, bool]:
        events = list(pending)
        events.append((_now_ms(), f"START RequestId: {request_id} Version: {spec.version}"))
        started = time.monotonic()
        reply: dict[str, Any] | None = None
        error: dict[str, Any] | None = None
        status = ""
        healthy = True
        if worker.init_error is not None:
            error = dict(worker.init_error)
            healthy = False
            status = "\tStatus: error\tError Type: " + error["errorType"]
        else:
            deadline_ms = int(time.time() * 1000 + spec.timeout * 1000)
            request = {
                "id": request_id,
                "event": event,
                "deadline_ms": deadline_ms,
                "context": {
                    "function_name": spec.name,
                    "function_version": spec.version,
                    "invoked_function_arn": spec.arn,
                    "memory_limit_in_mb": spec.memory_size,
                    "log_group_name": spec.log_group,
                    "log_stream_name": worker.stream,
                },
            }
            try:
                reply = worker.request(request, spec.timeout)
            except _WorkerDied as exc:
                healthy = False
                events.extend(worker.collect(request_id, 5.0))
                error = {
                    "errorType": "Runtime.ExitError",
                    "errorMessage": f"RequestId: {request_id} Error: {exc}",
                    "stackTrace": [],
                }
                events.append((_now_ms(), f"RequestId: {request_id} Error: {exc}"))
                status = "\tStatus: error\tError Type: Runtime.ExitError"
            else:
                if reply is None:
                    healthy = False
                    worker.kill()
                    events.extend(worker.collect(request_id, 5.0))
                    message = f"Task timed out after {spec.timeout:.2f} seconds"
                    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
                    events.append((_now_ms(), f"{stamp} {request_id} {message}"))
                    error = {"errorType": "Sandbox.Timedout", "errorMessage": f"{stamp} {request_id} {message}"}
                    status = "\tStatus: timeout"
                else:
                    events.extend(worker.collect(request_id, MARK_WAIT_S))
                    if not reply.get("ok"):
                        error = reply.get("error") or {"errorType": "Unknown", "errorMessage": "no error details"}
                        if reply.get("error_log"):
                            events.append((_now_ms(), reply["error_log"]))
        elapsed_ms = (time.monotonic() - started) * 1000
        duration_ms = float(reply["duration_ms"]) if reply and "duration_ms" in reply else elapsed_ms
        max_memory = int(reply["max_memory_mb"]) if reply and "max_memory_mb" in reply else 0
        events.append((_now_ms(), f"END RequestId: {request_id}"))
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {max(1, math.ceil(duration_ms))} ms\tMemory Size: {spec.memory_size} MB\t"
            f"Max Memory Used: {max_memory} MB"
        )
        if cold:
            report += f"\tInit Duration: {worker.init_ms:.2f} ms"
        events.append((_now_ms(), report + status))
        self._write_logs(spec, worker.stream, events)

        if error is None and reply is not None:
            payload = str(reply.get("payload", "null")).encode()
            invocation = Invocation(request_id, payload, None, None, [m for _, m in events], duration_ms, cold)
        else:
            assert error is not None
            document = {"errorMessage": error.get("errorMessage", ""), "errorType": error.get("errorType", "")}
            if error.get("errorType") != "Sandbox.Timedout":
                document["requestId"] = request_id
                document["stackTrace"] = error.get("stackTrace", [])
            invocation = Invocation(
                request_id,
                json.dumps(document).encode(),
                "Unhandled",
                document["errorType"],
                [m for _, m in events],
                duration_ms,
                cold,
            )
        return invocation, healthy and worker.alive()

    def _write_logs(self, spec: FunctionSpec, stream: str, events: Iterable[tuple[int, str]]) -> None:
        batch = list(events)
        try:
            self.log_sink.put(spec.account_id, spec.region, spec.log_group, stream, batch)
        except Exception:
            log.exception("could not write %d log events of %s to %s", len(batch), spec.name, spec.log_group)


def spec_environment(variables: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    """Return a function's environment variables as the sorted tuple :class:`FunctionSpec` stores."""
    return tuple(sorted((str(k), str(v)) for k, v in (variables or {}).items()))


def _now_ms() -> int:
    return int(time.time() * 1000)
