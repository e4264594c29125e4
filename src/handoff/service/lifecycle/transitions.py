"""Every change of a conversation's handoff state, each a named transition.

A transition that changes who owns the conversation, or its pending request, runs under the
conversation's row lock (`repo.conversation_for_update`, or the helpdesk webhook's
`repo.ticket_stretch_for_update`); the ticket's outcome (`ticket_opened`, `ticket_failed`)
changes only the escalation. Each runs in the caller's unit of work, which commits it with
whatever else the step wrote. The ticket side of a step stays with the caller
(`service/sinks.py`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handoff.domain import EscalationStatus, HandbackReason, Owner, Role
from handoff.service.i18n import say
from handoff.service.metrics import HANDBACKS
from handoff.service.posting import post_message, publish_state
from handoff.service.wording import (
    HANDBACK_MESSAGES,
    REOPENED,
    WAIT_CHOICES_WITH_EMAIL,
    WAIT_CHOICES_WITHOUT_EMAIL,
    WAIT_NOTICE,
)
from handoff.store import repositories as repo
from handoff.store.models import (
    Action,
    Agent,
    Conversation,
    Escalation,
    Member,
    Message,
    utcnow,
)


def ask_for_email(conversation: Conversation, request: dict[str, Any]) -> None:
    """Hold a request for a person until the user leaves an email or declines."""
    conversation.pending_escalation = request


def drop_escalation_request(conversation: Conversation) -> None:
    """Forget a held request: the user went back to the AI, or the action was switched off."""
    conversation.pending_escalation = None


async def escalate(
    session: AsyncSession,
    conversation: Conversation,
    action: Action,
    *,
    reasons: list[str],
    evidence: list[dict[str, Any]],
    subject: str,
    summary: str,
) -> Escalation:
    """Give the conversation to the human team: a pending escalation for this stretch."""
    escalation = Escalation(
        conversation_id=conversation.id,
        stretch=conversation.stretch,
        action_id=action.id,
        platform=action.platform,
        status=EscalationStatus.PENDING,
        reasons=reasons,
        evidence=evidence,
        subject=subject,
        summary=summary,
    )
    conversation.owner = Owner.HUMAN
    conversation.pending_escalation = None
    await repo.add(session, escalation)
    return escalation


def ticket_opened(escalation: Escalation) -> None:
    """The ticket exists; a stretch handed back before it did stays solved."""
    if escalation.status in (EscalationStatus.PENDING, EscalationStatus.FAILED):
        escalation.status = EscalationStatus.OPEN
        escalation.last_error = None


def ticket_failed(escalation: Escalation, error: str) -> None:
    """The ticket could not be made after every attempt."""
    escalation.status = EscalationStatus.FAILED
    escalation.last_error = error


async def team_reply(
    session: AsyncSession,
    conversation: Conversation,
    agent: Agent,
    text: str,
    *,
    author: Member | None = None,
    author_name: str | None = None,
) -> Message:
    """Post a person's answer to the user; the stretch's first answer ends the wait."""
    message = await post_message(
        session,
        conversation,
        agent,
        Role.HUMAN_AGENT,
        text,
        author=author,
        author_name=author_name,
    )
    escalation = await repo.latest_escalation(session, conversation.id)
    if (
        escalation is not None
        and escalation.stretch == conversation.stretch
        and escalation.first_reply_at is None
    ):
        escalation.first_reply_at = message.created_at
        await publish_state(session, conversation, agent, escalation)
    return message


async def hand_back(
    session: AsyncSession,
    conversation: Conversation,
    escalation: Escalation,
    reason: HandbackReason,
) -> Message:
    """Return the conversation to the AI, close the stretch, and say so to the user."""
    agent = await session.get(Agent, conversation.agent_id)
    assert agent is not None
    escalation.status = EscalationStatus.SOLVED
    escalation.solved_at = utcnow()
    escalation.handback_reason = reason.value
    conversation.owner = Owner.BOT
    conversation.stretch += 1
    text = say(conversation.language, HANDBACK_MESSAGES[reason])
    message = await post_message(session, conversation, agent, Role.SYSTEM, text)
    await publish_state(session, conversation, agent, escalation)
    HANDBACKS.labels(reason=reason.value).inc()
    return message


async def reopen(
    session: AsyncSession, conversation: Conversation, escalation: Escalation
) -> Message:
    """Give the conversation back to the team on its latest, solved escalation, and say so.

    The escalation moves to the conversation's current stretch (stretches only count up), so
    the conversation is in a human stretch again with the team's earlier answers kept.
    """
    agent = await session.get(Agent, conversation.agent_id)
    assert agent is not None
    escalation.stretch = conversation.stretch
    escalation.status = EscalationStatus.OPEN
    escalation.solved_at = None
    escalation.handback_reason = None
    conversation.owner = Owner.HUMAN
    conversation.pending_escalation = None
    message = await post_message(
        session, conversation, agent, Role.SYSTEM, say(conversation.language, REOPENED)
    )
    await publish_state(session, conversation, agent, escalation)
    return message


async def claim_handback(
    session: AsyncSession, escalation: Escalation, reason: HandbackReason
) -> bool:
    """Take the right to end the stretch before `hand_back`; False when a solve or another
    worker came first. Several workers sweep the same timers: only one may end a stretch."""
    if not await repo.claim_handback(session, escalation.id, reason):
        return False
    await session.refresh(escalation)
    return True


async def notify_waiting(
    session: AsyncSession, conversation: Conversation, escalation: Escalation, now: datetime
) -> bool:
    """Tell a user nobody has answered yet that their place is kept, once per stretch;
    False when the notice went out already or a person answered meanwhile."""
    if not await repo.claim_wait_notice(session, escalation.id, now):
        return False
    await session.refresh(escalation)
    agent = await session.get(Agent, conversation.agent_id)
    assert agent is not None
    email, language = conversation.contact_email, conversation.language
    choices = (
        say(language, WAIT_CHOICES_WITH_EMAIL, email=email)
        if email
        else say(language, WAIT_CHOICES_WITHOUT_EMAIL)
    )
    await post_message(
        session, conversation, agent, Role.SYSTEM, say(language, WAIT_NOTICE) + choices
    )
    return True
