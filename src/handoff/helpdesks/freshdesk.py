"""Freshdesk (API v2): tickets from escalations, the user's follow-ups as notes, replies back.

Freshdesk has no idempotency key and no signed webhooks, so this connector:

- writes our idempotency key into a custom ticket field (`cf_handoff_conversation` by default)
  and looks for it before creating: first with the search API, then, because the search index
  lags by minutes, in the requester's own ticket list (read from the database, no lag);
- asks the admin to add an Automation rule whose "Trigger webhook" action carries a secret
  header, `X-Handoff-Token`, compared in constant time; Freshdesk sends no timestamp, so there
  is no replay window (an attacker who has the secret could replay; rotate it by reconnecting);
- derives event ids from what the webhook carries (ticket, event, comment, `modified_on`),
  because Freshdesk sends none: a redelivery maps to the same id, and two identical replies
  on one ticket within the same `modified_on` second collapse into one.

API reference: https://developers.freshdesk.com/api/
Webhooks in automation rules:
https://support.freshdesk.com/support/solutions/articles/132589-using-webhooks-in-automation-rules
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

import httpx
from pydantic import BaseModel, Field, SecretStr, field_validator

from handoff import domain
from handoff.helpdesks import common
from handoff.helpdesks.base import Choice, Connector, WebhookRequest, address_override
from handoff.helpdesks.errors import InvalidCredentials, Rejected

PLATFORM = "freshdesk"
TOKEN_HEADER = "X-Handoff-Token"
_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_FIELD_NAME = re.compile(r"^cf_[a-z0-9_]{1,60}$")  # a custom field's API name
_SAFE_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")
# https://developers.freshdesk.com/api/#tickets: priority 1-4, status 2 Open, source 7 Chat.
PRIORITIES: dict[domain.Priority, int] = {
    domain.Priority.LOW: 1,
    domain.Priority.NORMAL: 2,
    domain.Priority.HIGH: 3,
    domain.Priority.URGENT: 4,
}
STATUS_OPEN, SOURCE_CHAT = 2, 7
SOLVED_STATUSES = {4, 5}  # Resolved, Closed
SOLVED_NAMES = {"resolved", "closed"}
SUBJECT_MAX = 255
TEXT_FIELD = "custom_text"  # a single-line text ticket field, the kind external_id_field needs

# The body of the automation's webhook, verbatim. Every placeholder sits inside a JSON string:
# `{{triggered_event}}` renders as `{status:{from:2,to:4}}` or `{note_type:private}` (not
# JSON), `{{ticket.status}}` as the status *name*, and `{{ticket.latest_public_comment}}` as
# "Author Name : <html>" (seen in Zulip's and Wechaty's Freshdesk integrations).
WEBHOOK_BODY = """{
  "handoff": "freshdesk/1",
  "ticket_id": "{{ticket.id}}",
  "triggered_event": "{{triggered_event}}",
  "status": "{{ticket.status}}",
  "comment": "{{ticket.latest_public_comment}}",
  "requester": "{{ticket.requester.name}}",
  "agent": "{{ticket.agent.name}}",
  "modified_on": "{{ticket.modified_on}}"
}"""


class Credentials(BaseModel):
    """The Freshdesk connect form."""

    domain: str = Field(
        title="Freshdesk domain",
        description="The part before .freshdesk.com in your helpdesk's address, e.g. acme.",
    )
    api_key: SecretStr = Field(
        title="API key",
        description="Profile settings → View API key, of an agent who can create tickets "
        "and add notes (an admin's key also lets you check the automation rule).",
    )
    base_url: str | None = address_override("https://{domain}.freshdesk.com")
    external_id_field: str = Field(
        default="cf_handoff_conversation",
        title="Custom ticket field for the handoff id",
        description="A single-line text ticket field (Admin → Ticket fields) whose API "
        "name this is; it holds our id so a retried escalation finds its ticket.",
        pattern=_FIELD_NAME.pattern,
    )

    @field_validator("domain", mode="before")
    @classmethod
    def _bare_domain(cls, value: object) -> object:
        """Accept a pasted address ("https://acme.freshdesk.com/a/") and keep "acme"."""
        if not isinstance(value, str):
            return value
        text = value.strip().lower().removeprefix("https://").removeprefix("http://")
        text = text.split("/", 1)[0].removesuffix(".freshdesk.com")
        if not _DOMAIN.match(text):
            raise ValueError("use the part before .freshdesk.com, e.g. acme")
        return text


class FreshdeskHelpdesk(Connector[Credentials]):
    """Freshdesk tickets, notes and automation-rule webhooks."""

    platform = PLATFORM
    title = "Freshdesk"
    description = "Tickets in Freshdesk, with an API key."
    # Freshdesk documents no limit on `description`; 60k characters keeps a long transcript
    # readable in the agent view, and `common.html_body` drops the oldest messages first.
    max_body_chars = 60_000

    def _setup(self, form: Credentials) -> None:
        base = form.base_url or f"https://{form.domain}.freshdesk.com"
        self._base_url = base.rstrip("/")
        token = base64.b64encode(f"{form.api_key.get_secret_value()}:X".encode()).decode()
        self._headers["Authorization"] = f"Basic {token}"

    @property
    def _vendor(self) -> str:
        return PLATFORM

    async def verify_credentials(self) -> None:
        """Fetch the API key's own agent; raise InvalidCredentials naming the failing field."""
        # https://developers.freshdesk.com/api/#me
        try:
            response = await self._call("GET", "/api/v2/agents/me")
        except InvalidCredentials as error:
            raise InvalidCredentials(f"api_key: {error}") from None
        except Rejected as error:
            if error.status == 404:  # an unknown helpdesk answers 404 on every path
                raise InvalidCredentials(
                    f"domain: no Freshdesk helpdesk at {self._base_url}"
                ) from None
            if error.status == 403:  # API access off for this agent or plan, or locked out
                raise InvalidCredentials(f"api_key: {error.detail}") from None
            raise
        if response.status_code != 200:  # e.g. a redirect to a sign-up page
            raise InvalidCredentials(f"domain: {self._base_url} is not a Freshdesk helpdesk")

    async def options(self) -> dict[str, list[Choice]]:
        """Return the single-line text custom ticket fields (`external_id_field`).

        That is the form's only field with values to pick from: it has no group, type or
        status to choose.
        """
        # https://developers.freshdesk.com/api/#list_all_ticket_fields
        fields = (await self._call("GET", "/api/v2/ticket_fields")).json()
        texts = [
            Choice(value=str(f["name"]), label=str(f.get("label") or f["name"]))
            for f in (fields if isinstance(fields, list) else [])
            if isinstance(f, dict)
            and f.get("type") == TEXT_FIELD
            and _FIELD_NAME.match(str(f.get("name") or ""))
        ]
        return {"external_id_field": texts}

    async def create_ticket(self, packet: domain.TicketPacket) -> domain.TicketRef:
        """Find the ticket holding `packet.idempotency_key`, or create it with the key."""
        if not _SAFE_KEY.match(packet.idempotency_key):  # it goes into a search query
            raise Rejected(422, f"{PLATFORM}: idempotency key must match {_SAFE_KEY.pattern}")
        existing = await self._find(packet)
        if existing is not None:
            return self._ref(existing)
        body: dict[str, Any] = {
            "subject": packet.subject[:SUBJECT_MAX] or "Conversation escalated",
            "description": common.html_body(packet, self.max_body_chars),
            "priority": PRIORITIES[packet.priority],
            "status": STATUS_OPEN,
            "source": SOURCE_CHAT,
            "custom_fields": {self._credentials.external_id_field: packet.idempotency_key},
            **_requester(packet.contact, packet.idempotency_key),
        }
        if packet.tags:
            body["tags"] = list(dict.fromkeys(packet.tags))
        created = (await self._call("POST", "/api/v2/tickets", json=body)).json()
        return self._ref(int(created["id"]))

    async def add_message(
        self, ticket: domain.TicketRef, message: domain.Message, contact: domain.Contact
    ) -> None:
        """Add the user's message as a public, incoming note written by the requester."""
        # https://developers.freshdesk.com/api/#add_note_to_a_ticket: `incoming: true` shows
        # the note as coming from outside; `user_id` makes the requester its author.
        current = (await self._call("GET", f"/api/v2/tickets/{int(ticket.id)}")).json()
        note: dict[str, Any] = {
            "body": f"<p>{common.html_paragraph(message.text)}</p>",
            "private": False,
            "incoming": True,
        }
        if current.get("requester_id"):
            note["user_id"] = int(current["requester_id"])
        await self._call("POST", f"/api/v2/tickets/{int(ticket.id)}/notes", json=note)

    def verify_webhook(self, request: WebhookRequest, *, now: float | None = None) -> None:
        """Compare the automation's secret header in constant time; raise BadSignature."""
        # Freshdesk signs nothing and sends no timestamp, so `now` has nothing to check.
        common.require_equal(
            self._webhook_secret, _stripped(request.header(TOKEN_HEADER)), TOKEN_HEADER
        )

    async def parse_webhook(self, request: WebhookRequest) -> list[domain.TicketEvent]:
        """Return an agent's public reply and a move to Resolved/Closed; drop the rest."""
        data = json.loads(request.body)
        if not isinstance(data, dict) or not str(data.get("ticket_id", "")).strip():
            raise ValueError("no ticket_id: is the webhook body the one from the setup steps?")
        ticket_id = str(data["ticket_id"]).strip()
        event = str(data.get("triggered_event") or "")
        kind, to_status = _triggered(event)
        status_name = str(data.get("status") or "").strip().lower()
        stamp = str(data.get("modified_on") or "")
        events: list[domain.TicketEvent] = []
        if kind not in {"status", "note_private"}:
            author, text = _comment(str(data.get("comment") or ""))
            requester = str(data.get("requester") or "").strip()
            # Our own notes (and the customer's replies) are authored by the requester.
            if text and not (author and requester and author == requester):
                events.append(
                    domain.TicketEvent.reply(
                        ticket_id=ticket_id,
                        event_id=_event_id(ticket_id, "reply", event, stamp, text),
                        text=text,
                        author_name=author or (str(data.get("agent") or "").strip() or None),
                    )
                )
        if kind == "status" and to_status is not None:
            solved = to_status in SOLVED_STATUSES
        else:  # a reply with "send and resolve" names only its first event: read the status
            solved = kind != "note_private" and status_name in SOLVED_NAMES
        if solved:
            events.append(
                domain.TicketEvent.solved(
                    ticket_id=ticket_id,
                    event_id=_event_id(ticket_id, "solved", event, stamp, ""),
                )
            )
        return events

    def webhook_setup(self, webhook_url: str) -> list[str]:
        """Return the automation rule an admin creates so Freshdesk calls us."""
        field = self._credentials.external_id_field
        return [
            f"In Freshdesk, open Admin → Workflows → Ticket fields and add a single-line text "
            f"field whose API name is {field} (label e.g. 'Handoff conversation'); leave it "
            "hidden from customers.",
            "Open Admin → Workflows → Automations → the 'Ticket updates' tab → New rule; name "
            "it 'Handoff: replies to the chat'.",
            "Under 'When an action performed by': Agent. 'Involves any of these events': "
            "'Reply is sent'; 'Note is added' (type: Public); 'Status is changed' from Any "
            "status to Any status.",
            f"Under 'On tickets with these properties': '{field}' is not empty (only tickets "
            "handoff created).",
            f"Under 'Perform these actions': Trigger webhook, Request type POST, URL {webhook_url}",
            f"Add a custom header: {TOKEN_HEADER}: {self._webhook_secret}  (Freshdesk does not "
            "sign webhooks; this secret is how handoff knows the call is yours; keep it private).",
            "Encoding: JSON; Content: Advanced; paste this body exactly:\n" + WEBHOOK_BODY,
            "Save and enable the rule. Private notes, the customer's own messages and the "
            "user's follow-ups that handoff adds are ignored; a reply and a move to Resolved "
            "or Closed reach the user.",
        ]

    async def _find(self, packet: domain.TicketPacket) -> int | None:
        field, key = self._credentials.external_id_field, packet.idempotency_key
        # https://developers.freshdesk.com/api/#filter_tickets: the whole query in double
        # quotes, strings in single quotes. The index lags by minutes (below for the rest).
        found = (
            await self._call(
                "GET", "/api/v2/search/tickets", params={"query": f"\"{field}:'{key}'\""}
            )
        ).json()
        results = found.get("results") or []
        if results:
            return int(results[0]["id"])
        # A retry seconds after a lost response misses the index: read the requester's
        # own recent tickets, which come straight from the database.
        requester = await self._requester_id(packet.contact, key)
        if requester is None:
            return None
        params = {"requester_id": str(requester), "order_by": "created_at", "per_page": "100"}
        for ticket in (await self._call("GET", "/api/v2/tickets", params=params)).json():
            if (ticket.get("custom_fields") or {}).get(field) == key:
                return int(ticket["id"])
        return None

    async def _requester_id(self, contact: domain.Contact, key: str) -> int | None:
        # https://developers.freshdesk.com/api/#list_all_contacts filters by these fields.
        lookup = _identifier(contact, key)
        contacts = (await self._call("GET", "/api/v2/contacts", params=lookup)).json()
        return int(contacts[0]["id"]) if contacts else None

    def _ref(self, ticket_id: int) -> domain.TicketRef:
        url = f"https://{self._credentials.domain}.freshdesk.com/a/tickets/{ticket_id}"
        return domain.TicketRef(id=str(ticket_id), url=url)

    def _codes(self, response: httpx.Response) -> list[object]:
        """Read the codes of Freshdesk's error bodies: validation errors, or one code."""
        # https://developers.freshdesk.com/api/#error
        data = common.json_object(response)
        codes: list[object] = [data.get("code")]
        errors = data.get("errors")
        for error in errors if isinstance(errors, list) else []:
            if isinstance(error, dict):
                codes += [error.get("field"), error.get("code")]
        return codes


