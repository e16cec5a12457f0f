"""The function's CloudWatch log: events, levels, REPORT-line statistics and a cost estimate (no Streamlit here)."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ops.stats import percentile

# Lambda on-demand prices, x86, EU (Ireland) eu-west-1, first tier (up to 6 billion GB-seconds a month), from
# https://aws.amazon.com/lambda/pricing/ as published in 2024 (unchanged since 1 ms billing began in December 2020).
# Not re-checked online from the machine this was written on: check the page before quoting a figure.
PRICES_AS_OF = "2024 (AWS Lambda pricing page; unchanged since December 2020)"
PRICE_PER_GB_SECOND_USD = 0.0000166667
PRICE_PER_REQUEST_USD = 0.20 / 1_000_000

LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG", "REPORT", "START", "END", "OTHER")
_TEXT_LEVEL = re.compile(r"\[(CRITICAL|ERROR|WARNING|WARN|INFO|DEBUG)\]|\b(CRITICAL|ERROR|WARNING|WARN|INFO|DEBUG)\b")
_REPORT_FIELDS = {
    "duration_ms": re.compile(r"(?<!Billed )(?<!Init )Duration:\s*([\d.]+)\s*ms"),
    "billed_ms": re.compile(r"Billed Duration:\s*([\d.]+)\s*ms"),
    "memory_mb": re.compile(r"Memory Size:\s*(\d+)\s*MB"),
    "max_memory_mb": re.compile(r"Max Memory Used:\s*(\d+)\s*MB"),
    "init_ms": re.compile(r"Init Duration:\s*([\d.]+)\s*ms"),
}


@dataclass(frozen=True)
class LogEvent:
    """One CloudWatch log event.

    Attributes
    ----------
    time : datetime
        Event timestamp (UTC).
    stream : str
        Log stream name.
    message : str
        The raw message, trailing newline removed.
    level : str
        One of :data:`LEVELS`: the JSON ``level`` of a Powertools line, a ``[LEVEL]`` in text, or the Lambda
        platform line type (``START``, ``END``, ``REPORT``).
    """

    time: datetime
    stream: str
    message: str
    level: str


@dataclass(frozen=True)
class Report:
    """The figures of one Lambda ``REPORT`` line (text format or JSON ``platform.report``)."""

    duration_ms: float
    billed_ms: float | None
    memory_mb: int | None
    max_memory_mb: int | None
    init_ms: float | None


@dataclass(frozen=True)
class ReportSummary:
    """Statistics over REPORT lines and what 1,000 such invocations would cost on AWS.

    Attributes
    ----------
    count : int
        REPORT lines seen.
    p50_ms, p95_ms : float
        Duration percentiles (nearest-rank).
    max_memory_mb : int | None
        Largest ``Max Memory Used``.
    memory_mb : int
        Configured memory used for the estimate.
    cost_per_1000_usd : float
        ``1000 * (billed seconds * memory GB * price per GB-s + price per request)``, using the mean billed duration.
    """

    count: int
    p50_ms: float
    p95_ms: float
    max_memory_mb: int | None
    memory_mb: int
    cost_per_1000_usd: float


def level_of(message: str) -> str:
    """Classify a log line: Powertools JSON ``level``, Lambda platform lines, ``[LEVEL]`` text, else ``OTHER``."""
    text = message.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            kind = str(data.get("type", ""))
            if kind.startswith("platform."):
                return {"platform.report": "REPORT", "platform.start": "START"}.get(kind, "END")
            level = str(data.get("level") or data.get("levelname") or "").upper()
            if level:
                return "WARNING" if level == "WARN" else (level if level in LEVELS else "OTHER")
    for prefix in ("REPORT ", "START ", "END "):
        if text.startswith(prefix):
            return prefix.strip()
    if text.startswith("Traceback") or "Task timed out" in text:
        return "ERROR"
    match = _TEXT_LEVEL.search(text[:200])
    if match:
        level = match.group(1) or match.group(2)
        return "WARNING" if level == "WARN" else level
    return "OTHER"


#: Fields of a structured (Powertools) line shown in its one-line summary, in this order.
SUMMARY_FIELDS = ("key", "status", "duplicate", "input_bytes", "output_bytes", "ms", "reason", "objects", "error")


def summary_of(message: str) -> str | None:
    """One readable line for a structured JSON log line: its ``message`` then the interesting fields.

    Returns ``None`` for lines that are not JSON objects with a ``message`` (they are short enough as they are).
    """
    text = message.strip()
    if not text.startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or "message" not in data:
        return None
    parts = [str(data["message"])]
    parts += [f"{name}={data[name]}" for name in SUMMARY_FIELDS if _worth_showing(data.get(name))]
    return " · ".join(parts)


def _worth_showing(value: Any) -> bool:
    return value is not None and value is not False and value != "" and value != []


def parse_report(message: str) -> Report | None:
    """Return the figures of a REPORT line (plain text or JSON ``platform.report``), else ``None``."""
    text = message.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("type") != "platform.report":
            return None
        metrics = (data.get("record") or {}).get("metrics") or {}
        if "durationMs" not in metrics:
            return None
        return Report(
            duration_ms=float(metrics["durationMs"]),
            billed_ms=_num(metrics.get("billedDurationMs")),
            memory_mb=_whole(metrics.get("memorySizeMB")),
            max_memory_mb=_whole(metrics.get("maxMemoryUsedMB")),
            init_ms=_num(metrics.get("initDurationMs")),
        )
    if not text.startswith("REPORT"):
        return None
    found = {name: rx.search(text) for name, rx in _REPORT_FIELDS.items()}
    if found["duration_ms"] is None:
        return None
    value = {name: (m.group(1) if m else None) for name, m in found.items()}
    return Report(
        duration_ms=float(value["duration_ms"] or 0),
        billed_ms=_num(value["billed_ms"]),
        memory_mb=_whole(value["memory_mb"]),
        max_memory_mb=_whole(value["max_memory_mb"]),
        init_ms=_num(value["init_ms"]),
    )


def cost_per_1000(billed_ms: float, memory_mb: int) -> float:
    """US dollars for 1,000 invocations of ``billed_ms`` each at ``memory_mb`` (x86, eu-west-1, first tier)."""
    gb_seconds = (billed_ms / 1000.0) * (memory_mb / 1024.0)
    return 1000 * (gb_seconds * PRICE_PER_GB_SECOND_USD + PRICE_PER_REQUEST_USD)


def summarise_reports(reports: Iterable[Report], configured_memory_mb: int | None) -> ReportSummary | None:
    """Summarise REPORT figures: duration p50/p95, max memory, and the cost of 1,000 images.

    The estimate uses the mean billed duration (each duration rounded up to 1 ms when no billed figure is given)
    and ``configured_memory_mb`` (from GetFunctionConfiguration), else the memory the REPORT lines state, else 128.
    Returns ``None`` when there are no reports.
    """
    items = list(reports)
    if not items:
        return None
    durations = [r.duration_ms for r in items]
    billed = [r.billed_ms if r.billed_ms is not None else math.ceil(r.duration_ms) for r in items]
    memories = [r.max_memory_mb for r in items if r.max_memory_mb is not None]
    stated = next((r.memory_mb for r in items if r.memory_mb), None)
    memory = configured_memory_mb or stated or 128
    return ReportSummary(
        count=len(items),
        p50_ms=percentile(durations, 50),
        p95_ms=percentile(durations, 95),
        max_memory_mb=max(memories) if memories else None,
        memory_mb=memory,
        cost_per_1000_usd=cost_per_1000(sum(billed) / len(billed), memory),
    )


def fetch_events(logs_client: Any, log_group: str, since_seconds: float, limit: int = 2000) -> list[LogEvent]:
    """Return the newest ``limit`` events of ``log_group`` from the last ``since_seconds``, newest first.

    A log group that does not exist yet (no invocation so far) gives an empty list.
    """
    start = int((time.time() - since_seconds) * 1000)
    events: list[LogEvent] = []
    kwargs: dict[str, Any] = {"logGroupName": log_group, "startTime": start}
    try:
        while True:
            page = logs_client.filter_log_events(**kwargs)
            for item in page.get("events", []):
                message = str(item.get("message", "")).rstrip("\n")
                events.append(
                    LogEvent(
                        time=datetime.fromtimestamp(int(item.get("timestamp", 0)) / 1000, tz=UTC),
                        stream=str(item.get("logStreamName", "")),
                        message=message,
                        level=level_of(message),
                    )
                )
            token = page.get("nextToken")
            if not token or token == kwargs.get("nextToken"):
                break
            kwargs["nextToken"] = token
    except logs_client.exceptions.ResourceNotFoundException:
        return []
    events.sort(key=lambda e: e.time, reverse=True)
    return events[:limit]


def filter_events(events: Iterable[LogEvent], text: str = "", levels: Iterable[str] | None = None) -> list[LogEvent]:
    """Keep events whose message contains ``text`` (case-insensitive) and whose level is in ``levels`` (if given)."""
    needle = text.strip().lower()
    wanted = set(levels) if levels else None
    return [e for e in events if (not needle or needle in e.message.lower()) and (wanted is None or e.level in wanted)]


def _num(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _whole(value: Any) -> int | None:
    number = _num(value)
    return None if number is None else int(number)
