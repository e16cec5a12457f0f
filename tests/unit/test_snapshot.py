"""The embedded cloud's snapshot (``localcloud.snapshot``): moto's state saved and loaded back, in process.

Resources like the stack's are made with boto3 under ``mock_aws``, saved, wiped (moto's own reset) and loaded: the
same ids, attributes and links come back, and the services still work together (SNS delivers to the restored
queue). The server's snapshot path and restore are below; the warm ``up`` on a real stack is in
``tests/integration/test_local_state.py``.
"""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from moto.core.base_backend import BackendDict

from localcloud import server, snapshot

REGION = "eu-west-1"


def client(service: str):
    return boto3.client(service, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")


def function_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return {'ok': True}\n")
    return buffer.getvalue()


def make_stack() -> dict[str, str]:
    """A small stack like ours: bucket + object, queue, topic with an SQS subscription, role, function, logs."""
    s3, sqs, sns, iam, lam, logs = (client(name) for name in ("s3", "sqs", "sns", "iam", "lambda", "logs"))
    s3.create_bucket(Bucket="src", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket="src", Key="a b.jpg", Body=b"jpeg bytes", Metadata={"k": "v"})
    queue_url = sqs.create_queue(QueueName="notes", Attributes={"VisibilityTimeout": "45"})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    key_arn = client("kms").create_key(Description="topic key")["KeyMetadata"]["Arn"]
    topic_arn = sns.create_topic(Name="topic", Attributes={"KmsMasterKeyId": key_arn})["TopicArn"]
    subscription = sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)["SubscriptionArn"]
    role = iam.create_role(RoleName="fn-role", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"}))
    lam.create_function(
        FunctionName="fn",
        Runtime="python3.13",
        Role=role["Role"]["Arn"],
        Handler="index.handler",
        Code={"ZipFile": function_zip()},
        Environment={"Variables": {"DEST_BUCKET": "dst"}},
    )
    logs.create_log_group(logGroupName="/aws/lambda/fn")
    return {
        "queue_url": queue_url,
        "topic_arn": topic_arn,
        "key_arn": key_arn,
        "subscription": subscription,
        "role_id": role["Role"]["RoleId"],
        "function": {
            k: v for k, v in lam.get_function_configuration(FunctionName="fn").items() if k != "ResponseMetadata"
        },
    }


@mock_aws
def test_a_saved_state_comes_back_with_the_same_ids_and_links(tmp_path: Path) -> None:
    made = make_stack()
    summary = snapshot.dump(tmp_path / "state.pickle")
    assert {"s3", "sqs", "sns", "iam", "lambda", "logs", "kms"} <= set(summary["services"])
    assert summary["bytes"] == (tmp_path / "state.pickle").stat().st_size

    BackendDict.reset()  # what a new server starts with: nothing
    assert client("s3").list_buckets()["Buckets"] == []

    loaded = snapshot.load(tmp_path / "state.pickle")
    assert set(loaded["services"]) == set(summary["services"])
    s3, sqs, sns, iam, lam = (client(name) for name in ("s3", "sqs", "sns", "iam", "lambda"))
    obj = s3.get_object(Bucket="src", Key="a b.jpg")
    assert obj["Body"].read() == b"jpeg bytes" and obj["Metadata"] == {"k": "v"}
    assert iam.get_role(RoleName="fn-role")["Role"]["RoleId"] == made["role_id"]
    function = lam.get_function_configuration(FunctionName="fn")
    assert {k: v for k, v in function.items() if k != "ResponseMetadata"} == made["function"]
    assert function["Environment"]["Variables"] == {"DEST_BUCKET": "dst"}
    assert lam.get_function(FunctionName=function["FunctionArn"])["Configuration"]["FunctionName"] == "fn"
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=made["topic_arn"])["Subscriptions"]
    assert [sub["SubscriptionArn"] for sub in subscriptions] == [made["subscription"]]
    # A KMS key (its key material is a cryptography object) comes back and still encrypts and decrypts.
    kms = client("kms")
    assert kms.describe_key(KeyId=made["key_arn"])["KeyMetadata"]["Description"] == "topic key"
    sealed = kms.encrypt(KeyId=made["key_arn"], Plaintext=b"secret")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=sealed)["Plaintext"] == b"secret"
    attributes = sqs.get_queue_attributes(QueueUrl=made["queue_url"], AttributeNames=["VisibilityTimeout"])
    assert attributes["Attributes"]["VisibilityTimeout"] == "45"

    # The services still reach each other: a message published to the topic lands on the restored queue.
    sns.publish(TopicArn=made["topic_arn"], Message="hello")
    received = sqs.receive_message(QueueUrl=made["queue_url"], WaitTimeSeconds=1)["Messages"]
    assert json.loads(received[0]["Body"])["Message"] == "hello"
    # and the restored state can be written to again
    s3.put_object(Bucket="src", Key="new.jpg", Body=b"x")
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket="src")["Contents"]) == ["a b.jpg", "new.jpg"]


