"""Persistence (``make local-up PERSIST=1``): the data survives ``local-down``/``local-up``; ``local-reset`` forgets it.

One stack of its own, brought up and down the way ``make`` does (``ops.launch.stack_up``/``stack_down``, which run
``python -m ops``) in a temporary state directory, through one cycle: a cold ``up`` with ``PERSISTENCE=1``; data
of every kind (objects with metadata and tags, a processed upload with its notification and log events, a
dead-letter message); uploads answered 200 right before ``down`` whose function is held up (a delay injected on the
source ``GetObject``) so that ``down`` finds them in flight; ``down``; a warm ``up`` with ``PERSISTENCE=1`` that finds
all of it and processes the in-flight uploads, each with its one notification; ``down``; an ``up`` without
persistence (the default) that finds none of it; ``reset``, which forgets it.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from image_compressor.notification import parse_message

from localcloud import faults
from ops import launch, procs, stackfile
from tests.jpegs import photo_jpeg
from tests.stacks import DOWN_TIMEOUT_S, UP_TIMEOUT_S, cli_env, make_client, poll

pytestmark = [pytest.mark.integration, pytest.mark.slow]

IN_FLIGHT = ("inflight/one.jpg", "inflight/two.jpg", "inflight/three.jpg")
NOTE = "kept/note.txt"
DONE = "done/photo.jpg"


class Cycle:
    """One state directory and port; ``up``/``down``/``run`` as ``make local-up``/``local-down``/``python -m ops``."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.port = procs.free_port()
        self.env = cli_env()
        self.env["LOCALCLOUD_PERSIST_DRAIN_S"] = "0.5"  # the held-up attempts are saved as cut short, not awaited
        self.outputs: dict[str, Any] = {}

    def up(self, persist: bool) -> subprocess.CompletedProcess[str]:
        env = dict(self.env, PERSISTENCE="1" if persist else "0")
        up, current = launch.stack_up(self.state_dir, self.port, env, UP_TIMEOUT_S)
        assert current is not None, f"`python -m ops up` failed:\n{up.stdout}\n{up.stderr}"
        self.outputs = current.outputs
        return up

    def down(self) -> subprocess.CompletedProcess[str]:
        down = launch.stack_down(self.state_dir, self.env, DOWN_TIMEOUT_S)
        assert down.returncode == 0, f"`python -m ops down` failed:\n{down.stdout}\n{down.stderr}"
        return down

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return launch.run_ops(["--state-dir", str(self.state_dir), *args], self.env, DOWN_TIMEOUT_S)

    def persistence(self) -> dict[str, Any]:
        """Return what ``python -m ops status --json`` says about persistence."""
        status = self.run("status", "--json")
        assert status.stdout.startswith("{"), status.stdout + status.stderr
        return json.loads(status.stdout)["persistence"]

    def client(self, service: str) -> Any:
        return make_client(f"http://localhost:{self.port}", "eu-west-1", service)


@pytest.fixture
def cycle(built: Path, tmp_path: Path) -> Iterator[Cycle]:
    cycle = Cycle(tmp_path / "state")
    yield cycle
    launch.stack_down(cycle.state_dir, cycle.env, DOWN_TIMEOUT_S)


