"""The handler's S3 Batch Operations path (schema 2.0) against moto's in-process S3, SNS and SQS.

The events are shaped as S3 Batch Operations sends them (``invocationSchemaVersion`` 2.0, ``invocationId``,
``job`` with ``userArguments``, one task with a URL-encoded ``s3Key``, ``s3VersionId`` and ``s3Bucket``); the answer
must carry one ``Succeeded`` / ``TemporaryFailure`` / ``PermanentFailure`` result per task.
"""

from __future__ import annotations

import json
from typing import Any

import index
import pytest
from image_compressor import batch
from image_compressor.notification import parse_message
from image_compressor.service import UnprocessedObjectsError
from image_compressor.settings import SettingsError

from tests.jpegs import photo_jpeg
from tests.mocked import DESTINATION, FAILED, SOURCE, Cloud, LambdaContext

INVOCATION = "YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo"
JOB = "f3cc4f60-61f6-4a2b-8a21-d07600c373ce"


def batch_event(
    *tasks: dict[str, Any], user_arguments: dict[str, str] | None = None, invocation: str = INVOCATION
) -> dict[str, Any]:
    """A schema-2.0 LambdaInvoke event as S3 Batch Operations sends it (written out, not built by our code)."""
    return {
        "invocationSchemaVersion": "2.0",
        "invocationId": invocation,
        "job": {"id": JOB, "userArguments": user_arguments or {}},
        "tasks": list(tasks),
    }


def task(encoded_key: str, task_id: str = "dGFza2lkZ29lc2hlcmUK", bucket: str = SOURCE) -> dict[str, Any]:
    return {"taskId": task_id, "s3Key": encoded_key, "s3VersionId": None, "s3Bucket": bucket}


def notified_keys(cloud: Cloud) -> list[str]:
    return [parse_message(m["Body"])["key"] for m in cloud.messages(cloud.raw_queue_url)]


def test_a_task_is_processed_and_answered_succeeded(cloud: Cloud, lambda_context: LambdaContext) -> None:
    cloud.put_source("photos/été 2026/a+b.jpg", photo_jpeg(320, 240, quality=95))

    answer = index.handler(batch_event(task("photos/%C3%A9t%C3%A9+2026/a%2Bb.jpg")), lambda_context)

    assert answer["invocationSchemaVersion"] == "2.0"
    assert answer["invocationId"] == INVOCATION
    assert answer["treatMissingKeysAs"] == "PermanentFailure"
    [result] = answer["results"]
    assert result["taskId"] == "dGFza2lkZ29lc2hlcmUK"
    assert result["resultCode"] == "Succeeded"
    assert result["resultString"].startswith(f"compressed: s3://{DESTINATION}/photos/été 2026/a+b.jpg")
    assert cloud.keys(DESTINATION) == ["photos/été 2026/a+b.jpg"]
    assert notified_keys(cloud) == ["photos/été 2026/a+b.jpg"]
    json.dumps(answer)  # what Lambda returns to S3 must serialise


def test_a_bad_image_is_a_succeeded_task_with_its_failed_outcome(cloud: Cloud, lambda_context: LambdaContext) -> None:
    cloud.put_source("broken.JPG", b"not a jpeg at all")

    [result] = index.handler(batch_event(task("broken.JPG")), lambda_context)["results"]

    assert result["resultCode"] == "Succeeded"
    assert result["resultString"].startswith(f"failed: s3://{FAILED}/broken.JPG: ")
    assert cloud.keys(FAILED) == ["broken.JPG"]
    assert notified_keys(cloud) == ["broken.JPG"]


def test_a_retried_task_writes_nothing_twice_and_notifies_once(cloud: Cloud, lambda_context: LambdaContext) -> None:
    cloud.s3.put_bucket_versioning(Bucket=DESTINATION, VersioningConfiguration={"Status": "Enabled"})
    cloud.put_source("a.jpg", photo_jpeg(320, 240, quality=95))
    event = batch_event(task("a.jpg"))

    first = index.handler(event, lambda_context)["results"][0]
    # S3 retries a task with a new invocation; a second backfill of the same source version is the same event too.
    second = index.handler({**event, "invocationId": "another-invocation"}, lambda_context)["results"][0]

    assert (first["resultCode"], second["resultCode"]) == ("Succeeded", "Succeeded")
    assert second["resultString"].startswith("compressed (duplicate): ")
    assert len(cloud.s3.list_object_versions(Bucket=DESTINATION)["Versions"]) == 1
    assert notified_keys(cloud) == ["a.jpg"]


def test_a_forced_run_processes_again_once_per_run(cloud: Cloud, lambda_context: LambdaContext) -> None:
    cloud.put_source("a.jpg", photo_jpeg(320, 240, quality=95))
    index.handler(batch_event(task("a.jpg")), lambda_context)
    assert notified_keys(cloud) == ["a.jpg"]

    forced = batch_event(task("a.jpg"), user_arguments={batch.ARG_RUN: "run-1"})
    first = index.handler(forced, lambda_context)["results"][0]
    again = index.handler(forced, lambda_context)["results"][0]

    assert first["resultString"].startswith("compressed: ")  # the current output re-used, a new record
    assert again["resultString"].startswith("compressed (duplicate): ")
    assert notified_keys(cloud) == ["a.jpg"]


