"""WhatsApp Business Cloud API: the webhook handshake and signature, inbound messages, and
delivering our side of a conversation (`WhatsAppChannel`, the channel's `SendingChannel`).

A pure adapter: it knows Meta's shapes and nothing of our database. The service decides which
conversation a message belongs to; `WhatsAppChannel.deliver` sends text while the 24-hour
window is open and the connection's approved template after it closed. Graph has no
idempotency key: a send whose answer is lost may reach the user twice, never zero times.

- Webhook setup and the verification request (`hub.mode=subscribe`, `hub.verify_token`,
  `hub.challenge` echoed back): https://developers.facebook.com/docs/graph-api/webhooks/getting-started
- Payload signature, `X-Hub-Signature-256: sha256=<HMAC-SHA256 of the raw body with the app
  secret>`: https://developers.facebook.com/docs/graph-api/webhooks/getting-started#validate-payloads
- Notification payloads (`entry[].changes[].value.messages|statuses|contacts`):
  https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components
- Sending (`POST /{phone_number_id}/messages`, text and template objects, 4096-character text
  body): https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages
- The 24-hour customer service window, after which only approved templates may be sent:
  https://developers.facebook.com/docs/whatsapp/cloud-api/guides/send-message-templates
- Error codes (190 expired token, 100 invalid parameter, 4 / 80007 / 130429 / 131056 rate
  limits, 131047 re-engagement message):
  https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes
- The phone number node, read to check the credentials:
  https://developers.facebook.com/docs/graph-api/reference/whats-app-business-account-to-number-current-status/

Errors (the service maps them onto the outbox's retry rules)::

    WhatsAppError
    ├── HandshakeRefused   the verification request's mode or verify token is wrong
    ├── BadSignature       the POST's signature does not match the app secret
    │   └── MissingSignature   no X-Hub-Signature-256 header at all
    ├── InvalidToken       the access token is expired, revoked or lacks permission
    ├── RateLimited        slow down; retry after `retry_after` seconds (None: back off)
    ├── Unavailable        network error, timeout or a Graph-side failure: retry later
    ├── WindowClosed       131047: more than 24 hours since the user's last message
    └── Rejected           Graph refused the request itself: do not retry
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from handoff.channels import errors
from handoff.channels.base import ConnectWords, Delivered, Outgoing
from handoff.domain import N_, Channel, Contact

DEFAULT_BASE_URL = "https://graph.facebook.com/v21.0"
DEFAULT_TEMPLATE_LANGUAGE = "en_US"
SIGNATURE_HEADER = "x-hub-signature-256"
MAX_TEXT_CHARS = 4096  # the Cloud API's limit on a text message body
# Graph codes that mean "slow down": app throttling, WABA rate limit, Cloud API throughput,
# and the per-recipient pair rate limit.
RATE_LIMIT_CODES = frozenset({4, 80007, 130429, 131056})
REENGAGEMENT_CODE = 131047
EXPIRED_TOKEN_CODE = 190
# Permission errors: the token exists but may not send for this number.
PERMISSION_CODES = frozenset({10, *range(200, 300)})
# Graph-side failures Meta documents as temporary.
TEMPORARY_CODES = frozenset({1, 2, 131000, 131016})
# How long after the user's last message a business may send more than a template.
WINDOW = timedelta(hours=24)


class WhatsAppError(Exception):
    """Base of every WhatsApp adapter error."""

    retryable = False


class HandshakeRefused(WhatsAppError):
    """The webhook verification request does not carry our verify token."""


class BadSignature(WhatsAppError):
    """A webhook POST's signature does not match the app secret."""


class MissingSignature(BadSignature):
    """A webhook POST came without any signature."""


class InvalidToken(WhatsAppError):
    """The access token was refused: expired, revoked, or without messaging permission."""


class RateLimited(WhatsAppError):
    """Graph asked us to slow down."""

    retryable = True

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(WhatsAppError):
    """Graph could not be reached or failed on its side."""

    retryable = True


class WindowClosed(WhatsAppError):
    """More than 24 hours passed since the user's last message: only templates may go out."""


