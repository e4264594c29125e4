"""The service with an LLM configured, against a fake server over real HTTP: the model answers,
its tool call escalates, the local safety net holds, and a failing model falls back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from sqlalchemy import select

from handoff.service import conversations
from handoff.service.jobs import build_worker
from handoff.service.runtime import Handoff
from handoff.store.models import Escalation
from tests.fakes.openai_server import FakeOpenAI, answer, server_error, tool_call
from tests.service.support import open_chat, say


async def escalation(hf: Handoff) -> Escalation:
    async with hf.transaction() as session:
        return (await session.scalars(select(Escalation))).one()


async def test_model_answers(hf: Handoff, fake: FakeOpenAI) -> None:
    chat = await open_chat(hf)
    fake.push(answer("We support Chrome, per the KB."))
    reply = await say(hf, chat, "Which browsers do you support?")
    assert reply.messages[1]["text"] == "We support Chrome, per the KB."
    body = fake.chat_requests[0]
    assert "Chrome" in body["messages"][0]["content"]
    assert body["tools"][0]["function"]["name"]


async def test_tool_call_escalates(hf: Handoff, fake: FakeOpenAI) -> None:
    chat = await open_chat(hf)
    fake.push(
        tool_call("Escalate_To_Human", {"reason": "billing dispute", "summary": "Charged twice."})
    )
    reply = await say(hf, chat, "I was charged twice this month")
    assert reply.conversation["owner"] == "human"
    e = await escalation(hf)
    assert e.reasons[0] == "llm_tool_call"
    assert e.summary.startswith("AI summary: Charged twice.")
    assert "billing dispute" in e.evidence[0]["detail"]


async def test_explicit_request_beats_chatty_model(hf: Handoff, fake: FakeOpenAI) -> None:
    chat = await open_chat(hf)
    fake.push(
        answer("I can help you with that myself!"), answer("The customer asked for a person.")
    )
    reply = await say(hf, chat, "Let me talk to a person please")
    assert reply.conversation["owner"] == "human"  # at once: the summary is not waited for
    e = await escalation(hf)
    assert e.reasons[0] == "explicit_request"
    assert not e.summary.startswith("AI summary")
    # Creating the ticket asks the model for a summary, outside the message's transaction.
    assert await build_worker(hf).run_once()
    e = await escalation(hf)
    assert e.summary.startswith("AI summary: The customer asked for a person.")
    assert "Let me talk to a person please" in str(fake.chat_requests[-1]["messages"])


async def test_model_down_falls_back(hf: Handoff, fake: FakeOpenAI) -> None:
    chat = await open_chat(hf)
    fake.push(server_error(), server_error())
    reply = await say(hf, chat, "Which browsers do you support?")
    assert "Chrome" in reply.messages[1]["text"]
    # The local explicit request still escalates, with the extractive summary.
    reply = await say(hf, chat, "Let me talk to a person please")
    assert reply.conversation["owner"] == "human"
    assert len(fake.requests) == 2  # cooling down: the second message did not wait on the model
    e = await escalation(hf)
    assert e.reasons[0] == "explicit_request"
    assert await build_worker(hf).run_once()  # the model is still down: the ticket is made
    e = await escalation(hf)
    assert not e.summary.startswith("AI summary")
    assert e.status == "open"


async def test_the_model_is_asked_before_the_message_transaction(
    patient_hf: Handoff, fake: FakeOpenAI
) -> None:
    hf = patient_hf
    chat = await open_chat(hf)
    fake.push(answer("We support Chrome.", delay=1.5))  # the model takes its time
    slow = asyncio.create_task(say(hf, chat, "Which browsers do you support?"))
    for _ in range(250):  # until the model has the question
        if fake.chat_requests:
            break
        await asyncio.sleep(0.02)
    # Meanwhile others write: on SQLite a held transaction would block this until the answer.
    other = await open_chat(hf)
    assert other and not slow.done()
    reply = await slow
    assert reply.messages[1]["text"] == "We support Chrome."
    assert len(fake.chat_requests) == 1


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out waiting")


async def test_a_draft_overtaken_by_another_message_is_asked_again_with_no_transaction_open(
    patient_hf: Handoff, fake: FakeOpenAI
) -> None:
    hf = patient_hf
    chat = await open_chat(hf)
    fake.push(
        answer("Draft for the first question.", delay=1.0),
        answer("Hello there!"),
        answer("Chrome, Firefox and Safari.", delay=3.0),  # the second ask takes its time
    )
    first = asyncio.create_task(say(hf, chat, "Which browsers do you support?"))
    await until(lambda: len(fake.chat_requests) == 1)
    await say(hf, chat, "hello")  # lands while the model drafts: the draft no longer fits
    await until(lambda: len(fake.chat_requests) == 3)
    # On SQLite a transaction held across the second ask would block this write 3 s.
    other = await asyncio.wait_for(open_chat(hf), 1.0)
    assert other and not first.done()
    reply = await first
    assert reply.messages[1]["text"] == "Chrome, Firefox and Safari."
    # The model saw the message that overtook the draft.
    assert "hello" in str(fake.chat_requests[-1]["messages"])


async def test_a_stale_draft_is_refused_in_the_transaction_and_asked_again_outside(
    hf: Handoff, fake: FakeOpenAI
) -> None:
    chat = await open_chat(hf)
    fake.push(answer("Draft for the first question."))
    draft = await conversations.draft_reply(hf, chat, "Which browsers do you support?")
    assert draft is not None and draft.work.reply is not None
    fake.push(answer("Hello there!"))
    await say(hf, chat, "hello")  # lands first: the draft no longer fits
    with pytest.raises(conversations.Stale):
        async with hf.transaction() as session:
            await conversations.receive_message(
                hf, session, chat, "Which browsers do you support?", draft=draft
            )
    fake.push(answer("Chrome, Firefox and Safari."))
    reply = await say(hf, chat, "Which browsers do you support?")
    assert reply.messages[1]["text"] == "Chrome, Firefox and Safari."
    assert len(fake.chat_requests) == 3
    # The model saw the message that overtook the draft.
    assert "hello" in str(fake.chat_requests[-1]["messages"])


async def test_no_draft_while_a_person_owns_the_conversation(hf: Handoff, fake: FakeOpenAI) -> None:
    chat = await open_chat(hf)
    fake.push(answer("unused"))
    await say(hf, chat, "Let me talk to a person please")
    asked = len(fake.chat_requests)
    assert await conversations.draft_reply(hf, chat, "are you there?") is None
    assert len(fake.chat_requests) == asked
