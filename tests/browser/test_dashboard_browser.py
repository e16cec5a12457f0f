"""End to end in Chromium: upload through the page, see the comparison, the SNS message, the log, Failed and Retry."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from dashboard.ui import human_bytes
from tests.jpegs import photo_jpeg

pytestmark = pytest.mark.browser

CORRUPT = b"this is not a JPEG, only its name says so\n" * 4
PROCESS_TIMEOUT_MS = 120_000


def new_key() -> str:
    return f"e2e-{uuid.uuid4().hex[:10]}.jpg"


def open_page(page: Any, url: str) -> None:
    """Go to ``url`` and wait until the app has drawn its sidebar (the script ran)."""
    page.goto(url)
    page.get_by_text("JPEG pipeline").first.wait_for()


def wait_idle(page: Any) -> None:
    """Wait until Streamlit is not running the script (its status widget disappears)."""
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=PROCESS_TIMEOUT_MS)


def screenshot(page: Any, path: Path) -> None:
    """Save a screenshot once the script finished and every element has drawn (no loading skeletons)."""
    wait_idle(page)
    page.locator('[data-testid="stSkeleton"]').first.wait_for(state="hidden")
    page.wait_for_timeout(800)  # canvas tables and charts paint a moment after they are attached
    page.screenshot(path=path, full_page=True)


def assert_no_traceback(page: Any) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "Traceback" not in page.content()


def upload(page: Any, name: str, data: bytes) -> None:
    page.locator('input[type="file"]').first.set_input_files(
        files=[{"name": name, "mimeType": "image/jpeg", "buffer": data}]
    )


def reload_until_visible(page: Any, locator: Any, timeout: float = 90) -> None:
    """Reload until ``locator`` shows: SNS messages and log lines arrive a moment after the result object."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            locator.first.wait_for(timeout=5_000)
            return
        except PlaywrightTimeout:
            assert time.monotonic() < deadline, f"never appeared: {locator}"
            page.reload()


def test_upload_compare_notification_and_log_line(dashboard_url: str, page: Any, artifacts: Path) -> None:
    key = new_key()
    data = photo_jpeg(1200, 800, quality=95)
    open_page(page, dashboard_url)
    upload(page, key, data)

    size_line = page.get_by_text(re.compile(rf"{len(data):,} bytes → [\d,]+ bytes"))
    size_line.wait_for(timeout=PROCESS_TIMEOUT_MS)
    wait_idle(page)
    output_bytes = int(re.search(r"→ ([\d,]+) bytes", size_line.inner_text()).group(1).replace(",", ""))
    assert output_bytes < len(data)
    # The card that holds this size line, once its six figures are drawn (a rerun may redraw it meanwhile).
    card = page.locator('[class*="st-key-result-"]', has=size_line).first
    card.locator('[data-testid="stMetricValue"]').nth(5).wait_for()
    values = card.locator('[data-testid="stMetricValue"]').all_inner_texts()
    assert human_bytes(len(data)) in values and human_bytes(output_bytes) in values
    assert "1200 × 800" in values
    assert card.get_by_text(re.compile(r"compressed$")).count() == 1
    card.locator('[data-testid="stImage"] img').nth(1).wait_for()  # before and after, side by side
    assert_no_traceback(page)
    screenshot(page, artifacts / "upload.png")

    assert f"key={key}" in page.url
    page.reload()  # a reload keeps the user's place: the same result is shown again
    page.get_by_text(re.compile(rf"{len(data):,} bytes → ")).wait_for()

    page.get_by_text("Flip", exact=True).click()
    page.get_by_text("Show compressed").wait_for()
    assert "view=Flip" in page.url

    open_page(page, f"{dashboard_url}/notifications")
    reload_until_visible(page, page.get_by_text(f"Image compressed: {key}"))
    assert_no_traceback(page)
    screenshot(page, artifacts / "notifications.png")

    open_page(page, f"{dashboard_url}/logs?q={key}")
    line = page.locator(".log-line", has_text=key)
    reload_until_visible(page, line)
    page.get_by_text("AWS cost / 1,000 images").wait_for()
    page.locator(".log-level", has_text="INFO").first.wait_for()  # level highlighting
    assert_no_traceback(page)
    screenshot(page, artifacts / "logs.png")

    open_page(page, f"{dashboard_url}/history")
    wait_idle(page)
    page.get_by_text("Before vs after per image").wait_for()
    assert_no_traceback(page)
    screenshot(page, artifacts / "history.png")