class Rejected(WhatsAppError):
    """Graph refused the request as invalid."""

    def __init__(self, status: int, code: int | None, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code


class Credentials(BaseModel):
    """The WhatsApp connect form."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    phone_number_id: str = Field(
        title="Phone number ID",
        description="WhatsApp Manager → API Setup → Phone number ID (digits, not the number).",
        pattern=r"^\d{5,30}$",
    )
    access_token: SecretStr = Field(
        title="Access token",
        description="A System User's permanent token with whatsapp_business_messaging.",
        min_length=1,
        max_length=2000,
    )
    app_secret: SecretStr = Field(
        title="App secret",
        description="App settings → Basic → App secret; signs every webhook POST.",
        min_length=1,
        max_length=200,
    )
    verify_token: SecretStr = Field(
        title="Verify token",
        description="Any string you choose; paste the same into the webhook's Verify token.",
        min_length=1,
        max_length=200,
    )
    template_name: str = Field(
        title="Template name",
        description="An approved message template, sent instead of a reply that comes more "
        "than 24 hours after the user's last message.",
        pattern=r"^[a-z0-9_]{1,512}$",
    )
    template_language: str = Field(
        default=DEFAULT_TEMPLATE_LANGUAGE,
        title="Template language",
        description="The template's language code, e.g. en_US, pt_BR, es.",
        pattern=r"^[a-z]{2,3}(_[A-Za-z]{2,4})?$",
    )
    base_url: str = Field(
        default=DEFAULT_BASE_URL,
        title="Graph API base URL",
        description=f"Leave the default, {DEFAULT_BASE_URL}, unless you pin another version "
        "or go through a proxy.",
        max_length=500,
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must start with https://")
        return value.rstrip("/")


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """The business number the credentials send from."""

    id: str
    display_phone_number: str | None
    verified_name: str | None


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message a user sent to the business number.

    `text` is None for a message we cannot read (image, audio, location, sticker, ...).
    """

    phone_number_id: str  # the business number it was sent to
    wa_id: str  # the user's WhatsApp id: their number in international format, digits only
    message_id: str  # the wamid; a redelivery carries the same one
    type: str
    text: str | None
    profile_name: str | None
    sent_at: datetime | None

    @property
    def contact(self) -> Contact:
        return Contact(name=self.profile_name, phone=f"+{self.wa_id}", external_id=self.wa_id)


# --- webhooks ----------------------------------------------------------------------------


def verify_handshake(params: Mapping[str, str], *, verify_token: str) -> str:
    """Return the challenge to echo when the verification request carries our token."""
    if params.get("hub.mode") != "subscribe":
        raise HandshakeRefused("hub.mode must be 'subscribe'")
    given = params.get("hub.verify_token") or ""
    if not hmac.compare_digest(given.encode(), verify_token.encode()):
        raise HandshakeRefused("hub.verify_token does not match the connection's verify token")
    challenge = params.get("hub.challenge")
    if not challenge:
        raise HandshakeRefused("hub.challenge is missing")
    return challenge


def sign(app_secret: str, body: bytes) -> str:
    """Return the X-Hub-Signature-256 value Meta sends for `body`."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(*, app_secret: str, body: bytes, headers: Mapping[str, str]) -> None:
    """Check the POST's X-Hub-Signature-256 in constant time; raise BadSignature otherwise."""
    given = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER), None)
    if not given:
        raise MissingSignature(f"the {SIGNATURE_HEADER} header is missing")
    if not hmac.compare_digest(sign(app_secret, body).encode(), given.strip().lower().encode()):
        raise BadSignature(f"{SIGNATURE_HEADER} does not match the app secret")


def parse_webhook(body: bytes) -> list[Inbound]:
    """Return the user messages in a verified notification; statuses and reactions are left out.

    Raises ValueError for a body that is not a WhatsApp Business Account notification.
    """
    data = json.loads(body)
    if not isinstance(data, dict) or data.get("object") != "whatsapp_business_account":
        raise ValueError("object must be 'whatsapp_business_account'")
    found: list[Inbound] = []
    for entry in _list(data, "entry"):
        for change in _list(entry, "changes"):
            if not isinstance(change, dict) or change.get("field") != "messages":
                continue  # account updates, template reviews, ...: nothing for a conversation
            value = change.get("value")
            if isinstance(value, dict):
                found.extend(_messages(value))
    return found


def _list(data: Any, key: str) -> list[Any]:
    value = data.get(key) if isinstance(data, dict) else None
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{key} must be a list")
    return value


