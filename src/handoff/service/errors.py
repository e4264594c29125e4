"""The one error type the web layer renders: a message, its HTTP status and a stable code.

`code` is what a program reads (pages pick their wording by it); `message` is for people and
may change wording between releases.
"""

from __future__ import annotations


class HandoffError(Exception):
    """A failure the caller can act on; `status_code` is what the API answers."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code


class NotFound(HandoffError):
    status_code = 404
    code = "not_found"


class UnknownIntegration(NotFound):
    """No such integration of this agent (or the built-in inbox, which has no jobs to retry)."""

    code = "unknown_integration"


class Unauthorized(HandoffError):
    status_code = 401
    code = "unauthorized"


class Forbidden(HandoffError):
    status_code = 403
    code = "forbidden"


class Conflict(HandoffError):
    status_code = 409
    code = "conflict"


class TemporarilyUnavailable(HandoffError):
    """Something we depend on did not answer in full; the same request may succeed later."""

    status_code = 503
    code = "unavailable"


class CannotConnect(HandoffError):
    """A platform could not be reached, or failed, while checking a connection."""

    status_code = 502
    code = "cannot_connect"

    def __init__(self, reason: object) -> None:
        # The code leads the message too: clients written before `code` read it there.
        super().__init__(f"{self.code}: {reason}")


class Invalid(HandoffError):
    """Input that passed parsing but breaks a rule; `field` names the culprit, found in the
    request's `place` (`body` or `query`)."""

    status_code = 422
    code = "invalid_input"

    def __init__(self, field: str, message: str, *, place: str = "body") -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message
        self.place = place


class InvalidCursor(Invalid):
    """A list's `cursor` this service did not hand out for that very list."""

    status_code = 400
    code = "invalid_cursor"

    def __init__(self, message: str) -> None:
        super().__init__("cursor", message, place="query")


class RefusedCredentials(Invalid):
    """A platform refused the credentials in `field`: they must be corrected, not retried."""

    code = "invalid_auth"

    def __init__(self, field: str, reason: str) -> None:
        # The code leads the message too: clients written before `code` read it there.
        super().__init__(field, f"{self.code}: {reason}")
