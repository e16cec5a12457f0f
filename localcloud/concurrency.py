"""Reserved concurrency as Lambda enforces it: how many invocations of one function may be in flight at once.

A function with ``ReservedConcurrentExecutions`` (``PutFunctionConcurrency``, Terraform's
``reserved_concurrent_executions``) runs at most that many invocations at once, all versions together; ``0`` stops
it. An invocation over the limit is *throttled*: a synchronous one is answered ``TooManyRequestsException`` (HTTP 429,
``Reason: ReservedFunctionConcurrentInvocationLimitExceeded``, :mod:`localcloud.motopatch`), an asynchronous one goes
back to the queue and is tried again later (:mod:`localcloud.asyncinvoke`), without using up a retry.

A function without a reservation is not limited here: the account's unreserved concurrency (1,000 by default on AWS)
is far above what the local executor runs. The executor's own limit is a separate one, of the machine: at most
``--concurrency`` workers per function version; an invocation admitted here waits for a free worker.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

#: ``Reason`` of Lambda's ``TooManyRequestsException`` when a function is at its reserved concurrency.
RESERVED_LIMIT_REASON = "ReservedFunctionConcurrentInvocationLimitExceeded"
#: Lambda's message of that exception.
THROTTLE_MESSAGE = "Rate Exceeded."


class ReservedConcurrency:
    """Invocations in flight per function, against each function's reserved concurrency.

    Parameters
    ----------
    reserved : Callable[[str], int | None]
        Returns the reserved concurrency of the function with this (unqualified) ARN as it is configured now, or
        ``None`` when it has none (or no longer exists). Read at every :meth:`acquire`, so a
        ``PutFunctionConcurrency`` applies to the next invocation.
    """

    def __init__(self, reserved: Callable[[str], int | None]) -> None:
        self._reserved = reserved
        self._lock = threading.Lock()
        self._in_flight: Counter[str] = Counter()
        self._throttles = 0

    def acquire(self, arn: str) -> bool:
        """Take one unit of the function's concurrency; return False (a throttle, counted) when it is all in use."""
        limit = self._reserved(arn)
        with self._lock:
            if limit is not None and self._in_flight[arn] >= limit:
                self._throttles += 1
                return False
            self._in_flight[arn] += 1
            return True

    def release(self, arn: str) -> None:
        """Give back a unit taken by :meth:`acquire` (the invocation ended, however it ended)."""
        with self._lock:
            self._in_flight[arn] -= 1
            if self._in_flight[arn] <= 0:
                del self._in_flight[arn]

    def in_flight(self) -> dict[str, int]:
        """Return the invocations in flight now per function ARN (functions with none are left out)."""
        with self._lock:
            return dict(self._in_flight)

    def throttles(self) -> int:
        """Return how many invocations (or attempts of asynchronous ones) were throttled since the start."""
        with self._lock:
            return self._throttles
