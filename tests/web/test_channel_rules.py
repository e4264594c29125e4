"""Channel rules over HTTP: an action escalates only on its own channels; on the agent's other
channels the AI gives the action's alternative instead. Every public channel, both backends;
WhatsApp, which only its webhook opens, in tests/web/test_whatsapp.py."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Server
from tests.web.chat import Chat, ticket_of, wait_for
from tests.web.rules import ALL_CHANNELS, PUBLIC_CHANNELS, new_agent, open_chat, update_action

ALTERNATIVE = "A person can help you at help@acme.test or +1 555 0100, weekdays 9 to 5."
ASK_FOR_A_PERSON = "I want to talk to a human"


def escalations(chat: Chat) -> Any:
    return chat.get()["escalation"]


@pytest.mark.parametrize("uncovered", PUBLIC_CHANNELS)
def test_each_channel_obeys_the_action(any_server: Server, uncovered: str) -> None:
    covered = [c for c in ALL_CHANNELS if c != uncovered]
    agent_id, _ = new_agent(any_server, channels=covered, alternative_message=ALTERNATIVE)
    contact = {"email": "rules@example.com"}

    # Off the action's channels: the decision would escalate, the AI says where to go instead.
    outside = open_chat(any_server, agent_id, uncovered, contact)
    reply = outside.say(ASK_FOR_A_PERSON)
    assert [m["role"] for m in reply["messages"]] == ["user", "assistant"]
    assert reply["messages"][-1]["text"] == ALTERNATIVE
    assert reply["conversation"]["owner"] == "bot"
    assert reply["conversation"]["escalation"] is None
    assert reply["conversation"]["waiting"] is False
    # It never pretends: asking again gets the same honest answer, still no ticket.
    again = outside.say("Please, a real person!")
    assert again["messages"][-1]["text"] == ALTERNATIVE
    assert escalations(outside) is None
    # Messages that would not escalate are answered as usual.
    usual = outside.say("Can your product water my garden plants while I'm on holiday?")
    assert usual["messages"][-1]["text"] != ALTERNATIVE

    # On each of the action's public channels the same words hand the conversation over.
    for channel in (c for c in covered if c in PUBLIC_CHANNELS):
        inside = open_chat(any_server, agent_id, channel, contact)
        handed = inside.say(ASK_FOR_A_PERSON)
        assert handed["conversation"]["owner"] == "human", channel
        assert handed["conversation"]["waiting"] is True
        assert ALTERNATIVE not in handed["messages"][-1]["text"]
    last = inside
    assert wait_for(lambda: ticket_of(any_server, any_server.admin_token, last.id))


def test_empty_alternative_gets_a_default_that_names_the_covered_channels(
    any_server: Server,
) -> None:
    agent_id, action = new_agent(any_server, channels=["widget", "help_page"])
    assert action["alternative_message"] is None
    reply = open_chat(any_server, agent_id, "api").say(ASK_FOR_A_PERSON)
    text = reply["messages"][-1]["text"]
    assert reply["conversation"]["owner"] == "bot"
    assert "the chat on our website or our help page" in text
    assert "can't bring a person" in text

    # The admin's text replaces the default as soon as it is set.
    update_action(any_server, action, alternative_message="Call +1 555 0100.")
    reply = open_chat(any_server, agent_id, "api").say(ASK_FOR_A_PERSON)
    assert reply["messages"][-1]["text"] == "Call +1 555 0100."


def test_a_disabled_action_gives_no_alternative_either(any_server: Server) -> None:
    agent_id, _ = new_agent(
        any_server, channels=["widget"], alternative_message=ALTERNATIVE, enabled=False
    )
    for channel in ("widget", "api"):
        reply = open_chat(any_server, agent_id, channel).say(ASK_FOR_A_PERSON)
        assert reply["conversation"]["owner"] == "bot"
        assert reply["messages"][-1]["text"] != ALTERNATIVE


def test_alternative_message_is_validated(any_server: Server) -> None:
    with any_server.admin() as admin:
        agent_id, _ = new_agent(any_server)
        too_long = admin.post(
            f"/api/v1/agents/{agent_id}/actions",
            json={
                "name": "Too_Long",
                "platform": "native",
                "when_to_use": "x",
                "channels": ["widget"],
                "alternative_message": "x" * 2001,
            },
        )
    assert too_long.status_code == 422
    assert too_long.json()["detail"][0]["loc"][-1] == "alternative_message"
