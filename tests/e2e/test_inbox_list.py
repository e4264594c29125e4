"""The inbox page over a busy inbox: the server searches, pages and counts for it.

More tickets than one page holds, the longest-waiting customer the oldest of them: the search
box finds them by a word they wrote, the "Oldest waiting" view puts them first, and "Load
more" brings the next page.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from tests.conftest import Server
from tests.e2e.support import TIMEOUT, expect
from tests.web.busy import busy_inbox

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.browser

TICKETS = 250
PAGE = 50  # inbox.js asks for pages of this many tickets


def test_search_finds_an_old_waiting_ticket_among_many(server: Server, browser: Browser) -> None:
    busy = busy_inbox(server, TICKETS)
    oldest = busy.tickets[0]
    assert oldest.waiting
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(TIMEOUT)
    page = context.new_page()
    page.goto(f"{server.url}/inbox")
    page.get_by_test_id("login-email").fill(busy.email)
    page.get_by_test_id("login-password").fill(busy.password)
    page.get_by_test_id("login-submit").click()

    rows = page.get_by_test_id("ticket-row")
    old_row = page.locator(f"[data-testid=ticket-row][data-id='{oldest.id}']")
    expect(rows).to_have_count(PAGE)
    expect(old_row).to_have_count(0)
    open_tickets = [t for t in busy.tickets if not t.solved]
    expect(page.get_by_test_id("count-open")).to_have_text(str(len(open_tickets)))
    waiting = sum(t.waiting for t in open_tickets)
    expect(page.get_by_test_id("count-waiting")).to_have_text(str(waiting))
    expect(page.get_by_test_id("count-mine")).to_have_text(str(sum(t.mine for t in open_tickets)))

    # Reaching the button loads the next page (scrolling to it does too, so maybe more).
    page.get_by_test_id("load-more").click()
    page.wait_for_function(
        "n => document.querySelectorAll('[data-testid=ticket-row]').length >= n", arg=2 * PAGE
    )

    search = page.get_by_test_id("ticket-search")
    search.fill("no such word anywhere")
    expect(page.locator(".list-empty")).to_contain_text(re.compile("No tickets match"))
    search.fill("zanzibar")
    expect(rows).to_have_count(1)
    expect(old_row).to_be_visible()
    expect(old_row.get_by_test_id("waiting-badge")).to_be_visible()
    old_row.click()
    expect(page.get_by_test_id("ticket-view")).to_have_attribute("data-id", oldest.id)
    expect(page.get_by_test_id("transcript")).to_contain_text("Zanzibar")

    search.fill("")
    page.get_by_test_id("tab-waiting").click()
    expect(rows.first).to_have_attribute("data-id", oldest.id)
    expect(rows.nth(1)).to_have_attribute("data-id", busy.ids(lambda t: t.waiting)[1])
    context.close()
