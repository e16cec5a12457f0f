"""Helpers of the function's unit tests: the in-process moto cloud's handle, stored S3 events and a Lambda context."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from ops.defaults import DEFAULT_REGION

REGION = DEFAULT_REGION
SOURCE = "image-source"
DESTINATION = "image-destination"
FAILED = "image-failed"
EVENTS_DIR = Path(__file__).resolve().parent / "events"


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

    def stamp(self, event: dict[str, Any]) -> dict[str, Any]:
        """Return ``event`` with each record's ``eTag`` set to its source object's current ETag, as S3 sends it.

        The stored events carry a placeholder ETag; the function treats an event whose ETag is no longer the
        source's as one for a replaced version (``superseded``). Records of objects that do not exist keep theirs.
        """
        for record in event.get("Records", []):
            obj = record.get("s3", {}).get("object", {})
            if "key" not in obj:
                continue
            key = unquote_plus(obj["key"])
            try:
                obj["eTag"] = self.s3.head_object(Bucket=record["s3"]["bucket"]["name"], Key=key)["ETag"].strip('"')
            except self.s3.exceptions.ClientError:
                continue
        return event

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
