"""The team API: login, tickets of the built-in inbox, replies, notes, assignment, solving."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sse_starlette.sse import EventSourceResponse

from handoff.service import events, inbox, tickets
from handoff.service.auth import Principal, login
from handoff.service.ratelimit import LOGINS_PER_IP
from handoff.service.views import member_json
from handoff.web.deps import HandoffDep, MemberAuth, Session, StreamMemberAuth
from handoff.web.ratelimit import per_address
from handoff.web.responses import (
    CallerOut,
    LoginOut,
    MemberOut,
    MessageOut,
    NoteOut,
    TicketDetailOut,
    TicketOut,
    TicketPageOut,
)
from handoff.web.schemas import AssignIn, AwayIn, LoginIn, ReplyIn, TicketListIn
from handoff.web.streams import event_stream, resume_point

router = APIRouter(prefix="/api/v1", tags=["inbox"])


def _me(principal: Principal) -> dict[str, Any]:
    if principal.member is not None:
        return member_json(principal.member)
    return {"id": None, "name": "Service admin", "email": None, "role": "admin"}


# Every attempt counts, right or wrong: a password guesser gets few tries per address.
@router.post(
    "/auth/login", dependencies=[Depends(per_address(LOGINS_PER_IP))], response_model=LoginOut
)
async def login_member(body: LoginIn, hf: HandoffDep) -> dict[str, Any]:
    """Exchange a member's email and password for an inbox token."""
    member, token = await login(hf, str(body.email), body.password)
    return {"token": token, "member": member_json(member)}


@router.get("/me", response_model=CallerOut, response_model_exclude_unset=True)
async def me(principal: MemberAuth) -> dict[str, Any]:
    """Return who the token belongs to."""
    return _me(principal)


@router.get("/members", response_model=list[MemberOut])
async def list_members(session: Session, principal: MemberAuth) -> list[dict[str, Any]]:
    """Return the members of the caller's workspace (all members for the service admin)."""
    return await inbox.team(session, principal)


@router.get("/tickets", response_model=TicketPageOut)
async def list_tickets(
    params: Annotated[TicketListIn, Query()],
    hf: HandoffDep,
    session: Session,
    principal: MemberAuth,
) -> dict[str, Any]:
    """Return a page of the built-in inbox's tickets and the count of each inbox view.

    Pass `next_cursor` back as `cursor`, with the same filters, for the next page.
    """
    listing = inbox.TicketListing(**params.model_dump(mode="json"))
    return await inbox.list_tickets(hf, session, principal, listing)


@router.get("/tickets/{ticket_id}", response_model=TicketDetailOut)
async def get_ticket(
    ticket_id: str, hf: HandoffDep, session: Session, principal: MemberAuth
) -> dict[str, Any]:
    """Return a ticket with its transcript, internal notes and the decision's evidence."""
    ticket = await inbox.get_ticket(session, principal, ticket_id)
    return await inbox.ticket_detail(hf, session, ticket)


@router.post("/tickets/{ticket_id}/replies", status_code=201, response_model=MessageOut)
async def reply(
    ticket_id: str, body: ReplyIn, session: Session, principal: MemberAuth
) -> dict[str, Any]:
    """Send a reply to the user, on the channel they wrote from."""
    ticket = await inbox.get_ticket(session, principal, ticket_id)
    return await inbox.reply(session, ticket, principal.member, body.text)


@router.post("/tickets/{ticket_id}/notes", status_code=201, response_model=NoteOut)
async def add_note(
    ticket_id: str, body: ReplyIn, session: Session, principal: MemberAuth
) -> dict[str, Any]:
    """Add an internal note; the user never sees it."""
    ticket = await inbox.get_ticket(session, principal, ticket_id)
    return await tickets.add_note(session, ticket, principal.member, body.text)


@router.post("/tickets/{ticket_id}/assign", response_model=TicketOut)
async def assign(
    ticket_id: str, body: AssignIn, session: Session, principal: MemberAuth
) -> dict[str, Any]:
    """Assign the ticket to a member of its workspace, or unassign it with null."""
    ticket = await inbox.get_ticket(session, principal, ticket_id)
    return await inbox.assign(session, ticket, body.member_id)


@router.post("/tickets/{ticket_id}/solve", response_model=TicketOut)
async def solve(ticket_id: str, session: Session, principal: MemberAuth) -> dict[str, Any]:
    """Solve the ticket: the AI takes the conversation back and tells the user."""
    ticket = await inbox.get_ticket(session, principal, ticket_id)
    return await inbox.solve(session, ticket)


@router.post("/tickets/{ticket_id}/reopen", response_model=TicketOut)
async def reopen(ticket_id: str, session: Session, principal: MemberAuth) -> dict[str, Any]:
    """Reopen a solved ticket: the team owns the conversation again and the user is told.
    Only a conversation's latest ticket can be reopened (409 otherwise)."""
    ticket = await inbox.get_ticket(session, principal, ticket_id)
    return await inbox.reopen(session, ticket)


@router.post("/tickets/{ticket_id}/typing", status_code=204)
async def typing(ticket_id: str, session: Session, principal: MemberAuth) -> Response:
    """Show the visitor that the caller is writing a reply (send one every few seconds)."""
    ticket = await inbox.get_ticket(session, principal, ticket_id)
    await inbox.typing(session, ticket, principal.member)
    return Response(status_code=204)


@router.put("/inbox/me", response_model=MemberOut)
async def set_my_status(body: AwayIn, session: Session, principal: MemberAuth) -> dict[str, Any]:
    """Set the caller's away status: away members get no new tickets automatically."""
    return await inbox.set_away(session, principal, body.away)


@router.get("/inbox/events", response_class=EventSourceResponse)
async def inbox_events(
    request: Request, hf: HandoffDep, session: Session, principal: StreamMemberAuth
) -> EventSourceResponse:
    """Stream ticket changes (`ticket`), transcript messages (`message`) and notes (`note`).

    Pass the token as a bearer header or `?access_token=`; resume with Last-Event-ID.
    """
    newest = await events.newest_id(session)
    return event_stream(
        hf,
        request,
        resume_point(request, newest),
        lambda session, after: events.for_team(session, principal.workspace_id, after),
        events.team_key(principal.workspace_id),
    )
