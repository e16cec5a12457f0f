"""The function's debugger on the embedded local cloud: switch it on or off, and say what state it is in.

``make local-up DEBUG=1`` (``python -m ops up --debug``) asks the embedded cloud to make the function's worker listen
for a debugger (debugpy) on ``127.0.0.1:${DEBUG_PORT:-5678}`` (:func:`enable`); an ``up`` without it switches that off
(:func:`disable`). The state (``waiting`` on the address, ``attached``, stopped at a breakpoint) is in the cloud's
health document: :func:`describe` words it for ``make local-status`` and :func:`stack_debugger` for the dashboard's
sidebar, so neither imports the emulator. MiniStack and LocalStack have no such hook: :func:`check_backend` refuses
them with what to do instead.
"""

from __future__ import annotations

from typing import Any

from localcloud.server import DEBUGGER_PATH
from ops import defaults, launch, procs
from ops.procs import LocalCloudError
from ops.stack import Stack

#: ``make local-up DEBUG=1`` listens here unless ``DEBUG_PORT`` (``--debug-port``) says otherwise.
DEFAULT_DEBUG_PORT = 5678
#: The function the debugger stops in (the module's ``function_name`` default; the stack outputs confirm it).
FUNCTION_OUTPUT = "function_name"


def check_backend(backend: str) -> None:
    """Raise :class:`LocalCloudError` when ``backend`` cannot run the function under a debugger (not embedded)."""
    if backend == "embedded":
        return
    if backend == "ministack":
        raise LocalCloudError(
            "DEBUG=1 needs the embedded local cloud: MiniStack runs the function in its own workers and offers no way "
            "to start them under a debugger. Run `make local-down`, then `make local-up BACKEND=embedded DEBUG=1`"
        )
    raise LocalCloudError(
        "DEBUG=1 needs the embedded local cloud: debugging functions in LocalStack is its Lambda Debug Mode "
        "(LAMBDA_DEBUG_MODE=1), a feature of its paid tiers that this project does not set up. Run "
        "`make local-down`, then `make local-up BACKEND=embedded DEBUG=1`"
    )


def enable(port: int, function: str, region: str, debug_port: int = DEFAULT_DEBUG_PORT) -> dict[str, Any]:
    """Make ``function``'s worker in the embedded cloud on ``port`` listen for a debugger on ``debug_port``.

    Returns the cloud's debugger state once the worker listens (it is started now, so a debugger can attach before
    the first upload).

    Raises
    ------
    LocalCloudError
        With the cloud's reason: no such function, debugpy missing, the debug port taken.
    """
    document = {"function": function, "port": debug_port, "region": region}
    return procs.call_json("POST", _url(port), document, timeout=180.0, what="start the debugger")


def disable(port: int) -> dict[str, Any]:
    """Stop debugging in the embedded cloud on ``port`` (its debug worker stops); return the state.

    Raises
    ------
    LocalCloudError
        When the cloud does not answer.
    """
    return procs.call_json("DELETE", _url(port), what="stop the debugger")


def state(port: int) -> dict[str, Any] | None:
    """Return the debugger entry of the embedded cloud's health document on ``port`` (``None``: no answer)."""
    health = launch.localcloud_health(port)
    return None if health is None else health.get("debugger") or {"enabled": False}


def describe(debugger: dict[str, Any] | None) -> str | None:
    """Return the debugger's state in words, or ``None`` when debugging is off.

    ``waiting on 127.0.0.1:5678``; ``attached (127.0.0.1:5678)``, with ``, stopped in an invocation`` while one is
    stopped; ``starting with the next invocation (127.0.0.1:5678)`` while no worker listens (after a hot-reload save
    or a crash the next invocation starts one); or the error that stopped it.
    """
    if not debugger or not debugger.get("enabled"):
        return None
    address = f"{debugger.get('host')}:{debugger.get('port')}"
    if debugger.get("error"):
        return f"not listening on {address}: {debugger['error']}"
    if debugger.get("state") == "attached":
        return f"attached ({address})" + (", stopped in an invocation" if debugger.get("paused") else "")
    if debugger.get("state") == "waiting":
        return f"waiting on {address}"
    return f"starting with the next invocation ({address})"


def stack_debugger(stack: Stack) -> str | None:
    """Return :func:`describe` of ``stack``'s debugger (``None``: off, not an embedded stack, or no answer)."""
    if stack.target != "local" or stack.backend != "embedded" or not stack.endpoint:
        return None
    port = int(stack.endpoint.rsplit(":", 1)[-1])
    return describe(state(port))


def _url(port: int) -> str:
    return f"http://{defaults.LOCAL_HOST}:{port}{DEBUGGER_PATH}"
