"""The inbox on a phone (390 × 844) and a small tablet (900 × 800).

Below 700 px the page shows the ticket list or the open ticket, with a back control between
them; below 980 px a ticket's details are a drawer opened from its header. At both sizes
nothing scrolls sideways, and a member assigns a ticket, reads its details and solves it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from tests.conftest import Server
from tests.e2e.support import SCREENSHOTS, TIMEOUT, Inbox, expect, sign_in
from tests.web.chat import start_chat, wait_for

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
TABLET = {"width": 900, "height": 800}

# How far the page reaches past the viewport's right edge (0 when nothing scrolls sideways).
SIDEWAYS = "() => document.scrollingElement.scrollWidth - window.innerWidth"


def fits(page: Page, testid: str) -> None:
    """The control is on screen, whole, within the viewport's width."""
    control = page.get_by_test_id(testid)
    expect(control).to_be_visible()
    box = control.bounding_box()
    assert box is not None
    width = page.viewport_size["width"] if page.viewport_size else 0
    assert box["x"] >= 0 and box["x"] + box["width"] <= width, (testid, box, width)


def detail(page: Page, name: str) -> Locator:
    """The value of one line of the ticket's details."""
    return page.get_by_test_id("ticket-details").locator(f"dt:text-is('{name}') + dd")


def no_sideways_scroll(page: Page) -> None:
    assert page.evaluate(SIDEWAYS) <= 0


def escalated_ticket(inbox: Inbox) -> dict[str, Any]:
    """A visitor of the demo agent asks for a person and leaves an email: a new open ticket."""
    chat = start_chat(inbox.server)
    chat.escalate("jane@example.com")
    ticket: dict[str, Any] = wait_for(lambda: inbox.ticket_of(chat.id), timeout=TIMEOUT / 1000)
    return ticket


def open_from_list(inbox: Inbox, ticket: dict[str, Any]) -> None:
    row = inbox.page.locator(f"[data-testid=ticket-row][data-id='{ticket['id']}']")
    expect(row).to_be_visible(timeout=TIMEOUT)
    row.click()
    expect(inbox.page.get_by_test_id("ticket-view")).to_have_attribute("data-id", ticket["id"])


def assignee_of(inbox: Inbox, ticket_id: str) -> Any:
    with inbox.client() as client:
        return client.get(f"/api/v1/tickets/{ticket_id}").json()["assignee"]


def assign_solve_and_read_details(inbox: Inbox, ticket: dict[str, Any]) -> None:
    """Assign the ticket to oneself and back, read it in the drawer, solve it."""
    page = inbox.page
    with inbox.client() as client:
        me = client.get("/api/v1/me").json()

    fits(page, "assign-select")
    page.get_by_test_id("assign-select").select_option(str(me["id"]))
    expect(page.get_by_test_id("toast").last).to_contain_text(f"Assigned to {me['name']}")
    assert wait_for(lambda: assignee_of(inbox, ticket["id"]))["id"] == me["id"]
    page.get_by_test_id("assign-select").select_option("")
    expect(page.get_by_test_id("toast").last).to_contain_text("Ticket unassigned")
    wait_for(lambda: assignee_of(inbox, ticket["id"]) is None)
    page.get_by_test_id("assign-select").select_option(str(me["id"]))
    expect(page.get_by_test_id("toast").last).to_contain_text(f"Assigned to {me['name']}")

    # The details are a drawer, closed until asked for.
    details = page.get_by_test_id("ticket-details")
    toggle = page.get_by_test_id("details-toggle")
    expect(details).to_be_hidden()
    fits(page, "details-toggle")
    toggle.click()
    expect(details).to_be_visible()
    expect(details).to_be_in_viewport(ratio=1)
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(details).to_contain_text("jane@example.com")
    expect(page.get_by_test_id("ticket-reasons")).to_have_text("Asked for a person")
    expect(detail(page, "Assignee")).to_have_text(me["name"])
    no_sideways_scroll(page)
    page.get_by_test_id("details-close").click()
    expect(details).to_be_hidden()
    expect(toggle).to_be_focused()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    # Open, it keeps the keyboard: Tab and Shift+Tab go round its own controls.
    toggle.click()
    expect(details).to_be_visible()
    expect(page.get_by_test_id("details-close")).to_be_focused()
    inside = "() => document.getElementById('ticket-details').contains(document.activeElement)"
    for key in ["Shift+Tab"] + ["Tab"] * 4:
        page.keyboard.press(key)
        assert page.evaluate(inside), key
    # Escape closes it too.
    page.keyboard.press("Escape")
    expect(details).to_be_hidden()

    fits(page, "solve-button")
    page.get_by_test_id("solve-button").click()
    expect(page.get_by_test_id("ticket-status")).to_have_text("Solved")
    expect(page.get_by_test_id("solve-button")).to_have_count(0)
    fits(page, "reopen-button")
    with inbox.client() as client:
        assert client.get(f"/api/v1/tickets/{ticket['id']}").json()["status"] == "solved"
    # The drawer follows the ticket: now solved, still assigned.
    toggle.click()
    expect(detail(page, "Status")).to_have_text("Solved")
    expect(detail(page, "Assignee")).to_have_text(me["name"])
    no_sideways_scroll(page)


def test_phone_shows_the_list_or_the_ticket_with_a_way_back(
    server: Server, browser: Browser
) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    context.set_default_timeout(TIMEOUT)
    inbox = sign_in(server, context)
    ticket = escalated_ticket(inbox)
    page = inbox.page

    # The list alone, the whole width.
    expect(page.get_by_test_id("ticket-list")).to_be_visible()
    expect(page.get_by_test_id("ticket-view")).to_have_count(0)
    fits(page, "ticket-search")
    no_sideways_scroll(page)

    # A ticket alone, with the way back to the list.
    open_from_list(inbox, ticket)
    expect(page.get_by_test_id("ticket-list")).to_be_hidden()
    fits(page, "back-to-list")
    fits(page, "reply-send")
    no_sideways_scroll(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "inbox-phone.png"))

    assign_solve_and_read_details(inbox, ticket)
    page.keyboard.press("Escape")

    page.get_by_test_id("back-to-list").click()
    expect(page.get_by_test_id("ticket-list")).to_be_visible()
    expect(page.get_by_test_id("ticket-view")).to_have_count(0)
    no_sideways_scroll(page)
    # The solved ticket is in the Solved view; it opens again from there.
    page.get_by_test_id("tab-solved").click()
    open_from_list(inbox, ticket)
    expect(page.get_by_test_id("ticket-status")).to_have_text("Solved")
    context.close()


def test_tablet_shows_list_and_ticket_with_details_in_a_drawer(
    server: Server, browser: Browser
) -> None:
    context = browser.new_context(viewport=TABLET)
    context.set_default_timeout(TIMEOUT)
    inbox = sign_in(server, context)
    ticket = escalated_ticket(inbox)
    page = inbox.page

    open_from_list(inbox, ticket)
    # List and ticket side by side; no back control needed.
    expect(page.get_by_test_id("ticket-list")).to_be_visible()
    expect(page.get_by_test_id("back-to-list")).to_be_hidden()
    no_sideways_scroll(page)

    assign_solve_and_read_details(inbox, ticket)

    # A click beside the open drawer closes it.
    details = page.get_by_test_id("ticket-details")
    expect(details).to_be_visible()
    page.mouse.click(40, 400)
    expect(details).to_be_hidden()
    context.close()