def _requester(contact: domain.Contact, key: str) -> dict[str, str]:
    """Return Freshdesk's requester fields: one identifier is required, plus a name."""
    # https://developers.freshdesk.com/api/#create_ticket: requester_id, email, phone (then
    # name is mandatory), twitter_id, facebook_id or unique_external_id. An anonymous user
    # gets a per-escalation unique_external_id, never a made-up email Freshdesk would mail.
    fields = {"name": contact.display_name, **_identifier(contact, key)}
    if contact.email and contact.phone:
        fields["phone"] = contact.phone
    return fields


def _identifier(contact: domain.Contact, key: str) -> dict[str, str]:
    """Return the one field that finds the requester's contact."""
    if contact.email:
        return {"email": contact.email}
    if contact.phone:
        return {"phone": contact.phone}
    return {"unique_external_id": contact.external_id or f"handoff-visitor-{key}"}


def _stripped(value: str | None) -> str | None:
    return value.strip() if value is not None else None


_EVENT = re.compile(r"^\{\s*(\w+)\s*:\s*(?:\{\s*from\s*:\s*([^,}]*),\s*to\s*:\s*([^}]*)\}|([^}]*))")


def _triggered(event: str) -> tuple[str, int | None]:
    """Classify `{{triggered_event}}`: "status" (with the new status), "note_private", "other"."""
    match = _EVENT.match(event.strip())
    if not match:
        return "other", None
    name, _, to_state, value = match.groups()
    if name == "status":
        to_text = (to_state or "").strip()
        return "status", int(to_text) if to_text.isascii() and to_text.isdigit() else None
    if name == "note_type" and (value or "").strip().lower() == "private":
        return "note_private", None
    return "other", None


def _comment(rendered: str) -> tuple[str | None, str]:
    """Split "Author Name : <html>" into the author and the comment as plain text."""
    author: str | None = None
    head, sep, rest = rendered.partition(" : ")
    if sep and "<" not in head and len(head) <= 200:
        author, rendered = head.strip() or None, rest
    return author, common.html_to_text(rendered)


def _event_id(ticket_id: str, kind: str, event: str, stamp: str, text: str) -> str:
    digest = hashlib.sha256("\x1f".join((ticket_id, kind, event, stamp, text)).encode())
    return f"freshdesk:{ticket_id}:{kind}:{digest.hexdigest()[:24]}"
