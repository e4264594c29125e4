"""What every fake server shares: `LoopbackServer` (a Starlette app served by uvicorn on
127.0.0.1, from `handoff.benchmarks.loopback`, which the benchmarks' fake helpdesk uses too)
and `Received`, one request as a fake recorded it (`Received.of(request, body)`)::

    class FakeThing(LoopbackServer):
        def __init__(self) -> None:
            super().__init__(Starlette(routes=[...]), name="Thing")
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from handoff.benchmarks.loopback import LoopbackServer

__all__ = ["LoopbackServer", "Received"]


@dataclass(slots=True)
class Received:
    """One request as a fake saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any  # as the fake parsed it: JSON, a form as a dict, or the raw text
    status: int | None = None  # what the fake answered; None while the answer is stalled

    @classmethod
    def of(cls, request: Request, body: Any, status: int | None = None) -> Received:
        """Record `request`, whose body the fake read as `body`."""
        query, headers = dict(request.query_params), dict(request.headers)
        return cls(request.method, request.url.path, query, headers, body, status)
