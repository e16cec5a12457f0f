"""Fault injection through the real deployed function and the real stack: every upload gets exactly one outcome.

Each scenario runs on the session's ``fault_stack`` (an embedded stack of its own, started with fault injection
on; the burst over reserved concurrency also on the session's ``ministack_stack``), injects its fault with
:func:`tests.stacks.injected_fault` (rules on the server: S3 and SNS answer AWS's errors) or by acting on the local
cloud (a worker killed, a smaller timeout or memory size, a lower reserved concurrency), uploads under a prefix of
its own, waits until no invocation runs any more, and counts (``tests/faults/accounting.py``): accounted, notified,
duplicate notifications, contradictory, stale, lost. The goal is the same for every scenario and asserted: 100 %
accounted and notified, nothing duplicated, contradictory, stale or lost. The rows also go to
``build/reliability.md`` (the table of docs/reliability.md): ``make test-faults`` reproduces it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from image_compressor.result import MetadataKey
from PIL import Image

from ops import redrive
from tests.faults import accounting
from tests.jpegs import photo_image, photo_jpeg
from tests.stacks import StackInfo, fault_rules, injected_fault, poll, s3_put_event

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def png_bytes() -> bytes:
    buf = io.BytesIO()
    photo_image(200, 150).save(buf, "PNG")
    return buf.getvalue()


def flat_jpeg(width: int, height: int) -> bytes:
    """A large image in few bytes (one colour): its pixels, not its size, set the memory it needs."""
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (90, 120, 150)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


class Scenario:
    """One scenario's uploads under ``faults/<name>/``, and its row once everything has settled."""

    def __init__(self, stack: StackInfo, name: str) -> None:
        self.stack = stack
        self.name = name
        self.prefix = f"faults/{name}/"
        self.uploads: list[str] = []
        self.s3 = stack.client("s3")
        self.notes: list[dict[str, Any]] = []

    def put(self, name: str, body: bytes) -> str:
        """Upload ``body`` as ``<prefix><name>`` (a new S3 event) and return the key."""
        key = self.prefix + name
        self.s3.put_object(Bucket=self.stack.outputs["source_bucket"], Key=key, Body=body, ContentType="image/jpeg")
        self.uploads.append(key)
        return key

    def settle(self) -> None:
        """Wait until no invocation runs, then collect this scenario's notifications so far."""
        accounting.wait_idle(self.stack)
        bodies = accounting.drain(self.stack, self.stack.outputs["notifications_queue_url"])
        self.notes += accounting.notifications(bodies, self.prefix)

    def settle_every_upload(self, timeout: float = 900.0) -> None:
        """Settle until every upload has a notification (MiniStack hands S3 events to Lambda from threads of its own,
        so an idle moment right after the uploads may come before some of their events were queued)."""

        def notified() -> bool:
            self.settle()
            return len({note["key"] for note in self.notes}) >= len(set(self.uploads))

        poll(notified, timeout=timeout, interval=1.0, what=f"a notification for each of {len(self.uploads)} uploads")

    def output_head(self, key: str) -> dict[str, Any]:
        """Return the HEAD of the destination object of ``key``."""
        return self.s3.head_object(Bucket=self.stack.outputs["destination_bucket"], Key=key)

    def redeliver(self, key: str, head: dict[str, Any]) -> None:
        """Deliver the S3 event of the source version ``head`` describes to the function again, as S3 may."""
        meta = head["Metadata"]
        # moto's S3 events carry no sequencer; the output records the one of the event when there was one.
        sequencer = meta.get(MetadataKey.SOURCE_SEQUENCER.value)
        event = s3_put_event(
            self.stack.region, self.stack.outputs["source_bucket"], key, meta[MetadataKey.SOURCE_ETAG.value], sequencer
        )
        lam = self.stack.client("lambda")
        lam.invoke(
            FunctionName=self.stack.outputs["function_name"],
            InvocationType="Event",
            Payload=json.dumps(event).encode(),
        )

    def log_lines(self) -> str:
        """Return the function's log lines that name this scenario's prefix (for failure messages)."""
        logs = self.stack.client("logs")
        events = logs.filter_log_events(logGroupName=self.stack.outputs["log_group_name"])["events"]
        return "\n".join(e["message"].strip()[:600] for e in events if self.prefix in e["message"])[-6000:]

    def outage(self, uploads: dict[str, bytes], **rule: Any) -> None:
        """Upload during an outage longer than every retry, until each event is in the dead-letter queue; lift the
        outage and redrive the queue (what ``make redrive`` runs), then settle."""
        out = self.stack.outputs
        sqs = self.stack.client("sqs")
        with injected_fault(self.stack.endpoint, **rule):
            keys = {f"s3://{out['source_bucket']}/{self.put(name, body)}" for name, body in uploads.items()}

            def dead() -> bool:
                return keys <= {k for letter in redrive.peek(sqs, out["dlq_url"]) for k in letter.keys}

            poll(dead, timeout=240, interval=1.0, what="every upload of the outage in the dead-letter queue")
            accounting.wait_idle(self.stack)
        summary = redrive.redrive(sqs, self.stack.client("lambda"), out["dlq_url"], out["function_name"])
        assert not summary.left, summary
        self.settle()

    def row(self) -> accounting.Row:
        """Settle, read the dead-letter queue, and count."""
        self.settle()
        dead = accounting.dlq_keys(accounting.drain(self.stack, self.stack.outputs["dlq_url"]), self.prefix)
        return accounting.account(self.stack, self.name, self.uploads, self.notes, dead)


