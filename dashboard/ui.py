"""Streamlit glue shared by the pages: cached clients and listings, the sidebar, error display, formatting.

House style: boto3 clients live in ``st.cache_resource``; listings in ``st.cache_data(ttl=...)``; all data access is
in the plain modules (``stack``, ``notifications``, ``logs``, ``images``); pages hold UI only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from image_compressor.result import rounded_ms

from dashboard import cloud as cl
from dashboard import discovery, images, logs, notifications
from dashboard.errors import explain
from dashboard.text import md
from ops import debugging, iamrecord, redrive
from ops.stack import Stack

STATUS_COLOURS = {"compressed": "green", "kept-original": "blue", "failed": "red"}
STATUS_ICONS = {
    "compressed": ":material/check_circle:",
    "kept-original": ":material/do_not_disturb_on:",
    "failed": ":material/error:",
}


@dataclass(frozen=True)
class Connection:
    """The stack in use (as JSON, the cache key), its clients, and the dashboard's state directory for it."""

    stack_json: str
    stack: Stack
    cloud: cl.Cloud
    state_dir: Path


# -- caches -----------------------------------------------------------------------------------------------------------


def _stack_signature() -> str:
    """Change detector for the stack description (see :func:`dashboard.discovery.stack_signature`)."""
    return discovery.stack_signature()


@st.cache_data(ttl=300, show_spinner="Looking for the stack...")
def _find_stack(signature: str) -> str:
    return discovery.find_stack().to_json()


@st.cache_resource(show_spinner=False)
def cloud_for(stack_json: str) -> cl.Cloud:
    """Return the boto3 clients for a stack (one set per stack, shared by all sessions)."""
    return cl.Cloud(Stack.from_json(stack_json))


@st.cache_data(ttl=5, show_spinner=False)
def health(stack_json: str) -> list[cl.ServiceHealth]:
    """Health of each service, re-checked at most every 5 s."""
    return cloud_for(stack_json).health()


@st.cache_data(ttl=5, show_spinner=False)
def debugger(stack_json: str) -> str | None:
    """The function's debugger in words (``waiting on 127.0.0.1:5678``, ``attached``), or None when it is off."""
    return debugging.stack_debugger(Stack.from_json(stack_json))


@st.cache_data(ttl=5, show_spinner=False)
def iam_mode(stack_json: str) -> str:
    """The stack's IAM mode in words (``enforced (ENFORCE_IAM=1), 3 denials``; what other backends and AWS do)."""
    return cloud_for(stack_json).iam_mode()


@st.cache_data(ttl=5, show_spinner="Reading the IAM record...")
def iam_record(stack_json: str) -> iamrecord.Record:
    """The embedded cloud's IAM record: mode, denials newest first, counted calls."""
    return cloud_for(stack_json).iam_record()


@st.cache_data(ttl=10, show_spinner="Reading results...")
def results(stack_json: str, limit: int = 500) -> list[cl.ImageResult]:
    """Results in the destination and failed buckets, newest first."""
    return cloud_for(stack_json).list_results(limit=limit)


@st.cache_data(ttl=10, show_spinner="Reading the failed bucket...")
def failed(stack_json: str) -> list[cl.ImageResult]:
    """Failed copies, newest first."""
    return cloud_for(stack_json).failed_results()


@st.cache_data(ttl=10, show_spinner="Reading the dead-letter queue...")
def dead_letters(stack_json: str) -> tuple[int, list[redrive.DeadLetter]]:
    """How many messages the dead-letter queue holds, and up to 100 of them, oldest first (read, then visible again)."""
    return cloud_for(stack_json).dead_letters()


@st.cache_data(ttl=600, max_entries=64, show_spinner="Preparing previews...")
def previews(
    stack_json: str, key: str, before_bucket: str, after_bucket: str | None, version: str
) -> tuple[images.Preview, images.Preview | None] | str:
    """Same-size previews of the original and the output (``version`` keys the cache); a message if undecodable."""
    cloud = cloud_for(stack_json)
    before = cloud.read_object(before_bucket, key)
    after = cloud.read_object(after_bucket, key) if after_bucket else None
    try:
        return images.preview_pair(before, after)
    except ValueError as exc:
        return str(exc)


@st.cache_data(ttl=600, max_entries=32, show_spinner="Cropping...")
def details(stack_json: str, key: str, before_bucket: str, after_bucket: str, version: str) -> tuple[bytes, bytes]:
    """1:1 centre crops of the original and the output."""
    cloud = cloud_for(stack_json)
    return images.detail_pair(cloud.read_object(before_bucket, key), cloud.read_object(after_bucket, key))


