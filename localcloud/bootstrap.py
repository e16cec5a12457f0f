"""Worker bootstrap of the local Lambda executor: imports a handler once, then serves invocations.

This file runs inside the worker subprocess, under whichever interpreter the executor picked (python3.13 for the
python3.13 runtime when one is installed, else the project's). It must therefore use the standard library only and
must not import ``localcloud``.

Channels (set up by :func:`main`):

- fd 0 (the executor writes): one JSON request per line, ``{"id", "event", "deadline_ms", "context"}``.
- the original fd 1 (the executor reads): one JSON message per line, first ``{"type": "ready", ...}`` after the
  handler module was imported, then one ``{"type": "result", ...}`` per request.
- fd 2 (the executor reads): everything the function writes (``print``, logging, Powertools JSON logs, C-level
  writes). fd 1 is redirected there too, so the handler cannot corrupt the protocol. After init and after each
  invocation a marker line (``MARK``) tells the executor that all output of that phase has been written.

The environment variable ``LOCALCLOUD_SYS_PATH`` (JSON list) holds the directories put in front of ``sys.path``:
the function code (``/var/task`` on Lambda) and the layers' ``python`` directories (``/opt/python``).
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import time
import traceback
from typing import Any

MARK = "\x1elocalcloud-phase-done"


class LambdaContext:
    """The ``context`` argument handed to the handler, with the attributes of AWS's Python runtime."""

    def __init__(self, request_id: str, deadline_ms: int, ctx: dict[str, Any]) -> None:
        self.aws_request_id = request_id
        self.function_name = ctx.get("function_name", "")
        self.function_version = ctx.get("function_version", "$LATEST")
        self.invoked_function_arn = ctx.get("invoked_function_arn", "")
        self.memory_limit_in_mb = str(ctx.get("memory_limit_in_mb", "128"))
        self.log_group_name = ctx.get("log_group_name", "")
        self.log_stream_name = ctx.get("log_stream_name", "")
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        """Return the milliseconds left before the executor kills this invocation (never negative)."""
        return max(0, int(self._deadline_ms - time.time() * 1000))


def _error(
    exc: BaseException, error_type: str | None = None, message: str | None = None, skip: int = 0
) -> dict[str, Any]:
    """Return Lambda's error document for ``exc``; ``skip`` drops this bootstrap's own outermost frames."""
    tb = exc.__traceback__
    for _ in range(skip):
        tb = tb.tb_next if tb is not None else None
    frames = traceback.extract_tb(tb)
    return {
        "errorMessage": message if message is not None else str(exc),
        "errorType": error_type or type(exc).__name__,
        "stackTrace": traceback.format_list(frames),
    }


def _error_log(error: dict[str, Any]) -> str:
    lines = [f"[ERROR] {error['errorType']}: {error['errorMessage']}"]
    if error.get("stackTrace"):
        lines.append("Traceback (most recent call last):")
        lines.extend(frame.rstrip("\n") for frame in error["stackTrace"])
    return "\n".join(lines)


def _mark(phase: str) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(2, f"\n{MARK} {phase}\n".encode())


def _load_handler(handler: str) -> tuple[Any, dict[str, Any] | None]:
    module_name, _, func_name = handler.rpartition(".")
    if not module_name or not func_name:
        return None, {
            "errorType": "Runtime.MalformedHandlerName",
            "errorMessage": f"Bad handler '{handler}': not enough values to unpack (expected 2, got 1)",
            "stackTrace": [],
        }
    module_name = module_name.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        return None, _error(exc, "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}")
    except Exception as exc:  # the module raised while being imported
        return None, _error(exc, "Runtime.UserCodeSyntaxError" if isinstance(exc, SyntaxError) else None)
    func = getattr(module, func_name, None)
    if func is None:
        return None, {
            "errorType": "Runtime.HandlerNotFound",
            "errorMessage": f"Handler '{func_name}' missing on module '{module_name}'",
            "stackTrace": [],
        }
    return func, None


def _max_rss_mb() -> int:
    """Return this worker's peak resident memory in MB (for the life of the worker, as Lambda reports it).

    ``VmHWM`` is read from /proc because ``ru_maxrss`` survives ``exec`` and would include the parent's memory
    at fork time; ``ru_maxrss`` is the fallback where /proc is missing.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main() -> int:
    """Set up the channels, import the handler, answer requests until stdin closes; return the exit status."""
    own_dir = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if p and os.path.abspath(p) != own_dir]
    sys.path[0:0] = json.loads(os.environ.pop("LOCALCLOUD_SYS_PATH", "[]"))

    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)

    for note in json.loads(os.environ.pop("LOCALCLOUD_INIT_NOTES", "[]")):
        sys.stderr.write(note + "\n")

    started = time.perf_counter()
    handler, init_error = _load_handler(os.environ.get("_HANDLER", ""))
    init_ms = (time.perf_counter() - started) * 1000
    if init_error:
        sys.stderr.write(_error_log(init_error) + "\n")
    _mark("init")
    replies.write(json.dumps({"type": "ready", "init_ms": init_ms, "error": init_error}) + "\n")
    if init_error:
        return 1

    for raw in requests:
        request = json.loads(raw)
        request_id = request["id"]
        context = LambdaContext(request_id, request["deadline_ms"], request.get("context", {}))
        reply: dict[str, Any] = {"type": "result", "id": request_id}
        started = time.perf_counter()
        try:
            result = handler(request["event"], context)
        except Exception as exc:
            error = _error(exc, skip=1)
            reply.update(ok=False, error=error, error_log=_error_log(error))
        else:
            try:
                reply.update(ok=True, payload=json.dumps(result))
            except (TypeError, ValueError) as exc:
                error = {
                    "errorType": "Runtime.MarshalError",
                    "errorMessage": f"Unable to marshal response: {exc}",
                    "stackTrace": [],
                }
                reply.update(ok=False, error=error, error_log=_error_log(error))
        reply["duration_ms"] = (time.perf_counter() - started) * 1000
        reply["max_memory_mb"] = _max_rss_mb()
        _mark(request_id)
        replies.write(json.dumps(reply) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
