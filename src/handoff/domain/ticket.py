"""Tickets as the helpdesks see them: the packet we send and the reference we get back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from handoff.domain.conversation import Channel, Contact, Message
from handoff.domain.decision import Reason

NATIVE = "native"
PLATFORMS: tuple[str, ...] = (
    NATIVE,
    "zendesk",
    "salesforce",
    "intercom",
    "zoho_desk",
    "freshdesk",
    "hubspot",
    "help_scout",
    "webhook",
)


class EscalationStatus(StrEnum):
    """Life of one escalation, from the decision to the handback."""

    PENDING = "pending"  # written with its outbox job; ticket not created yet
    OPEN = "open"  # ticket exists, the human team owns the conversation
    SOLVED = "solved"  # ticket solved, conversation handed back to the AI
    FAILED = "failed"  # the ticket could not be created after every retry


class HandbackReason(StrEnum):
    """Why the AI got the conversation back."""

    SOLVED = "solved"  # the ticket was solved or closed
    USER = "user"  # the user went back to the AI instead of waiting
    INACTIVITY = "inactivity"  # nobody wrote for the action's inactivity timeout


@dataclass(frozen=True, slots=True)
class HumanStretch:
    """A finished stretch of the conversation that the human team owned."""

    started_at: datetime
    ended_at: datetime
    reason: HandbackReason


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


@dataclass(frozen=True, slots=True)
class TicketPacket:
    """Everything a helpdesk needs to open a ticket for one escalation."""

    idempotency_key: str  # stable per escalation; connectors send it as external id
    subject: str
    summary: str
    reasons: tuple[Reason, ...]
    transcript: Sequence[Message]
    contact: Contact
    channel: Channel
    conversation_url: str
    priority: Priority = Priority.NORMAL
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TicketRef:
    """Where the ticket lives on the platform."""

    id: str
    url: str


class TicketEventKind(StrEnum):
    """What a helpdesk told us about one of our tickets."""

    REPLY = "reply"  # a public reply from a human agent: goes to the user
    SOLVED = "solved"  # solved or closed: the conversation goes back to the AI


@dataclass(frozen=True, slots=True)
class TicketEvent:
    """One event from a helpdesk webhook, already verified and parsed.

    Connectors return only what matters: internal notes and our own echoes (the user's
    messages we added to the ticket) are dropped by the connector, never returned.
    """

    kind: TicketEventKind
    ticket_id: str
    event_id: str  # unique per platform event: redeliveries carry the same one
    text: str = ""
    author_name: str | None = None

    @classmethod
    def reply(
        cls, ticket_id: str, event_id: str, text: str, author_name: str | None = None
    ) -> TicketEvent:
        """A public reply from a human agent, for the user."""
        return cls(TicketEventKind.REPLY, ticket_id, event_id, text, author_name)

    @classmethod
    def solved(cls, ticket_id: str, event_id: str) -> TicketEvent:
        """The ticket is solved or closed: the conversation goes back to the AI."""
        return cls(TicketEventKind.SOLVED, ticket_id, event_id)
