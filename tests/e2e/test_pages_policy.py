"""Every page works under its Content-Security-Policy, and /docs renders with no internet.

Headless Chromium reports each policy violation to the console; a page that needed an inline
script, eval or an asset from elsewhere shows one here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from tests.conftest import Server
from tests.e2e.support import TIMEOUT, expect, open_widget

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Request

pytestmark = pytest.mark.browser


def test_pages_run_under_their_policy_and_docs_render_offline(
    server: Server, browser: Browser
) -> None:
    page = browser.new_page()
    complaints: list[str] = []
    elsewhere: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            complaints.append(message.text)

    def on_request(request: Request) -> None:
        if not request.url.startswith((server.url, "data:")):
            elsewhere.append(request.url)

    page.on("console", on_console)
    page.on("request", on_request)

    page.goto(f"{server.url}/docs")
    expect(page.locator(".opblock").first).to_be_visible(timeout=TIMEOUT)
    expect(page.locator(".opblock-summary-path", has_text="/conversations").first).to_be_visible()

    for path in ("/inbox", "/settings", f"/help/{server.demo_agent_id}"):
        page.goto(f"{server.url}{path}")
        page.wait_for_load_state("networkidle")
    open_widget(page, f"{server.url}/demo/{server.demo_agent_id}")  # the widget's own styles
    assert complaints == []
    assert elsewhere == []
