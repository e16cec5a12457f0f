"""Keep web pages out of the local clouds: loopback Hosts only, cross-origin requests from loopback only.

The local cloud runs whatever function code is deployed to it as a process on the developer's machine and serves
every bucket without credentials. A web page the developer visits must not be able to drive it:

- **DNS rebinding.** A request whose ``Host`` is not a loopback name (``localhost``, ``*.localhost``,
  ``127.0.0.0/8``, ``[::1]``, LocalStack's ``localhost.localstack.cloud`` and its subdomains, which resolve to
  127.0.0.1) is refused with 403, whatever its origin: a rebinding page reaches the port under its own host name.
- **Cross-origin requests.** A request with an ``Origin`` header (browsers send one on cross-origin and on
  non-GET requests) is refused with 403 unless that origin is a loopback one (``http://localhost:8501``, the
  dashboard, or any ``http(s)://127.x.y.z:port``) or listed in ``EXTRA_CORS_ALLOWED_ORIGINS`` (comma-separated,
  LocalStack's own setting). An allowed origin gets CORS headers for itself, never ``*``; preflights are answered
  here. ``DISABLE_CORS_CHECKS=1`` (also LocalStack's name) turns the origin check off, not the Host check.

Requests without ``Origin`` (boto3, the AWS CLI, Terraform, curl) only go through the Host check. moto's own
global CORS (``*`` for every origin) is switched off by :data:`MOTO_CORS_ENV` before moto is imported.

One rule (:func:`judge`), two middlewares: :class:`OriginGuard` (WSGI) in front of the embedded server's moto app,
:class:`AsgiOriginGuard` (ASGI) in front of MiniStack's app (:mod:`localcloud.ministack`), which answers every
origin with CORS ``*`` and every Host by itself. Standard library only: it runs in MiniStack's venv too.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from localcloud.switches import ON_WORDS

#: Environment variable moto reads at import: ``true`` keeps flask-cors (``*`` for every origin) off its app.
MOTO_CORS_ENV = "MOTO_DISABLE_GLOBAL_CORS"
#: More origins allowed cross-origin, comma-separated (``https://app.example.com,http://devbox:3000``).
EXTRA_ORIGINS_ENV = "EXTRA_CORS_ALLOWED_ORIGINS"
#: ``1``/``true`` switches the origin check off (the Host check stays on).
DISABLE_CORS_ENV = "DISABLE_CORS_CHECKS"

#: The address both local clouds (``localcloud.server``, ``localcloud.ministack``) bind by default: loopback only
#: (equal to ``ops.defaults.LOCAL_HOST``, pinned by a test).
LOOPBACK_HOST = "127.0.0.1"

_LOOPBACK_NAMES = ("localhost", "localhost.localstack.cloud")
_CORS_METHODS = "GET, HEAD, PUT, POST, DELETE, PATCH, OPTIONS"
_CORS_MAX_AGE = "600"


def is_loopback_host(host: str) -> bool:
    """Return True when ``host`` (a Host header or an URL's netloc, port allowed) names this machine's loopback.

    Parameters
    ----------
    host : str
        ``name``, ``name:port``, ``[v6]`` or ``[v6]:port``.

    Returns
    -------
    bool
        True for ``localhost``, ``*.localhost``, ``localhost.localstack.cloud`` and its subdomains (S3
        virtual-host style buckets included), ``127.0.0.0/8`` and ``::1``; False for anything else, empty included.
    """
    name = _hostname(host)
    if not name:
        return False
    if any(name == root or name.endswith("." + root) for root in _LOOPBACK_NAMES):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _hostname(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else ""
    if host.count(":") > 1:  # a bare IPv6 address
        return host
    return host.split(":", 1)[0].rstrip(".")


@dataclass(frozen=True)
class OriginPolicy:
    """Which cross-origin callers may use the local cloud.

    Attributes
    ----------
    extra_origins : frozenset[str]
        Origins allowed besides the loopback ones, normalised to ``scheme://host[:port]`` in lower case.
    checks_enabled : bool
        False when ``DISABLE_CORS_CHECKS`` is set: every origin passes (the Host check still applies).
    """

    extra_origins: frozenset[str] = field(default_factory=frozenset)
    checks_enabled: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OriginPolicy:
        """Read ``EXTRA_CORS_ALLOWED_ORIGINS`` and ``DISABLE_CORS_CHECKS`` from ``env``."""
        extra = frozenset(_normalise_origin(item) for item in env.get(EXTRA_ORIGINS_ENV, "").split(",") if item.strip())
        disabled = env.get(DISABLE_CORS_ENV, "").strip().lower() in ON_WORDS
        return cls(extra_origins=extra, checks_enabled=not disabled)

    def allows(self, origin: str) -> bool:
        """Return True when a browser page from ``origin`` may call the local cloud."""
        if not self.checks_enabled:
            return True
        normalised = _normalise_origin(origin)
        if normalised in self.extra_origins:
            return True
        parts = urlsplit(normalised)
        return parts.scheme in ("http", "https") and is_loopback_host(parts.netloc)


def _normalise_origin(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


@dataclass(frozen=True)
class Verdict:
    """What the guard does with one request: refuse it, answer a preflight, or pass it on (with CORS headers).

    Attributes
    ----------
    refusal : str | None
        Why the request is refused with 403 (``None``: not refused).
    preflight : bool
        True when the guard answers the request itself (a CORS preflight from an allowed origin), with 204.
    cors : tuple[tuple[str, str], ...]
        CORS headers to send back (for an allowed origin only; replace every ``Access-Control-*`` of the app).
    """

    refusal: str | None = None
    preflight: bool = False
    cors: tuple[tuple[str, str], ...] = ()


def judge(
    policy: OriginPolicy,
    host: str,
    origin: str | None,
    method: str,
    requested_method: str | None,
    requested_headers: str,
) -> Verdict:
    """Decide on one request from its ``Host``, ``Origin`` and preflight headers: the one rule of both middlewares.

    Parameters
    ----------
    policy : OriginPolicy
        Which origins are allowed cross-origin.
    host : str
        The ``Host`` header (or the server name when there is none).
    origin : str | None
        The ``Origin`` header, ``None`` when absent (boto3, the AWS CLI, Terraform, curl).
    method : str
        The request method.
    requested_method, requested_headers : str | None, str
        ``Access-Control-Request-Method`` (``None`` when absent) and ``Access-Control-Request-Headers``.

    Returns
    -------
    Verdict
        Refused (foreign Host, foreign origin), a preflight to answer, or pass on with CORS headers.
    """
    if not is_loopback_host(host):
        return Verdict(
            refusal=f"Host {host!r} is not a loopback name. The local cloud only answers requests addressed to "
            "localhost or 127.0.0.1 (protection against DNS rebinding); use http://localhost:<port>."
        )
    if origin is None:
        return Verdict()
    if not policy.allows(origin):
        return Verdict(
            refusal=f"cross-origin request from {origin!r} refused: only loopback origins may call the local cloud. "
            f"To allow this origin, start the local cloud with {EXTRA_ORIGINS_ENV}={origin}."
        )
    cors = tuple(_cors_headers(origin, requested_headers))
    return Verdict(preflight=method == "OPTIONS" and requested_method is not None, cors=cors)


def refusal_body(message: str) -> bytes:
    """Return the JSON body of a 403 refusal carrying ``message``."""
    return json.dumps({"error": "Forbidden", "message": message}).encode()


class OriginGuard:
    """WSGI middleware in front of the local cloud: refuse foreign Hosts and origins, answer CORS for allowed ones.

    Parameters
    ----------
    app : WSGI application
        The local cloud's app (moto plus the health endpoint).
    policy : OriginPolicy
        Which origins are allowed cross-origin.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], policy: OriginPolicy) -> None:
        self.app = app
        self.policy = policy

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Refuse the request with 403, answer a CORS preflight, or pass it on with CORS headers added."""
        verdict = judge(
            self.policy,
            environ.get("HTTP_HOST") or environ.get("SERVER_NAME", ""),
            environ.get("HTTP_ORIGIN"),
            environ.get("REQUEST_METHOD", ""),
            environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD"),
            environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", ""),
        )
        if verdict.refusal is not None:
            return _refuse(start_response, verdict.refusal)
        if not verdict.cors:
            return self.app(environ, start_response)
        cors = list(verdict.cors)
        if verdict.preflight:
            start_response("204 No Content", [*cors, ("Content-Length", "0")])
            return [b""]

        def with_cors(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            kept = [(k, v) for k, v in headers if not k.lower().startswith("access-control-")]
            return start_response(status, kept + cors, exc_info)

        return self.app(environ, with_cors)


class AsgiOriginGuard:
    """The same guard as ASGI middleware (:func:`judge`), for an ASGI emulator such as MiniStack.

    HTTP and WebSocket requests go through :func:`judge`; other scopes (``lifespan``) pass unchanged. A refused
    WebSocket is closed before it is accepted.

    Parameters
    ----------
    app : ASGI application
        The emulator's app.
    policy : OriginPolicy
        Which origins are allowed cross-origin.
    """

    def __init__(self, app: Callable[..., Awaitable[None]], policy: OriginPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        """Refuse the request with 403, answer a CORS preflight, or pass it on with CORS headers replaced."""
        if scope.get("type") not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for name, value in scope.get("headers") or []:
            headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
        server = scope.get("server") or ("", None)
        verdict = judge(
            self.policy,
            headers.get("host", str(server[0] or "")),
            headers.get("origin"),
            scope.get("method", "GET"),
            headers.get("access-control-request-method"),
            headers.get("access-control-request-headers", ""),
        )
        if scope["type"] == "websocket":
            if verdict.refusal is not None:
                await send({"type": "websocket.close", "code": 1008})
                return
            await self.app(scope, receive, send)
            return
        if verdict.refusal is not None or verdict.preflight:
            if verdict.refusal is not None:
                status, body = 403, refusal_body(verdict.refusal)
                out = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            else:
                status, body, out = 204, b"", [*verdict.cors, ("Content-Length", "0")]
            raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in out]
            await send({"type": "http.response.start", "status": status, "headers": raw})
            await send({"type": "http.response.body", "body": body})
            return
        cors = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in verdict.cors]

        async def send_guarded(message: dict[str, Any]) -> None:
            if message.get("type") == "http.response.start":
                # The emulator's own CORS ("*" for every origin) never leaves: an allowed origin gets its own headers.
                kept = [(k, v) for k, v in message.get("headers") or [] if not k.lower().startswith(b"access-control-")]
                message = {**message, "headers": kept + cors}
            await send(message)

        await self.app(scope, receive, send_guarded)


def _cors_headers(origin: str, requested: str) -> list[tuple[str, str]]:
    headers = [
        ("Access-Control-Allow-Origin", origin),
        ("Vary", "Origin"),
        ("Access-Control-Allow-Methods", _CORS_METHODS),
        ("Access-Control-Expose-Headers", "ETag, x-amz-request-id, x-amz-version-id, x-amzn-requestid"),
        ("Access-Control-Max-Age", _CORS_MAX_AGE),
    ]
    if requested:
        headers.append(("Access-Control-Allow-Headers", requested))
    return headers


def _refuse(start_response: Callable[..., Any], message: str) -> Iterable[bytes]:
    body = refusal_body(message)
    start_response("403 Forbidden", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
