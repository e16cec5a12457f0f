"""Debug mode of the local Lambda executor: one function's worker listens for a debugger (debugpy).

Switched on at run time for one function (``POST /_localcloud/debugger`` on the server, what ``make local-up
DEBUG=1`` sends after the apply), off again with ``DELETE``. While it is on:

- that function runs in **one** worker (other invocations wait their turn in the pool), started at once (so a
  debugger can attach before the first upload) with debugpy listening on ``host:port`` in the worker itself
  (debugpy's in-process adapter: no extra process, the port closes with the worker), running its code through a
  link of one fixed path (:func:`code_link`) whether it comes from the deployed zip or, under hot reload, from
  ``lambda/`` itself, so one path mapping binds breakpoints set in ``lambda/`` either way;
- debugpy is the project's copy (a development dependency, never in the function zip or the layer), reached through
  a directory holding only a link to its package, appended to the worker's ``sys.path``: the function still imports
  nothing else from the project's environment;
- while a thread of an invocation is stopped (breakpoint, step, pause) the invocation's timeout clock stands still,
  and so does the remaining time the function sees (LocalStack's Lambda Debug Mode does the same); the worker reports
  each stop and resume on its reply channel (:mod:`localcloud.bootstrap`, :mod:`localcloud.workers`).

This module holds the target (:class:`DebugTarget`), the worker's side of the setup (:func:`link_debugpy`,
:func:`worker_environment`) and the state the health document shows (:func:`describe`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localcloud import bootstrap

log = logging.getLogger(__name__)

#: The worker's environment variable with the debug settings (JSON: host, port, path of the debugpy link directory).
DEBUG_ENV = bootstrap.DEBUG_ENV
#: ``GET`` the state, ``POST {"function", "port", "region"}`` to debug a function, ``DELETE`` to stop debugging.
DEBUGGER_PATH = "/_localcloud/debugger"
#: The port ``make local-up DEBUG=1`` uses unless ``DEBUG_PORT`` says otherwise (debugpy's and VS Code's usual one).
DEFAULT_DEBUG_PORT = 5678
#: The debugger's states, as the health document and ``make local-status`` name them.
WAITING, ATTACHED, STARTING = "waiting", "attached", "starting"


class DebuggerUnavailable(RuntimeError):
    """debugpy cannot be found in the environment that runs the local cloud."""


@dataclass(frozen=True, slots=True)
class DebugTarget:
    """The function being debugged and where its worker listens.

    Attributes
    ----------
    function : str
        The function's name (every version of it is debugged).
    host, port : str, int
        Where debugpy listens in the worker (``127.0.0.1`` only).
    """

    function: str
    host: str
    port: int

    def matches(self, function: str) -> bool:
        """Return True when ``function`` (a function name) is the one being debugged."""
        return function == self.function

    @property
    def address(self) -> str:
        """Return ``host:port``."""
        return f"{self.host}:{self.port}"


def link_debugpy(target: Path) -> Path:
    """Fill ``target`` with a link to the debugpy package of this environment; return ``target``.

    Only ``debugpy`` is linked, so a worker that gets ``target`` on its ``sys.path`` can import debugpy (which
    vendors everything it needs) and nothing else of the project's environment.

    Raises
    ------
    DebuggerUnavailable
        When debugpy is not installed here (it is a development dependency: ``make install``).
    """
    try:
        import debugpy
    except ImportError:
        raise DebuggerUnavailable(
            "debugpy is not installed in the environment that runs the local cloud; run `make install` (it is a "
            "development dependency, pinned in pyproject.toml)"
        ) from None
    source = Path(debugpy.__file__).resolve().parent
    target.mkdir(parents=True, exist_ok=True)
    link = target / "debugpy"
    if not (link.is_symlink() and link.resolve() == source):
        tmp = target / f".debugpy.{os.getpid()}.tmp"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(source, target_is_directory=True)
        os.replace(tmp, link)
    return target


def code_link(directory: Path, function: str, code_dir: Path) -> Path:
    """Point ``directory/function`` at ``code_dir`` (a link, replaced atomically); return the link.

    The debug worker runs its code through this link, so the code has one path whatever zip or working directory
    it comes from (``.local/lambda-cache/debug/image-compressor`` for ``make local-up``): the one path
    ``.vscode/launch.json`` maps ``lambda/`` to. The debugger does not resolve links (debugpy's default), so the
    frames it shows and the breakpoints it binds are under this path.
    """
    directory.mkdir(parents=True, exist_ok=True)
    link = directory / function
    if link.is_symlink() and link.readlink() == code_dir:
        return link
    tmp = directory / f".{function}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(code_dir, target_is_directory=True)
    os.replace(tmp, link)
    return link


def worker_environment(target: DebugTarget, packages: Path) -> dict[str, str]:
    """Return the variables that make a worker listen for a debugger on ``target``'s address.

    ``packages`` is the directory :func:`link_debugpy` filled. ``PYDEVD_DISABLE_FILE_VALIDATION`` silences
    debugpy's warning about frozen standard-library modules (the worker also runs with ``-Xfrozen_modules=off``).
    """
    settings = {"host": target.host, "port": target.port, "path": str(packages)}
    return {DEBUG_ENV: json.dumps(settings), "PYDEVD_DISABLE_FILE_VALIDATION": "1"}


def describe(target: DebugTarget | None, workers: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the health document's ``debugger`` entry for ``target`` and its function's live ``workers``.

    Each worker is ``{"pid", "attached", "paused", "stopped_s", "error"}`` (see
    :meth:`localcloud.workers.Worker.debug_state`). ``state`` is ``waiting`` (a worker listens, no debugger
    attached), ``attached``, or ``starting`` (no worker listens now: one starts with the next invocation); ``paused``
    is True while an invocation is stopped, ``stopped_s`` how long it has been.
    """
    if target is None:
        return {"enabled": False}
    live = [w for w in workers if not w.get("error")]
    errors = [w["error"] for w in workers if w.get("error")]
    if any(w.get("attached") for w in live):
        state = ATTACHED
    elif live:
        state = WAITING
    else:
        state = STARTING
    return {
        "enabled": True,
        "function": target.function,
        "host": target.host,
        "port": target.port,
        "state": state,
        "paused": any(w.get("paused") for w in live),
        "stopped_s": max((w.get("stopped_s", 0.0) for w in live), default=0.0),
        "worker_pid": live[0]["pid"] if live else None,
        "error": errors[0] if errors else None,
    }


class Control:
    """What :class:`DebuggerMiddleware` drives: the executor's debug target and the function lookup.

    Parameters
    ----------
    executor : Any
        The :class:`localcloud.executor.LocalExecutor` (``debug``, ``prestart``, ``debug_state``).
    lookup : Callable[[str, str], Any]
        Returns the spec of a function by name and region (raises ``LookupError`` when there is none).
    host : str
        Where debug workers listen (the server's own loopback address).
    """

    def __init__(self, executor: Any, lookup: Callable[[str, str], Any], host: str) -> None:
        self.executor = executor
        self.lookup = lookup
        self.host = host

    def enable(self, document: Any, default_region: str) -> tuple[str, dict[str, Any]]:
        """Debug the function ``document`` names; return the HTTP status and the state (or an error)."""
        if not isinstance(document, dict) or not isinstance(document.get("function"), str):
            return "400 Bad Request", {"error": 'send {"function": "<name>", "port": <port>}'}
        port = document.get("port", DEFAULT_DEBUG_PORT)
        if not isinstance(port, int) or not 0 < port < 65536:
            return "400 Bad Request", {"error": f"port must be a number from 1 to 65535, got {port!r}"}
        region = str(document.get("region") or default_region)
        try:
            spec = self.lookup(document["function"], region)
            self.executor.debug(DebugTarget(document["function"], self.host, port))
            self.executor.prestart(spec)
        except LookupError as exc:
            return "404 Not Found", {"error": str(exc.args[0] if exc.args else exc)}
        except DebuggerUnavailable as exc:
            return "500 Internal Server Error", {"error": str(exc)}
        state = self.executor.debug_state()
        if state.get("error"):
            self.executor.debug(None)
            return "409 Conflict", {"error": f"{state['error']}; free the port or choose another (DEBUG_PORT=N)"}
        log.info("debugging %s: its worker waits for a debugger on %s:%d", document["function"], self.host, port)
        return "200 OK", state

    def disable(self) -> tuple[str, dict[str, Any]]:
        """Stop debugging (the debug worker stops); return the HTTP status and the state."""
        self.executor.debug(None)
        return "200 OK", self.executor.debug_state()


class DebuggerMiddleware:
    """WSGI middleware that answers :data:`DEBUGGER_PATH` (GET, POST, DELETE); the rest goes to ``app``."""

    def __init__(self, app: Any, control: Control, default_region: str) -> None:
        self.app = app
        self.control = control
        self.default_region = default_region

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Serve the debugger's state and switches; delegate every other request."""
        if environ.get("PATH_INFO") != DEBUGGER_PATH:
            return self.app(environ, start_response)
        method = environ.get("REQUEST_METHOD")
        if method == "GET":
            status, document = "200 OK", self.control.executor.debug_state()
        elif method == "POST":
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
                body = json.loads(environ["wsgi.input"].read(length) or b"null")
            except ValueError:
                body = None
            status, document = self.control.enable(body, self.default_region)
        elif method == "DELETE":
            status, document = self.control.disable()
        else:
            status, document = "405 Method Not Allowed", {"error": f"use GET, POST or DELETE {DEBUGGER_PATH}"}
        data = json.dumps(document).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]
