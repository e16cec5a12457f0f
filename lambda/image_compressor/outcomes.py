"""What the function did with one source object: the outcome record and its words beyond the result record's.

Also the two outcomes that write nothing, each logged with its reason where it is decided: ``error`` (unplaced: the
event is retried) and ``superseded`` (a newer upload gives the key its outcome).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from image_compressor.identity import ObjectRef
from image_compressor.observability import logger
from image_compressor.result import Result, rounded_ms

#: Summary statuses beyond the result record's: nothing was written and the event is retried.
ERROR = "error"
#: The source bucket is the destination or failed bucket: refused, nothing written, the event is retried.
REFUSED = "refused"
#: The source object was gone when the function looked: nothing to do.
MISSING = "missing"
#: The event is for an older version of the key than the outcome already recorded (or the source was replaced):
#: nothing written, nothing published; the newer upload's own event gives the key its outcome.
SUPERSEDED = "superseded"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the function did with one source object.

    Attributes
    ----------
    bucket, key : str
        The source object.
    status : str
        ``compressed``, ``kept-original`` or ``failed`` (the result record's words), or ``error`` (could not be put
        anywhere: retried), ``refused`` (recursion guard), ``missing`` (source gone), ``superseded`` (an older
        event than the outcome already recorded for the key: nothing written).
    input_bytes, output_bytes : int
        Sizes of the source object and of what was written to the destination (0 if nothing).
    ms : float
        Wall-clock milliseconds of the function's handling of this object until its outcome was written (source
        HeadObject, checks, GetObject, compression): the number the message, the object metadata and the dashboard
        show. For an object that got no outcome (error, refused, missing, superseded, duplicate) the whole handling.
    total_ms : float
        The whole handling, the outcome write and the notification included (only the log line has it: the
        object metadata is written before the write ends).
    reason : str | None
        Why it was not compressed, or what went wrong.
    target : str | None
        ``s3://bucket/key`` where the object ended (destination or failed bucket).
    duplicate : bool
        True when an earlier attempt of the same event already produced this outcome and nothing was written this
        time (the notification was published only if that attempt had not).
    result : Result | None
        The result record written to the metadata and the message (its ``ms`` is ``ms``), when there was one.
    compress_ms : float | None
        The compression core's own compute time, when it ran.
    event_id : str | None
        The event's identity (``identity.Identity``), once known.
    reused : bool
        True when the output of an earlier upload of the same bytes and settings was re-used (no re-encode).
    notified : bool
        True when this attempt published the notification.
    """

    bucket: str
    key: str
    status: str
    input_bytes: int = 0
    output_bytes: int = 0
    ms: float = 0.0
    total_ms: float = 0.0
    reason: str | None = None
    target: str | None = None
    duplicate: bool = False
    result: Result | None = None
    compress_ms: float | None = None
    event_id: str | None = None
    reused: bool = False
    notified: bool = False

    @property
    def placed(self) -> bool:
        """True when nothing is left to do: the object is in the destination or failed bucket, or is gone."""
        return self.status not in (ERROR, REFUSED)

    def to_dict(self) -> dict[str, Any]:
        """Return the outcome as a JSON-ready dict (the handler's response lists these)."""
        return {
            "bucket": self.bucket,
            "key": self.key,
            "status": self.status,
            "input_bytes": self.input_bytes,
            "output_bytes": self.output_bytes,
            "ms": rounded_ms(self.ms),
            "reason": self.reason,
            "target": self.target,
            "duplicate": self.duplicate,
            "reused": self.reused,
            "event_id": self.event_id,
        }


class UnprocessedObjectsError(RuntimeError):
    """Some objects of the event ended in neither the destination nor the failed bucket; Lambda should retry.

    Attributes
    ----------
    outcomes : list[Outcome]
        The objects left in the source bucket only, each with its reason.
    """

    def __init__(self, outcomes: Sequence[Outcome]) -> None:
        self.outcomes = list(outcomes)
        listed = "; ".join(f"s3://{o.bucket}/{o.key} ({o.status}: {o.reason})" for o in self.outcomes)
        super().__init__(
            f"{len(self.outcomes)} object(s) were neither written to the destination nor copied to the failed "
            f"bucket and stay in the source bucket only: {listed}. Fix the cause named above; Lambda retries the "
            "event and then sends it to the dead-letter queue, from where it can be replayed."
        )


def unplaced(ref: ObjectRef, reason: str, event_id: str | None = None, input_bytes: int = 0) -> Outcome:
    """Log that the object has no complete outcome yet, and return its ``error`` outcome (the event is retried).

    Parameters
    ----------
    ref : ObjectRef
        The source object.
    reason : str
        What went wrong; logged at error level and kept as the outcome's reason.
    event_id : str | None
        The event's identity, once known.
    input_bytes : int
        The source object's size, when known.

    Returns
    -------
    Outcome
        Status ``error``: not placed, so :class:`UnprocessedObjectsError` makes Lambda retry the event.
    """
    logger.error(f"the object has no complete outcome yet and the event will be retried: {reason}")
    return Outcome(ref.bucket, ref.key, ERROR, input_bytes=input_bytes, reason=reason, event_id=event_id)


def superseded(ref: ObjectRef, why: str, event_id: str | None = None) -> Outcome:
    """Log that a newer upload of the key decides its outcome, and return the ``superseded`` outcome.

    Parameters
    ----------
    ref : ObjectRef
        The source object.
    why : str
        How the event was found to be older (worded to follow ``"superseded: "``).
    event_id : str | None
        The event's identity, once known.

    Returns
    -------
    Outcome
        Status ``superseded``, reason ``"superseded: <why>; nothing written, ..."``: placed, nothing written.
    """
    reason = f"superseded: {why}; nothing written, the newer upload's event gives the key its outcome"
    logger.info(reason)
    return Outcome(ref.bucket, ref.key, SUPERSEDED, reason=reason, event_id=event_id)


def elapsed_ms(started: float) -> float:
    """Return the milliseconds since ``started``, a ``time.perf_counter()`` value."""
    return (time.perf_counter() - started) * 1000.0
