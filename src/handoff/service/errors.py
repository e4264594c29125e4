"""The one error type the web layer renders: a message and its HTTP status."""

from __future__ import annotations


class HandoffError(Exception):
    """A failure the caller can act on; `status_code` is what the API answers."""

    status_code = 400

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code


class NotFound(HandoffError):
    status_code = 404


class Unauthorized(HandoffError):
    status_code = 401


class Forbidden(HandoffError):
    status_code = 403


class Conflict(HandoffError):
    status_code = 409


class Invalid(HandoffError):
    """Input that passed parsing but breaks a rule; `field` names the culprit."""

    status_code = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message
