"""The built-in inbox: tickets for the human team, replies, notes, assignment, solving."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from cryptography.fernet import InvalidToken
from sqlalchemy.ext.asyncio import AsyncSession

from handoff.domain import EscalationStatus, HandbackReason, Owner
from handoff.service import events
from handoff.service.assignment import choose_assignee
from handoff.service.auth import Principal, visible_row
from handoff.service.errors import Conflict, Forbidden, Invalid, InvalidCursor, NotFound
from handoff.service.lifecycle import transitions as lifecycle
from handoff.service.posting import publish_state
from handoff.service.runtime import Handoff
from handoff.service.tickets import add_note, publish_ticket, ticket_summary, touch_ticket
from handoff.service.views import member_json, message_json, note_json, ticket_json
from handoff.service.wording import HANDBACK_NOTES
from handoff.store import repositories as repo
from handoff.store.models import Agent, Conversation, Escalation, Member, Ticket

ASSIGNEE_ME, ASSIGNEE_NOBODY = "me", "unassigned"


async def create_native_ticket(hf: Handoff, session: AsyncSession, escalation_id: str) -> Ticket:
    """Open the inbox ticket for an escalation; a replay returns the ticket already made."""
    escalation = await session.get(Escalation, escalation_id)
    if escalation is None:
        raise NotFound(f"escalation {escalation_id} not found")
    existing = await repo.ticket_for_escalation(session, escalation.id)
    if existing is not None:
        return existing
    conversation = await session.get(Conversation, escalation.conversation_id)
    assert conversation is not None
    agent = await session.get(Agent, conversation.agent_id)
    assert agent is not None
    # Handed back before the worker got here (the user went back to the AI): file it solved.
    handed_back = escalation.status == EscalationStatus.SOLVED
    # A ticket filed solved takes nobody's turn.
    assignee = None if handed_back else await choose_assignee(session, agent.workspace_id)
    ticket = Ticket(
        escalation_id=escalation.id,
        workspace_id=agent.workspace_id,
        conversation_id=conversation.id,
        status="solved" if handed_back else "open",
        waiting=not handed_back,
        assignee_id=assignee.id if assignee else None,
    )
    await repo.add(session, ticket)
    if handed_back:
        await add_note(session, ticket, None, handback_note(escalation))
    escalation.ticket_id = ticket.id
    escalation.ticket_url = hf.ticket_url(ticket.id)
    lifecycle.ticket_opened(escalation)
    await publish_ticket(session, ticket)
    await publish_state(session, conversation, agent, escalation)
    return ticket


async def open_ticket_note(session: AsyncSession, conversation: Conversation, text: str) -> None:
    """Add an internal note to the conversation's open inbox ticket, if it exists yet."""
    ticket = await repo.open_ticket_of(session, conversation.id)
    if ticket is None:
        return
    await add_note(session, ticket, None, text)
    await touch_ticket(session, ticket, waiting=ticket.waiting)


def handback_note(escalation: Escalation) -> str:
    """Return what the ticket says about how its stretch ended."""
    return HANDBACK_NOTES[HandbackReason(escalation.handback_reason or HandbackReason.SOLVED)]


@dataclass(frozen=True, slots=True)
class TicketListing:
    """A page of the inbox as a caller asks for it; `cursor` continues an earlier page."""

    # open; waiting (open, and nobody on the team has answered this stretch: Stage.WAITING);
    # solved; or all
    status: str = "open"
    assignee: str | None = None  # "me", "unassigned" or a member's id
    reason: str | None = None
    platform: str | None = None
    channel: str | None = None
    conversation_id: str | None = None
    q: str | None = None
    sort: str = "newest"  # or "oldest_waiting"
    cursor: str | None = None
    limit: int = 50


async def list_tickets(
    hf: Handoff, session: AsyncSession, principal: Principal, listing: TicketListing
) -> dict[str, Any]:
    """Return a page of the caller's tickets, the cursor of the next page (None after the
    last) and how many open tickets each inbox view holds."""
    query = await _ticket_query(session, principal, listing)
    after = _resume_after(hf, principal, listing)
    rows = await repo.ticket_page(session, query, after, listing.limit + 1)
    page = rows[: listing.limit]
    more = len(rows) > listing.limit
    member_id = principal.member.id if principal.member else None
    counts = await repo.ticket_counts(session, principal.workspace_id, member_id)
    return {
        "tickets": await _summaries(session, page),
        "next_cursor": _cursor(hf, principal, listing, page[-1].key) if more else None,
        "counts": asdict(counts),
    }


