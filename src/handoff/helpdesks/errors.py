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

    `events` are the ones read. `unread` is a webhook body holding only the others, which
    the same connector's `parse_webhook` reads again later: the service applies `events` at
    once and queues `unread` to be read and applied by the outbox, retried with backoff.
    """

    retryable = True

    def __init__(self, events: list[TicketEvent], failures: list[str], unread: bytes) -> None:
        super().__init__(f"{len(failures)} event(s) could not be read: {'; '.join(failures)}")
        self.events = events
        self.failures = failures
        self.unread = unread