def recorded(request: pytest.FixtureRequest, stack: StackInfo, rows: list) -> Iterator[Scenario]:
    """Yield a scenario on ``stack`` named after the test; record its row for the table, which must meet the goal."""
    name = request.node.name.removeprefix("test_")
    accounting.wait_idle(stack)
    accounting.drain(stack, stack.outputs["notifications_queue_url"])
    case = Scenario(stack, name)
    yield case
    row = case.row()
    rows.append(row)
    assert row.meets_goal(), f"{name}: {row.as_dict()}\nthe function's log lines about it:\n{case.log_lines()}"


@pytest.fixture
def scenario(request: pytest.FixtureRequest, fault_stack: StackInfo, reliability_rows: list) -> Iterator[Scenario]:
    """A scenario on the fault suite's embedded stack (see :func:`recorded`)."""
    yield from recorded(request, fault_stack, reliability_rows)


@pytest.fixture
def ministack_scenario(
    request: pytest.FixtureRequest, ministack_stack: StackInfo, reliability_rows: list
) -> Iterator[Scenario]:
    """A scenario on the session's MiniStack stack, shared with the end-to-end tests (see :func:`recorded`)."""
    yield from recorded(request, ministack_stack, reliability_rows)


@contextlib.contextmanager
def reserved_concurrency(stack: StackInfo, units: int) -> Iterator[None]:
    """Set the deployed function's reserved concurrency to ``units`` through the Lambda API; restore it after."""
    lam = stack.client("lambda")
    name = stack.outputs["function_name"]
    before = lam.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=units)
    try:
        yield
    finally:
        if before is None:
            lam.delete_function_concurrency(FunctionName=name)
        else:
            lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=before)


@pytest.fixture
def function_config(fault_stack: StackInfo) -> Iterator[Any]:
    """Change the deployed function's configuration in a test; the original is restored after."""
    lam = fault_stack.client("lambda")
    name = fault_stack.outputs["function_name"]
    original = lam.get_function_configuration(FunctionName=name)

    def change(**settings: Any) -> None:
        lam.update_function_configuration(FunctionName=name, **settings)

    yield change
    lam.update_function_configuration(FunctionName=name, Timeout=original["Timeout"], MemorySize=original["MemorySize"])


def test_s3_throttling_on_get(scenario: Scenario) -> None:
    out = scenario.stack.outputs
    with injected_fault(scenario.stack.endpoint, service="s3", operation="GetObject", bucket=out["source_bucket"],
                        key_prefix=scenario.prefix, status=503, code="SlowDown", times=6) as rule:  # fmt: skip
        for i, suffix in enumerate((".jpg", ".JPEG", ".jPeg")):  # every letter case triggers
            scenario.put(f"photo {i}{suffix}", photo_jpeg(320, 240, quality=95))
        scenario.settle()
        assert fault_rules(scenario.stack.endpoint)[0]["hits"] == 6, rule
    assert {n["status"] for n in scenario.notes} == {"compressed"}


def test_s3_5xx_on_put_to_destination(scenario: Scenario) -> None:
    out = scenario.stack.outputs
    with injected_fault(scenario.stack.endpoint, service="s3", operation="PutObject",
                        bucket=out["destination_bucket"], key_prefix=scenario.prefix, status=503,
                        code="ServiceUnavailable", times=6):  # fmt: skip
        for i in range(3):
            scenario.put(f"photo+{i}.jpg", photo_jpeg(320, 240, quality=95))
        scenario.settle()
    assert {n["status"] for n in scenario.notes} == {"compressed"}


def test_s3_5xx_on_copy_to_failed(scenario: Scenario) -> None:
    out = scenario.stack.outputs
    with injected_fault(scenario.stack.endpoint, service="s3", operation="CopyObject", bucket=out["failed_bucket"],
                        key_prefix=scenario.prefix, status=500, code="InternalError", times=6):  # fmt: skip
        scenario.put("disguised png 1.jpg", png_bytes())
        scenario.put("disguised png 2.jpg", png_bytes())
        scenario.put("good.jpg", photo_jpeg(320, 240, quality=95))
        scenario.settle()
    assert sorted(n["status"] for n in scenario.notes) == ["compressed", "failed", "failed"]


