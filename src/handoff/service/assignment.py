"""Who gets a new inbox ticket: the workspace's assignment mode, availability and caps.

Modes:

- ``manual``: nobody; a member takes the ticket (or answers it, which takes it).
- ``round_robin``: the available member whose last automatic assignment is the oldest;
  members never assigned come first.
- ``least_loaded``: the available member with the fewest open tickets; ties go to the one
  assigned longest ago.

A member is available when they are not away and hold fewer open tickets than their optional
``max_open_tickets``. Nobody available leaves the ticket unassigned.

The choice reads counts and then writes, so two tickets created at once could both see a
free slot. The workspace row is locked first (``FOR UPDATE`` on PostgreSQL; SQLite
transactions here take the write lock at BEGIN), so choices in one workspace happen one at a
time and each sees the tickets committed before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from handoff.store import repositories as repo
from handoff.store.models import Member, utcnow

MANUAL = "manual"
ROUND_ROBIN = "round_robin"
LEAST_LOADED = "least_loaded"
MODES: tuple[str, ...] = (MANUAL, ROUND_ROBIN, LEAST_LOADED)

# Sorts members never assigned before everyone else.
_NEVER = datetime.min.replace(tzinfo=UTC)


def _has_room(member: Member, load: int) -> bool:
    return member.max_open_tickets is None or load < member.max_open_tickets


def pick(mode: str, members: Sequence[Member], loads: dict[str, int]) -> Member | None:
    """Return the member `mode` picks among available `members`, or None."""
    available = [m for m in members if _has_room(m, loads.get(m.id, 0))]
    if mode == MANUAL or not available:
        return None

    def turn(member: Member) -> tuple[datetime, datetime, str]:
        # Creation order breaks ties between members never assigned, so the order is stable.
        return (member.last_assigned_at or _NEVER, member.created_at, member.id)

    if mode == ROUND_ROBIN:
        return min(available, key=turn)
    return min(available, key=lambda m: (loads.get(m.id, 0), *turn(m)))


async def choose_assignee(session: AsyncSession, workspace_id: str) -> Member | None:
    """Pick the member a new ticket goes to by the workspace's mode, and stamp their turn.

    Call inside the transaction that creates the ticket: the workspace stays locked until
    it commits.
    """
    workspace = await repo.workspace_for_update(session, workspace_id)
    if workspace is None or workspace.assignment not in (ROUND_ROBIN, LEAST_LOADED):
        return None
    members = await repo.present_members(session, workspace_id)
    loads = await repo.open_ticket_counts(session, workspace_id, [m.id for m in members])
    chosen = pick(workspace.assignment, members, loads)
    if chosen is not None:
        chosen.last_assigned_at = utcnow()
    return chosen