async def _summaries(session: AsyncSession, page: list[repo.ListedTicket]) -> list[dict[str, Any]]:
    """Describe a page's tickets with two more queries, however many tickets it holds."""
    assignees = await repo.members_by_id(
        session, {row.ticket.assignee_id for row in page if row.ticket.assignee_id}
    )
    last = await repo.last_messages(session, [row.ticket.conversation_id for row in page])
    return [
        ticket_json(
            row.ticket,
            row.escalation,
            row.conversation,
            assignees.get(row.ticket.assignee_id) if row.ticket.assignee_id else None,
            last.get(row.ticket.conversation_id),
        )
        for row in page
    ]


async def _ticket_query(
    session: AsyncSession, principal: Principal, listing: TicketListing
) -> repo.TicketQuery:
    assignee_id = await _assignee_id(session, principal, listing.assignee)
    return repo.TicketQuery(
        workspace_id=principal.workspace_id,
        status={"all": None, "waiting": "open"}.get(listing.status, listing.status),
        waiting_only=listing.status == "waiting",
        assignee_id=assignee_id,
        unassigned=listing.assignee == ASSIGNEE_NOBODY,
        reason=listing.reason,
        platform=listing.platform,
        channel=listing.channel,
        conversation_id=listing.conversation_id,
        text=listing.q,
        oldest_waiting=listing.sort == "oldest_waiting",
    )


async def _assignee_id(
    session: AsyncSession, principal: Principal, assignee: str | None
) -> str | None:
    if assignee is None or assignee == ASSIGNEE_NOBODY:
        return None
    if assignee == ASSIGNEE_ME:
        if principal.member is None:
            raise Invalid("assignee", "the service admin holds no tickets", place="query")
        return principal.member.id
    member = await session.get(Member, assignee)
    if member is None or not principal.can_see(member.workspace_id):
        raise Invalid("assignee", "me, unassigned, or a member of this workspace", place="query")
    return member.id


def _listing_mark(principal: Principal, listing: TicketListing) -> str:
    """Identify the list a cursor continues: the same filters and order, for the same caller
    (`me` is someone else for another member)."""
    asked = asdict(replace(listing, cursor=None, limit=0))
    caller = principal.member.id if principal.member else None
    return hashlib.sha256(json.dumps([asked, caller], sort_keys=True).encode()).hexdigest()


def _cursor(hf: Handoff, principal: Principal, listing: TicketListing, key: repo.TicketKey) -> str:
    # Sealed by the vault: opaque to the caller, and a changed cursor does not open.
    rank, at, ticket_id = key
    mark = _listing_mark(principal, listing)
    return hf.vault.seal({"after": [rank, at.isoformat(), ticket_id], "list": mark})


def _resume_after(
    hf: Handoff, principal: Principal, listing: TicketListing
) -> repo.TicketKey | None:
    if listing.cursor is None:
        return None
    try:
        sealed = hf.vault.open(listing.cursor)
        rank, at, ticket_id = sealed["after"]
        key = (int(rank), datetime.fromisoformat(at), str(ticket_id))
        mark = sealed["list"]
    except (InvalidToken, ValueError, KeyError, TypeError) as error:
        raise InvalidCursor("not a cursor this service handed out") from error
    if mark != _listing_mark(principal, listing):
        raise InvalidCursor("this cursor continues another list: ask without it")
    return key


async def get_ticket(session: AsyncSession, principal: Principal, ticket_id: str) -> Ticket:
    """Load a ticket the caller may see; others' tickets do not exist for them."""
    return await visible_row(session, principal, Ticket, ticket_id, "ticket")


async def ticket_detail(hf: Handoff, session: AsyncSession, ticket: Ticket) -> dict[str, Any]:
    """Return a ticket with its transcript, notes and the decision's evidence."""
    detail = await ticket_summary(session, ticket)
    escalation = await session.get(Escalation, ticket.escalation_id)
    assert escalation is not None
    messages = await repo.messages_of(session, ticket.conversation_id)
    notes = await repo.notes_of(session, ticket.id)
    author_ids = {m.author_id for m in messages if m.author_id} | {
        n.author_id for n in notes if n.author_id
    }
    authors = await repo.members_by_id(session, author_ids)
    detail["messages"] = [
        message_json(m, authors.get(m.author_id) if m.author_id else None) for m in messages
    ]
    detail["notes"] = [
        note_json(n, authors.get(n.author_id) if n.author_id else None) for n in notes
    ]
    detail["evidence"] = list(escalation.evidence)
    detail["conversation_url"] = hf.conversation_url(ticket.conversation_id)
    return detail


