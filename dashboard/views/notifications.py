"""Notifications: the SNS messages from the inspection queue, newest first, kept across refreshes and restarts."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import notifications as nt
from dashboard import ui
from dashboard.text import md

conn = ui.connection()
store = ui.notification_store(conn)

st.title("Notifications")
queue_url = conn.stack.outputs.get("notifications_queue_url")
if not queue_url:
    st.warning(
        "This stack has no inspection queue (Terraform variable `create_notifications_queue` is off), so its "
        "notifications go to email only. Apply the stack with the queue to see them here.",
        icon=":material/mail_off:",
    )
else:
    st.button("Check for new messages", key="notifications_refresh", icon=":material/refresh:")
    new = nt.drain_queue(conn.cloud.client("sqs"), queue_url, store)
    if new:
        ui.health.clear()  # the queue depth in the sidebar changed
        st.toast(f"{new} new notification(s)", icon=":material/mark_email_unread:")

items = store.read()
st.caption(
    f"Messages are moved from the queue into `{store.path}` before they are deleted from SQS, "
    "so they stay here across reloads and restarts."
)
if not items:
    st.info(
        "No notifications yet. Each processed image publishes one; upload a JPEG to see it here.",
        icon=":material/info:",
    )
    st.stop()

statuses = sorted({n.status for n in items})
chosen = st.pills("Status", statuses, selection_mode="multi", default=statuses, key="nstatus", bind="query-params")
shown = [n for n in items if n.status in (chosen or [])]
st.dataframe(
    pd.DataFrame([{"time": n.time, "status": n.status, "subject": n.subject, "key": n.key} for n in shown]),
    key="notifications_table",
    hide_index=True,
    column_config={
        "time": st.column_config.TextColumn("Sent (UTC)"),
        "status": st.column_config.TextColumn("Status"),
        "subject": st.column_config.TextColumn("Subject", width="large"),
        "key": st.column_config.TextColumn("Key"),
    },
)
st.caption(f"{len(shown)} of {len(items)} messages, newest first.")

st.subheader("Messages")
for index, n in enumerate(shown[:50]):
    icon = ui.STATUS_ICONS.get(n.status, ":material/notifications:")
    with st.expander(f"{icon} {md(n.subject)} · {md(n.time)}", expanded=index == 0):
        st.markdown(f"**Status:** {md(n.status)} · **Key:** {md(n.key or '–')} · **Message id:** {md(n.id)}")
        st.code(n.body or "(empty body)", language=None, wrap_lines=True)
        if n.payload:
            st.json(n.payload, expanded=False)
if len(shown) > 50:
    st.caption("Showing the newest 50 messages; the table above lists them all.")
