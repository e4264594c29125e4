"""Intercom: escalations become Customer tickets; teammate replies come back by webhook.

API reference: https://developers.intercom.com/docs/references/rest-api/api.intercom.io
(version pinned with the `Intercom-Version` header). Webhook topics and signatures:
https://developers.intercom.com/docs/references/webhooks/webhook-models

Idempotency: Intercom has no idempotency key and no external id on tickets, so every
ticket description ends with a reference line holding `packet.idempotency_key`, and
`create_ticket` searches tickets for it (`POST /tickets/search`, `description ~ ref`) before
creating one. Intercom's search index is eventually consistent: a retry that runs within a
second or two of a create whose response was lost may not see the ticket yet; the outbox's
backoff makes that window small, but it is not zero.
"""

from __future__ import annotations

import html
import json
import time
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field, SecretStr

from handoff import domain
from handoff.helpdesks import common
from handoff.helpdesks.base import Choice, Connector, WebhookRequest, address_override
from handoff.helpdesks.common import hmac_hex, html_to_text, plain_body, require_equal
from handoff.helpdesks.errors import (
    BadSignature,
    InvalidCredentials,
    Rejected,
    Unavailable,
)

API_VERSION = "2.14"
API_HOSTS = {
    "us": "https://api.intercom.io",
    "eu": "https://api.eu.intercom.io",
    "au": "https://api.au.intercom.io",
}
# The teammate-facing web app per region (used for the ticket link only).
APP_HOSTS = {
    "us": "https://app.intercom.com",
    "eu": "https://app.eu.intercom.com",
    "au": "https://app.au.intercom.com",
}
REFERENCE_PREFIX = "handoff reference: "
MAX_TITLE_CHARS = 250
# Intercom retries a failed delivery after a minute, and may hold throttled notifications
# for up to 2 hours before dropping them, so the replay window must be wider than that:
# https://developers.intercom.com/docs/references/webhooks/webhook-models#handling-webhook-notifications
MAX_NOTIFICATION_AGE = 3 * 60 * 60
MAX_CLOCK_SKEW = 5 * 60
AGENT_AUTHORS = {"admin", "bot", "team"}

Json = dict[str, Any]


class Credentials(BaseModel):
    """What the admin enters to connect an Intercom workspace."""

    access_token: SecretStr = Field(
        title="Access token",
        description="Developer Hub → your app → Authentication → Access token.",
    )
    region: Literal["us", "eu", "au"] = Field(
        "us",
        title="Data region",
        description="Where your workspace is hosted: US, Europe or Australia.",
    )
    ticket_type_id: str | None = Field(
        None,
        title="Ticket type",
        description="The Customer ticket type escalations are filed as (picked from your list).",
    )
    client_secret: SecretStr | None = Field(
        None,
        title="Client secret",
        description="Developer Hub → your app → Basic information; signs Intercom's webhooks.",
    )
    base_url: str | None = address_override("the regional API host")


