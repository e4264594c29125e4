"""A commit wakes only the live streams its events concern, and only once it has committed."""

from __future__ import annotations

import asyncio
import time
from contextlib import ExitStack
from datetime import timedelta

import pytest

from handoff.service import events
from handoff.service.events import Watch, team_key, visitor_key
from handoff.service.runtime import Handoff
from handoff.store.db import Database
from handoff.store.models import utcnow

QUIET = 0.3  # seconds a watch that nothing concerns stays asleep in these tests


async def _publish(
    db: Handoff | Database,
    workspace_id: str,
    conversation_id: str,
    *,
    to_visitor: bool,
    to_team: bool,
) -> None:
    unit_of_work = db.transaction if isinstance(db, Handoff) else db.unit_of_work
    async with unit_of_work() as session:
        await events.publish(
            session,
            workspace_id=workspace_id,
            conversation_id=conversation_id,
            type="typing",
            data={},
            to_visitor=to_visitor,
            to_team=to_team,
        )


async def _woke(watch: Watch) -> bool:
    started = time.monotonic()
    await watch.wait(QUIET)
    return time.monotonic() - started < QUIET / 2


async def test_an_event_wakes_its_conversation_and_its_workspace_only(hf: Handoff) -> None:
    keys = {
        "visitor": visitor_key("c1"),
        "other visitor": visitor_key("c2"),
        "team": team_key("w1"),
        "other team": team_key("w2"),
        "every team": team_key(None),
    }
    with ExitStack() as stack:
        watches = {name: stack.enter_context(hf.bus.watching(key)) for name, key in keys.items()}
        # The commit lands before anyone waits, as between a stream's read and its wait.
        await _publish(hf, "w1", "c1", to_visitor=True, to_team=True)
        woke = {name for name, watch in watches.items() if await _woke(watch)}
    assert woke == {"visitor", "team", "every team"}


async def test_a_visitor_only_event_leaves_the_team_streams_asleep(hf: Handoff) -> None:
    with (
        hf.bus.watching(visitor_key("c1")) as visitor,
        hf.bus.watching(team_key("w1")) as team,
        hf.bus.watching(team_key(None)) as every_team,
    ):
        await _publish(hf, "w1", "c1", to_visitor=True, to_team=False)
        assert await _woke(visitor)
        assert not await _woke(team)
        assert not await _woke(every_team)


async def test_a_rolled_back_event_wakes_nobody(hf: Handoff) -> None:
    with hf.bus.watching(visitor_key("c1")) as visitor:
        with pytest.raises(RuntimeError):
            async with hf.transaction() as session:
                await events.publish(
                    session,
                    workspace_id="w1",
                    conversation_id="c1",
                    type="typing",
                    data={},
                    to_visitor=True,
                    to_team=False,
                )
                raise RuntimeError("the change fails after its event was written")
        assert not await _woke(visitor)


async def test_an_idle_worker_wakes_on_any_commit(hf: Handoff) -> None:
    waiting = asyncio.create_task(hf.bus.wait(5))
    await asyncio.sleep(0)  # the wait is registered
    started = time.monotonic()
    async with hf.transaction() as session:  # a commit with no event, as enqueueing a job
        await events.prune(session, before=utcnow() - timedelta(days=1))
    await waiting
    assert time.monotonic() - started < 1


async def test_another_process_event_wakes_only_its_streams_through_the_poll(
    hf: Handoff,
) -> None:
    """No listener hears of it (SQLite has none; on PostgreSQL none runs here): the process's
    one poll finds the row another process wrote and wakes only the streams it concerns."""
    keys = {
        "visitor": visitor_key("c1"),
        "other visitor": visitor_key("c2"),
        "team": team_key("w1"),
        "other team": team_key("w2"),
        "every team": team_key(None),
    }
    other_process = Database(hf.db.url)  # its commits never reach this process's bus
    try:
        with ExitStack() as stack:
            watches = {
                name: stack.enter_context(hf.bus.watching(key)) for name, key in keys.items()
            }
            async with hf.polling():
                for watch in watches.values():  # the poll's first look wakes every stream once
                    await watch.wait(5)
                await _publish(other_process, "w1", "c1", to_visitor=True, to_team=True)
                started = time.monotonic()
                await watches["visitor"].wait(5)
                took = time.monotonic() - started
                woke = {name for name, watch in watches.items() if await _woke(watch)}
    finally:
        await other_process.dispose()
    assert took < 2 * hf.settings.event_poll_seconds
    assert woke == {"team", "every team"}  # the visitor's watch was just waited on