async def reply(
    session: AsyncSession, ticket: Ticket, author: Member | None, text: str
) -> dict[str, Any]:
    """Send a human agent's reply to the visitor on their channel."""
    if ticket.status != "open":
        raise Conflict("this ticket is solved; the AI owns the conversation again")
    conversation = await session.get(Conversation, ticket.conversation_id)
    agent = await session.get(Agent, conversation.agent_id) if conversation else None
    assert conversation is not None and agent is not None
    message = await lifecycle.team_reply(session, conversation, agent, text, author=author)
    if ticket.assignee_id is None and author is not None:
        ticket.assignee_id = author.id  # whoever answers first takes the ticket
    await touch_ticket(session, ticket, waiting=False)
    return message_json(message, author)


async def assign(session: AsyncSession, ticket: Ticket, member_id: str | None) -> dict[str, Any]:
    """Give the ticket to a member of its workspace, or to nobody."""
    if member_id is not None:
        member = await session.get(Member, member_id)
        if member is None or member.workspace_id != ticket.workspace_id:
            raise Invalid("member_id", "no such member in this workspace")
        if member.disabled:
            raise Invalid("member_id", f"{member.name} is disabled and cannot take tickets")
    ticket.assignee_id = member_id
    await touch_ticket(session, ticket, waiting=ticket.waiting)
    return await ticket_summary(session, ticket)


async def solve(session: AsyncSession, ticket: Ticket) -> dict[str, Any]:
    """Solve the ticket and hand the conversation back to the AI; solving twice is a no-op."""
    # The user's "back to the AI" or a timer may be ending the stretch at this very moment:
    # take the conversation's lock, then look again.
    conversation = await repo.conversation_for_update(session, ticket.conversation_id)
    await session.refresh(ticket)
    if ticket.status == "solved":
        return await ticket_summary(session, ticket)
    escalation = await session.get(Escalation, ticket.escalation_id, populate_existing=True)
    assert conversation is not None and escalation is not None
    await lifecycle.hand_back(session, conversation, escalation, HandbackReason.SOLVED)
    ticket.status = "solved"
    await touch_ticket(session, ticket, waiting=False)
    return await ticket_summary(session, ticket)


async def reopen(session: AsyncSession, ticket: Ticket) -> dict[str, Any]:
    """Reopen a solved ticket: the team owns the conversation again and the visitor is told.

    Only the conversation's latest ticket reopens; reopening an open one is a no-op.
    """
    conversation = await repo.conversation_for_update(session, ticket.conversation_id)
    await session.refresh(ticket)
    if ticket.status == "open":
        return await ticket_summary(session, ticket)
    assert conversation is not None
    latest = await repo.latest_escalation(session, conversation.id)
    if latest is None or latest.id != ticket.escalation_id or conversation.owner != Owner.BOT:
        raise Conflict("this visitor has asked for a person again since: open the newer ticket")
    await lifecycle.reopen(session, conversation, latest)
    ticket.status = "open"
    await touch_ticket(session, ticket, waiting=False)
    return await ticket_summary(session, ticket)


async def typing(session: AsyncSession, ticket: Ticket, author: Member | None) -> None:
    """Tell the visitor that someone on the team is writing to them."""
    if ticket.status != "open":
        raise Conflict("this ticket is solved; the AI owns the conversation again")
    # Only the live event is kept: the widget shows it for a few seconds and forgets it.
    await events.publish(
        session,
        workspace_id=ticket.workspace_id,
        conversation_id=ticket.conversation_id,
        type="typing",
        data={
            "author": {
                "name": author.name if author else "Support team",
                "avatar_url": author.avatar_url if author else None,
            }
        },
        to_visitor=True,
        to_team=False,
    )


async def set_away(session: AsyncSession, principal: Principal, away: bool) -> dict[str, Any]:
    """Mark the calling member away (no new tickets) or back."""
    member = principal.member
    if member is None:
        raise Forbidden("only a member of a workspace has an away status")
    member.away = away
    await session.flush()
    return member_json(member)


async def team(session: AsyncSession, principal: Principal) -> list[dict[str, Any]]:
    """Return the members of the caller's workspace (every member for the service admin)."""
    return [member_json(m) for m in await repo.members_of(session, principal.workspace_id)]
