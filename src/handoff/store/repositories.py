"""Every query lives here. Functions take the session, flush when they write, never commit."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Row,
    Subquery,
    and_,
    case,
    column,
    delete,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    tuple_,
    update,
)
from sqlalchemy import Text as TextType
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from handoff.domain import NATIVE, EscalationStatus, HandbackReason, Owner, Role
from handoff.store.models import (
    MESSAGE_SEARCH,
    Action,
    Agent,
    ApiToken,
    CannedReply,
    ChannelConnection,
    Conversation,
    Escalation,
    Event,
    Integration,
    IntegrationBudget,
    KnowledgeEntry,
    Member,
    Message,
    Note,
    OutboxJob,
    Ticket,
    UtcDateTime,
    Workspace,
    utcnow,
)


async def add(session: AsyncSession, *rows: object) -> None:
    """Stage new rows and flush so their ids and defaults are known."""
    session.add_all(rows)
    await session.flush()


# --- tokens, members, workspaces -------------------------------------------------------


async def token_by_hash(session: AsyncSession, token_hash: str) -> ApiToken | None:
    return await session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash))


async def has_admin_token(session: AsyncSession) -> bool:
    found = await session.scalar(select(ApiToken.id).where(ApiToken.member_id.is_(None)).limit(1))
    return found is not None


async def member_by_email(session: AsyncSession, email: str) -> Member | None:
    return await session.scalar(select(Member).where(func.lower(Member.email) == email.lower()))


async def members_of(session: AsyncSession, workspace_id: str | None) -> Sequence[Member]:
    query = select(Member).order_by(Member.name)
    if workspace_id is not None:
        query = query.where(Member.workspace_id == workspace_id)
    return (await session.scalars(query)).all()


async def workspaces(session: AsyncSession) -> Sequence[Workspace]:
    return (await session.scalars(select(Workspace).order_by(Workspace.created_at))).all()


async def workspace_for_update(session: AsyncSession, workspace_id: str) -> Workspace | None:
    """Load the workspace and hold its row until the transaction ends."""
    query = select(Workspace).where(Workspace.id == workspace_id).with_for_update()
    return await session.scalar(query)


async def present_members(session: AsyncSession, workspace_id: str) -> Sequence[Member]:
    """Return the workspace's members who can take a ticket now: not away, not disabled."""
    query = select(Member).where(
        Member.workspace_id == workspace_id, Member.away.is_(False), Member.disabled.is_(False)
    )
    return (await session.scalars(query)).all()


async def end_sessions(session: AsyncSession, member_id: str) -> None:
    """Revoke every token of a member: each signed-in page must sign in again."""
    await session.execute(delete(ApiToken).where(ApiToken.member_id == member_id))


async def unassign_open_tickets(session: AsyncSession, member_id: str) -> None:
    """Put a member's open tickets back in Unassigned."""
    await session.execute(
        update(Ticket)
        .where(Ticket.assignee_id == member_id, Ticket.status == "open")
        .values(assignee_id=None, updated_at=utcnow())
    )


async def admins_left(session: AsyncSession, workspace_id: str, without: str) -> int:
    """Count the enabled admins of a workspace other than member `without`."""
    query = select(func.count(Member.id)).where(
        Member.workspace_id == workspace_id,
        Member.role == "admin",
        Member.disabled.is_(False),
        Member.id != without,
    )
    return int(await session.scalar(query) or 0)


async def canned_replies_of(session: AsyncSession, workspace_id: str) -> Sequence[CannedReply]:
    query = (
        select(CannedReply)
        .where(CannedReply.workspace_id == workspace_id)
        .order_by(func.lower(CannedReply.title))
    )
    return (await session.scalars(query)).all()


async def canned_reply_titled(
    session: AsyncSession, workspace_id: str, title: str
) -> CannedReply | None:
    query = select(CannedReply).where(
        CannedReply.workspace_id == workspace_id, CannedReply.title == title
    )
    return await session.scalar(query)


# --- agents, knowledge, integrations, actions -----------------------------------------


async def agents(session: AsyncSession, workspace_id: str | None) -> Sequence[Agent]:
    query = select(Agent).order_by(Agent.created_at)
    if workspace_id is not None:
        query = query.where(Agent.workspace_id == workspace_id)
    return (await session.scalars(query)).all()


async def knowledge_of(session: AsyncSession, agent_id: str) -> Sequence[KnowledgeEntry]:
    query = select(KnowledgeEntry).where(KnowledgeEntry.agent_id == agent_id)
    return (await session.scalars(query.order_by(KnowledgeEntry.id))).all()


