"""Inbox tickets as the team sees them, and the live updates that keep the list current."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handoff.service import events
from handoff.service.views import note_json, ticket_json
from handoff.store import repositories as repo
from handoff.store.models import Conversation, Escalation, Member, Note, Ticket, utcnow


async def touch_ticket(session: AsyncSession, ticket: Ticket, *, waiting: bool) -> None:
    """Mark new activity on a ticket and tell the team."""
    ticket.waiting = waiting
    ticket.updated_at = utcnow()
    await session.flush()
    await publish_ticket(session, ticket)


async def publish_ticket(session: AsyncSession, ticket: Ticket) -> None:
    """Send the ticket's current list item to the team's stream."""
    await events.publish(
        session,
        workspace_id=ticket.workspace_id,
        conversation_id=ticket.conversation_id,
        type="ticket",
        data=await ticket_summary(session, ticket),
        to_visitor=False,
        to_team=True,
    )


async def ticket_summary(session: AsyncSession, ticket: Ticket) -> dict[str, Any]:
    escalation = await session.get(Escalation, ticket.escalation_id)
    conversation = await session.get(Conversation, ticket.conversation_id)
    assert escalation is not None and conversation is not None
    assignee = await session.get(Member, ticket.assignee_id) if ticket.assignee_id else None
    last = (await repo.last_messages(session, [ticket.conversation_id])).get(ticket.conversation_id)
    return ticket_json(ticket, escalation, conversation, assignee, last)


async def add_note(
    session: AsyncSession, ticket: Ticket, author: Member | None, text: str
) -> dict[str, Any]:
    """Add an internal note; only the team's stream carries it."""
    note = Note(ticket_id=ticket.id, author_id=author.id if author else None, text=text)
    await repo.add(session, note)
    data = note_json(note, author)
    await events.publish(
        session,
        workspace_id=ticket.workspace_id,
        conversation_id=ticket.conversation_id,
        type="note",
        data={"ticket_id": ticket.id, "note": data},
        to_visitor=False,
        to_team=True,
    )
    return data
