"""Live updates: events are rows written in the same transaction as the change they describe.

Streams read the rows after the last id they sent (which also makes SSE resumable). A commit
wakes only the streams its events concern: `publish` notes the conversation and workspace in
the session, and the bus hears of them once the unit of work has committed. On PostgreSQL,
`publish` also sends a NOTIFY (delivered on commit) that every process's listener turns into
the same wake-ups, so a stream hears of other processes' events at once. Where no NOTIFY tells
of them (SQLite, or PostgreSQL while the listener connects again), one `EventPoll` per process
asks every so often whom the newer rows are for and wakes those streams alike. Each stream also
looks by itself, slowly, as a safety net.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from handoff.store import repositories as repo
from handoff.store.models import Event

log = structlog.get_logger(__name__)

# Where a unit of work's session collects the keys its events concern, for the bus.
_CHANGED = "handoff_live_keys"
EVERYTHING = "*"  # the key of the instance-wide team stream: every workspace's team events


def visitor_key(conversation_id: str) -> str:
    return f"conversation:{conversation_id}"


def team_key(workspace_id: str | None) -> str:
    """The key of a workspace's team stream; None is the instance-wide one."""
    return f"workspace:{workspace_id}" if workspace_id is not None else EVERYTHING


def event_keys(
    workspace_id: str, conversation_id: str, *, to_visitor: bool, to_team: bool
) -> set[str]:
    """The keys of the streams an event for the visitor, the team, or both concerns."""
    keys = {visitor_key(conversation_id)} if to_visitor else set()
    if to_team:
        keys |= {team_key(workspace_id), EVERYTHING}
    return keys


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


class EventPoll:
    """One process's look for the events other processes wrote, where no NOTIFY tells of them.

    Every `seconds` one query asks whom the rows after the highest id seen so far are for, and
    the bus wakes those streams only: a thousand open streams cost one read, not a thousand.
    While `heard()` (the listener hears every event) it stands aside, and looks afresh after.
    """

    def __init__(
        self,
        bus: EventBus,
        reading: Callable[[], AbstractAsyncContextManager[AsyncSession]],
        *,
        seconds: float,
        heard: Callable[[], bool],
    ) -> None:
        self.bus = bus
        self.reading = reading
        self.seconds = seconds
        self.heard = heard
        self.seen: int | None = None  # the highest event id looked past; None: start afresh
        self._failing = False

    async def run(self, stop: asyncio.Event) -> None:
        """Look every `seconds` until `stop` is set."""
        while not stop.is_set():
            if self.heard():
                self.seen = None
            else:
                await self._look_safely()
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.seconds)

    async def look(self) -> None:
        """Wake the streams the events written since the last look concern."""
        async with self.reading() as session:
            if self.seen is None:
                self.seen = await repo.last_event_id(session)
                # Starting afresh: what was written before is unknown (the listener may have
                # missed it), so every stream looks once. From here on every newer row is heard
                # of; on PostgreSQL a row whose id is lower than one already seen (its
                # transaction committed later) waits for its stream's safety poll.
                self.bus.notify_all()
                return
            topics = await repo.event_topics_after(session, self.seen)
        if topics:
            self.seen = max(topic.newest for topic in topics)
            self.bus.notify(_concerned(topics))

    async def _look_safely(self) -> None:
        """Look, and live through a database that does not answer (said once per outage)."""
        try:
            await self.look()
        except (SQLAlchemyError, OSError) as error:
            if not self._failing:
                log.warning("cannot look for other processes' events", error=str(error))
            self._failing = True
        else:
            self._failing = False


def _concerned(topics: Iterable[repo.EventTopic]) -> set[str]:
    """The keys of the streams events for these conversations and audiences concern."""
    keys: set[str] = set()
    for topic in topics:
        keys |= event_keys(
            topic.workspace_id,
            topic.conversation_id,
            to_visitor=topic.to_visitor,
            to_team=topic.to_team,
        )
    return keys


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
    keys = event_keys(workspace_id, conversation_id, to_visitor=to_visitor, to_team=to_team)
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