async def knowledge_version(session: AsyncSession, agent_id: str) -> str:
    """Identify the agent's current entries without reading them: they are only ever
    replaced all at once, and new rows get new, larger ids."""
    count, newest = (
        await session.execute(
            select(func.count(KnowledgeEntry.id), func.max(KnowledgeEntry.id)).where(
                KnowledgeEntry.agent_id == agent_id
            )
        )
    ).one()
    return f"{count}:{newest}"


async def delete_knowledge(session: AsyncSession, agent_id: str) -> None:
    for entry in await knowledge_of(session, agent_id):
        await session.delete(entry)
    await session.flush()


async def integrations_of(session: AsyncSession, agent_id: str) -> Sequence[Integration]:
    query = select(Integration).where(Integration.agent_id == agent_id)
    return (await session.scalars(query.order_by(Integration.created_at))).all()


async def lease_token_refresh(
    session: AsyncSession, integration_id: str, *, now: datetime, until: datetime
) -> bool:
    """Take the integration's token-refresh lease until `until`; False while another
    process holds an unexpired one."""
    taken = await session.execute(
        update(Integration)
        .where(Integration.id == integration_id)
        .where(or_(Integration.token_lease_until.is_(None), Integration.token_lease_until < now))
        .values(token_lease_until=until)
        .execution_options(synchronize_session=False)
    )
    return cast("CursorResult[Any]", taken).rowcount == 1


