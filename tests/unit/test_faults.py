"""The fault-injection rules of the embedded local cloud (localcloud.faults), driven through its WSGI middleware."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from localcloud import faults

S3_AUTH = "AWS4-HMAC-SHA256 Credential=test/20261129/eu-west-1/s3/aws4_request, SignedHeaders=host, Signature=x"
SNS_AUTH = S3_AUTH.replace("/s3/", "/sns/")
SQS_AUTH = S3_AUTH.replace("/s3/", "/sqs/")


def environ(method: str, path: str, auth: str = S3_AUTH, body: bytes = b"", **extra: str) -> dict[str, Any]:
    """A WSGI environ as werkzeug builds it for a boto3 request."""
    env = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": extra.pop("query", ""),
        "HTTP_HOST": extra.pop("host", "127.0.0.1:4566"),
        "HTTP_AUTHORIZATION": auth,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    env.update(extra)
    return env


class Backend:
    """A WSGI app standing in for moto: records what reached it and answers 200 with the body it read."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bytes]] = []

    def __call__(self, env: dict[str, Any], start_response: Any) -> list[bytes]:
        body = env["wsgi.input"].read(int(env.get("CONTENT_LENGTH") or 0))
        self.seen.append((env["REQUEST_METHOD"], env["PATH_INFO"], body))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok:" + body]


def call(app: Any, env: dict[str, Any]) -> tuple[str, dict[str, str], bytes]:
    got: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        got["status"], got["headers"] = status, dict(headers)

    body = b"".join(app(env, start_response))
    return got["status"], got["headers"], body


def admin(app: Any, method: str, path: str = "", rule: Any = None) -> tuple[str, Any]:
    body = b"" if rule is None else json.dumps(rule).encode()
    status, _headers, payload = call(app, environ(method, faults.FAULTS_PATH + path, auth="", body=body))
    return status, json.loads(payload)


@pytest.mark.parametrize(
    ("method", "path", "extra", "operation", "bucket", "key"),
    [
        ("GET", "/src/photos/a%20b.jpg", {}, "GetObject", "src", "photos/a b.jpg"),
        ("HEAD", "/src/a.jpg", {}, "HeadObject", "src", "a.jpg"),
        ("PUT", "/dst/a.jpg", {}, "PutObject", "dst", "a.jpg"),
        ("PUT", "/failed/a.jpg", {"HTTP_X_AMZ_COPY_SOURCE": "src/a.jpg"}, "CopyObject", "failed", "a.jpg"),
        ("PUT", "/src/a.jpg", {"query": "tagging"}, "PutObjectTagging", "src", "a.jpg"),
        ("DELETE", "/dst/a.jpg", {}, "DeleteObject", "dst", "a.jpg"),
        ("GET", "/src", {"query": "list-type=2"}, "ListObjects", "src", None),
        ("GET", "/a.jpg", {"host": "src.localhost:4566"}, "GetObject", "src", "a.jpg"),
        ("GET", "/", {}, "ListBuckets", None, None),
    ],
)
def test_s3_requests_are_named_by_operation_bucket_and_key(
    method: str, path: str, extra: dict[str, str], operation: str, bucket: str | None, key: str | None
) -> None:
    request, body = faults.classify(environ(method, path, **extra))
    assert (request.service, request.operation, request.bucket, request.key) == ("s3", operation, bucket, key)
    assert body is None


def test_query_protocol_actions_are_read_from_the_body_and_the_body_is_kept() -> None:
    form = b"Action=Publish&TopicArn=arn%3Aaws%3Asns%3Aeu-west-1%3A123%3At&Message=hi"
    app = faults.FaultMiddleware(Backend(), faults.FaultInjector())
    env = environ("POST", "/", auth=SNS_AUTH, body=form, CONTENT_TYPE="application/x-www-form-urlencoded")
    request, body = faults.classify(dict(env, **{"wsgi.input": io.BytesIO(form)}))
    assert (request.service, request.operation, request.protocol, body) == ("sns", "Publish", "query", form)
    # Through the middleware (no rule), the backend still reads the whole body.
    status, _headers, payload = call(app, env)
    assert status == "200 OK" and payload == b"ok:" + form


def test_json_protocol_calls_are_named_by_their_target() -> None:
    request, _ = faults.classify(environ("POST", "/", auth=SQS_AUTH, HTTP_X_AMZ_TARGET="AmazonSQS.SendMessage"))
    assert (request.service, request.operation, request.protocol) == ("sqs", "SendMessage", "json")