def add_fault(port: int, rule: dict[str, Any]) -> None:
    """Add a fault rule to the embedded server on ``port`` (it goes with the server: no removal)."""
    request = urllib.request.Request(
        f"http://localhost:{port}{faults.FAULTS_PATH}", data=json.dumps(rule).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - a loopback test server
        assert response.status in (200, 201)


def head(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        return s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError:
        return None


def notifications(sqs: Any, queue_url: str, seen: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Receive (and delete) what waits in the inspection queue, add the pipeline's payloads to ``seen``, return it."""
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            try:
                seen.append(parse_message(message["Body"]))
            except ValueError:
                pass  # an alarm's notification
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return seen


def log_event_count(logs: Any, group: str) -> int:
    pages = logs.get_paginator("filter_log_events").paginate(logGroupName=group)
    return sum(len(page["events"]) for page in pages)


def test_persisted_data_survives_down_and_up_and_reset_forgets_it(cycle: Cycle) -> None:
    cycle.up(persist=True)
    out = cycle.outputs
    s3, sqs, logs = cycle.client("s3"), cycle.client("sqs"), cycle.client("logs")

    # Data of every kind, settled before `down`.
    s3.put_object(
        Bucket=out["source_bucket"], Key=NOTE, Body=b"keep me", ContentType="text/plain",
        Metadata={"owner": "tests"}, Tagging="project=persist&tier=local",
    )  # fmt: skip
    s3.put_object(Bucket=out["source_bucket"], Key=DONE, Body=photo_jpeg())
    poll(lambda: head(s3, out["destination_bucket"], DONE), timeout=180, what="the first upload's outcome")
    sqs.send_message(QueueUrl=out["dlq_url"], MessageBody=json.dumps({"dead": "letter"}))
    events_before = poll(lambda: log_event_count(logs, out["log_group_name"]), what="the function's log events")

    # Uploads answered 200 right before `down`, their function held up on reading the source: in flight at `down`.
    # (The rule lives in the server's memory: it is gone with it, and never saved.)
    hold = {"service": "s3", "operation": "GetObject", "bucket": out["source_bucket"], "key_prefix": "inflight/"}
    add_fault(cycle.port, hold | {"status": None, "delay_s": 5})
    for key in IN_FLIGHT:
        answer = s3.put_object(Bucket=out["source_bucket"], Key=key, Body=photo_jpeg())
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    down = cycle.down()
    assert "saving the data (persistence on)" in down.stdout, down.stdout
    assert f"{len(IN_FLIGHT)} unfinished invocations" in down.stdout, down.stdout
    assert not procs.port_in_use(cycle.port)

    kept = cycle.persistence()
    assert kept["on"] is False and kept["saved"]["counts"]["objects"] >= 5, kept  # stack down, data stored

    up = cycle.up(persist=True)
    assert "restored the data from" in up.stdout and "applying" not in up.stdout, up.stdout
    kept = cycle.persistence()
    assert kept["on"] is True and kept["bytes"] > 0

    note = s3.get_object(Bucket=out["source_bucket"], Key=NOTE)
    assert note["Body"].read() == b"keep me" and note["ContentType"] == "text/plain"
    assert note["Metadata"] == {"owner": "tests"}
    tags = s3.get_object_tagging(Bucket=out["source_bucket"], Key=NOTE)["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("project", "persist"), ("tier", "local")]
    assert head(s3, out["destination_bucket"], DONE)["Metadata"]["status"] in ("compressed", "kept-original")
    dead = sqs.receive_message(QueueUrl=out["dlq_url"], MaxNumberOfMessages=10).get("Messages", [])
    assert [json.loads(m["Body"]) for m in dead] == [{"dead": "letter"}]
    assert log_event_count(logs, out["log_group_name"]) >= events_before

    # The in-flight uploads are processed after `up`: each has its outcome and its one notification.
    for key in IN_FLIGHT:
        outcome = poll(lambda k=key: head(s3, out["destination_bucket"], k), timeout=180, what=f"{key}'s outcome")
        assert outcome["Metadata"]["status"] in ("compressed", "kept-original")
    seen: list[dict[str, Any]] = []
    wanted = {DONE, *IN_FLIGHT}
    poll(
        lambda: wanted <= {p["key"] for p in notifications(sqs, out["notifications_queue_url"], seen)},
        timeout=60,
        what="a notification for each upload",
    )
    keys = sorted(p["key"] for p in seen if p["key"] in wanted)
    assert keys == sorted(wanted), keys  # one each: none lost, none twice
    cycle.down()

    # The default (no PERSIST) forgets as today: the stack comes back (from the snapshot), without the data.
    up = cycle.up(persist=False)
    assert "is not loaded (PERSIST=1 loads it" in up.stdout, up.stdout
    assert head(s3, out["source_bucket"], NOTE) is None
    assert sqs.receive_message(QueueUrl=out["dlq_url"]).get("Messages", []) == []
    cycle.down()

    reset = cycle.run("reset")
    assert reset.returncode == 0 and "forgot the data kept in" in reset.stdout, reset.stdout
    assert not (cycle.state_dir / "persist").exists()
    assert stackfile.load(cycle.state_dir) is None
