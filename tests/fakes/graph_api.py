"""A faithful fake of the WhatsApp Business Cloud API (Graph API), over real HTTP.

`FakeGraph` serves, under `/v21.0`:

- `GET /{phone_number_id}` with `Authorization: Bearer <token>`: the number's
  `verified_name`, `display_phone_number`, `quality_rating` and `id`;
- `POST /{phone_number_id}/messages`: checks the body as the Cloud API does
  (`messaging_product` "whatsapp", `to` in digits, `type` text with a 1-4096 character
  `text.body`, or template with `template.name` and `template.language.code`), records the
  message in `sent`, and answers
  `{"messaging_product":"whatsapp","contacts":[{"input","wa_id"}],"messages":[{"id":"wamid.…"}]}`.

Errors use Graph's shape, `{"error":{"message","type","code","error_subcode","fbtrace_id"}}`:
a wrong or expired token is 401 code 190, an unknown phone number id is 400 code 100 (subcode
33), a bad body is 400 code 100 or 131009. Knobs: `rate_limit_next(n)` (429 code 130429),
`close_window(wa_id)` (text to that user answers 400 code 131047 "Re-engagement message";
templates still go), `expire_token()` (every call answers 190). Every request lands in
`requests`.

`inbound_text`, `inbound_media`, `status_update` build notifications as Meta posts them to the
webhook, and `signed(payload, app_secret)` returns the body and its `X-Hub-Signature-256`.

Reference: https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages,
https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components and
https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes. Assumed, not
documented: Meta's exact wording of each message, and that a 429 carries no Retry-After.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import LoopbackServer, Received

VERSION = "v21.0"
_DIGITS = re.compile(r"^\d{6,20}$")


@dataclass(frozen=True, slots=True)
class SentMessage:
    """One message the fake accepted."""

    id: str
    to: str
    type: str  # "text" or "template"
    body: str | None  # the text, for a text message
    template: str | None  # the template's name, for a template message
    language: str | None


class FakeGraph(LoopbackServer):
    """The Cloud API for one business number."""

    def __init__(
        self,
        *,
        phone_number_id: str = "106540352242922",
        display_phone_number: str = "+1 555-010-0199",
    ) -> None:
        self.phone_number_id = phone_number_id
        self.display_phone_number = display_phone_number
        self.access_token = f"EAAG{secrets.token_hex(16)}"
        self.sent: list[SentMessage] = []
        self.requests: list[Received] = []
        self.closed_windows: set[str] = set()
        self._rate_limited = 0
        self._expired = False
        self._lock = threading.Lock()
        app = Starlette(
            routes=[
                Route(f"/{VERSION}/{{number}}", self._number, methods=["GET"]),
                Route(f"/{VERSION}/{{number}}/messages", self._messages, methods=["POST"]),
            ]
        )
        super().__init__(app, name="graph")

    @property
    def base_url(self) -> str:
        return f"{self.origin}/{VERSION}"

    # --- knobs ------------------------------------------------------------------------------

    def rate_limit_next(self, count: int = 1) -> None:
        """Answer the next `count` sends with 429, code 130429."""
        with self._lock:
            self._rate_limited = count

    def close_window(self, wa_id: str) -> None:
        """Refuse text to this user with 131047, as Graph does 24 hours after their last word."""
        self.closed_windows.add(wa_id)

    def expire_token(self) -> None:
        self._expired = True

    def sent_to(self, wa_id: str) -> list[SentMessage]:
        return [m for m in self.sent if m.to == wa_id]

    # --- the API ----------------------------------------------------------------------------

    async def _number(self, request: Request) -> Response:
        self.requests.append(Received.of(request, None))
        refused = self._check_token(request) or self._check_number(request)
        if refused is not None:
            return refused
        return JSONResponse(
            {
                "verified_name": "Acme Cloud",
                "code_verification_status": "VERIFIED",
                "display_phone_number": self.display_phone_number,
                "quality_rating": "GREEN",
                "platform_type": "CLOUD_API",
                "id": self.phone_number_id,
            }
        )

    async def _messages(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        self.requests.append(Received.of(request, body))
        refused = self._check_token(request) or self._check_number(request)
        if refused is not None:
            return refused
        if not isinstance(body, dict):
            return _error(400, 100, "(#100) The parameter messaging_product is required.")
        with self._lock:
            if self._rate_limited > 0:
                self._rate_limited -= 1
                return _error(
                    429,
                    130429,
                    "(#130429) Rate limit hit",
                    details="Cloud API message throughput has been reached.",
                )
        problem = _invalid_message(body)
        if problem is not None:
            return _error(400, 131009, "(#131009) Parameter value is not valid", details=problem)
        to = str(body["to"]).lstrip("+")
        if body["type"] == "text" and to in self.closed_windows:
            return _error(
                400,
                131047,
                "(#131047) Re-engagement message",
                details="Message failed to send because more than 24 hours have passed since "
                "the customer last replied to this number.",
            )
        message_id = f"wamid.{secrets.token_urlsafe(30)}"
        template = body.get("template") or {}
        self.sent.append(
            SentMessage(
                id=message_id,
                to=to,
                type=body["type"],
                body=(body.get("text") or {}).get("body"),
                template=template.get("name"),
                language=(template.get("language") or {}).get("code"),
            )
        )
        answer: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": body["to"], "wa_id": to}],
            "messages": [{"id": message_id}],
        }
        if body["type"] == "template":
            answer["messages"][0]["message_status"] = "accepted"
        return JSONResponse(answer)

    def _check_token(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return _error(
                400,
                2500,
                "An active access token must be used to query information about the current user.",
                kind="OAuthException",
            )
        if self._expired or not hmac.compare_digest(header[7:], self.access_token):
            return _error(
                401,
                190,
                "Error validating access token: Session has expired or the token is invalid.",
                kind="OAuthException",
                subcode=463,
            )
        return None

    def _check_number(self, request: Request) -> Response | None:
        if request.path_params["number"] == self.phone_number_id:
            return None
        return _error(
            400,
            100,
            f"Unsupported get request. Object with ID '{request.path_params['number']}' does "
            "not exist, cannot be loaded due to missing permissions, or does not support "
            "this operation.",
            kind="GraphMethodException",
            subcode=33,
        )


def _invalid_message(body: dict[str, Any]) -> str | None:
    """Return why Graph would refuse this message body, or None."""
    if body.get("messaging_product") != "whatsapp":
        return "messaging_product must be 'whatsapp'"
    if not _DIGITS.match(str(body.get("to", "")).lstrip("+")):
        return "to must be a phone number in international format"
    kind = body.get("type", "text")
    if kind == "text":
        text = (body.get("text") or {}).get("body")
        if not isinstance(text, str) or not text.strip():
            return "text.body is required"
        if len(text) > 4096:
            return "text.body must be at most 4096 characters"
        return None
    if kind == "template":
        template = body.get("template") or {}
        if not template.get("name") or not (template.get("language") or {}).get("code"):
            return "template.name and template.language.code are required"
        return None
    return f"this fake accepts text and template messages, not {kind!r}"


def _error(
    status: int,
    code: int,
    message: str,
    *,
    kind: str = "OAuthException",
    subcode: int | None = None,
    details: str | None = None,
) -> JSONResponse:
    error: dict[str, Any] = {
        "message": message,
        "type": kind,
        "code": code,
        "fbtrace_id": f"A{secrets.token_hex(10)}",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    if details is not None:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return JSONResponse({"error": error}, status_code=status)


# --- notifications as Meta posts them to the webhook ---------------------------------------


def new_wamid() -> str:
    return f"wamid.HBgL{secrets.token_hex(16).upper()}"


def _notification(
    phone_number_id: str, value: dict[str, Any], *, display: str = "15550100199"
) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": display,
                                "phone_number_id": phone_number_id,
                            },
                            **value,
                        },
                        "field": "messages",
                    }
                ],
            }
        ],
    }


def inbound_text(
    phone_number_id: str,
    wa_id: str,
    text: str,
    *,
    name: str = "Ana Souza",
    wamid: str | None = None,
) -> dict[str, Any]:
    """Return the notification for a user's text message."""
    return _notification(
        phone_number_id,
        {
            "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
            "messages": [
                {
                    "from": wa_id,
                    "id": wamid or new_wamid(),
                    "timestamp": str(int(time.time())),
                    "text": {"body": text},
                    "type": "text",
                }
            ],
        },
    )