@mock_aws
def test_a_snapshot_of_another_moto_or_format_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    client("sqs").create_queue(QueueName="kept")
    with pytest.raises(snapshot.SnapshotError, match="no snapshot"):
        snapshot.load(tmp_path / "missing.pickle")
    (tmp_path / "broken.pickle").write_bytes(b"not a pickle")
    with pytest.raises(snapshot.SnapshotError, match="cannot read"):
        snapshot.load(tmp_path / "broken.pickle")
    (tmp_path / "old.pickle").write_bytes(pickle.dumps({"format": snapshot.FORMAT, "moto": "4.0.0", "python": [3, 9]}))
    with pytest.raises(snapshot.SnapshotError, match="apply again"):
        snapshot.load(tmp_path / "old.pickle")
    assert [q.rsplit("/", 1)[-1] for q in client("sqs").list_queues()["QueueUrls"]] == ["kept"]


def call(app, method: str, path: str) -> tuple[str, dict]:
    """Call a WSGI app once; return the status line and the JSON body."""
    seen: dict[str, str] = {}

    def start_response(status: str, headers: list) -> None:
        seen["status"] = status

    body = b"".join(app({"REQUEST_METHOD": method, "PATH_INFO": path}, start_response))
    return seen["status"], json.loads(body)


def inner(environ, start_response):
    start_response("200 OK", [])
    return [b'{"moto": true}']


@mock_aws
def test_the_servers_snapshot_path_saves_on_post_only_and_only_when_configured(tmp_path: Path) -> None:
    client("sqs").create_queue(QueueName="saved")
    target = tmp_path / "snap" / "emulator.pickle"
    app = server.SnapshotMiddleware(inner, target)
    assert call(app, "GET", "/123456789012/saved") == ("200 OK", {"moto": True})  # everything else is moto's
    status, body = call(app, "GET", server.SNAPSHOT_PATH)
    assert status.startswith("405") and "POST" in body["error"]
    status, body = call(server.SnapshotMiddleware(inner, None), "POST", server.SNAPSHOT_PATH)
    assert status.startswith("404") and "--snapshot-file" in body["error"]
    status, body = call(app, "POST", server.SNAPSHOT_PATH)
    assert status == "200 OK" and body["path"] == str(target) and "sqs" in body["services"]
    assert target.stat().st_size == body["bytes"]


def test_a_server_that_cannot_restore_starts_empty_and_says_why(tmp_path: Path) -> None:
    assert server.restore(None) == ({"restored_from": None, "restore_error": None}, [])
    (tmp_path / "broken.pickle").write_bytes(b"not a pickle")
    info, pending = server.restore(tmp_path / "broken.pickle")
    assert pending == []
    assert info["restored_from"] is None and "cannot read the snapshot" in info["restore_error"]
