"""The waiting user over HTTP, on a server whose timers tick fast: the wait notice, an email
left while waiting, going back to the AI (by button or in words), and the first human answer.
Both backends."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import BACKENDS, Server
from tests.fakes.webhook_receiver import FakeReceiver
from tests.web.chat import Chat, EventReader, ticket_of, wait_for
from tests.web.rules import (
    back_to_bot,
    demo_action,
    new_agent,
    open_chat,
    timed_server,
    update_action,
)

NOTICE = "keep your place"


@pytest.fixture(scope="module", params=BACKENDS)
def timed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with timed_server(request.param, tmp_path_factory.mktemp(f"timed-{request.param}")) as server:
        yield server


def configure(server: Server, **fields: Any) -> None:
    """Set the demo action's options for this test (this module owns its server)."""
    defaults: dict[str, Any] = {
        "ask_for_email": False,
        "wait_timeout_seconds": 1,
        "inactivity_timeout_seconds": None,
        "business_hours": None,
    }
    update_action(server, demo_action(server), **(defaults | fields))


def escalated(server: Server, contact: dict[str, Any] | None = None) -> tuple[Chat, dict[str, Any]]:
    chat = open_chat(server, server.demo_agent_id, "widget", contact)
    handed = chat.say("I want to talk to a human")
    assert handed["conversation"]["owner"] == "human"
    assert handed["conversation"]["waiting"] is True
    ticket = wait_for(lambda: ticket_of(server, server.admin_token, chat.id))
    return chat, ticket


def system_texts(chat: Chat) -> list[str]:
    return [m["text"] for m in chat.get()["messages"] if m["role"] == "system"]


def ticket_detail(server: Server, ticket_id: str) -> dict[str, Any]:
    with server.admin() as admin:
        detail: dict[str, Any] = admin.get(f"/api/v1/tickets/{ticket_id}").json()
    return detail


def test_waiting_user_is_told_their_place_is_kept_once(timed: Server) -> None:
    configure(timed)
    chat, _ = escalated(timed, {"email": "wait@example.com"})
    notices = wait_for(lambda: [t for t in system_texts(chat) if NOTICE in t], timeout=10)
    assert "back to the AI" in notices[0]
    assert "wait@example.com" in notices[0]
    time.sleep(1.5)  # several more sweeps
    assert len([t for t in system_texts(chat) if NOTICE in t]) == 1
    still = chat.say("ok, I'll wait")
    assert [m["role"] for m in still["messages"]] == ["user"]  # the AI stays silent
    assert still["conversation"]["waiting"] is True


def test_an_email_typed_while_waiting_is_kept_and_added_to_the_ticket(timed: Server) -> None:
    configure(timed)
    chat, ticket = escalated(timed)
    notice = wait_for(lambda: [t for t in system_texts(chat) if NOTICE in t], timeout=10)[0]
    assert "leave your email address" in notice

    reply = chat.say("sure, it's jane.w@example.com")
    assert [m["role"] for m in reply["messages"]] == ["user", "system"]
    assert "jane.w@example.com" in reply["messages"][1]["text"]
    assert reply["conversation"]["owner"] == "human"
    assert chat.get()["contact"]["email"] == "jane.w@example.com"
    detail = ticket_detail(timed, ticket["id"])
    assert detail["contact"]["email"] == "jane.w@example.com"
    assert [n["text"] for n in detail["notes"]] == [
        "The user left an email address while waiting: jane.w@example.com"
    ]
    assert detail["messages"][-2]["text"] == "sure, it's jane.w@example.com"
    # A second address does not replace the first, and is not thanked for again.
    again = chat.say("or jane@work.example")
    assert [m["role"] for m in again["messages"]] == ["user"]
    assert chat.get()["contact"]["email"] == "jane.w@example.com"


def test_back_to_bot_button_returns_the_ai_and_solves_the_ticket(timed: Server) -> None:
    configure(timed, wait_timeout_seconds=300)
    chat, ticket = escalated(timed, {"email": "button@example.com"})

    back = back_to_bot(chat)
    assert [m["role"] for m in back["messages"]] == ["system"]
    assert "chatting with the AI assistant again" in back["messages"][0]["text"]
    state = back["conversation"]
    assert state["owner"] == "bot" and state["waiting"] is False
    assert state["escalation"]["status"] == "solved"
    detail = ticket_detail(timed, ticket["id"])
    assert detail["status"] == "solved"
    assert [n["text"] for n in detail["notes"]] == ["The user went back to the AI."]

    assert back_to_bot(chat)["messages"] == []  # a second click changes nothing
    answered = chat.say("Which browsers do you support?")
    assert [m["role"] for m in answered["messages"]] == ["user", "assistant"]


@pytest.mark.parametrize(
    "words", ["back to the bot", "Can I talk to the AI again?", "never mind", "cancel"]
)
def test_typing_back_to_the_bot_does_the_same(timed: Server, words: str) -> None:
    configure(timed, wait_timeout_seconds=300)
    chat, ticket = escalated(timed, {"email": "typed@example.com"})
    reply = chat.say(words)
    assert [m["role"] for m in reply["messages"]] == ["user", "system"]
    assert reply["conversation"]["owner"] == "bot"
    assert ticket_detail(timed, ticket["id"])["status"] == "solved"


