"""Reserved concurrency in the embedded cloud's asynchronous invoker, with no worker process: a throttled event is
no attempt, waits in the queue until a unit of concurrency frees, and leaves only when it is too old.

Through the real server and a real function (429 for a synchronous invocation, a burst of asynchronous ones), on
both local backends: ``tests/integration/test_throttling.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from localcloud.asyncinvoke import AsyncInvoker, EventInvokeSettings
from localcloud.concurrency import ReservedConcurrency
from localcloud.executor import ListLogSink, LocalExecutor
from localcloud.invocation import FunctionRef, FunctionSpec
from tests.stacks import poll
from tests.unit.test_executor_fault_parts import ListDestinations

ARN = "arn:aws:lambda:eu-west-1:123456789012:function:busy"


@pytest.fixture
def executor(tmp_path: Path):
    executor = LocalExecutor(tmp_path / "cache", "http://127.0.0.1:9", ListLogSink(), concurrency=1)
    yield executor
    executor.shutdown()


def counted_ref(builds: list[int]) -> FunctionRef:
    """A function whose spec cannot be built (so an attempt fails without a worker); ``builds`` counts attempts."""

    def build() -> FunctionSpec:
        builds.append(1)
        raise ValueError("no code")

    return FunctionRef("busy", ARN, "$LATEST", build)


def test_each_function_gets_at_most_its_reservation_and_a_freed_unit_is_taken_again():
    limits = {ARN: 2, "other": None}
    concurrency = ReservedConcurrency(limits.get)

    assert [concurrency.acquire(ARN) for _ in range(3)] == [True, True, False]
    assert all(concurrency.acquire("other") for _ in range(5))  # unreserved: not limited
    assert concurrency.in_flight() == {ARN: 2, "other": 5}
    concurrency.release(ARN)
    assert concurrency.acquire(ARN)
    limits[ARN] = 0  # PutFunctionConcurrency 0 applies to the next invocation
    for _ in range(3):
        concurrency.release(ARN)
    assert not concurrency.acquire(ARN)
    assert concurrency.throttles() == 2
    assert concurrency.in_flight() == {"other": 5}


def test_a_throttled_event_is_no_attempt_and_runs_when_a_unit_frees(executor):
    concurrency = ReservedConcurrency(lambda arn: 1)
    assert concurrency.acquire(ARN)  # another invocation holds the function's only unit
    destinations, builds = ListDestinations(), []
    invoker = AsyncInvoker(executor, destinations, threads=1, concurrency=concurrency, throttle_delays=(0.01,))
    settings = EventInvokeSettings(maximum_retry_attempts=0, on_failure="arn:failed")
    try:
        invoker.submit(counted_ref(builds), {"n": 1}, settings)
        poll(lambda: concurrency.throttles() >= 5, timeout=30, interval=0.01, what="five throttles")
        assert invoker.pending() == 1 and builds == []  # tried again and again, never run, still queued
        concurrency.release(ARN)
        assert invoker.wait_idle(30)
    finally:
        invoker.shutdown()

    [(_, record)] = destinations.records
    assert builds == [1]  # one attempt, after the throttles: MaximumRetryAttempts 0 was not used up by them
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert concurrency.in_flight() == {}


def test_an_event_throttled_past_its_maximum_age_leaves_as_event_age_exceeded_without_running(executor):
    concurrency = ReservedConcurrency(lambda arn: 0)  # reserved concurrency 0: the function never runs
    destinations, builds = ListDestinations(), []
    invoker = AsyncInvoker(executor, destinations, threads=1, concurrency=concurrency, throttle_delays=(0.05,))
    settings = EventInvokeSettings(maximum_retry_attempts=2, maximum_event_age_s=1, on_failure="arn:failed")
    try:
        request_id = invoker.submit(counted_ref(builds), {"n": 2}, settings)
        assert invoker.wait_idle(30)
    finally:
        invoker.shutdown()

    [(arn, record)] = destinations.records
    assert arn == "arn:failed" and builds == []
    assert concurrency.throttles() > 1
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": f"{ARN}:$LATEST",
        "condition": "EventAgeExceeded",
        "approximateInvokeCount": 0,
    }
    assert record["requestPayload"] == {"n": 2} and record["responsePayload"] is None
