"""What the API answers: one model per JSON shape, so /openapi.json documents each route.

The service builds these shapes as dicts (`service/views.py` and the use cases); a route names
its model with `response_model=`. The models forbid extra keys, so a key added to a dict
without its field here fails the route's tests instead of vanishing from the answer. A key
that only some answers carry has a default and its route sets
`response_model_exclude_unset=True`, so that answers without it stay without it.
Times are ISO 8601 strings, as the dicts hold them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- people ----------------------------------------------------------------------------------


class MemberOut(Shape):
    id: str
    name: str
    email: str
    role: str = Field(description="`admin` or `agent`.")
    avatar_url: str | None
    away: bool
    max_open_tickets: int | None = Field(description="Cap on automatically assigned tickets.")
    disabled: bool = Field(description="Cannot sign in and gets no tickets.")


class MemberWithPasswordOut(MemberOut):
    password: str | None = Field(
        description="The generated password, shown this once; null when the request set one."
    )


class CannedReplyOut(Shape):
    id: str
    title: str
    body: str = Field(description="As saved, variables in braces.")
    text: str | None = Field(
        default=None, description="The body filled in for the ticket asked about."
    )


class CallerOut(Shape):
    """A member, or the service admin, who has no id, email or member settings."""

    id: str | None
    name: str
    email: str | None
    role: str
    avatar_url: str | None = None
    away: bool | None = None
    max_open_tickets: int | None = None
    disabled: bool | None = None


class LoginOut(Shape):
    token: str = Field(description="The inbox token: send it as a bearer header.")
    member: MemberOut


class AuthorOut(Shape):
    id: str | None = Field(description="None for a person in an external helpdesk.")
    name: str
    avatar_url: str | None


class NoteAuthorOut(Shape):
    id: str
    name: str


# --- conversations ---------------------------------------------------------------------------


class MessageOut(Shape):
    id: int
    role: str = Field(description="user, assistant, human_agent or system.")
    text: str
    created_at: str
    author: AuthorOut | None
    client_id: str | None = Field(description="The sender's own id for the message.")


class TicketLinkOut(Shape):
    id: str
    url: str | None


class EscalationOut(Shape):
    id: str
    status: str
    reasons: list[str]
    platform: str
    ticket: TicketLinkOut | None
    created_at: str
    error: str | None = Field(None, description="Why no ticket was made; the team's only.")


class ContactOut(Shape):
    name: str | None
    email: str | None
    phone: str | None
    external_id: str | None


class ConversationStateOut(Shape):
    id: str
    owner: str = Field(description="`bot` or `human`.")
    escalation: EscalationOut | None
    waiting: bool = Field(description="The team owns it and nobody has answered yet.")
    language: str = Field(description="The language the service writes to the visitor in.")


class ConversationOut(Shape):
    id: str
    agent_id: str
    channel: str
    owner: str
    contact: ContactOut
    messages: list[MessageOut]
    escalation: EscalationOut | None
    waiting: bool
    language: str = Field(description="The language the service writes to the visitor in.")


class NewConversationOut(Shape):
    id: str
    token: str = Field(description="The visitor token: it opens this conversation only.")
    messages: list[MessageOut] = Field(description="The greeting, if the agent has one.")


class ReplyOut(Shape):
    messages: list[MessageOut]
    conversation: ConversationStateOut


class PublicAgentOut(Shape):
    id: str
    name: str
    greeting: str | None
    greetings: dict[str, str] = Field(description="The greeting by language.")
    channels: list[str]
    modes: dict[str, str] = Field(
        description="The channel each mode of the chat widget opens when its page names none: "
        '{"bubble": channel, "page": channel}.'
    )
    language: str = Field(description="The workspace's default language (en, es, fr, de, pt, it).")
    labels: dict[str, dict[str, str]] = Field(
        description="The chat widget's own texts in each language: {language: {key: text}}."
    )


# --- the inbox -------------------------------------------------------------------------------


class LastMessageOut(Shape):
    role: str
    text: str
    created_at: str


class TicketOut(Shape):
    id: str
    conversation_id: str
    status: str
    subject: str
    reasons: list[str]
    summary: str
    contact: ContactOut
    channel: str
    assignee: NoteAuthorOut | None
    waiting: bool
    created_at: str
    updated_at: str
    last_message: LastMessageOut | None


class TicketCountsOut(Shape):
    """Open tickets per inbox view."""

    mine: int = Field(description="Assigned to the caller (0 for the service admin).")
    unassigned: int
    open: int
    waiting: int = Field(description="Nobody on the team has answered yet.")


class TicketPageOut(Shape):
    tickets: list[TicketOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor`, with the same filters, for the next page; null after "
        "the last page."
    )
    counts: TicketCountsOut


class NoteOut(Shape):
    id: int
    text: str
    author: NoteAuthorOut | None
    created_at: str


class TicketDetailOut(TicketOut):
    messages: list[MessageOut]
    notes: list[NoteOut]
    evidence: list[dict[str, Any]] = Field(description="What the decision saw, per reason.")
    conversation_url: str


# --- administration --------------------------------------------------------------------------


class WorkspaceOut(Shape):
    id: str
    name: str
    assignment: str


class WidgetOut(Shape):
    """Every widget setting, None where the default applies."""

    primary_color: str | None
    text_color: str | None
    title: str | None
    subtitle: str | None
    launcher_label: str | None
    placeholder: str | None
    back_to_ai_label: str | None
    translations: dict[str, dict[str, str]] = Field(
        description="The texts in other languages, {language: {text: value}}; a visitor "
        "speaking one of them sees these instead."
    )


class AgentOut(Shape):
    id: str
    workspace_id: str
    name: str
    channels: list[str]
    greeting: str | None
    greetings: dict[str, str] = Field(description="The greeting by language.")
    widget: WidgetOut


class ActionOut(Shape):
    id: str
    agent_id: str
    kind: str
    name: str
    platform: str
    when_to_use: str
    channels: list[str]
    enabled: bool
    handoff_message: str
    ask_for_email: bool
    sensitive_topics: list[str]
    trigger_examples: list[str]
    thresholds: dict[str, int | float]
    alternative_message: str | None
    handoff_messages: dict[str, str]
    alternative_messages: dict[str, str]
    business_hours: dict[str, Any] | None
    wait_timeout_seconds: int | None
    inactivity_timeout_seconds: int | None
    created_at: str
    updated_at: str


class JobOut(Shape):
    id: int
    kind: str
    status: str
    attempts: int
    max_attempts: int | None = Field(description="None: the worker's budget applies.")
    run_after: str
    last_error: str | None
    payload: dict[str, Any]
    created_at: str


class IntegrationHealthOut(Shape):
    """What waits in the outbox for one helpdesk, and whether its calls are failing."""

    failing: bool = Field(description="A job for this helpdesk recorded an error and is not done.")
    last_error: str | None = Field(description="The latest error of a parked or retrying job.")
    last_error_at: str | None
    waiting: int = Field(description="Jobs not done: due, backing off, running or parked.")
    parked: int = Field(description="Jobs that used up their retries; `retry` makes them due.")
    oldest_waiting_seconds: float = Field(description="Age of the oldest job not done.")


class RateLimitOut(Shape):
    calls: int
    per_seconds: float
    source: str = Field(description="`admin` (set on the integration) or `documented`.")


class IntegrationOut(Shape):
    id: str
    platform: str
    status: str
    created_at: str
    webhook_url: str | None = Field(None, description="External helpdesks only.")
    webhook_setup: list[str] | None = Field(None, description="External helpdesks only.")
    health: IntegrationHealthOut | None = Field(
        None, description="External helpdesks, in the list of an agent's integrations."
    )
    rate_limit: RateLimitOut | None = Field(
        None,
        description="External helpdesks only: the API limit the outbox keeps to (97 % of it); "
        "null when neither the admin nor the platform's documentation sets one.",
    )


class RetriedOut(Shape):
    retried: int = Field(description="Parked and backing-off jobs made due now.")
    health: IntegrationHealthOut


class WebhookOut(Shape):
    applied: int = Field(description="Events applied to their conversations now.")
    queued: int = Field(
        description="Events the platform could not be asked about now: queued to be read "
        "again and applied by the outbox."
    )


class ConnectionOut(Shape):
    """A channel's connection as every channel with an outside API describes it."""

    id: str
    agent_id: str
    channel: str
    name: str = Field(description="The connected account in a few words, e.g. its number.")
    summary: str = Field(description="The connection's settings in a line.")
    values: dict[str, Any] = Field(description="The connect form's values but its secrets.")
    created_at: str
    webhook_url: str
    webhook_setup: list[str] = Field(description="The steps that finish the setup, in order.")


class WhatsAppOut(ConnectionOut):
    phone_number_id: str
    display_phone_number: str | None
    template_name: str
    template_language: str
    base_url: str


class ChannelFormOut(Shape):
    channel: str
    title: str
    tab: str = Field(description="The line under the channel's name in the Settings menu.")
    lead: str = Field(description="What connecting the channel does, atop its tab.")
    connect: str = Field(description="The connect card's heading.")
    checked: str = Field(description="How the form is checked and kept.")
    finish: str = Field(description="Where the setup ends once connected.")
    form: dict[str, Any] = Field(description="The connect form, as JSON schema.")


class PlatformOut(Shape):
    platform: str
    title: str
    description: str = Field(description="The card's one line in Settings.")
    form: dict[str, Any] = Field(description="The connect form, as JSON schema.")


class AuthorizationOut(Shape):
    authorize_url: str = Field(description="The platform's approval page: open it.")
    redirect_uri: str = Field(description="The callback to register in the OAuth client.")
