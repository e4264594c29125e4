"""The widget in a real browser: back to the AI while waiting, the person behind the replies
(name, picture, typing), the unread badge, the keyboard, and embedding on another origin."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route
from tests.conftest import Server
from tests.e2e.support import (
    QUESTION,
    TIMEOUT,
    conversation_id,
    escalate,
    expect,
    messages,
    new_agent,
    newest_is_from,
    open_widget,
    say,
    sign_in,
)
from tests.fakes.server import LoopbackServer
from tests.web.chat import member_token, ticket_of, wait_for

from handoff.domain import DEFAULT_HANDOFF_MESSAGE

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.browser

# The availability switch's track: green while available, amber while away (inbox.css).
GREEN = "rgb(22, 163, 74)"
AMBER = "rgb(245, 158, 11)"


def test_back_to_the_ai_while_the_team_is_awaited(server: Server, browser: Browser) -> None:
    agent = new_agent(server)
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT)
    page = context.new_page()
    open_widget(page, f"{server.url}/demo/{agent}")
    escalate(page)
    expect(messages(page, "assistant").last).to_contain_text(DEFAULT_HANDOFF_MESSAGE[:40])
    back = page.get_by_test_id("handoff-back-to-ai")
    expect(back).to_be_visible()
    expect(back).to_have_text("Back to the AI")

    # Still offered after a reload, from the conversation as the server keeps it.
    page.reload()
    expect(back).to_be_visible(timeout=TIMEOUT)

    # Keyboard: Tab order reaches it, Enter presses it, focus lands in the message box.
    back.focus()
    page.keyboard.press("Enter")
    status = page.get_by_test_id("handoff-status")
    expect(status).to_contain_text("AI assistant", timeout=TIMEOUT)
    expect(back).to_be_hidden()
    expect(page.get_by_test_id("handoff-input")).to_be_focused()

    # The AI answers again.
    say(page, QUESTION)
    expect(newest_is_from(page, "assistant")).to_contain_text("Forgot password")
    expect(status).to_contain_text("AI assistant")
    context.close()


def test_the_person_typing_replying_and_the_unread_badge(server: Server, browser: Browser) -> None:
    agent = new_agent(server)
    picture = f"{server.url}/static/avatar.svg"
    with server.client(member_token(server)) as member:
        sam = member.get("/api/v1/me").json()
    with server.admin() as admin:
        assert admin.patch(f"/api/v1/members/{sam['id']}", json={"avatar_url": picture}).is_success
    try:
        visitor_ctx = browser.new_context()
        visitor_ctx.set_default_timeout(TIMEOUT)
        page = visitor_ctx.new_page()
        open_widget(page, f"{server.url}/demo/{agent}")
        escalate(page)
        conversation = conversation_id(page, agent)
        agent_ctx = browser.new_context(viewport={"width": 1440, "height": 900})
        agent_ctx.set_default_timeout(TIMEOUT)
        inbox = sign_in(server, agent_ctx)
        inbox.open_ticket(conversation)

        # The inbox's availability switch sets Sam's status (and back): on and green while
        # Sam takes new tickets, off and amber while away.
        away = inbox.page.get_by_test_id("away-toggle")
        track = away.locator(".away-track")
        expect(away).to_have_attribute("aria-checked", "true")
        expect(away).to_have_text("Available")
        expect(track).to_have_css("background-color", GREEN)
        away.click()
        expect(away).to_have_attribute("aria-checked", "false")
        expect(away).to_have_text("Away")
        expect(track).to_have_css("background-color", AMBER)
        with inbox.client() as member:
            assert member.get("/api/v1/me").json()["away"] is True
        away.click()
        expect(away).to_have_attribute("aria-checked", "true")
        expect(track).to_have_css("background-color", GREEN)
        with inbox.client() as member:
            assert member.get("/api/v1/me").json()["away"] is False

        # Sam types: the visitor sees who, with their picture, for a few seconds.
        inbox.page.get_by_test_id("reply-input").press_sequentially("Hi Jane", delay=50)
        typing = page.get_by_test_id("handoff-typing")
        expect(typing).to_be_visible(timeout=TIMEOUT)
        expect(typing).to_contain_text("Sam Rivera is typing…")
        expect(typing.locator("img")).to_have_attribute("src", picture)
        expect(typing).to_be_hidden(timeout=10_000)  # no more pings: it goes away

        # Sam answers: his name and picture on the message, and one "joined" line.
        inbox.page.get_by_test_id("reply-input").fill("")
        inbox.reply("Hi Jane, I'm Sam from support.")
        human = messages(page, "human_agent").last
        expect(human).to_contain_text("Hi Jane, I'm Sam from support.", timeout=TIMEOUT)
        expect(human.locator(".meta")).to_contain_text("Sam Rivera")
        expect(human.locator(".meta")).to_be_visible()
        expect(human.locator("img")).to_have_attribute("src", picture)
        joined = page.get_by_test_id("handoff-joined")
        expect(joined).to_have_count(1)
        expect(joined).to_have_text("Sam Rivera joined the conversation")
        # The joined line sits right before Sam's first message.
        assert joined.evaluate("el => el.nextElementSibling.dataset.role") == "human_agent"
        expect(typing).to_be_hidden()
        expect(page.get_by_test_id("handoff-back-to-ai")).to_be_hidden()  # a person answered

        # Escape closes the chat and gives focus back to the launcher.
        page.get_by_test_id("handoff-input").focus()
        page.keyboard.press("Escape")
        expect(page.get_by_test_id("handoff-panel")).to_be_hidden()
        launcher = page.get_by_test_id("handoff-launcher")
        expect(launcher).to_be_focused()

        # Closed: what arrives counts on the launcher, and screen readers hear it.
        badge = page.get_by_test_id("handoff-unread")
        expect(badge).to_be_hidden()
        inbox.reply("One more thing: I refunded the double charge.")
        expect(badge).to_have_text("1", timeout=TIMEOUT)
        expect(launcher).to_have_attribute("aria-label", re.compile(r"1 new message\b"))
        expect(page.get_by_test_id("handoff-announcer")).to_contain_text("1 new message")
        inbox.reply("Anything else?")
        expect(badge).to_have_text("2", timeout=TIMEOUT)
        expect(launcher).to_have_attribute("aria-label", re.compile("2 new messages"))

        # Still unread after a reload: the badge comes from what the visitor has seen.
        page.reload()
        expect(badge).to_have_text("2", timeout=TIMEOUT)

        # Enter on the launcher opens the chat: the badge goes, focus is in the message box.
        launcher.focus()
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("handoff-panel")).to_be_visible()
        expect(badge).to_be_hidden()
        expect(page.get_by_test_id("handoff-input")).to_be_focused()
        expect(messages(page, "human_agent")).to_have_count(3)
        expect(joined).to_have_count(1)

        # The visitor's own view of the launcher label and focus rings (visible focus).
        page.keyboard.press("Shift+Tab")
        outline = page.evaluate(
            """() => {
              const root = document.querySelector('[data-handoff-widget]').shadowRoot;
              const el = root.activeElement;
              return el ? getComputedStyle(el).outlineStyle : 'none';
            }"""
        )
        assert outline != "none"
        agent_ctx.close()
        visitor_ctx.close()
    finally:
        with server.admin() as admin:
            admin.patch(f"/api/v1/members/{sam['id']}", json={"avatar_url": None})


class CustomerSite(LoopbackServer):
    """Another company's web site that embeds the widget from the handoff server."""

    def __init__(self, handoff_url: str, agent_id: str) -> None:
        page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Shop</title></head><body><h1>Welcome to the shop</h1>