def test_a_rule_answers_aws_s3_error_xml_for_times_requests_then_lets_them_through() -> None:
    backend = Backend()
    app = faults.FaultMiddleware(backend, faults.FaultInjector())
    status, created = admin(app, "POST", rule={"service": "s3", "operation": "PutObject", "bucket": "dst",
                                               "status": 503, "code": "SlowDown", "times": 2})  # fmt: skip
    assert status.startswith("201")
    answers = [call(app, environ("PUT", "/dst/a.jpg", body=b"x")) for _ in range(3)]
    assert [a[0] for a in answers] == ["503 Service Unavailable", "503 Service Unavailable", "200 OK"]
    assert b"<Code>SlowDown</Code>" in answers[0][2] and answers[0][1]["Content-Type"] == "application/xml"
    assert len(backend.seen) == 1  # the failed requests never reached the backend
    # Other buckets and operations are untouched.
    assert call(app, environ("PUT", "/src/a.jpg"))[0] == "200 OK"
    assert call(app, environ("GET", "/dst/a.jpg"))[0] == "200 OK"
    _, listed = admin(app, "GET")
    assert [(r["id"], r["hits"]) for r in listed["rules"]] == [(created["id"], 2)]


def test_skip_lets_the_first_matches_through() -> None:
    app = faults.FaultMiddleware(Backend(), faults.FaultInjector())
    admin(app, "POST", rule={"service": "s3", "operation": "GetObject", "skip": 1, "times": 1, "status": 500,
                             "code": "InternalError"})  # fmt: skip
    statuses = [call(app, environ("GET", "/src/a.jpg"))[0][:3] for _ in range(3)]
    assert statuses == ["200", "500", "200"]


def test_after_performs_the_write_then_answers_the_error() -> None:
    backend = Backend()
    app = faults.FaultMiddleware(backend, faults.FaultInjector())
    admin(app, "POST", rule={"service": "s3", "operation": "PutObject", "after": True, "status": 500,
                             "code": "InternalError"})  # fmt: skip
    status, _headers, body = call(app, environ("PUT", "/dst/a.jpg", body=b"bytes"))
    assert status.startswith("500") and b"InternalError" in body
    assert backend.seen == [("PUT", "/dst/a.jpg", b"bytes")]  # the write happened


def test_query_protocol_errors_are_error_response_xml_and_head_has_no_body() -> None:
    app = faults.FaultMiddleware(Backend(), faults.FaultInjector())
    admin(app, "POST", rule={"service": "sns", "operation": "Publish", "status": 400, "code": "Throttling"})
    admin(app, "POST", rule={"service": "s3", "operation": "HeadObject", "status": 503})
    form = b"Action=Publish&Message=hi"
    env = environ("POST", "/", auth=SNS_AUTH, body=form, CONTENT_TYPE="application/x-www-form-urlencoded")
    status, _headers, body = call(app, env)
    assert status.startswith("400")
    assert b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>" in body
    status, headers, body = call(app, environ("HEAD", "/src/a.jpg"))
    assert status.startswith("503") and body == b"" and headers["Content-Length"] == "0"


def test_rules_are_removed_one_or_all() -> None:
    app = faults.FaultMiddleware(Backend(), faults.FaultInjector())
    _, first = admin(app, "POST", rule={"service": "s3"})
    admin(app, "POST", rule={"service": "sns"})
    assert admin(app, "DELETE", f"/{first['id']}") == ("200 OK", {"removed": 1})
    assert admin(app, "DELETE", f"/{first['id']}")[0].startswith("404")
    assert call(app, environ("GET", "/src/a.jpg"))[0] == "200 OK"
    assert admin(app, "DELETE") == ("200 OK", {"removed": 1})


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        ({"operation": "PutObject"}, '"service" is required'),
        ({"service": "s3", "status": 200}, "HTTP error status"),
        ({"service": "s3", "times": -1}, "whole number"),
        ({"service": "s3", "status": None}, "delay_s"),
        ({"service": "s3", "colour": "red"}, "unknown field"),
        ([1, 2], "JSON object"),
    ],
)
def test_a_bad_rule_is_refused_with_what_to_fix(rule: Any, words: str) -> None:
    app = faults.FaultMiddleware(Backend(), faults.FaultInjector())
    status, answer = admin(app, "POST", rule=rule)
    assert status.startswith("400") and words in answer["error"]
    assert admin(app, "GET")[1] == {"rules": []}


def test_with_injection_off_the_endpoint_says_how_to_turn_it_on_and_requests_pass() -> None:
    app = faults.FaultMiddleware(Backend(), None)
    status, answer = admin(app, "POST", rule={"service": "s3"})
    assert status.startswith("404") and "--faults" in answer["error"]
    assert call(app, environ("GET", "/src/a.jpg"))[0] == "200 OK"
