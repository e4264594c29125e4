"""A fake generic-webhook helpdesk on 127.0.0.1 with a latency and a per-minute limit.

It plays the tool the generic `webhook` platform talks to: it checks our signatures, keeps one
ticket per `Idempotency-Key`, answers each ticket creation after `latency_seconds`, and past
`limit_per_minute` calls in the last sixty seconds refuses with 429 and a `Retry-After` that
says when a call leaves the window. It records when each ticket came to exist, so a benchmark
can tell how long an escalation waited for its ticket. With a latency longer than the service's
timeout it plays a helpdesk that hangs: every call runs to the timeout.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from handoff.benchmarks.loopback import LoopbackServer
from handoff.helpdesks.errors import BadSignature
from handoff.helpdesks.webhook import verify_signature

WINDOW_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class FakeTicket:
    """A ticket as the fake stored it."""

    id: str
    conversation_url: str
    escalated_at: float  # Unix time of the message that escalated (the packet's last user turn)
    created_at: float  # Unix time the fake stored the ticket


class MinuteWindow:
    """Counts calls in the last minute; refuses those past the limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._calls: deque[float] = deque()

    def admit(self, now: float) -> float | None:
        """Count a call at `now`; return None when admitted, else the seconds to wait."""
        while self._calls and self._calls[0] <= now - WINDOW_SECONDS:
            self._calls.popleft()
        if len(self._calls) >= self.limit:
            return self._calls[0] + WINDOW_SECONDS - now
        self._calls.append(now)
        return None


class FakeHelpdesk(LoopbackServer):
    """The receiving tool, served from a thread on 127.0.0.1; use it as a context manager."""

    def __init__(self, secret: str, *, latency_seconds: float, limit_per_minute: int) -> None:
        self.secret = secret
        self.latency_seconds = latency_seconds
        self.window = MinuteWindow(limit_per_minute)
        self.tickets: dict[str, FakeTicket] = {}  # by idempotency key
        self.refused = 0  # answers 429
        self.received = 0  # ticket creations admitted, answered or still in hand
        self._lock = threading.Lock()
        app = Starlette(routes=[Route("/tickets", self._receive, methods=["POST"])])
        super().__init__(app, name="helpdesk")
        self.url = f"{self.origin}/tickets"

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        try:
            verify_signature(secret=self.secret, body=body, headers=dict(request.headers))
        except BadSignature as error:
            return JSONResponse({"error": str(error)}, status_code=401)
        key = request.headers.get("idempotency-key")
        if not key:
            return JSONResponse({"error": "idempotency_key_required"}, status_code=400)
        with self._lock:
            wait = self.window.admit(time.time())
            if wait is not None:
                self.refused += 1
        if wait is not None:
            retry_after = str(max(1, math.ceil(wait)))
            return JSONResponse(
                {"error": "rate_limited"}, status_code=429, headers={"Retry-After": retry_after}
            )
        data = json.loads(body)
        if data["type"] != "ticket.create":
            return JSONResponse({"ok": True})
        with self._lock:
            self.received += 1
        await self.stall(self.latency_seconds)
        if self.stopping:  # closing before the latency ran out: a hanging answer
            return JSONResponse({"error": "shutting_down"}, status_code=503)
        ticket = self._store(key, data)
        return JSONResponse({"ticket": {"id": ticket.id, "url": f"{self.url}/{ticket.id}"}})

    def _store(self, key: str, packet: dict[str, Any]) -> FakeTicket:
        """Keep the first ticket of an idempotency key; a repeated key gets it back."""
        with self._lock:
            ticket = self.tickets.get(key)
            if ticket is None:
                ticket = FakeTicket(
                    id=f"T-{len(self.tickets) + 1}",
                    conversation_url=str(packet.get("conversation_url") or key),
                    escalated_at=_escalated_at(packet),
                    created_at=time.time(),
                )
                self.tickets[key] = ticket
            return ticket


def _escalated_at(packet: dict[str, Any]) -> float:
    """When the user's last message in the transcript, the one that escalated, was stored."""
    users = [m for m in packet.get("transcript", []) if m.get("role") == "user"]
    if not users:
        return time.time()
    stamp = datetime.fromisoformat(users[-1]["created_at"])
    # SQLite hands back naive times; the service stores them in UTC.
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()
