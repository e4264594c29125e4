"""Live updates: events are rows written in the same transaction as the change they describe.

Streams read the rows after the last id they sent (which also makes SSE resumable); the
in-process bus wakes them at once, and a short poll picks up rows other processes wrote.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
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
