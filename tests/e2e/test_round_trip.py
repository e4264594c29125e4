"""The whole product in a real browser: visitor ↔ AI → human in the inbox → back to the AI.

Runs Debian's headless Chromium through Playwright against the ``server`` fixture (a real
``handoff serve`` process on SQLite, see tests/conftest.py).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest
from tests.e2e.support import (
    QUESTION,
    SCREENSHOTS,
    TIMEOUT,
    conversation_id,
    expect,
    messages,
    new_agent,
    newest_is_from,
    open_widget,
    say,
    sign_in,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.browser


REPLY = "Hi Jane, I'm Sam from support — I've reset it for you."
NOTE = "Internal: verified Jane by email before resetting. Do not share."
LONG_EMAIL = "jonathan.alexander.richardson-smith@customer-care.subsidiary.example.com"
LONG_QUESTION = (
    "My invoice for the annual enterprise plan shows the wrong billing address, "
    "and I need a person to correct it before the end of the month"
)
# Each piece of an email between its line-break opportunities (after "@", before each dot),
# with the number of lines it spans.
EMAIL_PIECES = """el => [...el.childNodes]
    .filter((n) => n.nodeType === Node.TEXT_NODE)
    .map((n) => { const r = document.createRange(); r.selectNodeContents(n);
                  const tops = new Set([...r.getClientRects()].map((b) => Math.round(b.top)));
                  return [n.textContent, tops.size]; })"""
LINES = """el => { const r = document.createRange(); r.selectNodeContents(el);
              return new Set([...r.getClientRects()].map((b) => Math.round(b.top))).size; }"""


def run_round_trip(server: Any, browser: Browser) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    agent = server.demo_agent_id

    # ------------------------------------------------------------------ the visitor
    visitor_ctx = browser.new_context(viewport={"width": 1280, "height": 860})
    visitor_ctx.set_default_timeout(TIMEOUT)
    page = visitor_ctx.new_page()
    page.goto(f"{server.url}/demo/{agent}")

    launcher = page.get_by_test_id("handoff-launcher")
    expect(launcher).to_be_visible()
    expect(page.get_by_test_id("handoff-panel")).to_be_hidden()
    launcher.click()
    expect(page.get_by_test_id("handoff-panel")).to_be_visible()
    status = page.get_by_test_id("handoff-status")
    expect(status).to_contain_text("AI assistant")

    # A question from the demo FAQ gets an answer from the AI.
    say(page, QUESTION)
    answer = newest_is_from(page, "assistant")
    expect(answer).not_to_have_text("")
    expect(status).to_contain_text("AI assistant")

    # An explicit request for a person: the visitor is anonymous, so the AI asks for an email.
    say(page, "I want to talk to a human")
    ask = newest_is_from(page, "assistant")
    expect(ask).to_contain_text(re.compile("email", re.IGNORECASE))
    expect(status).to_contain_text("AI assistant")

    say(page, "jane@example.com")
    expect(status).to_contain_text("Support team", timeout=TIMEOUT)
    expect(messages(page).last).not_to_have_attribute("data-role", "user", timeout=TIMEOUT)

    session = page.evaluate(
        "key => JSON.parse(localStorage.getItem(key))", f"handoff:{agent}:widget"
    )
    assert session and session["id"] and session["token"]
    conversation_id = str(session["id"])

    # ------------------------------------------------------------------ the support agent
    agent_ctx = browser.new_context(viewport={"width": 1440, "height": 900})
    agent_ctx.set_default_timeout(TIMEOUT)
    inbox = agent_ctx.new_page()
    inbox.goto(f"{server.url}/inbox")

    # Wrong password first: a clear message, still on the login form.
    inbox.get_by_test_id("login-email").fill(server.member_email)
    inbox.get_by_test_id("login-password").fill(server.member_password + "-nope")
    inbox.get_by_test_id("login-submit").click()
    expect(inbox.get_by_test_id("login-error")).to_contain_text("Wrong email or password")

    inbox.get_by_test_id("login-password").fill(server.member_password)
    inbox.get_by_test_id("login-submit").click()

    row = inbox.locator(f"[data-testid=ticket-row][data-conversation='{conversation_id}']")
    expect(row).to_be_visible(timeout=TIMEOUT)
    # A reason's chip says its name, not its code.
    expect(row).to_contain_text("Asked for a person")
    expect(row).not_to_contain_text("explicit_request")
    row.click()

    view = inbox.get_by_test_id("ticket-view")
    expect(view).to_be_visible()
    transcript = inbox.get_by_test_id("transcript")
    expect(
        transcript.locator("[data-testid=transcript-message][data-role=user]").first
    ).to_contain_text(QUESTION)
    expect(
        transcript.locator("[data-testid=transcript-message][data-role=assistant]").first
    ).to_be_visible()
    reasons = inbox.get_by_test_id("ticket-reasons")
    expect(reasons).to_have_text("Asked for a person")
    expect(inbox.get_by_test_id("reason-badge")).to_have_attribute(
        "title", "The visitor asked for a person"
    )
    fired = inbox.locator("[data-testid=evidence-item][data-fired=true]")
    expect(fired).to_have_count(1)
    expect(fired).to_contain_text("Asked for a person")
    expect(fired).to_contain_text("talk to a human")
    expect(inbox.get_by_test_id("contact-name")).to_be_visible()
    expect(inbox.get_by_test_id("ticket-details")).to_contain_text("jane@example.com")

    # Reply (keyboard submit): the visitor sees it live, as the human agent.
    reply_box = inbox.get_by_test_id("reply-input")
    reply_box.fill(REPLY)
    reply_box.press("Enter")
    expect(
        transcript.locator("[data-testid=transcript-message][data-role=human_agent]").last
    ).to_contain_text(REPLY)
    expect(reply_box).to_have_value("")

    human = messages(page, "human_agent").last
    expect(human).to_contain_text(REPLY, timeout=TIMEOUT)
    expect(human).to_be_in_viewport()  # the chat follows new messages
    expect(status).to_contain_text("Support team")

    # An internal note stays in the team.
    inbox.get_by_test_id("note-toggle").click()
    reply_box.fill(NOTE)
    inbox.get_by_test_id("reply-send").click()
    expect(inbox.get_by_test_id("transcript-note").last).to_contain_text(NOTE)

    page.screenshot(path=str(SCREENSHOTS / "widget.png"))
    inbox.screenshot(path=str(SCREENSHOTS / "inbox.png"))

    # A reload keeps the conversation (token in localStorage) and the live stream.
    page.reload()
    expect(page.get_by_test_id("handoff-panel")).to_be_visible()
    expect(messages(page, "human_agent").last).to_contain_text(REPLY, timeout=TIMEOUT)
    expect(page.get_by_test_id("handoff-status")).to_contain_text("Support team")
    status = page.get_by_test_id("handoff-status")

    # Solve: the AI takes over again, and says so.
    system_before = messages(page, "system").count()
    inbox.get_by_test_id("solve-button").click()
    expect(inbox.get_by_test_id("ticket-status")).to_contain_text("Solved")
    expect(inbox.get_by_test_id("solve-button")).to_have_count(0)
    expect(inbox.get_by_test_id("reopen-button")).to_be_enabled()
    expect(messages(page, "system")).to_have_count(system_before + 1, timeout=TIMEOUT)
    expect(status).to_contain_text("AI assistant", timeout=TIMEOUT)

    # The note never reached the visitor (the handback came after it on the same stream).
    expect(messages(page).filter(has_text=NOTE)).to_have_count(0)
    expect(page.get_by_text(NOTE)).to_have_count(0)

    # Back with the AI: the same question is answered by the assistant again.
    say(page, QUESTION)
    newest_is_from(page, "assistant")
    expect(messages(page, "assistant").last).to_contain_text("Forgot password", timeout=TIMEOUT)
    expect(status).to_contain_text("AI assistant")

    # The reply box is closed on a solved ticket.
    inbox.get_by_test_id("reply-tab").click()
    expect(inbox.get_by_test_id("reply-input")).to_be_disabled()

    agent_ctx.close()
    visitor_ctx.close()


def test_round_trip(server: Any, browser: Browser) -> None:
    run_round_trip(server, browser)


def test_long_emails_and_subjects_fit_the_inbox(server: Any, browser: Browser) -> None:
    agent = new_agent(server)
    visitor = browser.new_context()
    visitor.set_default_timeout(TIMEOUT)
    page = visitor.new_page()
    open_widget(page, f"{server.url}/demo/{agent}")
    say(page, LONG_QUESTION)
    say(page, "I want to talk to a human")
    expect(newest_is_from(page, "assistant")).to_contain_text(re.compile("email", re.I))
    say(page, LONG_EMAIL)
    expect(page.get_by_test_id("handoff-status")).to_contain_text("Support team", timeout=TIMEOUT)

    team = browser.new_context(viewport={"width": 1440, "height": 900})
    team.set_default_timeout(TIMEOUT)
    inbox = sign_in(server, team)
    conversation = conversation_id(page, agent)
    inbox.open_ticket(conversation)

    # The email wraps over lines, but only after its "@" or before a dot, never mid-word.
    for where in ("contact-email", "contact-name"):
        email = inbox.page.get_by_test_id(where)
        expect(email).to_have_text(LONG_EMAIL)
        pieces = email.evaluate(EMAIL_PIECES)
        assert len(pieces) == LONG_EMAIL.count(".") + 2, pieces
        # A piece stays on one line, or breaks where the browser breaks words: at a hyphen.
        assert all(lines <= 1 + piece.count("-") for piece, lines in pieces), (where, pieces)
        assert email.evaluate(LINES) > 1  # it did wrap

    # The subject takes two lines of the row's full width before its ellipsis.
    subject = inbox.page.locator(
        f"[data-testid=ticket-row][data-conversation='{conversation}'] .row-subject"
    )
    expect(subject).to_contain_text(LONG_QUESTION[:40])
    shown = subject.evaluate(
        """el => ({ lines: Math.round(
                       el.clientHeight / parseFloat(getComputedStyle(el).lineHeight)),
                   cut: el.scrollHeight > el.clientHeight,
                   width: el.clientWidth, row: el.parentElement.clientWidth })"""
    )
    assert shown["lines"] == 2 and shown["cut"], shown
    assert shown["width"] == shown["row"], shown
