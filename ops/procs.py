"""Process and port helpers of the operations layer: start detached, find, health-check and stop; probe ports.

Every process starts in its own session (process group), so stopping it also stops whatever it started (the
embedded server's Lambda workers, Streamlit's children). Pid files hold JSON (``pid``, ``cmd``, ``started``) and a
pid only counts as ours while its command line still matches, so a recycled pid is never killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ops import defaults


class LocalCloudError(RuntimeError):
    """Something the user can fix stopped the local cloud; the message says what to do next."""


def free_port(host: str = defaults.LOCAL_HOST) -> int:
    """Return a TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def probe(host: str, port: int, timeout: float = 0.5) -> OSError | None:
    """Try a TCP connection to ``host:port``; return ``None`` when something accepts it, else the error."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return exc


def probe_url(url: str, timeout: float = 0.5) -> OSError | None:
    """:func:`probe` the host and port of ``url`` (port 443/80 by scheme when the URL names none)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return probe(parts.hostname or "localhost", port, timeout)


def port_in_use(port: int, host: str = defaults.LOCAL_HOST) -> bool:
    """Return True when something accepts TCP connections on ``host:port``."""
    return probe(host, port) is None


def get_json(url: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """GET ``url`` and return its JSON object, or ``None`` when it cannot be reached or is not JSON."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (local URLs only)
            data = json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None
    return data if isinstance(data, dict) else None


def call_json(method: str, url: str, document: Any = None, timeout: float = 120.0, what: str = "answer") -> Any:
    """Send ``method`` to ``url`` (with ``document`` as a JSON body, if any); return the JSON answer.

    Raises
    ------
    LocalCloudError
        ``"the local cloud did not <what>: <reason>"``, the reason being the answer's ``error`` when it has one.
    """
    data = b"" if document is None else json.dumps(document).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (local URLs only)
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            reason = json.loads(exc.read()).get("error")
        except ValueError:
            reason = None
        raise LocalCloudError(f"the local cloud did not {what}: {reason or exc}") from None
    except (OSError, ValueError) as exc:
        raise LocalCloudError(f"the local cloud did not {what}: {exc}") from None


def wait_for(check: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """Call ``check`` until it returns True or ``timeout`` seconds pass; return the last result."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    """Return True when process ``pid`` exists (and is not a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def cmdline(pid: int) -> str:
    """Return the command line of ``pid`` joined by spaces ('' when unknown)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


@dataclass(frozen=True, slots=True)
class PidFile:
    """A JSON pid file: which process a ``local-up`` started and how to recognise it."""

    path: Path

    def write(self, pid: int, cmd: Sequence[str], **extra: Any) -> None:
        """Record ``pid`` started with ``cmd`` (plus ``extra`` fields)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"pid": pid, "cmd": list(cmd), "started": time.time(), **extra}
        self.path.write_text(json.dumps(data, indent=2) + "\n")

    def read(self) -> dict[str, Any] | None:
        """Return the recorded data, or ``None`` when the file is missing or unreadable."""
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and isinstance(data.get("pid"), int) else None

    def running_pid(self, marker: str) -> int | None:
        """Return the recorded pid if that process still runs and its command line contains ``marker``."""
        data = self.read()
        if data is None:
            return None
        pid = int(data["pid"])
        if pid_alive(pid) and marker in cmdline(pid):
            return pid
        return None

    def remove(self) -> None:
        """Delete the pid file (no error when it is gone)."""
        self.path.unlink(missing_ok=True)


def spawn(cmd: Sequence[str], log_path: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
    """Start ``cmd`` detached (own session, stdin from /dev/null, output appended to ``log_path``); return its pid.

    The child outlives this process; stop it with :func:`stop_group`.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log_file, open(os.devnull, "rb") as devnull:
        proc = subprocess.Popen(
            list(cmd),
            stdin=devnull,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
    return proc.pid


def stop_group(pid: int, timeout: float = 10.0) -> bool:
    """Stop process ``pid`` and its process group: SIGTERM, wait up to ``timeout`` s, then SIGKILL.

    Returns True when the process is gone. Reaps the process when it is our child.
    """

    def gone() -> bool:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
        return not pid_alive(pid)

    if gone():
        return True
    for sig, wait_s in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return True
        except PermissionError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if wait_for(gone, wait_s, 0.1):
            # The leader is gone; make sure nothing else of its group lingers.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            return True
    return gone()


def tail(path: Path, lines: int = 20) -> str:
    """Return the last ``lines`` lines of ``path`` ('' when it cannot be read)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
