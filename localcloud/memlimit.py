"""A worker's memory limit: the function's ``MemorySize``, enforced by watching the worker's resident memory.

Lambda runs a function in a sandbox whose memory is capped at ``MemorySize``; a function that goes over is killed
by the kernel (``Runtime exited with error: signal: killed``, error type ``Runtime.OutOfMemory``). Locally a
:class:`MemoryWatch` thread samples the worker's resident set size (``VmRSS`` in ``/proc/<pid>/status``) every
:data:`SAMPLE_INTERVAL_S` and calls ``on_exceeded`` (which kills the worker's process group) the first time it is
over the limit.

Why resident memory and not an rlimit: ``RLIMIT_AS`` counts address space, and Python with numpy, OpenBLAS and
Pillow maps far more than it touches (here: 145 MB of address space and 88 MB of data segment for 27 MB resident
after importing numpy and Pillow), so any address-space or data-segment limit near ``MemorySize`` fails functions
that Lambda runs fine. Lambda's cgroup counts resident memory (plus page cache), which is what the watch samples.

Tolerance: memory is sampled, not capped. A worker can go over the limit by what it allocates (and touches) in one
sampling interval before it is killed, and a peak shorter than the interval can go unnoticed. Only the worker
process itself is measured, not processes the handler starts. Set ``LOCALCLOUD_ENFORCE_MEMORY=0`` to switch the
enforcement off (:func:`enforce_from_env`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from localcloud.switches import flag

log = logging.getLogger(__name__)

#: The environment variable that switches enforcement off (``0``) or on (``1``, the default).
ENFORCE_ENV = "LOCALCLOUD_ENFORCE_MEMORY"
#: Seconds between two samples of a worker's resident memory.
SAMPLE_INTERVAL_S = 0.05
#: The error type Lambda reports for a function killed over its memory limit.
OUT_OF_MEMORY = "Runtime.OutOfMemory"


def enforce_from_env(environ: Mapping[str, str]) -> bool:
    """Return whether ``MemorySize`` is enforced, from :data:`ENFORCE_ENV` in ``environ`` (default: enforced).

    Raises
    ------
    ValueError
        When the value is not one of 1/0, true/false, yes/no, on/off.
    """
    try:
        return flag(environ, ENFORCE_ENV, True)
    except ValueError:
        value = environ[ENFORCE_ENV].strip().lower()
        raise ValueError(
            f"{ENFORCE_ENV} must be 1 (enforce the functions' MemorySize) or 0 (do not); got {value!r}"
        ) from None


def rss_mb(pid: int) -> float | None:
    """Return the resident memory of process ``pid`` in MB (``VmRSS``), or ``None`` when it is gone or unreadable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None  # a zombie has no VmRSS line


class MemoryWatch:
    """Samples one process's resident memory until it exits; calls ``on_exceeded`` once when it is over ``limit_mb``.

    Parameters
    ----------
    pid : int
        The process to watch (a worker).
    limit_mb : int
        The limit (the function's ``MemorySize``).
    on_exceeded : Callable[[float], None]
        Called from the watch thread with the sampled MB, once, the first time a sample is over the limit; the
        watch ends after it.
    interval : float
        Seconds between samples.
    """

    def __init__(
        self, pid: int, limit_mb: int, on_exceeded: Callable[[float], None], interval: float = SAMPLE_INTERVAL_S
    ) -> None:
        self.pid = pid
        self.limit_mb = limit_mb
        self.on_exceeded = on_exceeded
        self.interval = interval
        self.exceeded_mb: float | None = None
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lambda-memory-{pid}", daemon=True)
        self._thread.start()

    @property
    def exceeded(self) -> bool:
        """Return True once a sample was over the limit."""
        return self.exceeded_mb is not None

    def stop(self) -> None:
        """Stop sampling (the process was stopped by other means)."""
        self._halt.set()

    def _run(self) -> None:
        while not self._halt.is_set():
            used = rss_mb(self.pid)
            if used is None:
                return
            if used > self.limit_mb:
                self.exceeded_mb = used
                try:
                    self.on_exceeded(used)
                except Exception:
                    log.exception("stopping process %s over its memory limit failed", self.pid)
                return
            self._halt.wait(self.interval)
