"""What every answer carries: safe headers on each page, and errors that can always be sent.

Bodies are bounded by FastAPI's own `max_body_size` (set where the app includes its routers):
a body is refused with 413 while it streams in, before any route reads it whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def encodable(value: Any) -> Any:
    """Return JSON-ready `value` with text UTF-8 cannot carry (lone surrogates) replaced."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, list):
        return [encodable(item) for item in value]
    if isinstance(value, dict):
        return {encodable(key): encodable(item) for key, item in value.items()}
    return value


# --- headers on pages ------------------------------------------------------------------------

# Scripts and styles come only from this origin: no inline script, no eval, no inline style
# (the pages set styles through the CSSOM, which the policy allows). Images may come from
# https: members' avatars live elsewhere.
CONTENT_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
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
