"""Persistence's parts that need no server process: the invoker's drain and hand-over, a saved event queued again,
the save endpoint (drain, gate, save) on moto in process, and the ``persist/`` folder's files.

The whole cycle on a real stack (``make local-up PERSIST=1``, ``local-down``, ``local-up``) is in
``tests/integration/test_persist.py``.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localcloud import persistence, server, snapshot
from localcloud.asyncinvoke import AsyncInvoker, EventInvokeSettings
from localcloud.executor import ListLogSink, LocalExecutor
from localcloud.invocation import FunctionRef, FunctionSpec
from ops import datadir
from tests.unit.test_executor_fault_parts import ListDestinations

ARN = "arn:aws:lambda:eu-west-1:123456789012:function:fn"
REGION = "eu-west-1"


def failing(before: threading.Event | None = None, until: threading.Event | None = None) -> FunctionRef:
    """A function whose spec cannot be built (a failed attempt), optionally after waiting for ``until``."""

    def build() -> FunctionSpec:
        if before is not None:
            before.set()
        if until is not None:
            until.wait(30)
        raise ValueError("no code")

    return FunctionRef("fn", ARN, "$LATEST", build)


@pytest.fixture
def executor(tmp_path: Path):
    executor = LocalExecutor(tmp_path / "cache", "http://127.0.0.1:9", ListLogSink(), concurrency=1)
    yield executor
    executor.shutdown()


def test_a_drain_hands_over_every_unfinished_invocation_and_shutdown_drops_none(executor, caplog):
    invoker = AsyncInvoker(executor, ListDestinations(), retry_delays=(60.0,), threads=1)
    settings = EventInvokeSettings(maximum_retry_attempts=2, on_failure="arn:failed")
    running, release = threading.Event(), threading.Event()
    retrying = invoker.submit(failing(), {"n": 1}, settings)  # fails at once, then waits 60 s to retry
    poll_until(lambda: invoker.running() == [] and invoker.pending() == 1)
    cut = invoker.submit(failing(before=running, until=release), {"n": 2}, settings)  # still running at the save
    assert running.wait(30)
    queued = invoker.submit(failing(), {"n": 3}, settings)

    assert invoker.drain(0.2) is False  # one attempt is still running
    late = invoker.submit(failing(), {"n": 4}, settings)  # an upload racing the drain: queued, not run
    jobs = invoker.take()
    records = {job.request_id: job.record(interrupted=invoker.interrupted(job)) for job in jobs}
    invoker.hand_over(jobs)
    release.set()

    assert set(records) == {retrying, cut, queued, late}
    assert records[retrying]["attempts"] == 1  # one failed attempt so far
    assert records[cut]["attempts"] == 0  # cut short by the stop: not the function's failure
    assert records[queued]["attempts"] == records[late]["attempts"] == 0
    assert records[cut] | {"queued_at": 0} == {
        "request_id": cut,
        "function_arn": ARN,
        "version": "$LATEST",
        "event": {"n": 2},
        "attempts": 0,
        "queued_at": 0,
    }
    json.dumps(records)  # plain data, saved with the state
    with caplog.at_level(logging.INFO, logger="localcloud.asyncinvoke"):
        assert invoker.shutdown() == 0
    assert "4 asynchronous invocation(s) were saved for the next start" in caplog.messages
    assert not [message for message in caplog.messages if "dropped" in message]


def test_a_saved_event_keeps_its_request_id_attempts_and_age(executor):
    destinations = ListDestinations()
    invoker = AsyncInvoker(executor, destinations, retry_delays=(0.0,), threads=1)
    settings = EventInvokeSettings(maximum_retry_attempts=2, maximum_event_age_s=60, on_failure="arn:failed")
    try:
        saved = {"request_id": "saved-1", "attempts": 2, "queued_at": time.time() - 5}
        assert invoker.submit(failing(), {"n": 1}, settings, saved=saved) == "saved-1"
        expired = {"request_id": "saved-2", "attempts": 1, "queued_at": time.time() - 3600}  # down for an hour
        invoker.submit(failing(), {"n": 2}, settings, saved=expired)
        assert invoker.wait_idle(30)
    finally:
        invoker.shutdown()

    contexts = {record["requestContext"]["requestId"]: record["requestContext"] for _, record in destinations.records}
    assert contexts["saved-1"]["condition"] == "RetriesExhausted"
    assert contexts["saved-1"]["approximateInvokeCount"] == 3  # two before the stop, one after
    assert contexts["saved-2"]["condition"] == "EventAgeExceeded"  # the time it was down counts, as on AWS
    assert contexts["saved-2"]["approximateInvokeCount"] == 1


def test_resuming_after_a_failed_save_runs_the_drained_invocations(executor):
    destinations = ListDestinations()
    invoker = AsyncInvoker(executor, destinations, retry_delays=(0.0,), threads=1)
    settings = EventInvokeSettings(maximum_retry_attempts=0, on_failure="arn:failed")
    try:
        invoker.drain(1.0)
        invoker.submit(failing(), {"n": 1}, settings)
        jobs = invoker.take()
        assert len(jobs) == 1 and destinations.records == []
        invoker.resume(jobs)
        assert invoker.wait_idle(30)
    finally:
        invoker.shutdown()
    assert [record["requestPayload"] for _, record in destinations.records] == [{"n": 1}]


def call(app: Any, method: str, path: str, body: bytes = b"") -> tuple[str, dict[str, Any]]:
    seen: dict[str, str] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"] = status

    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    chunks = app(environ, start_response)
    return seen["status"], json.loads(b"".join(chunks))


@mock_aws
def test_the_save_endpoint_drains_gates_and_saves_the_data_with_the_unfinished_invocations(executor, tmp_path):
    s3 = boto3.client("s3", region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")
    s3.create_bucket(Bucket="src", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket="src", Key="a.txt", Body=b"a", Metadata={"k": "v"}, Tagging="t=1")
    sqs = boto3.client("sqs", region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")
    sqs.send_message(QueueUrl=sqs.create_queue(QueueName="dlq")["QueueUrl"], MessageBody="dead")
    invoker = AsyncInvoker(executor, ListDestinations(), retry_delays=(60.0,), threads=1)
    invoker.drain(0)  # nothing runs: the event below stays queued
    invoker.submit(failing(), {"n": 1}, EventInvokeSettings())
    target = tmp_path / "persist" / "emulator.pickle"

    def moto(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b'{"moto": true}']

    app = persistence.PersistMiddleware(moto, target, invoker, server.PERSIST_PATH)
    off = persistence.PersistMiddleware(moto, None, invoker, server.PERSIST_PATH)
    try:
        assert call(app, "GET", "/anything") == ("200 OK", {"moto": True})
        assert call(app, "GET", server.PERSIST_PATH)[0].startswith("405")
        status, body = call(off, "POST", server.PERSIST_PATH)
        assert status.startswith("404") and "--persist-file" in body["error"]
        assert call(app, "POST", server.PERSIST_PATH, b"not json")[0].startswith("400")

        status, body = call(app, "POST", server.PERSIST_PATH, b'{"drain_s": 1}')
        assert status == "200 OK", body
        assert body["counts"] == {"objects": 1, "messages": 1, "log_events": 0}
        assert body["pending_async"] == 1 and body["interrupted"] == 0
        status, body = call(app, "GET", "/anything")  # after the save, nothing changes the state any more
        assert status.startswith("503") and body["__type"] == "ServiceUnavailable"
    finally:
        invoker.shutdown()

    loaded = snapshot.load(target)
    assert [record["event"] for record in loaded["extra"]["pending_async"]] == [{"n": 1}]
    assert s3.get_object_tagging(Bucket="src", Key="a.txt")["TagSet"] == [{"Key": "t", "Value": "1"}]


def test_the_persist_folder_is_complete_only_once_down_committed_it(tmp_path: Path):
    folder = datadir.Persisted(tmp_path / "persist")
    assert folder.session() is None and folder.meta() is None
    folder.begin("embedded", {"port": "4566"}, {"source_bucket": "src"})
    assert folder.session() == {
        "format": datadir.FORMAT,
        "backend": "embedded",
        "fingerprint": {"port": "4566"},
        "outputs": {"source_bucket": "src"},
    }
    tfstate = tmp_path / "terraform.tfstate"
    tfstate.write_text("{}")
    folder.emulator_file.write_bytes(b"state")
    saved = {"counts": {"objects": 500, "messages": 2, "log_events": 40}, "pending_async": 1}
    meta = folder.commit(folder.session() or {}, tfstate, saved)
    folder.end()

    assert folder.session() is None
    assert folder.meta("embedded") == meta and folder.meta("ministack") is None
    assert datadir.describe(meta, 3_000_000).startswith(
        "500 objects, 2 messages, 40 log events, 1 unfinished invocations, 3.0 MB; saved "
    )
    folder.emulator_file.unlink()
    assert folder.meta() is None  # an embedded save without its state file is never used
    assert folder.discard() is False and not folder.directory.exists()
    assert datadir.describe(None, 0) == "nothing stored"


@pytest.mark.parametrize(("value", "on"), [("1", True), ("true", True), ("ON", True), ("0", False), ("", False)])
def test_persistence_is_switched_on_by_localstacks_name(value: str, on: bool):
    assert datadir.enabled({"PERSISTENCE": value}) is on


def poll_until(check: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.02)
