"""Offline for real: no page of the dashboard asks for anything off this machine, and neither does its process.

Chromium records every request and websocket of every page (a page load of each of the eight pages, a walk through
them by the sidebar, an upload); any whose host is not the dashboard or the stack's local endpoint is refused (as if
the machine had no network) and the test fails with the offending URLs, page by page. The dashboard's own process
runs with an audit hook (``tests/browser/netaudit``) that logs every name it looks up and every address it connects
to off this machine.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.browser.netaudit.sitecustomize import OUTBOUND, STARTED
from tests.jpegs import photo_jpeg

pytestmark = pytest.mark.browser

#: Every page of dashboard/app.py: (URL path, title). The test checks the sidebar lists exactly these.
PAGES = (
    ("upload", "Upload & compare"),
    ("history", "History"),
    ("notifications", "Notifications"),
    ("logs", "Logs"),
    ("failed", "Failed"),
    ("backfill", "Backfill"),
    ("deadletters", "Dead letters"),
    ("permissions", "Permissions"),
)
#: Schemes whose requests never leave the browser.
IN_BROWSER = {"data", "blob", "about"}
SETTLE_S = 30.0


class RequestLog:
    """Every request and websocket a browser context opens, under the step that was running, in flight or done."""

    def __init__(self, local_hosts: set[str]) -> None:
        self.local_hosts = local_hosts
        self.step = "start"
        self.seen: dict[str, list[str]] = {}
        self.in_flight: set[Any] = set()

    def is_local(self, url: str) -> bool:
        """Return True when ``url`` stays on this machine: the dashboard, the stack's endpoint, or the browser."""
        parts = urlsplit(url)
        return parts.scheme in IN_BROWSER or parts.netloc in self.local_hosts

    def attach(self, page: Any) -> None:
        """Record the requests of ``page``'s context and its websockets; refuse those off the machine."""
        context = page.context
        page.on("websocket", lambda ws: self._record(ws.url))
        context.on("request", self._started)
        context.on("requestfinished", self._done)
        context.on("requestfailed", self._done)
        context.route(re.compile(r".*"), self._route)

    def _started(self, request: Any) -> None:
        self.in_flight.add(request)
        self._record(request.url)

    def _done(self, request: Any) -> None:
        self.in_flight.discard(request)

    def _record(self, url: str) -> None:
        self.seen.setdefault(self.step, []).append(url)

    def _route(self, route: Any) -> None:
        if self.is_local(route.request.url):
            route.continue_()
        else:
            route.abort("internetdisconnected")

    def off_machine(self) -> dict[str, list[str]]:
        """Return, per step, the URLs that were not on this machine."""
        found = {step: [url for url in urls if not self.is_local(url)] for step, urls in self.seen.items()}
        return {step: urls for step, urls in found.items() if urls}

    def settle(self, page: Any, step: str) -> None:
        """Wait until Streamlit is idle and no request is in flight, then file what follows under ``step``."""
        page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=120_000)
        deadline = time.monotonic() + SETTLE_S
        while self.in_flight:
            assert time.monotonic() < deadline, f"requests still open: {[r.url for r in self.in_flight]}"
            page.wait_for_timeout(50)
        self.step = step


@pytest.fixture
def request_log(page: Any, dashboard_url: str, embedded_stack: Any) -> Iterator[RequestLog]:
    """The request log of ``page``'s context: local means the dashboard or the embedded stack's endpoint."""
    dashboard, endpoint = urlsplit(dashboard_url), urlsplit(embedded_stack.endpoint)
    local = {dashboard.netloc, f"localhost:{dashboard.port}", endpoint.netloc, f"localhost:{endpoint.port}"}
    log = RequestLog(local)
    log.attach(page)
    yield log


def report(found: dict[str, list[str]]) -> str:
    """Format the off-machine requests page by page, with a count each."""
    lines = [f"{sum(map(len, found.values()))} request(s) off the machine:"]
    for step, urls in found.items():
        lines.append(f"  {step}: {len(urls)}")
        lines += [f"    {url}" for url in urls]
    return "\n".join(lines)


def test_no_page_requests_anything_off_the_machine(
    dashboard_url: str, dashboard_state: Path, page: Any, request_log: RequestLog
) -> None:
    for path, title in PAGES:  # a page load of each page
        request_log.step = f"load /{path}"
        page.goto(f"{dashboard_url}/{path}")
        page.get_by_role("heading", name=title).first.wait_for()
        request_log.settle(page, "between steps")

    nav = page.locator('[data-testid="stSidebarNav"] a')
    labels = [text.split("\n")[-1].strip() for text in nav.all_inner_texts()]  # after the icon's ligature name
    assert sorted(labels) == sorted(title for _, title in PAGES), "a page this test does not visit"
    for _, title in (*PAGES[1:], PAGES[0]):  # navigation by the sidebar (no page load), back to the upload page
        request_log.step = f"navigate to {title}"
        nav.filter(has_text=title).first.click()
        page.get_by_role("heading", name=title).first.wait_for()
        request_log.settle(page, "between steps")

    request_log.step = "upload a JPEG"  # an interaction: the upload page draws the result and both images
    data = photo_jpeg(320, 240, quality=95)
    page.locator('input[type="file"]').first.set_input_files(
        files=[{"name": "offline.jpg", "mimeType": "image/jpeg", "buffer": data}]
    )
    page.get_by_text(re.compile(rf"{len(data):,} bytes → [\d,]+ bytes")).wait_for(timeout=120_000)
    request_log.settle(page, "end")

    found = request_log.off_machine()
    print(report(found))
    assert found == {}, report(found)

    # The tab keeps its compress icon, now served by the dashboard itself.
    icon = page.locator("link[rel='shortcut icon']").get_attribute("href")
    assert icon is not None and request_log.is_local(page.evaluate("h => new URL(h, location.href).href", icon))
    assert any("/media/" in url and url.endswith(".png") for urls in request_log.seen.values() for url in urls)
    # The icons in the pages come from the Material Symbols font Streamlit bundles, loaded from the dashboard.
    fonts = page.evaluate(
        "Array.from(document.fonts).filter(f => f.family.includes('Material Symbols')).map(f => f.status)"
    )
    assert "loaded" in fonts
    assert any("MaterialSymbols-Rounded" in url for urls in request_log.seen.values() for url in urls)

    # The dashboard's process looked up no name and opened no connection off the machine.
    audit = (dashboard_state / OUTBOUND).read_text()
    assert STARTED in audit, "the audit hook did not load in the dashboard's process"
    outbound = [line for line in audit.splitlines() if line != STARTED]
    assert outbound == [], "the dashboard process reached off the machine:\n" + "\n".join(outbound)
