"""Where a conversation stands in its handoff, read from the state the transitions write."""

from __future__ import annotations

from enum import StrEnum

from handoff.domain import EscalationStatus, Owner
from handoff.store.models import Conversation, Escalation


class Stage(StrEnum):
    """The stage of a conversation, seen from one of its escalations (usually the latest)."""

    BOT = "bot"  # the AI answers
    ASKING_FOR_EMAIL = "asking_for_email"  # the AI holds a request for a person until it has one
    WAITING = "waiting"  # the team owns this stretch and nobody has answered yet
    WITH_HUMAN = "with_human"  # a person has answered in this stretch


# The stages of an open human stretch; `store/repositories.py:OPEN_HUMAN_STRETCH` is the same
# test in SQL, over an escalation row joined to its conversation.
HUMAN_STAGES = frozenset({Stage.WAITING, Stage.WITH_HUMAN})


def stage_of(conversation: Conversation, escalation: Escalation | None) -> Stage:
    """Return the conversation's stage; an escalation of a stretch that is over (or of none)
    leaves it with the AI, asking for an email or not."""
    if (
        escalation is not None
        and conversation.owner == Owner.HUMAN
        and escalation.stretch == conversation.stretch
        and escalation.status != EscalationStatus.SOLVED
    ):
        return Stage.WAITING if escalation.first_reply_at is None else Stage.WITH_HUMAN
    if conversation.pending_escalation is not None:
        return Stage.ASKING_FOR_EMAIL
    return Stage.BOT
