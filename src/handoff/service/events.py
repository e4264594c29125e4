"""Live updates: events are rows written in the same transaction as the change they describe.

Streams read the rows after the last id they sent (which also makes SSE resumable); the
in-process bus wakes them at once, and a short poll picks up rows other processes wrote.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handoff.store import repositories as repo
from handoff.store.models import Event


class EventBus:
    """Wakes every waiter when something was committed in this process."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait(self, seconds: float) -> None:
        """Return when something changes, or after `seconds` at the latest."""
        changed = self._changed
        with suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), seconds)


async def prune(session: AsyncSession, *, before: datetime) -> int:
    """Delete the events written before `before`; return how many. Streams need only recent
    ones (a reconnecting client reloads the conversation), and typing pings add up."""
    return await repo.delete_events_before(session, before)


async def publish(
    session: AsyncSession,
    *,
    workspace_id: str,
    conversation_id: str,
    type: str,
    data: dict[str, Any],
    to_visitor: bool,
    to_team: bool,
) -> None:
    """Record an event for the visitor's stream, the team's stream, or both."""
    await repo.add(
        session,
        Event(
            workspace_id=workspace_id,
            conversation_id=conversation_id,
            type=type,
            data=data,
            to_visitor=to_visitor,
            to_team=to_team,
        ),
    )


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One event as a stream sends it: its id (the SSE id), its type and its payload."""

    id: int
    type: str
    data: dict[str, Any]


async def for_visitor(
    session: AsyncSession, conversation_id: str, after: int
) -> Sequence[LiveEvent]:
    """Return the visitor's events after `after`: messages as themselves, owner changes."""
    rows = await repo.events_after(session, after, conversation_id=conversation_id)
    return [
        LiveEvent(row.id, row.type, row.data["message"] if row.type == "message" else row.data)
        for row in rows
    ]


async def for_team(
    session: AsyncSession, workspace_id: str | None, after: int
) -> Sequence[LiveEvent]:
    """Return the team's events after `after`; `workspace_id` None means every workspace."""
    rows = await repo.events_after(session, after, workspace_id=workspace_id)
    return [LiveEvent(row.id, row.type, row.data) for row in rows]


async def newest_id(session: AsyncSession) -> int:
    return await repo.last_event_id(session)
