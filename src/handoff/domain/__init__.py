"""Plain types shared by every part: no framework, no database."""

from handoff.domain.action import (
    DEFAULT_HANDOFF_MESSAGE,
    DEFAULT_SENSITIVE_TOPICS,
    DEFAULT_WAIT_TIMEOUT_SECONDS,
    ESCALATE_TO_HUMAN,
    MAX_INACTIVITY_TIMEOUT_SECONDS,
    MAX_WAIT_TIMEOUT_SECONDS,
    ActionConfig,
)
from handoff.domain.conversation import (
    MAX_MESSAGE_CHARS,
    Channel,
    Contact,
    Message,
    Owner,
    Role,
)
from handoff.domain.decision import (
    REASON_DESCRIPTIONS,
    REASON_TITLES,
    Answer,
    Decision,
    DecisionContext,
    Evidence,
    Reason,
)
from handoff.domain.hours import BusinessHours, HoursError
from handoff.domain.language import N_, Language
from handoff.domain.ticket import (
    NATIVE,
    PLATFORMS,
    EscalationStatus,
    HandbackReason,
    HumanStretch,
    Priority,
    TicketEvent,
    TicketEventKind,
    TicketPacket,
    TicketRef,
)

__all__ = [
    "DEFAULT_HANDOFF_MESSAGE",
    "DEFAULT_SENSITIVE_TOPICS",
    "DEFAULT_WAIT_TIMEOUT_SECONDS",
    "ESCALATE_TO_HUMAN",
    "MAX_INACTIVITY_TIMEOUT_SECONDS",
    "MAX_MESSAGE_CHARS",
    "MAX_WAIT_TIMEOUT_SECONDS",
    "NATIVE",
    "N_",
    "PLATFORMS",
    "REASON_DESCRIPTIONS",
    "REASON_TITLES",
    "ActionConfig",
    "Answer",
    "BusinessHours",
    "Channel",
    "Contact",
    "Decision",
    "DecisionContext",
    "EscalationStatus",
    "Evidence",
    "HandbackReason",
    "HoursError",
    "HumanStretch",
    "Language",
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
