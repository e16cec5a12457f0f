"""``image-compressor invoke KEY`` (``make invoke``) on the embedded stack: the function really runs on an object
already in the source bucket, and the command prints its result, the ``REPORT`` line and its log lines; a missing
object or an unknown target invokes nothing.

The dashboard's History page ("Run again") calls the same :func:`ops.invoke.invoke_object`
(tests/integration/test_dashboard_app.py).
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from typing import Any

import pytest

from ops import defaults, invoke
from ops.stack import resolve
from tests.jpegs import photo_jpeg
from tests.stacks import StackInfo, cli_env

pytestmark = [pytest.mark.integration]

CLI = str(defaults.ROOT / ".venv" / "bin" / "image-compressor")


def _cli(stack: StackInfo, *args: str, target: str = "local") -> subprocess.CompletedProcess[str]:
    command = [CLI, "invoke", "--target", target, "--state-dir", str(stack.state_dir), *args]
    return subprocess.run(command, env=cli_env(), capture_output=True, text=True, timeout=180, check=False)


def _uploaded(stack: StackInfo, key: str, data: bytes, timeout: float = 90) -> dict[str, Any]:
    """Upload ``key`` and wait for the outcome of its upload's event; return the destination object's head."""
    s3 = stack.client("s3")
    s3.put_object(Bucket=stack.outputs["source_bucket"], Key=key, Body=data)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return s3.head_object(Bucket=stack.outputs["destination_bucket"], Key=key)
        except s3.exceptions.ClientError:
            time.sleep(0.2)
    raise AssertionError(f"{key} got no outcome within {timeout:.0f} s")


def _lines_naming(stack: StackInfo, text: str) -> list[str]:
    """Every line of the function's log group that contains ``text``."""
    logs = stack.client("logs")
    pages = logs.get_paginator("filter_log_events").paginate(
        logGroupName=stack.outputs["log_group_name"], filterPattern=f'"{text}"'
    )
    return [event["message"] for page in pages for event in page.get("events", [])]


def test_invoke_runs_the_function_on_an_object_that_has_its_outcome_and_prints_result_report_and_log(
    embedded_stack: StackInfo,
) -> None:
    key = f"invoke/{uuid.uuid4().hex[:8]}/photo ü+1.jpg"
    first = _uploaded(embedded_stack, key, photo_jpeg(640, 480, quality=95))

    run = _cli(embedded_stack, key, "--json")
    after = embedded_stack.client("s3").head_object(Bucket=embedded_stack.outputs["destination_bucket"], Key=key)
    text = _cli(embedded_stack, key)

    assert run.returncode == 0, run.stderr
    done = json.loads(run.stdout)
    rid = done["request_id"]
    assert (done["state"], done["event"], done["ok"]) == ("compressed", "s3", True)
    assert done["source_etag"] == first["Metadata"]["source-etag"]
    assert done["target"] == f"s3://{embedded_stack.outputs['destination_bucket']}/{key}"
    [outcome] = done["payload"]["results"]
    assert outcome["duplicate"] is False and outcome["event_id"] != first["Metadata"]["source-event"]
    assert done["report"].startswith(f"REPORT RequestId: {rid}\tDuration: ")
    summaries = [json.loads(line) for line in done["log_lines"] if '"image processed"' in line]
    assert [(s["key"], s["status"], s["function_request_id"]) for s in summaries] == [(key, "compressed", rid)]
    assert done["log_source"] == "tail"
    assert after["Metadata"]["source-event"] == outcome["event_id"]  # the run's own record, one outcome

    assert text.returncode == 0, text.stderr
    assert "Result: compressed: " in text.stdout and "Response payload:" in text.stdout
    assert "\nREPORT RequestId: " in text.stdout and '"message":"image processed"' in text.stdout


