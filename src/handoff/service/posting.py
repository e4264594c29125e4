"""Posting into a conversation: one message stored and published, the state the user sees."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handoff import domain
from handoff.domain import (
    Role,
)
from handoff.service import delivery, events
from handoff.service.runtime import Handoff
from handoff.service.views import (
    conversation_state_json,
    message_json,
)
from handoff.store import repositories as repo
from handoff.store.models import (
    Agent,
    Conversation,
    Escalation,
    Member,
    Message,
    utcnow,
)

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


@dataclass(frozen=True, slots=True)
class Reply:
    """What a channel gets back for one inbound message."""

    messages: list[dict[str, Any]]
    conversation: dict[str, Any]


@dataclass(slots=True)
class Turn:
    """One inbound user message, handled inside the caller's unit of work."""

    hf: Handoff
    session: AsyncSession
    conversation: Conversation
    agent: Agent
    history: Sequence[Message]  # the conversation before this message
    message: Message  # the user's message, stored already

    async def say(self, role: Role, text: str, *, confidence: float | None = None) -> Message:
        """Post a message from our side into the conversation."""
        return await post_message(
            self.session, self.conversation, self.agent, role, text, confidence=confidence
        )


async def reply_of(
    session: AsyncSession, conversation: Conversation, new: Sequence[Message]
) -> Reply:
    escalation = await repo.latest_escalation(session, conversation.id)
    return Reply(
        messages=[message_json(m) for m in new],
        conversation=conversation_state_json(conversation, escalation),
    )


async def post_message(
    session: AsyncSession,
    conversation: Conversation,
    agent: Agent,
    role: Role,
    text: str,
    *,
    author: Member | None = None,
    author_name: str | None = None,
    confidence: float | None = None,
    client_id: str | None = None,
) -> Message:
    """Store a message and publish it to the visitor, and to the team while a ticket is open."""
    message = Message(
        conversation_id=conversation.id,
        role=role,
        text=text,
        author_id=author.id if author else None,
        author_name=author_name,
        confidence=confidence,
        client_id=client_id,
    )
    await repo.add(session, message)
    conversation.updated_at = utcnow()
    ticket = await repo.open_ticket_of(session, conversation.id)
    await events.publish(
        session,
        workspace_id=agent.workspace_id,
        conversation_id=conversation.id,
        type="message",
        data={"message": message_json(message, author), "ticket_id": ticket.id if ticket else None},
        to_visitor=True,
        to_team=ticket is not None,
    )
    if role != Role.USER:
        # On a live channel the event above is the delivery; a channel with an outside API
        # gets a delivery job in this transaction.
        await delivery.queue(session, conversation, message)
    return message


async def publish_state(
    session: AsyncSession, conversation: Conversation, agent: Agent, escalation: Escalation | None
) -> None:
    """Tell the visitor's stream who owns the conversation now."""
    await events.publish(
        session,
        workspace_id=agent.workspace_id,
        conversation_id=conversation.id,
        type="conversation",
        data=conversation_state_json(conversation, escalation),
        to_visitor=True,
        to_team=False,
    )


async def publish_escalation(session: AsyncSession, escalation: Escalation) -> None:
    """Tell the visitor's stream about a change of the escalation (its ticket, its failure)."""
    conversation = await session.get(Conversation, escalation.conversation_id)
    agent = await session.get(Agent, conversation.agent_id) if conversation else None
    if conversation is not None and agent is not None:
        await publish_state(session, conversation, agent, escalation)


def to_domain(messages: Sequence[Message]) -> list[domain.Message]:
    return [
        domain.Message(
            id=m.id,
            role=Role(m.role),
            text=m.text,
            created_at=m.created_at,
            confidence=m.confidence,
        )
        for m in messages
    ]
