"""Worker bootstrap of the local Lambda executor: imports a handler once, then serves invocations.

This file runs inside the worker subprocess, under whichever interpreter the executor picked (python3.13 for the
python3.13 runtime when one is installed, else the project's). It must therefore use the standard library only and
must not import ``localcloud``.

Channels (set up by :func:`main`):

- fd 0 (the executor writes): one JSON request per line, ``{"id", "event", "deadline_ms", "context"}``.
- the original fd 1 (the executor reads): one JSON message per line, first ``{"type": "ready", ...}`` after the
  handler module was imported, then one ``{"type": "result", ...}`` per request.
- fd 2 (the executor reads): everything the function writes (``print``, logging, Powertools JSON logs, C-level
  writes). fd 1 is redirected there too, so the handler cannot corrupt the protocol. After init and after each
  invocation a marker line (``MARK``) tells the executor that all output of that phase has been written.

The environment variable ``LOCALCLOUD_SYS_PATH`` (JSON list) holds the directories put in front of ``sys.path``:
the function code (``/var/task`` on Lambda) and the layers' ``python`` directories (``/opt/python``).

Debug mode (``LOCALCLOUD_DEBUG``, JSON ``{"host", "port", "path"}``; see :mod:`localcloud.debugger`): ``path`` (a
directory holding only a link to debugpy) is appended to ``sys.path``, debugpy listens on ``host:port`` in this
process before the handler is imported, and a :class:`DebugClock` thread reports on the reply channel whether a
debugger is attached (``{"type": "debugger", "attached"}``) and, during an invocation, each stop and resume
(``{"type": "clock", "id", "paused"}``), so the executor stops the invocation's timeout clock while it is stopped.
The remaining time the handler sees leaves the stopped time out too.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

MARK = "\x1elocalcloud-phase-done"
#: The debug settings' variable (``localcloud.debugger.DEBUG_ENV`` is this one).
DEBUG_ENV = "LOCALCLOUD_DEBUG"
#: How often the debug clock looks whether a thread is stopped by the debugger.
DEBUG_POLL_S = 0.05


class LambdaContext:
    """The ``context`` argument handed to the handler, with the attributes of AWS's Python runtime."""

    def __init__(
        self, request_id: str, deadline_ms: int, ctx: dict[str, Any], paused_ms: Callable[[], float] | None = None
    ) -> None:
        self.aws_request_id = request_id
        self.function_name = ctx.get("function_name", "")
        self.function_version = ctx.get("function_version", "$LATEST")
        self.invoked_function_arn = ctx.get("invoked_function_arn", "")
        self.memory_limit_in_mb = str(ctx.get("memory_limit_in_mb", "128"))
        self.log_group_name = ctx.get("log_group_name", "")
        self.log_stream_name = ctx.get("log_stream_name", "")
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms
        self._paused_ms = paused_ms

    def get_remaining_time_in_millis(self) -> int:
        """Return the milliseconds left before the executor kills this invocation (never negative).

        In debug mode the time the invocation spent stopped by the debugger does not count.
        """
        paused = self._paused_ms() if self._paused_ms is not None else 0.0
        return max(0, int(self._deadline_ms + paused - time.time() * 1000))


