"""A hand invoke's event (``ops.invoke``): built as S3 or S3 Batch Operations send it, with a run of its own that the
function honours (never a duplicate of the upload's event); its answer and its log read back. Offline (moto
in-process for the handler)."""

from __future__ import annotations

from typing import Any

import index
import pytest
from image_compressor import batch, runs

from ops import invoke, redrive
from tests.jpegs import photo_jpeg
from tests.mocked import DESTINATION, SOURCE, Cloud, LambdaContext

KEY = "photos/été 2026/a+b c.jpg"
ETAG = "0123456789abcdef0123456789abcdef"


def test_the_s3_event_is_the_record_s3_sends_with_the_run_named() -> None:
    event = invoke.build_event("s3", SOURCE, KEY, etag=ETAG, size=1234, version_id="v1", run_id="r1", region="eu-1")

    [record] = event["Records"]
    assert (record["eventSource"], record["eventName"], record["awsRegion"]) == ("aws:s3", "ObjectCreated:Put", "eu-1")
    assert record["s3"]["object"] == {
        "key": "photos/%C3%A9t%C3%A9+2026/a%2Bb+c.jpg",
        "size": 1234,
        "eTag": ETAG,
        "versionId": "v1",
    }
    assert "sequencer" not in record["s3"]["object"]
    assert record[runs.S3_RECORD_RUN] == "r1"
    [ref] = index.parse_event(event)
    assert (ref.bucket, ref.key, ref.etag, ref.version_id, ref.sequencer) == (SOURCE, KEY, ETAG, "v1", None)
    assert ref.event_id == "run:r1"


def test_an_s3_event_without_a_run_has_no_explicit_identity() -> None:
    [ref] = index.parse_event(redrive.s3_event(SOURCE, KEY, etag=ETAG, size=1))
    assert ref.event_id is None


def test_the_batch_event_is_a_forced_task_of_its_own_run() -> None:
    event = invoke.build_event("batch", SOURCE, KEY, etag=ETAG, size=1234, version_id=None, run_id="r2")

    parsed = batch.parse(event)
    assert parsed.tasks == [batch.Task("r2", SOURCE, KEY, None)]
    assert parsed.user_arguments == {batch.ARG_RUN: "r2"} and parsed.event_id == "run:r2"
    assert not parsed.raise_on_temporary_failure  # a synchronous invoke reads its answer


def test_an_unknown_event_kind_is_refused() -> None:
    with pytest.raises(invoke.InvokeError, match="choose one of s3, batch"):
        invoke.build_event("sqs", SOURCE, KEY, etag=ETAG, size=1, version_id=None, run_id="r")


def test_a_hand_invoke_of_an_object_with_an_outcome_runs_again_and_is_never_the_uploads_duplicate(
    cloud: Cloud, lambda_context: LambdaContext
) -> None:
    cloud.put_source("a.jpg", photo_jpeg(320, 240, quality=95))
    etag = cloud.s3.head_object(Bucket=SOURCE, Key="a.jpg")["ETag"].strip('"')
    upload = redrive.s3_event(SOURCE, "a.jpg", etag=etag, size=1)  # moto's upload events carry no sequencer either
    assert index.handler(upload, lambda_context)["results"][0]["status"] == "compressed"
    bare_again = index.handler(upload, lambda_context)["results"][0]
    assert bare_again["duplicate"]  # why a hand-made event needs a run of its own

    def hand(run: str, kind: str = "s3") -> dict[str, Any]:
        event = invoke.build_event(kind, SOURCE, "a.jpg", etag=etag, size=1, version_id=None, run_id=run)
        return invoke.read_answer(kind, index.handler(event, lambda_context), None)

    first = hand("r1")
    retried = hand("r1")
    second, batch_run = hand("r2"), hand("r3", "batch")

    assert (first["state"], first["reused"], first["target"]) == ("compressed", True, f"s3://{DESTINATION}/a.jpg")
    assert (second["state"], batch_run["state"]) == ("compressed", "compressed")
    assert retried["state"] == "duplicate"  # a retry of one run is still that run's duplicate
    assert len(cloud.messages(cloud.raw_queue_url)) == 4  # the upload and each of the three runs, once


