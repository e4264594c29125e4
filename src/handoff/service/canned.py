"""Canned replies: a workspace's saved answers, filled in for the ticket at hand.

A reply's body may name variables in braces, `{first_name}` and the others of `VARIABLES`;
saving refuses any other name, so a typo shows when the admin writes it rather than in front
of a customer. A variable with no value (a visitor who left no name) becomes empty and the
space before the punctuation that followed it goes too: "Hi {first_name}," reads "Hi,".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from handoff.service.admin import get_workspace, require_admin
from handoff.service.auth import Principal, visible_row
from handoff.service.errors import Conflict, Invalid
from handoff.store import repositories as repo
from handoff.store.models import CannedReply, Conversation, Member, Ticket, utcnow

VARIABLES = {
    "first_name": "the contact's first name",
    "name": "the contact's full name",
    "email": "the contact's email address",
    "my_name": "the name of the member who sends the reply",
}
# Enough for a large team's library; a bound keeps one workspace from filling the database.
MAX_REPLIES_PER_WORKSPACE = 500
_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_GAP_BEFORE_PUNCTUATION = re.compile(r"[ \t]+([,.;:!?])")


def reply_json(reply: CannedReply) -> dict[str, Any]:
    return {"id": reply.id, "title": reply.title, "body": reply.body}


async def list_replies(
    session: AsyncSession,
    principal: Principal,
    workspace_id: str,
    contact: Conversation | None = None,
) -> list[dict[str, Any]]:
    """Return the workspace's replies; given a contact, each with its `text` filled in."""
    await get_workspace(session, principal, workspace_id)
    replies = await repo.canned_replies_of(session, workspace_id)
    if contact is None:
        return [reply_json(reply) for reply in replies]
    return [
        reply_json(reply) | {"text": fill(reply.body, contact, principal.member)}
        for reply in replies
    ]


async def replies_for_ticket(
    session: AsyncSession, principal: Principal, ticket: Ticket
) -> list[dict[str, Any]]:
    contact = await session.get(Conversation, ticket.conversation_id)
    return await list_replies(session, principal, ticket.workspace_id, contact)


async def create_reply(
    session: AsyncSession, principal: Principal, workspace_id: str, title: str, body: str
) -> CannedReply:
    require_admin(principal)
    await get_workspace(session, principal, workspace_id)
    if len(await repo.canned_replies_of(session, workspace_id)) >= MAX_REPLIES_PER_WORKSPACE:
        raise Conflict(f"a workspace keeps at most {MAX_REPLIES_PER_WORKSPACE} canned replies")
    await _check_title_free(session, workspace_id, title)
    reply = CannedReply(workspace_id=workspace_id, title=title, body=check_body(body))
    await _save(session, reply)
    return reply


async def update_reply(
    session: AsyncSession, principal: Principal, reply_id: str, title: str, body: str
) -> CannedReply:
    reply = await _reply_to_manage(session, principal, reply_id)
    # Checked before the row changes: the query would flush the new title first.
    await _check_title_free(session, reply.workspace_id, title, reply.id)
    reply.title, reply.body, reply.updated_at = title, check_body(body), utcnow()
    await _save(session, reply)
    return reply


async def delete_reply(session: AsyncSession, principal: Principal, reply_id: str) -> None:
    await session.delete(await _reply_to_manage(session, principal, reply_id))


def check_body(body: str) -> str:
    unknown = sorted({name for name in _VARIABLE.findall(body) if name not in VARIABLES})
    if unknown:
        known = ", ".join(f"{{{name}}}" for name in VARIABLES)
        raise Invalid("body", f"unknown variable {{{unknown[0]}}}; use {known}")
    return body


def fill(body: str, contact: Conversation, sender: Member | None) -> str:
    """Replace each variable by its value for this contact and sender."""
    values = _values(contact, sender)
    filled = _VARIABLE.sub(lambda match: values.get(match.group(1), match.group(0)), body)
    return _GAP_BEFORE_PUNCTUATION.sub(r"\1", filled)


def _values(contact: Conversation, sender: Member | None) -> Mapping[str, str]:
    name = (contact.contact_name or "").strip()
    return {
        "first_name": name.split()[0] if name else "",
        "name": name,
        "email": contact.contact_email or "",
        "my_name": sender.name if sender else "",
    }


async def _reply_to_manage(
    session: AsyncSession, principal: Principal, reply_id: str
) -> CannedReply:
    require_admin(principal)
    return await visible_row(session, principal, CannedReply, reply_id, "canned reply")


async def _check_title_free(
    session: AsyncSession, workspace_id: str, title: str, reply_id: str | None = None
) -> None:
    existing = await repo.canned_reply_titled(session, workspace_id, title)
    if existing is not None and existing.id != reply_id:
        raise Conflict(f"title: a canned reply titled {title!r} exists already")


async def _save(session: AsyncSession, reply: CannedReply) -> None:
    try:
        await repo.add(session, reply)
    except IntegrityError as error:  # the same title saved at the same moment
        raise Conflict(f"title: a canned reply titled {reply.title!r} exists already") from error
