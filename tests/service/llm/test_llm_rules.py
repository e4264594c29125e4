"""Conversation rules with an LLM configured, against the fake OpenAI server over real HTTP:
the tool is offered only where the action may escalate, the safety net still gives the
alternative elsewhere, and after a human stretch the model knows it is answering again."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from handoff.domain import Contact, HandbackReason
from handoff.service import conversations, stretch
from handoff.service.demo import ensure_demo
from handoff.service.runtime import Handoff
from handoff.store.models import Action, Conversation, Escalation
from tests.fakes.openai_server import FakeOpenAI, answer, tool_call
from tests.service.support import say

ALTERNATIVE = "Our team answers at help@acme.test."


async def chat_on(hf: Handoff, channel: str) -> str:
    """Open a chat on the demo agent, whose action now covers the widget only."""
    async with hf.transaction() as session:
        demo = await ensure_demo(session, hf.settings.data_dir)
        assert demo is not None
        action = await session.scalar(select(Action).where(Action.agent_id == demo.agent_id))
        assert action is not None
        action.channels = ["widget"]
        action.alternative_message = ALTERNATIVE
        conversation, _, _ = await conversations.start_conversation(
            hf, session, agent_id=demo.agent_id, channel=channel, contact=Contact(email="a@b.co")
        )
        return conversation.id


def tools_of(request: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in request.get("tools", [])]


async def test_tool_is_offered_only_on_covered_channels(hf: Handoff, fake: FakeOpenAI) -> None:
    fake.push(answer("Chrome and Firefox."), answer("Chrome and Firefox."))
    await say(hf, await chat_on(hf, "widget"), "Which browsers do you support?")
    await say(hf, await chat_on(hf, "api"), "Which browsers do you support?")
    covered, uncovered = fake.chat_requests
    assert tools_of(covered) == ["Escalate_To_Human"]
    assert tools_of(uncovered) == []
    assert "tool_choice" not in uncovered
    assert "Escalate_To_Human" not in uncovered["messages"][0]["content"]


async def test_safety_net_gives_the_alternative_off_the_action_channels(
    hf: Handoff, fake: FakeOpenAI
) -> None:
    chat = await chat_on(hf, "api")
    fake.push(answer("Sure, I'll get someone for you right away!"))
    reply = await say(hf, chat, "Let me talk to a person please")
    assert [m["text"] for m in reply.messages[1:]] == [ALTERNATIVE]
    assert reply.conversation["owner"] == "bot"
    async with hf.transaction() as session:
        assert (await session.scalars(select(Escalation))).first() is None


async def test_model_answer_stands_when_nothing_would_escalate(
    hf: Handoff, fake: FakeOpenAI
) -> None:
    chat = await chat_on(hf, "api")
    fake.push(answer("We support Chrome."))
    reply = await say(hf, chat, "Which browsers do you support?")
    assert reply.messages[-1]["text"] == "We support Chrome."


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        (HandbackReason.SOLVED, "the ticket was solved"),
        (HandbackReason.USER, "the user chose to go back to the AI assistant"),
        (HandbackReason.INACTIVITY, "nobody wrote for a while"),
    ],
)
async def test_after_a_human_stretch_the_model_knows_it_answers_again(
    hf: Handoff, fake: FakeOpenAI, reason: HandbackReason, words: str
) -> None:
    chat = await chat_on(hf, "widget")
    fake.push(tool_call("Escalate_To_Human", {"reason": "asked", "summary": "Wants a person."}))
    await say(hf, chat, "I was charged twice")
    async with hf.transaction() as session:
        conversation = await session.get(Conversation, chat)
        escalation = (await session.scalars(select(Escalation))).one()
        assert conversation is not None
        await stretch.end_stretch(session, conversation, escalation, reason)
    fake.push(answer("Happy to help again."))
    reply = await say(hf, chat, "Which browsers do you support?")
    assert reply.messages[-1]["text"] == "Happy to help again."
    system = fake.chat_requests[-1]["messages"][0]["content"]
    assert "A human support agent handled this conversation from" in system
    assert f"it ended because {words}" in system
    assert "You are answering again" in system
    assert "Never say you are staying silent" in system
    async with hf.transaction() as session:
        escalation = (await session.scalars(select(Escalation))).one()
    assert escalation.handback_reason == reason.value


async def test_no_stretch_line_before_any_handoff(hf: Handoff, fake: FakeOpenAI) -> None:
    fake.push(answer("Hi."))
    await say(hf, await chat_on(hf, "widget"), "hello")
    assert "human support agent handled" not in fake.chat_requests[0]["messages"][0]["content"]