def test_the_answer_of_an_s3_event_is_read_from_its_outcome() -> None:
    outcome = {"status": "compressed", "input_bytes": 100, "output_bytes": 40, "reason": None, "target": "s3://d/k"}
    read = invoke.read_answer(
        "s3", {"processed": 1, "results": [outcome | {"duplicate": False, "reused": False}]}, None
    )
    dup = invoke.read_answer("s3", {"processed": 1, "results": [outcome | {"duplicate": True}]}, None)
    failed = invoke.read_answer("s3", {"results": [outcome | {"status": "failed", "reason": "not a JPEG"}]}, None)

    assert read == {
        "state": "compressed",
        "reason": None,
        "target": "s3://d/k",
        "input_bytes": 100,
        "output_bytes": 40,
        "reused": False,
    }
    assert dup["state"] == "duplicate"
    assert (failed["state"], failed["reason"], failed["output_bytes"]) == ("failed", "not a JPEG", None)
    assert invoke.read_answer("s3", {"processed": 0, "results": []}, None)["state"] == "unknown"


@pytest.mark.parametrize(
    ("text", "state", "target", "reason"),
    [
        ("compressed: s3://d/a b.jpg", "compressed", "s3://d/a b.jpg", None),
        ("failed: s3://f/a.jpg: not a JPEG: content is text", "failed", "s3://f/a.jpg", "not a JPEG: content is text"),
        ("kept-original (duplicate): s3://d/a.jpg", "duplicate", "s3://d/a.jpg", None),
        ("missing: source object no longer exists", "missing", None, "source object no longer exists"),
        ("error: cannot read the source object (SlowDown)", "error", None, "cannot read the source object (SlowDown)"),
    ],
)
def test_the_answer_of_a_batch_event_is_read_from_its_result_string(
    text: str, state: str, target: str | None, reason: str | None
) -> None:
    answer = batch.response("i", [batch.result("t", batch.SUCCEEDED, text)])
    read = invoke.read_answer("batch", answer, None)
    assert (read["state"], read["target"], read["reason"]) == (state, target, reason)


def test_a_function_error_is_an_error_with_its_type_and_message() -> None:
    document = {"errorType": "UnprocessedObjectsError", "errorMessage": "1 object(s) were neither written"}
    read = invoke.read_answer("s3", document, "Unhandled")
    assert read["state"] == "error"
    assert read["reason"] == "the function raised UnprocessedObjectsError: 1 object(s) were neither written"


def test_the_log_splits_into_report_and_own_lines_and_a_cut_tail_is_noticed() -> None:
    rid = "6f9c-1"
    lines = [
        "INIT_START Runtime Version: python:3.13",
        f"START RequestId: {rid} Version: $LATEST",
        '{"level":"INFO","message":"processing event"}',
        "",
        '{"_aws":{"CloudWatchMetrics":[]}}',
        f"END RequestId: {rid}",
        f"REPORT RequestId: {rid}\tDuration: 12.00 ms\tBilled Duration: 12 ms",
    ]
    report, own, whole = invoke.split_log(lines, rid)
    cut = invoke.split_log(lines[3:], rid)

    assert report == lines[-1] and whole
    assert own == ['{"level":"INFO","message":"processing event"}', '{"_aws":{"CloudWatchMetrics":[]}}']
    assert cut == (lines[-1], ['{"_aws":{"CloudWatchMetrics":[]}}'], False)
    assert invoke.request_id_of("\n".join(lines[3:])) == rid
    assert invoke.request_id_of("no platform lines") is None


def test_the_headline_says_what_happened_in_the_result_records_words() -> None:
    done = invoke.Invocation("a.jpg", "s3", "r", ETAG, state="compressed", input_bytes=1000, output_bytes=250)
    done.target, done.reused = "s3://d/a.jpg", True
    failed = invoke.Invocation("a.jpg", "batch", "r", ETAG, state="failed", input_bytes=10, reason="not a JPEG")
    error = invoke.Invocation("a.jpg", "s3", "r", ETAG, state="error", function_error="Unhandled")

    assert done.headline() == (
        "compressed: 1,000 -> 250 bytes (75.0 % saved), output re-used (same bytes and settings, not re-encoded), "
        "in s3://d/a.jpg"
    )
    assert failed.headline() == "failed (10 bytes) — not a JPEG" and failed.ok
    assert not error.ok and done.ok
