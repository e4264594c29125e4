"""HubSpot connector: CRM v3 tickets, contacts and notes, and v3-signed webhooks.

How HubSpot's model maps onto ours (reference: https://developers.hubspot.com/docs/api/crm/tickets):

- **Ticket**: `POST /crm/v3/objects/tickets` with `subject`, plain-text `content`, pipeline and
  stage, `hs_ticket_priority`, and the escalation's idempotency key in a *unique-value* ticket
  property (`Credentials.unique_property`), associated with the customer's contact in the same
  call (association type 16, ticket → contact).
- **Idempotency**: HubSpot has no idempotency header. A retried create hits the unique property
  and HubSpot refuses it (409, or 400 "already has that value"); we then read the existing ticket
  with `GET /crm/v3/objects/tickets/{key}?idProperty=<unique_property>`. `verify_credentials`
  creates the property (`hasUniqueValue: true`) when it is missing and the token may.
- **Tags**: HubSpot tickets have no free-form tags. The reasons are in the body ("Why
  escalated") and `packet.tags` go on a first "Tags:" line of `content`; we do not write
  `hs_ticket_category`, an enumeration that refuses unknown values.
- **Follow-ups**: the CRM has no "customer comment" on a ticket, so a user's follow-up becomes a
  note (`POST /crm/v3/objects/notes`, association type 228, note → ticket) whose body says it is
  from the customer. A note is not idempotent: a retry after a lost response can add it twice.
- **Solved**: a `ticket.propertyChange` webhook on `hs_pipeline_stage` whose new value is one of
  `Credentials.closed_stages` (see `pipelines()`, stages whose `ticketState` is CLOSED).
- **Agent replies**: ticket webhooks carry no reply text. Replies written in the Help Desk /
  inbox arrive as `conversation.newMessage` events that only name the thread and message;
  `parse_webhook` does the follow-up GETs (the thread with its associated ticket, then the
  message) and returns REPLY events for outgoing agent messages. Each event of a batch is
  read on its own: when some lookups fail, the others are still applied, the failed ones are
  queued to be read again by the outbox (with backoff), and HubSpot is answered 200; an event
  applied already (a redelivery, a queued read) is recognised by its `eventId`. Replies sent
  as CRM emails from the ticket record, outside a conversation thread, are not delivered by any
  webhook we subscribe to: that gap is HubSpot's.
- **Auth** is a private-app token, or OAuth for a public app: the authorization code flow, then
  `POST /oauth/v1/token` refreshes the 30-minute access tokens before they expire (HubSpot says a
  401 is no reliable signal, so expiry is tracked from `expires_in`), through the integration's
  TokenStore, one refresh at a time.
- **Webhook signatures** are HubSpot's v3: base64 HMAC-SHA256 with the app's client secret over
  method + URI + body + timestamp. The method and the full URL HubSpot called are not in the body,
  so they come with the `WebhookRequest` (its URL is the public webhook URL the admin
  configured). The `webhook_secret` handoff generates is not used: HubSpot cannot be given our
  secret.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal
from urllib.parse import urlencode

import httpx
import structlog
from pydantic import Field, SecretStr

from handoff import domain
from handoff.helpdesks import common
from handoff.helpdesks.base import AuthorizationCodeConnector, Choice, SignInForm, WebhookRequest
from handoff.helpdesks.common import html_paragraph, plain_body, require_equal
from handoff.helpdesks.errors import (
    BadSignature,
    HelpdeskError,
    InvalidCredentials,
    PartlyRead,
    Rejected,
)
from handoff.helpdesks.oauth import (
    BearerToken,
    OAuthTokens,
    TokenAuth,
    TokenStore,
    client_fields,
    grant,
)

PLATFORM = "hubspot"
API = "https://api.hubapi.com"
AUTHORIZE_URL = "https://app.hubspot.com/oauth/authorize"
OAUTH_SCOPES = "tickets crm.objects.contacts.read crm.objects.contacts.write"
# Granted when the installing user's account has them: Help Desk replies, creating the property.
OAUTH_OPTIONAL_SCOPES = "conversations.read crm.schemas.tickets.write"
# HUBSPOT_DEFINED association type ids:
# https://developers.hubspot.com/docs/api/crm/associations#association-type-id-values
TICKET_TO_CONTACT = 16
NOTE_TO_TICKET = 228
PRIORITIES: dict[domain.Priority, str] = {
    domain.Priority.LOW: "LOW",
    domain.Priority.NORMAL: "MEDIUM",
    domain.Priority.HIGH: "HIGH",
    domain.Priority.URGENT: "HIGH",  # URGENT exists only in newer portals; HIGH is accepted by all
}
SIGNATURE_WINDOW_SECONDS = 5 * 60  # "Reject the request if the timestamp is older than 5 min"
# v3 signatures are computed over the URI with these escapes decoded:
# https://developers.hubspot.com/docs/apps/legacy-apps/authentication/validating-requests
_URI_DECODE = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
    "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip
_ESCAPE = re.compile("|".join(_URI_DECODE), re.IGNORECASE)
_EXISTING_ID = re.compile(r"Existing ID:\s*(\d+)")

log = structlog.get_logger(__name__)


class Credentials(SignInForm):
    """What the admin gives us to connect a HubSpot account."""

    auth_fields: ClassVar[dict[str, tuple[str, ...]]] = {
        "private_app": ("access_token",),
        "oauth": ("client_id", "client_secret"),
    }

    auth: Literal["private_app", "oauth"] = Field(
        "private_app",
        title="Sign in with",
        description="`private_app` (a private app's access token) or `oauth` (a public app's "
        "client id and secret; you approve access on HubSpot once).",
    )
    access_token: SecretStr | None = Field(
        None,
        title="Private app access token",
        description="Settings → Integrations → Private apps; scopes: tickets, "
        "crm.objects.contacts.read, crm.objects.contacts.write (and conversations.read "
        "for Help Desk replies).",
    )
    pipeline: str = Field("0", title="Ticket pipeline", description="Pipeline id for new tickets.")
    stage: str = Field("1", title="Ticket status", description="Stage id new tickets start in.")
    closed_stages: list[str] = Field(
        default_factory=lambda: ["4"],
        title="Closed statuses",
        description="Stage ids that hand the conversation back to the AI.",
    )
    unique_property: str = Field(
        "handoff_conversation_id",
        title="Unique ticket property",
        description="Internal name of a ticket property with 'require unique values' on. "
        "Created at connect time when missing; otherwise create it in Settings → Properties.",
    )
    client_id: str | None = Field(
        None,
        title="App client ID",
        description="With OAuth: the public app's client ID (Auth tab; redirect URL "
        "{public URL}/api/v1/oauth/callback).",
    )
    client_secret: SecretStr | None = Field(
        None,
        title="App client secret",
        description="Signs the webhooks HubSpot sends (X-HubSpot-Signature-v3); with OAuth, "
        "also authenticates the token requests.",
    )
    portal_id: str | None = Field(
        None, title="Hub ID", description="Looked up from the token when left empty."
    )
    base_url: str = Field(API, title="API base URL", description="Change only for tests.")


@dataclass(frozen=True, slots=True)
class Stage:
    """One ticket status an admin can pick."""

    id: str
    label: str
    closed: bool


@dataclass(frozen=True, slots=True)
class Pipeline:
    """One ticket pipeline and its statuses, in display order."""

    id: str
    label: str
    stages: tuple[Stage, ...]


class HubSpotHelpdesk(AuthorizationCodeConnector[Credentials]):
    """Tickets in HubSpot's CRM through a private app token."""

    platform = PLATFORM
    title = "HubSpot"
    description = "Tickets in a HubSpot pipeline; private app or OAuth."
    # String properties hold at most 65,536 characters:
    # https://knowledge.hubspot.com/properties/property-field-types-in-hubspot
    max_body_chars = 65_536

    def _setup(self, form: Credentials) -> None:
        # HubSpot signs webhooks with the app's secret; the generated `_webhook_secret` goes unused.
        self._base_url = form.base_url.rstrip("/")
        self._account: dict[str, Any] | None = None
        self._auth = self._sign_in(self._tokens)

    # --- OAuth -----------------------------------------------------------------------------

    def authorize_url(self, redirect_uri: str, state: str) -> str | None:
        """Return HubSpot's install page for the public app; None with a private-app token."""
        if self._credentials.auth != "oauth":
            return None
        query = {
            "client_id": self._credentials.client_id or "",
            "redirect_uri": redirect_uri,
            "scope": OAUTH_SCOPES,
            "optional_scope": OAUTH_OPTIONAL_SCOPES,
            "state": state,
        }
        # The install page lives on app.hubspot.com; a test API base serves it too.
        page = AUTHORIZE_URL if self._base_url == API else f"{self._base_url}/oauth/authorize"
        return f"{page}?{urlencode(query)}"

    async def _grant(self, fields: dict[str, str], keep_refresh: str | None = None) -> OAuthTokens:
        creds = self._credentials
        form = {**fields, **client_fields(creds.client_id, creds.client_secret)}
        url = f"{self._base_url}/oauth/v1/token"
        return await grant(
            self._http, url, platform=self._vendor, form=form, keep_refresh=keep_refresh
        )

    def _sign_in(self, tokens: TokenStore) -> httpx.Auth:
        """A private app's token is fixed; OAuth tokens expire, so they are renewed as needed."""
        token = self._credentials.access_token
        if self._credentials.auth == "private_app" and token is not None:
            return BearerToken(token.get_secret_value())
        return TokenAuth(tokens, self._refresh)

    # --- HTTP ------------------------------------------------------------------------------

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return (await self._call(method, path, **kwargs)).json()

    def _codes(self, response: httpx.Response) -> list[object]:
        """Read the codes of HubSpot's error body: category or rate-limit policy, each error's
        code and the properties it names."""
        data = common.json_object(response)
        codes: list[object] = [data.get("category"), data.get("policyName")]
        errors = data.get("errors")
        for error in errors if isinstance(errors, list) else []:
            if isinstance(error, dict):
                context = error.get("context")
                named = context.get("propertyName") if isinstance(context, dict) else None
                codes += [error.get("code"), *(named if isinstance(named, list) else [])]
        return codes

    def _rate_limit_wait(self, response: httpx.Response) -> float | None:
        """Return how long to wait from HubSpot's X-HubSpot-RateLimit-* headers."""
        # https://developers.hubspot.com/docs/guides/apps/api-usage/usage-details#rate-limits
        headers = response.headers
        if headers.get("x-hubspot-ratelimit-daily-remaining") == "0":
            return 3600.0  # the daily budget resets at midnight in the account's time zone
        interval = headers.get("x-hubspot-ratelimit-interval-milliseconds")
        if interval is not None and interval.isascii() and interval.isdigit():
            return int(interval) / 1000
        return None

    # --- connect ---------------------------------------------------------------------------

    async def verify_credentials(self) -> None:
        """Check the token, the pipeline and stage, and the unique property (creating it)."""
        try:
            pipelines = await self.pipelines()
            await self._account_info()
        except InvalidCredentials as error:
            raise InvalidCredentials(f"access_token: {error}") from error
        except Rejected as error:
            if error.status == 403:
                raise _missing_scope(error) from error
            raise
        pipeline = next((p for p in pipelines if p.id == self._credentials.pipeline), None)
        if pipeline is None:
            known = ", ".join(f"{p.id} ({p.label})" for p in pipelines)
            raise Rejected(422, f"no ticket pipeline {self._credentials.pipeline!r}; pick {known}")
        if self._credentials.stage not in {s.id for s in pipeline.stages}:
            known = ", ".join(f"{s.id} ({s.label})" for s in pipeline.stages)
            raise Rejected(422, f"pipeline {pipeline.label!r} has no stage; pick {known}")
        await self._ensure_unique_property()

    async def options(self) -> dict[str, list[Choice]]:
        """Return the ticket pipelines, and the statuses of the configured pipeline."""
        try:
            pipelines = await self.pipelines()
        except Rejected as error:
            if error.status == 403:
                raise _missing_scope(error) from error
            raise
        chosen = next((p for p in pipelines if p.id == self._credentials.pipeline), None)
        stages = [Choice(value=s.id, label=s.label) for s in chosen.stages] if chosen else []
        return {
            "pipeline": [Choice(value=p.id, label=p.label) for p in pipelines],
            # A pipeline's stages are its own: pick the pipeline, reconnect, then its stages.
            "stage": stages,
            "closed_stages": list(stages),
        }

    async def pipelines(self) -> list[Pipeline]:
        """Return the account's ticket pipelines and statuses, for the admin's lists."""
        data = await self._json("GET", "/crm/v3/pipelines/tickets")
        return [
            Pipeline(
                id=str(p["id"]),
                label=str(p.get("label", "")),
                stages=tuple(
                    Stage(
                        id=str(s["id"]),
                        label=str(s.get("label", "")),
                        closed=_is_closed(s.get("metadata") or {}),
                    )
                    for s in sorted(p.get("stages", []), key=lambda s: s.get("displayOrder", 0))
                ),
            )
            for p in data.get("results", [])
        ]

    async def _account_info(self) -> dict[str, Any]:
        if self._account is None:
            # https://developers.hubspot.com/docs/api-reference/latest/account/account-information/guide
            self._account = dict(await self._json("GET", "/account-info/v3/details"))
        return self._account

    async def _ensure_unique_property(self) -> None:
        name = self._credentials.unique_property
        response = await self._call("GET", f"/crm/v3/properties/tickets/{name}", check=False)
        if response.status_code == 404:
            # https://developers.hubspot.com/docs/api/crm/properties#create-unique-identifier-properties
            await self._call(
                "POST",
                "/crm/v3/properties/tickets",
                json={
                    "name": name,
                    "label": "Handoff conversation id",
                    "type": "string",
                    "fieldType": "text",
                    "groupName": "ticketinformation",
                    "hasUniqueValue": True,
                    "description": "Set by handoff; keeps a retried escalation to one ticket.",
                },
            )
            return
        prop = self._check(response).json()
        if not prop.get("hasUniqueValue"):
            raise Rejected(
                422, f"ticket property {name!r} must have 'require unique values' turned on"
            )

    # --- tickets ---------------------------------------------------------------------------

    async def create_ticket(self, packet: domain.TicketPacket) -> domain.TicketRef:
        """Create the ticket once per `packet.idempotency_key`, even when retried."""
        contact_id = await self._contact_id(packet.contact)
        tags = f"Tags: {', '.join(packet.tags)}\n" if packet.tags else ""
        properties = {
            "subject": packet.subject[:255],
            "content": tags + plain_body(packet, self.max_body_chars - len(tags)),
            "hs_pipeline": self._credentials.pipeline,
            "hs_pipeline_stage": self._credentials.stage,
            "hs_ticket_priority": PRIORITIES[packet.priority],
            self._credentials.unique_property: packet.idempotency_key,
        }
        associations = (
            [_association(contact_id, TICKET_TO_CONTACT)] if contact_id is not None else []
        )
        response = await self._call(
            "POST",
            "/crm/v3/objects/tickets",
            json={"properties": properties, "associations": associations},
            check=False,
        )
        if _is_unique_conflict(response, self._credentials.unique_property):
            return await self._existing_ticket(packet.idempotency_key)
        return await self._ref(self._check(response).json())

    async def _existing_ticket(self, key: str) -> domain.TicketRef:
        # Reading by a unique property: `idProperty` on the object endpoint.
        # https://developers.hubspot.com/changelog/updating-objects-by-custom-field-and-adding-owner-properties-via-the-api
        data = await self._json(
            "GET",
            f"/crm/v3/objects/tickets/{key}",
            params={"idProperty": self._credentials.unique_property},
        )
        return await self._ref(data)

    async def _ref(self, data: Mapping[str, Any]) -> domain.TicketRef:
        ticket_id = str(data["id"])
        url = data.get("url")
        if not isinstance(url, str) or not url:
            url = await self.ticket_url(ticket_id)
        return domain.TicketRef(id=ticket_id, url=url)

    async def ticket_url(self, ticket_id: str) -> str:
        """Return the ticket's page in HubSpot (`0-5` is the ticket object type)."""
        portal = self._credentials.portal_id
        host = "app.hubspot.com"
        if portal is None:
            account = await self._account_info()
            portal = str(account["portalId"])
            host = str(account.get("uiDomain") or host)
        return f"https://{host}/contacts/{portal}/record/0-5/{ticket_id}"

    async def _contact_id(self, contact: domain.Contact) -> str | None:
        """Find the contact by email, or create it; None when the user gave no email."""
        if not contact.email:
            return None  # HubSpot dedupes contacts by email only: no email, no contact
        found = await self._json(
            "POST",
            "/crm/v3/objects/contacts/search",
            json={
                "filterGroups": [
                    {
                        "filters": [
                            {"propertyName": "email", "operator": "EQ", "value": contact.email}
                        ]
                    }
                ],
                "properties": ["email"],
                "limit": 1,
            },
        )
        if found.get("results"):
            return str(found["results"][0]["id"])
        first, _, last = (contact.name or "").partition(" ")
        properties = {"email": contact.email, "firstname": first, "lastname": last}
        if contact.phone:
            properties["phone"] = contact.phone
        response = await self._call(
            "POST", "/crm/v3/objects/contacts", json={"properties": properties}, check=False
        )
        # Search is eventually consistent, so a contact created moments ago may be missed and
        # the create answers 409 "Contact already exists. Existing ID: …":
        # https://github.com/HubSpot/hubspot-api-nodejs/issues/545
        if response.status_code == 409:
            match = _EXISTING_ID.search(str(common.json_object(response).get("message")))
            if match:
                return match.group(1)
        return str(self._check(response).json()["id"])

    async def add_message(
        self, ticket: domain.TicketRef, message: domain.Message, contact: domain.Contact
    ) -> None:
        """Add the user's follow-up to the ticket as a note marked as from the customer."""
        body = (
            f"<p><strong>{html.escape(contact.display_name)} (customer) wrote:</strong></p>"
            f"<p>{html_paragraph(message.text)}</p>"
        )
        await self._call(
            "POST",
            "/crm/v3/objects/notes",
            json={
                "properties": {
                    "hs_note_body": body,
                    "hs_timestamp": message.created_at.isoformat().replace("+00:00", "Z"),
                },
                "associations": [_association(ticket.id, NOTE_TO_TICKET)],
            },
        )

    # --- webhooks --------------------------------------------------------------------------

    def verify_webhook(self, request: WebhookRequest, *, now: float | None = None) -> None:
        """Check HubSpot's v3 signature and its 5-minute window; raise BadSignature."""
        secret = self._credentials.client_secret
        if secret is None:
            raise BadSignature("no client_secret configured for HubSpot webhooks")
        signature = request.header("x-hubspot-signature-v3")
        stamp = request.header("x-hubspot-request-timestamp") or ""
        if not signature or not (stamp.isascii() and stamp.isdigit()):
            raise BadSignature("X-HubSpot-Signature-v3 or X-HubSpot-Request-Timestamp missing")
        if not request.url:
            raise BadSignature("the URL HubSpot called is needed to check its signature")
        common.require_recent(
            int(stamp) / 1000,
            now,
            window=SIGNATURE_WINDOW_SECONDS,
            problem="X-HubSpot-Request-Timestamp is outside the 5-minute window",
        )
        expected = v3_signature(
            secret.get_secret_value(),
            method=request.method,
            uri=request.url,
            body=request.body,
            timestamp=stamp,
        )
        require_equal(expected, signature, "X-HubSpot-Signature-v3")

    async def parse_webhook(self, request: WebhookRequest) -> list[domain.TicketEvent]:
        """Return SOLVED for tickets moved to a closed stage, and agents' replies.

        Each event of the batch is read on its own. A malformed one is skipped (a redelivery
        would not mend it); when the lookups of some fail, PartlyRead carries the others, and
        a body of the failed ones alone, to be read again later.
        """
        events: list[domain.TicketEvent] = []
        failures: list[str] = []
        unread: list[dict[str, Any]] = []
        for item in _events(request.body):
            try:
                event = await self._event(item)
            except HelpdeskError as error:
                failures.append(f"event {item.get('eventId')}: {error}")
                unread.append(item)
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                # AttributeError: a lookup answered JSON of another shape than documented.
                log.warning("malformed HubSpot webhook event skipped", error=repr(error))
            else:
                if event is not None:
                    events.append(event)
        if failures:
            raise PartlyRead(events, failures, unread=json.dumps(unread).encode())
        return events

    async def _event(self, event: Mapping[str, Any]) -> domain.TicketEvent | None:
        if _is_ticket_stage_change(event):
            if str(event.get("propertyValue")) not in self._credentials.closed_stages:
                return None
            return domain.TicketEvent.solved(
                ticket_id=str(event["objectId"]),
                event_id=str(event["eventId"]),
            )
        if event.get("subscriptionType") == "conversation.newMessage":
            return await self._reply(event)
        return None

    async def _reply(self, event: Mapping[str, Any]) -> domain.TicketEvent | None:
        # conversation.newMessage names the thread and message only: fetch the text.
        thread_id, message_id = str(event["objectId"]), str(event.get("messageId", ""))
        if not message_id or event.get("messageType", "MESSAGE") != "MESSAGE":
            return None
        event_id = str(event["eventId"])  # malformed without it: checked before any lookup
        base = f"/conversations/v3/conversations/threads/{thread_id}"
        thread = await self._json("GET", base, params={"association": "TICKET"})
        ticket_id = (thread.get("threadAssociations") or {}).get("associatedTicketId")
        if not ticket_id:
            return None  # a chat that is not one of our tickets
        message = await self._json("GET", f"{base}/messages/{message_id}")
        # Only what agents send out; the customer's own messages come in as INCOMING.
        if message.get("direction") != "OUTGOING" or message.get("type") != "MESSAGE":
            return None
        senders = message.get("senders") or [{}]
        return domain.TicketEvent.reply(
            ticket_id=str(ticket_id),
            event_id=event_id,
            text=str(message.get("text") or ""),
            author_name=senders[0].get("name"),
        )

    def webhook_setup(self, webhook_url: str) -> list[str]:
        """Return the steps an admin follows in HubSpot to send us its webhooks."""
        return [
            "In HubSpot, open Settings → Integrations → Private apps and open the app whose "
            "token you connected (or Development → Legacy apps for a public app).",
            f"Open the Webhooks tab and set the target URL to {webhook_url}",
            "Create a subscription: object type Ticket, event 'Property changed', property "
            "'Ticket status' (hs_pipeline_stage); make it active.",
            "For replies written in the Help Desk inbox, also subscribe to Conversation → "
            "'New message' (needs the conversations.read scope).",
            "Copy the app's client secret (Auth tab) into the 'App client secret' field here "
            "and reconnect: HubSpot signs every webhook with it (signature v3).",
            "Commit the changes; HubSpot then sends events in batches to the URL above.",
        ]


