"""Plain types shared by every part: no framework, no database."""

from handoff.domain.action import (
    DEFAULT_HANDOFF_MESSAGE,
    DEFAULT_SENSITIVE_TOPICS,
    ESCALATE_TO_HUMAN,
    ActionConfig,
)
from handoff.domain.conversation import MAX_MESSAGE_CHARS, Channel, Contact, Message, Owner, Role
from handoff.domain.decision import Answer, Decision, DecisionContext, Evidence, Reason
from handoff.domain.ticket import (
    NATIVE,
    PLATFORMS,
    EscalationStatus,
    HandbackReason,
    Priority,
    TicketEvent,
    TicketEventKind,
    TicketPacket,
    TicketRef,
)

__all__ = [
    "DEFAULT_HANDOFF_MESSAGE",
    "DEFAULT_SENSITIVE_TOPICS",
    "ESCALATE_TO_HUMAN",
    "MAX_MESSAGE_CHARS",
    "NATIVE",
    "PLATFORMS",
    "ActionConfig",
    "Answer",
    "Channel",
    "Contact",
    "Decision",
    "DecisionContext",
    "EscalationStatus",
    "Evidence",
    "HandbackReason",
    "Message",
    "Owner",
    "Priority",
    "Reason",
    "Role",
    "TicketEvent",
    "TicketEventKind",
    "TicketPacket",
    "TicketRef",
]
