"""The executor's side of the pipe protocol with a worker (the other side is :mod:`localcloud.bootstrap`).

A worker is ``python -u bootstrap.py`` with three pipes:

- stdin: one JSON request per line (:func:`request_line`);
- stdout: one JSON message per line (:func:`parse_message`), first ``{"type": "ready", "init_ms", "error"}`` once
  the handler is imported, then one ``{"type": "result", "ok", "payload" | "error", "error_log", "duration_ms",
  "max_memory_mb"}`` per request; in debug mode (:mod:`localcloud.debugger`) also, at any time,
  ``{"type": "debugger", "attached" | "error"}`` and, during a request, ``{"type": "clock", "id", "paused"}`` at
  each stop and resume by the debugger (and ``paused_ms`` in the result);
- stderr: everything the function writes, with a marker line (``bootstrap.MARK`` + phase) after the init phase
  and after each request; :class:`LogChannel` splits that stream into log lines and phase marks.

Everything here is pure (no process, no thread): the worker process itself is :class:`localcloud.workers.Worker`.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localcloud import bootstrap

if TYPE_CHECKING:
    from localcloud.invocation import FunctionSpec

BOOTSTRAP = Path(bootstrap.__file__).resolve()
# How long to wait for the end-of-phase marker on the log channel after the reply arrived. The worker writes the
# marker before the reply, so it is already in the pipe; only a busy machine delays its reader thread.
MARK_WAIT_S = 30.0
INIT_PHASE = "init"
#: Message types of debug mode on the reply channel (see the module docstring).
DEBUGGER_MESSAGE, CLOCK_MESSAGE = "debugger", "clock"

#: What :class:`LogChannel` yields: ``("line", text)`` for a log line, ``("mark", phase)`` at the end of a phase.
LogItem = tuple[str, str]


def worker_command(python: str, debug: bool = False) -> list[str]:
    """Return the command line of a worker run by interpreter ``python``.

    With ``debug`` the standard library's frozen modules are off, as debugpy asks, so breakpoints in them bind.
    """
    return [python, "-u", *(["-Xfrozen_modules=off"] if debug else []), str(BOOTSTRAP)]


def request_line(spec: FunctionSpec, request_id: str, event: Any, stream: str) -> bytes:
    """Return the request line for one invocation of ``spec`` with ``event`` (deadline: now + the timeout)."""
    request = {
        "id": request_id,
        "event": event,
        "deadline_ms": int(time.time() * 1000 + spec.timeout * 1000),
        "context": {
            "function_name": spec.name,
            "function_version": spec.version,
            "invoked_function_arn": spec.arn,
            "memory_limit_in_mb": spec.memory_size,
            "log_group_name": spec.log_group,
            "log_stream_name": stream,
        },
    }
    return json.dumps(request).encode() + b"\n"


def parse_message(raw: bytes) -> dict[str, Any]:
    """Return the message on one line of the reply channel; raise ``ValueError`` when it is not a JSON object."""
    message = json.loads(raw)
    if not isinstance(message, dict):
        raise ValueError(f"expected a JSON object, got {type(message).__name__}")
    return message


def result_error(reply: dict[str, Any]) -> dict[str, Any] | None:
    """Return the error of a ``result`` message (``None`` when the handler returned normally)."""
    if reply.get("ok"):
        return None
    return reply.get("error") or {"errorType": "Unknown", "errorMessage": "no error details"}


def result_payload(reply: dict[str, Any]) -> bytes:
    """Return the handler's JSON result carried by a successful ``result`` message."""
    return str(reply.get("payload", "null")).encode()


def result_duration_ms(reply: dict[str, Any] | None, fallback_ms: float) -> float:
    """Return the handler's run time measured by the worker, or ``fallback_ms`` when there is no such reply."""
    return float(reply["duration_ms"]) if reply and "duration_ms" in reply else fallback_ms


def result_max_memory_mb(reply: dict[str, Any] | None) -> int:
    """Return the worker's peak memory in MB from a ``result`` message (0 when unknown)."""
    return int(reply["max_memory_mb"]) if reply and "max_memory_mb" in reply else 0


def exit_reason(code: int | None) -> str:
    """Return Lambda's words for a worker that ended with exit status ``code`` (``None``: it has not exited).

    A signal is named as Lambda's runtime (Go's ``os.ProcessState``) names it: the C library's description in
    lower case, ``signal: killed`` for SIGKILL, ``signal: segmentation fault`` for SIGSEGV.
    """
    if code is None:
        return "Runtime exited without providing a reason"
    if code < 0:
        try:
            words = signal.strsignal(-code)
        except ValueError:
            words = None
        return f"Runtime exited with error: signal: {(words or f'signal {-code}').lower()}"
    return f"Runtime exited with error: exit status {code}"


class LogChannel:
    """Splits a worker's stderr into log lines and phase marks.

    The worker writes a blank line before each marker (so the marker starts a line even after output without a
    newline); that blank line is not the function's and is dropped. Other blank lines are kept.
    """

    def __init__(self) -> None:
        self._held_blank = False

    def feed(self, raw: bytes) -> list[LogItem]:
        """Return the items of one raw line of stderr (a blank line is held until the next line shows its kind)."""
        text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        items: list[LogItem] = []
        if bootstrap.MARK in text:
            before, _, phase = text.partition(bootstrap.MARK)
            if before:
                items.append(("line", before))
            items.append(("mark", phase.strip()))
            self._held_blank = False
            return items
        if self._held_blank:
            items.append(("line", ""))
        self._held_blank = text == ""
        if not self._held_blank:
            items.append(("line", text))
        return items

    def close(self) -> list[LogItem]:
        """Return what is still held at the end of the stream (a trailing blank line)."""
        held, self._held_blank = self._held_blank, False
        return [("line", "")] if held else []
