"""The inbox's daily tools in headless Chromium: canned replies (from their button, from `c`
and from "/" in the reply box), the shortcuts `?` lists, reopening a solved ticket, and desktop
notifications and a sound for new tickets and for visitors writing on one's own tickets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from tests.conftest import Server
from tests.e2e.support import TIMEOUT, Inbox, expect, sign_in
from tests.web.chat import Chat, start_chat, wait_for

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.browser

GREETING = "Hi {first_name}, this is {my_name}: I am looking at it now."

# What the page asks of the browser, recorded: headless Chromium shows no notification and
# plays no sound, and its window never loses the focus, so the test stands in for those.
RECORD_ALERTS = """
window.__notifications = [];
window.__chimes = 0;
const Shown = window.Notification;
window.Notification = class extends Shown {
  constructor(title, options) {
    super(title, options);
    window.__notifications.push({ title, body: options && options.body });
  }
  static get permission() { return Shown.permission; }
  static requestPermission() { return Shown.requestPermission(); }
};
const createOscillator = AudioContext.prototype.createOscillator;
AudioContext.prototype.createOscillator = function () {
  window.__chimes += 1;
  return createOscillator.call(this);
};
Document.prototype.hasFocus = () => false;
"""


def member(inbox: Inbox) -> dict[str, Any]:
    with inbox.client() as client:
        me: dict[str, Any] = client.get("/api/v1/me").json()
    return me


def add_canned_reply(server: Server, title: str, body: str) -> None:
    with server.admin() as admin:
        workspace = admin.get(f"/api/v1/agents/{server.demo_agent_id}").json()["workspace_id"]
        response = admin.post(
            f"/api/v1/workspaces/{workspace}/canned-replies", json={"title": title, "body": body}
        )
    assert response.status_code in (201, 409), response.text  # 409: saved by an earlier test


def escalated(server: Server, name: str) -> Chat:
    chat = start_chat(server, contact={"name": name, "email": "ana@example.com"})
    chat.escalate()
    return chat


def test_canned_replies_shortcuts_and_reopen(server: Server, browser: Browser) -> None:
    add_canned_reply(server, "Greeting", GREETING)
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT)
    inbox = sign_in(server, context)
    page = inbox.page
    chat = escalated(server, "Ana Lima")
    ticket_id = inbox.open_ticket(chat.id)
    filled = f"Hi Ana, this is {member(inbox)['name']}: I am looking at it now."

    # `?` lists the shortcuts in a dialog; Esc closes it.
    page.get_by_test_id("transcript").focus()
    page.keyboard.press("?")
    dialog = page.get_by_test_id("shortcuts-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Insert a canned reply")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # `c` opens the canned replies with their own search; Enter inserts the filled-in text.
    page.keyboard.press("c")
    search = page.get_by_test_id("canned-search")
    expect(search).to_be_focused()
    search.fill("gree")
    expect(page.get_by_test_id("canned-option")).to_have_count(1)
    expect(page.get_by_test_id("canned-option")).to_contain_text(filled)
    search.press("Enter")
    box = page.get_by_test_id("reply-input")
    expect(page.get_by_test_id("canned-picker")).to_have_count(0)
    expect(box).to_have_value(filled)
    expect(box).to_be_focused()
    box.press("Enter")
    expect(inbox.transcript(filled, "human_agent")).to_have_count(1, timeout=TIMEOUT)
    wait_for(lambda: any(m["text"] == filled for m in chat.get()["messages"]))

    # "/" in the empty box filters as it goes; nothing matching says so; Esc closes.
    box.press_sequentially("/zzz")
    expect(page.get_by_test_id("canned-empty")).to_have_text("No canned reply matches.")
    box.press("Escape")
    expect(page.get_by_test_id("canned-picker")).to_have_count(0)
    box.fill("")
    box.press_sequentially("/gre")
    expect(page.get_by_test_id("canned-option")).to_have_count(1)
    box.press("Enter")
    expect(box).to_have_value(filled)  # the "/gre" that opened the list is replaced
    box.fill("")

    # `s` solves, away from the reply box; Reopen gives the ticket back to the team.
    page.get_by_test_id("transcript").focus()
    page.keyboard.press("s")
    expect(page.get_by_test_id("ticket-status")).to_have_text("Solved")
    with inbox.client() as client:
        wait_for(lambda: client.get(f"/api/v1/tickets/{ticket_id}").json()["status"] == "solved")
    page.get_by_test_id("reopen-button").click()
    expect(page.get_by_test_id("ticket-status")).to_have_text("Open")
    expect(page.get_by_test_id("solve-button")).to_be_enabled()
    with inbox.client() as client:
        assert client.get(f"/api/v1/tickets/{ticket_id}").json()["status"] == "open"
    assert chat.get()["owner"] == "human"

    # `/` goes to the search; `r` and `n` to the reply box in either mode.
    page.get_by_test_id("transcript").focus()
    page.keyboard.press("/")
    expect(page.get_by_test_id("ticket-search")).to_be_focused()
    page.get_by_test_id("transcript").focus()
    page.keyboard.press("n")
    expect(box).to_be_focused()
    expect(box).to_have_attribute("aria-label", "Internal note")
    page.get_by_test_id("transcript").focus()
    page.keyboard.press("r")
    expect(box).to_have_attribute("aria-label", "Reply to the visitor")
    context.close()


def test_notifications_and_sound_for_new_tickets_and_own_tickets(
    server: Server, browser: Browser
) -> None:
    context = browser.new_context(permissions=["notifications"])
    context.set_default_timeout(TIMEOUT)
    context.add_init_script(RECORD_ALERTS)
    inbox = sign_in(server, context)
    page = inbox.page
    me = member(inbox)

    # Both switched on from the bell; the choice survives a reload.
    page.get_by_test_id("alerts-button").click()
    notify = page.get_by_test_id("notify-toggle")
    sound = page.get_by_test_id("sound-toggle")
    expect(notify).to_have_attribute("aria-checked", "false")
    notify.click()
    expect(notify).to_have_attribute("aria-checked", "true")
    sound.click()
    expect(sound).to_have_attribute("aria-checked", "true")
    assert page.evaluate("window.__chimes") == 1  # switching the sound on lets it be heard
    page.reload()
    expect(page.get_by_test_id("me-name")).to_be_attached(timeout=TIMEOUT)
    page.get_by_test_id("alerts-button").click()
    expect(page.get_by_test_id("notify-toggle")).to_have_attribute("aria-checked", "true")
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("alerts-menu")).to_be_hidden()

    # A new ticket: a notification naming the visitor, and the chime.
    chat = escalated(server, "Bea Costa")
    page.wait_for_function(
        "() => window.__notifications.some(n => n.title === 'New ticket from Bea Costa')",
        timeout=TIMEOUT,
    )
    assert page.evaluate("window.__chimes") >= 1

    # The visitor writes on it once it is the member's: a notification with the words.
    ticket = wait_for(lambda: inbox.ticket_of(chat.id))
    with inbox.client() as client:
        response = client.post(
            f"/api/v1/tickets/{ticket['id']}/assign", json={"member_id": me["id"]}
        )
    assert response.status_code == 200, response.text
    expect(page.locator(f"[data-testid=ticket-row][data-id='{ticket['id']}']")).to_be_visible()
    chat.say("Are you still there?")
    page.wait_for_function(
        "() => window.__notifications.some("
        "n => n.title === 'Bea Costa wrote' && n.body === 'Are you still there?')",
        timeout=TIMEOUT,
    )

    # Switched off: no more notifications.
    page.get_by_test_id("alerts-button").click()
    page.get_by_test_id("notify-toggle").click()
    expect(page.get_by_test_id("notify-toggle")).to_have_attribute("aria-checked", "false")
    shown = page.evaluate("window.__notifications.length")
    escalated(server, "Cy Dias")
    expect(page.locator("[data-testid=ticket-row]").filter(has_text="Cy Dias")).to_be_visible()
    assert page.evaluate("window.__notifications.length") == shown
    context.close()
