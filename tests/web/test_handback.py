"""Handback over HTTP on a server whose timers tick fast: why each stretch ended is recorded,
and a stretch nobody writes in goes back to the AI with the ticket told. Both backends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from handoff.store.db import Database
from handoff.store.models import Escalation
from tests.conftest import BACKENDS, Server
from tests.web.chat import Chat, ticket_of, wait_for
from tests.web.rules import demo_action, open_chat, timed_server, update_action


@pytest.fixture(scope="module", params=BACKENDS)
def timed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with timed_server(request.param, tmp_path_factory.mktemp(f"hb-{request.param}")) as server:
        yield server


def handback_reasons(server: Server, conversation_id: str) -> list[str | None]:
    async def read() -> list[str | None]:
        db = Database(server.database_url)
        try:
            async with db.unit_of_work() as session:
                rows = await session.scalars(
                    select(Escalation.handback_reason)
                    .where(Escalation.conversation_id == conversation_id)
                    .order_by(Escalation.stretch)
                )
                return list(rows)
        finally:
            await db.dispose()

    return asyncio.run(read())


def escalated(server: Server, **action: Any) -> tuple[Chat, dict[str, Any]]:
    defaults: dict[str, Any] = {
        "ask_for_email": False,
        "wait_timeout_seconds": None,
        "inactivity_timeout_seconds": None,
    }
    update_action(server, demo_action(server), **(defaults | action))
    chat = open_chat(server, server.demo_agent_id, "widget", {"email": "hb@example.com"})
    assert chat.say("I want to talk to a human")["conversation"]["owner"] == "human"
    return chat, wait_for(lambda: ticket_of(server, server.admin_token, chat.id))


def test_solving_records_why_the_ai_got_it_back(timed: Server) -> None:
    chat, ticket = escalated(timed)
    with timed.admin() as admin:
        assert admin.post(f"/api/v1/tickets/{ticket['id']}/solve").status_code == 200
    after = chat.get()
    assert after["owner"] == "bot"
    assert "marked this conversation as solved" in after["messages"][-1]["text"]
    assert handback_reasons(timed, chat.id) == ["solved"]

    # A second stretch that the user ends is told apart from the first.
    assert chat.say("I want a human again")["conversation"]["owner"] == "human"
    chat.say("back to the bot")
    assert handback_reasons(timed, chat.id) == ["solved", "user"]


def test_a_quiet_stretch_goes_back_to_the_ai(timed: Server) -> None:
    chat, ticket = escalated(timed, inactivity_timeout_seconds=2)
    with timed.admin() as admin:
        admin.post(f"/api/v1/tickets/{ticket['id']}/replies", json={"text": "Looking into it."})
    # Messages from either side keep the stretch alive.
    for text in ("thanks", "still there?", "ok"):
        time.sleep(0.8)
        assert chat.say(text)["conversation"]["owner"] == "human"

    wait_for(lambda: chat.get()["owner"] == "bot", timeout=10)
    messages = chat.get()["messages"]
    assert messages[-1]["role"] == "system"
    assert "quiet for a while" in messages[-1]["text"]
    assert handback_reasons(timed, chat.id) == ["inactivity"]
    with timed.admin() as admin:
        detail = admin.get(f"/api/v1/tickets/{ticket['id']}").json()
    assert detail["status"] == "solved"
    assert [n["text"] for n in detail["notes"]] == [
        "Nobody wrote for a while, so the conversation went back to the AI."
    ]
    # The handback happened once, and the AI answers again.
    time.sleep(1)
    assert [m["text"] for m in chat.get()["messages"]].count(messages[-1]["text"]) == 1
    answered = chat.say("Which browsers do you support?")
    assert [m["role"] for m in answered["messages"]] == ["user", "assistant"]
    with timed.admin() as admin:
        late = admin.post(f"/api/v1/tickets/{ticket['id']}/replies", json={"text": "late"})
    assert late.status_code == 409  # the ticket is solved: no reply reaches the user
