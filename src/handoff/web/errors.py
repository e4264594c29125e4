"""Error answers: every one is `{"detail": ..., "code": ...}`.

`detail` is for people (a sentence, or FastAPI's list of field errors); `code` is for
programs, and is the same for every error of a kind: the pages choose their wording by it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from handoff.service.errors import HandoffError, Invalid
from handoff.service.plain_errors import plain_message
from handoff.service.ratelimit import TooManyRequests
from handoff.web.hardening import encodable

ErrorHandler = Callable[[Request, Any], Awaitable[JSONResponse]]

BODY_TOO_LARGE = "body_too_large"
# Said of a refused body, whichever way the limit stopped it; the limit differs by route
# (webhooks, knowledge uploads).
TOO_LARGE_DETAIL = "the request body is larger than this endpoint takes"
# The codes of the errors Starlette raises itself: a path or a method no route serves, a body
# over the limit.
HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: BODY_TOO_LARGE}


def error_response(
    detail: Any, code: str, status_code: int, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"detail": detail, "code": code}, status_code=status_code, headers=headers)


async def unprocessable(_: Request, error: RequestValidationError) -> JSONResponse:
    # The errors echo the input, which may hold text JSON allows but UTF-8 cannot carry
    # (a lone surrogate): it is shown replaced rather than failing the answer.
    errors = [{**item, "msg": plain_message(item)} for item in error.errors()]
    return error_response(encodable(jsonable_encoder(errors)), Invalid.code, 422)


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
    detail = TOO_LARGE_DETAIL if code == BODY_TOO_LARGE else error.detail
    return error_response(detail, code, error.status_code, error.headers)


# Starlette picks the handler of the closest class in each error's hierarchy.
ERROR_HANDLERS: dict[type[Exception], ErrorHandler] = {
    RequestValidationError: unprocessable,
    Invalid: invalid,
    TooManyRequests: too_many_requests,
    HandoffError: handoff_error,
    HTTPException: http_error,
}


TOO_LARGE_BODY = json.dumps({"detail": TOO_LARGE_DETAIL, "code": BODY_TOO_LARGE}).encode()


class JsonBodyLimit:
    """Give the body limit's 413 the error shape of every other answer.

    Starlette's `max_body_size` refuses a body while it streams in; when the refusal comes
    while the body is read, the exception handlers answer it (`http_error`), but when it comes
    before (a declared length over the limit) or outside them (the app-wide limit), Starlette
    answers in plain text itself: this rewrites that answer on its way out.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rewriting = False

        async def send_as_json(message: Message) -> None:
            nonlocal rewriting
            if message["type"] == "http.response.start" and message["status"] == 413:
                rewriting = (
                    MutableHeaders(scope=message).get("content-type", "").startswith("text/plain")
                )
            if not rewriting:
                await send(message)
            elif message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["content-type"] = "application/json"
                headers["content-length"] = str(len(TOO_LARGE_BODY))
                await send(message)
            elif not message.get("more_body", False):
                await send({"type": "http.response.body", "body": TOO_LARGE_BODY})

        await self.app(scope, receive, send_as_json)
