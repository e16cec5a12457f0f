"""The backfill's pure parts and its S3 side against moto in-process: which keys, the skip decision, pagination,
bounded concurrency, the dry run, bad input, and the S3 Batch Operations job request (checked against botocore's
s3control model: moto does not emulate ``CreateJob``, and neither does any local target).
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.validate import validate_parameters
from image_compressor import batch
from image_compressor.result import MetadataKey
from image_compressor_cli.main import main
from moto import mock_aws

from ops import backfill, batchjob
from ops.stack import BULK, Stack, clear_clients
from tests.mocked import DESTINATION, FAILED, REGION, SOURCE


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    clear_clients()
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (SOURCE, DESTINATION, FAILED):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        outputs = {
            "source_bucket": SOURCE,
            "destination_bucket": DESTINATION,
            "failed_bucket": FAILED,
            "function_name": "image-compressor",
        }
        yield Stack(target="local", backend="embedded", region=REGION, outputs=outputs, source="moto in-process")
    clear_clients()


def put(stack: Stack, key: str, body: bytes = b"jpeg bytes") -> str:
    return stack.client("s3").put_object(Bucket=SOURCE, Key=key, Body=body)["ETag"].strip('"')


def outcome(stack: Stack, bucket: str, key: str, source_etag: str, status: str = "compressed") -> None:
    metadata = {MetadataKey.SOURCE_ETAG.value: source_etag, MetadataKey.STATUS.value: status, "source-event": "e1"}
    stack.client("s3").put_object(Bucket=bucket, Key=key, Body=b"out", Metadata=metadata)


@pytest.mark.parametrize(
    ("key", "expected"),
    [("a.jpg", True), ("b.JPEG", True), ("c.Jpg", True), ("d.jpeg.txt", False), ("e.png", False), ("jpg", False)],
)
def test_jpeg_keys_are_the_function_s_suffixes_in_any_case(key: str, expected: bool) -> None:
    assert backfill.is_jpeg_key(key) is expected


def test_an_outcome_is_current_only_for_the_source_s_etag_and_version() -> None:
    source = backfill.SourceObject("a.jpg", "abc", version_id="v2")
    current = {"Source-ETag": '"abc"', "status": "compressed"}

    assert backfill.current_outcome(source, [None, None]) is None
    assert backfill.current_outcome(source, [{"source-etag": "old"}, None]) is None
    assert backfill.current_outcome(source, [{"status": "failed"}, None]) is None  # written before identities
    assert backfill.current_outcome(source, [None, current])["status"] == "compressed"
    assert backfill.current_outcome(source, [{"source-etag": "abc", "source-version-id": "v1"}, None]) is None
    assert backfill.current_outcome(source, [{"source-etag": "abc", "source-version-id": "v2"}, None]) is not None


def test_a_failed_copy_whose_reprocess_is_pending_counts_for_the_scan_not_for_the_wait() -> None:
    """ops.reprocess retires the copy's source-etag while the replay runs; a backfill then must not queue it again."""
    source = backfill.SourceObject("a.jpg", "abc")
    pending = {"retried-source-etag": "abc", "retry-requested": "2026-12-06T04:00:00+00:00", "status": "failed"}

    assert backfill.current_outcome(source, [None, pending]) == pending
    assert backfill.current_outcome(source, [None, pending], pending=False) is None  # the wait wants the new outcome
    assert backfill.current_outcome(source, [None, pending | {"retried-source-etag": "old"}]) is None
    assert backfill.current_outcome(source, [None, {"retried-source-etag": "abc"}]) is None  # no request recorded


def test_bounded_map_keeps_at_most_the_window_in_flight_and_reads_items_lazily() -> None:
    running = 0
    most = 0
    pulled = 0
    lock = threading.Lock()

    def items() -> Iterator[int]:
        nonlocal pulled
        for i in range(40):
            pulled += 1
            yield i

    def work(i: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.005)
        with lock:
            running -= 1
        return i * 2

    results = backfill.bounded_map(work, items(), workers=3)
    first = next(results)
    assert pulled <= 6  # the window (2 x workers) before the first result, not the whole listing

    assert sorted([first, *results]) == [i * 2 for i in range(40)]
    assert most <= 3


def test_listing_is_paginated_and_keeps_only_jpegs(stack: Stack) -> None:
    keys = [f"p/{i:03d}.jpg" for i in range(7)] + ["p/x.JPEG", "p/notes.txt", "q/other.jpg"]
    for key in keys:
        put(stack, key)
    calls: list[dict[str, Any]] = []
    stack.client("s3").meta.events.register("before-call.s3.ListObjectsV2", lambda params, **_: calls.append(params))

    found = [o.key for o in backfill.list_jpegs(stack.client("s3"), SOURCE, "p/", page_size=3)]

    assert found == [f"p/{i:03d}.jpg" for i in range(7)] + ["p/x.JPEG"]
    # 9 keys under p/, listed in 3 pages of at most 3 keys each (never the whole bucket in one answer).
    assert [c["query_string"]["max-keys"] for c in calls] == [3, 3, 3]


