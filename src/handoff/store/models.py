"""SQLAlchemy tables: the service's state, one row type per noun."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
SerialId = BigInteger().with_variant(Integer, "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Workspace(Base):
    __tablename__ = "workspaces"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    # How the built-in inbox assigns new tickets: "manual", "round_robin" or "least_loaded".
    assignment: Mapped[str] = mapped_column(String(16), default="manual")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Member(Base):
    """A human support agent who works in the inbox."""

    __tablename__ = "members"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(300))
    avatar_url: Mapped[str | None] = mapped_column(Text)
    # Away members get no new tickets; `max_open_tickets` caps automatic assignment.
    away: Mapped[bool] = mapped_column(Boolean, default=False)
    max_open_tickets: Mapped[int | None] = mapped_column(Integer)
    # The last member a round-robin assignment picked gets the oldest stamp next time.
    last_assigned_at: Mapped[datetime | None] = mapped_column()
    # A disabled member cannot sign in, loses every session and gets no tickets; their name
    # stays on the replies they wrote.
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CannedReply(Base):
    """A reply a workspace's members insert in one click; `{first_name}` and the other
    variables of `service/canned.py` are filled from the ticket."""

    __tablename__ = "canned_replies"
    __table_args__ = (UniqueConstraint("workspace_id", "title"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A bearer token; stored as a hash. No member means the service-wide admin token."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(SerialId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    member_id: Mapped[str | None] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Agent(Base):
    """An AI support agent and the channels it answers on."""

    __tablename__ = "agents"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    channels: Mapped[list[Any]] = mapped_column(default=list)
    greeting: Mapped[str | None] = mapped_column(Text)
    # The greeting in other languages, {language: text}: a visitor speaking one of them gets it.
    greetings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The widget's colours and texts (see service.widget for the keys and defaults).
    widget: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class KnowledgeEntry(Base):
    __tablename__ = "knowledge_entries"
    id: Mapped[int] = mapped_column(SerialId, primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)


class Integration(Base):
    """A helpdesk connected to an agent; credentials are Fernet-encrypted."""

    __tablename__ = "integrations"
    __table_args__ = (UniqueConstraint("agent_id", "platform"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="connected")
    credentials: Mapped[str | None] = mapped_column(Text)
    # OAuth tokens as the platform last issued them (sealed); refresh tokens may rotate.
    tokens: Mapped[str | None] = mapped_column(Text)
    # While set and in the future, one process is refreshing the tokens; others wait.
    token_lease_until: Mapped[datetime | None] = mapped_column()
    # The admin's own figure for the platform's API limit, {"calls": n, "per_seconds": s};
    # None: the platform's documented default (helpdesks/limits.py).
    rate_limit: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IntegrationBudget(Base):
    """How much of one integration's API limit is spent, shared by every worker process.

    `next_at` is the pacer's theoretical time of the next call (see dispatch/pacing.py);
    `paused_until` is when the platform itself said calls may resume.
    """

    __tablename__ = "integration_budgets"
    integration_id: Mapped[str] = mapped_column(
        ForeignKey("integrations.id", ondelete="CASCADE"), primary_key=True
    )
    next_at: Mapped[datetime] = mapped_column(default=utcnow)
    paused_until: Mapped[datetime | None] = mapped_column()


class ChannelConnection(Base):
    """A messaging channel account (WhatsApp) an agent answers on; credentials sealed."""

    __tablename__ = "channel_connections"
    __table_args__ = (UniqueConstraint("agent_id", "channel"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(32))
    credentials: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Action(Base):
    """An Escalate to Human action as the admin configured it."""

    __tablename__ = "actions"
    __table_args__ = (UniqueConstraint("agent_id", "name"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64))
    platform: Mapped[str] = mapped_column(String(32))
    when_to_use: Mapped[str] = mapped_column(Text)
    channels: Mapped[list[Any]] = mapped_column(default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    handoff_message: Mapped[str] = mapped_column(Text)
    ask_for_email: Mapped[bool] = mapped_column(Boolean, default=True)
    sensitive_topics: Mapped[list[Any]] = mapped_column(default=list)
    trigger_examples: Mapped[list[Any]] = mapped_column(default=list)
    thresholds: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # What the AI says on channels the action does not cover (e.g. an email or phone number).
    alternative_message: Mapped[str | None] = mapped_column(Text)
    # The admin's texts per language ({"es": "..."}); a language without one gets the single
    # text above, or the catalogue's default in that language.
    handoff_messages: Mapped[dict[str, Any]] = mapped_column(default=dict)
    alternative_messages: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # {"timezone": "Europe/Paris", "weekly": {"mon": [["09:00", "17:00"]], ...},
    #  "holidays": ["2026-12-25"]}; None means always open.
    business_hours: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Seconds without a human answer before the user is offered the AI or an email.
    wait_timeout_seconds: Mapped[int | None] = mapped_column(Integer)
    # Seconds without any message before a human stretch is handed back to the AI.
    inactivity_timeout_seconds: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Conversation(Base):
    """One chat between a user and an agent. `stretch` counts the human stretches so far."""

    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_contact", "agent_id", "channel", "contact_external_id"),
        Index("ix_conversations_connection", "connection_id", "contact_external_id"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    owner: Mapped[str] = mapped_column(String(16), default="bot")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    contact_name: Mapped[str | None] = mapped_column(String(200))
    contact_email: Mapped[str | None] = mapped_column(String(320))
    contact_phone: Mapped[str | None] = mapped_column(String(40))
    contact_external_id: Mapped[str | None] = mapped_column(String(200))
    # The channel account (WhatsApp number) whose verified webhook opened this conversation.
    # Only such conversations receive that channel's inbound messages or send to its users.
    connection_id: Mapped[str | None] = mapped_column(
        ForeignKey("channel_connections.id", ondelete="SET NULL")
    )
    stretch: Mapped[int] = mapped_column(Integer, default=0)
    # The language the service writes to the visitor in (domain.Language); `language_pinned`
    # when the page said it (the widget's `lang`): their messages then never change it.
    language: Mapped[str] = mapped_column(String(8), default="en")
    language_pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    # A decision waiting for the user's email: {"reasons": [...], "evidence": [...], "asked": n}
    pending_escalation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "client_id"),
        Index("ix_messages_conversation", "conversation_id", "id"),
    )
    id: Mapped[int] = mapped_column(SerialId, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    author_id: Mapped[str | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    # The human agent's name when the reply came from an external helpdesk.
    author_name: Mapped[str | None] = mapped_column(String(200))
    confidence: Mapped[float | None] = mapped_column(Float)
    # Channel-side message id, so a retried send is stored once.
    client_id: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Escalation(Base):
    """One hand-over to humans; at most one per conversation stretch."""

    __tablename__ = "escalations"
    __table_args__ = (
        UniqueConstraint("conversation_id", "stretch"),
        Index("ix_escalations_ticket", "platform", "ticket_id"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    stretch: Mapped[int] = mapped_column(Integer)
    action_id: Mapped[str | None] = mapped_column(ForeignKey("actions.id", ondelete="SET NULL"))
    platform: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    evidence: Mapped[list[Any]] = mapped_column(default=list)
    subject: Mapped[str] = mapped_column(String(300))
    summary: Mapped[str] = mapped_column(Text)
    ticket_id: Mapped[str | None] = mapped_column(String(200))
    ticket_url: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Why the AI got the conversation back (domain.HandbackReason), once it did.
    handback_reason: Mapped[str | None] = mapped_column(String(16))
    first_reply_at: Mapped[datetime | None] = mapped_column()
    # When the user was told their place is kept (the wait timeout passed unanswered).
    wait_notified_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    solved_at: Mapped[datetime | None] = mapped_column()


class Ticket(Base):
    """A ticket in the built-in inbox."""

    __tablename__ = "tickets"
    # The inbox lists pages of a workspace's tickets by status, newest or oldest first.
    __table_args__ = (Index("ix_tickets_listing", "workspace_id", "status", "created_at", "id"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    escalation_id: Mapped[str] = mapped_column(
        ForeignKey("escalations.id", ondelete="CASCADE"), unique=True
    )
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="open")
    assignee_id: Mapped[str | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    # True while the visitor's latest message has no human answer yet.
    waiting: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# Full-text search over message text is SQL the models cannot describe (migration 0008): an
# FTS5 table, kept in step with `messages` by triggers, on SQLite (it has shadow tables named
# after it); a GIN index over `to_tsvector('simple', text)` on PostgreSQL.
MESSAGE_SEARCH = "messages_search"


def described_by_models(name: str | None, type_: str, parent_names: object) -> bool:
    """Tell schema comparisons which database objects the models describe (Alembic's
    `include_name`): all but those of the message search."""
    return not (name or "").startswith(MESSAGE_SEARCH)


class Note(Base):
    """An internal note on a ticket; never shown to the visitor."""

    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(SerialId, primary_key=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[str | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxJob(Base):
    """Work to do outside the request's transaction (create a ticket, relay a message)."""

    __tablename__ = "outbox_jobs"
    __table_args__ = (Index("ix_outbox_due", "status", "run_after"),)
    id: Mapped[int] = mapped_column(SerialId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The helpdesk integration the job calls, whose API limit and share of the workers it
    # counts against; None for work that calls no helpdesk (the inbox, channel deliveries).
    integration_id: Mapped[str | None] = mapped_column(String(32))
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # None: the worker's budget (HANDOFF_JOB_MAX_ATTEMPTS) when the job runs.
    max_attempts: Mapped[int | None] = mapped_column(Integer)
    run_after: Mapped[datetime] = mapped_column(default=utcnow)
    lease_token: Mapped[str | None] = mapped_column(String(32))
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class InboundEvent(Base):
    """A helpdesk webhook event already applied: redeliveries are recognised and dropped."""

    __tablename__ = "inbound_events"
    __table_args__ = (UniqueConstraint("integration_id", "event_id"),)
    id: Mapped[int] = mapped_column(SerialId, primary_key=True)
    integration_id: Mapped[str] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Event(Base):
    """An append-only feed for live streams; the id is the SSE event id."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_conversation", "conversation_id", "id"),
        Index("ix_events_workspace", "workspace_id", "id"),
        Index("ix_events_created", "created_at"),  # pruning
    )
    id: Mapped[int] = mapped_column(SerialId, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(32))
    conversation_id: Mapped[str] = mapped_column(String(32))
    to_visitor: Mapped[bool] = mapped_column(Boolean)
    to_team: Mapped[bool] = mapped_column(Boolean)
    type: Mapped[str] = mapped_column(String(20))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
