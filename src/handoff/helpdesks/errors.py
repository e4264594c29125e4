"""Errors a helpdesk connector raises; `dispatch` alone decides to retry, park or flag.

HelpdeskError
├── InvalidCredentials      the platform refused our credentials: reconnect needed
├── RateLimited             slow down; retry after `retry_after` seconds
├── Unavailable             network error, timeout or 5xx: retry later
├── Rejected                the platform refused the request itself (4xx): do not retry
├── BadSignature            an inbound webhook failed verification
└── PartlyRead              a webhook batch whose events could be read only in part
"""

from __future__ import annotations

from handoff.domain import TicketEvent


class HelpdeskError(Exception):
    """Base of every connector error."""

    retryable = False


class InvalidCredentials(HelpdeskError):
    """The platform refused our credentials."""


class RateLimited(HelpdeskError):
    """The platform asked us to slow down."""

    retryable = True

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(HelpdeskError):
    """The platform could not be reached or failed on its side."""

    retryable = True


class Rejected(HelpdeskError):
    """The platform refused the request as invalid."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class BadSignature(HelpdeskError):
    """An inbound webhook's signature or timestamp did not verify."""


class PartlyRead(HelpdeskError):
    """Some events of a webhook batch could not be looked up on the platform.

    `events` are the ones read; the service applies them, then answers so that the platform
    redelivers the batch (the events applied already are recognised by their ids).
    """

    retryable = True

    def __init__(self, events: list[TicketEvent], failures: list[str]) -> None:
        super().__init__(f"{len(failures)} event(s) could not be read: {'; '.join(failures)}")
        self.events = events
        self.failures = failures
