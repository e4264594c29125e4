"""Request bodies of the public API, validated at the edge."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    JsonValue,
    StrictBool,
    StrictInt,
    StringConstraints,
    field_validator,
)

from handoff.domain import (
    DEFAULT_WAIT_TIMEOUT_SECONDS,
    MAX_INACTIVITY_TIMEOUT_SECONDS,
    MAX_MESSAGE_CHARS,
    MAX_WAIT_TIMEOUT_SECONDS,
    PLATFORMS,
    Channel,
    Language,
    Reason,
)
from handoff.service.channels import open_to_callers

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# An admin's text said to visitors (a handoff or alternative message in one language).
MessageText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL's text cannot hold U+0000; refusing it here keeps both databases alike.
        if _holds_nul(value):
            raise ValueError("text must not contain the NUL character (U+0000)")
        return value


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple | set | frozenset):
        return any(_holds_nul(item) for item in value)
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    return False


class ContactIn(Strict):
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    email: EmailStr | None = None
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] | None = None
    external_id: Annotated[str, StringConstraints(max_length=200)] | None = None


# The schema lists the channels a public caller may open as its enum.
CALLER_CHANNELS: list[JsonValue] = [*open_to_callers()]


class ConversationIn(Strict):
    channel: str = Field(
        description="Where the user is talking. Only a channel read through the live events "
        "may be opened here; one with an outside API (WhatsApp) is opened by its own verified "
        "webhook, never by this call.",
        json_schema_extra={"enum": CALLER_CHANNELS},
    )
    contact: ContactIn | None = None
    lang: Language | None = Field(
        default=None,
        description="The page's language (en, es, fr, de, pt, it): the service writes to the "
        "visitor in it whatever they type. Without it, the visitor's messages choose.",
    )

    @field_validator("channel")
    @classmethod
    def _open_to_callers(cls, value: str) -> str:
        allowed = open_to_callers()
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return value


class MessageIn(Strict):
    text: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_MESSAGE_CHARS)
    ] = Field(description=f"The user's message, 1 to {MAX_MESSAGE_CHARS} characters.")
    client_id: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = Field(
        default=None,
        description="The channel's id for this message; a resend with it is stored once.",
    )


class LoginIn(Strict):
    email: EmailStr
    password: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class WorkspaceIn(Strict):
    name: ShortText


class MemberIn(Strict):
    email: EmailStr
    name: ShortText
    role: Annotated[str, Field(pattern="^(admin|agent)$")] = "agent"
    password: Annotated[str, StringConstraints(min_length=8, max_length=200)] | None = None


class WorkspaceUpdateIn(Strict):
    name: ShortText | None = None
    assignment: str | None = Field(
        default=None,
        description="How the built-in inbox assigns new tickets: manual (default), "
        "round_robin or least_loaded.",
    )


class MemberUpdateIn(Strict):
    avatar_url: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = (
        Field(default=None, description="An http(s) image URL shown beside the member's replies.")
    )
    away: StrictBool | None = Field(default=None, description="Away members get no new tickets.")
    max_open_tickets: Annotated[int, Field(ge=0, le=10_000)] | None = Field(
        default=None,
        description="Most open tickets automatic assignment gives the member; null, no cap.",
    )
    role: Annotated[str, Field(pattern="^(admin|agent)$")] | None = Field(
        default=None, description="`admin` (Settings and the inbox) or `agent` (the inbox)."
    )
    disabled: StrictBool | None = Field(
        default=None,
        description="A disabled member cannot sign in, their sessions end and their open "
        "tickets go back to Unassigned.",
    )


class PasswordIn(Strict):
    password: Annotated[str, StringConstraints(min_length=8, max_length=200)] | None = Field(
        default=None, description="The new password; omitted, one is generated and returned once."
    )


class AwayIn(Strict):
    away: StrictBool


class WidgetIn(Strict):
    """The widget's colours (#rgb or #rrggbb) and texts; omitted ones use the defaults."""

    primary_color: str | None = Field(default=None, description="Accent colour, e.g. #4f46e5.")
    text_color: str | None = Field(default=None, description="Text on the accent, e.g. #ffffff.")
    title: str | None = Field(default=None, description="Header title, at most 60 characters.")
    subtitle: str | None = Field(default=None, description="Line under the title, at most 120.")
    launcher_label: str | None = Field(default=None, description="Launcher's name, at most 40.")
    placeholder: str | None = Field(default=None, description="Message box hint, at most 100.")
    back_to_ai_label: str | None = Field(
        default=None, description="The back-to-the-AI button, at most 40."
    )
    translations: dict[Language, dict[str, str]] | None = Field(
        default=None,
        description="The texts (title, subtitle, launcher_label, placeholder, "
        "back_to_ai_label) in other languages: {language: {text: value}}, each within the "
        "same limits.",
    )


