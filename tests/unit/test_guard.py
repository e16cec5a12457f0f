"""The local cloud's origin guard as a WSGI middleware: Host and Origin checks, CORS answers (pure, no server)."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest

from localcloud.guard import AsgiOriginGuard, OriginGuard, OriginPolicy, is_loopback_host


def moto_like_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    # Stands in for moto's app, which answered every origin with CORS "*" before the guard existed.
    start_response("200 OK", [("Content-Type", "text/plain"), ("Access-Control-Allow-Origin", "*")])
    return [b"ok"]


def call(policy: OriginPolicy, method: str = "GET", **headers: str) -> tuple[str, dict[str, str], bytes]:
    environ = {"REQUEST_METHOD": method, "PATH_INFO": "/", "SERVER_NAME": "127.0.0.1"}
    environ.update({"HTTP_" + name.upper(): value for name, value in headers.items()})
    seen: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        seen["status"], seen["headers"] = status, response_headers

    body = b"".join(OriginGuard(moto_like_app, policy)(environ, start_response))
    names = [name for name, _ in seen["headers"]]
    assert len(names) == len({n.lower() for n in names}), f"a header is sent twice: {names}"
    return seen["status"], dict(seen["headers"]), body


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "localhost:4566",
        "LOCALHOST:4566",
        "my-bucket.localhost:4566",
        "127.0.0.1:4566",
        "127.1.2.3",
        "[::1]:4566",
        "localhost.localstack.cloud:4566",
        "s3.localhost.localstack.cloud:4566",
    ],
)
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize(
    "host",
    [
        "",
        "evil.example:4566",
        "localhost.evil.example",
        "evillocalhost:4566",
        "10.0.0.5:4566",
        "0.0.0.0:4566",
        "[2001:db8::1]:4566",
        "localstack.cloud",
    ],
)
def test_foreign_hosts(host: str) -> None:
    assert not is_loopback_host(host)


def test_requests_without_origin_pass_through_untouched() -> None:
    status, headers, body = call(OriginPolicy(), host="localhost:4566")
    assert (status, body) == ("200 OK", b"ok")


def test_a_foreign_host_is_refused_with_what_to_do_even_without_origin() -> None:
    status, _, body = call(OriginPolicy(), host="rebound.evil.example:4566")
    assert status == "403 Forbidden"
    assert "DNS rebinding" in json.loads(body)["message"]


def test_a_foreign_origin_is_refused_and_told_how_to_allow_it() -> None:
    status, headers, body = call(OriginPolicy(), host="localhost:4566", origin="https://evil.example")
    assert status == "403 Forbidden" and "Access-Control-Allow-Origin" not in headers
    assert "EXTRA_CORS_ALLOWED_ORIGINS=https://evil.example" in json.loads(body)["message"]


def test_a_preflight_from_a_foreign_origin_is_refused() -> None:
    status, _, _ = call(
        OriginPolicy(),
        "OPTIONS",
        host="localhost:4566",
        origin="http://evil.example",
        access_control_request_method="PUT",
    )
    assert status == "403 Forbidden"


def test_a_loopback_origin_gets_cors_for_itself_never_star() -> None:
    status, headers, body = call(OriginPolicy(), host="127.0.0.1:4566", origin="http://localhost:8501")
    assert (status, body) == ("200 OK", b"ok")
    assert headers["Access-Control-Allow-Origin"] == "http://localhost:8501"
    assert headers["Vary"] == "Origin"


def test_a_preflight_from_a_loopback_origin_is_answered_here() -> None:
    status, headers, body = call(
        OriginPolicy(),
        "OPTIONS",
        host="localhost:4566",
        origin="http://127.0.0.1:3000",
        access_control_request_method="PUT",
        access_control_request_headers="content-type,x-amz-date",
    )
    assert status == "204 No Content" and body == b""
    assert headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:3000"
    assert headers["Access-Control-Allow-Headers"] == "content-type,x-amz-date"
    assert "PUT" in headers["Access-Control-Allow-Methods"]


def test_null_and_non_http_origins_are_refused() -> None:
    for origin in ("null", "file://", "chrome-extension://abc"):
        assert call(OriginPolicy(), host="localhost", origin=origin)[0] == "403 Forbidden"


def test_extra_origins_come_from_localstacks_setting() -> None:
    policy = OriginPolicy.from_env({"EXTRA_CORS_ALLOWED_ORIGINS": " https://App.example.com/ ,http://devbox:3000"})
    assert call(policy, host="localhost", origin="https://app.example.com")[0] == "200 OK"
    assert call(policy, host="localhost", origin="http://devbox:3000")[0] == "200 OK"
    assert call(policy, host="localhost", origin="http://devbox:3001")[0] == "403 Forbidden"


def test_disable_cors_checks_lets_every_origin_in_but_not_foreign_hosts() -> None:
    policy = OriginPolicy.from_env({"DISABLE_CORS_CHECKS": "1"})
    assert call(policy, host="localhost", origin="https://evil.example")[0] == "200 OK"
    assert call(policy, host="evil.example", origin="https://evil.example")[0] == "403 Forbidden"


# -- the same rule as ASGI middleware (MiniStack's front) -------------------------------------------------------------


def run_async(coroutine: Any) -> None:
    """Run ``coroutine`` to the end on a fresh event loop in a thread of its own.

    ``asyncio.run`` refuses to start in a thread whose event loop is running, and in a whole-suite run Playwright's
    session-scoped browser keeps one running in the main thread.
    """
    failure: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coroutine)
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


async def ministack_like_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    # Stands in for MiniStack's app, which answers every origin with CORS "*" by itself.
    headers = [(b"content-type", b"text/plain"), (b"access-control-allow-origin", b"*")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})


def call_asgi(policy: OriginPolicy, method: str = "GET", **headers: str) -> tuple[int, dict[str, str], bytes]:
    scope = {
        "type": "http",
        "method": method,
        "path": "/",
        "server": ("127.0.0.1", 4566),
        "headers": [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()],
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    run_async(AsgiOriginGuard(ministack_like_app, policy)(scope, receive, send))
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    names = [k.decode().lower() for k, _ in start["headers"]]
    assert len(names) == len(set(names)), f"a header is sent twice: {names}"
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, body


def test_asgi_guard_passes_loopback_requests_without_origin_and_drops_the_apps_star() -> None:
    status, headers, body = call_asgi(OriginPolicy(), host="localhost:4566")
    assert (status, body) == (200, b"ok") and headers["content-type"] == "text/plain"
    assert "access-control-allow-origin" not in headers  # MiniStack's "*" never leaves the guard


def test_asgi_guard_refuses_foreign_hosts_and_origins_like_the_wsgi_one() -> None:
    status, _, body = call_asgi(OriginPolicy(), host="rebound.evil.example:4566")
    assert status == 403 and "DNS rebinding" in json.loads(body)["message"]
    status, headers, body = call_asgi(OriginPolicy(), host="localhost:4566", origin="https://evil.example")
    assert status == 403 and "access-control-allow-origin" not in headers
    assert "EXTRA_CORS_ALLOWED_ORIGINS=https://evil.example" in json.loads(body)["message"]
    preflight = {"host": "localhost", "origin": "http://evil.example", "access_control_request_method": "PUT"}
    assert call_asgi(OriginPolicy(), "OPTIONS", **preflight)[0] == 403


def test_asgi_guard_replaces_the_apps_star_with_the_allowed_origin_and_answers_preflights() -> None:
    status, headers, body = call_asgi(OriginPolicy(), host="127.0.0.1:4566", origin="http://localhost:8501")
    assert (status, body) == (200, b"ok")
    assert headers["access-control-allow-origin"] == "http://localhost:8501" and headers["vary"] == "Origin"
    status, headers, body = call_asgi(
        OriginPolicy(), "OPTIONS", host="localhost", origin="http://127.0.0.1:3000", access_control_request_method="PUT"
    )
    assert (status, body) == (204, b"") and headers["access-control-allow-origin"] == "http://127.0.0.1:3000"


def test_asgi_guard_closes_a_websocket_from_a_foreign_host_and_leaves_lifespan_alone() -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope)

    async def send(message: dict[str, Any]) -> None:
        seen.append(message)

    async def receive() -> dict[str, Any]:
        return {}

    guard = AsgiOriginGuard(app, OriginPolicy())
    run_async(guard({"type": "websocket", "headers": [(b"host", b"evil.example")]}, receive, send))
    run_async(guard({"type": "lifespan"}, receive, send))
    assert seen == [{"type": "websocket.close", "code": 1008}, {"type": "lifespan"}]
