"""The admin's Escalate to Human action, as the core uses it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from handoff.domain.conversation import Channel

ESCALATE_TO_HUMAN = "escalate_to_human"

DEFAULT_SENSITIVE_TOPICS: tuple[str, ...] = ("billing", "refunds", "security", "account access")

DEFAULT_HANDOFF_MESSAGE = (
    "I'm connecting you with a member of our support team. They can see this conversation, "
    "so you won't need to repeat yourself. You'll get their reply right here in this chat."
)


@dataclass(frozen=True, slots=True)
class ActionConfig:
    """An enabled escalate action: where the ticket goes and when to use it."""

    name: str
    platform: str
    when_to_use: str
    channels: frozenset[Channel]
    enabled: bool = True
    handoff_message: str = DEFAULT_HANDOFF_MESSAGE
    ask_for_email: bool = True
    sensitive_topics: tuple[str, ...] = DEFAULT_SENSITIVE_TOPICS
    trigger_examples: tuple[str, ...] = field(default_factory=tuple)
    # Overrides of the decider's thresholds for this action, by name (see decide.Thresholds).
    thresholds: Mapping[str, float] = field(default_factory=dict)

    def covers(self, channel: Channel) -> bool:
        return self.enabled and channel in self.channels