def test_invoke_with_a_batch_event_answers_as_s3_batch_operations_expects(embedded_stack: StackInfo) -> None:
    key = f"invoke/{uuid.uuid4().hex[:8]}/batch.jpg"
    _uploaded(embedded_stack, key, photo_jpeg(320, 240, quality=95))

    run = _cli(embedded_stack, key, "--event", "batch", "--json")

    assert run.returncode == 0, run.stderr
    done = json.loads(run.stdout)
    assert (done["state"], done["event"]) == ("compressed", "batch")
    assert done["payload"]["invocationSchemaVersion"] == "2.0"
    [result] = done["payload"]["results"]
    assert result["resultCode"] == "Succeeded" and result["resultString"].startswith("compressed: s3://")
    assert done["input_bytes"] > done["output_bytes"] > 0
    assert done["report"].startswith(f"REPORT RequestId: {done['request_id']}")
    assert any('"Batch Operations event"' in line or "Batch Operations" in line for line in done["log_lines"])


def test_the_log_group_gives_the_same_lines_as_the_tail(embedded_stack: StackInfo) -> None:
    """The fallback for a tail cut at 4 KB: the log group's lines of the request, START to REPORT."""
    key = f"invoke/{uuid.uuid4().hex[:8]}/logs.jpg"
    _uploaded(embedded_stack, key, photo_jpeg(160, 120))
    stack = resolve("local", state_dir=embedded_stack.state_dir)
    since = int(time.time() * 1000) - 5000

    done = invoke.invoke_object(stack, key)
    report, own, whole = invoke.split_log(invoke.log_events(stack, done.request_id, since_ms=since), done.request_id)

    assert whole and (report, own) == (done.report, done.log_lines)


def test_a_success_removes_the_failed_copy_of_the_same_version(embedded_stack: StackInfo) -> None:
    """One source version, one outcome: a run that compresses a version an earlier run failed retires that failure."""
    key = f"invoke/{uuid.uuid4().hex[:8]}/fixed.jpg"
    first = _uploaded(embedded_stack, key, photo_jpeg(320, 240, quality=95))
    s3, out = embedded_stack.client("s3"), embedded_stack.outputs
    meta = {"status": "failed", "reason": "simulated", "source-etag": first["Metadata"]["source-etag"]}
    s3.put_object(Bucket=out["failed_bucket"], Key=key, Body=b"original", Metadata=meta)

    done = invoke.invoke_object(resolve("local", state_dir=embedded_stack.state_dir), key, event="batch")

    assert (done.state, done.removed_failed_copy) == ("compressed", True)
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_object(Bucket=out["failed_bucket"], Key=key)


def test_a_missing_object_or_an_unknown_target_is_an_error_and_nothing_is_invoked(embedded_stack: StackInfo) -> None:
    key = f"invoke/{uuid.uuid4().hex[:8]}/never-uploaded.jpg"
    out = embedded_stack.outputs

    missing = _cli(embedded_stack, key)
    batch = _cli(embedded_stack, key, "--event", "batch", "--json")
    unknown = _cli(embedded_stack, key, target="moon")

    assert missing.returncode == batch.returncode == unknown.returncode == 2
    assert f"{key} is not in the source bucket {out['source_bucket']}, so nothing was invoked" in missing.stderr
    assert batch.stdout == "" and "nothing was invoked" in batch.stderr
    assert "unknown target 'moon'" in unknown.stderr
    assert _lines_naming(embedded_stack, key.rsplit("/", 2)[1]) == []  # the function never saw the key
    s3 = embedded_stack.client("s3")
    for name in ("destination_bucket", "failed_bucket"):
        assert s3.list_objects_v2(Bucket=out[name], Prefix=key).get("KeyCount", 0) == 0


def test_make_invoke_without_a_key_says_how_to_name_it() -> None:
    run = subprocess.run(
        ["make", "--no-print-directory", "invoke"],
        cwd=defaults.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 2 and "make invoke KEY=photos/a.jpg" in run.stderr