def _messages(value: dict[str, Any]) -> list[Inbound]:
    phone_number_id = str((value.get("metadata") or {}).get("phone_number_id", ""))
    names = {
        str(c.get("wa_id")): (c.get("profile") or {}).get("name")
        for c in _list(value, "contacts")
        if isinstance(c, dict)
    }
    found = []
    for message in _list(value, "messages"):
        if not isinstance(message, dict) or message.get("type") == "reaction":
            continue  # an emoji on an earlier message asks nothing
        wa_id, message_id = str(message["from"]), str(message["id"])
        found.append(
            Inbound(
                phone_number_id=phone_number_id,
                wa_id=wa_id,
                message_id=message_id,
                type=str(message.get("type", "unknown")),
                text=_text_of(message),
                profile_name=names.get(wa_id),
                sent_at=_timestamp(message.get("timestamp")),
            )
        )
    return found


def _text_of(message: dict[str, Any]) -> str | None:
    kind = message.get("type")
    if kind == "text":
        return str((message.get("text") or {}).get("body", ""))
    if kind == "button":  # a template's quick-reply button
        return str((message.get("button") or {}).get("text", ""))
    if kind == "interactive":
        interactive = message.get("interactive") or {}
        chosen = interactive.get("button_reply") or interactive.get("list_reply") or {}
        return str(chosen["title"]) if "title" in chosen else None
    return None


def _timestamp(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError):
        return None


# --- sending -----------------------------------------------------------------------------


def text_parts(text: str, limit: int = MAX_TEXT_CHARS) -> list[str]:
    """Split a reply into messages WhatsApp accepts, at line breaks or spaces when possible."""
    parts: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = max(rest.rfind("\n", 0, limit), rest.rfind(" ", 0, limit))
        if cut < limit // 2:  # no good break: cut hard rather than send a sliver
            cut = limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts


class WhatsAppCloud:
    """The Cloud API for one business phone number."""

    def __init__(self, credentials: Credentials, *, http: httpx.AsyncClient) -> None:
        self.credentials = credentials
        self.http = http

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credentials.access_token.get_secret_value()}"}

    @property
    def _number_url(self) -> str:
        return f"{self.credentials.base_url}/{self.credentials.phone_number_id}"

    async def verify(self) -> PhoneNumber:
        """Read the phone number with the token: one cheap call that proves both."""
        data = await self._call("GET", self._number_url)
        return PhoneNumber(
            id=str(data.get("id", self.credentials.phone_number_id)),
            display_phone_number=data.get("display_phone_number"),
            verified_name=data.get("verified_name"),
        )

    async def send_text(self, to: str, body: str) -> str:
        """Send a text message (at most 4096 characters); return its wamid."""
        return await self._send(
            {"to": to, "type": "text", "text": {"body": body, "preview_url": False}}
        )

    async def send_template(self, to: str) -> str:
        """Send the connection's approved template; return its wamid."""
        template = {
            "name": self.credentials.template_name,
            "language": {"code": self.credentials.template_language},
        }
        return await self._send({"to": to, "type": "template", "template": template})

    async def _send(self, message: dict[str, Any]) -> str:
        payload = {"messaging_product": "whatsapp", "recipient_type": "individual", **message}
        data = await self._call("POST", f"{self._number_url}/messages", json=payload)
        try:
            return str(data["messages"][0]["id"])
        except (KeyError, IndexError, TypeError):
            raise Unavailable("Graph accepted the message but returned no message id") from None

    async def _call(self, method: str, url: str, json: Any = None) -> dict[str, Any]:
        try:
            response = await self.http.request(method, url, json=json, headers=self._headers)
        except httpx.TimeoutException as error:
            raise Unavailable("the Graph API did not answer in time") from error
        except httpx.TransportError as error:
            raise Unavailable(f"cannot reach the Graph API: {error}") from error
        if response.status_code >= 400:
            raise error_for(response)
        try:
            data = response.json()
        except ValueError:
            raise Unavailable(
                f"the Graph API answered {response.status_code} without JSON"
            ) from None
        return data if isinstance(data, dict) else {}


