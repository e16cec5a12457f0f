"""An audit hook for the dashboard the browser tests start: it logs every reach off this machine.

Python imports ``sitecustomize`` at start-up from ``sys.path``; the browser tests start the dashboard with this
folder first on ``PYTHONPATH`` and ``NETAUDIT_LOG`` naming a file. The hook (:func:`sys.addaudithook`) then appends
one line to that file for every name looked up (``socket.getaddrinfo``, ``socket.gethostbyname``) and every address
connected or sent to (``socket.connect``, ``socket.sendto``) that is not this machine's: a lookup of
``checkip.amazonaws.com`` or a UDP "connect" to ``8.8.8.8`` shows there even when it fails offline. The first line
is :data:`STARTED`, so a test can tell an empty log from a hook that never loaded. Without ``NETAUDIT_LOG`` the
module does nothing.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from typing import Any

#: The log's file name in the dashboard's state folder (the tests' choice) and its first line.
OUTBOUND = "outbound.log"
STARTED = "netaudit: hook loaded"
ENV = "NETAUDIT_LOG"
#: Audit events that name a remote host: event -> (index of the host or address in the event's arguments).
EVENTS = {
    "socket.getaddrinfo": 0,
    "socket.gethostbyname": 0,
    "socket.gethostbyaddr": 0,
    "socket.connect": 1,
    "socket.sendto": 1,
}
LOCAL_NAMES = {"", "localhost", "localhost.localdomain"}


def is_local(host: Any) -> bool:
    """Return True when ``host`` (a name or address, ``None`` or a Unix socket path) never leaves this machine."""
    if host is None or isinstance(host, bytes | bytearray):  # no host (bind lookups) or a Unix socket path
        return True
    name = str(host).strip("[]").lower()
    if name in LOCAL_NAMES or name.endswith(".localhost") or name.startswith("/"):
        return True
    try:
        address = ipaddress.ip_address(name.split("%")[0])
    except ValueError:
        return False  # a host name other than localhost: a DNS lookup
    return address.is_loopback or address.is_unspecified


def _host(event: str, args: tuple[Any, ...]) -> Any:
    """Return the host an audited socket event reaches for: a name, an address, or a Unix socket path."""
    target = args[EVENTS[event]]
    return target[0] if isinstance(target, tuple) and target else target


def _install(log: str) -> None:
    """Add the audit hook that appends each off-machine event to ``log``; write :data:`STARTED` first."""
    with open(log, "a", encoding="utf-8") as out:
        out.write(STARTED + "\n")

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event not in EVENTS:
            return
        try:
            host = _host(event, args)
            if not is_local(host):
                with open(log, "a", encoding="utf-8") as out:
                    out.write(f"{event} {host!r} (pid {os.getpid()})\n")
        except Exception:  # noqa: BLE001 (a hook that raises would break the socket call it watches)
            return

    sys.addaudithook(hook)


if os.environ.get(ENV):
    _install(os.environ[ENV])
