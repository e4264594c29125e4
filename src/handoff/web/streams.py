"""Server-sent event streams over the events table, resumable with Last-Event-ID."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sse_starlette.sse import EventSourceResponse
from starlette.requests import Request

from handoff.service.events import LiveEvent
from handoff.service.runtime import Handoff

Fetch = Callable[[AsyncSession, int], Awaitable[Sequence[LiveEvent]]]
EVENT_ID = re.compile(r"[0-9]{1,18}")  # below 2**63, the largest id a BIGINT holds


def resume_point(request: Request, default: int) -> int:
    """Return the event id to continue after: Last-Event-ID, then `?after=`, then `default`.

    Only ASCII digits within a database id's range count: `str.isdigit` also takes "²" and
    "٣", which `int` refuses, and a longer number is no event id."""
    for raw in (request.headers.get("last-event-id"), request.query_params.get("after")):
        if raw is not None and EVENT_ID.fullmatch(raw.strip()):
            return int(raw)
    return default


def event_stream(
    hf: Handoff, request: Request, after: int, fetch: Fetch, key: str
) -> EventSourceResponse:
    """Stream the events `fetch` returns after `after` until the client goes away; the bus
    wakes it when a commit concerns `key` (events.visitor_key or events.team_key), in this
    process or, through the listener or the poll, in another. It looks by itself only every
    HANDOFF_EVENT_SAFETY_POLL_SECONDS, in case a wake-up went astray."""

    async def generate() -> AsyncIterator[dict[str, Any]]:
        last = after
        with hf.bus.watching(key) as watch:
            while not await request.is_disconnected():
                async with hf.reading() as session:
                    batch = await fetch(session, last)
                for event in batch:
                    last = event.id
                    yield {
                        "id": str(event.id),
                        "event": event.type,
                        "data": json.dumps(event.data),
                    }
                if not batch:
                    await watch.wait(hf.settings.event_safety_poll_seconds)

    return EventSourceResponse(generate(), ping=15, headers={"Cache-Control": "no-store"})
