"""Error answers: every one is `{"detail": ..., "code": ...}`.

`detail` is for people (a sentence, or FastAPI's list of field errors); `code` is for
programs, and is the same for every error of a kind: the pages choose their wording by it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from handoff.service.errors import HandoffError, Invalid
from handoff.service.ratelimit import TooManyRequests
from handoff.web.hardening import encodable

ErrorHandler = Callable[[Request, Any], Awaitable[JSONResponse]]

# The codes of the errors Starlette raises itself: a path or a method no route serves.
HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


def error_response(
    detail: Any, code: str, status_code: int, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"detail": detail, "code": code}, status_code=status_code, headers=headers)


async def unprocessable(_: Request, error: RequestValidationError) -> JSONResponse:
    # The errors echo the input, which may hold text JSON allows but UTF-8 cannot carry
    # (a lone surrogate): it is shown replaced rather than failing the answer.
    return error_response(encodable(jsonable_encoder(error.errors())), Invalid.code, 422)


async def invalid(_: Request, error: Invalid) -> JSONResponse:
    # The same shape as FastAPI's own 422, so that a page shows both at the field they name.
    detail = [{"loc": [error.place, error.field], "msg": error.reason, "type": "value_error"}]
    return error_response(detail, error.code, error.status_code)


async def too_many_requests(_: Request, error: TooManyRequests) -> JSONResponse:
    """Answer 429 with the limit in `detail` and when to come back in `Retry-After`."""
    headers = {"Retry-After": str(error.retry_after)}
    return error_response(error.message, error.code, error.status_code, headers)


async def handoff_error(_: Request, error: HandoffError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if error.status_code == 401 else None
    return error_response(error.message, error.code, error.status_code, headers)


async def http_error(_: Request, error: HTTPException) -> JSONResponse:
    code = HTTP_CODES.get(error.status_code, "error")
    return error_response(error.detail, code, error.status_code, error.headers)


# Starlette picks the handler of the closest class in each error's hierarchy.
ERROR_HANDLERS: dict[type[Exception], ErrorHandler] = {
    RequestValidationError: unprocessable,
    Invalid: invalid,
    TooManyRequests: too_many_requests,
    HandoffError: handoff_error,
    HTTPException: http_error,
}
