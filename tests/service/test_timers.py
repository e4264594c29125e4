"""The conversation timers swept directly on a real database, with an injected clock: the
wait notice goes out once (also with two workers sweeping at once), a human answer stops it,
inactivity hands back, and business hours hold the clocks until the opening."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from handoff.dispatch import Worker
from handoff.domain import Contact
from handoff.service import conversations, inbox, timers
from handoff.service.demo import ensure_demo
from handoff.service.runtime import Handoff
from handoff.store.models import Action, Escalation, Message, Note, Ticket, utcnow
from tests.service.support import say


async def escalated_chat(
    hf: Handoff, email: str | None = "kim@example.com", **action: Any
) -> tuple[str, Escalation]:
    """Open a chat on the demo agent with the action's timers set, and escalate it."""
    async with hf.transaction() as session:
        demo = await ensure_demo(session, hf.settings.data_dir)
        assert demo is not None
        row = await session.scalar(select(Action).where(Action.agent_id == demo.agent_id))
        assert row is not None
        row.ask_for_email = False
        for key, value in action.items():
            setattr(row, key, value)
        conversation, _, _ = await conversations.start_conversation(
            hf, session, agent_id=demo.agent_id, channel="widget", contact=Contact(email=email)
        )
    reply = await say(hf, conversation.id, "I want to talk to a human")
    assert reply.conversation["owner"] == "human"
    return conversation.id, await escalation_of(hf, conversation.id)


async def escalation_of(hf: Handoff, conversation_id: str) -> Escalation:
    async with hf.transaction() as session:
        found = await session.scalar(
            select(Escalation).where(Escalation.conversation_id == conversation_id)
        )
    assert found is not None
    return found


async def texts(hf: Handoff, conversation_id: str, role: str = "system") -> list[str]:
    async with hf.transaction() as session:
        rows = await session.scalars(
            select(Message.text).where(
                Message.conversation_id == conversation_id, Message.role == role
            )
        )
        return list(rows)


async def test_wait_notice_goes_out_once_after_the_timeout(hf: Handoff) -> None:
    chat, escalation = await escalated_chat(hf, wait_timeout_seconds=60)
    start = escalation.created_at

    assert await timers.sweep(hf, now=start + timedelta(seconds=59)) == timers.SweepResult()
    assert await texts(hf, chat) == []

    done = await timers.sweep(hf, now=start + timedelta(seconds=61))
    assert done == timers.SweepResult(notified=1)
    [notice] = await texts(hf, chat)
    assert "keep your place" in notice
    assert "back to the AI" in notice
    assert "kim@example.com" in notice  # the email we have, not a request for one

    assert await timers.sweep(hf, now=start + timedelta(hours=5)) == timers.SweepResult()
    assert len(await texts(hf, chat)) == 1
    assert (await escalation_of(hf, chat)).wait_notified_at is not None


async def test_an_anonymous_waiting_user_is_asked_for_an_email(hf: Handoff) -> None:
    chat, escalation = await escalated_chat(hf, email=None, wait_timeout_seconds=10)
    await timers.sweep(hf, now=escalation.created_at + timedelta(seconds=11))
    [notice] = await texts(hf, chat)
    assert "leave your email address" in notice


async def test_two_workers_sweeping_at_once_send_one_notice(hf: Handoff) -> None:
    chats = [(await escalated_chat(hf, wait_timeout_seconds=5))[0] for _ in range(3)]
    later = utcnow() + timedelta(seconds=30)
    results = await asyncio.gather(*(timers.sweep(hf, now=later) for _ in range(4)))
    assert sum(r.notified for r in results) == 3
    for chat in chats:
        assert len(await texts(hf, chat)) == 1


async def test_a_human_answer_stops_the_wait_notice(hf: Handoff) -> None:
    chat, escalation = await escalated_chat(hf, wait_timeout_seconds=60)
    async with hf.transaction() as session:
        ticket = await inbox.create_native_ticket(hf, session, escalation.id)
        await inbox.reply(session, ticket, None, "Hi, I'm Sam from support.")
    replied = await escalation_of(hf, chat)
    assert replied.first_reply_at is not None
    result = await timers.sweep(hf, now=escalation.created_at + timedelta(minutes=10))
    assert result == timers.SweepResult()
    assert await texts(hf, chat) == []


