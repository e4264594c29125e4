"""The human stretch of a conversation: the user waits, writes to the team, may go back to the
AI, and the stretch ends when the ticket is solved, the user leaves the queue or nobody writes."""

from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncSession

from handoff.domain import (
    EscalationStatus,
    HandbackReason,
    Role,
)
from handoff.service.errors import NotFound
from handoff.service.i18n import say
from handoff.service.lifecycle.stages import HUMAN_STAGES, Stage, stage_of
from handoff.service.lifecycle.transitions import drop_escalation_request, hand_back
from handoff.service.posting import EMAIL, Reply, Turn, post_message, reply_of
from handoff.service.sinks import sink_for
from handoff.service.wording import (
    BACK_TO_BOT_CANCELLED_REQUEST,
    EMAIL_KEPT,
    HANDBACK_NOTES,
)
from handoff.store import repositories as repo
from handoff.store.models import (
    Agent,
    Conversation,
    Escalation,
    Message,
)

# A user who wants the AI back. Whole messages only, so "cancel my order" or "I talked to the
# bot before" stay with the human team.
_THE_AI = (
    r"(?:the\s+|your\s+|an?\s+)?"
    r"(?:ai(?:\s+assistant)?|a\.i\.?|bot|chat\s?bot|assistant|virtual\s+assistant)"
)

_POLITE = r"(?:[\s,]+(?:please|instead|again|then|now|thanks|thank\s+you))*[\s.!?]*$"

# What the wait notice tells the visitor to say, in each of the other languages, with a few
# plain variants: "volver a la IA", "revenir à l'IA", "zurück zur KI", "voltar à IA".
_THE_AI_ELSEWHERE = (
    r"(?:volver|regresar|vuelve|hablar)\s+(?:a|con)\s+(?:la\s+)?(?:ia|i\.a\.|bot|asistente)"
    r"|(?:revenir|retour(?:ner)?|parler)\s+(?:à|a|au|avec)\s+(?:l['’]\s*)?(?:ia|i\.a\.|bot|assistant)"
    r"|(?:zurück\s+zu(?:r|m)?|mit\s+de(?:r|m))\s+(?:ki|bot|assistenten)(?:\s+zurück)?"
    r"|(?:voltar|falar)\s+(?:à|a|ao|com\s+a|com\s+o)\s+(?:ia|bot|assistente)"
    r"|(?:torna(?:re)?|parlare)\s+(?:all['’]\s*|al\s+|con\s+l['’]\s*|con\s+il\s+)"
    r"(?:ia|bot|assistente)"
)

BACK_TO_BOT = re.compile(
    r"^\s*(?:(?:ok(?:ay)?|please|actually|no|oh)[\s,]+)*"
    r"(?:(?:(?:i\s+(?:want|would\s+like)|i['’]?d\s+like)\s+to|wanna|let\s+me|can\s+i|could\s+i)\s+)?"
    r"(?:(?:go|get|take\s+me|switch|bring\s+me)\s+)?"
    rf"(?:back\s+to\s+{_THE_AI}|(?:switch\s+)?(?:talk|chat|speak)\s+(?:to|with)\s+{_THE_AI}"
    rf"|(?:switch\s+)?to\s+{_THE_AI}|continue\s+with\s+{_THE_AI}){_POLITE}"
    rf"|^\s*(?:{_THE_AI_ELSEWHERE})[\s,.!?]*(?:por\s+favor|s['’]il\s+vous\s+pla[iî]t|bitte"
    r"|per\s+favore)?[\s.!?]*$",
    re.IGNORECASE,
)

# Words that cancel only while no person has answered yet: to a person, "never mind" is a reply.
CANCEL_WAIT = re.compile(
    r"^\s*(?:(?:ok(?:ay)?|oh|actually)[\s,]+)*"
    r"(?:cancel(?:\s+(?:it|that|this|the\s+request|my\s+request))?|never\s*mind|nvm|"
    r"forget\s+(?:it|about\s+it)|don['’]?t\s+bother|stop\s+waiting|i['’]?ll\s+not\s+wait)"
    + _POLITE,
    re.IGNORECASE,
)


async def human_turn(turn: Turn) -> list[Message]:
    """Handle a message while the human team owns the conversation: the AI stays silent,
    but the user may go back to it, and may leave an email while waiting."""
    escalation = await repo.latest_escalation(turn.session, turn.conversation.id)
    waiting = stage_of(turn.conversation, escalation) == Stage.WAITING
    text = turn.message.text
    if escalation is not None and (
        BACK_TO_BOT.match(text) or (waiting and CANCEL_WAIT.match(text))
    ):
        return [await end_stretch(turn.session, turn.conversation, escalation, HandbackReason.USER)]
    await sink_for(escalation).relay(turn.session, turn.conversation, turn.message)
    if waiting and escalation is not None:
        return await _keep_email(turn, escalation)
    return []


async def _keep_email(turn: Turn, escalation: Escalation) -> list[Message]:
    """Store an email the waiting user typed, note it on the ticket, and thank them."""
    found = EMAIL.search(turn.message.text)
    conversation = turn.conversation
    if found is None or conversation.contact_email:
        return []
    email = found.group(0)
    conversation.contact_email = email
    await sink_for(escalation).email_left(turn.session, conversation, email)
    return [await turn.say(Role.SYSTEM, say(conversation.language, EMAIL_KEPT, email=email))]


async def end_stretch(
    session: AsyncSession,
    conversation: Conversation,
    escalation: Escalation,
    reason: HandbackReason,
) -> Message:
    """Hand back without the team solving it (the user left the queue, or nobody wrote), and
    tell the ticket: the inbox ticket is solved with a note, an external one gets a message."""
    failed = escalation.status == EscalationStatus.FAILED
    message = await hand_back(session, conversation, escalation, reason)
    if not failed:  # a ticket that could not be made has nobody to tell
        await sink_for(escalation).stretch_ended(
            session, conversation, message, HANDBACK_NOTES[reason]
        )
    return message


async def back_to_bot(session: AsyncSession, conversation_id: str) -> Reply:
    """Give the conversation back to the AI at the user's request; asking twice is a no-op."""
    conversation = await repo.conversation_for_update(session, conversation_id)
    if conversation is None:
        raise NotFound("conversation not found")
    agent = await session.get(Agent, conversation.agent_id)
    assert agent is not None
    escalation = await repo.latest_escalation(session, conversation.id)
    stage = stage_of(conversation, escalation)
    if stage in HUMAN_STAGES and escalation is not None:
        message = await end_stretch(session, conversation, escalation, HandbackReason.USER)
        return await reply_of(session, conversation, [message])
    if stage == Stage.ASKING_FOR_EMAIL:
        # Still asking for an email: the request is dropped before any ticket exists.
        drop_escalation_request(conversation)
        said = await post_message(
            session,
            conversation,
            agent,
            Role.ASSISTANT,
            say(conversation.language, BACK_TO_BOT_CANCELLED_REQUEST),
        )
        return await reply_of(session, conversation, [said])
    return await reply_of(session, conversation, [])
