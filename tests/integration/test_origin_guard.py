"""The running local clouds (embedded, MiniStack) refuse foreign Hosts (DNS rebinding) and foreign web origins;
loopback ones work; MiniStack listens on 127.0.0.1 only."""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import os
import subprocess
from pathlib import Path

from ops import defaults, launch, procs


def request(port: int, method: str, path: str, headers: dict[str, str]) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, headers=headers)  # Host is sent as given (http.client keeps an explicit Host)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def assert_guarded(port: int) -> None:
    """The emulator on ``port`` serves loopback callers and refuses foreign Hosts, origins and preflights."""
    functions = "/2015-03-31/functions/"  # Lambda ListFunctions: what a page would use to find code to run
    # The emulators route by the credential scope of the signature; the signature itself is not checked.
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


def test_foreign_hosts_and_origins_are_refused_loopback_ones_served(local_cloud) -> None:
    assert_guarded(local_cloud.port)


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


def non_loopback_addresses() -> list[str]:
    """This machine's IPv4 addresses outside 127.0.0.0/8 (from the routing table's local entries)."""
    found = set()
    with contextlib.suppress(OSError):
        lines = Path("/proc/net/fib_trie").read_text().splitlines()
        found = {before.split()[-1] for before, line in zip(lines, lines[1:], strict=False) if "/32 host LOCAL" in line}
    return sorted(a for a in found if not a.startswith("127."))


def listening_addresses(port: int) -> set[str]:
    """Local IPv4/IPv6 addresses with a socket listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for name in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.split(":")
                if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    raw = bytes.fromhex(address)
                    if len(raw) == 4:
                        found.add(str(ipaddress.IPv4Address(raw[::-1])))
                    else:
                        words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                        found.add(str(ipaddress.IPv6Address(words)))
    return found


def test_ministack_behind_the_guard_listens_on_loopback_only_and_refuses_foreign_hosts_and_origins(
    tmp_path: Path,
) -> None:
    handle = launch.start_ministack(procs.free_port(), tmp_path, exit_with=os.getpid())
    port = handle.port
    try:
        assert listening_addresses(port) == {"127.0.0.1"}
        for address in non_loopback_addresses():
            assert procs.probe(address, port) is not None, f"MiniStack answers on {address}"

        assert_guarded(port)
    finally:
        assert procs.stop_group(handle.pid)


def test_ministack_refuses_to_bind_anything_but_loopback(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(launch.ministack_python()), "-m", launch.MINISTACK_MARKER, "--host", "0.0.0.0", "--port", "1"],
        cwd=defaults.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0 and "loopback only" in result.stderr
