"""Runs of their own: how an invoker asks the function to process an object once more. Pure.

A run id makes the event's identity ``run:<id>`` (``identity.identify``'s explicit event id): never a duplicate of the
upload's event, of an earlier run or of another invoke, while a retry of the same run still is (idempotency stays per
event). A forced backfill carries it in the Batch Operations event's ``userArguments`` (``batch.ARG_RUN``); a hand
invoke (``image-compressor invoke``, ``ops.invoke``) carries it there too for a Batch event, and for an S3
notification in each record under :data:`S3_RECORD_RUN`, a key S3 itself never sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Key of an S3 notification record that names the run of a hand invoke (S3 never sends it).
S3_RECORD_RUN = "imageCompressorRun"


def event_id(run: str | None) -> str | None:
    """Return the explicit event identity of the run ``run`` (``run:<id>``), ``None`` without a run."""
    return f"run:{run}" if run else None


def s3_record_event_id(record: Mapping[str, Any]) -> str | None:
    """Return the explicit event identity an S3 notification record carries (:data:`S3_RECORD_RUN`), else ``None``."""
    run = record.get(S3_RECORD_RUN)
    return event_id(run) if isinstance(run, str) and run else None


def mark_s3_event(event: Mapping[str, Any], run: str) -> dict[str, Any]:
    """Return a copy of the S3 notification ``event`` whose every record names the run ``run``."""
    records = [dict(record, **{S3_RECORD_RUN: run}) for record in event.get("Records", [])]
    return {**event, "Records": records}
