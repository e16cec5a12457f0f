"""Permissions: the calls the embedded local cloud denied, newest first, with the reason and the deciding policy."""

from __future__ import annotations

import streamlit as st

from dashboard import ui
from dashboard.errors import explain
from dashboard.text import md
from ops import iammode

conn = ui.connection()
st.title("Permissions")

unrecorded = conn.cloud.iam_unrecorded()
if unrecorded:
    st.info(unrecorded + ".", icon=":material/info:")
    st.caption(f"IAM on this stack: {md(ui.iam_mode(conn.stack_json))}.")
    st.stop()

record = ui.iam_record(conn.stack_json)
st.caption(
    f"IAM {md(iammode.MODE_TEXT.get(record.mode, record.mode))}. The embedded local cloud judges every call made with "
    "credentials other than the administrator's (`test`/`test`), the function's role included, as AWS does, and "
    "records each denial with its reason and the deciding policy. `make iam-report` compares what the function's "
    "role grants with what it really used."
)
if record.mode == iammode.OFF:
    st.warning(
        "IAM enforcement is off (`ENFORCE_IAM=0`): no call is checked or recorded. Run `make local-down`, then "
        "`make local-up` (enforced) or `make local-up IAM_SOFT_MODE=1` (denials logged, calls let through).",
        icon=":material/block:",
    )
    st.stop()

last_error = st.session_state.pop("iam_last_clear_error", None)
if last_error:
    st.error(f"Clear: {last_error}", icon=":material/warning:")

count, judged, refresh, clear = st.columns([2, 2, 1, 1], vertical_alignment="bottom")
count.metric("Denials", record.denials_total)
judged.metric("Calls judged", sum(call.count for call in record.used))
if refresh.button("Refresh", key="iam_refresh", icon=":material/refresh:"):
    ui.iam_record.clear()
    ui.iam_mode.clear()
    st.rerun()
if clear.button(
    "Clear",
    key="iam_clear",
    icon=":material/delete_sweep:",
    help="Forget the denials and the counted calls (as `image-compressor iam-report --clear`): a new run starts.",
):
    try:
        conn.cloud.clear_iam_record()
    except Exception as exc:  # shown above the list after the rerun
        st.session_state["iam_last_clear_error"] = explain(exc, conn.stack)
    ui.iam_record.clear()
    ui.iam_mode.clear()
    st.rerun()

if record.mode == iammode.SOFT:
    st.info(
        "Soft mode (`IAM_SOFT_MODE=1`): the calls below were denied by the policies but let through; on AWS they "
        "would fail.",
        icon=":material/visibility:",
    )
if not record.denials:
    st.success("No call was denied.", icon=":material/check_circle:")
else:
    if record.denials_total > len(record.denials):
        st.caption(f"The newest {len(record.denials)} of {record.denials_total} denials.")
    st.dataframe(
        [denial.row() for denial in record.denials],
        key="iam_denials",
        hide_index=True,
        column_order=["time", "principal", "action", "resource", "reason", "policy / Sid"],
        column_config={
            "time": st.column_config.TextColumn("Time (UTC)"),
            "reason": st.column_config.TextColumn("Reason", width="large"),
        },
    )
if record.unknown_keys:
    st.caption(
        "Condition keys the local cloud cannot know, treated as missing (IAM's rule): "
        + ", ".join(f"`{key}`" for key in record.unknown_keys)
    )
