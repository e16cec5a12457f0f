"""Worker processes of the local Lambda executor and their pools.

A :class:`Worker` is one ``bootstrap.py`` subprocess for one function version, with a reader thread for each of its
two output pipes (the messages of :mod:`localcloud.protocol` and the function's log) and, when the function's memory
is enforced, a :class:`~localcloud.memlimit.MemoryWatch` that kills it over ``MemorySize``. A :class:`WorkerPool` holds
the workers of one function version: at most ``size`` exist, idle ones are reused, broken ones are killed.

A worker in debug mode (:mod:`localcloud.debugger`) also says on its reply channel whether a debugger is attached
(kept in :attr:`Worker.debugger`) and when a request is stopped by it: :meth:`Worker.request` does not count that
time against the request's timeout.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import subprocess
import threading
import time
from typing import Any

from localcloud import lambdalogs, memlimit, protocol, runtime
from localcloud.invocation import FunctionSpec

log = logging.getLogger(__name__)


#: A warm worker whose credentials expire within this many seconds is replaced before its next invocation.
RENEW_CREDENTIALS_BEFORE_S = 300.0


class WorkerDied(Exception):
    """The worker process exited or stopped answering."""


class Worker:
    """One worker subprocess for one function version, with reader threads for its two output pipes.

    Parameters
    ----------
    spec : FunctionSpec
        The function version it runs.
    choice : runtime.RuntimeChoice
        Its interpreter (and whether the layers are on ``sys.path``).
    env : dict[str, str]
        Its whole environment (see :mod:`localcloud.lambdaenv`).
    stream : str
        Its CloudWatch Logs stream.
    enforce_memory : bool
        Kill the worker as soon as its resident memory is over ``spec.memory_size`` (:mod:`localcloud.memlimit`).
    debug : bool
        The worker listens for a debugger (its environment carries the settings, :mod:`localcloud.debugger`).
    """

    def __init__(
        self,
        spec: FunctionSpec,
        choice: runtime.RuntimeChoice,
        env: dict[str, str],
        stream: str,
        enforce_memory: bool = False,
        debug: bool = False,
    ) -> None:
        self.spec = spec
        self.choice = choice
        self.stream = stream
        self.replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.lines: queue.Queue[tuple[str, str]] = queue.Queue()
        self.init_ms = 0.0
        self.init_error: dict[str, Any] | None = None
        self.init_lines: list[tuple[int, str]] = []
        self.debug = debug
        #: Debug mode: ``{"attached": bool}`` or ``{"error": str}`` as the worker last said; ``paused_since``
        #: (monotonic) while a request is stopped by the debugger.
        self.debugger: dict[str, Any] = {}
        self.paused_since: float | None = None
        #: When the worker's credentials (a session of the function's role) expire, seconds since the epoch.
        self.credentials_expire_at: float | None = None
        self.proc = subprocess.Popen(
            protocol.worker_command(choice.python, debug=debug),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=spec.code_dir,
            start_new_session=True,
        )
        threading.Thread(target=self._read_replies, name=f"lambda-replies-{self.proc.pid}", daemon=True).start()
        threading.Thread(target=self._read_lines, name=f"lambda-logs-{self.proc.pid}", daemon=True).start()
        self.memory = memlimit.MemoryWatch(self.pid, spec.memory_size, self._over_memory) if enforce_memory else None

    def credentials_expiring(self) -> bool:
        """True when the worker's credentials expire within :data:`RENEW_CREDENTIALS_BEFORE_S`: replace it."""
        expires = self.credentials_expire_at
        return expires is not None and time.time() >= expires - RENEW_CREDENTIALS_BEFORE_S

    @property
    def out_of_memory(self) -> bool:
        """Return True when the worker was killed for going over its function's ``MemorySize``."""
        return self.memory is not None and self.memory.exceeded

    def _over_memory(self, used_mb: float) -> None:
        log.warning(
            "worker %s of %s uses %.0f MB, over its MemorySize of %d MB: killed (Runtime.OutOfMemory)",
            self.pid,
            self.spec.name,
            used_mb,
            self.spec.memory_size,
        )
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    @property
    def pid(self) -> int:
        """Return the worker's process id (also its process group id)."""
        return self.proc.pid

    def _read_replies(self) -> None:
        # The end-of-channel sentinel is always queued, whatever happens here, so nobody waits for a dead worker.
        pipe = self.proc.stdout
        assert pipe is not None
        try:
            for raw in pipe:
                try:
                    message = protocol.parse_message(raw)
                except ValueError:
                    log.warning("worker %s wrote a line that is not JSON on the reply channel: %r", self.pid, raw[:200])
                    continue
                if message.get("type") == protocol.DEBUGGER_MESSAGE:
                    self.debugger = {k: v for k, v in message.items() if k != "type"}
                else:
                    self.replies.put(message)
        except Exception:
            log.exception("reading the replies of worker %s failed", self.pid)
        finally:
            self.replies.put(None)
            with contextlib.suppress(OSError):
                pipe.close()

    def _read_lines(self) -> None:
        pipe = self.proc.stderr
        assert pipe is not None
        channel = protocol.LogChannel()
        try:
            for raw in pipe:
                for item in channel.feed(raw):
                    self.lines.put(item)
            for item in channel.close():
                self.lines.put(item)
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
                out.append((lambdalogs.now_ms(), text))
            elif kind == "eof" or text == phase:
                return out

    def wait_ready(self, timeout: float) -> None:
        """Wait for the handler import to finish; raise :class:`WorkerDied` when the worker gives up or hangs."""
        try:
            reply = self.replies.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            self.init_lines = self.collect(protocol.INIT_PHASE, 5.0)
            raise WorkerDied(f"init did not finish within {timeout:.0f} s") from None
        self.init_lines = self.collect(protocol.INIT_PHASE, protocol.MARK_WAIT_S)
        if reply is None:
            raise WorkerDied(self._exit_text())
        self.init_ms = float(reply.get("init_ms", 0.0))
        self.init_error = reply.get("error")

    def request(self, line: bytes, timeout: float, request_id: str = "") -> dict[str, Any] | None:
        """Send one request line; return its reply, or ``None`` on timeout. Raise :class:`WorkerDied` on a crash.

        Time during which the worker says the request ``request_id`` is stopped by the debugger (``clock``
        messages) is not counted: the timeout is extended by it.
        """
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(line)
            self.proc.stdin.flush()
        except (OSError, ValueError):  # ValueError: the pipe was closed because the worker was stopped
            raise WorkerDied(self._exit_text()) from None
        deadline = time.monotonic() + timeout
        paused_at: float | None = None
        try:
            while True:
                wait = None if paused_at is not None else max(0.0, deadline - time.monotonic())
                try:
                    reply = self.replies.get(timeout=wait)
                except queue.Empty:
                    return None
                if reply is None:
                    raise WorkerDied(self._exit_text())
                if reply.get("type") != protocol.CLOCK_MESSAGE:
                    return reply
                if reply.get("id") != request_id:
                    continue  # a late word about an earlier request
                if reply.get("paused") and paused_at is None:
                    paused_at = self.paused_since = time.monotonic()
                elif not reply.get("paused") and paused_at is not None:
                    deadline += time.monotonic() - paused_at
                    paused_at = self.paused_since = None
        finally:
            self.paused_since = None

    def debug_state(self) -> dict[str, Any]:
        """Return what the health document shows of a debug-mode worker: pid, attached, paused, stopped_s, error."""
        since = self.paused_since
        return {
            "pid": self.pid,
            "attached": bool(self.debugger.get("attached")),
            "paused": since is not None,
            "stopped_s": round(time.monotonic() - since, 1) if since is not None else 0.0,
            "error": self.debugger.get("error"),
        }

    def _exit_text(self) -> str:
        try:
            code = self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            code = None
        return protocol.exit_reason(code)

    def alive(self) -> bool:
        """Return True while the worker process runs."""
        return self.proc.poll() is None

    def kill(self) -> None:
        """Kill the worker's process group (the handler's own subprocesses included) and reap it."""
        if self.memory is not None:
            self.memory.stop()
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


