"""A host that answers every request alike and records what it was sent, over real HTTP.

`CatchAll` plays whatever the test needs at an address an admin typed: a helpdesk or Graph API
that takes `delay` seconds to answer (a stalled credential check), or a stranger's host that
says yes to anything (where a leaked token would land)::

    with CatchAll(delay=15) as slow:
        ...  # connect a platform with base_url=slow.base_url; slow.requests fills as it is called

Every request gets `status` and the JSON `body`; `requests` holds them as `Received`, in order.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import LoopbackServer, Received

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


class CatchAll(LoopbackServer):
    """Answers any method and path with `status` and `body`, after `delay` seconds."""

    def __init__(
        self, *, delay: float = 0.0, status: int = 200, body: dict[str, Any] | None = None
    ) -> None:
        self.delay = delay
        self.status = status
        self.body = body or {}
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        app = Starlette(routes=[Route("/{path:path}", self._answer, methods=METHODS)])
        super().__init__(app, name="CatchAll")

    def seen(self, secret: str) -> bool:
        """Return True if `secret` arrived in any recorded header, query or body."""
        with self._lock:
            return any(
                secret in json.dumps([r.headers, r.query, r.path, r.body], default=str)
                for r in self.requests
            )

    async def _answer(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        received = Received.of(request, body)
        with self._lock:
            self.requests.append(received)
        if self.delay:
            await self.stall(self.delay)
        received.status = self.status
        return JSONResponse(self.body, status_code=self.status)
