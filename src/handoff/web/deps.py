"""Request plumbing: the service runtime, the request's unit of work and who the caller is.

A route names what it needs in its signature (`session: Session`, `principal: AdminAuth`,
`visitor: VisitorAuth`) and FastAPI provides it; a failed check answers 401, 403 or 404
before the route's body runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from handoff.service import admin
from handoff.service.auth import Principal, Visitor, authenticate, authenticate_visitor
from handoff.service.runtime import Handoff

bearer_scheme = HTTPBearer(auto_error=False, description="Admin, member or visitor token.")

# Methods that only read: their unit of work is read-only (no write lock on SQLite).
READING_METHODS = frozenset({"GET", "HEAD"})


def get_handoff(request: Request) -> Handoff:
    hf: Handoff = request.app.state.handoff
    return hf


def bearer_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> str | None:
    return credentials.credentials if credentials else None


def stream_token(
    request: Request, token: Annotated[str | None, Depends(bearer_token)]
) -> str | None:
    """Bearer header, or `access_token` in the query: EventSource cannot send headers."""
    return token or request.query_params.get("access_token")


HandoffDep = Annotated[Handoff, Depends(get_handoff)]
TokenDep = Annotated[str | None, Depends(bearer_token)]
StreamTokenDep = Annotated[str | None, Depends(stream_token)]


async def unit_of_work(request: Request, hf: HandoffDep) -> AsyncIterator[AsyncSession]:
    """Open the request's unit of work: read-only for GET, a write transaction otherwise."""
    opened = hf.reading() if request.method in READING_METHODS else hf.transaction()
    async with opened as session:
        yield session


# scope="function": the unit of work ends (commits) when the route returns, before the answer
# is sent, so a client never sees a success that was not stored, and a stream holds no session.
Session = Annotated[AsyncSession, Depends(unit_of_work, scope="function")]


async def member_principal(session: Session, token: TokenDep) -> Principal:
    return await authenticate(session, token)


async def streaming_member(session: Session, token: StreamTokenDep) -> Principal:
    return await authenticate(session, token)


async def admin_principal(session: Session, token: TokenDep) -> Principal:
    return await admin.authenticate_admin(session, token)


async def _visitor(hf: Handoff, conversation_id: str, token: str | None) -> Visitor:
    # Its own short read-only unit of work: a visitor's message is then drafted by the model
    # with no session open, and written in a transaction of its own.
    async with hf.reading() as session:
        return await authenticate_visitor(session, conversation_id, token)


async def checked_visitor(conversation_id: str, hf: HandoffDep, token: TokenDep) -> Visitor:
    return await _visitor(hf, conversation_id, token)


async def streaming_visitor(conversation_id: str, hf: HandoffDep, token: StreamTokenDep) -> Visitor:
    return await _visitor(hf, conversation_id, token)


# Any member's (or the service admin's) token.
MemberAuth = Annotated[Principal, Depends(member_principal)]
# An admin token: the service's, or a workspace admin's.
AdminAuth = Annotated[Principal, Depends(admin_principal)]
# The visitor token of the path's `conversation_id`.
VisitorAuth = Annotated[Visitor, Depends(checked_visitor)]
# The same for a stream, whose token may also come as `?access_token=`.
StreamMemberAuth = Annotated[Principal, Depends(streaming_member)]
StreamVisitorAuth = Annotated[Visitor, Depends(streaming_visitor)]