class WhatsAppChannel:
    """Our side of a WhatsApp conversation, sent through the connection's business number."""

    channel: ClassVar[Channel] = Channel.WHATSAPP
    title: ClassVar[str] = "WhatsApp"
    place: ClassVar[str] = N_("WhatsApp")
    live: ClassVar[bool] = False
    widget_mode: ClassVar[str | None] = None
    credentials_model: ClassVar[type[BaseModel]] = Credentials
    connect_words: ClassVar[ConnectWords] = ConnectWords(
        tab="Answer on your business number",
        lead="Let the AI answer on your WhatsApp business number (WhatsApp Business Cloud API). "
        "Escalated conversations get the team's replies there too.",
        connect="Connect a business number",
        checked="One real call checks the number and token before anything is saved. The token "
        "and both secrets are stored encrypted and never shown again.",
        finish="Finish the setup at Meta",
    )

    def __init__(self, credentials: BaseModel, *, http: httpx.AsyncClient) -> None:
        if not isinstance(credentials, Credentials):
            raise TypeError(f"expected WhatsApp credentials, not {type(credentials)}")
        self.cloud = WhatsAppCloud(credentials, http=http)

    async def deliver(self, outgoing: Outgoing) -> Delivered:
        """Send the text, or the approved template once the 24-hour window closed."""
        to = outgoing.to
        if not to:
            raise errors.Rejected(422, "the conversation has no WhatsApp id to answer")
        last_heard = outgoing.last_heard
        with _delivery_errors():
            if last_heard is not None and datetime.now(UTC) - last_heard < WINDOW:
                try:
                    for part in text_parts(outgoing.text):
                        await self.cloud.send_text(to, part)
                    return Delivered()
                except WindowClosed:
                    pass  # Graph's clock says the window closed: the template goes instead
            await self.cloud.send_template(to)
        return Delivered(
            note=f"Sent as template '{self.cloud.credentials.template_name}' because the "
            "24-hour window closed: WhatsApp only lets a business send approved templates 24 "
            "hours after the user's last message. This reply itself did not reach them; send "
            "it again once they write back."
        )


@contextmanager
def _delivery_errors() -> Iterator[None]:
    """Say the adapter's errors as every channel's: what to retry, what to give up on."""
    try:
        yield
    except RateLimited as error:
        raise errors.RateLimited(str(error), error.retry_after) from error
    except Unavailable as error:
        raise errors.Unavailable(str(error)) from error
    except InvalidToken as error:
        raise errors.InvalidCredentials(
            f"{error}; reconnect WhatsApp with a valid token"
        ) from error
    except Rejected as error:
        raise errors.Rejected(error.status, str(error)) from error
    except WindowClosed as error:  # the template itself was refused for the window
        raise errors.Rejected(400, str(error)) from error


def error_for(response: httpx.Response) -> WhatsAppError:
    """Return the adapter error for a Graph error response."""
    status = response.status_code
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if not isinstance(error, dict):  # not Graph's shape: a proxy's page, another service
        error = {}
    code = error.get("code") if isinstance(error.get("code"), int) else None
    reason = _reason(error, response)
    if status == 429 or code in RATE_LIMIT_CODES:
        return RateLimited(f"WhatsApp rate limit: {reason}", _retry_after(response.headers))
    if code == REENGAGEMENT_CODE:
        return WindowClosed(f"the 24-hour window is closed: {reason}")
    if status == 401 or code == EXPIRED_TOKEN_CODE:
        return InvalidToken(f"WhatsApp refused the access token: {reason}")
    if status == 403 or code in PERMISSION_CODES:
        return InvalidToken(f"the access token may not do this: {reason}")
    if status >= 500 or code in TEMPORARY_CODES:
        return Unavailable(f"the Graph API failed ({status}): {reason}")
    return Rejected(status, code, f"WhatsApp refused the request: {reason}")


def _reason(error: Mapping[str, Any], response: httpx.Response) -> str:
    """Say the status and Graph's numeric codes, never the answer's text.

    The base URL is an admin's to set and the reason goes back to the API: text read from
    the answer would echo whatever that URL reached.
    """
    status = response.status_code
    said = f"HTTP {status} {httpx.codes.get_reason_phrase(status)}".rstrip()
    codes = ", ".join(
        f"{name} {error[key]}"
        for name, key in (("code", "code"), ("subcode", "error_subcode"))
        if isinstance(error.get(key), int) and not isinstance(error.get(key), bool)
    )
    return f"{said} [{codes}]" if codes else said


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
