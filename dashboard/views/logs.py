"""Logs: the function's CloudWatch log events, newest first, with REPORT statistics and an AWS cost estimate."""

from __future__ import annotations

import html

import streamlit as st

from dashboard import logs as lg
from dashboard import ui

WINDOWS = {"15 minutes": 900, "1 hour": 3600, "6 hours": 21_600, "24 hours": 86_400, "7 days": 604_800}
LEVEL_STYLE = {
    "CRITICAL": ("#ffffff", "#9b1c1c"),
    "ERROR": ("#ffffff", "#d92d20"),
    "WARNING": ("#3d2a00", "#fdb022"),
    "INFO": ("#ffffff", "#1570ef"),
    "DEBUG": ("#344054", "#d0d5dd"),
    "REPORT": ("#ffffff", "#7a5af8"),
    "START": ("#344054", "#eaecf0"),
    "END": ("#344054", "#eaecf0"),
    "OTHER": ("#344054", "#f2f4f7"),
}
MAX_LINES = 300


def _text(message: str) -> str:
    """The message as HTML: structured lines as a summary that unfolds to the full JSON."""
    style = "white-space:pre-wrap;word-break:break-word"
    summary = lg.summary_of(message)
    if summary is None:
        return f'<span style="{style}">{html.escape(message)}</span>'
    return (
        f'<details style="{style}"><summary style="cursor:pointer">{html.escape(summary)}</summary>'
        f'<span style="color:#475467">{html.escape(message)}</span></details>'
    )


conn = ui.connection()
st.title("Logs")
st.caption(f"Log group `{conn.stack.output('log_group_name')}` of function `{conn.stack.output('function_name')}`.")

controls = st.columns([2, 5, 1], vertical_alignment="bottom")
window = controls[0].selectbox("Time window", list(WINDOWS), index=3, key="since", bind="query-params") or "24 hours"
text = controls[1].text_input("Filter text", key="q", placeholder="e.g. a key, failed, REPORT", bind="query-params")
if controls[2].button("Refresh", key="logs_refresh", icon=":material/refresh:", width="stretch"):
    ui.log_events.clear()
levels = st.pills(
    "Levels", lg.LEVELS, selection_mode="multi", default=list(lg.LEVELS), key="level", bind="query-params"
)

events = ui.log_events(conn.stack_json, WINDOWS[window])
reports = [r for r in (lg.parse_report(e.message) for e in events if e.level == "REPORT") if r is not None]
summary = lg.summarise_reports(reports, ui.function_memory(conn.stack_json))

st.subheader("Invocations")
if summary is None:
    st.info(f"No REPORT lines in the last {window}: the function has not run in that time.", icon=":material/info:")
else:
    figures = st.columns(5)
    figures[0].metric("Invocations", summary.count, help="REPORT lines in the time window")
    figures[1].metric("Duration p50", f"{summary.p50_ms:.0f} ms")
    figures[2].metric("Duration p95", f"{summary.p95_ms:.0f} ms")
    figures[3].metric(
        "Max memory used",
        f"{summary.max_memory_mb} MB" if summary.max_memory_mb is not None else "–",
        help=f"Configured: {summary.memory_mb} MB",
    )
    figures[4].metric(
        "AWS cost / 1,000 images",
        f"${summary.cost_per_1000_usd:.4f}",
        help="Mean billed duration × configured memory, Lambda x86 in eu-west-1",
    )
    st.caption(
        f"Estimate: {summary.memory_mb} MB configured (GetFunctionConfiguration) × mean billed duration, at "
        f"${lg.PRICE_PER_GB_SECOND_USD:.10f} per GB-second and ${lg.PRICE_PER_REQUEST_USD * 1e6:.2f} per million "
        f"requests (Lambda x86, eu-west-1, first tier; prices as of {lg.PRICES_AS_OF}). Free tier, S3 and SNS "
        "requests not included. Local durations are from this machine, not from Lambda's CPUs."
    )

shown = lg.filter_events(events, text or "", levels or [])
st.subheader("Events")
st.caption(
    f"{len(shown)} of {len(events)} events in the last {window}, newest first"
    + (f" (showing {MAX_LINES})" if len(shown) > MAX_LINES else "")
)
if not shown:
    st.info("No log events match." if events else f"No log events in the last {window}.", icon=":material/info:")
    st.stop()

rows = []
for event in shown[:MAX_LINES]:
    fg, bg = LEVEL_STYLE.get(event.level, LEVEL_STYLE["OTHER"])
    stamp = f"{event.time:%Y-%m-%d %H:%M:%S.%f}"[:-3]
    rows.append(
        '<div class="log-line" style="display:flex;gap:.6rem;align-items:baseline;padding:2px 0;'
        'border-bottom:1px solid #eaecf0;font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.8rem">'
        f'<span style="color:#667085;white-space:nowrap">{stamp}</span>'
        f'<span class="log-level" style="color:{fg};background:{bg};border-radius:4px;padding:0 .4rem;'
        f'min-width:4.6rem;text-align:center;font-weight:600">{event.level}</span>'
        f"{_text(event.message)}</div>"
    )
st.html("".join(rows))