@st.cache_data(ttl=10, show_spinner="Reading the log...")
def log_events(stack_json: str, since_seconds: int) -> list[logs.LogEvent]:
    """The function's log events of the last ``since_seconds``, newest first."""
    cloud = cloud_for(stack_json)
    return logs.fetch_events(cloud.client("logs"), cloud.stack.output("log_group_name"), since_seconds)


@st.cache_data(ttl=60, show_spinner=False)
def function_memory(stack_json: str) -> int | None:
    """The function's configured memory (MB) from GetFunctionConfiguration."""
    memory = cloud_for(stack_json).function_configuration().get("MemorySize")
    return int(memory) if memory else None


def clear_listings() -> None:
    """Forget cached listings after the user changed something (upload, reprocess, replay)."""
    results.clear()
    failed.clear()
    dead_letters.clear()
    health.clear()
    iam_mode.clear()
    iam_record.clear()


def notification_store(connection: Connection) -> notifications.NotificationStore:
    """The notifications file of this stack."""
    return notifications.NotificationStore(notifications.store_path(connection.state_dir))


# -- connection and errors --------------------------------------------------------------------------------------------


def connect() -> Connection | str:
    """Find the stack and check it answers; return the connection, or a message saying what to do."""
    try:
        stack_json = _find_stack(_stack_signature())
        stack = Stack.from_json(stack_json)
        cloud = cloud_for(stack_json)
        cloud.check_reachable()
        checks = health(stack_json)
    except Exception as exc:  # every failure becomes one readable sentence, never a traceback
        return explain(exc)
    if checks and not any(c.ok for c in checks):
        return checks[0].detail
    return Connection(stack_json, stack, cloud, discovery.state_dir(stack))


def connection() -> Connection:
    """Return the connection for a page; show the problem and stop the page when there is none."""
    found = connect()
    if isinstance(found, str):
        st.error(found, icon=":material/block:")
        st.stop()
    return found


@contextmanager
def friendly_errors(stack: Stack | None = None) -> Iterator[None]:
    """Show any error raised inside as a one-line message with what to do next, instead of a traceback."""
    try:
        yield
    except Exception as exc:  # Streamlit's own control flow (stop, rerun) is BaseException and passes through
        st.error(explain(exc, stack), icon=":material/warning:")


# -- page style -------------------------------------------------------------------------------------------------------

# Six figures fit in one row of a result card when their values are a little smaller than Streamlit's default.
_STYLE = """<style>
[class*="st-key-result-"] [data-testid="stMetricValue"] { font-size: 1.6rem; }
</style>"""


def page_style() -> None:
    """Add the dashboard's few style rules to the page."""
    st.html(_STYLE)


# -- sidebar ----------------------------------------------------------------------------------------------------------


def sidebar(found: Connection | str) -> None:
    """Render the sidebar: target, endpoint, hot reload when on, bucket names and a health light per service."""
    with st.sidebar:
        st.markdown("### :material/compress: JPEG pipeline")
        if isinstance(found, str):
            st.markdown(":red[●] **No stack**")
            st.caption(found)
            if st.button("Check again", key="sidebar_retry", icon=":material/refresh:"):
                _find_stack.clear()
                health.clear()
                debugger.clear()
                iam_mode.clear()
                st.rerun()
            return
        stack = found.stack
        st.markdown(
            f"**Target** &nbsp;:blue-badge[{stack.label}]  \n"
            f"**Endpoint** `{stack.endpoint or f'AWS {stack.region}'}`  \n"
            f"**Region** `{stack.region}`" + (f" · profile `{stack.profile}`" if stack.profile else "")
        )
        if stack.hot_reload_dir:
            st.markdown(
                f":material/bolt: **Hot reload: on** (`{stack.hot_reload_dir}`)",
                help="`make local-up HOT_RELOAD=1`: the function runs live from this directory; a saved change "
                "takes effect at the next invocation, with no build and no apply.",
            )
        debugger_text = debugger(found.stack_json)
        if debugger_text:
            st.markdown(
                f"**Debugger:** {md(debugger_text)}",
                help="`make local-up DEBUG=1`: the function's worker runs under debugpy; attach with "
                "`.vscode/launch.json` (Attach to the function). Its timeout stops while it is stopped.",
            )
        st.markdown(
            f"**IAM:** {md(iam_mode(found.stack_json))}",
            help="`make local-up` enforces IAM on the embedded cloud as AWS does (`ENFORCE_IAM=1`); "
            "`IAM_SOFT_MODE=1` logs each denial and lets the call through; `ENFORCE_IAM=0` checks nothing. "
            "The **Permissions** page lists the denials.",
        )
        st.markdown("**Health**")
        lines = []
        for check in health(found.stack_json):
            colour = "green" if check.ok else "red"
            detail = f" :gray[· {md(check.detail)}]" if check.detail else ""
            lines.append(f":{colour}[●] {check.service}{detail}")
        st.markdown("  \n".join(lines))
        if st.button("Re-check", key="sidebar_recheck", icon=":material/refresh:", type="tertiary"):
            health.clear()
            debugger.clear()
            iam_mode.clear()
            st.rerun()
        st.markdown("**Resources**")
        st.caption(
            "  \n".join(
                f"{label} `{stack.outputs.get(name, '–')}`"
                for label, name in (
                    ("source", "source_bucket"),
                    ("destination", "destination_bucket"),
                    ("failed", "failed_bucket"),
                    ("function", "function_name"),
                    ("log group", "log_group_name"),
                )
            )
            + f"  \nfrom {stack.source}"
        )


