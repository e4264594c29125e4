"""Conversations as the core sees them: who speaks, on which channel, who owns the reply."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Owner(StrEnum):
    """Who answers the user: the AI or the human team."""

    BOT = "bot"
    HUMAN = "human"


class Role(StrEnum):
    """Author of a message in the transcript."""

    USER = "user"
    ASSISTANT = "assistant"
    HUMAN_AGENT = "human_agent"
    SYSTEM = "system"


class Channel(StrEnum):
    """Where the user talks to the agent; each has its adapter in `handoff.channels`."""

    WIDGET = "widget"
    HELP_PAGE = "help_page"
    WHATSAPP = "whatsapp"
    API = "api"


MAX_MESSAGE_CHARS = 10_000


@dataclass(frozen=True, slots=True)
class Contact:
    """What we know about the user."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    external_id: str | None = None

    @property
    def display_name(self) -> str:
        return self.name or self.email or self.phone or "Visitor"


@dataclass(frozen=True, slots=True)
class Message:
    """One line of the transcript."""

    role: Role
    text: str
    created_at: datetime
    id: int | None = None
    # Retrieval confidence of an assistant answer; None for every other message.
    confidence: float | None = None
    meta: dict[str, object] = field(default_factory=dict)
