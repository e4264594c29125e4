"""Who is calling: the service admin, a workspace member, or a conversation's visitor."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from handoff.service.errors import NotFound, Unauthorized
from handoff.service.security import check_password, hash_token, new_token
from handoff.store import repositories as repo
from handoff.store.models import Agent, ApiToken, Conversation, Member


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
    if member is None:
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


async def login(session: AsyncSession, email: str, password: str) -> tuple[Member, str]:
    """Check a member's password and issue an inbox session token."""
    member = await repo.member_by_email(session, email)
    if member is None or not check_password(password, member.password_hash):
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
