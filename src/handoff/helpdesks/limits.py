"""Each platform's documented API limit, and what its answers say about the budget left.

`DOCUMENTED_LIMITS` holds, per platform, the limit its documentation gives for the lowest plan
that has the API (the conservative default: a bigger plan's admin raises it on the
integration, and a smaller one would meet 429s that the pacer then waits out). The figures and
their sources are in the team's API notes (Zendesk, Freshdesk, HubSpot, Help Scout, Intercom,
Salesforce, Zoho Desk sections, "Rate limits").

`observing()` and `observe_response` let the outbox see every answer a job's calls got without
each connector reading headers: the shared `httpx` client calls `observe_response` after each
response, and it notes, into the job's `CallLog`, the call and any "wait until" the platform
said (`Retry-After`, `X-RateLimit-Retry-After`, or a remaining budget of zero with its reset).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `calls` calls in any `per_seconds`."""

    calls: int
    per_seconds: float

    def __post_init__(self) -> None:
        if self.calls < 1 or self.per_seconds <= 0:
            raise ValueError("a rate limit needs at least one call in a positive time")

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> RateLimit:
        return cls(int(raw["calls"]), float(raw["per_seconds"]))

    def to_json(self) -> dict[str, float]:
        return {"calls": self.calls, "per_seconds": self.per_seconds}


MINUTE = 60.0
DAY = 86_400.0
DOCUMENTED_LIMITS: dict[str, RateLimit] = {
    # Suite Team's 200 a minute per account (Enterprise has 700, Enterprise Plus 2,500).
    "zendesk": RateLimit(200, MINUTE),
    # Growth's 80 ticket creations a minute (its 200 a minute total covers every endpoint;
    # Pro allows 160 creations, Enterprise 280).
    "freshdesk": RateLimit(80, MINUTE),
    # Free/Starter private apps' 100 per 10 s (Professional and Enterprise: 190).
    "hubspot": RateLimit(100, 10.0),
    # 200 a minute per account, and every write (all our calls) counts twice.
    "help_scout": RateLimit(100, MINUTE),
    # 10,000 a minute per app, enforced in 10-second windows of a sixth each.
    "intercom": RateLimit(1_666, 10.0),
    # Developer Edition's 15,000 a rolling 24 h (a production org has 100,000 plus 1,000 or
    # more a licence, shared with every other integration of the org).
    "salesforce": RateLimit(15_000, DAY),
    # The Free edition's 5,000 credits a rolling 24 h (Express 25,000, Professional 75,000,
    # Enterprise 100,000, plus per-agent credits); a call costs at least one credit.
    "zoho_desk": RateLimit(5_000, DAY),
    # The generic webhook reaches the team's own tool: no documented limit, so none unless
    # the admin sets one.
}


def limit_for(platform: str, override: Mapping[str, Any] | None) -> RateLimit | None:
    """The limit the pacer keeps to: the admin's figure, else the platform's documented one."""
    if override:
        return RateLimit.from_json(override)
    return DOCUMENTED_LIMITS.get(platform)


# Headers that hold the calls left in the current window, and when the window resets.
REMAINING_HEADERS = (
    "x-ratelimit-remaining",  # Freshdesk, Intercom, the generic convention
    "x-rate-limit-remaining",  # Zendesk
    "ratelimit-remaining",  # Zendesk's ticketing APIs, the IETF draft
    "x-ratelimit-remaining-minute",  # Help Scout
    "x-hubspot-ratelimit-remaining",
)
RESET_HEADERS = ("x-ratelimit-reset", "ratelimit-reset")  # Unix time or seconds from now
WAIT_HEADERS = ("retry-after", "x-ratelimit-retry-after")  # seconds (or an HTTP date)
WINDOW_MS_HEADERS = ("x-hubspot-ratelimit-interval-milliseconds",)
# A reset value this large is a Unix time rather than a number of seconds from now.
EPOCH_THRESHOLD = 1_000_000_000.0
# A spent budget whose reset the platform does not give: wait this long, then ask again.
UNKNOWN_RESET_SECONDS = 1.0


@dataclass(slots=True)
class CallLog:
    """The calls one job made, and the latest time the platform said to wait until."""

    calls: int = 0
    wait_until: float | None = None  # Unix time

    def note(self, headers: Mapping[str, str]) -> None:
        self.calls += 1
        until = wait_until(headers, time.time())
        if until is not None and (self.wait_until is None or until > self.wait_until):
            self.wait_until = until


def wait_until(headers: Mapping[str, str], now: float) -> float | None:
    """When the platform's answer says the next call may go; None when it says nothing."""
    waited = _first_seconds(headers, WAIT_HEADERS, now)
    if waited is not None:
        return now + waited
    remaining = _first_number(headers, REMAINING_HEADERS)
    if remaining is None or remaining > 0:
        return None
    reset = _first_number(headers, RESET_HEADERS)
    if reset is not None:
        return reset if reset >= EPOCH_THRESHOLD else now + max(0.0, reset)
    window_ms = _first_number(headers, WINDOW_MS_HEADERS)
    if window_ms is not None:
        return now + window_ms / 1000
    return now + UNKNOWN_RESET_SECONDS


def _first_number(headers: Mapping[str, str], names: tuple[str, ...]) -> float | None:
    for name in names:
        value = headers.get(name)
        if value is None:
            continue
        try:
            return float(value)
        except ValueError:
            continue
    return None


def _first_seconds(headers: Mapping[str, str], names: tuple[str, ...], now: float) -> float | None:
    """Seconds to wait from a Retry-After style header: a number, or an HTTP date."""
    for name in names:
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - now)
        except (TypeError, ValueError):
            continue
    return None


_CALL_LOG: ContextVar[CallLog | None] = ContextVar("handoff_call_log", default=None)


@contextmanager
def observing() -> Iterator[CallLog]:
    """Note every helpdesk answer received in this task (and the tasks it starts) meanwhile."""
    log = CallLog()
    token = _CALL_LOG.set(log)
    try:
        yield log
    finally:
        _CALL_LOG.reset(token)


async def observe_response(response: httpx.Response) -> None:
    """The shared client's response hook: note the answer in the running job's log, if any."""
    log = _CALL_LOG.get()
    if log is not None:
        log.note(response.headers)