async def release_token_lease(
    session: AsyncSession, integration_id: str, sealed_tokens: str | None
) -> None:
    """Give the refresh lease back, storing the new tokens when the refresh brought some."""
    values: dict[str, Any] = {"token_lease_until": None}
    if sealed_tokens is not None:
        values["tokens"] = sealed_tokens
    await session.execute(
        update(Integration)
        .where(Integration.id == integration_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


async def actions_of(session: AsyncSession, agent_id: str) -> Sequence[Action]:
    query = select(Action).where(Action.agent_id == agent_id).order_by(Action.created_at)
    return (await session.scalars(query)).all()


async def action_named(session: AsyncSession, agent_id: str, name: str) -> Action | None:
    query = select(Action).where(Action.agent_id == agent_id, Action.name == name)
    return await session.scalar(query)


# --- channel connections --------------------------------------------------------------


async def channel_connection(
    session: AsyncSession, agent_id: str, channel: str
) -> ChannelConnection | None:
    query = select(ChannelConnection).where(
        ChannelConnection.agent_id == agent_id, ChannelConnection.channel == channel
    )
    return await session.scalar(query)


async def connection_for_update(
    session: AsyncSession, connection_id: str
) -> ChannelConnection | None:
    """Load a channel connection and hold its row until the transaction ends."""
    query = select(ChannelConnection).where(ChannelConnection.id == connection_id)
    return await session.scalar(query.with_for_update())


# --- conversations and messages -------------------------------------------------------


async def conversation_for_update(
    session: AsyncSession, conversation_id: str
) -> Conversation | None:
    """Load a conversation and lock its row, so two messages cannot both escalate it.

    Everything that changes who owns a conversation takes this lock first; the row is read
    afresh even if the session holds it already.
    """
    query = (
        select(Conversation)
        .where(Conversation.id == conversation_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return await session.scalar(query)


async def conversation_by_token(session: AsyncSession, token_hash: str) -> Conversation | None:
    return await session.scalar(select(Conversation).where(Conversation.token_hash == token_hash))


async def latest_conversation_of_contact(
    session: AsyncSession, connection_id: str, contact_external_id: str
) -> Conversation | None:
    """Return the newest conversation the connection opened with this contact."""
    query = (
        select(Conversation)
        .where(
            Conversation.connection_id == connection_id,
            Conversation.contact_external_id == contact_external_id,
        )
        .order_by(Conversation.created_at.desc())
        .limit(1)
    )
    return await session.scalar(query)


async def messages_of(session: AsyncSession, conversation_id: str) -> Sequence[Message]:
    query = select(Message).where(Message.conversation_id == conversation_id)
    return (await session.scalars(query.order_by(Message.id))).all()


async def message_by_client_id(
    session: AsyncSession, conversation_id: str, client_id: str
) -> Message | None:
    query = select(Message).where(
        Message.conversation_id == conversation_id, Message.client_id == client_id
    )
    return await session.scalar(query)


async def last_user_message_at(session: AsyncSession, conversation_id: str) -> datetime | None:
    query = (
        select(Message.created_at)
        .where(Message.conversation_id == conversation_id, Message.role == Role.USER)
        .order_by(Message.id.desc())
        .limit(1)
    )
    return await session.scalar(query)


async def latest_escalation(session: AsyncSession, conversation_id: str) -> Escalation | None:
    query = (
        select(Escalation)
        .where(Escalation.conversation_id == conversation_id)
        .order_by(Escalation.stretch.desc())
        .limit(1)
    )
    return await session.scalar(query)


async def ticket_stretch_for_update(
    session: AsyncSession, agent_id: str, platform: str, ticket_id: str
) -> Row[Escalation, Conversation] | None:
    """Return the agent's latest stretch on a helpdesk ticket, and its conversation, both rows
    locked and read afresh.

    Ticket numbers are unique within one helpdesk account only, hence the agent. The lock is
    the conversation's, as for every owner change: a reply or a solve races the user's "back
    to the AI" and the timers.
    """
    query = (
        select(Escalation, Conversation)
        .join(Conversation, Conversation.id == Escalation.conversation_id)
        .where(
            Escalation.platform == platform,
            Escalation.ticket_id == ticket_id,
            Conversation.agent_id == agent_id,
        )
        .order_by(Escalation.stretch.desc())
        .limit(1)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(query)).first()


# An escalation row, joined to its conversation, whose human stretch is open: the SQL form of
# `service/lifecycle/stages.py:stage_of(conversation, escalation) in HUMAN_STAGES` (waiting, or
# with a person), which `tests/service/test_stages.py` checks against it.
OPEN_HUMAN_STRETCH = and_(
    Conversation.owner == Owner.HUMAN.value,
    Escalation.stretch == Conversation.stretch,
    Escalation.status != EscalationStatus.SOLVED.value,
)

# The same, narrowed to the stage `waiting`: nobody on the team has answered yet.
WAITING_STRETCH = and_(OPEN_HUMAN_STRETCH, Escalation.first_reply_at.is_(None))


# One open human stretch's timer facts: escalation id, handoff time, first reply, wait notice,
# last activity, the action's wait and inactivity timeouts, and its business hours.
StretchTimers = Row[
    str,
    datetime,
    datetime | None,
    datetime | None,
    datetime,
    int | None,
    int | None,
    dict[str, Any] | None,
]


async def timed_stretches(
    session: AsyncSession, active_roles: Sequence[str], escalation_id: str | None = None
) -> Sequence[StretchTimers]:
    """Return the timer facts of the open human stretches whose action has a timer; the
    last activity is the stretch's newest message by one of `active_roles`, or the handoff."""
    newest = (
        select(func.max(Message.created_at))
        .where(
            Message.conversation_id == Escalation.conversation_id,
            Message.role.in_(active_roles),
            Message.created_at >= Escalation.created_at,
        )
        .correlate(Escalation)
        .scalar_subquery()
    )
    query = (
        select(
            Escalation.id,
            Escalation.created_at,
            Escalation.first_reply_at,
            Escalation.wait_notified_at,
            func.coalesce(newest, Escalation.created_at),
            Action.wait_timeout_seconds,
            Action.inactivity_timeout_seconds,
            Action.business_hours,
        )
        .join(Conversation, Conversation.id == Escalation.conversation_id)
        .join(Action, Action.id == Escalation.action_id)
        .where(
            OPEN_HUMAN_STRETCH,
            (Action.wait_timeout_seconds > 0) | (Action.inactivity_timeout_seconds > 0),
        )
    )
    if escalation_id is not None:
        query = query.where(Escalation.id == escalation_id)
    return (await session.execute(query)).all()


async def claim_handback(session: AsyncSession, escalation_id: str, reason: HandbackReason) -> bool:
    """Take the right to end the stretch; False when a solve or another worker came first."""
    claimed = await session.execute(
        update(Escalation)
        .where(
            Escalation.id == escalation_id,
            Escalation.status != EscalationStatus.SOLVED.value,
            Escalation.handback_reason.is_(None),
        )
        .values(handback_reason=reason.value)
        .returning(Escalation.id)
        .execution_options(synchronize_session=False)
    )
    return claimed.scalar_one_or_none() is not None


async def claim_wait_notice(session: AsyncSession, escalation_id: str, now: datetime) -> bool:
    """Stamp the wait notice; False when it went out already or a person has answered.

    The caller holds the conversation's lock and found the stretch open (`OPEN_HUMAN_STRETCH`),
    so an unsolved escalation without a first reply is the stage `waiting` of `stage_of`."""
    claimed = await session.execute(
        update(Escalation)
        .where(
            Escalation.id == escalation_id,
            Escalation.wait_notified_at.is_(None),
            Escalation.first_reply_at.is_(None),
            Escalation.status != EscalationStatus.SOLVED.value,
        )
        .values(wait_notified_at=now)
        .returning(Escalation.id)
        .execution_options(synchronize_session=False)
    )
    return claimed.scalar_one_or_none() is not None


async def members_by_id(session: AsyncSession, ids: set[str]) -> dict[str, Member]:
    if not ids:
        return {}
    rows = await session.scalars(select(Member).where(Member.id.in_(ids)))
    return {member.id: member for member in rows}


# --- tickets and notes ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TicketQuery:
    """Which of the inbox's tickets to list, and in which order.

    `status` None means every status; `unassigned` lists tickets nobody holds (then
    `assignee_id` is ignored); `text` is searched for in the contact's name and email, the
    subject and the conversation's messages. `oldest_waiting` puts the tickets nobody has
    answered yet first, longest waiting first, then the others oldest first; otherwise the
    newest come first.
    """

    workspace_id: str | None
    status: str | None = "open"
    waiting_only: bool = False
    assignee_id: str | None = None
    unassigned: bool = False
    reason: str | None = None
    platform: str | None = None
    channel: str | None = None
    conversation_id: str | None = None
    text: str | None = None
    oldest_waiting: bool = False


# Where a ticket stands in its listing's order: (0 if waiting else 1, or always 0 for the
# newest-first order; the time it is ordered by; its id). A page resumes after such a key.
TicketKey = tuple[int, datetime, str]


@dataclass(frozen=True, slots=True)
class ListedTicket:
    """A ticket of a page, with the rows its summary shows and its place in the order."""

    ticket: Ticket
    escalation: Escalation
    conversation: Conversation
    key: TicketKey


_FTS_WORD = re.compile(r"\w+")


def _message_match(dialect: str, text: str) -> ColumnElement[bool]:
    """Messages holding every word of `text`, by the database's own full-text index."""
    if dialect == "sqlite":
        # Each word quoted: the user's punctuation cannot become FTS5 query syntax.
        words = " ".join(f'"{word}"' for word in _FTS_WORD.findall(text))
        if not words:
            return Message.id.is_(None)  # nothing to look for: no message matches
        search = table(MESSAGE_SEARCH, column("rowid"))
        found = select(search.c.rowid).where(literal_column(MESSAGE_SEARCH).op("MATCH")(words))
        return Message.id.in_(found)
    # The configuration inline, as the index's expression has it, so the planner can use it.
    simple: ColumnElement[str] = literal_column("'simple'")
    return func.to_tsvector(simple, Message.text).op("@@")(func.plainto_tsquery(simple, text))


def _text_match(dialect: str, text: str) -> ColumnElement[bool]:
    """Tickets whose contact or subject contains `text`, or one of whose messages holds
    all its words."""
    needle = text.lower()
    in_messages = select(Message.conversation_id).where(_message_match(dialect, text))
    return or_(
        func.lower(Conversation.contact_name).contains(needle, autoescape=True),
        func.lower(Conversation.contact_email).contains(needle, autoescape=True),
        func.lower(Escalation.subject).contains(needle, autoescape=True),
        Ticket.conversation_id.in_(in_messages),
    )


def _reason_match(reason: str) -> ColumnElement[bool]:
    # `reasons` is a JSON list of plain words (domain.Reason): its text holds the quoted word.
    quoted: ColumnElement[bool] = Escalation.reasons.cast(TextType).contains(
        f'"{reason}"', autoescape=True
    )
    return quoted


async def ticket_page(
    session: AsyncSession, query: TicketQuery, after: TicketKey | None, limit: int
) -> list[ListedTicket]:
    """Return up to `limit` tickets of the listing `query` describes, after the key `after`
    (from the start when None), each with its escalation, conversation and own key.

    The keys never change but for a waiting ticket getting its answer, which moves it
    further down the waiting-first order: pages taken one after another skip no ticket, and
    new tickets land before the first page (newest first) or after the last (oldest first).
    """
    waiting = case((WAITING_STRETCH, 0), else_=1)
    group = waiting if query.oldest_waiting else literal_column("0")
    stamp = Escalation.created_at if query.oldest_waiting else Ticket.created_at
    statement = (
        select(Ticket, Escalation, Conversation, group, stamp)
        .join(Escalation, Escalation.id == Ticket.escalation_id)
        .join(Conversation, Conversation.id == Ticket.conversation_id)
        .where(*_ticket_filters(session, query))
    )
    if query.oldest_waiting:
        statement = statement.order_by(group, stamp, Ticket.id)
        if after is not None:
            rank, at, ticket_id = after
            resume = tuple_(literal(rank), literal(at, UtcDateTime()), literal(ticket_id))
            statement = statement.where(tuple_(group, stamp, Ticket.id) > resume)
    else:
        statement = statement.order_by(stamp.desc(), Ticket.id.desc())
        if after is not None:
            _, at, ticket_id = after
            resume = tuple_(literal(at, UtcDateTime()), literal(ticket_id))
            statement = statement.where(tuple_(stamp, Ticket.id) < resume)
    rows = (await session.execute(statement.limit(limit))).all()
    return [
        ListedTicket(ticket, escalation, conversation, (int(rank), at, ticket.id))
        for ticket, escalation, conversation, rank, at in rows
    ]


def _ticket_filters(session: AsyncSession, query: TicketQuery) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = []
    if query.workspace_id is not None:
        filters.append(Ticket.workspace_id == query.workspace_id)
    if query.status is not None:
        filters.append(Ticket.status == query.status)
    if query.waiting_only:
        filters.append(WAITING_STRETCH)
    if query.unassigned:
        filters.append(Ticket.assignee_id.is_(None))
    elif query.assignee_id is not None:
        filters.append(Ticket.assignee_id == query.assignee_id)
    if query.reason is not None:
        filters.append(_reason_match(query.reason))
    if query.platform is not None:
        filters.append(Escalation.platform == query.platform)
    if query.channel is not None:
        filters.append(Conversation.channel == query.channel)
    if query.conversation_id is not None:
        filters.append(Ticket.conversation_id == query.conversation_id)
    if query.text:
        filters.append(_text_match(session.get_bind().dialect.name, query.text))
    return filters


@dataclass(frozen=True, slots=True)
class TicketCounts:
    """How many open tickets each inbox view holds."""

    mine: int
    unassigned: int
    open: int
    waiting: int


async def ticket_counts(
    session: AsyncSession, workspace_id: str | None, member_id: str | None
) -> TicketCounts:
    """Count the open tickets: the member's (none without a member), nobody's, all, and
    those nobody has answered yet."""
    nobody: ColumnElement[int] = literal_column("0")
    mine = func.count().filter(Ticket.assignee_id == member_id) if member_id else nobody
    query = (
        select(
            mine,
            func.count().filter(Ticket.assignee_id.is_(None)),
            func.count(),
            func.count().filter(WAITING_STRETCH),
        )
        .select_from(Ticket)
        .join(Escalation, Escalation.id == Ticket.escalation_id)
        .join(Conversation, Conversation.id == Ticket.conversation_id)
        .where(Ticket.status == "open")
    )
    if workspace_id is not None:
        query = query.where(Ticket.workspace_id == workspace_id)
    return TicketCounts(*(int(n) for n in (await session.execute(query)).one()))


async def ticket_for_escalation(session: AsyncSession, escalation_id: str) -> Ticket | None:
    return await session.scalar(select(Ticket).where(Ticket.escalation_id == escalation_id))


async def open_ticket_of(session: AsyncSession, conversation_id: str) -> Ticket | None:
    query = select(Ticket).where(Ticket.conversation_id == conversation_id, Ticket.status == "open")
    return await session.scalar(query)


async def open_ticket_counts(
    session: AsyncSession, workspace_id: str, member_ids: Sequence[str]
) -> dict[str, int]:
    """Return how many open tickets each member holds (members with none are absent)."""
    if not member_ids:
        return {}
    query = (
        select(Ticket.assignee_id, func.count(Ticket.id))
        .where(
            Ticket.workspace_id == workspace_id,
            Ticket.status == "open",
            Ticket.assignee_id.in_(member_ids),
        )
        .group_by(Ticket.assignee_id)
    )
    return {str(member_id): int(count) for member_id, count in (await session.execute(query))}


async def notes_of(session: AsyncSession, ticket_id: str) -> Sequence[Note]:
    query = select(Note).where(Note.ticket_id == ticket_id).order_by(Note.id)
    return (await session.scalars(query)).all()


async def last_messages(
    session: AsyncSession, conversation_ids: Sequence[str]
) -> dict[str, Message]:
    """Return the newest message of each conversation."""
    if not conversation_ids:
        return {}
    newest = (
        select(func.max(Message.id))
        .where(Message.conversation_id.in_(conversation_ids))
        .group_by(Message.conversation_id)
    )
    rows = await session.scalars(select(Message).where(Message.id.in_(newest)))
    return {row.conversation_id: row for row in rows}


# --- events ---------------------------------------------------------------------------

# The PostgreSQL channel `announce_event` notifies and every process's listener listens on.
EVENTS_CHANNEL = "handoff_events"


async def events_after(
    session: AsyncSession,
    after_id: int,
    *,
    conversation_id: str | None = None,
    workspace_id: str | None = None,
    limit: int = 200,
) -> Sequence[Event]:
    query = select(Event).where(Event.id > after_id)
    if conversation_id is not None:
        query = query.where(Event.conversation_id == conversation_id, Event.to_visitor.is_(True))
    else:
        query = query.where(Event.to_team.is_(True))
        if workspace_id is not None:
            query = query.where(Event.workspace_id == workspace_id)
    return (await session.scalars(query.order_by(Event.id).limit(limit))).all()


async def announce_event(session: AsyncSession, workspace_id: str, conversation_id: str) -> None:
    """Tell every process listening on PostgreSQL that this conversation has a new event.

    NOTIFY is transactional: it goes out when the transaction commits, never if it rolls back.
    SQLite has no such thing; each process polls (`event_topics_after`).
    """
    if session.bind is None or session.bind.dialect.name != "postgresql":
        return
    payload = f"{workspace_id} {conversation_id}"
    await session.execute(select(func.pg_notify(EVENTS_CHANNEL, payload)))


async def delete_events_before(session: AsyncSession, before: datetime) -> int:
    """Delete the events written before `before`; return how many."""
    result = await session.execute(
        delete(Event).where(Event.created_at < before).execution_options(synchronize_session=False)
    )
    return int(cast("CursorResult[Any]", result).rowcount or 0)


async def last_event_id(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.coalesce(func.max(Event.id), 0))) or 0)


@dataclass(frozen=True, slots=True)
class EventTopic:
    """Who a group of new events is for: a conversation's visitor and/or its workspace's team;
    `newest` is the highest id among them."""

    workspace_id: str
    conversation_id: str
    to_visitor: bool
    to_team: bool
    newest: int


async def event_topics_after(session: AsyncSession, after_id: int) -> list[EventTopic]:
    """Return, in one query, whom the events after `after_id` are for (one row per
    conversation and audience, however many events each has)."""
    query = (
        select(
            Event.workspace_id,
            Event.conversation_id,
            Event.to_visitor,
            Event.to_team,
            func.max(Event.id),
        )
        .where(Event.id > after_id)
        .group_by(Event.workspace_id, Event.conversation_id, Event.to_visitor, Event.to_team)
    )
    return [EventTopic(*row) for row in (await session.execute(query)).all()]


# --- outbox ---------------------------------------------------------------------------


def _due(now: datetime) -> ColumnElement[bool]:
    """A job is due when it is pending and its time has come, or its lease expired."""
    return or_(
        (OutboxJob.status == "pending") & (OutboxJob.run_after <= now),
        (OutboxJob.status == "running") & (OutboxJob.lease_expires_at < now),
    )


def _behind_an_earlier_job_of_its_ticket() -> ColumnElement[bool]:
    """Whether an earlier job of the same escalation (the ticket's creation, an earlier
    follow-up) is still to be done. A follow-up waits for it, whichever process holds it and
    however its retries are spaced, so the ticket gets the messages in the order written."""
    earlier = aliased(OutboxJob)
    return exists().where(
        earlier.id < OutboxJob.id,
        earlier.status.in_(("pending", "running")),
        earlier.payload["escalation_id"].as_string()
        == OutboxJob.payload["escalation_id"].as_string(),
    )


async def next_due_job(
    session: AsyncSession, *, now: datetime, skip_integrations: Collection[str] = ()
) -> tuple[int, str | None] | None:
    """Return the next due job's id and integration, leaving out the integrations to skip,
    jobs behind an earlier one of their ticket, and rows others hold; on PostgreSQL the row
    stays locked until the transaction ends."""
    query = select(OutboxJob.id, OutboxJob.integration_id).where(
        _due(now), ~_behind_an_earlier_job_of_its_ticket()
    )
    if skip_integrations:
        query = query.where(
            or_(
                OutboxJob.integration_id.is_(None),
                OutboxJob.integration_id.not_in(list(skip_integrations)),
            )
        )
    query = query.order_by(OutboxJob.run_after, OutboxJob.id).limit(1)
    row = (await session.execute(query.with_for_update(skip_locked=True))).first()
    return None if row is None else (row.id, row.integration_id)


async def claim_job(
    session: AsyncSession, job_id: int, *, now: datetime, lease_token: str, lease_until: datetime
) -> OutboxJob | None:
    """Lease the job if it is still due; None when another worker leased it first."""
    claimed = (
        update(OutboxJob)
        .where(OutboxJob.id == job_id, _due(now))
        .values(
            status="running",
            lease_token=lease_token,
            lease_expires_at=lease_until,
            attempts=OutboxJob.attempts + 1,
            updated_at=now,
        )
        .returning(OutboxJob)
        .execution_options(synchronize_session=False)
    )
    return (await session.scalars(claimed)).one_or_none()


async def finish_job(
    session: AsyncSession,
    job_id: int,
    lease_token: str,
    *,
    status: str,
    run_after: datetime | None = None,
    error: str | None = None,
    refund_attempt: bool = False,
) -> bool:
    """Settle a leased job; False when the lease was lost to another worker meanwhile.
    `refund_attempt` gives back the attempt its lease counted."""
    values: dict[str, object] = {
        "status": status,
        "lease_token": None,
        "lease_expires_at": None,
        "updated_at": utcnow(),
        "last_error": error,
    }
    if run_after is not None:
        values["run_after"] = run_after
    if refund_attempt:
        values["attempts"] = OutboxJob.attempts - 1
    result = await session.execute(
        update(OutboxJob)
        .where(OutboxJob.id == job_id, OutboxJob.lease_token == lease_token)
        .values(**values)
        .returning(OutboxJob.id)
        .execution_options(synchronize_session=False)
    )
    return result.scalar_one_or_none() is not None


async def has_job(session: AsyncSession, idempotency_key: str) -> bool:
    query = select(OutboxJob.id).where(OutboxJob.idempotency_key == idempotency_key)
    return await session.scalar(query) is not None


async def jobs(session: AsyncSession, status: str | None, limit: int) -> Sequence[OutboxJob]:
    query = select(OutboxJob).order_by(OutboxJob.id.desc()).limit(limit)
    if status is not None:
        query = query.where(OutboxJob.status == status)
    return (await session.scalars(query)).all()


# --- the outbox per integration --------------------------------------------------------------

UNFINISHED = ("pending", "running", "failed")  # a parked job (failed) still waits: for a retry


def _unfinished_jobs() -> Subquery:
    """Jobs not done, each with the external helpdesk integration it calls, if any.

    `create_ticket` and `add_message` jobs carry their integration (the pacing's column);
    those queued before it existed are traced through their escalation, whose platform is an
    integration of its conversation's agent (one per agent and platform); `read_webhook` names
    its integration in the payload. Jobs of the built-in inbox and of channels
    (`whatsapp_send`, ...) call no helpdesk: their `integration_id` is NULL.
    """
    escalation_id = OutboxJob.payload["escalation_id"].as_string()
    named = OutboxJob.payload["integration_id"].as_string()
    of_escalation = and_(
        Integration.agent_id == Conversation.agent_id, Integration.platform == Escalation.platform
    )
    return (
        select(
            OutboxJob.id,
            OutboxJob.kind,
            OutboxJob.status,
            OutboxJob.run_after,
            OutboxJob.created_at,
            OutboxJob.updated_at,
            OutboxJob.last_error,
            Integration.id.label("integration_id"),
            Integration.platform,
            Integration.agent_id,
        )
        .select_from(OutboxJob)
        .outerjoin(Escalation, Escalation.id == escalation_id)
        .outerjoin(Conversation, Conversation.id == Escalation.conversation_id)
        .outerjoin(
            Integration,
            and_(
                Integration.platform != NATIVE,
                or_(
                    Integration.id == OutboxJob.integration_id,
                    Integration.id == named,
                    of_escalation,
                ),
            ),
        )
        .where(OutboxJob.status.in_(UNFINISHED))
        .subquery()
    )


async def queue_figures(session: AsyncSession, now: datetime) -> Sequence[Row[Any]]:
    """Per integration (NULL: none) and job kind: jobs waiting to run (pending or running),
    parked (failed), and the `run_after` of the oldest job due now (NULL when none is)."""
    jobs = _unfinished_jobs()
    due = and_(jobs.c.status == "pending", jobs.c.run_after <= now)
    query = select(
        jobs.c.integration_id,
        jobs.c.platform,
        jobs.c.kind,
        func.count().filter(jobs.c.status != "failed").label("waiting"),
        func.count().filter(jobs.c.status == "failed").label("parked"),
        func.min(jobs.c.run_after).filter(due).label("oldest_due"),
    ).group_by(jobs.c.integration_id, jobs.c.platform, jobs.c.kind)
    return (await session.execute(query)).all()


@dataclass(frozen=True, slots=True)
class Backlog:
    """An integration's unfinished jobs: how many wait (parked ones too), how many are
    parked, when the oldest was queued, and the latest error any of them recorded (a parked
    job's, or a retrying one's) with when it was recorded."""

    integration_id: str
    waiting: int
    parked: int
    oldest: datetime
    last_error: str | None
    last_error_at: datetime | None


async def integration_backlogs(session: AsyncSession, agent_id: str) -> list[Backlog]:
    """Return the backlog of each of the agent's integrations that has unfinished jobs."""
    jobs = _unfinished_jobs()
    latest = (
        select(jobs.c.integration_id, jobs.c.last_error, jobs.c.updated_at)
        .where(jobs.c.agent_id == agent_id, jobs.c.last_error.is_not(None))
        .order_by(jobs.c.updated_at.desc(), jobs.c.id.desc())
    )
    errors: dict[str, tuple[str, datetime]] = {}
    for integration_id, error, at in (await session.execute(latest)).all():
        errors.setdefault(integration_id, (error, at))
    counts = (
        select(
            jobs.c.integration_id,
            func.count(),
            func.count().filter(jobs.c.status == "failed"),
            func.min(jobs.c.created_at),
        )
        .where(jobs.c.agent_id == agent_id)
        .group_by(jobs.c.integration_id)
    )
    return [
        Backlog(integration_id, waiting, parked, oldest, *errors.get(integration_id, (None, None)))
        for integration_id, waiting, parked, oldest in (await session.execute(counts)).all()
    ]


async def revive_jobs(session: AsyncSession, integration_id: str, now: datetime) -> int:
    """Make the integration's parked jobs (with a fresh retry budget) and its jobs waiting
    out a backoff due now; return how many. Jobs due already or running are left alone, so
    asking twice changes nothing more."""
    jobs = _unfinished_jobs()
    stalled = select(jobs.c.id).where(
        jobs.c.integration_id == integration_id,
        or_(
            jobs.c.status == "failed",
            and_(jobs.c.status == "pending", jobs.c.run_after > now),
        ),
    )
    result = await session.execute(
        update(OutboxJob)
        .where(OutboxJob.id.in_(stalled))
        .values(
            attempts=case((OutboxJob.status == "failed", 0), else_=OutboxJob.attempts),
            status="pending",
            run_after=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return int(cast("CursorResult[Any]", result).rowcount or 0)


# --- integration budgets -----------------------------------------------------------------


async def budget_for_update(
    session: AsyncSession, integration_id: str, *, skip_locked: bool = False
) -> tuple[IntegrationBudget | None, Integration] | None:
    """Return the integration's shared budget, locked until the transaction ends (made on
    first use), and the integration; None when the integration is gone. With `skip_locked`,
    the budget is None while another transaction holds it (on PostgreSQL): a claim never
    waits for a lock while holding others, so two claims cannot deadlock."""
    integration = await session.get(Integration, integration_id)
    if integration is None:
        return None
    locked = (
        select(IntegrationBudget)
        .where(IntegrationBudget.integration_id == integration_id)
        .with_for_update(skip_locked=skip_locked)
        .execution_options(populate_existing=True)
    )
    budget = await session.scalar(locked)
    exists = select(IntegrationBudget.integration_id).where(
        IntegrationBudget.integration_id == integration_id
    )
    if budget is None and await session.scalar(exists) is not None:
        return None, integration  # held by another transaction
    if budget is None:
        dialect = session.get_bind().dialect.name
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        await session.execute(
            insert(IntegrationBudget)
            .values(integration_id=integration_id, next_at=utcnow())
            .on_conflict_do_nothing()
        )
        budget = await session.scalar(locked)
    return budget, integration
