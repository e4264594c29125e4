"""Rate limits on what callers of the public surface can make the service do.

Each `Limit` is one setting (`HANDOFF_RATE_LIMIT_<NAME>`, e.g. "60/minute" or
"10/second;500/hour") counted per key: a client address, an agent or a conversation. The
counting is the `limits` library's moving window, kept in this process's memory: each of
several processes behind one balancer counts only the requests it serves.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import NoReturn

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from handoff.service.errors import HandoffError
from handoff.service.metrics import REQUESTS_LIMITED
from handoff.settings import Settings


@dataclass(frozen=True, slots=True)
class Limit:
    """One rate limit: its setting's name and what a 429 says there were too many of."""

    name: str
    what: str


CONVERSATIONS_PER_IP = Limit("conversations_per_ip", "new conversations from this address")
CONVERSATIONS_PER_AGENT = Limit("conversations_per_agent", "new conversations with this agent")
MESSAGES_PER_IP = Limit("messages_per_ip", "messages from this address")
MESSAGES_PER_AGENT = Limit("messages_per_agent", "messages to this agent")
MESSAGES_PER_CONVERSATION = Limit("messages_per_conversation", "messages in this conversation")
ESCALATIONS_PER_AGENT = Limit("escalations_per_agent", "conversations handed to this agent's team")
LOGINS_PER_IP = Limit("logins_per_ip", "sign-in attempts from this address")
WEBHOOKS_PER_IP = Limit("webhooks_per_ip", "webhook calls from this address")


class TooManyRequests(HandoffError):
    """A rate limit is reached: nothing was done; the same request may come back later."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, limit: Limit, window: RateLimitItem, retry_after: int) -> None:
        super().__init__(
            f"Too many {limit.what}: at most {_per(window)}. Try again in {retry_after} s "
            f"(rate limit {limit.name})."
        )
        self.limit = limit
        self.retry_after = retry_after


def _per(window: RateLimitItem) -> str:
    unit = window.GRANULARITY.name
    span = unit if window.multiples == 1 else f"{window.multiples} {unit}s"
    return f"{window.amount} per {span}"


def _windows_of(text: str) -> tuple[RateLimitItem, ...]:
    """Parse a limit setting; an empty one means no limit."""
    return tuple(parse_many(text)) if text.strip() else ()


class RateLimits:
    """The process's counters for every limit, each with its own windows."""

    def __init__(self, rules: dict[Limit, str]) -> None:
        self._windows = {limit: _windows_of(text) for limit, text in rules.items()}
        # A moving window is exact: a burst at a window's edge cannot get twice the limit.
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        return cls(
            {
                CONVERSATIONS_PER_IP: settings.rate_limit_conversations_per_ip,
                CONVERSATIONS_PER_AGENT: settings.rate_limit_conversations_per_agent,
                MESSAGES_PER_IP: settings.rate_limit_messages_per_ip,
                MESSAGES_PER_AGENT: settings.rate_limit_messages_per_agent,
                MESSAGES_PER_CONVERSATION: settings.rate_limit_messages_per_conversation,
                ESCALATIONS_PER_AGENT: settings.rate_limit_escalations_per_agent,
                LOGINS_PER_IP: settings.rate_limit_logins_per_ip,
                WEBHOOKS_PER_IP: settings.rate_limit_webhooks_per_ip,
            }
        )

    async def hit(self, limit: Limit, key: str) -> None:
        """Count one request against `limit` for `key`; raise TooManyRequests when over.

        A refused request is not counted, so a client that keeps trying is let in as soon
        as its oldest request leaves the window.
        """
        windows = self._windows[limit]
        # Every window is tested before any is counted: a request one window refuses must not
        # use up another's allowance ("10/second;500/hour").
        for window in windows:
            if not await self._limiter.test(window, limit.name, key):
                await self._refuse(limit, window, key)
        for window in windows:
            if not await self._limiter.hit(window, limit.name, key):
                await self._refuse(limit, window, key)  # a concurrent request took the last slot

    async def _refuse(self, limit: Limit, window: RateLimitItem, key: str) -> NoReturn:
        REQUESTS_LIMITED.labels(limit=limit.name).inc()
        stats = await self._limiter.get_window_stats(window, limit.name, key)
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        raise TooManyRequests(limit, window, wait)