async def test_inactivity_hands_back_and_solves_the_ticket(hf: Handoff) -> None:
    chat, escalation = await escalated_chat(
        hf, wait_timeout_seconds=None, inactivity_timeout_seconds=600
    )
    async with hf.transaction() as session:
        ticket = await inbox.create_native_ticket(hf, session, escalation.id)
    await say(hf, chat, "hello? anyone there?")
    async with hf.transaction() as session:
        last_user = await session.scalar(
            select(Message.created_at)
            .where(Message.conversation_id == chat, Message.role == "user")
            .order_by(Message.id.desc())
            .limit(1)
        )
    assert last_user is not None and last_user > escalation.created_at

    # The user's last message restarted the clock.
    assert await timers.sweep(hf, now=last_user + timedelta(seconds=599)) == timers.SweepResult()

    result = await timers.sweep(hf, now=last_user + timedelta(seconds=601))
    assert result == timers.SweepResult(handed_back=1)
    ended = await escalation_of(hf, chat)
    assert ended.handback_reason == "inactivity"
    assert ended.status == "solved"
    [handback] = await texts(hf, chat)
    assert "quiet for a while" in handback
    async with hf.transaction() as session:
        stored = await session.get(Ticket, ticket.id)
        notes = list(await session.scalars(select(Note.text).where(Note.ticket_id == ticket.id)))
    assert stored is not None and stored.status == "solved"
    assert notes == ["Nobody wrote for a while, so the conversation went back to the AI."]
    # Once handed back, nothing more happens.
    assert await timers.sweep(hf, now=last_user + timedelta(days=3)) == timers.SweepResult()
    reply = await say(hf, chat, "Which browsers do you support?")
    assert reply.conversation["owner"] == "bot"


async def test_a_user_back_before_the_ticket_exists_gets_a_solved_ticket(hf: Handoff) -> None:
    chat, escalation = await escalated_chat(hf)
    back = await say(hf, chat, "never mind")
    assert back.conversation["owner"] == "bot"
    async with hf.transaction() as session:
        ticket = await inbox.create_native_ticket(hf, session, escalation.id)
        notes = list(await session.scalars(select(Note.text).where(Note.ticket_id == ticket.id)))
    assert ticket.status == "solved"
    assert notes == ["The user went back to the AI."]


async def test_business_hours_hold_the_clocks_until_the_opening(hf: Handoff) -> None:
    now = utcnow()
    # Closed until two hours from now (UTC), open for the rest of that day.
    opening = (now + timedelta(hours=2)).replace(second=0, microsecond=0)
    day = opening.strftime("%a").lower()
    start = opening.strftime("%H:%M")
    hours = {"timezone": "UTC", "weekly": {day: [[start, "24:00"]]}}
    if start >= "22:00":  # the opening would be too close to midnight for this test
        pytest.skip("too close to midnight UTC")
    chat, _ = await escalated_chat(
        hf, business_hours=hours, wait_timeout_seconds=60, inactivity_timeout_seconds=600
    )
    assert await timers.sweep(hf, now=opening - timedelta(minutes=1)) == timers.SweepResult()
    assert await timers.sweep(hf, now=opening + timedelta(seconds=59)) == timers.SweepResult()
    notice = await timers.sweep(hf, now=opening + timedelta(seconds=61))
    assert notice == timers.SweepResult(notified=1)
    handed = await timers.sweep(hf, now=opening + timedelta(seconds=601))
    assert handed == timers.SweepResult(handed_back=1)
    assert (await escalation_of(hf, chat)).handback_reason == "inactivity"


def test_clock_due_rules() -> None:
    t0 = datetime.fromisoformat("2026-03-02T10:00:00+00:00")
    clock = timers.Clock(
        created_at=t0,
        first_reply_at=None,
        wait_notified_at=None,
        last_activity=t0,
        wait_timeout_seconds=0,
        inactivity_timeout_seconds=None,
        business_hours=None,
    )
    assert clock.due(t0 + timedelta(days=1)) is None  # 0 and None turn the timers off


async def test_worker_ticks_until_stopped_and_survives_a_failing_tick(hf: Handoff) -> None:
    ticks: list[float] = []
    enough = asyncio.Event()

    async def tick() -> None:
        ticks.append(asyncio.get_running_loop().time())
        if len(ticks) == 4:
            enough.set()
        if len(ticks) == 2:
            raise RuntimeError("a bad tick")

    stop = asyncio.Event()
    worker = Worker(hf.db, {}, poll_seconds=0.05, tick=tick, tick_seconds=0.05)
    running = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(enough.wait(), timeout=5)  # the failing second tick stopped nothing
    stop.set()
    await asyncio.wait_for(running, timeout=2)
    count = len(ticks)
    await asyncio.sleep(0.2)
    assert len(ticks) == count  # nothing ticks after the worker stopped
