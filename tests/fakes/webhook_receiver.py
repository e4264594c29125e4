"""A fake "other tool" for the generic webhook platform: it checks our signatures, keeps
tickets by Idempotency-Key, and can answer 429 or lose a response, on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from handoff.helpdesks.errors import BadSignature
from handoff.helpdesks.webhook import sign, verify_signature
from tests.fakes.server import LoopbackServer


@dataclass
class Ticket:
    id: str
    packet: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)


class FakeReceiver(LoopbackServer):
    """The receiving end of the generic webhook, as a well-behaved tool would be."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.tickets: dict[str, Ticket] = {}  # by idempotency key
        self.pings = 0
        self.rate_limit_next = 0
        self.lose_next_create_for: float = 0.0  # seconds to stall after storing the ticket
        self.reject_next_create = False
        self._lock = threading.Lock()
        app = Starlette(routes=[Route("/handoff", self._receive, methods=["POST"])])
        super().__init__(app, name="receiver")
        self.url = f"{self.origin}/handoff"

    def signed(
        self, payload: dict[str, Any], *, secret: str | None = None, age: int = 0
    ) -> tuple[bytes, dict[str, str]]:
        """Return a reply body and the headers that sign it, as the tool sends them to us."""
        body = json.dumps(payload).encode()
        timestamp = int(time.time()) - age
        return body, {
            "Content-Type": "application/json",
            "X-Handoff-Timestamp": str(timestamp),
            "X-Handoff-Signature": sign(secret or self.secret, body, timestamp),
        }

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        try:
            verify_signature(secret=self.secret, body=body, headers=dict(request.headers))
        except BadSignature as error:
            return JSONResponse({"error": str(error)}, status_code=401)
        if not request.headers.get("idempotency-key"):
            return JSONResponse({"error": "Idempotency-Key is required"}, status_code=400)
        with self._lock:
            if self.rate_limit_next > 0:
                self.rate_limit_next -= 1
                return JSONResponse(
                    {"error": "slow down"}, status_code=429, headers={"Retry-After": "7"}
                )
        data = json.loads(body)
        if data["type"] == "ping":
            self.pings += 1
            return JSONResponse({"ok": True})
        if data["type"] == "ticket.create":
            return await self._create(request.headers["idempotency-key"], data)
        if data["type"] == "ticket.message":
            ticket = next((t for t in self.tickets.values() if t.id == data["ticket_id"]), None)
            if ticket is None:
                return JSONResponse({"error": "no such ticket"}, status_code=404)
            ticket.messages.append(data["message"])
            return JSONResponse({"ok": True})
        return JSONResponse({"error": f"unknown type {data['type']}"}, status_code=400)

    async def _create(self, key: str, data: dict[str, Any]) -> Response:
        if self.reject_next_create:
            self.reject_next_create = False
            return JSONResponse({"error": "subject_too_long"}, status_code=422)
        with self._lock:
            ticket = self.tickets.get(key)
            if ticket is None:
                ticket = Ticket(id=f"T-{len(self.tickets) + 1}", packet=data)
                self.tickets[key] = ticket
            stall, self.lose_next_create_for = self.lose_next_create_for, 0.0
        if stall:
            await self.stall(stall)  # the ticket exists; the caller times out first
        return JSONResponse(
            {"ticket": {"id": ticket.id, "url": f"https://tool.example/tickets/{ticket.id}"}},
            status_code=201,
        )
