r"""Fault injection for the embedded local cloud: AWS API calls answered with an error, after a delay, or both.

Faults are injected into the real stack: a rule on the server makes matching requests fail the way AWS fails them
(``503 SlowDown`` on S3, ``Throttling`` on SNS, ...), whoever sends them: the deployed function's workers, the
tests, Terraform. Nothing of ours is mocked; the function sees what it would see on AWS.

The server takes rules only when it runs with ``--faults`` (or ``LOCALCLOUD_FAULTS=1``); the test fixtures turn it
on, ``make local-up`` does not. The admin endpoint sits behind the Host/Origin guard like every other route:

- ``POST /_localcloud/faults`` with a JSON rule adds it and answers ``{"id": ...}``;
- ``GET /_localcloud/faults`` lists the rules with how often each matched (``hits``);
- ``DELETE /_localcloud/faults/<id>`` removes one rule, ``DELETE /_localcloud/faults`` removes them all.

A rule (every field but ``service`` optional)::

    {"service": "s3", "operation": "PutObject", "bucket": "dest", "key_prefix": "photos/",
     "status": 503, "code": "SlowDown", "message": "...", "times": 3, "skip": 0,
     "delay_s": 0.0, "after": false}

``operation`` is the AWS API name (``GetObject``, ``PutObject``, ``CopyObject``, ``HeadObject``, ``Publish``,
``SendMessage``, ...; :func:`classify` says how a request is named). ``times`` bounds how many matching requests
fail (none: until the rule is removed); the first ``skip`` matches pass. ``delay_s`` stalls the request first (a
slow or hung call); with ``status`` null the request then goes through, otherwise it fails. ``after`` performs the
request and then answers the error: the write happened, the caller cannot know (an ambiguous write).

Command line, with the server running with ``--faults``::

    curl -s -XPOST localhost:4566/_localcloud/faults \
         -d '{"service": "sns", "operation": "Publish", "code": "Throttling", "status": 400}'
    curl -s -XDELETE localhost:4566/_localcloud/faults
"""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

FAULTS_PATH = "/_localcloud/faults"
FAULTS_ENV = "LOCALCLOUD_FAULTS"

# The request body is read to find a query-protocol action (SNS, SQS, CloudWatch, ...) only up to this size.
_MAX_FORM_BYTES = 1 << 20

_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class RuleError(ValueError):
    """A fault rule that cannot be used; the message says which field is wrong and how."""


