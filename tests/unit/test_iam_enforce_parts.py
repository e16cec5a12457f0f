"""The pure parts of IAM enforcement: the switches, the caller's key, the record, each service's denial shape."""

from __future__ import annotations

import json

import pytest

from localcloud import iamrecord
from localcloud.iamenforce import Denied, Mode, credential_scope, denied_error
from localcloud.iamrecord import DecisionRecord, Denial
from localcloud.iamseam import iam_action, resource_of
from localcloud.switches import flag


@pytest.mark.parametrize(
    ("env", "mode"),
    [
        ({}, "enforce"),
        ({"ENFORCE_IAM": ""}, "enforce"),
        ({"ENFORCE_IAM": "0"}, "off"),
        ({"ENFORCE_IAM": "true", "IAM_SOFT_MODE": "1"}, "soft"),
        ({"IAM_SOFT_MODE": "yes"}, "soft"),
    ],
)
def test_the_switches_use_localstacks_names(env, mode):
    assert Mode.from_env(env).name == mode


def test_a_switch_that_is_not_one_says_what_to_write():
    with pytest.raises(ValueError, match=r"ENFORCE_IAM='maybe' is not a switch: use ENFORCE_IAM=1 \(on\)"):
        flag({"ENFORCE_IAM": "maybe"}, "ENFORCE_IAM", True)


def test_the_callers_key_comes_from_the_signature_or_a_presigned_url():
    header = {
        "Authorization": "AWS4-HMAC-SHA256 Credential=ASIAXYZ/20261206/eu-west-1/sns/aws4_request, "
        "SignedHeaders=host, Signature=abc"
    }
    assert credential_scope(header, {}) == ("ASIAXYZ", "eu-west-1", "sns")
    query = {"X-Amz-Credential": ["AKIAUSER/20261206/eu-west-1/s3/aws4_request"]}
    assert credential_scope({}, query) == ("AKIAUSER", "eu-west-1", "s3")
    assert credential_scope({}, {}) is None


@pytest.mark.parametrize(
    ("service", "json_protocol", "status", "code"),
    [
        ("sns", False, 403, "AuthorizationError"),
        ("sqs", True, 403, "AccessDenied"),
        ("kms", True, 400, "AccessDeniedException"),
        ("logs", True, 400, "AccessDeniedException"),
        ("lambda", True, 403, "AccessDeniedException"),
        ("iam", False, 403, "AccessDenied"),
    ],
)
def test_each_service_denies_with_its_own_status_and_code(service, json_protocol, status, code):
    error = denied_error(service, "User: u is not authorized to perform: x on resource: y because z", json_protocol)
    assert isinstance(error, Denied)
    assert error.code == status
    if json_protocol:
        assert json.loads(error.description)["__type"] == code
    else:
        assert f"<Code>{code}</Code>" in error.description
    assert "is not authorized to perform: x on resource: y because z" in error.description


def test_s3_denies_with_s3s_own_error():
    error = denied_error("s3", "User: u is not authorized", False)
    assert (error.code, str(error.message)) == ("AccessDenied", "User: u is not authorized")


@pytest.mark.parametrize(
    ("service", "operation", "action"),
    [
        ("lambda", "Invoke", "lambda:InvokeFunction"),
        ("monitoring", "DescribeAlarms", "cloudwatch:DescribeAlarms"),
        ("sns", "Publish", "sns:Publish"),
    ],
)
def test_api_operations_get_their_iam_action_names(service, operation, action):
    assert iam_action(service, operation) == action


@pytest.mark.parametrize(
    ("service", "found", "arn"),
    [
        ("sns", {"TopicArn": "arn:aws:sns:eu-west-1:1:t"}, "arn:aws:sns:eu-west-1:1:t"),
        ("sqs", {"QueueUrl": "http://127.0.0.1:4566/1/q"}, "arn:aws:sqs:eu-west-1:1:q"),
        (
            "logs",
            {"logGroupName": "/aws/lambda/f", "logStreamName": "s"},
            "arn:aws:logs:eu-west-1:1:log-group:/aws/lambda/f:log-stream:s",
        ),
        ("logs", {"logGroupName": "/g"}, "arn:aws:logs:eu-west-1:1:log-group:/g:*"),
        ("lambda", {}, "arn:aws:lambda:eu-west-1:1:function:f"),
        ("iam", {"RoleName": "r"}, "arn:aws:iam::1:role/r"),
        ("cloudwatch", {}, "*"),
    ],
)
def test_each_service_names_the_resource_a_call_acts_on(service, found, arn):
    path = "/2015-03-31/functions/f/invocations" if service == "lambda" else "/"
    assert resource_of(service, f"{service}:X", "*", found, "1", "eu-west-1", path) == arn


def denial(n: int) -> Denial:
    return Denial(f"t{n}", "p", f"s3:A{n}", "r", "because", "User: p ...", None, None, True)


def test_the_record_lists_denials_newest_first_keeps_the_latest_and_counts_them_all(monkeypatch):
    monkeypatch.setattr(iamrecord, "KEPT_DENIALS", 3)
    record = DecisionRecord()
    for n in range(5):
        record.add("p", f"s3:A{n}", "r", False, denial(n))
    record.add("p", "s3:GetObject", "r", True)
    document = record.document("enforce", True)
    assert document["denials_total"] == 5
    assert [d["action"] for d in document["denials"]] == ["s3:A4", "s3:A3", "s3:A2"]
    assert {
        "principal": "p",
        "action": "s3:GetObject",
        "resource": "r",
        "count": 1,
        "allowed": True,
        "policy": None,
        "sid": None,
    } in document["used"]
    record.clear()
    assert record.document("enforce", True)["denials"] == []
    assert record.denials_total == 0


def test_the_record_keeps_a_bounded_number_of_counts(monkeypatch):
    monkeypatch.setattr(iamrecord, "KEPT_USED", 2)
    record = DecisionRecord()
    for resource in ("a", "b", "c", "a"):
        record.add("p", "s3:GetObject", resource, True)
    document = record.document("enforce", True)
    assert [(u["resource"], u["count"]) for u in document["used"]] == [("a", 2), ("b", 1)]
    assert document["used_not_kept"] == 1


def test_an_unknown_condition_key_is_reported_once():
    record = DecisionRecord()
    assert record.unknown_key("aws:SourceVpc") is True
    assert record.unknown_key("aws:SourceVpc") is False
    assert record.document("soft", True)["unknown_keys"] == ["aws:SourceVpc"]
