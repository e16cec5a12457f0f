"""Fault injection on a real embedded server: boto3 sees AWS's errors, the rules count, and nothing else changes."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

from tests.stacks import LocalCloud, fault_rules, injected_fault

pytestmark = pytest.mark.integration


def test_s3_put_fails_with_aws_error_then_recovers_when_the_rule_is_lifted(local_cloud: LocalCloud) -> None:
    s3 = local_cloud.client("s3")
    bucket = f"faults-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": local_cloud.region})
    with injected_fault(local_cloud.endpoint, service="s3", operation="PutObject", bucket=bucket, status=503,
                        code="SlowDown") as rule_id:  # fmt: skip
        with pytest.raises(ClientError) as caught:
            s3.put_object(Bucket=bucket, Key="a b.jpg", Body=b"x")
        assert caught.value.response["Error"]["Code"] == "SlowDown"
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        # The first attempt and boto3's 2 retries (retries={"max_attempts": 2} in these clients) each met the rule.
        assert [r["hits"] for r in fault_rules(local_cloud.endpoint) if r["id"] == rule_id] == [3]
        assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    s3.put_object(Bucket=bucket, Key="a b.jpg", Body=b"x")
    assert s3.get_object(Bucket=bucket, Key="a b.jpg")["Body"].read() == b"x"
    assert fault_rules(local_cloud.endpoint) == []


def test_an_ambiguous_write_happens_although_the_caller_gets_an_error(local_cloud: LocalCloud) -> None:
    s3 = local_cloud.client("s3")
    bucket = f"faults-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": local_cloud.region})
    with injected_fault(local_cloud.endpoint, service="s3", operation="PutObject", bucket=bucket, status=500,
                        code="InternalError", after=True):  # fmt: skip
        with pytest.raises(ClientError) as caught:
            s3.put_object(Bucket=bucket, Key="k.jpg", Body=b"written")
        assert caught.value.response["Error"]["Code"] == "InternalError"
    assert s3.get_object(Bucket=bucket, Key="k.jpg")["Body"].read() == b"written"


def test_sns_publish_is_throttled_in_aws_wording(local_cloud: LocalCloud) -> None:
    sns = local_cloud.client("sns")
    topic = sns.create_topic(Name=f"faults-{uuid.uuid4().hex[:8]}")["TopicArn"]
    with injected_fault(local_cloud.endpoint, service="sns", operation="Publish", status=400, code="Throttling"):
        with pytest.raises(ClientError) as caught:
            sns.publish(TopicArn=topic, Message="hello")
        assert caught.value.response["Error"]["Code"] == "Throttling"
        sns.list_topics()  # other SNS calls pass
    assert "MessageId" in sns.publish(TopicArn=topic, Message="hello")
