"""History: every processed object, totals, charts of the savings, and "Run again" (the function once more on a row's
object, through :mod:`ops.invoke` as ``make invoke``), with its result, ``REPORT`` line and log lines."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st
from image_compressor.result import STATUSES

from dashboard import ui
from dashboard.errors import explain
from dashboard.text import md

conn = ui.connection()

st.title("History")
top = st.columns([4, 1], vertical_alignment="bottom")
with top[0]:
    statuses = st.pills(
        "Status",
        STATUSES,
        selection_mode="multi",
        default=list(STATUSES),
        key="status",
        bind="query-params",
    )
with top[1]:
    if st.button("Refresh", key="history_refresh", icon=":material/refresh:"):
        ui.results.clear()

everything = ui.results(conn.stack_json)
shown = [r for r in everything if r.status in (statuses or [])]

if not everything:
    st.info("Nothing processed yet. Upload JPEGs on the **Upload & compare** page.", icon=":material/info:")
    st.stop()

ok = [r for r in shown if r.status != "failed"]
before = sum(r.input_bytes or 0 for r in ok)
after = sum(r.output_bytes or 0 for r in ok)
totals = st.columns(5)
totals[0].metric("Images", len(shown), help="Objects shown with the current filter")
totals[1].metric("Compressed", sum(r.status == "compressed" for r in shown))
totals[2].metric("Kept original", sum(r.status == "kept-original" for r in shown))
totals[3].metric("Failed", sum(r.status == "failed" for r in shown))
totals[4].metric(
    "Bytes saved",
    ui.human_bytes(before - after),
    delta=f"-{(before - after) / before * 100:.1f} %" if before else None,
    delta_color="inverse",
    help=f"{before:,} bytes in, {after:,} bytes out (compressed and kept-original images)",
)

if not shown:
    st.info("No object has the selected status.", icon=":material/info:")
    st.stop()

table = pd.DataFrame([r.row() for r in shown])
picked = st.dataframe(
    table,
    key="history_table",
    on_select="rerun",
    selection_mode="single-row",
    hide_index=True,
    placeholder="–",
    column_order=["time", "key", "status", "input_bytes", "output_bytes", "saved_pct", "ms", "reason"],
    column_config={
        "time": st.column_config.DatetimeColumn("Time (UTC)", format="YYYY-MM-DD HH:mm:ss"),
        "key": st.column_config.TextColumn("Key"),
        "status": st.column_config.TextColumn("Status"),
        "input_bytes": st.column_config.NumberColumn("Bytes before", format="%d"),
        "output_bytes": st.column_config.NumberColumn("Bytes after", format="%d"),
        "saved_pct": st.column_config.ProgressColumn("Saved", format="%.1f %%", min_value=0, max_value=100),
        "ms": st.column_config.NumberColumn("ms", format="%.1f"),
        "reason": st.column_config.TextColumn("Reason", width="large"),
    },
)
st.caption(
    f"{len(shown)} of {len(everything)} objects (newest first, at most 500 per bucket). Select a row to run the "
    "function on its object again."
)

with st.container(border=True, key="history_run"):
    st.markdown("**Run again**: invoke the function on the object now in the source bucket and show what it did")
    keys = list(dict.fromkeys(r.key for r in shown))
    rows = picked.selection.rows if picked is not None else []
    chosen = keys.index(shown[rows[0]].key) if rows and rows[0] < len(shown) else 0
    if rows and st.session_state.get("history_run_row") != rows[0]:
        st.session_state["history_run_row"] = rows[0]
        st.session_state["history_run_key"] = keys[chosen]
    pick, kind, go = st.columns([4, 2, 1], vertical_alignment="bottom")
    run_key = pick.selectbox("Object", keys, index=chosen, key="history_run_key")
    event = kind.radio(
        "Event",
        ["s3", "batch"],
        key="history_run_event",
        horizontal=True,
        help="s3: the ObjectCreated:Put record S3 sends; batch: an S3 Batch Operations task. Either way a run of its "
        "own: the function processes the object again (an output of the same bytes and settings is re-used).",
    )
    if go.button("Run again", key="history_run_again", icon=":material/play_arrow:", type="primary"):
        try:
            with st.spinner(f"Invoking the function on {md(run_key)}..."):
                done = conn.cloud.run_again(run_key, event)
            st.session_state["history_last_run"] = (run_key, done, None)
        except Exception as exc:  # shown below after the rerun
            st.session_state["history_last_run"] = (run_key, None, explain(exc, conn.stack))
        ui.clear_listings()
        st.rerun()
    last = st.session_state.get("history_last_run")
    if last:
        run_key, done, error = last
        if error:
            st.error(f"Run again of {md(run_key)}: {error}", icon=":material/warning:")
        else:
            text = f"Ran {md(run_key)} again ({done.event} event, {done.round_trip_ms:.0f} ms): "
            text += f"**{md(done.headline())}**"
            if not done.ok:
                st.error(text, icon=":material/error:")
            elif done.state in ("compressed", "kept-original"):
                st.success(text, icon=":material/check_circle:")
            else:
                st.warning(text, icon=":material/info:")
            st.code(done.report or "no REPORT line in the log", language=None)
            st.caption(
                f"{len(done.log_lines)} log line(s) of request {done.request_id or '?'}, from "
                + ("the invoke's log tail" if done.log_source == "tail" else "the log group (the 4 KB tail was cut)")
            )
            st.code("\n".join(done.log_lines) or "(none)", language="json", wrap_lines=True)
            with st.expander("Response payload"):
                st.json(done.payload)

if ok:
    left, right = st.columns(2)
    recent = ok[:40]
    sizes = pd.DataFrame(
        [{"key": r.key, "size": "before", "bytes": r.input_bytes or 0} for r in recent]
        + [{"key": r.key, "size": "after", "bytes": r.output_bytes or 0} for r in recent]
    )
    with left:
        st.markdown("**Before vs after per image**" + (" (newest 40)" if len(ok) > 40 else ""))
        st.altair_chart(
            alt.Chart(sizes)
            .mark_bar()
            .encode(
                y=alt.Y("key:N", title=None, sort=[r.key for r in recent]),
                x=alt.X("bytes:Q", title="bytes"),
                yOffset=alt.YOffset("size:N", sort=["before", "after"]),
                color=alt.Color("size:N", sort=["before", "after"], title=None),
                tooltip=["key", "size", alt.Tooltip("bytes:Q", format=",")],
            )
            .properties(height=max(160, 36 * len(recent))),
            key="history_sizes",
            width="stretch",
        )
    with right:
        st.markdown("**Distribution of savings**")
        savings = pd.DataFrame({"saved_pct": [round(r.saved_ratio * 100, 1) for r in ok]})
        st.altair_chart(
            alt.Chart(savings)
            .mark_bar()
            .encode(
                x=alt.X("saved_pct:Q", bin=alt.Bin(extent=[0, 100], step=5), title="saved %"),
                y=alt.Y("count():Q", title="images", axis=alt.Axis(tickMinStep=1, format="d")),
                tooltip=[alt.Tooltip("count():Q", title="images")],
            )
            .properties(height=260),
            key="history_savings",
            width="stretch",
        )
