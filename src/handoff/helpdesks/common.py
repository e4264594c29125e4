"""What every connector shares: the ticket body, HTTP error mapping, signature checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from html.parser import HTMLParser
from typing import Any, ClassVar, TypeVar

import httpx
from pydantic import BaseModel

from handoff.domain import Message, Role, TicketPacket
from handoff.helpdesks.errors import (
    BadSignature,
    InvalidCredentials,
    RateLimited,
    Rejected,
    Unavailable,
)

FormT = TypeVar("FormT", bound=BaseModel)


def own_form(credentials: BaseModel, form: type[FormT]) -> FormT:
    """Return the connect form as the connector's own model; another platform's is a bug."""
    if not isinstance(credentials, form):
        raise TypeError(f"expected {form.__module__}.{form.__name__}, not {type(credentials)}")
    return credentials


ROLE_NAMES: dict[Role, str] = {
    Role.USER: "Customer",
    Role.ASSISTANT: "AI assistant",
    Role.HUMAN_AGENT: "Support",
    Role.SYSTEM: "System",
}
TRUNCATED = "[earlier messages left out to fit the ticket]"


def _line(message: Message) -> str:
    return f"[{message.created_at:%Y-%m-%d %H:%M} UTC] {ROLE_NAMES[message.role]}: {message.text}"


def _reasons(packet: TicketPacket) -> str:
    return ", ".join(r.value.replace("_", " ") for r in packet.reasons) or "not recorded"


def plain_body(packet: TicketPacket, max_chars: int) -> str:
    """Return the ticket body as plain text: summary, reasons, link, then the transcript.

    When the whole transcript does not fit, the oldest messages go first: the latest ones
    are what the agent answers.
    """
    head = (
        f"Summary: {packet.summary}\n"
        f"Why escalated: {_reasons(packet)}\n"
        f"Channel: {packet.channel.value}\n"
        f"Conversation: {packet.conversation_url}\n\n"
        "Transcript:\n"
    )
    lines = [_line(m) for m in packet.transcript]
    return head + _fit(lines, max_chars - len(head), "\n")


def html_body(packet: TicketPacket, max_chars: int) -> str:
    """Return the ticket body as HTML; every piece of user text is escaped."""
    e = html.escape
    head = (
        f"<p><strong>Summary:</strong> {e(packet.summary)}</p>"
        f"<p><strong>Why escalated:</strong> {e(_reasons(packet))}</p>"
        f"<p><strong>Channel:</strong> {e(packet.channel.value)} · "
        f'<a href="{e(packet.conversation_url, quote=True)}">Open the conversation</a></p>'
        "<p><strong>Transcript</strong></p>"
    )
    lines = [f"<p>{e(_line(m))}</p>" for m in packet.transcript]
    return head + _fit(lines, max_chars - len(head), "", marker=f"<p>{TRUNCATED}</p>")


def _fit(lines: list[str], budget: int, joiner: str, marker: str = TRUNCATED) -> str:
    text = joiner.join(lines)
    if len(text) <= budget:
        return text
    kept: list[str] = []
    used = len(marker) + len(joiner)
    for line in reversed(lines):
        if used + len(line) + len(joiner) > budget:
            break
        kept.append(line)
        used += len(line) + len(joiner)
    if not kept:  # one enormous message: keep its end
        return marker + joiner + lines[-1][-max(0, budget - len(marker) - len(joiner)) :]
    return joiner.join([marker, *reversed(kept)])


def retry_after(headers: Mapping[str, str], *names: str) -> float | None:
    """Return the first of the named headers that holds a number of seconds."""
    for name in (*names, "retry-after"):
        value = headers.get(name)
        if value is not None:
            try:
                return max(0.0, float(value))
            except ValueError:
                continue
    return None


# What an error may repeat of a platform's answer: identifier-like codes, never prose.
ERROR_CODE = re.compile(r"[A-Za-z0-9_.:/-]{1,60}")
MAX_ERROR_CODES = 3
# How resolvers say a name has no address, when only the text of the error is left.
UNRESOLVED_NAME_WORDS = (
    "Name or service not known",
    "nodename nor servname",
    "Temporary failure in name resolution",
    "No address associated with hostname",
)


def json_body(response: httpx.Response) -> Any:
    """Return the answer's JSON, or None when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def webhook_json(body: bytes, what: str) -> Any:
    """Return a webhook's JSON; a body that is not JSON is refused, naming `what` it is."""
    try:
        return json.loads(body)
    except ValueError as error:
        raise Rejected(400, f"{what} is not JSON") from error


def json_object(response: httpx.Response) -> dict[str, Any]:
    """Return the answer's JSON object; an empty one when the body is not a JSON object."""
    body = json_body(response)
    return body if isinstance(body, dict) else {}