def test_an_unknown_prefix_and_an_empty_bucket_are_clear_errors(stack: Stack) -> None:
    with pytest.raises(backfill.BackfillError, match="the source bucket s3://image-source is empty"):
        list(backfill.list_jpegs(stack.client("s3"), SOURCE, ""))
    put(stack, "photos/a.jpg")
    with pytest.raises(backfill.BackfillError, match="nothing under the prefix 'Photos/'.*case-sensitive"):
        list(backfill.list_jpegs(stack.client("s3"), SOURCE, "Photos/"))


def test_a_dry_run_counts_found_skipped_and_queued_and_invokes_nothing(stack: Stack) -> None:
    fresh = put(stack, "new.jpg")
    done = put(stack, "done.jpg", b"other bytes")
    failed = put(stack, "bad.jpeg", b"bad bytes")
    put(stack, "changed.jpg", b"new content")
    put(stack, "readme.txt")
    outcome(stack, DESTINATION, "done.jpg", done)
    outcome(stack, FAILED, "bad.jpeg", failed, status="failed")
    outcome(stack, DESTINATION, "changed.jpg", "etag-of-the-old-content")
    assert fresh
    seen: list[tuple[str, int, int | None]] = []

    summary = backfill.run(stack, dry_run=True, progress=lambda *a: seen.append(a))

    assert (summary.found, summary.skipped, summary.queued) == (4, 2, 2)
    assert (summary.compressed, summary.kept, summary.failed, summary.pending) == (0, 0, 0, 0)
    assert seen[-1] == (backfill.SCAN, 4, None)
    forced = backfill.run(stack, dry_run=True, force=True)
    assert (forced.found, forced.skipped, forced.queued) == (4, 0, 4)


def test_the_batch_operations_job_request_is_valid_for_s3control() -> None:
    request = batchjob.job_request(
        account_id="123456789012",
        function_arn="arn:aws:lambda:eu-west-1:123456789012:function:image-compressor",
        role_arn="arn:aws:iam::123456789012:role/image-pipeline-batch-operations-eu-west-1",
        report_bucket="image-pipeline-batch-123456789012-eu-west-1",
        manifest_key="manifests/backfill-r1.csv",
        manifest_etag="0123abcd",
        run_id="r1",
        force=True,
    )

    model = botocore.session.get_session().get_service_model("s3control")
    validate_parameters(request, model.operation_model("CreateJob").input_shape)  # raises on a malformed request
    invoke = request["Operation"]["LambdaInvoke"]
    assert invoke["InvocationSchemaVersion"] == batch.SCHEMA_VERSION == "2.0"
    assert invoke["UserArguments"] == {batch.ARG_RUN: "r1"}
    manifest = request["Manifest"]["Location"]["ObjectArn"]
    assert manifest == "arn:aws:s3:::image-pipeline-batch-123456789012-eu-west-1/manifests/backfill-r1.csv"
    assert request["Report"]["ReportScope"] == "AllTasks" and request["Report"]["Enabled"] is True
    unforced = batchjob.job_request(**{**_args(request), "force": False})
    assert unforced["Operation"]["LambdaInvoke"]["UserArguments"] == {}


def _args(request: dict[str, Any]) -> dict[str, Any]:
    return {
        "account_id": request["AccountId"],
        "function_arn": request["Operation"]["LambdaInvoke"]["FunctionArn"],
        "role_arn": request["RoleArn"],
        "report_bucket": request["Report"]["Bucket"].removeprefix("arn:aws:s3:::"),
        "manifest_key": "manifests/backfill-r1.csv",
        "manifest_etag": "0123abcd",
        "run_id": "r1",
    }


def test_manifest_rows_url_encode_the_key_as_batch_operations_reads_it() -> None:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(batchjob.manifest_row(SOURCE, "dir/a b+c,ü.jpg"))

    assert buffer.getvalue().strip() == f"{SOURCE},dir/a+b%2Bc%2C%C3%BC.jpg"
    event = batch.build_event(SOURCE, "dir/a b+c,ü.jpg", job_id="j", task_id="t")
    assert event["tasks"][0]["s3Key"] == batchjob.manifest_row(SOURCE, "dir/a b+c,ü.jpg")[1]


def test_the_command_without_a_stack_exits_2_with_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["backfill", "--state-dir", str(tmp_path)]) == 2
    assert "no local stack is running" in capsys.readouterr().err
    assert main(["backfill", "--target", "staging", "--state-dir", str(tmp_path)]) == 2
    assert "unknown target 'staging'" in capsys.readouterr().err