<script src="{handoff_url}/static/widget.js" data-agent="{agent_id}" defer></script>
</body></html>"""

        async def home(_: Request) -> HTMLResponse:
            return HTMLResponse(page)

        super().__init__(Starlette(routes=[Route("/", home)]), name="customer site")


THEME = {
    "primary_color": "#0f766e",
    "text_color": "#fff",
    "title": "Shop help",
    "subtitle": "Real people, real fast",
    "launcher_label": "Ask the shop",
    "placeholder": "Type your question",
    "back_to_ai_label": "Continue with the assistant",
}


def test_embedded_on_another_origin_themed_and_live(server: Server, browser: Browser) -> None:
    agent = new_agent(server)
    with server.admin() as admin:
        assert admin.put(f"/api/v1/agents/{agent}/widget", json=THEME).is_success
    errors: list[str] = []
    with CustomerSite(server.url, agent) as site:
        assert site.origin != server.url
        context = browser.new_context()
        context.set_default_timeout(TIMEOUT)
        page = context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(site.origin)
        launcher = page.get_by_test_id("handoff-launcher")
        expect(launcher).to_have_attribute("aria-label", "Ask the shop", timeout=TIMEOUT)
        assert _style(page, "handoff-launcher", "backgroundColor") == "rgb(15, 118, 110)"
        launcher.click()
        expect(page.get_by_test_id("handoff-panel")).to_be_visible()
        expect(page.get_by_test_id("handoff-panel").locator("h2")).to_have_text("Shop help")
        expect(page.get_by_test_id("handoff-subtitle")).to_have_text("Real people, real fast")
        expect(page.get_by_test_id("handoff-input")).to_have_attribute(
            "placeholder", "Type your question"
        )

        say(page, QUESTION)
        expect(newest_is_from(page, "assistant")).to_contain_text("Forgot password")
        escalate(page)
        expect(page.get_by_test_id("handoff-back-to-ai")).to_have_text(
            "Continue with the assistant"
        )

        # A reply from the team comes down the live stream, across origins.
        session: dict[str, Any] = page.evaluate(
            "key => JSON.parse(localStorage.getItem(key))", f"handoff:{agent}:widget"
        )
        # The snippet names no channel: the server gave the launcher's, and the widget keeps it.
        remembered = page.evaluate(
            "key => localStorage.getItem(key)", f"handoff:{agent}:bubble:channel"
        )
        assert remembered == "widget"
        inbox_token = member_token(server)
        ticket: dict[str, Any] = wait_for(lambda: ticket_of(server, inbox_token, session["id"]))
        with server.client(inbox_token) as member:
            sent = member.post(
                f"/api/v1/tickets/{ticket['id']}/replies", json={"text": "Sam here."}
            )
        assert sent.status_code == 201
        expect(messages(page, "human_agent").last).to_contain_text("Sam here.", timeout=TIMEOUT)

        # A browser that kept the conversation but not yet its channel (kept before the widget
        # remembered one) finds both once the server names the channel: still open, same talk.
        page.evaluate("key => localStorage.removeItem(key)", f"handoff:{agent}:bubble:channel")
        page.reload()
        expect(page.get_by_test_id("handoff-panel")).to_be_visible(timeout=TIMEOUT)
        expect(messages(page, "human_agent").last).to_contain_text("Sam here.", timeout=TIMEOUT)
        kept = page.evaluate(
            "key => JSON.parse(localStorage.getItem(key))", f"handoff:{agent}:widget"
        )
        assert kept["id"] == session["id"]
        context.close()
    assert not [e for e in errors if "CORS" in e or "Access-Control" in e], errors


def _style(page: Any, test_id: str, prop: str) -> str:
    value: str = page.evaluate(
        """([id, prop]) => {
          const root = document.querySelector('[data-handoff-widget]').shadowRoot;
          return getComputedStyle(root.querySelector(`[data-testid="${id}"]`))[prop];
        }""",
        [test_id, prop],
    )
    return value


def test_the_help_page_uses_the_same_chat_and_theme(server: Server, browser: Browser) -> None:
    agent = new_agent(server)
    with server.admin() as admin:
        assert admin.put(f"/api/v1/agents/{agent}/widget", json=THEME).is_success
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT)
    page = context.new_page()
    page.goto(f"{server.url}/help/{agent}")
    expect(page.get_by_test_id("handoff-panel").locator("h2")).to_have_text("Shop help")
    expect(page.get_by_test_id("handoff-launcher")).to_have_count(0)
    expect(page.get_by_test_id("handoff-input")).to_be_focused()
    say(page, QUESTION)
    expect(newest_is_from(page, "assistant")).to_contain_text("Forgot password")
    context.close()


def test_the_waiting_banner_keeps_the_newest_message_in_view(
    server: Server, browser: Browser
) -> None:
    agent = new_agent(server)
    context = browser.new_context(viewport={"width": 1280, "height": 700})
    context.set_default_timeout(TIMEOUT)
    page = context.new_page()
    open_widget(page, f"{server.url}/demo/{agent}")
    for question in ("Where is my order?", "Can I change the address?", "And the invoice?"):
        say(page, question)
        expect(newest_is_from(page, "assistant")).to_be_visible(timeout=TIMEOUT)
    escalate(page)
    expect(page.get_by_test_id("handoff-banner")).to_be_visible(timeout=TIMEOUT)
    expect(messages(page, "assistant").last).to_contain_text(DEFAULT_HANDOFF_MESSAGE[:40])
    shown = messages(page).last.evaluate(
        """el => { const list = el.closest('[data-testid=handoff-messages]') || el.parentElement;
                   return { overflows: list.scrollHeight > list.clientHeight,
                            hidden: el.getBoundingClientRect().bottom
                                    - list.getBoundingClientRect().bottom }; }"""
    )
    assert shown["overflows"], shown  # the transcript scrolls, so it could hide a message
    assert shown["hidden"] <= 1, shown  # the newest bubble's bottom is inside the transcript


def test_the_ai_signs_with_the_widgets_current_name(server: Server, browser: Browser) -> None:
    agent = new_agent(server)
    with server.admin() as admin:
        assert admin.put(f"/api/v1/agents/{agent}/widget", json={"title": "Acme Help"}).is_success
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT)
    page = context.new_page()
    open_widget(page, f"{server.url}/demo/{agent}")
    say(page, QUESTION)
    signed = page.locator("[data-testid=handoff-message][data-role=assistant]").get_by_test_id(
        "handoff-who"
    )
    expect(signed).to_have_count(2, timeout=TIMEOUT)  # the greeting and the answer
    expect(signed).to_have_text(["Acme Help", "Acme Help"])

    # Renamed in Settings: the same transcript, opened again, is signed with the new name. (A
    # new context with the same storage: the widget's settings are cached for a minute.)
    with server.admin() as admin:
        assert admin.put(f"/api/v1/agents/{agent}/widget", json={"title": "Acme Care"}).is_success
    again = browser.new_context(storage_state=context.storage_state())
    again.set_default_timeout(TIMEOUT)
    page = again.new_page()
    open_widget(page, f"{server.url}/demo/{agent}")
    signed = page.locator("[data-testid=handoff-message][data-role=assistant]").get_by_test_id(
        "handoff-who"
    )
    expect(signed).to_have_count(2, timeout=TIMEOUT)
    expect(signed).to_have_text(["Acme Care", "Acme Care"])
    expect(page.get_by_test_id("handoff-panel").locator("h2")).to_have_text("Acme Care")
