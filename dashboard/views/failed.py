"""Failed: originals the function could not compress, with the reason, and Reprocess (the replay path of redrive)."""

from __future__ import annotations

import streamlit as st

from dashboard import ui
from dashboard.errors import explain
from dashboard.text import md

REPROCESS_TIMEOUT_S = 60.0

conn = ui.connection()
st.title("Failed")
st.caption(
    f"Originals copied to `{conn.stack.output('failed_bucket')}` with the reason. **Reprocess** replays the "
    f"upload's event through the function, as `make redrive` does for the dead-letter queue (an original no longer "
    f"in `{conn.stack.output('source_bucket')}` is copied back there first)."
)

last = st.session_state.get("failed_last_reprocess")
if last:
    key, result, error = last
    if error:
        st.error(f"Reprocess of {md(key)}: {error}", icon=":material/warning:")
    elif result is None:
        st.warning(
            f"Reprocessing {md(key)}, but no new result arrived within {REPROCESS_TIMEOUT_S:.0f} s. "
            "Look at the **Logs** and **Dead letters** pages; reload to look again.",
            icon=":material/hourglass_empty:",
        )
    elif result.status == "failed":
        st.error(f"Reprocessed {md(key)}: failed again — {md(result.reason)}", icon=":material/replay:")
    else:
        st.success(
            f"Reprocessed {md(key)}: **{result.status}**, {result.input_bytes:,} → {result.output_bytes:,} bytes "
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
            pending = f" · reprocess requested {item.retry_requested}" if item.retry_requested else ""
            st.caption(f"{ui.human_bytes(item.input_bytes)} ({item.input_bytes:,} bytes) · failed {when}{pending}")
        if action.button("Reprocess", key=f"reprocess-{item.key}", icon=":material/replay:", type="primary"):
            try:
                with st.spinner(f"Replaying {md(item.key)} through the function and waiting for it..."):
                    outcome = conn.cloud.reprocess(item.key, timeout=REPROCESS_TIMEOUT_S).result
                st.session_state["failed_last_reprocess"] = (item.key, outcome, None)
            except Exception as exc:  # shown as a message above the list after the rerun
                st.session_state["failed_last_reprocess"] = (item.key, None, explain(exc, conn.stack))
            ui.clear_listings()
            st.rerun()
