"""The running local cloud refuses foreign Hosts (DNS rebinding) and foreign web origins; loopback ones work."""

from __future__ import annotations

import http.client
import os
from pathlib import Path

from ops import launch, procs


def request(port: int, method: str, path: str, headers: dict[str, str]) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, headers=headers)  # Host is sent as given (http.client keeps an explicit Host)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def test_foreign_hosts_and_origins_are_refused_loopback_ones_served(local_cloud) -> None:
    port = local_cloud.port
    functions = "/2015-03-31/functions/"  # Lambda ListFunctions: what a page would use to find code to run
    # moto routes by the credential scope of the signature; the signature itself is not checked.
    scope = "AWS4-HMAC-SHA256 Credential=test/20261129/eu-west-1/lambda/aws4_request, SignedHeaders=host, Signature=0"
    loopback = {"Host": f"localhost:{port}", "Authorization": scope}

    assert request(port, "GET", functions, loopback).status == 200
    assert request(port, "GET", functions, {**loopback, "Host": f"evil.example:{port}"}).status == 403
    assert request(port, "GET", "/", {"Host": f"127.0.0.1:{port}"}).status == 200  # S3 ListBuckets

    refused = request(port, "GET", functions, {**loopback, "Origin": "https://evil.example"})
    assert refused.status == 403 and refused.getheader("Access-Control-Allow-Origin") is None
    preflight = {**loopback, "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    assert request(port, "OPTIONS", functions, preflight).status == 403

    dashboard = request(port, "GET", functions, {**loopback, "Origin": "http://localhost:8501"})
    assert dashboard.status == 200
    assert dashboard.getheader("Access-Control-Allow-Origin") == "http://localhost:8501"  # never "*"


def test_extra_cors_allowed_origins_lets_a_named_origin_in(tmp_path: Path) -> None:
    env = {**os.environ, "EXTRA_CORS_ALLOWED_ORIGINS": "http://devbox.example:3000"}
    handle = launch.start_localcloud(procs.free_port(), tmp_path, env=env, exit_with=os.getpid())
    try:
        headers = {"Host": f"localhost:{handle.port}"}
        allowed = request(handle.port, "GET", "/", {**headers, "Origin": "http://devbox.example:3000"})
        assert allowed.status == 200
        assert allowed.getheader("Access-Control-Allow-Origin") == "http://devbox.example:3000"
        assert request(handle.port, "GET", "/", {**headers, "Origin": "http://devbox.example:3001"}).status == 403
    finally:
        assert procs.stop_group(handle.pid)
