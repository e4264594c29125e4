"""The admin's Escalate to Human action, as the core uses it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from handoff.domain.conversation import Channel
from handoff.domain.hours import BusinessHours
from handoff.domain.language import N_

ESCALATE_TO_HUMAN = "escalate_to_human"

DEFAULT_SENSITIVE_TOPICS: tuple[str, ...] = ("billing", "refunds", "security", "account access")

DEFAULT_HANDOFF_MESSAGE = N_(
    "I'm connecting you with a member of our support team. They can see this conversation, "
    "so you won't need to repeat yourself. You'll get their reply right here in this chat."
)

# How long a user waits for a first human answer before they are offered the AI or an email.
DEFAULT_WAIT_TIMEOUT_SECONDS = 300
MAX_WAIT_TIMEOUT_SECONDS = 7 * 24 * 3600
MAX_INACTIVITY_TIMEOUT_SECONDS = 30 * 24 * 3600

# The channels' own words (their adapters' `place`) joined, or none covered.
NO_PLACE = N_("our other support channels")
EITHER_PLACE = N_("{first} or {second}")
# What the AI says when the admin left `alternative_message` empty.
DEFAULT_ALTERNATIVE_MESSAGE = N_(
    "I can't bring a person from our support team into this conversation here, "
    "but they can help you through {where}."
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
    # What the AI says on the agent's other channels instead of escalating (None: a default).
    alternative_message: str | None = None
    # When people are at work; None means always.
    business_hours: BusinessHours | None = None
    # None or 0 turns each timer off.
    wait_timeout_seconds: int | None = DEFAULT_WAIT_TIMEOUT_SECONDS
    inactivity_timeout_seconds: int | None = None

    def covers(self, channel: Channel) -> bool:
        return self.enabled and channel in self.channels
