"""Failed: originals the function could not compress, with the reason, and a retry that really reprocesses them."""

from __future__ import annotations

import streamlit as st

from dashboard import ui
from dashboard.errors import explain
from dashboard.text import md

RETRY_TIMEOUT_S = 60.0

conn = ui.connection()
st.title("Failed")
st.caption(
    f"Originals copied to `{conn.stack.output('failed_bucket')}` with the reason. **Retry** copies one back to "
    f"`{conn.stack.output('source_bucket')}` (server-side) so the function processes it again."
)

last = st.session_state.get("failed_last_retry")
if last:
    key, result, error = last
    if error:
        st.error(f"Retry of {md(key)}: {error}", icon=":material/warning:")
    elif result is None:
        st.warning(
            f"Retried {md(key)}, but no new result arrived within {RETRY_TIMEOUT_S:.0f} s. "
            "Look at the **Logs** page and the DLQ count in the sidebar; reload to look again.",
            icon=":material/hourglass_empty:",
        )
    elif result.status == "failed":
        st.error(f"Retried {md(key)}: failed again — {md(result.reason)}", icon=":material/replay:")
    else:
        st.success(
            f"Retried {md(key)}: **{result.status}**, {result.input_bytes:,} → {result.output_bytes:,} bytes "
            f"(saved {result.saved_ratio * 100:.1f} %). Its failed copy was removed.",
            icon=":material/check_circle:",
        )

if st.button("Refresh", key="failed_refresh", icon=":material/refresh:"):
    ui.failed.clear()

items = ui.failed(conn.stack_json)
if not items:
    st.success("No failed images.", icon=":material/check_circle:")
    st.stop()

st.caption(f"{len(items)} failed object(s), newest first.")
for item in items:
    with st.container(border=True, key=f"failed-{item.key}"):
        info, action = st.columns([6, 1], vertical_alignment="center")
        with info:
            st.markdown(f"#### {md(item.key)}")
            st.markdown(f"**Reason:** {md(item.reason or 'no reason recorded')}")
            when = f"{item.last_modified:%Y-%m-%d %H:%M:%S} UTC"
            pending = f" · retry requested {item.retry_requested}" if item.retry_requested else ""
            st.caption(f"{ui.human_bytes(item.input_bytes)} ({item.input_bytes:,} bytes) · failed {when}{pending}")
        if action.button("Retry", key=f"retry-{item.key}", icon=":material/replay:", type="primary"):
            try:
                with st.spinner(f"Resubmitting {md(item.key)} and waiting for the function..."):
                    etag = conn.cloud.retry_failed(item.key)
                    outcome = conn.cloud.wait_for_results({item.key: etag}, timeout=RETRY_TIMEOUT_S)[item.key]
                    if outcome is not None and outcome.status != "failed":
                        conn.cloud.forget_failed_copy(item.key)
                st.session_state["failed_last_retry"] = (item.key, outcome, None)
            except Exception as exc:  # shown as a message above the list after the rerun
                st.session_state["failed_last_retry"] = (item.key, None, explain(exc, conn.stack))
            ui.clear_listings()
            st.rerun()
