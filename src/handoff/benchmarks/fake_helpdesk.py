"""A fake generic-webhook helpdesk on 127.0.0.1 with a latency and a per-minute limit.

It plays the tool the generic `webhook` platform talks to: it checks our signatures, keeps one
ticket per `Idempotency-Key`, answers each ticket creation after `latency_seconds`, and past
`limit_per_minute` calls in the last sixty seconds refuses with 429 and a `Retry-After` that
says when a call leaves the window. It records when each ticket came to exist, so a benchmark
can tell how long an escalation waited for its ticket. With a latency longer than the service's
timeout it plays a helpdesk that hangs: every call runs to the timeout.
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

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


class FakeHelpdesk:
    """The receiving tool, served by uvicorn from a thread; use it as a context manager."""

    def __init__(self, secret: str, *, latency_seconds: float, limit_per_minute: int) -> None:
        self.secret = secret
        self.latency_seconds = latency_seconds
        self.window = MinuteWindow(limit_per_minute)
        self.tickets: dict[str, FakeTicket] = {}  # by idempotency key
        self.refused = 0  # answers 429
        self.received = 0  # ticket creations admitted, answered or still in hand
        self._lock = threading.Lock()
        app = Starlette(routes=[Route("/tickets", self._receive, methods=["POST"])])
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}/tickets"
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="off",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake helpdesk did not start")
            time.sleep(0.01)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

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
        if not await self._wait_latency():
            return JSONResponse({"error": "shutting_down"}, status_code=503)
        ticket = self._store(key, data)
        return JSONResponse({"ticket": {"id": ticket.id, "url": f"{self.url}/{ticket.id}"}})

    async def _wait_latency(self) -> bool:
        """Wait out the latency; False when the fake is closing first (a hanging answer)."""
        deadline = time.monotonic() + self.latency_seconds
        while (left := deadline - time.monotonic()) > 0:
            if self._server.should_exit:
                return False
            await asyncio.sleep(min(left, 0.1))
        return True

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
