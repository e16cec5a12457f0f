"""Dead letters: the events the function could not finish after its retries, with their keys and errors; Replay all."""

from __future__ import annotations

import streamlit as st

from dashboard import ui
from dashboard.errors import explain
from dashboard.text import md

conn = ui.connection()
st.title("Dead letters")
st.caption(
    f"Events that still failed after Lambda's retries wait in `{conn.stack.output('dlq_url')}`. **Replay all** sends "
    f"each one to `{conn.stack.output('function_name')}` again (as `make redrive` does) and deletes its message once "
    "Lambda accepted it. Replaying an event that already has its outcome writes and notifies nothing twice."
)

last = st.session_state.get("dlq_last_replay")
if last:
    replayed, left, error = last
    if error:
        st.error(f"Replay all: {error}", icon=":material/warning:")
    else:
        message = f"Replayed {replayed} event(s); the function processes them now (see **History** and **Logs**)."
        if left:
            st.warning(
                f"{message} {left} message(s) could not be replayed and stay in the queue.", icon=":material/info:"
            )
        else:
            st.success(message, icon=":material/check_circle:")

total, letters = ui.dead_letters(conn.stack_json)
replayable = [m for m in letters if m.replayable]
count, action, refresh = st.columns([2, 2, 1], vertical_alignment="bottom")
count.metric("Messages in the dead-letter queue", total)
if action.button(
    "Replay all",
    key="dlq_replay_all",
    icon=":material/replay:",
    type="primary",
    disabled=not replayable,
    help="Invoke the function asynchronously with each event; a message is deleted only after Lambda accepted it.",
):
    try:
        with st.spinner(f"Replaying {len(replayable)} event(s)..."):
            summary = conn.cloud.replay_dead_letters()
        st.session_state["dlq_last_replay"] = (len(summary.replayed), len(summary.left), None)
    except Exception as exc:  # shown as a message above the list after the rerun
        st.session_state["dlq_last_replay"] = (0, 0, explain(exc, conn.stack))
    ui.clear_listings()
    st.rerun()
if refresh.button("Refresh", key="dlq_refresh", icon=":material/refresh:"):
    ui.dead_letters.clear()
    st.rerun()

if not letters:
    st.success("The dead-letter queue is empty: every event got its outcome.", icon=":material/check_circle:")
    st.stop()

if total > len(letters):
    st.caption(f"Showing {len(letters)} of them; **Replay all** replays every one.")
for letter in letters:
    with st.container(border=True, key=f"dlq-{letter.message_id}"):
        if letter.keys:
            st.markdown("  \n".join(f"**{md(key)}**" for key in letter.keys))
        st.markdown(f"**Error:** {md(letter.error or 'no error recorded')}")
        if letter.problem:
            st.warning(f"Not replayable: {md(letter.problem)}", icon=":material/block:")
        when = f"{letter.sent_at:%Y-%m-%d %H:%M:%S} UTC" if letter.sent_at else "unknown time"
        st.caption(f"in the queue since {when} · message {md(letter.message_id)}")
