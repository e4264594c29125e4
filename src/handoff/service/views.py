"""JSON shapes shared by the API responses and the live event streams."""

from __future__ import annotations

from typing import Any

from handoff.service.lifecycle.stages import Stage, stage_of
from handoff.store.models import Conversation, Escalation, Member, Message, Note, Ticket


def member_json(member: Member) -> dict[str, Any]:
    return {
        "id": member.id,
        "name": member.name,
        "email": member.email,
        "role": member.role,
        "avatar_url": member.avatar_url,
        "away": member.away,
        "max_open_tickets": member.max_open_tickets,
        "disabled": member.disabled,
    }


def message_json(message: Message, author: Member | None = None) -> dict[str, Any]:
    return {
        "id": message.id,
        "role": message.role,
        "text": message.text,
        "created_at": message.created_at.isoformat(),
        "author": _author(message, author),
        # The channel's own id for the message, so a client can match its unsent copy.
        "client_id": message.client_id,
    }


def _author(message: Message, member: Member | None) -> dict[str, Any] | None:
    if member is not None:
        return {"id": member.id, "name": member.name, "avatar_url": member.avatar_url}
    if message.author_name:  # a human agent in an external helpdesk
        return {"id": None, "name": message.author_name, "avatar_url": None}
    return None


def escalation_json(
    escalation: Escalation | None, *, for_team: bool = False
) -> dict[str, Any] | None:
    """Describe an escalation; why a ticket could not be made is for the team's eyes only."""
    if escalation is None:
        return None
    ticket = {"id": escalation.ticket_id, "url": escalation.ticket_url}
    data: dict[str, Any] = {
        "id": escalation.id,
        "status": escalation.status,
        "reasons": list(escalation.reasons),
        "platform": escalation.platform,
        "ticket": ticket if escalation.ticket_id else None,
        "created_at": escalation.created_at.isoformat(),
    }
    if for_team:
        data["error"] = escalation.last_error
    return data


def contact_json(conversation: Conversation) -> dict[str, Any]:
    return {
        "name": conversation.contact_name,
        "email": conversation.contact_email,
        "phone": conversation.contact_phone,
        "external_id": conversation.contact_external_id,
    }


def conversation_state_json(
    conversation: Conversation, escalation: Escalation | None
) -> dict[str, Any]:
    """Who owns the conversation; `waiting` while the team owns it and nobody answered yet."""
    return {
        "id": conversation.id,
        "owner": conversation.owner,
        "escalation": escalation_json(escalation),
        "waiting": stage_of(conversation, escalation) == Stage.WAITING,
        "language": conversation.language,
    }


def note_json(note: Note, author: Member | None) -> dict[str, Any]:
    return {
        "id": note.id,
        "text": note.text,
        "author": {"id": author.id, "name": author.name} if author else None,
        "created_at": note.created_at.isoformat(),
    }


def ticket_json(
    ticket: Ticket,
    escalation: Escalation,
    conversation: Conversation,
    assignee: Member | None,
    last_message: Message | None,
) -> dict[str, Any]:
    return {
        "id": ticket.id,
        "conversation_id": ticket.conversation_id,
        "status": ticket.status,
        "subject": escalation.subject,
        "reasons": list(escalation.reasons),
        "summary": escalation.summary,
        "contact": contact_json(conversation),
        "channel": conversation.channel,
        "assignee": {"id": assignee.id, "name": assignee.name} if assignee else None,
        "waiting": ticket.waiting,
        "created_at": ticket.created_at.isoformat(),
        "updated_at": ticket.updated_at.isoformat(),
        "last_message": (
            {
                "role": last_message.role,
                "text": last_message.text,
                "created_at": last_message.created_at.isoformat(),
            }
            if last_message
            else None
        ),
    }
