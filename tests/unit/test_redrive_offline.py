"""ops.redrive against moto in-process: both shapes of dead-letter messages, garbage left with a reason, the replay.

moto's Docker-free Lambda (``use_docker: False``) accepts asynchronous invokes (202) without running anything: what the
function then does with a replayed event is pinned by tests/integration/test_redrive.py on the embedded stack.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ops import redrive
from tests.mocked import EVENTS_DIR, REGION

FUNCTION = "image-compressor"


@pytest.fixture
def aws(function_env: None) -> Iterator[dict[str, Any]]:
    """A dead-letter queue and a function (moto's Docker-free Lambda) in moto, in-process."""
    with mock_aws(config={"lambda": {"use_docker": False}}):
        sqs = boto3.client("sqs", region_name=REGION)
        lam = boto3.client("lambda", region_name=REGION)
        iam = boto3.client("iam", region_name=REGION)
        role = iam.create_role(
            RoleName="fn",
            AssumeRolePolicyDocument=json.dumps(
                {"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}]}
            ),
        )["Role"]["Arn"]
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as zf:
            zf.writestr("index.py", "def handler(event, context):\n    return event\n")
        lam.create_function(
            FunctionName=FUNCTION,
            Runtime="python3.13",
            Role=role,
            Handler="index.handler",
            Code={"ZipFile": code.getvalue()},
        )
        url = sqs.create_queue(QueueName="image-pipeline-dlq")["QueueUrl"]
        yield {"sqs": sqs, "lambda": lam, "url": url}


def s3_event(key: str = "photos/cat.jpg") -> dict[str, Any]:
    event = json.loads((EVENTS_DIR / "put_simple.json").read_text())
    event["Records"][0]["s3"]["object"]["key"] = key
    return event


def destination_record(event: Any) -> dict[str, Any]:
    """An on-failure destination record as Lambda writes it (the shape the embedded cloud and AWS send)."""
    return {
        "version": "1.0",
        "timestamp": "2026-11-29T12:00:00.000Z",
        "requestContext": {
            "requestId": "e4b46cbf-b738-xmpl-8880-a18cdf61200e",
            "functionArn": f"arn:aws:lambda:{REGION}:123456789012:function:{FUNCTION}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": "1 object(s) were neither written", "errorType": "UnprocessedObjectsError"},
    }


def send(aws: dict[str, Any], body: str, attributes: dict[str, Any] | None = None) -> None:
    aws["sqs"].send_message(QueueUrl=aws["url"], MessageBody=body, MessageAttributes=attributes or {})


def receive_one(aws: dict[str, Any]) -> dict[str, Any]:
    [message] = aws["sqs"].receive_message(
        QueueUrl=aws["url"], AttributeNames=["All"], MessageAttributeNames=["All"], VisibilityTimeout=0
    )["Messages"]
    return message


def depth(aws: dict[str, Any]) -> int:
    return redrive.queue_depth(aws["sqs"], aws["url"])


# -- parsing ----------------------------------------------------------------------------------------------------------


def test_a_destination_record_gives_the_original_event_its_keys_and_the_functions_error(aws):
    event = s3_event("photos/summer+2026/caf%C3%A9.jpg")
    send(aws, json.dumps(destination_record(event)))

    letter = redrive.parse_message(receive_one(aws))

    assert letter.replayable and letter.problem is None
    assert letter.event == event
    assert letter.keys == ("s3://image-source/photos/summer 2026/café.jpg",)  # decoded for people
    assert (
        letter.error
        == "UnprocessedObjectsError: 1 object(s) were neither written · RetriesExhausted after 3 attempt(s)"
    )
    assert letter.sent_at is not None


def test_a_plain_dlq_message_is_the_event_with_the_error_in_its_attributes(aws):
    event = s3_event()
    attributes = {
        "RequestID": {"DataType": "String", "StringValue": "c6af9ac6"},
        "ErrorCode": {"DataType": "String", "StringValue": "200"},
        "ErrorMessage": {"DataType": "String", "StringValue": "UnprocessedObjectsError: not placed"},
    }
    send(aws, json.dumps(event), attributes)

    letter = redrive.parse_message(receive_one(aws))

    assert letter.replayable
    assert letter.event == event
    assert letter.keys == ("s3://image-source/photos/cat.jpg",)
    assert letter.error == "200: UnprocessedObjectsError: not placed"


def test_an_s3_batch_operations_event_is_replayable_too(aws):
    event = {
        "invocationSchemaVersion": "2.0",
        "invocationId": "YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo",
        "job": {"id": "f3cc4f60-61f6-4a2b-8a21-d07600c373ce", "userArguments": {}},
        "tasks": [{"taskId": "t1", "s3BucketName": "image-source", "s3Key": "a%20b.jpg", "s3VersionId": None}],
    }
    send(aws, json.dumps(destination_record(event)))

    letter = redrive.parse_message(receive_one(aws))

    assert letter.replayable and letter.keys == ("s3://image-source/a b.jpg",)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("this is not json", "the body is not JSON"),
        ("[1, 2]", "the body is a JSON list"),
        (json.dumps({"hello": "world"}), "expected an S3 event (Records) or an S3 Batch Operations event (tasks)"),
        (json.dumps({"Records": [{"eventSource": "aws:sqs"}]}), "record #0 has no s3.bucket.name and s3.object.key"),
        (json.dumps({"Records": []}), "the S3 event has no records"),
        (json.dumps(destination_record("a string")), "requestPayload is not replayable: expected an S3 event object"),
    ],
)
def test_anything_else_is_not_replayable_and_says_what_it_found(aws, body, says):
    send(aws, body)

    letter = redrive.parse_message(receive_one(aws))

    assert not letter.replayable and letter.event is None
    assert says in (letter.problem or "")
    assert "left in the queue" in (letter.problem or "")