@dataclass(slots=True)
class Rule:
    """One fault: which requests it matches and what they get instead of (or before) moto's answer."""

    service: str
    operation: str | None = None
    bucket: str | None = None
    key_prefix: str | None = None
    status: int | None = 503
    code: str = "ServiceUnavailable"
    message: str = "injected by the local cloud's fault injection"
    times: int | None = None
    skip: int = 0
    delay_s: float = 0.0
    after: bool = False
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    hits: int = 0
    seen: int = 0

    @classmethod
    def from_json(cls, document: Any) -> Rule:
        """Return the rule described by a decoded JSON object; raise :class:`RuleError` on a bad field."""
        if not isinstance(document, dict):
            raise RuleError('a fault rule is a JSON object, e.g. {"service": "s3", "operation": "PutObject"}')
        known = {"service", "operation", "bucket", "key_prefix", "status", "code", "message", "times", "skip",
                 "delay_s", "after"}  # fmt: skip
        unknown = sorted(set(document) - known)
        if unknown:
            raise RuleError(f"unknown field(s) {unknown}; a rule takes {sorted(known)}")
        service = document.get("service")
        if not isinstance(service, str) or not service:
            raise RuleError('"service" is required: the AWS service name as signed, e.g. "s3", "sns", "sqs"')
        for name in ("operation", "bucket", "key_prefix", "code", "message"):
            if document.get(name) is not None and not isinstance(document[name], str):
                raise RuleError(f'"{name}" must be a string')
        status = document.get("status", 503)
        if status is not None and (not isinstance(status, int) or not 400 <= status <= 599):
            raise RuleError('"status" must be an HTTP error status (400-599), or null to only delay the request')
        for name in ("times", "skip"):
            value = document.get(name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise RuleError(f'"{name}" must be a whole number of requests (0 or more)')
        delay = document.get("delay_s", 0.0)
        if not isinstance(delay, int | float) or isinstance(delay, bool) or not 0 <= delay <= 900:
            raise RuleError('"delay_s" must be seconds between 0 and 900')
        if status is None and not delay:
            raise RuleError('a rule with "status": null only delays requests: give it a "delay_s"')
        rule = cls(service=service.lower(), status=status, delay_s=float(delay), after=bool(document.get("after")))
        for name in ("operation", "bucket", "key_prefix", "code", "message"):
            if document.get(name) is not None:
                setattr(rule, name, document[name])
        rule.times = document.get("times")
        rule.skip = document.get("skip") or 0
        return rule

    def matches(self, request: Request) -> bool:
        """Return True when ``request`` is one this rule is about (service, operation, bucket, key prefix)."""
        if request.service != self.service:
            return False
        if self.operation is not None and request.operation != self.operation:
            return False
        if self.bucket is not None and request.bucket != self.bucket:
            return False
        return self.key_prefix is None or (request.key or "").startswith(self.key_prefix)

    def describe(self) -> dict[str, Any]:
        """Return the rule as the JSON object the admin endpoint lists."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Request:
    """What a rule can match in a request: the signed service, the API operation, and for S3 the bucket and key."""

    service: str | None
    operation: str | None
    bucket: str | None = None
    key: str | None = None
    protocol: str = "json"  # how AWS words its errors: "s3" (XML), "query" (XML ErrorResponse) or "json"


def _signed_service(environ: dict[str, Any]) -> str | None:
    # SigV4: "Credential=AKID/20260101/eu-west-1/s3/aws4_request", in the Authorization header or a presigned URL.
    auth = environ.get("HTTP_AUTHORIZATION", "")
    scope = auth.split("Credential=", 1)[1].split(",", 1)[0] if "Credential=" in auth else ""
    if not scope:
        scope = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential", [""])[0]
    parts = scope.split("/")
    return parts[3].lower() if len(parts) >= 5 else None


def _s3_operation(method: str, bucket: str | None, key: str | None, query: dict[str, list[str]], environ: dict) -> str:
    if bucket is None:
        return "ListBuckets"
    if key is None:
        if method == "POST" and "delete" in query:
            return "DeleteObjects"
        if "notification" in query:
            return "GetBucketNotificationConfiguration" if method == "GET" else "PutBucketNotificationConfiguration"
        return {"GET": "ListObjects", "HEAD": "HeadBucket", "PUT": "CreateBucket", "DELETE": "DeleteBucket"}.get(
            method, method
        )
    if "tagging" in query:
        return {"GET": "GetObjectTagging", "PUT": "PutObjectTagging", "DELETE": "DeleteObjectTagging"}.get(
            method, method
        )
    if method == "PUT":
        if "HTTP_X_AMZ_COPY_SOURCE" in environ:
            return "UploadPartCopy" if "partNumber" in query else "CopyObject"
        return "UploadPart" if "partNumber" in query else "PutObject"
    if method == "POST":
        return "CreateMultipartUpload" if "uploads" in query else "CompleteMultipartUpload"
    return {"GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(method, method)


def classify(environ: dict[str, Any]) -> tuple[Request, bytes | None]:
    """Name the AWS request in a WSGI ``environ``: service, operation and (S3) bucket and key.

    Returns the :class:`Request` and the body when it had to be read (a form-encoded query-protocol call such as
    SNS ``Publish``); the caller puts that body back in ``wsgi.input``. S3 requests are path-style
    (``/bucket/key``) or virtual-host style on a ``*.localhost`` name. JSON-protocol calls are named by
    ``X-Amz-Target``; REST calls other than S3 by their method and path.
    """
    service = _signed_service(environ)
    method = environ.get("REQUEST_METHOD", "GET").upper()
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    if service == "s3":
        path = environ.get("PATH_INFO", "/")
        host = environ.get("HTTP_HOST", "").split(":", 1)[0]
        labels = host.split(".")
        if len(labels) > 1 and labels[-1] == "localhost" and labels[0] not in ("s3", "localhost"):
            bucket, key = labels[0], unquote(path.lstrip("/")) or None
        else:
            parts = path.lstrip("/").split("/", 1)
            bucket = unquote(parts[0]) or None
            key = unquote(parts[1]) if len(parts) > 1 and parts[1] else None
        return Request(service, _s3_operation(method, bucket, key, query, environ), bucket, key, "s3"), None
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return Request(service, target.rsplit(".", 1)[-1]), None
    if "Action" in query:
        return Request(service, query["Action"][0], protocol="query"), None
    content_type = environ.get("CONTENT_TYPE", "")
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if method == "POST" and "x-www-form-urlencoded" in content_type and 0 < length <= _MAX_FORM_BYTES:
        body = environ["wsgi.input"].read(length)
        action = parse_qs(body.decode("utf-8", errors="replace")).get("Action", [None])[0]
        return Request(service, action, protocol="query"), body
    return Request(service, None), None


def error_body(request: Request, rule: Rule, request_id: str) -> tuple[bytes, str]:
    """Return the error document AWS would send for ``request`` (S3 XML, query XML or JSON) and its content type."""
    message = rule.message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if request.protocol == "s3":
        xml = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{rule.code}</Code><Message>{message}</Message>'
            f"<RequestId>{request_id}</RequestId></Error>"
        )
        return xml.encode(), "application/xml"
    if request.protocol == "query":
        kind = "Sender" if (rule.status or 500) < 500 else "Receiver"
        xml = (
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{rule.code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return xml.encode(), "text/xml"
    return json.dumps({"__type": rule.code, "message": rule.message}).encode(), "application/x-amz-json-1.0"


class FaultInjector:
    """The rules, thread-safe: add, remove, list, and pick the rule (if any) that a request triggers."""

    def __init__(self) -> None:
        self._rules: list[Rule] = []
        self._lock = threading.Lock()

    def add(self, rule: Rule) -> Rule:
        """Add ``rule`` (checked last among the rules already there) and return it."""
        with self._lock:
            self._rules.append(rule)
        return rule

    def remove(self, rule_id: str | None = None) -> int:
        """Remove the rule ``rule_id``, or every rule when it is ``None``; return how many were removed."""
        with self._lock:
            before = len(self._rules)
            self._rules = [] if rule_id is None else [r for r in self._rules if r.id != rule_id]
            return before - len(self._rules)

    def rules(self) -> list[dict[str, Any]]:
        """Return every rule as a JSON object, with its ``hits``."""
        with self._lock:
            return [rule.describe() for rule in self._rules]

    def trigger(self, request: Request) -> Rule | None:
        """Return the first rule that fires for ``request`` and count the hit; ``None`` when the request passes."""
        with self._lock:
            for rule in self._rules:
                if not rule.matches(request):
                    continue
                rule.seen += 1
                if rule.seen <= rule.skip or (rule.times is not None and rule.hits >= rule.times):
                    continue
                rule.hits += 1
                return rule
        return None


def _json(start_response: Callable[..., Any], status: str, document: Any) -> list[bytes]:
    body = json.dumps(document).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class FaultMiddleware:
    """WSGI middleware: serves the admin endpoint and applies the rules to every other request.

    Parameters
    ----------
    app : Any
        The WSGI app behind (moto's).
    injector : FaultInjector | None
        The rules; ``None`` when fault injection is off (the endpoint then says how to turn it on).
    """

    def __init__(self, app: Any, injector: FaultInjector | None) -> None:
        self.app = app
        self.injector = injector

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Answer the admin endpoint, or apply the first matching rule, or pass the request to ``app``."""
        path = environ.get("PATH_INFO", "")
        if path == FAULTS_PATH or path.startswith(FAULTS_PATH + "/"):
            return self._admin(environ, start_response, path[len(FAULTS_PATH) :].strip("/") or None)
        if self.injector is None:
            return self.app(environ, start_response)
        request, body = classify(environ)
        if body is not None:
            environ["wsgi.input"] = io.BytesIO(body)
        rule = self.injector.trigger(request)
        if rule is None:
            return self.app(environ, start_response)
        if rule.delay_s:
            time.sleep(rule.delay_s)
        if rule.status is None:
            return self.app(environ, start_response)
        if rule.after:
            self._consume(environ)
        request_id = uuid.uuid4().hex
        payload, content_type = error_body(request, rule, request_id)
        headers = [("Content-Type", content_type), ("x-amz-request-id", request_id), ("x-amzn-RequestId", request_id)]
        if request.protocol == "json":
            headers.append(("x-amzn-ErrorType", rule.code))
        if environ.get("REQUEST_METHOD") == "HEAD":
            payload = b""
        headers.append(("Content-Length", str(len(payload))))
        start_response(f"{rule.status} {_REASONS.get(rule.status, 'Error')}", headers)
        return [payload]

    def _consume(self, environ: dict[str, Any]) -> None:
        # Let moto carry the request out, then throw its answer away: the caller gets the error instead.
        result = self.app(environ, lambda *_args, **_kwargs: lambda _data: None)
        try:
            for _chunk in result:
                pass
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    def _admin(self, environ: dict[str, Any], start_response: Callable[..., Any], rule_id: str | None) -> list[bytes]:
        if self.injector is None:
            return _json(
                start_response,
                "404 Not Found",
                {"error": f"fault injection is off; start the server with --faults (or {FAULTS_ENV}=1)"},
            )
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if method == "GET":
            return _json(start_response, "200 OK", {"rules": self.injector.rules()})
        if method == "DELETE":
            removed = self.injector.remove(rule_id)
            if rule_id is not None and not removed:
                return _json(start_response, "404 Not Found", {"error": f"no fault rule with id {rule_id!r}"})
            return _json(start_response, "200 OK", {"removed": removed})
        if method == "POST" and rule_id is None:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length) if length else b""
            try:
                rule = Rule.from_json(json.loads(raw or b"null"))
            except ValueError as exc:  # RuleError, or JSON that does not parse
                return _json(start_response, "400 Bad Request", {"error": f"bad fault rule: {exc}"})
            self.injector.add(rule)
            return _json(start_response, "201 Created", {"id": rule.id, "rule": rule.describe()})
        return _json(
            start_response,
            "405 Method Not Allowed",
            {"error": f"use GET or DELETE {FAULTS_PATH}[/<id>], or POST {FAULTS_PATH} with a JSON rule"},
        )