def status_reason(response: httpx.Response, codes: Iterable[object] = ()) -> str:
    """Say what a failed answer was: its status and the platform's error codes, never its body.

    The URL a connector calls comes from an admin's form and the error goes back to the API
    (and the inbox), so a body echoed here would read out whatever the URL reached. Only codes
    a connector takes from keys it knows pass (`RecordInvalid`, `INVALID_FIELD`, a field
    name), and only when they look like identifiers; the reason phrase is the standard one,
    not the server's.
    """
    status = response.status_code
    said = f"HTTP {status} {httpx.codes.get_reason_phrase(status)}".rstrip()
    kept = [
        str(code)
        for code in codes
        if isinstance(code, str | int) and not isinstance(code, bool)
        if ERROR_CODE.fullmatch(str(code))
    ]
    kept = list(dict.fromkeys(kept))[:MAX_ERROR_CODES]
    return f"{said} ({', '.join(kept)})" if kept else said


def check_response(
    response: httpx.Response,
    *,
    platform: str,
    codes: Callable[[httpx.Response], Iterable[object]] | None = None,
    retry_headers: tuple[str, ...] = (),
    wait: Callable[[httpx.Response], float | None] | None = None,
) -> httpx.Response:
    """Return a successful response; raise the connector error that fits any other.

    A rate limit waits as long as Retry-After (or one of `retry_headers`) says, else as long
    as `wait` reads from the platform's own headers.
    """
    status = response.status_code
    if status < 400:
        return response
    reason = status_reason(response, codes(response) if codes else ())
    if status == 401:
        raise InvalidCredentials(f"{platform} refused the credentials: {reason}")
    if status == 429:
        seconds = retry_after(response.headers, *retry_headers)
        if seconds is None and wait is not None:
            seconds = wait(response)
        raise RateLimited(f"{platform} rate limit: {reason}", seconds)
    if status >= 500:
        raise Unavailable(f"{platform} answered {reason}")
    raise Rejected(status, f"{platform}: {reason}")


async def send(
    http: httpx.AsyncClient,
    request: httpx.Request,
    *,
    platform: str,
    auth: httpx.Auth | None = None,
) -> httpx.Response:
    """Send a request; network failures and timeouts become Unavailable (retried later)."""
    try:
        return await http.send(request, auth=auth or httpx.USE_CLIENT_DEFAULT)
    except httpx.TimeoutException as error:
        raise Unavailable(f"{platform} did not answer in time") from error
    except httpx.TransportError as error:
        raise Unavailable(f"could not reach {request.url.host}: {network_reason(error)}") from error


def network_reason(error: httpx.TransportError) -> str:
    """Say why a call never got an answer, in words: the OS's own ("[Errno -2] Name or
    service not known") mean nothing to the person who typed the address."""
    causes: list[BaseException] = []
    cause: BaseException | None = error
    while cause is not None and cause not in causes:
        causes.append(cause)
        cause = cause.__cause__ or cause.__context__
    for cause in causes:
        if isinstance(cause, socket.gaierror):
            return "the name does not resolve"
        if isinstance(cause, ConnectionRefusedError):
            return "the connection was refused"
        if isinstance(cause, ssl.SSLError):
            return "the secure connection failed"
    said = str(error)
    if any(words in said for words in UNRESOLVED_NAME_WORDS):
        return "the name does not resolve"
    if "Connection refused" in said:
        return "the connection was refused"
    # Ours (a refused private address) and httpx's other reasons already read as sentences.
    return said or "the connection failed"


def hmac_hex(secret: str, payload: bytes, digest: str = "sha256") -> str:
    return hmac.new(secret.encode(), payload, getattr(hashlib, digest)).hexdigest()


def hmac_base64(secret: str, payload: bytes, digest: str = "sha256") -> str:
    """Return the HMAC as most platforms send it in a header: base64, not hex."""
    mac = hmac.new(secret.encode(), payload, getattr(hashlib, digest))
    return base64.b64encode(mac.digest()).decode()


def require_recent(signed_at: float, now: float | None, *, window: float, problem: str) -> None:
    """Refuse a signature made more than `window` seconds from now, either way: a replay."""
    current = time.time() if now is None else now
    if abs(current - signed_at) > window:
        raise BadSignature(problem)


def require_equal(expected: str, given: str | None, what: str) -> None:
    """Compare signatures in constant time; raise BadSignature when they differ."""
    if not given or not hmac.compare_digest(expected, given):
        raise BadSignature(f"{what} does not match")


def html_paragraph(text: str) -> str:
    """Return the user's text for an HTML body: escaped, line breaks kept."""
    return html.escape(text).replace("\n", "<br>")


class _VisibleText(HTMLParser):
    """Collect the visible text of an agent's HTML reply, dropping quoted history and code."""

    BREAKS: ClassVar[set[str]] = {
        "br",
        "p",
        "div",
        "li",
        "tr",
        "h1",
        "h2",
        "h3",
        "pre",
        "blockquote",
    }
    HIDDEN: ClassVar[set[str]] = {"blockquote", "script", "style"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self._hidden += 1
        if tag in self.BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN and self._hidden:
            self._hidden -= 1
        if tag in self.BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Return the readable text of an HTML reply: one line per block, quotes dropped."""
    if "<" not in markup:
        return html.unescape(markup).replace("\xa0", " ").strip()
    parser = _VisibleText()
    parser.feed(markup)
    parser.close()
    text = "".join(parser.parts).replace("\xa0", " ")
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)