# -- one result -------------------------------------------------------------------------------------------------------

VIEWS = ("Side by side", "Flip", "Detail 1:1")


def show_result(connection: Connection, key: str, result: cl.ImageResult, view: str, slot: int) -> None:
    """Show one result: status, the figures of the full objects, and before/after previews at the same zoom."""
    outputs = connection.stack.outputs
    with st.container(border=True, key=f"result-{slot}"):
        title, badge = st.columns([5, 1], vertical_alignment="center")
        title.markdown(f"#### {md(key)}")
        with badge:
            status_badge(result.status)
        figures = st.columns(6)
        figures[0].metric("Original", human_bytes(result.input_bytes), help=_exact(result.input_bytes))
        figures[1].metric("Compressed", human_bytes(result.output_bytes), help=_exact(result.output_bytes))
        figures[2].metric(
            "Saved",
            "–" if result.status == "failed" else f"{result.saved_ratio * 100:.1f} %",
            help=f"{result.saved_bytes:,} bytes saved",
        )
        dims = f"{result.width} × {result.height}" if result.width and result.height else "–"
        figures[3].metric("Dimensions", dims, help="Output width × height in pixels")
        figures[4].metric("Quality", result.quality if result.quality else "–")
        ms = f"{rounded_ms(result.ms)} ms" if result.ms is not None else "–"  # the number the message shows
        figures[5].metric("Processing", ms, help="Time the function spent on the image")
        sizes = f"{result.input_bytes:,} bytes" if result.input_bytes is not None else "size unknown"
        if result.output_bytes is not None:
            sizes += f" → {result.output_bytes:,} bytes"
        st.caption(f"{sizes} · written {result.last_modified:%Y-%m-%d %H:%M:%S} UTC to {md(result.bucket)}")
        if result.status == "failed":
            st.error(f"Failed: {md(result.reason or 'no reason recorded')}", icon=":material/error:")
        elif result.reason:
            st.info(md(result.reason), icon=":material/info:")
        before_bucket = outputs["failed_bucket"] if result.status == "failed" else outputs["source_bucket"]
        after_bucket = None if result.status == "failed" else outputs["destination_bucket"]
        version = f"{result.source_etag}:{result.last_modified.isoformat()}"
        try:
            pair = previews(connection.stack_json, key, before_bucket, after_bucket, version)
        except Exception as exc:  # a preview problem must not hide the figures above
            st.warning(f"No preview: {explain(exc, connection.stack)}")
            return
        if isinstance(pair, str):
            st.caption(f"No preview: {md(pair)}")
            return
        before, after = pair
        full = f"{before.full_width} × {before.full_height}"
        if after is None:
            st.image(before.data, caption=f"Original ({full}, preview)", width=min(before.width, 640))
        elif view == "Flip":
            flipped = st.toggle("Show compressed", key=f"flip-{slot}-{key}")
            shown, label = (after, "Compressed") if flipped else (before, "Original")
            st.image(shown.data, caption=f"{label} · preview at the same zoom", width="stretch")
        elif view == "Detail 1:1":
            crop_a, crop_b = details(connection.stack_json, key, before_bucket, after_bucket, version)
            left, right = st.columns(2)
            left.image(crop_a, caption="Original · centre at 100 %", width="stretch")
            right.image(crop_b, caption="Compressed · same region at 100 %", width="stretch")
        else:
            left, right = st.columns(2)
            left.image(before.data, caption=f"Original · {full} · {human_bytes(result.input_bytes)}", width="stretch")
            out = f"{after.full_width} × {after.full_height}"
            right.image(after.data, caption=f"Compressed · {out} · {human_bytes(result.output_bytes)}", width="stretch")


def _exact(value: int | None) -> str:
    return "unknown" if value is None else f"{value:,} bytes"


# -- formatting -------------------------------------------------------------------------------------------------------


def human_bytes(value: int | None) -> str:
    """``1536`` -> ``1.5 KiB``; ``None`` -> ``–``."""
    if value is None:
        return "–"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def status_badge(status: str) -> None:
    """Show the result status as a coloured badge."""
    st.badge(status, icon=STATUS_ICONS.get(status), color=STATUS_COLOURS.get(status, "gray"))  # type: ignore[arg-type]
