"""The function's log as Lambda writes it: where it goes (:class:`LogSink`) and the lines the platform adds.

Lambda frames a function's own output with ``INIT_START`` (a cold start), ``START``, ``END`` and ``REPORT`` lines,
and writes one log stream per execution environment (``2026/11/28/[$LATEST]<hex>``). The executor builds those
lines here and hands each invocation's batch to a :class:`LogSink` (moto's CloudWatch Logs in the embedded cloud).
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Protocol

LOG_RESULT_BYTES = 4096  # Invoke's LogResult holds the last 4 KB of the log.
#: The ``REPORT`` suffix of an invocation that timed out.
TIMEOUT_STATUS = "\tStatus: timeout"


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


def now_ms() -> int:
    """Return the current time in epoch milliseconds (a log event's timestamp)."""
    return int(time.time() * 1000)


def stream_name(version: str) -> str:
    """Return a new log stream name for one worker of function version ``version``, as Lambda names them."""
    return f"{datetime.now(UTC):%Y/%m/%d}/[{version}]{uuid.uuid4().hex}"


def init_start_line(runtime: str | None, python: str) -> str:
    """Return the ``INIT_START`` line of a cold start with interpreter ``python``."""
    return f"INIT_START Runtime Version: {runtime} (local executor, {python})"


def start_line(request_id: str, version: str) -> str:
    """Return the ``START`` line of an invocation."""
    return f"START RequestId: {request_id} Version: {version}"


def end_line(request_id: str) -> str:
    """Return the ``END`` line of an invocation."""
    return f"END RequestId: {request_id}"


def crash_message(request_id: str, reason: str) -> str:
    """Return the line (and error message) for a worker that died during an invocation."""
    return f"RequestId: {request_id} Error: {reason}"


def timeout_message(request_id: str, timeout: float) -> str:
    """Return Lambda's timeout line, ``<timestamp> <request id> Task timed out after N.00 seconds``."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return f"{stamp} {request_id} Task timed out after {timeout:.2f} seconds"


def report_line(
    request_id: str,
    duration_ms: float,
    memory_size: int,
    max_memory_mb: int,
    init_ms: float | None = None,
    status: str = "",
) -> str:
    """Return the ``REPORT`` line: durations, memory, ``Init Duration`` on a cold start, then ``status``.

    ``status`` is empty for a normal end, else Lambda's suffix (:data:`TIMEOUT_STATUS`, :func:`error_status`).
    """
    report = (
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
        f"Billed Duration: {max(1, math.ceil(duration_ms))} ms\tMemory Size: {memory_size} MB\t"
        f"Max Memory Used: {max_memory_mb} MB"
    )
    if init_ms is not None:
        report += f"\tInit Duration: {init_ms:.2f} ms"
    return report + status


def error_status(error_type: str) -> str:
    """Return the ``REPORT`` suffix of an invocation that ended in a runtime error of ``error_type``."""
    return f"\tStatus: error\tError Type: {error_type}"


def log_tail(lines: list[str]) -> str:
    """Return the last 4 KB of ``lines`` (one invocation's log), as Invoke's ``LogResult`` (before base64) holds it."""
    text = "\n".join(lines) + "\n"
    return text.encode()[-LOG_RESULT_BYTES:].decode("utf-8", errors="ignore")


def paused_line(paused_ms: float) -> str:
    """Return the log line of an invocation that was stopped by the debugger for ``paused_ms`` in all."""
    return (
        f"local executor: debugger: this invocation was stopped for {paused_ms / 1000:.2f} s in all; "
        "its timeout did not count that time"
    )