def test_ambiguous_write_to_destination(scenario: Scenario) -> None:
    """Every attempt of the first invocation writes the output and gets a 500: the function must check, not guess."""
    out = scenario.stack.outputs
    with injected_fault(scenario.stack.endpoint, service="s3", operation="PutObject",
                        bucket=out["destination_bucket"], key_prefix=scenario.prefix, status=500,
                        code="InternalError", after=True, times=3):  # fmt: skip
        scenario.put("written anyway.jpg", photo_jpeg(320, 240, quality=95))
        scenario.settle()
    assert [n["status"] for n in scenario.notes] == ["compressed"]


def test_sns_outage(scenario: Scenario) -> None:
    """Publish fails for a while (longer than the function's own retries): Lambda's retry publishes, once."""
    with injected_fault(scenario.stack.endpoint, service="sns", operation="Publish", status=400, code="Throttling",
                        times=5):  # fmt: skip
        scenario.put("a.jpg", photo_jpeg(320, 240, quality=95))
        scenario.put("b.jpg", png_bytes())
        scenario.settle()
    assert sorted(n["status"] for n in scenario.notes) == ["compressed", "failed"]


def test_sns_outage_longer_than_the_retries(scenario: Scenario) -> None:
    """Publish fails through every retry: the outcomes are written, the events go to the dead-letter queue, and
    the redrive after the outage publishes each once (the outcome is found, un-notified)."""
    scenario.outage(
        {"a.jpg": photo_jpeg(320, 240, quality=95), "b.jpg": png_bytes()},
        service="sns",
        operation="Publish",
        status=503,
        code="ServiceUnavailable",
    )
    assert sorted(n["status"] for n in scenario.notes) == ["compressed", "failed"]


def test_destination_outage_longer_than_the_retries(scenario: Scenario) -> None:
    """Writes to the destination fail through every retry: nothing goes to the failed bucket (an outage is not the
    image's fault); the redrive after the outage compresses each once."""
    out = scenario.stack.outputs
    scenario.outage(
        {f"photo {i}.jpg": photo_jpeg(320, 240, quality=95) for i in range(2)},
        service="s3",
        operation="PutObject",
        bucket=out["destination_bucket"],
        key_prefix=scenario.prefix,
        status=503,
        code="SlowDown",
    )
    assert [n["status"] for n in scenario.notes] == ["compressed", "compressed"]


def test_worker_killed_mid_invocation(scenario: Scenario) -> None:
    out = scenario.stack.outputs
    with injected_fault(scenario.stack.endpoint, service="s3", operation="GetObject", bucket=out["source_bucket"],
                        key_prefix=scenario.prefix, status=None, delay_s=5.0, times=1) as rule:  # fmt: skip
        scenario.put("killed.jpg", photo_jpeg(320, 240, quality=95))
        poll(lambda: any(r["id"] == rule and r["hits"] for r in fault_rules(scenario.stack.endpoint)),
             timeout=120, what="the invocation to reach its GetObject")  # fmt: skip
        workers = [w for w in accounting.health(scenario.stack)["lambda"]["workers"]
                   if w["function"] == out["function_name"]]  # fmt: skip
        assert workers
        for worker in workers:
            os.kill(worker["pid"], signal.SIGKILL)
        scenario.settle()
    assert [n["status"] for n in scenario.notes] == ["compressed"]


def test_function_timeout(scenario: Scenario, function_config: Any) -> None:
    """The first attempt stalls in GetObject past a 15 s timeout; Lambda's retry finishes the job."""
    out = scenario.stack.outputs
    function_config(Timeout=15)
    with injected_fault(scenario.stack.endpoint, service="s3", operation="GetObject", bucket=out["source_bucket"],
                        key_prefix=scenario.prefix, status=None, delay_s=20.0, times=1):  # fmt: skip
        scenario.put("slow.jpg", photo_jpeg(320, 240, quality=95))
        scenario.settle()
    assert [n["status"] for n in scenario.notes] == ["compressed"]


def test_short_timeouts_1_s(scenario: Scenario, function_config: Any) -> None:
    """Lambda's Timeout set to 1 s through the API: a small image compresses; a 24 MP one cannot fit and gets a
    failure outcome that names the time it needs and the setting, with its one message (no retries, no DLQ)."""
    function_config(Timeout=1)
    scenario.put("small.jpg", photo_jpeg(320, 240, quality=95))
    scenario.put("large.jpg", flat_jpeg(6000, 4000))
    scenario.settle()
    by_key = {n["key"].removeprefix(scenario.prefix): n for n in scenario.notes}
    assert by_key["small.jpg"]["status"] == "compressed"
    assert by_key["large.jpg"]["status"] == "failed"
    assert "not enough time" in by_key["large.jpg"]["reason"] and "timeout" in by_key["large.jpg"]["reason"]