class IntercomHelpdesk(Connector[Credentials]):
    """Open Intercom tickets as the user, relay teammate replies and resolutions back."""

    platform = "intercom"
    title = "Intercom"
    description = "Tickets in Intercom, filed as a ticket type you pick."
    # Intercom publishes no limit for ticket attributes; stay well under what its inbox
    # shows comfortably (assumption, see the module docstring).
    max_body_chars = 10_000

    def _setup(self, form: Credentials) -> None:
        # Intercom signs webhooks with the app's client secret, never with a secret we pick,
        # so the generated `_webhook_secret` goes unused.
        region = form.region
        self._base_url = (form.base_url or API_HOSTS[region]).rstrip("/")
        # Every call runs on the one access token.
        self._headers["Authorization"] = f"Bearer {form.access_token.get_secret_value()}"
        self._headers["Intercom-Version"] = API_VERSION
        self._app_host = APP_HOSTS[region]
        self._me: Json | None = None
        self._ticket_contacts: dict[str, str] = {}

    async def verify_credentials(self) -> None:
        """Call `GET /me`; raise InvalidCredentials when the access token is refused."""
        self._me = None
        await self._whoami()

    async def options(self) -> dict[str, list[Choice]]:
        """Return the workspace's Customer ticket types (`ticket_type_id`), archived left out."""
        # https://developers.intercom.com/docs/references/rest-api/api.intercom.io/ticket-types/listtickettypes
        listing = await self._json("GET", "/ticket_types")
        types = [
            Choice(value=_text(entry.get("id")), label=_text(entry.get("name")))
            for entry in _list(listing.get("data"))
            if not entry.get("archived") and entry.get("category", "Customer") == "Customer"
        ]
        return {"ticket_type_id": types}

    async def create_ticket(self, packet: domain.TicketPacket) -> domain.TicketRef:
        """Create the ticket once per idempotency key: search for it first, then create."""
        ticket_type_id = self._credentials.ticket_type_id
        if not ticket_type_id:
            raise Rejected(400, "Intercom: choose a ticket type in the integration settings")
        reference = REFERENCE_PREFIX + packet.idempotency_key
        ticket_id = await self._find_ticket(reference)
        if ticket_id is None:
            contact_id = await self._find_or_create_contact(packet.contact)
            footer = f"\n\n{reference}"
            description = plain_body(packet, self.max_body_chars - len(footer)) + footer
            created = await self._json(
                "POST",
                "/tickets",
                {
                    "ticket_type_id": ticket_type_id,
                    "contacts": [{"id": contact_id}],
                    "ticket_attributes": {
                        "_default_title_": packet.subject[:MAX_TITLE_CHARS],
                        "_default_description_": description,
                    },
                },
            )
            ticket_id = _text(created.get("id"))
            self._ticket_contacts[ticket_id] = contact_id
        # Tagging is idempotent, so a retry that found the ticket tags it again safely.
        await self._tag(ticket_id, _tags(packet))
        return domain.TicketRef(id=ticket_id, url=await self._ticket_url(ticket_id))

    async def add_message(
        self, ticket: domain.TicketRef, message: domain.Message, contact: domain.Contact
    ) -> None:
        """Reply on the ticket as its contact (`POST /tickets/{id}/reply`, type "user")."""
        contact_id = await self._ticket_contact(ticket.id)
        # The reply body is HTML in Intercom (it answers "<p>…</p>"), so the text is escaped.
        body = "".join(f"<p>{html.escape(line)}</p>" for line in message.text.splitlines())
        await self._json(
            "POST",
            f"/tickets/{ticket.id}/reply",
            {
                "message_type": "comment",
                "type": "user",
                "intercom_user_id": contact_id,
                "body": body or "<p></p>",
            },
        )

    def verify_webhook(self, request: WebhookRequest, *, now: float | None = None) -> None:
        """Check `X-Hub-Signature` (HMAC-SHA1 with the client secret) and the notification age.

        The signature covers no timestamp, so the signed body's `created_at` is checked
        against a window instead; redeliveries inside it are dropped by event id upstream.
        """
        secret = self._credentials.client_secret
        if secret is None:
            raise BadSignature("Intercom client secret is not set; webhooks cannot be verified")
        expected = "sha1=" + hmac_hex(secret.get_secret_value(), request.body, "sha1")
        require_equal(expected, request.header("x-hub-signature"), "X-Hub-Signature")
        try:
            created_at = float(json.loads(request.body)["created_at"])
        except (ValueError, TypeError, KeyError) as error:
            raise BadSignature("Intercom notification has no created_at") from error
        current = time.time() if now is None else now
        if current - created_at > MAX_NOTIFICATION_AGE:
            raise BadSignature("Intercom notification is too old (replay?)")
        if created_at - current > MAX_CLOCK_SKEW:
            raise BadSignature("Intercom notification is dated in the future")

    async def parse_webhook(self, request: WebhookRequest) -> list[domain.TicketEvent]:
        """Turn a verified notification into a teammate reply or a resolution, or nothing."""
        payload = _object(json.loads(request.body))
        topic = _text(payload.get("topic"))
        event_id = _text(payload.get("id"))
        item = _object(_object(payload.get("data")).get("item"))
        # `ticket.closed` nests the ticket under `data.item.ticket` (API 2.15+); other topics
        # send the ticket itself as `data.item`.
        ticket = _object(item["ticket"]) if isinstance(item.get("ticket"), dict) else item
        ticket_id = _text(ticket.get("id"))
        if not ticket_id or not event_id:
            return []
        if topic == "ticket.admin.replied":
            part = _agent_comment(item, ticket)
            if part is None:
                return []
            text = html_to_text(_text(part.get("body")))
            links = [_text(a.get("url")) for a in _list(part.get("attachments")) if a.get("url")]
            text = "\n".join(filter(None, [text, *links]))
            if not text:
                return []
            author = _object(part.get("author")).get("name")
            return [
                domain.TicketEvent.reply(
                    ticket_id,
                    event_id,
                    text=text,
                    author_name=str(author) if author else None,
                )
            ]
        solved = topic in {"ticket.closed", "ticket.resolved"} or (
            topic == "ticket.state.updated"
            and (_state(ticket) == "resolved" or ticket.get("open") is False)
        )
        # Everything else is ignored on purpose: notes (`ticket.note.created`), the user's
        # own replies, which are our echoes (`ticket.contact.replied`), pings, assignments.
        return [domain.TicketEvent.solved(ticket_id, event_id)] if solved else []

    def webhook_setup(self, webhook_url: str) -> list[str]:
        """Return the Developer Hub steps that point Intercom's ticket webhooks at us."""
        return [
            "In Intercom, open Settings → Integrations → Developer Hub and select the app "
            "whose access token you entered.",
            "Under Configure → Webhooks, set the endpoint URL to: " + webhook_url,
            "Subscribe to the topics ticket.admin.replied, ticket.state.updated, "
            "ticket.resolved and ticket.closed (permission: Read tickets), then save.",
            "Open Configure → Basic information, copy the Client secret and paste it into "
            "the Client secret field of this integration: Intercom signs every webhook with it.",
            "Intercom sends a ping to the endpoint; replies and resolutions flow from then on.",
        ]

    async def _json(self, method: str, path: str, body: Json | None = None) -> Json:
        response = await self._call(method, path, json=body)
        if not response.content:
            return {}
        try:
            return _object(response.json())
        except ValueError as error:  # a proxy's HTML page, a truncated body
            raise Unavailable(f"Intercom answered {path} with a body that is not JSON") from error

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.status_code == 401:  # the form's one field it can be: say which
            reason = common.status_reason(response, self._codes(response))
            raise InvalidCredentials(f"Intercom refused the access_token: {reason}")
        return super()._check(response)

    def _codes(self, response: httpx.Response) -> list[object]:
        """Read the codes and fields of Intercom's `error.list` body."""
        errors = _list(common.json_object(response).get("errors"))
        return [value for e in errors for value in (e.get("code"), e.get("field"))]

    def _rate_limit_wait(self, response: httpx.Response) -> float | None:
        # X-RateLimit-Reset is a Unix timestamp, not a delay:
        # https://developers.intercom.com/docs/references/rest-api/errors/rate-limiting
        value = response.headers.get("x-ratelimit-reset")
        try:
            return max(0.0, float(value) - time.time()) if value is not None else None
        except ValueError:
            return None

    async def _whoami(self) -> Json:
        if self._me is None:
            self._me = await self._json("GET", "/me")
        return self._me

    async def _find_ticket(self, reference: str) -> str | None:
        found = await self._json(
            "POST",
            "/tickets/search",
            {
                "query": {"field": "description", "operator": "~", "value": reference},
                "pagination": {"per_page": 5},
            },
        )
        for ticket in _list(found.get("tickets")):
            description = _object(ticket.get("ticket_attributes")).get("_default_description_")
            # `~` is a token match in Intercom's search; confirm the exact line.
            if isinstance(description, str) and description.endswith(reference):
                return _text(ticket.get("id"))
        return None

    async def _find_or_create_contact(self, contact: domain.Contact) -> str:
        lookups = [("email", contact.email), ("external_id", contact.external_id)]
        for field, value in lookups:
            if value:
                found = await self._search_contact(field, value)
                if found:
                    return found
        fields = {
            "email": contact.email,
            "external_id": contact.external_id,
            "name": contact.name,
            "phone": contact.phone,
        }
        payload: Json = {k: v for k, v in fields.items() if v}
        # A user needs an email or an external id; anyone else is filed as a lead.
        payload["role"] = "user" if contact.email or contact.external_id else "lead"
        try:
            created = await self._json("POST", "/contacts", payload)
        except Rejected as error:
            if error.status != 409:  # 409: a contact with this email / external id exists
                raise
            for field, value in lookups:
                if value and (found := await self._search_contact(field, value)):
                    return found
            raise
        return _text(created.get("id"))

    async def _search_contact(self, field: str, value: str) -> str | None:
        found = await self._json(
            "POST",
            "/contacts/search",
            {"query": {"field": field, "operator": "=", "value": value}},
        )
        contacts = _list(found.get("data"))
        return _text(contacts[0].get("id")) if contacts else None

    async def _ticket_contact(self, ticket_id: str) -> str:
        if ticket_id not in self._ticket_contacts:
            ticket = await self._json("GET", f"/tickets/{ticket_id}")
            contacts = _list(_object(ticket.get("contacts")).get("contacts"))
            if not contacts:
                raise Rejected(422, f"Intercom: ticket {ticket_id} has no contact to reply as")
            self._ticket_contacts[ticket_id] = _text(contacts[0].get("id"))
        return self._ticket_contacts[ticket_id]

    async def _tag(self, ticket_id: str, names: list[str]) -> None:
        if not names:
            return
        # Tagging a ticket needs the id of an admin: the one the access token belongs to.
        admin_id = _text((await self._whoami()).get("id"))
        for name in names:
            tag = await self._json("POST", "/tags", {"name": name})
            await self._json(
                "POST",
                f"/tickets/{ticket_id}/tags",
                {"id": _text(tag.get("id")), "admin_id": admin_id},
            )

    async def _ticket_url(self, ticket_id: str) -> str:
        app_id = _object((await self._whoami()).get("app")).get("id_code")
        if not app_id:  # no workspace id to build the inbox link with: the API resource
            return f"{self._base_url}/tickets/{ticket_id}"
        # Inbox deep link as used by Intercom integrations; not in Intercom's API docs.
        return f"{self._app_host}/a/inbox/{app_id}/inbox/conversation/{ticket_id}"


def _tags(packet: domain.TicketPacket) -> list[str]:
    # Tickets have no priority field (it would be a per-workspace list attribute), so a
    # non-normal priority travels as a tag next to the action's own tags.
    tags = list(dict.fromkeys(packet.tags))
    if packet.priority is not domain.Priority.NORMAL:
        tags.append(f"priority: {packet.priority.value}")
    return tags


def _agent_comment(item: Json, ticket: Json) -> Json | None:
    parts = [_object(item["ticket_part"])] if isinstance(item.get("ticket_part"), dict) else []
    parts += _list(_object(ticket.get("ticket_parts")).get("ticket_parts"))
    for part in reversed(parts):  # the newest public comment by a teammate
        author_type = _object(part.get("author")).get("type")
        if part.get("part_type") in {"comment", "quick_reply"} and author_type in AGENT_AUTHORS:
            return part
    return None


def _state(ticket: Json) -> str:
    state = ticket.get("ticket_state")
    # A plain string before API 2.14; an object with a `category` from 2.14 on.
    return _text(_object(state).get("category") if isinstance(state, dict) else state)


def _object(value: Any) -> Json:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Json]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _text(value: Any) -> str:
    return "" if value is None else str(value)
