"""Request bodies of the public API, validated at the edge."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from handoff.domain import MAX_MESSAGE_CHARS, PLATFORMS, Channel

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContactIn(Strict):
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    email: EmailStr | None = None
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] | None = None
    external_id: Annotated[str, StringConstraints(max_length=200)] | None = None


class ConversationIn(Strict):
    channel: Channel = Field(
        description="Where the user is talking: widget, help_page, whatsapp, api."
    )
    contact: ContactIn | None = None


class MessageIn(Strict):
    text: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_MESSAGE_CHARS)
    ] = Field(description=f"The user's message, 1 to {MAX_MESSAGE_CHARS} characters.")
    client_id: Annotated[str, StringConstraints(max_length=100)] | None = Field(
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


class AgentIn(Strict):
    workspace_id: str
    name: ShortText
    channels: list[Channel] = Field(min_length=1)
    greeting: Annotated[str, StringConstraints(max_length=1000)] | None = None


class KnowledgeEntryIn(Strict):
    question: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)
    ]
    answer: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]


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


class ReplyIn(Strict):
    text: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_MESSAGE_CHARS)
    ]


class AssignIn(Strict):
    member_id: str | None


class IntegrationIn(Strict):
    platform: str = Field(description="zendesk, freshdesk, intercom, hubspot, webhook, ...")
    credentials: dict[str, Any] = Field(
        default_factory=dict,
        description="The platform's connect form (see each platform's fields in the README); "
        "stored encrypted, never returned.",
    )
