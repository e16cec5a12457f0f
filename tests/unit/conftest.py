"""Fixtures for the function's unit tests: an in-process moto cloud (S3, SNS, SQS), events and a Lambda context."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from image_compressor import aws
from moto import mock_aws

REGION = "eu-west-1"
SOURCE = "image-source"
DESTINATION = "image-destination"
FAILED = "image-failed"
EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that Powertools reads."""

    function_name: str = "image-compressor"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:image-compressor"
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    log_group_name: str = "/aws/lambda/image-compressor"
    log_stream_name: str = "2026/11/28/[$LATEST]abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


@dataclass
class Cloud:
    """The moto cloud of one test: source, destination and failed buckets, a topic and two subscribed queues."""

    s3: Any
    sns: Any
    sqs: Any
    topic_arn: str
    raw_queue_url: str
    envelope_queue_url: str

    def put_source(self, key: str, data: bytes, content_type: str = "image/jpeg") -> str:
        """Upload ``data`` to the source bucket and return its ETag (without quotes)."""
        response = self.s3.put_object(Bucket=SOURCE, Key=key, Body=data, ContentType=content_type)
        return response["ETag"].strip('"')

    def read(self, bucket: str, key: str) -> tuple[bytes, dict[str, Any]]:
        """Return the bytes and the GetObject response of ``s3://bucket/key``."""
        response = self.s3.get_object(Bucket=bucket, Key=key)
        return response["Body"].read(), response

    def keys(self, bucket: str) -> list[str]:
        """Return every key in ``bucket``."""
        return [o["Key"] for o in self.s3.list_objects_v2(Bucket=bucket).get("Contents", [])]

    def messages(self, queue_url: str) -> list[dict[str, Any]]:
        """Return every message that arrived on ``queue_url`` so far (each call drains the queue)."""
        found: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
            ).get("Messages", [])
            if not batch:
                return found
            for message in batch:
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            found.extend(batch)


def load_event(name: str) -> dict[str, Any]:
    """Return the S3 event stored as ``tests/events/<name>``."""
    return json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()


@pytest.fixture
def function_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region only (never real ones), no endpoint, and the function's own variables."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "POWERTOOLS_DEV", "SNS_TOPIC_ARN"):
        monkeypatch.delenv(name, raising=False)
    # Every setting Settings.from_env reads besides the buckets, so a developer's shell cannot change a test's outcome.
    for name in (
        "JPEG_QUALITY",
        "TARGET_SSIM",
        "MIN_QUALITY",
        "JPEG_ENCODER",
        "MAX_DIMENSION",
        "KEEP_METADATA",
        "KEEP_GPS",
        "MAX_PIXELS",
        "PROGRESSIVE",
        "OPTIMIZE",
        "MAX_OBJECT_BYTES",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("DEST_BUCKET", DESTINATION)
    monkeypatch.setenv("FAILED_BUCKET", FAILED)


@pytest.fixture
def cloud(function_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    """Start moto in-process, create the stack's buckets, topic and queues, and point the function at them."""
    aws.reset_clients()
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (SOURCE, DESTINATION, FAILED):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        sns = boto3.client("sns", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        topic_arn = sns.create_topic(Name="image-compressor-notifications")["TopicArn"]
        urls = {}
        for name, raw in (("notifications-raw", "true"), ("notifications-envelope", "false")):
            url = sqs.create_queue(QueueName=name)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": raw})
            urls[name] = url
        monkeypatch.setenv("SNS_TOPIC_ARN", topic_arn)
        yield Cloud(s3, sns, sqs, topic_arn, urls["notifications-raw"], urls["notifications-envelope"])
    aws.reset_clients()
