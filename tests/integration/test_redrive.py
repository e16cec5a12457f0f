"""`make redrive` on the embedded stack: a destination outage sends uploads to the DLQ; the redrive accounts for each.

The outage is a fault rule on the running server (every PutObject to the destination answers 503), kept until the
dead-letter queue holds every upload's event (the function's own S3 retries and Lambda's two async retries all met
it), then lifted. The redrive goes through the documented front door (`make redrive TARGET=local`).
"""

from __future__ import annotations

import json
import subprocess
import uuid
from typing import Any

import pytest
from image_compressor.notification import parse_message

from ops import procs, redrive, stackfile
from tests.jpegs import photo_jpeg
from tests.stacks import PROJECT_ROOT, StackInfo, cli_env, injected_fault, keys_in, poll, write_stack_file

pytestmark = pytest.mark.integration

MAKE_TIMEOUT_S = 300


def make_redrive(info: StackInfo, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run `make redrive TARGET=local` against the test's stack (its state directory through LOCALCLOUD_STATE_DIR)."""
    env = cli_env()
    env[stackfile.STATE_DIR_ENV] = str(info.state_dir)
    return subprocess.run(
        ["make", "--no-print-directory", "redrive", "TARGET=local", *extra],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=MAKE_TIMEOUT_S,
    )


def notifications(sqs: Any, queue_url: str, prefix: str, until: Any) -> list[dict[str, Any]]:
    """Receive and delete the inspection queue's messages until ``until(payloads)``; then one more empty poll.

    Returns the payloads about keys under ``prefix`` (the session's stack is shared), duplicates included.
    """
    payloads: list[dict[str, Any]] = []

    def receive() -> int:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        for message in batch:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            try:
                payload = parse_message(message["Body"])
            except ValueError:
                continue
            if payload["key"].startswith(prefix):
                payloads.append(payload)
        return len(batch)

    poll(lambda: receive() >= 0 and until(payloads), timeout=120, what="the expected notifications")
    while receive():
        pass
    return payloads


def summary_lines(info: StackInfo, prefix: str) -> list[dict[str, Any]]:
    events = info.client("logs").filter_log_events(
        logGroupName=info.outputs["log_group_name"], filterPattern='"image processed"'
    )["events"]
    lines = [json.loads(e["message"]) for e in events if e["message"].startswith("{")]
    return [line for line in lines if str(line.get("key", "")).startswith(prefix)]


def test_a_redrive_after_a_destination_outage_accounts_for_every_upload_once(embedded_stack: StackInfo) -> None:
    out = embedded_stack.outputs
    s3, sqs, lam = (embedded_stack.client(name) for name in ("s3", "sqs", "lambda"))
    prefix = f"redrive-{uuid.uuid4().hex[:8]}/"
    keys = [f"{prefix}one.jpg", f"{prefix}two words.jpeg", f"{prefix}three+plus.JPG"]
    wanted = {f"s3://{out['source_bucket']}/{key}" for key in keys}

    def ours(letters: list[redrive.DeadLetter]) -> list[redrive.DeadLetter]:
        return [m for m in letters if set(m.keys) & wanted]

    with injected_fault(
        embedded_stack.endpoint,
        service="s3",
        operation="PutObject",
        bucket=out["destination_bucket"],
        status=503,
        code="ServiceUnavailable",
    ):
        for n, key in enumerate(keys):
            s3.put_object(
                Bucket=out["source_bucket"], Key=key, Body=photo_jpeg(320 + 16 * n, 240), ContentType="image/jpeg"
            )
        # The outage outlasts the function's own retries and Lambda's two: every event ends in the DLQ.
        letters = poll(
            lambda: (found := ours(redrive.peek(sqs, out["dlq_url"]))) and len(found) == len(keys) and found,
            timeout=180,
            what="every upload's event in the dead-letter queue",
        )
    assert all(m.replayable and "UnprocessedObjectsError" in (m.error or "") for m in letters)
    assert not keys_in(s3, out["destination_bucket"], prefix) | keys_in(s3, out["failed_bucket"], prefix)

    result = make_redrive(embedded_stack)

    assert result.returncode == 0, result.stdout + result.stderr
    for key in keys:
        assert f"replayed s3://{out['source_bucket']}/{key}" in result.stdout
    assert "Summary:" in result.stdout and "0 left in the queue" in result.stdout
    assert not ours(redrive.peek(sqs, out["dlq_url"]))
    # All accounted: each upload compressed into the destination, and notified exactly once.
    poll(lambda: keys_in(s3, out["destination_bucket"], prefix) == set(keys), timeout=120, what="every output")
    payloads = notifications(
        sqs, out["notifications_queue_url"], prefix, lambda got: {p["key"] for p in got} == set(keys)
    )
    assert sorted(p["key"] for p in payloads) == sorted(keys)
    assert {p["status"] for p in payloads} == {"compressed"}
    heads = {key: s3.head_object(Bucket=out["destination_bucket"], Key=key) for key in keys}

    # Running it twice is harmless: nothing of ours is left to replay.
    again = make_redrive(embedded_stack)
    assert again.returncode == 0, again.stdout + again.stderr
    assert not any(key in again.stdout for key in keys)
    # A replay of an event that already has its outcome (a redrive that stopped between the invoke and the delete)
    # writes and notifies nothing: the function answers it as a duplicate.
    for letter in letters:
        assert letter.event is not None
        redrive.replay(lam, out["function_name"], letter.event)
    poll(
        lambda: sum(line.get("duplicate") is True for line in summary_lines(embedded_stack, prefix)) >= len(keys),
        timeout=120,
        what="a duplicate summary line per replayed event",
    )
    for key in keys:
        head = s3.head_object(Bucket=out["destination_bucket"], Key=key)
        assert (head["ETag"], head["LastModified"]) == (heads[key]["ETag"], heads[key]["LastModified"])
    assert notifications(sqs, out["notifications_queue_url"], prefix, lambda got: True) == []


def test_redrive_without_a_running_cloud_says_to_start_it(tmp_path: Any) -> None:
    stack_file_dir = tmp_path / "state"
    outputs = {"function_name": "image-compressor", "dlq_url": "http://127.0.0.1/000000000000/q"}
    write_stack_file(stack_file_dir, "embedded", f"http://127.0.0.1:{procs.free_port()}", outputs)
    env = cli_env()
    cli = str(PROJECT_ROOT / ".venv" / "bin" / "image-compressor")

    stopped = subprocess.run(
        [cli, "redrive", "--target", "local", "--state-dir", str(stack_file_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    none = subprocess.run(
        [cli, "redrive", "--state-dir", str(tmp_path / "empty")], env=env, capture_output=True, text=True, timeout=60
    )

    assert stopped.returncode == 2
    assert "does not answer" in stopped.stderr and "make local-up" in stopped.stderr
    assert none.returncode == 2
    assert "no local stack is running" in none.stderr and "make local-up" in none.stderr