def test_the_progress_file_records_the_run_and_a_dead_run_reads_as_stopped(stack: Stack, tmp_path: Path):
    put(stack, "a.jpg")
    path = backfill.progress_path("local", tmp_path)

    summary = backfill.run(stack, dry_run=True, progress_file=path)

    record = backfill.read_progress(path)
    assert record is not None and record["phase"] == backfill.DONE
    assert (record["found"], record["queued"], record["bucket"]) == (summary.found, 1, SOURCE)
    assert backfill.progress_path("aws", tmp_path) == tmp_path / "aws" / backfill.PROGRESS_FILE
    path.write_text(json.dumps({**record, "phase": backfill.WAIT, "pid": 2**22 + 12345}))
    assert backfill.read_progress(path)["phase"] == backfill.STOPPED
    path.write_text("{not json")
    assert backfill.read_progress(path) is None


def accepted() -> tuple[Any, dict[str, Any]]:
    """Lambda's answer to an accepted asynchronous invoke, as a ``before-call`` hook returns it (no HTTP call made)."""
    http = type("Http", (), {"status_code": 202, "headers": {}})()
    return http, {"StatusCode": 202, "ResponseMetadata": {"HTTPStatusCode": 202}}


class FunctionStandIn:
    """Answers the backfill's asynchronous invokes on moto in-process (which runs no function without Docker) the way
    the deployed function would: a moment later its outcome lands in the destination bucket. Counts how many were
    out at once."""

    def __init__(self, stack: Stack, delay_s: float = 0.05) -> None:
        self.stack, self.delay_s = stack, delay_s
        self.out = self.most_out = self.invoked = 0
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def __call__(self, params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        task = json.loads(params["body"])["tasks"][0]
        key = task["s3Key"].replace("+", " ")
        with self.lock:
            self.out += 1
            self.invoked += 1
            self.most_out = max(self.most_out, self.out)
        thread = threading.Thread(target=self._land, args=(key,))
        self.threads.append(thread)
        thread.start()
        return accepted()

    def _land(self, key: str) -> None:
        time.sleep(self.delay_s)
        s3 = self.stack.client("s3")
        etag = s3.head_object(Bucket=SOURCE, Key=key)["ETag"].strip('"')
        with self.lock:  # the outcome is written, then the run ends
            outcome(self.stack, DESTINATION, key, etag)
            self.out -= 1


def test_the_backfill_keeps_at_most_concurrency_runs_out_and_sends_the_next_as_outcomes_land(stack: Stack) -> None:
    keys = [f"paced/{i:02d}.jpg" for i in range(12)]
    for key in keys:
        put(stack, key)
    function = FunctionStandIn(stack)
    lam = stack.client("lambda", BULK)  # the backfill's own client
    lam.meta.events.register("before-call.lambda.Invoke", function)
    try:
        summary = backfill.run(stack, prefix="paced/", concurrency=3, wait_s=30)
    finally:
        lam.meta.events.unregister("before-call.lambda.Invoke", function)
        for thread in function.threads:
            thread.join()

    assert (summary.queued, summary.compressed, summary.pending, summary.not_queued) == (12, 12, 0, 0)
    assert summary.runs == 3 and function.invoked == 12
    assert 1 <= function.most_out <= 3  # never more than three runs of the function at once


def test_a_function_whose_outcomes_never_land_stops_the_backfill_with_what_to_do(stack: Stack) -> None:
    for i in range(5):
        put(stack, f"stuck/{i}.jpg")
    sent: list[str] = []
    lam = stack.client("lambda", BULK)

    def swallow(params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        sent.append(json.loads(params["body"])["tasks"][0]["s3Key"])
        return accepted()

    lam.meta.events.register("before-call.lambda.Invoke", swallow)
    try:
        summary = backfill.run(stack, prefix="stuck/", concurrency=2, wait_s=0.3)
    finally:
        lam.meta.events.unregister("before-call.lambda.Invoke", swallow)

    assert len(sent) == 2 and (summary.pending, summary.not_queued) == (2, 3)
    assert "no outcome landed for 0 s with 2 objects in flight, so the other 3 were not sent" in summary.errors[-1]


def test_the_default_number_of_runs_is_the_function_s_reserved_concurrency(stack: Stack) -> None:
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam = stack.client("lambda")
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return event\n")
    lam.create_function(
        FunctionName="image-compressor", Runtime="python3.13", Role=role, Handler="index.handler",
        Code={"ZipFile": code.getvalue()},
    )  # fmt: skip

    assert backfill.function_runs(stack) == backfill.DEFAULT_RUNS  # none reserved
    lam.put_function_concurrency(FunctionName="image-compressor", ReservedConcurrentExecutions=4)
    assert backfill.function_runs(stack) == 4
