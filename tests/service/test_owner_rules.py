"""The owner rule in the core, on a real database: who answers, and when the AI comes back."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from handoff.domain import HandbackReason
from handoff.service import inbox, stretch
from handoff.service.inbox import create_native_ticket
from handoff.service.lifecycle import transitions as lifecycle
from handoff.service.runtime import Handoff
from handoff.store.models import Conversation, Escalation, Message, OutboxJob, Ticket
from tests.service.support import open_chat, say


async def count(hf: Handoff, model: type, conversation_id: str) -> int:
    async with hf.transaction() as session:
        column = model.conversation_id  # type: ignore[attr-defined]
        return int(await session.scalar(select(func.count()).where(column == conversation_id)) or 0)


async def test_ai_answers_while_it_owns(hf: Handoff) -> None:
    chat = await open_chat(hf)
    reply = await say(hf, chat, "Which browsers do you support?")
    assert [m["role"] for m in reply.messages] == ["user", "assistant"]
    assert "Chrome" in reply.messages[1]["text"]
    assert reply.conversation["owner"] == "bot"


@pytest.mark.parametrize(
    "text",
    [
        "Which browsers do you support?",  # a question the AI could answer
        "I want a human NOW",  # asking again in the same stretch
        "this is useless, nobody is helping me!!!",  # frustration
    ],
)
async def test_ai_stays_silent_while_a_human_owns(hf: Handoff, text: str) -> None:
    chat = await open_chat(hf)
    handed = await say(hf, chat, "Let me talk to a person please")
    assert handed.conversation["owner"] == "human"

    reply = await say(hf, chat, text)
    assert [m["role"] for m in reply.messages] == ["user"]
    assert reply.conversation["owner"] == "human"
    assert await count(hf, Escalation, chat) == 1
    async with hf.transaction() as session:
        jobs = await session.scalar(select(func.count()).select_from(OutboxJob))
    assert jobs == 1  # the one create_ticket job; native follow-ups need no job


async def test_escalation_writes_escalation_job_and_owner_together(hf: Handoff) -> None:
    chat = await open_chat(hf)
    await say(hf, chat, "I need a real person")
    async with hf.transaction() as session:
        conversation = await session.get(Conversation, chat)
        escalation = await session.scalar(
            select(Escalation).where(Escalation.conversation_id == chat)
        )
        job = await session.scalar(select(OutboxJob))
    assert conversation is not None and escalation is not None and job is not None
    assert conversation.owner == "human"
    assert escalation.status == "pending"
    assert escalation.reasons == ["explicit_request"]
    assert job.kind == "create_ticket"
    assert job.payload == {"escalation_id": escalation.id}
    assert job.idempotency_key == f"create_ticket:{escalation.id}"


async def test_handback_returns_the_conversation_to_the_ai(hf: Handoff) -> None:
    chat = await open_chat(hf)
    await say(hf, chat, "Can I talk to someone from support?")
    async with hf.transaction() as session:
        escalation = await session.scalar(
            select(Escalation).where(Escalation.conversation_id == chat)
        )
        assert escalation is not None
        ticket = await create_native_ticket(hf, session, escalation.id)
        again = await create_native_ticket(hf, session, escalation.id)
        assert again.id == ticket.id  # a replayed job opens no second ticket
        conversation = await session.get(Conversation, chat)
        assert conversation is not None
        message = await lifecycle.hand_back(
            session, conversation, escalation, HandbackReason.SOLVED
        )
    assert message.role == "system"
    assert "AI assistant again" in message.text

    reply = await say(hf, chat, "Which browsers do you support?")
    assert [m["role"] for m in reply.messages] == ["user", "assistant"]
    assert reply.conversation["owner"] == "bot"

    second = await say(hf, chat, "actually I want a human again")
    assert second.conversation["owner"] == "human"
    async with hf.transaction() as session:
        stretches = list(
            await session.scalars(
                select(Escalation.stretch).where(Escalation.conversation_id == chat)
            )
        )
    assert sorted(stretches) == [0, 1]


async def test_a_failed_escalation_leaves_nothing_half_written(hf: Handoff) -> None:
    chat = await open_chat(hf)
    # Another process escalated this stretch already (a race the row lock normally prevents):
    # the unique (conversation, stretch) constraint refuses a second escalation.
    async with hf.transaction() as session:
        session.add(
            Escalation(
                conversation_id=chat,
                stretch=0,
                platform="native",
                status="pending",
                subject="earlier",
                summary="earlier",
            )
        )
    with pytest.raises(IntegrityError):
        await say(hf, chat, "I want to talk to a human")

    assert await count(hf, Escalation, chat) == 1
    async with hf.transaction() as session:
        conversation = await session.get(Conversation, chat)
        users = await session.scalar(
            select(func.count()).where(Message.conversation_id == chat, Message.role == "user")
        )
        jobs = await session.scalar(select(func.count()).select_from(OutboxJob))
    assert conversation is not None and conversation.owner == "bot"
    assert users == 0  # the user's message rolled back with the rest
    assert jobs == 0


async def test_solving_while_the_user_goes_back_to_the_ai_hands_back_once(hf: Handoff) -> None:
    chat = await open_chat(hf)
    await say(hf, chat, "Can I talk to someone from support?")
    async with hf.transaction() as session:
        escalation = await session.scalar(
            select(Escalation).where(Escalation.conversation_id == chat)
        )
        assert escalation is not None
        ticket_id = (await create_native_ticket(hf, session, escalation.id)).id

    user_pressed, agent_may_commit = asyncio.Event(), asyncio.Event()

    async def user_goes_back() -> None:
        async with hf.transaction() as session:
            await stretch.back_to_bot(session, chat)
            user_pressed.set()
            await agent_may_commit.wait()  # the agent presses Solve before this commits

    async def agent_solves() -> None:
        await user_pressed.wait()
        async with hf.transaction() as session:
            ticket = await session.get(Ticket, ticket_id)
            assert ticket is not None
            await inbox.solve(session, ticket)

    both = asyncio.gather(user_goes_back(), agent_solves())
    await user_pressed.wait()
    await asyncio.sleep(0.5)  # the agent's transaction now waits for the user's lock
    agent_may_commit.set()
    await both

    async with hf.transaction() as session:
        conversation = await session.get(Conversation, chat)
        escalation = await session.scalar(
            select(Escalation).where(Escalation.conversation_id == chat)
        )
        handbacks = list(
            await session.scalars(
                select(Message.text).where(
                    Message.conversation_id == chat, Message.role == "system"
                )
            )
        )
    assert conversation is not None and escalation is not None
    assert conversation.owner == "bot" and conversation.stretch == 1
    assert escalation.handback_reason == "user"
    assert len(handbacks) == 1, handbacks