def test_corrupt_jpg_is_listed_under_failed_with_its_reason_and_reprocessed(
    dashboard_url: str, page: Any, artifacts: Path
) -> None:
    key = new_key()
    open_page(page, dashboard_url)
    upload(page, key, CORRUPT)
    failure = page.get_by_text(re.compile(r"^Failed: .*JPEG"))
    failure.wait_for(timeout=PROCESS_TIMEOUT_MS)
    reason = failure.inner_text().removeprefix("Failed: ").strip()
    wait_idle(page)
    assert_no_traceback(page)

    open_page(page, f"{dashboard_url}/failed")
    card = page.locator('[class*="st-key-failed-"]', has_text=key)
    card.first.wait_for()
    # Streamlit streams a page's elements in: the card can be attached before its reason is.
    card.first.get_by_text(reason).wait_for()
    assert card.first.get_by_text(reason).count() == 1
    screenshot(page, artifacts / "failed.png")

    card.first.get_by_role("button", name=re.compile("Reprocess")).click()
    page.get_by_text(f"Reprocessed {key}: failed again").wait_for(timeout=PROCESS_TIMEOUT_MS)
    wait_idle(page)
    assert_no_traceback(page)
    screenshot(page, artifacts / "failed-after-reprocess.png")


def test_every_page_renders_without_an_error(dashboard_url: str, page: Any, artifacts: Path) -> None:
    for path, title in (
        ("", "Upload & compare"),
        ("history", "History"),
        ("notifications", "Notifications"),
        ("logs", "Logs"),
        ("failed", "Failed"),
        ("deadletters", "Dead letters"),
        ("permissions", "Permissions"),
    ):
        open_page(page, f"{dashboard_url}/{path}")
        page.get_by_role("heading", name=title).first.wait_for()
        wait_idle(page)
        assert_no_traceback(page)
        assert page.locator('[data-testid="stAlertContentError"]').count() == 0
        sidebar = page.locator('[data-testid="stSidebar"]')
        assert sidebar.get_by_text("Embedded local cloud").count() == 1
        assert sidebar.get_by_text("●").count() == 7
        screenshot(page, artifacts / f"page-{path or 'upload'}.png")


def test_a_key_full_of_markdown_shows_as_text_never_as_a_link_or_image(
    dashboard_url: str, embedded_stack: Any, page: Any, artifacts: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    key = f"md-{tag} [click](https://evil.example/{tag}) ![i](https://evil.example/{tag}.png) `x` :red[R] $y$.jpg"
    embedded_stack.client("s3").put_object(Bucket=embedded_stack.outputs["source_bucket"], Key=key, Body=CORRUPT)

    def assert_only_text() -> None:
        wait_idle(page)
        links = page.locator("a[href*='evil.example']")
        assert links.count() == 0, [links.nth(i).evaluate("e => e.outerHTML") for i in range(links.count())]
        assert page.locator("img[src*='evil.example']").count() == 0
        assert page.locator("code", has_text=re.compile(r"^x$")).count() == 0
        assert_no_traceback(page)

    open_page(page, f"{dashboard_url}/failed")
    card = page.locator('[class*="st-key-failed-"]', has_text=f"md-{tag}")
    reload_until_visible(page, card, timeout=PROCESS_TIMEOUT_MS / 1000)
    assert card.first.get_by_text(key, exact=True).count() == 1  # the whole key, character for character
    assert_only_text()
    screenshot(page, artifacts / "markdown-key-failed.png")

    open_page(page, f"{dashboard_url}/notifications")
    reload_until_visible(page, page.get_by_text(f"Image compression failed: {key}"))
    assert_only_text()

    open_page(page, f"{dashboard_url}/?key={quote(key)}")
    page.get_by_text(re.compile(r"^Failed: ")).first.wait_for(timeout=PROCESS_TIMEOUT_MS)
    assert page.get_by_text(key, exact=True).count() >= 1
    assert_only_text()
