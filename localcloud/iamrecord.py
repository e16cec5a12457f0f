"""The record of IAM decisions the embedded cloud made: recent denials, and every evaluated call counted.

:mod:`localcloud.iamenforce` adds each decision; the server answers ``GET /_localcloud/iam`` with
:meth:`DecisionRecord.document` (``make local-status``, the dashboard and ``make iam-report`` read it) and
``DELETE /_localcloud/iam`` clears it. Only calls with credentials other than the administrator's are recorded.
"""

from __future__ import annotations

import datetime
import threading
from collections import Counter, deque
from dataclasses import asdict, dataclass
from typing import Any

#: Denials kept for the document (``denials_total`` counts them all).
KEPT_DENIALS = 200
#: Distinct (principal, action, resource) counts kept; calls beyond are counted in ``used_not_kept`` only.
KEPT_USED = 50_000


@dataclass(frozen=True)
class Denial:
    """One denied (or, in soft mode, let-through) call, as the document lists it."""

    time: str
    principal: str
    action: str
    resource: str
    reason: str
    message: str
    policy: str | None
    sid: str | None
    enforced: bool


def now_text() -> str:
    """Return the current UTC time as ``2026-12-06T07:00:00.123Z``."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class DecisionRecord:
    """Thread-safe record: the newest :data:`KEPT_DENIALS` denials and a count per (principal, action, resource)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._denials: deque[Denial] = deque(maxlen=KEPT_DENIALS)
        self._denials_total = 0
        self._used: Counter[tuple[str, str, str, bool, str | None, str | None]] = Counter()
        self._unknown_keys: set[str] = set()
        self._used_not_kept = 0

    def add(
        self,
        principal: str,
        action: str,
        resource: str,
        allowed: bool,
        denial: Denial | None = None,
        policy: str | None = None,
        sid: str | None = None,
    ) -> None:
        """Count one evaluated call by ``principal`` under its decision, deciding policy and statement; keep a denial.

        A role session is counted under its role's ARN.
        """
        with self._lock:
            key = (principal, action, resource, allowed, policy, sid)
            if key in self._used or len(self._used) < KEPT_USED:
                self._used[key] += 1
            else:
                self._used_not_kept += 1
            if denial is not None:
                self._denials.append(denial)
                self._denials_total += 1

    def unknown_key(self, key: str) -> bool:
        """Note a condition key the embedded cloud cannot fill; return True the first time it is seen."""
        with self._lock:
            if key in self._unknown_keys:
                return False
            self._unknown_keys.add(key)
            return True

    def clear(self) -> None:
        """Forget every denial and count."""
        with self._lock:
            self._denials.clear()
            self._denials_total = 0
            self._used.clear()
            self._used_not_kept = 0

    @property
    def denials_total(self) -> int:
        """How many denials were recorded since the start (or the last :meth:`clear`)."""
        with self._lock:
            return self._denials_total

    def document(self, mode: str, secure_transport: bool) -> dict[str, Any]:
        """Return the JSON document of ``GET /_localcloud/iam`` (denials newest first)."""
        with self._lock:
            return {
                "mode": mode,
                "secure_transport": secure_transport,
                "denials_total": self._denials_total,
                "denials": [asdict(d) for d in reversed(self._denials)],
                "used": [
                    {"principal": p, "action": a, "resource": r, "count": n, "allowed": ok, "policy": pol, "sid": sid}
                    for (p, a, r, ok, pol, sid), n in sorted(self._used.items(), key=lambda item: str(item[0]))
                ],
                "used_not_kept": self._used_not_kept,
                "unknown_keys": sorted(self._unknown_keys),
            }
