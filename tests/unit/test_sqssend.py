"""SQS SendMessage to a standard queue without moto's pass over every message (localcloud.sqssend), in moto."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.sqs import models as sqs_models

from localcloud import sqssend

REGION = "eu-west-1"


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        sqssend.install()
        try:
            yield boto3.client("sqs", region_name=REGION)
        finally:
            sqssend.uninstall()


def test_a_standard_queue_never_builds_its_attributes_to_send(sqs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    url = sqs.create_queue(QueueName="plain")["QueueUrl"]

    def refuse(self: Any) -> Any:
        raise AssertionError("send_message read every attribute of the queue")

    monkeypatch.setattr(sqs_models.Queue, "attributes", property(refuse))
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"body {i}")
    monkeypatch.undo()
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "3"


def test_messages_arrive_as_moto_sends_them(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="plain", Attributes={"DelaySeconds": "0"})["QueueUrl"]
    sent = sqs.send_message(
        QueueUrl=url,
        MessageBody="hello",
        MessageAttributes={"status": {"DataType": "String", "StringValue": "compressed"}},
    )
    got = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], AttributeNames=["All"])["Messages"]
    assert [m["MessageId"] for m in got] == [sent["MessageId"]]
    assert got[0]["Body"] == "hello"
    assert got[0]["MessageAttributes"]["status"]["StringValue"] == "compressed"
    assert got[0]["MD5OfBody"] == sent["MD5OfMessageBody"]


def test_a_delayed_message_waits(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="slow", Attributes={"DelaySeconds": "60"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="later")
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"
    assert "Messages" not in sqs.receive_message(QueueUrl=url)


def test_a_delay_over_fifteen_minutes_is_refused_as_moto_refuses_it(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="plain")["QueueUrl"]
    with pytest.raises(sqs.exceptions.ClientError, match="DelaySeconds must be >= 0 and <= 900"):
        sqs.send_message(QueueUrl=url, MessageBody="x", DelaySeconds=901)


def test_a_fifo_queue_keeps_content_based_deduplication(sqs: Any) -> None:
    url = sqs.create_queue(
        QueueName="ordered.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    )["QueueUrl"]
    for _ in range(2):
        sqs.send_message(QueueUrl=url, MessageBody="same", MessageGroupId="g")
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "1"


def test_uninstall_restores_motos_method() -> None:
    original = sqs_models.SQSBackend.send_message
    sqssend.install()
    assert sqs_models.SQSBackend.send_message is sqssend.send_message
    sqssend.uninstall()
    assert sqs_models.SQSBackend.send_message is original
