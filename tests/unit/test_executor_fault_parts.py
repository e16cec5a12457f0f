"""Faults of the local Lambda executor that need no worker process: the memory watch, and the asynchronous invoker
with functions whose spec cannot be built (failed attempts, retries, the on-failure destination, shutdown).

Faults of real workers (killed, timed out, out of memory) are in ``tests/integration/test_executor_faults.py``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from localcloud import memlimit
from localcloud.asyncinvoke import AsyncInvoker, EventInvokeSettings
from localcloud.executor import ListLogSink, LocalExecutor
from localcloud.invocation import FunctionRef, FunctionSpec

ARN = "arn:aws:lambda:eu-west-1:123456789012:function:broken"


class ListDestinations:
    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []

    def send(self, destination_arn: str, record: dict[str, Any]) -> None:
        self.records.append((destination_arn, record))


def unbuildable(message: str, before: threading.Event | None = None, until: threading.Event | None = None):
    """A function reference whose spec cannot be built (as a zip that cannot be unpacked): it raises ``message``."""

    def build() -> FunctionSpec:
        if before is not None:
            before.set()
        if until is not None:
            until.wait(30)
        raise ValueError(message)

    return FunctionRef("broken", ARN, "$LATEST", build)


@pytest.fixture
def executor(tmp_path: Path):
    executor = LocalExecutor(tmp_path / "cache", "http://127.0.0.1:9", ListLogSink(), concurrency=1)
    yield executor
    executor.shutdown()


def test_the_memory_setting_is_on_by_default_and_refuses_words_it_does_not_know():
    assert memlimit.enforce_from_env({}) is True
    assert memlimit.enforce_from_env({memlimit.ENFORCE_ENV: "1"}) is True
    assert memlimit.enforce_from_env({memlimit.ENFORCE_ENV: " Off "}) is False
    assert memlimit.enforce_from_env({memlimit.ENFORCE_ENV: "0"}) is False
    with pytest.raises(ValueError, match="LOCALCLOUD_ENFORCE_MEMORY must be 1 .* or 0"):
        memlimit.enforce_from_env({memlimit.ENFORCE_ENV: "sometimes"})


def test_resident_memory_is_read_from_proc_and_a_missing_process_has_none():
    own = memlimit.rss_mb(os.getpid())

    assert own is not None and own > 1
    assert memlimit.rss_mb(2**22 + 1) is None  # above the kernel's pid_max: no such process


def test_the_memory_watch_calls_back_once_when_the_process_is_over_its_limit():
    seen: list[float] = []
    called = threading.Event()

    def exceeded(used: float) -> None:
        seen.append(used)
        called.set()

    watch = memlimit.MemoryWatch(os.getpid(), 1, exceeded, interval=0.01)

    assert called.wait(10)
    time.sleep(0.05)  # a second sample would call again: it must not
    assert len(seen) == 1 and seen[0] > 1
    assert watch.exceeded and watch.exceeded_mb == seen[0]


def test_a_watch_under_the_limit_stays_quiet_until_stopped():
    seen: list[float] = []
    watch = memlimit.MemoryWatch(os.getpid(), 1_000_000, seen.append, interval=0.01)
    time.sleep(0.05)
    watch.stop()

    assert seen == [] and not watch.exceeded


def test_a_spec_that_cannot_be_built_is_a_failed_attempt_retried_then_sent_on_failure(executor):
    destinations = ListDestinations()
    invoker = AsyncInvoker(executor, destinations, retry_delays=(0.0,), threads=1)
    settings = EventInvokeSettings(maximum_retry_attempts=2, on_failure="arn:failed")
    try:
        request_id = invoker.submit(unbuildable("the deployed code zip is not a valid zip file"), {"n": 1}, settings)
        assert invoker.wait_idle(30)
    finally:
        invoker.shutdown()

    [(arn, record)] = destinations.records
    assert arn == "arn:failed"
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": f"{ARN}:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["requestPayload"] == {"n": 1}
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"] == "Runtime.ExitError"
    assert "not a valid zip file" in record["responsePayload"]["errorMessage"]


def test_shutdown_says_how_many_invocations_it_drops_and_returns_the_count(executor, caplog):
    destinations = ListDestinations()
    invoker = AsyncInvoker(executor, destinations, retry_delays=(60.0,), threads=1)
    settings = EventInvokeSettings(maximum_retry_attempts=2, on_failure="arn:failed")
    building, release = threading.Event(), threading.Event()
    invoker.submit(unbuildable("fails at once"), {"n": 1}, settings)  # then waits 60 s to retry
    invoker.submit(unbuildable("slow", before=building, until=release), {"n": 2}, settings)  # running
    invoker.submit(unbuildable("queued"), {"n": 3}, settings)
    invoker.submit(unbuildable("queued"), {"n": 4}, settings)
    assert building.wait(30)
    threading.Timer(0.5, release.set).start()  # lets the running attempt end while shutdown waits for the thread

    with caplog.at_level(logging.WARNING, logger="localcloud.asyncinvoke"):
        dropped = invoker.shutdown()

    assert dropped == 4
    assert (
        "shutting down with 4 asynchronous invocation(s) not finished (2 queued, 1 waiting to retry, 1 running); "
        "they are dropped" in caplog.messages
    )
    assert destinations.records == []
    with pytest.raises(RuntimeError, match="shut down"):
        invoker.submit(unbuildable("late"), {"n": 5}, settings)


def test_shutdown_of_an_idle_invoker_drops_nothing_and_says_nothing(executor, caplog):
    invoker = AsyncInvoker(executor, ListDestinations(), threads=1)

    with caplog.at_level(logging.WARNING, logger="localcloud.asyncinvoke"):
        assert invoker.shutdown() == 0

    assert not [m for m in caplog.messages if "shutting down" in m]
