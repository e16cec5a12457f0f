"""Upload & compare: send JPEGs to the source bucket, wait for each result, compare before and after."""

from __future__ import annotations

import streamlit as st

from dashboard import ui
from dashboard.text import md

conn = ui.connection()
outputs = conn.stack.outputs

st.title("Upload & compare")
st.caption(
    f"Dropped JPEGs go to `{outputs['source_bucket']}`; the function writes each result to "
    f"`{outputs['destination_bucket']}` or copies the original to `{outputs['failed_bucket']}`."
)

with st.expander("Upload options"):
    prefix = st.text_input("Key prefix", key="upload_prefix", placeholder="optional, e.g. uploads/")
    timeout = st.number_input(
        "Wait for each result up to (seconds)", min_value=5, max_value=900, value=60, step=5, key="upload_timeout"
    )

files = st.file_uploader(
    "Drop JPEG images here",
    type=["jpg", "jpeg"],
    accept_multiple_files=True,
    key="upload_files",
    help="Each file is stored under its own name (plus the prefix) in the source bucket.",
)

sent: dict[str, str] = st.session_state.setdefault("upload_sent", {})  # uploader file id -> object key
etags: dict[str, str] = st.session_state.setdefault("upload_etags", {})  # object key -> ETag of our upload
shown: list[str] = st.session_state.setdefault("upload_shown", list(st.query_params.get_all("key")))
new_files = [f for f in files or [] if f.file_id not in sent]

if new_files:
    pending: dict[str, str] = {}
    with st.status(f"Uploading {len(new_files)} image(s)...", expanded=True) as status:
        for upload in new_files:
            key = f"{prefix.strip().lstrip('/')}{upload.name}"
            data = upload.getvalue()
            total = max(1, len(data))
            bar = st.progress(0.0, text=f"Uploading {md(key)} ({ui.human_bytes(len(data))})")

            def _progress(done: int, bar=bar, key=key, total=total) -> None:
                amount = f"{ui.human_bytes(done)} of {ui.human_bytes(total)}"
                bar.progress(done / total, text=f"Uploading {md(key)}: {amount}")

            pending[key] = conn.cloud.upload(key, data, progress=_progress)
            bar.progress(1.0, text=f"Uploaded {md(key)} ({ui.human_bytes(len(data))})")
            sent[upload.file_id] = key
            etags[key] = pending[key]
        fresh = list(pending)
        shown[:] = fresh + [key for key in shown if key not in fresh]
        status.update(label=f"Waiting for {len(pending)} result(s)...")
        lines = {key: st.empty() for key in pending}
        for key, line in lines.items():
            line.markdown(f":material/hourglass_top: {md(key)} — waiting for the function...")

        def _arrived(key: str, result) -> None:
            lines[key].markdown(f"{ui.STATUS_ICONS.get(result.status, '•')} {md(key)} — **{result.status}**")

        found = conn.cloud.wait_for_results(pending, timeout=float(timeout), on_result=_arrived)
        missing = [key for key, result in found.items() if result is None]
        for key in missing:
            lines[key].markdown(f":material/hourglass_disabled: {md(key)} — no result after {timeout} s")
        if missing:
            status.update(label=f"{len(missing)} of {len(found)} result(s) did not arrive in time", state="error")
        else:
            status.update(label=f"{len(found)} result(s) arrived", state="complete", expanded=False)
    ui.clear_listings()
    st.query_params["key"] = shown

if not shown:
    st.info("Nothing uploaded yet in this session. Drop one or more `.jpg` files above to see before and after.")
    st.stop()

bar = st.columns([4, 1], vertical_alignment="bottom")
view = (
    bar[0].segmented_control("View", ui.VIEWS, default=ui.VIEWS[0], required=True, key="view", bind="query-params")
    or ui.VIEWS[0]
)
if bar[1].button("Clear the list", key="upload_clear", icon=":material/clear_all:", width="stretch"):
    shown.clear()
    st.query_params.pop("key", None)
    st.rerun()

for slot, key in enumerate(shown):
    result = conn.cloud.find_result(key, etags.get(key))
    if result is None:
        st.warning(
            f"No result for {md(key)} yet (waited {timeout} s). The function may still be busy, or it may have "
            "crashed before writing anything: look at the **Logs** page and the DLQ count in the sidebar. "
            "Reload this page to look again.",
            icon=":material/hourglass_empty:",
        )
        continue
    ui.show_result(conn, key, result, view, slot)