class Replies:
    """The reply channel: one JSON message per line, written whole by one thread at a time."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        """Write ``message`` as one line."""
        line = json.dumps(message) + "\n"
        with self._lock:
            self._stream.write(line)
            self._stream.flush()


def stopped_by_debugger(skip: int) -> bool:
    """Return True when a thread other than ``skip`` (a thread id) waits in the debugger (breakpoint, step, pause).

    Such a thread runs pydevd's ``do_wait_suspend`` until the debugger resumes it; looking for that frame in every
    thread's stack needs no debugger internals beyond that function's name.
    """
    for ident, frame in sys._current_frames().items():
        if ident == skip:
            continue
        while frame is not None:
            code = frame.f_code
            if code.co_name == "do_wait_suspend" and code.co_filename.endswith("pydevd.py"):
                return True
            frame = frame.f_back
    return False


class DebugClock:
    """Debug mode's watcher: reports attach and detach, and the time an invocation is stopped by the debugger.

    A daemon thread (hidden from the debugger) looks every :data:`DEBUG_POLL_S` seconds; during an invocation
    (between :meth:`begin` and :meth:`end`) it sends ``{"type": "clock", "id", "paused"}`` at each stop and resume
    and adds up the stopped time (:meth:`paused_ms`).
    """

    def __init__(self, replies: Replies, attached: Callable[[], bool]) -> None:
        self._replies = replies
        self._attached = attached
        self._lock = threading.Lock()
        self._request_id: str | None = None
        self._paused_since: float | None = None
        self._paused_total = 0.0
        thread = threading.Thread(target=self._run, name="localcloud-debug-clock", daemon=True)
        thread.is_pydev_daemon_thread = True  # type: ignore[attr-defined]  # pydevd neither traces nor stops it
        thread.start()

    def begin(self, request_id: str) -> None:
        """Start watching the invocation ``request_id``."""
        with self._lock:
            self._request_id, self._paused_since, self._paused_total = request_id, None, 0.0

    def end(self) -> float:
        """Stop watching the current invocation; return the milliseconds it was stopped (a resume is sent first)."""
        with self._lock:
            self._resume(time.monotonic())
            self._request_id = None
            return self._paused_total * 1000

    def paused_ms(self) -> float:
        """Return the milliseconds the current invocation has been stopped so far (now included)."""
        with self._lock:
            ongoing = time.monotonic() - self._paused_since if self._paused_since is not None else 0.0
            return (self._paused_total + ongoing) * 1000

    def _resume(self, now: float) -> None:
        if self._paused_since is not None and self._request_id is not None:
            self._paused_total += now - self._paused_since
            self._paused_since = None
            self._replies.send({"type": "clock", "id": self._request_id, "paused": False})

    def _run(self) -> None:
        me = threading.get_ident()
        attached: bool | None = None
        failed = False
        while True:
            try:
                now_attached = bool(self._attached())
                if now_attached != attached:
                    attached = now_attached
                    self._replies.send({"type": "debugger", "attached": attached})
                stopped = stopped_by_debugger(me)
                with self._lock:
                    now = time.monotonic()
                    if self._request_id is None:
                        pass
                    elif stopped and self._paused_since is None:
                        self._paused_since = now
                        self._replies.send({"type": "clock", "id": self._request_id, "paused": True})
                    elif not stopped:
                        self._resume(now)
            except Exception as exc:  # the watcher must never stop the function; say why once and go on
                if not failed:
                    failed = True
                    sys.stderr.write(f"local executor: debugger: the debug clock failed: {exc!r}\n")
            time.sleep(DEBUG_POLL_S)


def start_debugger(replies: Replies) -> DebugClock | None:
    """Listen for a debugger when :data:`DEBUG_ENV` asks for it; return the clock, or ``None`` (not asked, or failed).

    A failure (debugpy missing, port taken) is written to the function's log and reported on the reply channel as
    ``{"type": "debugger", "error"}``; the function then runs without a debugger.
    """
    raw = os.environ.pop(DEBUG_ENV, "")
    if not raw:
        return None
    settings = json.loads(raw)
    address = f"{settings['host']}:{settings['port']}"
    sys.path.append(settings["path"])
    try:
        import debugpy

        debugpy.listen((settings["host"], int(settings["port"])), in_process_debug_adapter=True)
    except Exception as exc:
        message = f"cannot listen on {address}: {exc}"
        sys.stderr.write(f"local executor: debugger: {message}; the function runs without a debugger\n")
        replies.send({"type": "debugger", "error": message})
        return None
    sys.stderr.write(f"local executor: debugger: debugpy waits for a debugger on {address}\n")
    return DebugClock(replies, debugpy.is_client_connected)


def _error(
    exc: BaseException, error_type: str | None = None, message: str | None = None, skip: int = 0
) -> dict[str, Any]:
    """Return Lambda's error document for ``exc``; ``skip`` drops this bootstrap's own outermost frames."""
    tb = exc.__traceback__
    for _ in range(skip):
        tb = tb.tb_next if tb is not None else None
    frames = traceback.extract_tb(tb)
    return {
        "errorMessage": message if message is not None else str(exc),
        "errorType": error_type or type(exc).__name__,
        "stackTrace": traceback.format_list(frames),
    }


def _error_log(error: dict[str, Any]) -> str:
    lines = [f"[ERROR] {error['errorType']}: {error['errorMessage']}"]
    if error.get("stackTrace"):
        lines.append("Traceback (most recent call last):")
        lines.extend(frame.rstrip("\n") for frame in error["stackTrace"])
    return "\n".join(lines)


def _mark(phase: str) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(2, f"\n{MARK} {phase}\n".encode())


def _load_handler(handler: str) -> tuple[Any, dict[str, Any] | None]:
    module_name, _, func_name = handler.rpartition(".")
    if not module_name or not func_name:
        return None, {
            "errorType": "Runtime.MalformedHandlerName",
            "errorMessage": f"Bad handler '{handler}': not enough values to unpack (expected 2, got 1)",
            "stackTrace": [],
        }
    module_name = module_name.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        return None, _error(exc, "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}")
    except Exception as exc:  # the module raised while being imported
        return None, _error(exc, "Runtime.UserCodeSyntaxError" if isinstance(exc, SyntaxError) else None)
    func = getattr(module, func_name, None)
    if func is None:
        return None, {
            "errorType": "Runtime.HandlerNotFound",
            "errorMessage": f"Handler '{func_name}' missing on module '{module_name}'",
            "stackTrace": [],
        }
    return func, None


def _max_rss_mb() -> int:
    """Return this worker's peak resident memory in MB (for the life of the worker, as Lambda reports it).

    ``VmHWM`` is read from /proc because ``ru_maxrss`` survives ``exec`` and would include the parent's memory
    at fork time; ``ru_maxrss`` is the fallback where /proc is missing.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main() -> int:
    """Set up the channels, import the handler, answer requests until stdin closes; return the exit status."""
    own_dir = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if p and os.path.abspath(p) != own_dir]
    sys.path[0:0] = json.loads(os.environ.pop("LOCALCLOUD_SYS_PATH", "[]"))

    requests = os.fdopen(os.dup(0), "rb")
    replies = Replies(os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1))
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)

    for note in json.loads(os.environ.pop("LOCALCLOUD_INIT_NOTES", "[]")):
        sys.stderr.write(note + "\n")
    clock = start_debugger(replies)

    started = time.perf_counter()
    handler, init_error = _load_handler(os.environ.get("_HANDLER", ""))
    init_ms = (time.perf_counter() - started) * 1000
    if init_error:
        sys.stderr.write(_error_log(init_error) + "\n")
    _mark("init")
    replies.send({"type": "ready", "init_ms": init_ms, "error": init_error})
    if init_error:
        return 1

    for raw in requests:
        request = json.loads(raw)
        request_id = request["id"]
        paused_ms = clock.paused_ms if clock is not None else None
        context = LambdaContext(request_id, request["deadline_ms"], request.get("context", {}), paused_ms)
        reply: dict[str, Any] = {"type": "result", "id": request_id}
        if clock is not None:
            clock.begin(request_id)
        started = time.perf_counter()
        try:
            result = handler(request["event"], context)
        except Exception as exc:
            error = _error(exc, skip=1)
            reply.update(ok=False, error=error, error_log=_error_log(error))
        else:
            try:
                reply.update(ok=True, payload=json.dumps(result))
            except (TypeError, ValueError) as exc:
                error = {
                    "errorType": "Runtime.MarshalError",
                    "errorMessage": f"Unable to marshal response: {exc}",
                    "stackTrace": [],
                }
                reply.update(ok=False, error=error, error_log=_error_log(error))
        reply["duration_ms"] = (time.perf_counter() - started) * 1000
        if clock is not None:
            reply["paused_ms"] = clock.end()
        reply["max_memory_mb"] = _max_rss_mb()
        _mark(request_id)
        replies.send(reply)
    return 0


if __name__ == "__main__":
    sys.exit(main())
