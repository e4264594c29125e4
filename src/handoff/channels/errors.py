"""Errors a channel's `deliver` raises; the service maps them onto the outbox's retry rules.

ChannelError
├── InvalidCredentials   the connection's credentials were refused: reconnect needed
├── RateLimited          slow down; retry after `retry_after` seconds (None: back off)
├── Unavailable          network error, timeout or a failure on the channel's side: retry
└── Rejected             the channel refused the message itself: do not retry
"""

from __future__ import annotations


class ChannelError(Exception):
    """Base of every delivery error."""


class InvalidCredentials(ChannelError):
    """The channel refused the connection's credentials."""


class RateLimited(ChannelError):
    """The channel asked us to slow down."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(ChannelError):
    """The channel could not be reached or failed on its side."""


class Rejected(ChannelError):
    """The channel refused the message as invalid."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