def test_a_first_human_answer_ends_the_wait(timed: Server) -> None:
    configure(timed, wait_timeout_seconds=2)
    chat, ticket = escalated(timed, {"email": "answered@example.com"})
    url = f"/api/v1/conversations/{chat.id}/events"
    with (
        chat.client() as client,
        client.stream("GET", url, params={"access_token": chat.token}) as stream,
    ):
        reader = EventReader(stream)
        with timed.admin() as admin:
            sent = admin.post(f"/api/v1/tickets/{ticket['id']}/replies", json={"text": "Hi!"})
        assert sent.status_code == 201, sent.text
        states = reader.until(
            lambda evs: any(
                e["event"] == "conversation" and e["data"]["waiting"] is False for e in evs
            )
        )
    last_state = [e["data"] for e in states if e["event"] == "conversation"][-1]
    assert last_state["owner"] == "human"
    time.sleep(2.5)
    assert not [t for t in system_texts(chat) if NOTICE in t]  # answered: no notice

    # To a person, "never mind" is a reply; "back to the bot" still leaves.
    relayed = chat.say("never mind")
    assert [m["role"] for m in relayed["messages"]] == ["user"]
    assert relayed["conversation"]["owner"] == "human"
    assert relayed["conversation"]["waiting"] is False
    assert chat.say("back to the bot")["conversation"]["owner"] == "bot"


def test_while_asked_for_an_email_never_mind_cancels_the_request(timed: Server) -> None:
    configure(timed, ask_for_email=True)
    chat = open_chat(timed, timed.demo_agent_id, "widget")
    asked = chat.say("I want to talk to a human")
    assert "email" in asked["messages"][-1]["text"]
    dropped = chat.say("never mind")
    assert dropped["conversation"]["owner"] == "bot"
    assert dropped["conversation"]["escalation"] is None
    assert "won't connect you" in dropped["messages"][-1]["text"]
    assert chat.say("Which browsers do you support?")["conversation"]["owner"] == "bot"


def test_back_to_bot_needs_the_conversation_token(timed: Server) -> None:
    configure(timed, wait_timeout_seconds=300)
    chat, _ = escalated(timed, {"email": "token@example.com"})
    other = open_chat(timed, timed.demo_agent_id)
    url = f"/api/v1/conversations/{chat.id}/back-to-bot"
    assert httpx.post(timed.url + url).status_code == 401
    with timed.client("hv_wrong") as stranger:
        assert stranger.post(url).status_code == 401
    with other.client() as neighbour:
        assert neighbour.post(url).status_code == 404
    assert chat.get()["owner"] == "human"


@pytest.fixture
def receiver() -> Iterator[FakeReceiver]:
    with FakeReceiver("s" * 24) as fake:
        yield fake


def test_an_external_ticket_is_told_the_user_went_back(
    timed: Server, receiver: FakeReceiver
) -> None:
    agent_id, _ = new_agent(timed, agent_channels=["widget"])
    with timed.admin() as admin:
        connected = admin.post(
            f"/api/v1/agents/{agent_id}/integrations",
            json={
                "platform": "webhook",
                "credentials": {"url": receiver.url, "signing_secret": receiver.secret},
            },
        )
        assert connected.status_code == 201, connected.text
        admin.post(
            f"/api/v1/agents/{agent_id}/actions",
            json={
                "name": "To_Tool",
                "platform": "webhook",
                "when_to_use": "When the user asks for a person.",
                "channels": ["widget"],
                "enabled": True,
                "ask_for_email": False,
            },
        )
        # The native action created with the agent goes first; switch it off.
        for action in admin.get(f"/api/v1/agents/{agent_id}/actions").json():
            if action["platform"] == "native":
                update_action(timed, action, enabled=False)
    chat = open_chat(timed, agent_id, "widget", {"email": "ext@example.com"})
    assert chat.say("I want to talk to a human")["conversation"]["owner"] == "human"
    wait_for(lambda: receiver.tickets)
    assert back_to_bot(chat)["conversation"]["owner"] == "bot"
    ticket = next(iter(receiver.tickets.values()))
    wait_for(lambda: ticket.messages)
    assert [m["text"] for m in ticket.messages] == ["The user went back to the AI."]


def test_a_separate_worker_process_runs_the_timers(tmp_path: Path) -> None:
    """`serve --no-worker` runs no timers; a `handoff worker` beside it does."""
    with timed_server("sqlite", tmp_path, "--no-worker") as api_only:
        configure(api_only)
        chat = open_chat(api_only, api_only.demo_agent_id, "widget", {"email": "w@example.com"})
        assert chat.say("I want to talk to a human")["conversation"]["owner"] == "human"
        time.sleep(1.5)
        assert not [t for t in system_texts(chat) if NOTICE in t]
        worker = subprocess.Popen(
            [sys.executable, "-m", "handoff.cli.main", "worker"],
            env=api_only.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: [t for t in system_texts(chat) if NOTICE in t], timeout=30)
        finally:
            worker.terminate()
            assert worker.wait(timeout=20) == 0
