"""The team an admin runs: invite members, set their role, reset a password, disable them.

A password an admin does not choose is generated here and returned once; only its hash is
kept. Hashing (scrypt, tens of milliseconds) runs in a worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from handoff.service.admin import get_workspace, require_admin
from handoff.service.auth import Principal, visible_row
from handoff.service.errors import Conflict, Invalid
from handoff.service.security import hash_password
from handoff.store import repositories as repo
from handoff.store.models import Member

ROLES = ("admin", "agent")


def generated_password() -> str:
    """A password for the admin to hand over: 16 characters, about 96 bits."""
    return secrets.token_urlsafe(12)


async def create_member(
    session: AsyncSession,
    principal: Principal,
    *,
    workspace_id: str,
    email: str,
    name: str,
    role: str,
    password: str | None,
) -> tuple[Member, str | None]:
    """Add a member; without a password one is generated and returned (once) beside it."""
    require_admin(principal)
    await get_workspace(session, principal, workspace_id)
    _check_role(role)
    if await repo.member_by_email(session, email) is not None:
        raise Conflict(f"a member with email {email} exists already")
    initial = None if password else generated_password()
    member = Member(
        workspace_id=workspace_id,
        email=email,
        name=name,
        role=role,
        password_hash=await asyncio.to_thread(hash_password, password or initial or ""),
    )
    await repo.add(session, member)
    return member, initial


async def update_member(
    session: AsyncSession, principal: Principal, member_id: str, fields: dict[str, Any]
) -> Member:
    """Change a member's avatar, away status, cap on automatically assigned tickets, role,
    or disable them (their sessions end, their open tickets go back to Unassigned).

    Only the keys present in `fields` change; None clears the avatar or the cap. An admin
    cannot demote or disable themselves, nor leave a workspace without an enabled admin.
    """
    member = await _member_to_manage(session, principal, member_id)
    if "avatar_url" in fields:
        member.avatar_url = _check_avatar_url(fields["avatar_url"])
    if fields.get("away") is not None:
        member.away = fields["away"]
    if "max_open_tickets" in fields:
        member.max_open_tickets = fields["max_open_tickets"]
    if fields.get("role") is not None and fields["role"] != member.role:
        _check_role(fields["role"])
        await _keep_an_admin(session, principal, member, "role")
        member.role = fields["role"]
    if fields.get("disabled") is not None and fields["disabled"] != member.disabled:
        if fields["disabled"]:
            await _keep_an_admin(session, principal, member, "disabled")
            await repo.end_sessions(session, member.id)
            await repo.unassign_open_tickets(session, member.id)
        member.disabled = fields["disabled"]
    await session.flush()
    return member


async def reset_password(
    session: AsyncSession, principal: Principal, member_id: str, password: str | None
) -> tuple[Member, str | None]:
    """Give a member a new password (generated and returned once when none is given); every
    session they had ends."""
    member = await _member_to_manage(session, principal, member_id)
    generated = None if password else generated_password()
    member.password_hash = await asyncio.to_thread(hash_password, password or generated or "")
    await repo.end_sessions(session, member.id)
    await session.flush()
    return member, generated


async def _member_to_manage(session: AsyncSession, principal: Principal, member_id: str) -> Member:
    require_admin(principal)
    return await visible_row(session, principal, Member, member_id, "member")


async def _keep_an_admin(
    session: AsyncSession, principal: Principal, member: Member, field: str
) -> None:
    """Refuse a change that would lock the caller or the workspace out of its settings."""
    if principal.member is not None and principal.member.id == member.id:
        raise Conflict(f"{field}: you cannot change this on your own account")
    if member.role == "admin" and not await repo.admins_left(
        session, member.workspace_id, without=member.id
    ):
        raise Conflict(f"{field}: the workspace needs at least one enabled admin")


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise Invalid("role", f"must be one of {', '.join(ROLES)}")


def _check_avatar_url(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or re.search(r"\s", url):
        raise Invalid("avatar_url", "must be an http:// or https:// URL of an image")
    return url
