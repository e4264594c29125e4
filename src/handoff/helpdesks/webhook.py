"""Generic webhook: a signed JSON ticket packet to any URL, signed replies back.

For teams on a tool with no connector. Both directions are signed with the secret the admin
sets: `X-Handoff-Timestamp` (Unix seconds) and `X-Handoff-Signature: sha256=<hex HMAC-SHA256
of "{timestamp}.{body}">`, checked within five minutes. Every call carries `Idempotency-Key`;
the receiving tool must answer a repeated key with the ticket it created the first time.

Outbound calls (JSON, POST to the configured URL), each with a `type`:

- `ping` — sent when connecting; any 2xx answer means connected.
- `ticket.create` — the packet; answer `{"ticket": {"id": "...", "url": "..."}}`.
- `ticket.message` — a follow-up from the user: `{"ticket_id", "message": {...}}`.

A refusal answers 4xx with `{"error": "<code>"}`, the code an identifier such as
`subject_too_long` (letters, digits, `_ . : / -`, at most 60 characters): the admin sees the
status and that code, never the rest of the body.

Inbound (POST to the integration's webhook URL): `{"event_id", "ticket_id", "type": "reply" |
"note" | "solved", "text", "author": {"name"}}`; notes are ignored.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import BaseModel, Field, SecretStr

from handoff import domain
from handoff.helpdesks import common
from handoff.helpdesks.base import Choice, Connector, WebhookRequest
from handoff.helpdesks.errors import BadSignature, Rejected

SIGNATURE_HEADER = "x-handoff-signature"
TIMESTAMP_HEADER = "x-handoff-timestamp"
MAX_SKEW_SECONDS = 300


class Credentials(BaseModel):
    """Where to send tickets, and the secret both sides sign with."""

    url: str = Field(
        title="Endpoint URL",
        description="Your tool's endpoint that receives ticket packets (POST, JSON).",
        pattern=r"^https?://",
    )
    signing_secret: SecretStr = Field(
        title="Signing secret",
        description="Shared secret for the HMAC-SHA256 signatures, at least 16 characters.",
        min_length=16,
    )


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """Return the signature header value for a body sent at `timestamp`."""
    return "sha256=" + common.hmac_hex(secret, f"{timestamp}.".encode() + body)


def verify_signature(
    *, secret: str, body: bytes, headers: Mapping[str, str], now: float | None = None
) -> None:
    """Check a signed call; raise BadSignature when it is forged, unsigned or stale."""
    raw = headers.get(TIMESTAMP_HEADER, "")
    if not (raw.isascii() and raw.isdigit()):
        raise BadSignature("missing or malformed X-Handoff-Timestamp")
    timestamp = int(raw)
    off = "the timestamp is more than five minutes off"
    common.require_recent(timestamp, now, window=MAX_SKEW_SECONDS, problem=off)
    common.require_equal(sign(secret, body, timestamp), headers.get(SIGNATURE_HEADER), "signature")


class WebhookHelpdesk(Connector[Credentials]):
    """Any tool that can receive a signed HTTP POST and send one back."""

    platform = "webhook"
    title = "Generic webhook"
    description = "Any other tool: signed JSON to your endpoint, signed replies back."
    max_body_chars = 200_000

    def _setup(self, form: Credentials) -> None:
        # The admin's secret signs both ways, so their tool needs only one.
        self._sign_webhooks_with(form.signing_secret)

    async def _post(self, payload: dict[str, Any], idempotency_key: str) -> httpx.Response:
        body = json.dumps(payload, separators=(",", ":")).encode()
        timestamp = int(time.time())
        request = self._http.build_request(
            "POST",
            self._credentials.url,
            content=body,
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": idempotency_key,
                TIMESTAMP_HEADER: str(timestamp),
                SIGNATURE_HEADER: sign(self._webhook_secret, body, timestamp),
            },
        )
        return await self._send(request)

    async def verify_credentials(self) -> None:
        """Send a signed ping; the tool must answer 2xx."""
        await self._post({"type": "ping"}, idempotency_key=f"ping-{int(time.time())}")

    async def options(self) -> dict[str, list[Choice]]:
        """Return nothing: the form is a URL and a secret, with no values to pick from."""
        return {}

    async def create_ticket(self, packet: domain.TicketPacket) -> domain.TicketRef:
        """Post the packet; the tool answers a repeated Idempotency-Key with the same ticket."""
        payload = {
            "type": "ticket.create",
            "idempotency_key": packet.idempotency_key,
            "subject": packet.subject,
            "summary": packet.summary,
            "reasons": [r.value for r in packet.reasons],
            "channel": packet.channel.value,
            "conversation_url": packet.conversation_url,
            "priority": packet.priority.value,
            "tags": list(packet.tags),
            "contact": _contact(packet.contact),
            "transcript": [_message(m) for m in packet.transcript],
            "body": common.plain_body(packet, self.max_body_chars),
        }
        response = await self._post(payload, packet.idempotency_key)
        try:
            data = response.json()
            ticket = data.get("ticket", data)
            return domain.TicketRef(id=str(ticket["id"]), url=str(ticket.get("url") or ""))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise Rejected(
                response.status_code, 'the answer must be JSON like {"ticket": {"id", "url"}}'
            ) from None

    async def add_message(
        self, ticket: domain.TicketRef, message: domain.Message, contact: domain.Contact
    ) -> None:
        """Post the user's follow-up message for the ticket."""
        payload = {
            "type": "ticket.message",
            "ticket_id": ticket.id,
            "contact": _contact(contact),
            "message": _message(message),
        }
        await self._post(payload, idempotency_key=f"message-{ticket.id}-{message.id}")

    def verify_webhook(self, request: WebhookRequest, *, now: float | None = None) -> None:
        """Check the reply's signature and timestamp."""
        verify_signature(
            secret=self._webhook_secret, body=request.body, headers=request.headers, now=now
        )

    async def parse_webhook(self, request: WebhookRequest) -> list[domain.TicketEvent]:
        """Return the reply or the solved event; notes stay with the team."""
        data = json.loads(request.body)
        kind = {"reply": domain.TicketEventKind.REPLY, "solved": domain.TicketEventKind.SOLVED}.get(
            str(data["type"])
        )
        if kind is None:
            return []
        author = data.get("author") or {}
        return [
            domain.TicketEvent(
                kind=kind,
                ticket_id=str(data["ticket_id"]),
                event_id=str(data["event_id"]),
                text=str(data.get("text") or ""),
                author_name=author.get("name") if isinstance(author, dict) else None,
            )
        ]

    def _codes(self, response: httpx.Response) -> list[object]:
        return [common.json_object(response).get("error")]

    def webhook_setup(self, webhook_url: str) -> list[str]:
        """Return how to wire the tool to this integration."""
        return [
            "Accept POST requests at the endpoint URL you entered; verify X-Handoff-Signature "
            '(sha256=hex HMAC-SHA256 of "{X-Handoff-Timestamp}.{raw body}" with the signing '
            "secret) and answer a repeated Idempotency-Key with the same ticket.",
            'Answer ticket.create with {"ticket": {"id": "...", "url": "..."}}; refuse with '
            'a 4xx and {"error": "<code>"}, a short identifier such as subject_too_long.',
            f"Send agent replies and solved tickets as signed POSTs to {webhook_url}, with "
            '{"event_id", "ticket_id", "type": "reply" | "note" | "solved", "text", '
            '"author": {"name"}}, signed the same way.',
        ]


def _contact(contact: domain.Contact) -> dict[str, str | None]:
    return {
        "name": contact.name,
        "email": contact.email,
        "phone": contact.phone,
        "external_id": contact.external_id,
    }


def _message(message: domain.Message) -> dict[str, Any]:
    return {
        "role": message.role.value,
        "text": message.text,
        "created_at": message.created_at.isoformat(),
    }