Greeting = Annotated[str, StringConstraints(max_length=1000)]
GREETINGS_DESCRIPTION = (
    "The greeting in other languages, {language: text} (en, es, fr, de, pt, it): a visitor "
    "whose conversation speaks one of them gets it instead of `greeting`."
)


class AgentIn(Strict):
    workspace_id: str
    name: ShortText
    channels: list[Channel] = Field(min_length=1)
    greeting: Greeting | None = None
    greetings: dict[Language, MessageText] | None = Field(
        default=None, description=GREETINGS_DESCRIPTION
    )


class AgentUpdateIn(Strict):
    name: ShortText | None = None
    greeting: Greeting | None = Field(
        default=None, description="The assistant's first message; empty or null, none."
    )
    greetings: dict[Language, MessageText] | None = Field(
        default=None, description=GREETINGS_DESCRIPTION
    )


class KnowledgeEntryIn(Strict):
    # The lengths are bounded by settings, checked by the service (a 422 naming the entry).
    question: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] = Field(
        description="A question as users ask it; at most HANDOFF_KNOWLEDGE_MAX_QUESTION_CHARS "
        "characters (default 1000)."
    )
    answer: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] = Field(
        description="The answer to give; at most HANDOFF_KNOWLEDGE_MAX_ANSWER_CHARS characters "
        "(default 5000)."
    )


class ActionIn(Strict):
    kind: Annotated[str, Field(pattern="^escalate_to_human$")] = "escalate_to_human"
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] = (
        Field(description="Identifier-like, unique per agent; the tool name an LLM sees.")
    )
    platform: str = Field(description=f"A connected integration: one of {', '.join(PLATFORMS)}.")
    when_to_use: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)
    ]
    channels: list[Channel] = Field(min_length=1)
    enabled: bool = False
    handoff_message: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None
    ) = None
    handoff_messages: dict[Language, MessageText] | None = Field(
        default=None,
        description='`handoff_message` per visitor language, e.g. {"es": "Te paso con..."}; a '
        "language without one gets `handoff_message`, else the default in that language.",
    )
    ask_for_email: bool = Field(
        default=True, description="Ask an anonymous user for an email first."
    )
    sensitive_topics: list[ShortText] | None = Field(
        default=None,
        description="Topics that always go to a person; "
        "default billing, refunds, security, account access.",
    )
    thresholds: dict[str, float] = Field(
        default_factory=dict,
        description="Overrides of the decider's thresholds by name, e.g. "
        '{"topic_example": 0.65}; see the README for each one and its default.',
    )
    trigger_examples: list[Annotated[str, StringConstraints(max_length=500)]] = Field(
        default_factory=list
    )
    alternative_message: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None
    ) = Field(
        default=None,
        description="What the AI says instead of escalating on the agent's channels this action "
        "does not cover (an email address, a phone number); empty gives a default.",
    )
    alternative_messages: dict[Language, MessageText] | None = Field(
        default=None,
        description="`alternative_message` per visitor language; a language without one gets "
        "`alternative_message`, else the default in that language.",
    )
    business_hours: dict[str, Any] | None = Field(
        default=None,
        description='When people answer: {"timezone": "Europe/Paris", "weekly": {"mon": '
        '[["09:00", "17:00"]], ...}, "holidays": ["2026-12-25"]}; null means always.',
    )
    wait_timeout_seconds: (
        Annotated[int, Field(strict=True, ge=0, le=MAX_WAIT_TIMEOUT_SECONDS)] | None
    ) = Field(
        default=DEFAULT_WAIT_TIMEOUT_SECONDS,
        description="Seconds without a human answer before the user is offered the AI or to "
        "leave an email; null or 0 turns it off.",
    )
    inactivity_timeout_seconds: (
        Annotated[int, Field(strict=True, ge=0, le=MAX_INACTIVITY_TIMEOUT_SECONDS)] | None
    ) = Field(
        default=None,
        description="Seconds without a message from either side before a human-owned "
        "conversation goes back to the AI; null or 0 (the default) turns it off.",
    )