class WorkerPool:
    """Workers of one function version (of function ``function``): at most ``size`` exist; idle ones are reused."""

    def __init__(self, size: int, function: str = "") -> None:
        self.size = size
        self.function = function
        self.idle: list[Worker] = []
        self.busy: set[Worker] = set()
        self.starting = 0
        self.retired = False
        self.cond = threading.Condition()

    def acquire(self) -> Worker | None:
        """Return an idle worker, or ``None`` when the caller may start a new one; block while the pool is full."""
        with self.cond:
            while True:
                while self.idle:
                    worker = self.idle.pop()
                    if worker.alive() and not worker.credentials_expiring():
                        self.busy.add(worker)
                        return worker
                    worker.kill()
                if len(self.busy) + self.starting < self.size:
                    self.starting += 1
                    return None
                self.cond.wait()

    def reserve(self) -> bool:
        """Reserve a slot for a first worker when the pool has none (idle, busy or starting); return whether it did.

        Never blocks; a True must be followed by :meth:`started`, as after :meth:`acquire` returned ``None``.
        """
        with self.cond:
            if self.retired or self.idle or self.busy or self.starting:
                return False
            self.starting += 1
            return True

    def started(self, worker: Worker | None) -> None:
        """Record that a slot reserved by :meth:`acquire` now holds ``worker`` (or was given up when ``None``)."""
        with self.cond:
            self.starting -= 1
            if worker is not None:
                self.busy.add(worker)
            self.cond.notify()

    def release(self, worker: Worker, healthy: bool) -> None:
        """Return ``worker`` to the pool, or kill it when it is broken or the pool was retired."""
        with self.cond:
            self.busy.discard(worker)
            keep = healthy and not self.retired and worker.alive()
            if keep:
                self.idle.append(worker)
            self.cond.notify()
        if not keep:
            worker.kill()

    def retire(self) -> list[Worker]:
        """Stop handing out workers; return the idle ones (to stop). Busy ones are killed when released."""
        with self.cond:
            self.retired = True
            idle, self.idle = self.idle, []
            self.cond.notify_all()
            return idle

    def all_workers(self) -> list[Worker]:
        """Return every worker of the pool, idle and busy."""
        with self.cond:
            return [*self.idle, *self.busy]

    def states(self) -> list[tuple[Worker, bool]]:
        """Return every worker of the pool with whether it runs an invocation now (busy)."""
        with self.cond:
            return [(w, False) for w in self.idle] + [(w, True) for w in self.busy]
