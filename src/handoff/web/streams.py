"""Server-sent event streams over the events table, resumable with Last-Event-ID."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from sse_starlette.sse import EventSourceResponse
from starlette.requests import Request

from handoff.service.runtime import Handoff
from handoff.store import repositories as repo
from handoff.store.models import Event

Render = Callable[[Event], dict[str, Any] | None]


def resume_point(request: Request, default: int) -> int:
    """Return the event id to continue after: Last-Event-ID, then `?after=`, then `default`."""
    for raw in (request.headers.get("last-event-id"), request.query_params.get("after")):
        if raw is not None and raw.strip().isdigit():
            return int(raw)
    return default


def event_stream(
    hf: Handoff,
    request: Request,
    after: int,
    render: Render,
    *,
    conversation_id: str | None = None,
    workspace_id: str | None = None,
) -> EventSourceResponse:
    """Stream matching events after `after` until the client goes away."""

    async def generate() -> AsyncIterator[dict[str, Any]]:
        last = after
        while not await request.is_disconnected():
            async with hf.db.unit_of_work() as session:
                rows = await repo.events_after(
                    session, last, conversation_id=conversation_id, workspace_id=workspace_id
                )
            for row in rows:
                last = row.id
                data = render(row)
                if data is not None:
                    yield {"id": str(row.id), "event": row.type, "data": json.dumps(data)}
            if not rows:
                await hf.bus.wait(hf.settings.event_poll_seconds)

    return EventSourceResponse(generate(), ping=15, headers={"Cache-Control": "no-store"})
