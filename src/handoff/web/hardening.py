"""What every request meets before a route: a bounded body, and safe headers on each page.

Both are plain ASGI middleware, so a body is refused while it streams in, before any route,
authentication or JSON parsing reads it whole.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from handoff.settings import Settings


class BodyTooLarge(HTTPException):
    """Raised from `receive` once a streamed body passes its limit; FastAPI answers 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large(limit))


def too_large(limit: int) -> str:
    return f"the request body is larger than the {_size(limit)} this endpoint accepts"


def _size(limit: int) -> str:
    if limit % (1 << 20) == 0:
        return f"{limit >> 20} MiB"
    if limit % (1 << 10) == 0:
        return f"{limit >> 10} KiB"
    return f"{limit} bytes"


@dataclass(frozen=True, slots=True)
class BodyRule:
    """Requests whose path matches `pattern` may send at most `limit` bytes."""

    pattern: re.Pattern[str]
    limit: int


def body_rules(settings: Settings) -> list[BodyRule]:
    """The per-endpoint limits, most specific first; the last one matches every path."""
    webhooks = re.compile(r"^/api/v1/(webhooks|channels/whatsapp)/")
    knowledge = re.compile(r"^/api/v1/agents/[^/]+/knowledge$")
    return [
        BodyRule(webhooks, settings.webhook_max_body_bytes),
        BodyRule(knowledge, settings.knowledge_max_body_bytes),
        BodyRule(re.compile(""), settings.max_body_bytes),
    ]


class BodyLimit:
    """Answer 413 to a body over its endpoint's limit, without reading more of it than that.

    A declared Content-Length over the limit is refused before the app runs; a body sent
    chunked, or longer than it declared, is cut off as soon as it passes the limit.
    """

    def __init__(self, app: ASGIApp, rules: Sequence[BodyRule]) -> None:
        self.app = app
        self.rules = list(rules)

    def limit_for(self, path: str) -> int:
        return next(rule.limit for rule in self.rules if rule.pattern.match(path))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await JSONResponse({"detail": too_large(limit)}, status_code=413)(scope, receive, send)
            return
        await self.app(scope, _bounded(receive, limit), send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _bounded(receive: Receive, limit: int) -> Receive:
    received = 0

    async def bounded_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(limit)
        return message

    return bounded_receive


# --- headers on pages ------------------------------------------------------------------------

# Scripts come only from this origin: no inline script, no eval. Styles may be inline (the
# widget and Swagger UI set them), images may come from https (members' avatars).
CONTENT_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: https:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors {ancestors}"
)


class SecurityHeaders:
    """Add nosniff and a referrer policy to every answer, and a CSP to every HTML page.

    Pages may be framed only by this origin, except those whose purpose is to be embedded
    (the help page), which `embeddable` names and which the configured origins may frame.
    HSTS is sent when the service's public URL is https.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        embeddable: Callable[[str], bool],
        embed_origins: Sequence[str],
        hsts: bool,
    ) -> None:
        self.app = app
        self.embeddable = embeddable
        self.embed_ancestors = " ".join(embed_origins) or "'none'"
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ancestors = self.embed_ancestors if self.embeddable(scope["path"]) else "'self'"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
                if self.hsts:
                    headers.setdefault("Strict-Transport-Security", "max-age=31536000")
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault(
                        "Content-Security-Policy", CONTENT_POLICY.format(ancestors=ancestors)
                    )
                    if ancestors == "'self'":
                        headers.setdefault("X-Frame-Options", "SAMEORIGIN")
            await send(message)

        await self.app(scope, receive, send_with_headers)