def test_an_unplaceable_object_is_a_temporary_failure(cloud: Cloud, lambda_context: LambdaContext) -> None:
    cloud.s3.delete_bucket(Bucket=DESTINATION)
    cloud.s3.delete_bucket(Bucket=FAILED)
    cloud.put_source("a.jpg", photo_jpeg(160, 120))

    [result] = index.handler(batch_event(task("a.jpg")), lambda_context)["results"]

    assert result["resultCode"] == "TemporaryFailure"
    assert result["resultString"].startswith("error: ")
    assert notified_keys(cloud) == []


def test_an_asynchronous_backfill_invocation_raises_instead_so_lambda_retries(
    cloud: Cloud, lambda_context: LambdaContext
) -> None:
    cloud.s3.delete_bucket(Bucket=DESTINATION)
    cloud.s3.delete_bucket(Bucket=FAILED)
    cloud.put_source("a.jpg", photo_jpeg(160, 120))
    event = batch_event(task("a.jpg"), user_arguments={batch.ARG_ON_TEMPORARY_FAILURE: batch.RAISE})

    with pytest.raises(UnprocessedObjectsError, match="a.jpg"):
        index.handler(event, lambda_context)


def test_recursion_and_malformed_tasks_are_permanent_failures(cloud: Cloud, lambda_context: LambdaContext) -> None:
    cloud.put_source("ok.jpg", photo_jpeg(160, 120, quality=95))
    event = batch_event(
        task("loop.jpg", task_id="t1", bucket=DESTINATION),
        {"taskId": "t2", "s3VersionId": None, "s3Bucket": SOURCE},
        task("ok.jpg", task_id="t3"),
    )

    results = {r["taskId"]: r for r in index.handler(event, lambda_context)["results"]}

    assert results["t1"]["resultCode"] == "PermanentFailure" and "recursion" in results["t1"]["resultString"]
    assert results["t2"]["resultCode"] == "PermanentFailure" and "s3Key" in results["t2"]["resultString"]
    assert results["t3"]["resultCode"] == "Succeeded"
    assert cloud.keys(DESTINATION) == ["ok.jpg"]


def test_a_gone_source_object_is_succeeded_with_nothing_to_do(cloud: Cloud, lambda_context: LambdaContext) -> None:
    [result] = index.handler(batch_event(task("gone.jpg")), lambda_context)["results"]

    assert result["resultCode"] == "Succeeded"
    assert result["resultString"].startswith("missing")


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_a_misconfigured_function_answers_permanent_failure_and_touches_nothing(
    cloud: Cloud, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DEST_BUCKET")
    cloud.put_source("a.jpg", photo_jpeg(160, 120))

    [result] = index.handler(batch_event(task("a.jpg")), lambda_context)["results"]
    assert result["resultCode"] == "PermanentFailure" and "DEST_BUCKET" in result["resultString"]
    with pytest.raises(SettingsError):
        index.handler(
            batch_event(task("a.jpg"), user_arguments={batch.ARG_ON_TEMPORARY_FAILURE: batch.RAISE}), lambda_context
        )
    assert cloud.keys(FAILED) == []


def test_schema_1_tasks_name_the_bucket_by_arn(cloud: Cloud, lambda_context: LambdaContext) -> None:
    cloud.put_source("a.jpg", photo_jpeg(160, 120, quality=95))
    event = {
        "invocationSchemaVersion": "1.0",
        "invocationId": INVOCATION,
        "job": {"id": JOB},
        "tasks": [{"taskId": "t", "s3Key": "a.jpg", "s3VersionId": None, "s3BucketArn": f"arn:aws:s3:::{SOURCE}"}],
    }

    [result] = index.handler(event, lambda_context)["results"]

    assert result["resultCode"] == "Succeeded"
    assert cloud.keys(DESTINATION) == ["a.jpg"]


def test_the_event_the_backfill_builds_parses_back_to_the_same_object() -> None:
    event = batch.build_event(SOURCE, "dir/a b+c ü.JPEG", job_id="j", task_id="t", user_arguments={batch.ARG_RUN: "r"})

    parsed = batch.parse(event)

    assert event["tasks"][0]["s3Key"] == "dir/a+b%2Bc+%C3%BC.JPEG"
    assert parsed.tasks == [batch.Task("t", SOURCE, "dir/a b+c ü.JPEG", None)]
    assert parsed.event_id == "run:r" and not parsed.raise_on_temporary_failure
    with pytest.raises(batch.BatchEventError):
        batch.parse({"invocationSchemaVersion": "2.0", "tasks": "nope"})