def inbound_media(
    phone_number_id: str, wa_id: str, kind: str = "image", *, name: str = "Ana Souza"
) -> dict[str, Any]:
    """Return the notification for an image (or audio, sticker, ...) the user sent."""
    return _notification(
        phone_number_id,
        {
            "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
            "messages": [
                {
                    "from": wa_id,
                    "id": new_wamid(),
                    "timestamp": str(int(time.time())),
                    "type": kind,
                    kind: {
                        "mime_type": "image/jpeg",
                        "sha256": hashlib.sha256(b"photo").hexdigest(),
                        "id": "1003383421387256",
                    },
                }
            ],
        },
    )


def status_update(phone_number_id: str, wa_id: str, status: str = "delivered") -> dict[str, Any]:
    """Return the notification that one of our messages was sent, delivered or read."""
    return _notification(
        phone_number_id,
        {
            "statuses": [
                {
                    "id": new_wamid(),
                    "status": status,
                    "timestamp": str(int(time.time())),
                    "recipient_id": wa_id,
                    "conversation": {
                        "id": secrets.token_hex(16),
                        "origin": {"type": "service"},
                    },
                    "pricing": {"billable": True, "pricing_model": "CBP", "category": "service"},
                }
            ]
        },
    )


def signed(payload: dict[str, Any], app_secret: str) -> tuple[bytes, dict[str, str]]:
    """Return the body and headers Meta sends: the raw JSON and its X-Hub-Signature-256."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    digest = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}
