"""The widget across a network loss: nothing lost, nothing twice, on either side.

The visitor's browser goes offline (its live stream drops with it); meanwhile the support
agent replies from the inbox and the visitor writes two messages. Back online, the queued
messages go out once (with their client ids) and the stream resumes after the last event it
saw. A send whose answer is lost on the way back is retried and still stored once.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest
from tests.conftest import Server
from tests.e2e.support import (
    TIMEOUT,
    NetworkCut,
    conversation_id,
    escalate,
    expect,
    messages,
    new_agent,
    open_widget,
    sign_in,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.browser


def test_offline_messages_and_replies_arrive_exactly_once(server: Server, browser: Browser) -> None:
    agent = new_agent(server)
    network = NetworkCut(int(server.url.rsplit(":", 1)[1]))
    visitor_ctx = browser.new_context()
    visitor_ctx.set_default_timeout(TIMEOUT)
    page = visitor_ctx.new_page()
    open_widget(page, f"{network.url}/demo/{agent}")
    escalate(page)
    conversation = conversation_id(page, agent)

    agent_ctx = browser.new_context(viewport={"width": 1440, "height": 900})
    agent_ctx.set_default_timeout(TIMEOUT)
    inbox = sign_in(server, agent_ctx)
    inbox.open_ticket(conversation)
    inbox.reply("Hi Jane, Sam here. Looking into it.")
    expect(messages(page, "human_agent")).to_have_count(1, timeout=TIMEOUT)

    # ------------------------------------------------------------ the network goes away
    network.cut()
    visitor_ctx.set_offline(True)  # and the browser knows it (navigator.onLine, events)
    inbox.reply("While you were away: your account is unlocked.")
    page.get_by_test_id("handoff-input").fill("Are you still there?")
    page.get_by_test_id("handoff-input").press("Enter")
    page.get_by_test_id("handoff-input").fill("Hello?")
    page.get_by_test_id("handoff-input").press("Enter")
    pending = page.locator("[data-testid=handoff-message].pending")
    expect(pending).to_have_count(2)
    expect(pending.first).to_contain_text("Waiting for the network", timeout=TIMEOUT)
    page.wait_for_timeout(1500)
    expect(messages(page, "human_agent")).to_have_count(1)  # the stream is down too
    expect(inbox.transcript("Are you still there?", "user")).to_have_count(0)

    # ------------------------------------------------------------ back online
    network.restore()
    visitor_ctx.set_offline(False)
    expect(pending).to_have_count(0, timeout=TIMEOUT)
    expect(messages(page, "human_agent").filter(has_text="your account is unlocked")).to_have_count(
        1, timeout=TIMEOUT
    )
    for text in ("Are you still there?", "Hello?"):
        expect(messages(page, "user").filter(has_text=text)).to_have_count(1)
        expect(inbox.transcript(text, "user")).to_have_count(1, timeout=TIMEOUT)
    # In the order they were written.
    users = messages(page, "user").all_inner_texts()
    assert users.index(next(u for u in users if "still there" in u)) < users.index(
        next(u for u in users if "Hello?" in u)
    )

    # ------------------------------------------------------------ an answer lost on the way back
    lost: list[Any] = []

    def lose_first_answer(route: Any) -> None:
        if route.request.method == "POST" and not lost:
            lost.append(route.fetch())  # the server stores the message ...
            route.abort()  # ... but the browser never hears back
        else:
            route.continue_()

    page.route("**/messages", lose_first_answer)
    page.get_by_test_id("handoff-input").fill("Thanks, it works now")
    page.get_by_test_id("handoff-input").press("Enter")
    expect(page.locator("[data-testid=handoff-message].pending")).to_have_count(0, timeout=TIMEOUT)
    assert lost and lost[0].status == 200
    expect(messages(page, "user").filter(has_text="Thanks, it works now")).to_have_count(1)
    expect(inbox.transcript("Thanks, it works now", "user")).to_have_count(1, timeout=TIMEOUT)
    page.unroute("**/messages")

    # ------------------------------------------------------------ the server's view agrees
    with inbox.client() as client:
        stored = client.get(f"/api/v1/conversations/{conversation}").json()["messages"]
    texts = [m["text"] for m in stored]
    for text in (
        "Are you still there?",
        "Hello?",
        "Thanks, it works now",
        "While you were away: your account is unlocked.",
    ):
        assert texts.count(text) == 1, texts
    ids = [m["id"] for m in stored]
    widget_ids = [int(x) for x in messages(page).evaluate_all("els => els.map(e => e.dataset.id)")]
    assert widget_ids == ids  # every message once, in order

    # A reload resumes the stream after the last event it saw: still everything once.
    with page.expect_request(lambda r: "/events?" in r.url) as stream:
        page.reload()
    assert re.search(r"[?&]after=[1-9][0-9]*", stream.value.url), stream.value.url
    expect(messages(page)).to_have_count(len(ids), timeout=TIMEOUT)
    page.wait_for_timeout(1000)
    expect(messages(page)).to_have_count(len(ids))

    agent_ctx.close()
    visitor_ctx.close()
    network.close()