# --- helpers ---------------------------------------------------------------------------------


def v3_signature(secret: str, *, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """Return HubSpot's X-HubSpot-Signature-v3 for a request."""
    decoded = _ESCAPE.sub(lambda m: _URI_DECODE[m.group(0).upper()], uri)
    source = method.upper().encode() + decoded.encode() + body + timestamp.encode()
    return common.hmac_base64(secret, source)


def _association(to_id: str, type_id: int) -> dict[str, Any]:
    return {
        "to": {"id": to_id},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
    }


def _missing_scope(error: Rejected) -> InvalidCredentials:
    return InvalidCredentials(
        f"the access_token lacks a scope (tickets, crm.objects.contacts.*): {error}"
    )


def _is_closed(metadata: Mapping[str, Any]) -> bool:
    return metadata.get("ticketState") == "CLOSED" or str(metadata.get("isClosed")) == "true"


def _is_ticket_stage_change(event: Mapping[str, Any]) -> bool:
    kind = event.get("subscriptionType")
    # Legacy subscriptions say "ticket.propertyChange"; generic ones "object.propertyChange"
    # with objectTypeId 0-5 (tickets).
    is_ticket = kind == "ticket.propertyChange" or (
        kind == "object.propertyChange" and event.get("objectTypeId") == "0-5"
    )
    return is_ticket and event.get("propertyName") == "hs_pipeline_stage"


def _events(body: bytes) -> list[dict[str, Any]]:
    data = json.loads(body)
    if not isinstance(data, list):
        raise ValueError("a HubSpot webhook body is a JSON array of events")
    return [e for e in data if isinstance(e, dict)]


def _is_unique_conflict(response: httpx.Response, prop: str) -> bool:
    """Tell whether a create failed only because the unique property's value is taken."""
    if response.status_code == 409:
        return True
    # Some portals answer 400 VALIDATION_ERROR "…already has that value…" instead of 409.
    return response.status_code == 400 and "already has that value" in response.text
