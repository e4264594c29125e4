"""Live updates: events are rows written in the same transaction as the change they describe.

Streams read the rows after the last id they sent (which also makes SSE resumable). A commit
wakes only the streams its events concern: `publish` notes the conversation and workspace in
the session, and the bus hears of them once the unit of work has committed. On PostgreSQL,
`publish` also sends a NOTIFY (delivered on commit) that every process's listener turns into
the same wake-ups, so a stream hears of other processes' events at once; a slow poll stays as
a safety net. On SQLite streams poll for the events of other processes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handoff.store import repositories as repo
from handoff.store.models import Event

# Where a unit of work's session collects the keys its events concern, for the bus.
_CHANGED = "handoff_live_keys"
EVERYTHING = "*"  # the key of the instance-wide team stream: every workspace's team events


def visitor_key(conversation_id: str) -> str:
    return f"conversation:{conversation_id}"


def team_key(workspace_id: str | None) -> str:
    """The key of a workspace's team stream; None is the instance-wide one."""
    return f"workspace:{workspace_id}" if workspace_id is not None else EVERYTHING


def announced_keys(payload: str) -> set[str]:
    """The keys another process's NOTIFY payload ('<workspace_id> <conversation_id>') wakes."""
    workspace_id, _, conversation_id = payload.partition(" ")
    if not workspace_id or not conversation_id:
        return set()
    return {visitor_key(conversation_id), team_key(workspace_id), EVERYTHING}


class Watch:
    """One waiter's view of the bus: set by the commits that concern it since it last waited,
    so a commit that lands between a stream's read and its wait is never missed."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def wake(self) -> None:
        self._changed.set()

    async def wait(self, seconds: float) -> None:
        """Return when something it watches changed, or after `seconds` at the latest."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), seconds)
        self._changed.clear()


class EventBus:
    """Wakes, within this process, the waiters a commit concerns.

    Streams watch one key (a conversation, a workspace, or every team event); `wait` without
    a key (the outbox worker's) returns on any commit at all.
    """

    def __init__(self) -> None:
        self._watches: dict[str, set[Watch]] = {}
        self._any_commit: set[Watch] = set()

    @contextmanager
    def watching(self, key: str) -> Iterator[Watch]:
        """Register a watch on `key` for the duration of the block (a stream's life)."""
        watch = Watch()
        self._watches.setdefault(key, set()).add(watch)
        try:
            yield watch
        finally:
            watchers = self._watches[key]
            watchers.discard(watch)
            if not watchers:
                del self._watches[key]

    async def wait(self, seconds: float) -> None:
        """Return on the next commit of any kind, or after `seconds` at the latest."""
        watch = Watch()
        self._any_commit.add(watch)
        try:
            await watch.wait(seconds)
        finally:
            self._any_commit.discard(watch)

    def notify(self, keys: Iterable[str] = ()) -> None:
        """Wake the watches of `keys` and every waiter on any commit."""
        for watch in self._any_commit:
            watch.wake()
        for key in keys:
            for watch in self._watches.get(key, ()):
                watch.wake()

    def notify_all(self) -> None:
        """Wake everyone: events may have been missed (the listener lost its connection)."""
        self.notify(list(self._watches))

    def committed(self, info: dict[Any, Any]) -> None:
        """Called with a unit of work's session info once it has committed."""
        self.notify(info.pop(_CHANGED, ()))


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
    changed: set[str] = session.info.setdefault(_CHANGED, set())
    keys = {visitor_key(conversation_id)} if to_visitor else set()
    if to_team:
        keys |= {team_key(workspace_id), EVERYTHING}
    if not keys <= changed:
        # Once per conversation and transaction: PostgreSQL folds equal payloads anyway.
        await repo.announce_event(session, workspace_id, conversation_id)
    changed |= keys


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
