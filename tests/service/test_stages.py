"""`stage_of` and its SQL forms in the store (`repo.OPEN_HUMAN_STRETCH`, `repo.WAITING_STRETCH`)
agree, row by row."""

from __future__ import annotations

from sqlalchemy import select

from handoff.domain import HandbackReason
from handoff.service.lifecycle import transitions as lifecycle
from handoff.service.lifecycle.stages import HUMAN_STAGES, Stage, stage_of
from handoff.service.runtime import Handoff
from handoff.store import repositories as repo
from handoff.store.models import Agent, Conversation, Escalation
from tests.service.support import open_chat, say

ASK_FOR_A_PERSON = "I need a real person"


async def _latest(hf: Handoff, chat: str) -> tuple[Conversation, Escalation]:
    async with hf.reading() as session:
        conversation = await session.get(Conversation, chat)
        escalation = await repo.latest_escalation(session, chat)
    assert conversation is not None and escalation is not None
    return conversation, escalation


async def _answer(hf: Handoff, chat: str) -> None:
    async with hf.transaction() as session:
        conversation = await repo.conversation_for_update(session, chat)
        assert conversation is not None
        agent = await session.get(Agent, conversation.agent_id)
        assert agent is not None
        await lifecycle.team_reply(session, conversation, agent, "Hello, this is Sam.")


async def _hand_back(hf: Handoff, chat: str) -> None:
    async with hf.transaction() as session:
        conversation = await repo.conversation_for_update(session, chat)
        escalation = await repo.latest_escalation(session, chat)
        assert conversation is not None and escalation is not None
        await lifecycle.hand_back(session, conversation, escalation, HandbackReason.SOLVED)


async def test_the_sql_filter_is_stage_of(hf: Handoff) -> None:
    waiting, answered, handed_back, again = [await open_chat(hf) for _ in range(4)]
    for chat in (waiting, answered, handed_back, again):
        await say(hf, chat, ASK_FOR_A_PERSON)
    await _answer(hf, answered)
    for chat in (handed_back, again):
        await _hand_back(hf, chat)
    await say(hf, again, ASK_FOR_A_PERSON)  # a second stretch beside the solved first one

    async with hf.reading() as session:
        rows = (await session.execute(select(Escalation, Conversation).join(Conversation))).all()
        in_sql = set(
            await session.scalars(
                select(Escalation.id).join(Conversation).where(repo.OPEN_HUMAN_STRETCH)
            )
        )
        waiting_in_sql = set(
            await session.scalars(
                select(Escalation.id).join(Conversation).where(repo.WAITING_STRETCH)
            )
        )
    stages = {
        escalation.id: stage_of(conversation, escalation) for escalation, conversation in rows
    }
    assert set(stages.values()) == {Stage.WAITING, Stage.WITH_HUMAN, Stage.BOT}
    assert in_sql == {id for id, stage in stages.items() if stage in HUMAN_STAGES}
    assert waiting_in_sql == {id for id, stage in stages.items() if stage == Stage.WAITING}
    assert [(await _stage(hf, chat)) for chat in (waiting, answered, handed_back, again)] == [
        Stage.WAITING,
        Stage.WITH_HUMAN,
        Stage.BOT,
        Stage.WAITING,
    ]


async def _stage(hf: Handoff, chat: str) -> Stage:
    return stage_of(*await _latest(hf, chat))


async def test_a_request_held_for_an_email_is_its_own_stage(hf: Handoff) -> None:
    chat = await open_chat(hf, email=None)
    await say(hf, chat, ASK_FOR_A_PERSON)
    async with hf.reading() as session:
        conversation = await session.get(Conversation, chat)
        escalation = await repo.latest_escalation(session, chat)
    assert conversation is not None and escalation is None
    assert stage_of(conversation, escalation) == Stage.ASKING_FOR_EMAIL
