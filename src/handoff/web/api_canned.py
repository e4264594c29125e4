"""Canned replies: members read them filled in for a ticket; admins write them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from handoff.service import canned, inbox
from handoff.service.errors import Invalid
from handoff.web.deps import AdminAuth, MemberAuth, Session
from handoff.web.responses import CannedReplyOut
from handoff.web.schemas import CannedReplyIn, Id

router = APIRouter(prefix="/api/v1", tags=["inbox"])


@router.get("/canned-replies", response_model=list[CannedReplyOut])
async def list_canned_replies(
    session: Session,
    principal: MemberAuth,
    ticket_id: Annotated[Id | None, Query(description="Fill the replies in for it.")] = None,
    workspace_id: Annotated[
        Id | None, Query(description="Needed with the service admin's token only.")
    ] = None,
) -> list[dict[str, Any]]:
    """Return the workspace's canned replies by title; with `ticket_id`, each one's `text`
    is filled in for that ticket's contact and the caller."""
    if ticket_id is not None:
        ticket = await inbox.get_ticket(session, principal, ticket_id)
        return await canned.replies_for_ticket(session, principal, ticket)
    workspace_id = workspace_id or principal.workspace_id
    if workspace_id is None:
        raise Invalid("workspace_id", "required with the service admin's token")
    return await canned.list_replies(session, principal, workspace_id)


@router.post(
    "/workspaces/{workspace_id}/canned-replies", status_code=201, response_model=CannedReplyOut
)
async def create_canned_reply(
    workspace_id: str, body: CannedReplyIn, session: Session, principal: AdminAuth
) -> dict[str, Any]:
    """Save a reply the workspace's members can insert in one click."""
    reply = await canned.create_reply(session, principal, workspace_id, body.title, body.body)
    return canned.reply_json(reply)


@router.put("/canned-replies/{reply_id}", response_model=CannedReplyOut)
async def update_canned_reply(
    reply_id: str, body: CannedReplyIn, session: Session, principal: AdminAuth
) -> dict[str, Any]:
    """Replace a canned reply's title and body."""
    reply = await canned.update_reply(session, principal, reply_id, body.title, body.body)
    return canned.reply_json(reply)


@router.delete("/canned-replies/{reply_id}", status_code=204)
async def delete_canned_reply(reply_id: str, session: Session, principal: AdminAuth) -> Response:
    await canned.delete_reply(session, principal, reply_id)
    return Response(status_code=204)
