"""What goes into the local Lambda executor and what comes out.

In: a function version (:class:`FunctionSpec`). Out: the outcome of one invocation (:class:`Invocation`), with
Lambda's error document (:func:`error_document`) as the payload of a failed one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localcloud import lambdalogs


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """What the executor needs to know about one function version.

    Attributes
    ----------
    name, arn, version : str
        Function name, its ARN (unqualified) and version (``$LATEST`` or a number).
    handler : str
        ``module.function`` (``index.handler``).
    runtime : str | None
        Lambda runtime identifier, e.g. ``python3.13``.
    timeout : float
        Seconds an invocation may run before it is killed.
    memory_size : int
        Configured memory in MB: reported, and enforced per worker unless ``LOCALCLOUD_ENFORCE_MEMORY=0``
        (:mod:`localcloud.memlimit`).
    environment : tuple[tuple[str, str], ...]
        The function's environment variables, sorted.
    region, account_id : str
        Where the function lives.
    code_dir : Path
        The extracted function zip (``/var/task`` on Lambda).
    layer_dirs : tuple[Path, ...]
        The extracted layer zips in configuration order (each is ``/opt`` on Lambda).
    role : str
        The function's execution role (its ARN); the worker runs with a session of it
        (:mod:`localcloud.rolesession`) while IAM is enforced.
    code_signature : str
        Hot reload only (:mod:`localcloud.hotreload`): ``code_dir`` is a live working directory and this is the
        signature of its files when the spec was made; empty for code extracted from a zip.
    """

    name: str
    arn: str
    version: str
    handler: str
    runtime: str | None
    timeout: float
    memory_size: int
    environment: tuple[tuple[str, str], ...]
    region: str
    account_id: str
    code_dir: Path
    layer_dirs: tuple[Path, ...] = ()
    code_signature: str = ""
    role: str = ""

    @property
    def log_group(self) -> str:
        """Return the function's CloudWatch Logs group, ``/aws/lambda/<name>``."""
        return f"/aws/lambda/{self.name}"

    @property
    def hot_reload(self) -> bool:
        """Return True when the code runs live from a working directory (hot reload), not from a zip."""
        return bool(self.code_signature)

    @property
    def qualified_arn(self) -> str:
        """Return the ARN with the version qualifier, as Lambda reports it to the function."""
        return f"{self.arn}:{self.version}"

    def resolve(self) -> FunctionSpec:
        """Return this spec: it is already built (the asynchronous invoker also takes a :class:`FunctionRef`)."""
        return self

    def pool_key(self) -> str:
        """Return a digest of everything that needs a fresh worker when it changes (code, layers, configuration)."""
        parts = [
            self.arn,
            self.version,
            self.handler,
            str(self.runtime),
            str(self.timeout),
            str(self.memory_size),
            json.dumps(self.environment),
            str(self.code_dir),
            self.code_signature,
            self.role,
            *map(str, self.layer_dirs),
        ]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Credentials:
    """Temporary credentials a worker runs with (a session of the function's role) and their expiry (epoch s)."""

    access_key_id: str
    secret_access_key: str
    session_token: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class FunctionRef:
    """A function version to run later: what a destination record names, and how to build its spec.

    The asynchronous invoker queues a reference, not a spec: building the spec extracts the code and layers, which
    can fail (a zip that cannot be unpacked, a layer version that was deleted). Built when an attempt starts, such
    a failure is a failed attempt (retried, then the on-failure destination) instead of an event lost before it
    was queued.

    Attributes
    ----------
    name, arn, version : str
        Function name, its ARN (unqualified) and version, as in :class:`FunctionSpec`.
    build : Callable[[], FunctionSpec]
        Returns the spec as it is now (may raise).
    """

    name: str
    arn: str
    version: str
    build: Callable[[], FunctionSpec]

    @property
    def qualified_arn(self) -> str:
        """Return the ARN with the version qualifier, as Lambda reports it to the function."""
        return f"{self.arn}:{self.version}"

    def resolve(self) -> FunctionSpec:
        """Return the spec of the function version as it is now; raise whatever building it raises."""
        return self.build()


@dataclass(slots=True)
class Invocation:
    """Outcome of one invocation.

    Attributes
    ----------
    request_id : str
        The invocation's request id (also in the log lines).
    payload : bytes
        The handler's JSON result, or Lambda's error document (``errorMessage``, ``errorType``, ...).
    function_error : str | None
        ``"Unhandled"`` when the invocation failed (exception, timeout, crash, import error), else ``None``.
    error_type : str | None
        The error's type, e.g. ``ValueError``, ``Sandbox.Timedout``, ``Runtime.ExitError``.
    log_lines : list[str]
        The lines written to CloudWatch Logs for this invocation, ``START`` to ``REPORT``.
    duration_ms : float
        Handler run time as in the ``REPORT`` line.
    cold_start : bool
        A new worker was started (and the handler imported) for this invocation.
    """

    request_id: str
    payload: bytes
    function_error: str | None = None
    error_type: str | None = None
    log_lines: list[str] = field(default_factory=list)
    duration_ms: float = 0.0
    cold_start: bool = False

    @property
    def ok(self) -> bool:
        """Return True when the handler returned normally."""
        return self.function_error is None

    def log_tail(self) -> str:
        """Return the last 4 KB of the invocation's log, as Invoke's ``LogResult`` (before base64) holds it."""
        return lambdalogs.log_tail(self.log_lines)


def error_document(error: Mapping[str, Any], request_id: str) -> dict[str, Any]:
    """Return Lambda's error document (the failed invocation's payload) for ``error`` of request ``request_id``.

    A timeout's document holds only ``errorMessage`` and ``errorType``, as Lambda's does; every other error also
    carries ``requestId`` and ``stackTrace``.
    """
    document: dict[str, Any] = {
        "errorMessage": error.get("errorMessage", ""),
        "errorType": error.get("errorType", ""),
    }
    if error.get("errorType") != "Sandbox.Timedout":
        document["requestId"] = request_id
        document["stackTrace"] = error.get("stackTrace", [])
    return document


def spec_environment(variables: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    """Return a function's environment variables as the sorted tuple :class:`FunctionSpec` stores."""
    return tuple(sorted((str(k), str(v)) for k, v in (variables or {}).items()))
