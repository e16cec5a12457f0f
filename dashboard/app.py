"""Entry point of the dashboard: ``streamlit run dashboard/app.py`` (or ``make dashboard``).

Builds the navigation (each page has its own URL path, so a reload keeps the user's place), the sidebar, and runs the
selected page inside an error boundary that turns any failure into a readable message. Nothing it shows is fetched
from off this machine (see ``FAVICON``; ``tests/browser/test_dashboard_offline.py`` checks every page).

The page scripts live in ``views/``, not ``pages/``: Streamlit treats a ``pages/`` folder beside the entry script as a
legacy multipage app and then runs a page requested by URL without this script (no sidebar, no error boundary).
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:  # `streamlit run dashboard/app.py` puts only dashboard/ on sys.path
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from dashboard import ui  # noqa: E402

#: The tab's icon: the Material Symbols "compress" glyph as a file the dashboard serves itself. A ``:material/...:``
#: page icon makes the browser fetch an SVG from fonts.gstatic.com on every run of the script (offline: a failed
#: request each time); the icons inside the pages come from the Material Symbols font Streamlit bundles.
FAVICON = Path(__file__).resolve().parent / "assets" / "favicon.png"

st.set_page_config(page_title="JPEG pipeline", page_icon=FAVICON, layout="wide")

PAGES = [
    st.Page("views/upload.py", title="Upload & compare", icon=":material/upload:", url_path="upload", default=True),
    st.Page("views/history.py", title="History", icon=":material/table_chart:", url_path="history"),
    st.Page("views/notifications.py", title="Notifications", icon=":material/mail:", url_path="notifications"),
    st.Page("views/logs.py", title="Logs", icon=":material/receipt_long:", url_path="logs"),
    st.Page("views/failed.py", title="Failed", icon=":material/error:", url_path="failed"),
    st.Page("views/backfill.py", title="Backfill", icon=":material/playlist_add_check:", url_path="backfill"),
    st.Page("views/deadletters.py", title="Dead letters", icon=":material/move_to_inbox:", url_path="deadletters"),
    st.Page("views/permissions.py", title="Permissions", icon=":material/policy:", url_path="permissions"),
]

page = st.navigation(PAGES)
ui.page_style()
found = ui.connect()
ui.sidebar(found)
if isinstance(found, str):
    st.title(page.title)
    st.error(found, icon=":material/block:")
    st.info(
        "The dashboard finds the stack through `.local/stack.json` (written by `make local-up`), "
        "`DASHBOARD_STACK_FILE`, or the Terraform outputs of `terraform/envs/aws` after `make deploy-aws`."
    )
else:
    with ui.friendly_errors(found.stack):
        page.run()
