"""What every worker does between jobs: old live-update events are pruned, recent ones kept."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from handoff.service import events
from handoff.service.jobs import housekeeping
from handoff.service.runtime import Handoff
from handoff.store.models import Event, utcnow


async def _publish(hf: Handoff, text: str) -> int:
    async with hf.transaction() as session:
        await events.publish(
            session,
            workspace_id="w",
            conversation_id="c",
            type="typing",
            data={"text": text},
            to_visitor=True,
            to_team=False,
        )
    async with hf.transaction() as session:
        newest = await session.scalar(select(Event.id).order_by(Event.id.desc()).limit(1))
        assert newest is not None
        return int(newest)


async def test_events_older_than_the_retention_are_pruned(hf: Handoff) -> None:
    old = await _publish(hf, "old")
    recent = await _publish(hf, "recent")
    aged = utcnow() - timedelta(hours=hf.settings.event_retention_hours, minutes=5)
    async with hf.transaction() as session:
        await session.execute(update(Event).where(Event.id == old).values(created_at=aged))

    await housekeeping(hf)

    async with hf.transaction() as session:
        left = list(await session.scalars(select(Event.id).order_by(Event.id)))
    assert old not in left
    assert recent in left
    # A stream resuming from the pruned id still gets what came after it.
    async with hf.transaction() as session:
        after = await events.for_visitor(session, "c", old)
    assert [e.id for e in after] == [recent]
