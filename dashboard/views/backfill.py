"""Backfill: the progress of the latest `make backfill` on this stack (from its progress file), live while it runs."""

from __future__ import annotations

import streamlit as st

from dashboard import ui
from ops import backfill

REFRESH_S = 2.0
PHASES = {
    backfill.SCAN: "checking which objects need an outcome",
    backfill.QUEUE: "sending objects to the function",
    backfill.WAIT: "waiting for the outcomes",
    backfill.DONE: "finished",
    backfill.STOPPED: "stopped before the end (interrupted, or its process is gone)",
}
FIGURES = ("found", "skipped", "queued", "compressed", "kept", "failed", "pending")

conn = ui.connection()
st.title("Backfill")
st.caption(
    f"Objects already in `{conn.stack.output('source_bucket')}` get their outcome with `make backfill` "
    "(`PREFIX=`, `FORCE=1`, `DRY_RUN=1`); this page follows the latest one on this stack."
)
progress_file = conn.state_dir / backfill.PROGRESS_FILE
running = (backfill.read_progress(progress_file) or {}).get("phase") in (backfill.SCAN, backfill.QUEUE, backfill.WAIT)


@st.fragment(run_every=REFRESH_S if running else None)
def show_progress() -> None:
    record = backfill.read_progress(progress_file)
    if record is None:
        st.info("No backfill has run on this stack yet. Start one with `make backfill`.", icon=":material/info:")
        return
    phase = record["phase"]
    where = f"s3://{record['bucket']}/{record['prefix']}"
    mode = " · dry run" if record.get("dry_run") else ""
    mode += " · forced" if record.get("force") else ""
    st.markdown(f"**{where}**{mode} · started {record['started_at']} · updated {record['updated_at']}")
    done, total = record.get("done") or 0, record.get("total")
    fraction = 1.0 if phase == backfill.DONE or not total else min(1.0, done / total)
    label = PHASES.get(phase, phase)
    st.progress(fraction, text=f"{label}: {done:,} of {total:,}" if total else f"{label}: {done:,} so far")
    for column, name in zip(st.columns(len(FIGURES)), FIGURES, strict=True):
        column.metric(name.capitalize(), f"{record.get(name, 0):,}")
    if record.get("job_id"):
        st.info(f"S3 Batch Operations job `{record['job_id']}` runs the queued objects.", icon=":material/work:")
    if phase == backfill.DONE and record.get("pending"):
        st.warning(
            f"{record['pending']:,} objects had no outcome when the command stopped waiting. Run `make backfill` "
            "again later (objects with an outcome are skipped), or look at the dead-letter queue.",
            icon=":material/hourglass_empty:",
        )
    if phase == backfill.STOPPED:
        st.warning("Run `make backfill` again: objects that got their outcome are skipped.", icon=":material/replay:")


show_progress()
if st.button("Refresh", key="backfill_refresh", icon=":material/refresh:"):
    st.rerun()
