"""A small Debug Adapter Protocol client over a TCP socket: what an editor does when it attaches to debugpy.

Only what the tests need: ``initialize``, ``attach`` (with path mappings), ``setBreakpoints``, ``configurationDone``,
waiting for a ``stopped`` event, ``stackTrace``, ``scopes``, ``variables``, ``continue`` and ``disconnect``. Messages
are framed as the protocol says (``Content-Length: N`` header, blank line, N bytes of JSON); a reader thread files
responses by the request they answer and queues events, so a test can wait for either.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import queue
import socket
import threading
import time
from typing import Any


class DapError(RuntimeError):
    """The adapter refused a request, or did not answer in time."""


class DapClient:
    """One DAP session over a TCP connection to ``host:port``.

    Parameters
    ----------
    host, port : str, int
        Where the debug adapter (debugpy in the function's worker) listens.
    timeout : float
        Seconds to wait for the connection.
    """

    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(None)
        self._seq = itertools.count(1)
        self._write_lock = threading.Lock()
        self._responses: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._responses_lock = threading.Lock()
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name="dap-reader", daemon=True)
        self._reader.start()

    # -- framing -------------------------------------------------------------------------------------------------

    def _read(self) -> None:
        stream = self.sock.makefile("rb")
        try:
            while True:
                length = None
                while True:
                    line = stream.readline()
                    if not line:
                        return
                    line = line.strip()
                    if not line:
                        break
                    name, _, value = line.decode("ascii").partition(":")
                    if name.lower() == "content-length":
                        length = int(value.strip())
                if length is None:
                    continue
                message = json.loads(stream.read(length))
                if message.get("type") == "response":
                    self._slot(message["request_seq"]).put(message)
                elif message.get("type") == "event":
                    self.events.put(message)
        except OSError:
            return
        finally:
            self.events.put({"type": "event", "event": "<closed>"})

    def _slot(self, seq: int) -> queue.Queue[dict[str, Any]]:
        with self._responses_lock:
            return self._responses.setdefault(seq, queue.Queue())

    def send(self, command: str, arguments: dict[str, Any] | None = None) -> int:
        """Send a request; return its sequence number (for :meth:`response`)."""
        seq = next(self._seq)
        body = json.dumps({"seq": seq, "type": "request", "command": command, "arguments": arguments or {}}).encode()
        with self._write_lock:
            self.sock.sendall(f"Content-Length: {len(body)}\r\n\r\n".encode("ascii") + body)
        return seq

    def response(self, seq: int, timeout: float = 60.0) -> dict[str, Any]:
        """Return the body of the response to request ``seq``; raise :class:`DapError` when it failed or is late."""
        try:
            message = self._slot(seq).get(timeout=timeout)
        except queue.Empty:
            raise DapError(f"no response to request {seq} within {timeout:.0f} s") from None
        if not message.get("success"):
            raise DapError(f"{message.get('command')} failed: {message.get('message')} {message.get('body')}")
        return message.get("body") or {}

    def request(self, command: str, arguments: dict[str, Any] | None = None, timeout: float = 60.0) -> dict[str, Any]:
        """Send a request and return its response body."""
        return self.response(self.send(command, arguments), timeout)

    def wait_event(self, name: str, timeout: float = 60.0) -> dict[str, Any]:
        """Return the body of the next event called ``name`` (other events are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DapError(f"no {name!r} event within {timeout:.0f} s")
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if event.get("event") == name:
                return event.get("body") or {}
            if event.get("event") == "<closed>":
                raise DapError(f"the connection closed while waiting for a {name!r} event")

    # -- a session -----------------------------------------------------------------------------------------------

    def attach(self, path_mappings: list[dict[str, str]], breakpoints: dict[str, list[int]]) -> dict[str, list[dict]]:
        """Initialize, attach with ``path_mappings``, set ``breakpoints`` (file → lines), finish the configuration.

        Returns the breakpoints as the adapter answered them, by file (``verified`` says whether each bound).
        """
        self.request(
            "initialize",
            {
                "clientID": "tests",
                "adapterID": "debugpy",
                "pathFormat": "path",
                "linesStartAt1": True,
                "columnsStartAt1": True,
            },
        )
        attach = self.send("attach", {"justMyCode": False, "pathMappings": path_mappings, "subProcess": False})
        self.wait_event("initialized")
        answered = {}
        for path, lines in breakpoints.items():
            body = self.request(
                "setBreakpoints", {"source": {"path": path}, "breakpoints": [{"line": line} for line in lines]}
            )
            answered[path] = body.get("breakpoints", [])
        self.request("configurationDone")
        self.response(attach)
        return answered

    def stopped(self, timeout: float = 120.0) -> dict[str, Any]:
        """Wait for the debuggee to stop (a breakpoint); return the ``stopped`` event's body."""
        return self.wait_event("stopped", timeout)

    def top_frame(self, thread_id: int) -> dict[str, Any]:
        """Return the innermost frame of thread ``thread_id`` (``name``, ``line``, ``source``, ``id``)."""
        frames = self.request("stackTrace", {"threadId": thread_id, "startFrame": 0, "levels": 1})["stackFrames"]
        return frames[0]

    def variables(self, reference: int) -> dict[str, dict[str, Any]]:
        """Return the variables under ``reference`` by name (each with ``value``, ``variablesReference``)."""
        body = self.request("variables", {"variablesReference": reference})
        return {item["name"]: item for item in body.get("variables", [])}

    def locals(self, frame_id: int) -> dict[str, dict[str, Any]]:
        """Return the local variables of frame ``frame_id`` by name."""
        scopes = self.request("scopes", {"frameId": frame_id})["scopes"]
        scope = next(s for s in scopes if s["name"].lower().startswith("locals"))
        return self.variables(scope["variablesReference"])

    def resume(self, thread_id: int) -> None:
        """Continue every thread of the debuggee."""
        self.request("continue", {"threadId": thread_id})

    def close(self) -> None:
        """Detach (the debuggee goes on running) and close the connection."""
        with contextlib.suppress(DapError, OSError):
            self.request("disconnect", {"terminateDebuggee": False}, timeout=10)
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