def test_short_timeouts_3_s(scenario: Scenario, function_config: Any) -> None:
    """Lambda's Timeout set to 3 s through the API: small images compress."""
    function_config(Timeout=3)
    for n in range(3):
        scenario.put(f"small {n}.jpg", photo_jpeg(480, 360, quality=95))
    scenario.settle()
    assert sorted(n["status"] for n in scenario.notes) == ["compressed"] * 3


def test_memory_too_small_for_the_image(scenario: Scenario, function_config: Any) -> None:
    """A 24 MP image on a 256 MB function: refused before decoding, with the reason, not an out-of-memory kill."""
    function_config(MemorySize=256)
    scenario.put("huge.jpg", flat_jpeg(6000, 4000))
    scenario.settle()
    [note] = scenario.notes
    assert note["status"] == "failed" and "memory" in note["reason"]


def test_duplicate_delivery_of_one_event(scenario: Scenario) -> None:
    keys = [scenario.put(f"twice {i}.jpg", photo_jpeg(320, 240, quality=95)) for i in range(2)]
    scenario.settle()
    for key in keys:
        head = scenario.output_head(key)
        scenario.redeliver(key, head)
        scenario.redeliver(key, head)


def test_out_of_order_delivery(scenario: Scenario) -> None:
    """The event of an older version arrives after the newer one was processed: the newer output stays."""
    key = scenario.put("versions.jpg", photo_jpeg(320, 240, quality=95))
    scenario.settle()
    older = scenario.output_head(key)
    scenario.put("versions.jpg", photo_jpeg(400, 300, quality=95))
    scenario.settle()
    scenario.redeliver(key, older)


def test_reupload_of_the_same_bytes(scenario: Scenario) -> None:
    body = photo_jpeg(320, 240, quality=95)
    scenario.put("same.jpg", body)
    scenario.settle()
    scenario.put("same.jpg", body)
    scenario.settle()
    assert [n["reused"] for n in scenario.notes] == [False, True]


def test_newer_bad_version_over_older_good(scenario: Scenario) -> None:
    scenario.put("then broken.jpg", photo_jpeg(320, 240, quality=95))
    scenario.settle()
    scenario.put("then broken.jpg", png_bytes())
    scenario.settle()
    assert [n["status"] for n in scenario.notes] == ["compressed", "failed"]


#: Uploads at once in the burst: the 58 of the report (issue 23) that MiniStack alone sent to the dead-letter queue.
BURST_UPLOADS = 58
#: The reservation the burst goes over. The embedded cloud runs at most two invocations of a function version at once
#: (its ``--concurrency``), so one unit is what a burst can go over there; on MiniStack one unit also means a single
#: warm worker (one cold start on a machine shared with other tests).
BURST_RESERVED = 1


def burst_over_reserved_concurrency(scenario: Scenario) -> None:
    """Upload a burst of good and bad JPEGs at once with the function's reserved concurrency far below it.

    The events over the reservation are throttled, wait in Lambda's queue and run as units free: every upload gets
    its outcome and its one notification, none goes to the dead-letter queue (checked by the scenario's row), and the
    burst was really throttled.
    """
    good, truncated = photo_jpeg(64, 48, quality=95), photo_jpeg(64, 48, quality=95)[:300]
    uploads = {f"burst {i:02d}.jpg": good if i % 3 else truncated for i in range(BURST_UPLOADS)}
    throttles = accounting.throttles(scenario.stack)
    with reserved_concurrency(scenario.stack, BURST_RESERVED):
        with ThreadPoolExecutor(max_workers=10) as pool:
            list(pool.map(lambda item: scenario.put(*item), uploads.items()))
        scenario.settle_every_upload()
    assert accounting.throttles(scenario.stack) > throttles, "the burst never went over the reserved concurrency"
    letters = redrive.peek(scenario.stack.client("sqs"), scenario.stack.outputs["dlq_url"])
    assert [key for letter in letters for key in letter.keys if scenario.prefix in key] == []
    failed = {note["key"] for note in scenario.notes if note["status"] == "failed"}
    assert failed == {scenario.prefix + name for name, body in uploads.items() if body is truncated}


def test_burst_over_reserved_concurrency(scenario: Scenario) -> None:
    burst_over_reserved_concurrency(scenario)


def test_burst_over_reserved_concurrency_on_ministack(ministack_scenario: Scenario) -> None:
    """The same burst on MiniStack behind our front (MiniStack alone sends the throttled events to the DLQ)."""
    burst_over_reserved_concurrency(ministack_scenario)
