"""Who is calling: the service admin, a workspace member, or a conversation's visitor."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from handoff.service.errors import NotFound, Unauthorized
from handoff.service.security import check_password, hash_password, hash_token, new_token
from handoff.store import repositories as repo
from handoff.store.models import Agent, ApiToken, Conversation, Member

if TYPE_CHECKING:
    from handoff.service.runtime import Handoff

# What an unknown email's password is checked against (see `login`).
_STAND_IN_HASH = hash_password("stand-in: no member has this password")


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated admin or member. `workspace_id` None means every workspace."""

    member: Member | None
    workspace_id: str | None
    is_admin: bool

    @property
    def name(self) -> str:
        return self.member.name if self.member else "Admin"

    def can_see(self, workspace_id: str) -> bool:
        return self.workspace_id is None or self.workspace_id == workspace_id


class _InWorkspace(Protocol):
    @property
    def workspace_id(self) -> str: ...


RowT = TypeVar("RowT", bound=_InWorkspace)


async def visible_row(
    session: AsyncSession, principal: Principal, model: type[RowT], row_id: str, what: str
) -> RowT:
    """Load a row of the caller's workspace; other workspaces' rows do not exist for them."""
    row = await session.get(model, row_id)
    if row is None or not principal.can_see(row.workspace_id):
        raise NotFound(f"{what} not found")
    return row


async def authenticate(session: AsyncSession, token: str | None) -> Principal:
    """Resolve a bearer token to its principal, or refuse."""
    if not token:
        raise Unauthorized("missing bearer token")
    row = await repo.token_by_hash(session, hash_token(token))
    if row is None:
        raise Unauthorized("invalid token")
    if row.member_id is None:
        return Principal(member=None, workspace_id=None, is_admin=True)
    member = await session.get(Member, row.member_id)
    if member is None or member.disabled:
        raise Unauthorized("invalid token")
    return Principal(
        member=member, workspace_id=member.workspace_id, is_admin=member.role == "admin"
    )


async def issue_token(session: AsyncSession, member: Member | None, label: str) -> str:
    """Create a bearer token for a member (or the service admin) and return it once."""
    token = new_token("hk")
    await repo.add(
        session,
        ApiToken(
            token_hash=hash_token(token), member_id=member.id if member else None, label=label
        ),
    )
    return token


async def ensure_admin_token(session: AsyncSession, configured: str | None) -> str | None:
    """Store the configured admin token, or create one when none exists; return a new one."""
    if configured:
        if await repo.token_by_hash(session, hash_token(configured)) is None:
            await repo.add(
                session,
                ApiToken(
                    token_hash=hash_token(configured), member_id=None, label="HANDOFF_ADMIN_TOKEN"
                ),
            )
        return None
    if await repo.has_admin_token(session):
        return None
    return await issue_token(session, None, "bootstrap")


async def login(hf: Handoff, email: str, password: str) -> tuple[Member, str]:
    """Check a member's password and issue an inbox session token.

    The hash is checked in a worker thread with no transaction open: scrypt takes tens of
    milliseconds, which on the event loop would stall every other request. An unknown email
    is checked against a stand-in hash, so the time taken does not tell which emails exist.
    """
    async with hf.reading() as session:
        found = await repo.member_by_email(session, email)
        # A disabled member gets the same answer as an unknown email.
        usable = found if found is not None and not found.disabled else None
        member_id, stored = (usable.id, usable.password_hash) if usable else (None, None)
    matches = await asyncio.to_thread(check_password, password, stored or _STAND_IN_HASH)
    if member_id is None or stored is None or not matches:
        raise Unauthorized("wrong email or password")
    async with hf.transaction() as session:
        member = await session.get(Member, member_id)
        if member is None or member.disabled:  # removed or disabled in between
            raise Unauthorized("wrong email or password")
        return member, await issue_token(session, member, "inbox login")


async def visitor_conversation(
    session: AsyncSession, conversation_id: str, token: str | None
) -> Conversation:
    """Return the conversation a visitor token opens; any other id looks nonexistent."""
    if not token:
        raise Unauthorized("missing bearer token")
    own = await repo.conversation_by_token(session, hash_token(token))
    if own is None:
        raise Unauthorized("invalid token")
    if own.id != conversation_id:
        raise NotFound("conversation not found")
    return own


@dataclass(frozen=True, slots=True)
class Visitor:
    """A conversation's checked visitor: plain values, usable once the session is closed."""

    conversation_id: str
    agent_id: str


async def authenticate_visitor(
    session: AsyncSession, conversation_id: str, token: str | None
) -> Visitor:
    """Check a visitor token against the conversation it claims, as `visitor_conversation`."""
    conversation = await visitor_conversation(session, conversation_id, token)
    return Visitor(conversation_id=conversation.id, agent_id=conversation.agent_id)


async def readable_conversation(
    session: AsyncSession, conversation_id: str, token: str | None
) -> tuple[Conversation, bool]:
    """Return a conversation for its visitor, or for a member of its agent's workspace, and
    whether the caller is on the team."""
    try:
        return await visitor_conversation(session, conversation_id, token), False
    except Unauthorized:
        principal = await authenticate(session, token)
    conversation = await session.get(Conversation, conversation_id)
    agent = await session.get(Agent, conversation.agent_id) if conversation else None
    if conversation is None or agent is None or not principal.can_see(agent.workspace_id):
        raise NotFound("conversation not found")
    return conversation, True