class CannedReplyIn(Strict):
    title: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)
    ] = Field(description="What members pick it by, unique in the workspace.")
    body: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_MESSAGE_CHARS)
    ] = Field(
        description="The reply; `{first_name}`, `{name}`, `{email}` and `{my_name}` are "
        "filled in for the ticket."
    )


class ReplyIn(Strict):
    text: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_MESSAGE_CHARS)
    ]


class AssignIn(Strict):
    member_id: str | None


class RateLimitIn(Strict):
    calls: Annotated[StrictInt, Field(ge=1, le=10_000_000)] = Field(
        description="Calls the platform allows in `per_seconds`, as your plan documents it."
    )
    per_seconds: Annotated[float, Field(gt=0, le=7 * 86_400)] = Field(
        description="The platform's window, in seconds: 60 for a per-minute limit."
    )


class IntegrationIn(Strict):
    platform: str = Field(description="zendesk, freshdesk, intercom, hubspot, webhook, ...")
    credentials: dict[str, Any] = Field(
        default_factory=dict,
        description="The platform's connect form (see each platform's fields in the README); "
        "stored encrypted, never returned.",
    )


class TicketStatus(StrEnum):
    OPEN = "open"
    WAITING = "waiting"  # open, and nobody on the team has answered yet
    SOLVED = "solved"
    ALL = "all"


class TicketSort(StrEnum):
    NEWEST = "newest"
    OLDEST_WAITING = "oldest_waiting"  # unanswered first, longest waiting first


Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]


class TicketListIn(BaseModel):
    """The inbox list's query string. Unknown parameters are ignored, as browsers and
    proxies add their own."""

    status: TicketStatus = Field(
        TicketStatus.OPEN,
        description="open, waiting (open and not answered yet), solved or all",
    )
    assignee: Id | None = Field(None, description="me, unassigned, or a member id")
    reason: Reason | None = Field(None, description="tickets escalated for this reason")
    platform: str | None = Field(None, description="the escalation's platform (native, ...)")
    channel: Channel | None = Field(None, description="the channel the visitor wrote on")
    conversation_id: Id | None = Field(None, description="the tickets of one conversation")
    q: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = Field(
        None,
        description="words found in the contact's name or email, the subject or any message",
    )
    sort: TicketSort = Field(TicketSort.NEWEST, description="newest or oldest_waiting")
    cursor: Annotated[str, StringConstraints(max_length=1000)] | None = Field(
        None, description="`next_cursor` of the previous page, with the same filters"
    )
    limit: int = Field(50, ge=1, le=200, description="tickets per page")

    @field_validator("platform")
    @classmethod
    def _known_platform(cls, value: str | None) -> str | None:
        if value is not None and value not in PLATFORMS:
            raise ValueError(f"must be one of {', '.join(PLATFORMS)}")
        return value

    @field_validator("q", mode="after")
    @classmethod
    def _searchable(cls, value: str | None) -> str | None:
        if value is not None and _holds_nul(value):
            raise ValueError("text must not contain the NUL character (U+0000)")
        return value or None