# -- redrive ----------------------------------------------------------------------------------------------------------


def test_redrive_replays_each_event_deletes_it_and_leaves_garbage_in_the_queue(aws):
    send(aws, json.dumps(destination_record(s3_event("a.jpg"))))
    send(aws, json.dumps(s3_event("b.jpg")), {"ErrorMessage": {"DataType": "String", "StringValue": "boom"}})
    send(aws, "garbage, not an event")
    seen: list[tuple[tuple[str, ...], str | None]] = []

    summary = redrive.redrive(
        aws["sqs"], aws["lambda"], aws["url"], FUNCTION, on_message=lambda m, why: seen.append((m.keys, why))
    )

    assert sorted(k for m in summary.replayed for k in m.keys) == ["s3://image-source/a.jpg", "s3://image-source/b.jpg"]
    [(left, reason)] = summary.left
    assert "the body is not JSON" in reason
    assert len(seen) == 3 and summary.found == 3
    # The garbage stays, visible at once for the next reader (the dashboard, a person with the aws CLI).
    assert depth(aws) == 1
    assert redrive.parse_message(receive_one(aws)).message_id == left.message_id
    assert summary.to_dict()["replayed"] == 2 and summary.to_dict()["left"] == 1


def test_a_second_redrive_finds_nothing_to_replay(aws):
    send(aws, json.dumps(destination_record(s3_event())))
    first = redrive.redrive(aws["sqs"], aws["lambda"], aws["url"], FUNCTION)

    second = redrive.redrive(aws["sqs"], aws["lambda"], aws["url"], FUNCTION)

    assert len(first.replayed) == 1
    assert second.found == 0 and depth(aws) == 0


def test_peek_lists_every_message_and_leaves_them_all_in_the_queue(aws):
    for n in range(13):  # more than one SQS batch
        send(aws, json.dumps(destination_record(s3_event(f"k{n}.jpg"))))
    send(aws, "{}")

    letters = redrive.peek(aws["sqs"], aws["url"])

    assert len(letters) == 14
    assert sum(m.replayable for m in letters) == 13
    assert depth(aws) == 14
    assert len(redrive.peek(aws["sqs"], aws["url"])) == 14  # visible again at once
    assert len(redrive.peek(aws["sqs"], aws["url"], limit=5)) == 10  # stops after the batch that reached it
    assert depth(aws) == 14


def test_a_missing_queue_is_a_clear_error(aws):
    missing = aws["url"].replace("image-pipeline-dlq", "no-such-dlq")

    with pytest.raises(redrive.RedriveError, match="does not exist: the stack was destroyed or not applied"):
        redrive.redrive(aws["sqs"], aws["lambda"], missing, FUNCTION)
    with pytest.raises(redrive.RedriveError, match="make local-up"):
        redrive.queue_depth(aws["sqs"], missing)


def test_a_missing_function_stops_the_redrive_and_every_message_stays(function_env: None):
    with mock_aws():  # moto's own Lambda backend: it knows which functions exist
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(QueueName="image-pipeline-dlq")["QueueUrl"]
        for key in ("a.jpg", "b.jpg"):
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps(destination_record(s3_event(key))))

        with pytest.raises(redrive.MissingResourceError, match="the function no-such-function does not exist"):
            redrive.redrive(sqs, boto3.client("lambda", region_name=REGION), url, "no-such-function")

        assert len(redrive.peek(sqs, url)) == 2  # nothing deleted, both visible again at once


def test_the_reprocess_event_names_one_version_of_one_object(aws):
    event = redrive.s3_event("image-source", "photos/a b+c.jpg", etag='"abc"', size=12, version_id="v1")

    [record] = event["Records"]
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["object"] == {"key": "photos/a+b%2Bc.jpg", "size": 12, "eTag": "abc", "versionId": "v1"}
    assert redrive.event_keys(event) == ["s3://image-source/photos/a b+c.jpg"]
