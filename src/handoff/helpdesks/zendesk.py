"""Zendesk Support: tickets through the Ticketing API, agent replies through event webhooks.

Auth is an API token (Basic `{email}/token:{api_token}`) or OAuth: the authorization code flow
against the account's own OAuth client, then `POST /oauth/tokens` refreshes. Zendesk rotates
refresh tokens (a refresh deletes the old pair), so refreshes go through the integration's
TokenStore, one at a time, and the new pair is kept before it is used. A ticket is created once per
escalation: `GET /api/v2/tickets?external_id=` first (it outlives the idempotency-key window),
then `POST /api/v2/tickets` with `Idempotency-Key` and `external_id`. The requester is upserted
first so the ticket, its first comment and every follow-up are authored by the customer. A
follow-up comment carries its message id in the update's custom audit metadata; before adding
one, the ticket's audits are read, so a retry whose first try reached Zendesk adds nothing.

References:
- https://developer.zendesk.com/api-reference/ticketing/introduction/#idempotency
- https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/
- https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_audits/
- https://developer.zendesk.com/api-reference/ticketing/users/users/#create-or-update-user
- https://developer.zendesk.com/api-reference/webhooks/event-types/ticket-events/
- https://developer.zendesk.com/documentation/webhooks/verifying/
- https://developer.zendesk.com/api-reference/ticketing/oauth/grant_type_tokens/
- https://developer.zendesk.com/documentation/api-basics/authentication/refresh-token
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, ClassVar, Literal
from urllib.parse import urlencode

import httpx
from pydantic import Field, SecretStr, field_validator

from handoff import domain
from handoff.helpdesks import common
from handoff.helpdesks.base import (
    AuthorizationCodeConnector,
    Choice,
    SignInForm,
    WebhookRequest,
    address_override,
)
from handoff.helpdesks.errors import BadSignature, InvalidCredentials
from handoff.helpdesks.oauth import OAuthTokens, TokenAuth, TokenStore, client_fields, grant

PLATFORM = "Zendesk"
SUBDOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
MAX_SKEW_SECONDS = 300
COMMENT_ADDED = "zen:event-type:ticket.comment_added"
STATUS_CHANGED = "zen:event-type:ticket.status_changed"
DONE_STATUSES = frozenset({"solved", "closed"})
OAUTH_SCOPE = "read write"
MAX_LIST_PAGES = 20  # 100 per page: 2,000 groups or brands is more than any form shows
# A ticket holds at most 5,000 comments, each its own audit: 100 per page covers them all.
MAX_AUDIT_PAGES = 50
FOLLOW_UP_METADATA = "handoff_message_id"  # the custom audit metadata naming a follow-up
PRIORITIES: dict[domain.Priority, str] = {
    domain.Priority.LOW: "low",
    domain.Priority.NORMAL: "normal",
    domain.Priority.HIGH: "high",
    domain.Priority.URGENT: "urgent",
}


class Credentials(SignInForm):
    """The Zendesk connect form."""

    auth_fields: ClassVar[dict[str, tuple[str, ...]]] = {
        "api_token": ("email", "api_token"),
        "oauth": ("client_id", "client_secret"),
    }

    subdomain: str = Field(
        title="Subdomain",
        description="The part before .zendesk.com: `acme` for https://acme.zendesk.com.",
    )
    auth: Literal["api_token", "oauth"] = Field(
        default="api_token",
        title="Sign in with",
        description="`api_token` (agent email + API token) or `oauth` (an OAuth client; you "
        "approve access on Zendesk once).",
    )
    email: str | None = Field(
        default=None,
        title="Agent email",
        description="With an API token: email of the agent or admin whose token handoff uses.",
    )
    api_token: SecretStr | None = Field(
        default=None,
        title="API token",
        description="Admin Center → Apps and integrations → APIs → Zendesk API → Add API token.",
    )
    client_id: str | None = Field(
        default=None,
        title="OAuth client unique identifier",
        description="With OAuth: Admin Center → Apps and integrations → APIs → OAuth Clients → "
        "Add OAuth client (kind Confidential; redirect URL {public URL}/api/v1/oauth/callback).",
    )
    client_secret: SecretStr | None = Field(
        default=None,
        title="OAuth client secret",
        description="With OAuth: the secret Zendesk shows once when you save the OAuth client.",
    )
    webhook_signing_secret: SecretStr | None = Field(
        default=None,
        title="Webhook signing secret",
        description="Shown on the webhook's page in Admin Center after you create it "
        "(Signing secret → Reveal secret). Without it, agent replies cannot be verified.",
    )
    group_id: int | None = Field(
        default=None,
        title="Group ID",
        description="Optional: assign new tickets to this group.",
    )
    brand_id: int | None = Field(
        default=None,
        title="Brand ID",
        description="Optional: open new tickets under this brand.",
    )
    base_url: str | None = address_override("https://{subdomain}.zendesk.com")

    @field_validator("subdomain")
    @classmethod
    def _subdomain(cls, value: str) -> str:
        value = value.strip().lower().removesuffix(".zendesk.com")
        if not SUBDOMAIN.match(value):
            raise ValueError("use only letters, digits and hyphens, e.g. `acme`")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if "@" not in value or value.startswith("@") or value.endswith("@"):
            raise ValueError("enter the agent's email address")
        return value


class ZendeskHelpdesk(AuthorizationCodeConnector[Credentials]):
    """Zendesk Support behind the `Helpdesk` protocol."""

    platform = "zendesk"
    title = "Zendesk"
    description = "Tickets in Zendesk Support; API token or OAuth."
    # Zendesk documents no comment length limit; large comments are accepted but slow the
    # agent UI, so we stay at a conservative 60k characters (an assumption, not a vendor number).
    max_body_chars = 60_000
    rotates_refresh_tokens = True  # a refresh deletes the old pair

    def _setup(self, form: Credentials) -> None:
        self._base_url = (form.base_url or f"https://{form.subdomain}.zendesk.com").rstrip("/")
        # Zendesk generates the signing secret itself; the admin pastes it into the form.
        self._sign_webhooks_with(form.webhook_signing_secret)
        self._auth = self._sign_in(self._tokens)

    # --- OAuth -------------------------------------------------------------------------

    def authorize_url(self, redirect_uri: str, state: str) -> str | None:
        """Return Zendesk's approval page for our OAuth client; None with an API token."""
        if self._credentials.auth != "oauth":
            return None
        query = {
            "response_type": "code",
            "client_id": self._credentials.client_id or "",
            "redirect_uri": redirect_uri,
            "scope": OAUTH_SCOPE,
            "state": state,
        }
        return f"{self._base_url}/oauth/authorizations/new?{urlencode(query)}"

    async def _grant(self, fields: dict[str, str], keep_refresh: str | None = None) -> OAuthTokens:
        form = self._credentials
        body = {**fields, **client_fields(form.client_id, form.client_secret), "scope": OAUTH_SCOPE}
        url = f"{self._base_url}/oauth/tokens"
        return await grant(self._http, url, platform=PLATFORM, json=body, keep_refresh=keep_refresh)

    def _sign_in(self, tokens: TokenStore) -> httpx.Auth:
        """An API token signs every call as is; OAuth tokens expire, so they are renewed."""
        form = self._credentials
        if form.auth == "api_token" and form.api_token is not None:
            return httpx.BasicAuth(f"{form.email}/token", form.api_token.get_secret_value())
        return TokenAuth(tokens, self._refresh)

    # --- outbound ----------------------------------------------------------------------

    async def verify_credentials(self) -> None:
        """Fetch the token's own user; raise InvalidCredentials unless it is an agent."""
        response = await self._call("GET", "/api/v2/users/me.json", check=False)
        if response.status_code in (401, 403):
            basic = isinstance(self._auth, httpx.BasicAuth)
            what = "agent email or API token" if basic else "OAuth access token"
            reason = common.status_reason(response, self._codes(response))
            raise InvalidCredentials(f"Zendesk refused the {what}: {reason}")
        if response.status_code == 404:
            raise InvalidCredentials(
                f"no Zendesk account at subdomain {self._credentials.subdomain!r}"
            )
        user = self._check(response).json().get("user") or {}
        # /users/me answers 200 for anonymous callers, with an id of null and role end-user.
        if user.get("id") is None:
            raise InvalidCredentials("Zendesk did not accept the agent email and API token")
        if user.get("role") not in ("agent", "admin"):
            who = self._credentials.email or user.get("email") or "the approving user"
            raise InvalidCredentials(
                f"{who} is a Zendesk {user.get('role')}, not an agent or admin"
            )

    async def options(self) -> dict[str, list[Choice]]:
        """Return the account's groups (`group_id`) and active brands (`brand_id`)."""
        # https://developer.zendesk.com/api-reference/ticketing/groups/groups/#list-groups
        # https://developer.zendesk.com/api-reference/ticketing/account-configuration/brands/#list-brands
        groups = await self._list("/api/v2/groups.json", "groups")
        brands = await self._list("/api/v2/brands.json", "brands")
        return {
            "group_id": [_choice(g) for g in groups if not g.get("deleted")],
            "brand_id": [_choice(b) for b in brands if b.get("active", True)],
        }

    async def create_ticket(self, packet: domain.TicketPacket) -> domain.TicketRef:
        """Create the ticket once per `packet.idempotency_key`, even when retried."""
        existing = await self._find_by_external_id(packet.idempotency_key)
        if existing is not None:
            return self._ref(existing)
        requester_id = await self._upsert_requester(packet.contact, packet.idempotency_key)
        ticket: dict[str, Any] = {
            "subject": packet.subject,
            # The submitter authors the first comment; without these the transcript would be
            # posted by the token's agent and come back to us as an agent reply.
            "requester_id": requester_id,
            "submitter_id": requester_id,
            "comment": {
                "html_body": common.html_body(packet, self.max_body_chars),
                "public": True,
                "author_id": requester_id,
            },
            "priority": PRIORITIES[packet.priority],
            "tags": _tags(packet),
            "external_id": packet.idempotency_key,
        }
        if self._credentials.group_id is not None:
            ticket["group_id"] = self._credentials.group_id
        if self._credentials.brand_id is not None:
            ticket["brand_id"] = self._credentials.brand_id
        response = await self._call(
            "POST",
            "/api/v2/tickets.json",
            json={"ticket": ticket},
            headers={"Idempotency-Key": packet.idempotency_key},
        )
        return self._ref(response.json()["ticket"]["id"])

    async def add_message(
        self, ticket: domain.TicketRef, message: domain.Message, contact: domain.Contact
    ) -> None:
        """Add a user's follow-up message to the ticket, as the customer (not as an agent),
        once: a comment takes no idempotency key, so a retry first looks for its own audit."""
        marker = None if message.id is None else str(message.id)
        if marker is not None and await self._has_follow_up(ticket.id, marker):
            return
        shown = await self._call("GET", f"/api/v2/tickets/{ticket.id}.json")
        requester_id = shown.json()["ticket"]["requester_id"]
        # author_id makes the comment the requester's; without it the token's agent writes it.
        # https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_comments/#author-id
        comment = {"body": message.text, "public": True, "author_id": requester_id}
        update: dict[str, Any] = {"comment": comment}
        if marker is not None:
            # Custom metadata rides on the update's audit, out of the agents' sight.
            # https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#setting-metadata
            update["metadata"] = {FOLLOW_UP_METADATA: marker}
        await self._call("PUT", f"/api/v2/tickets/{ticket.id}.json", json={"ticket": update})

    async def _has_follow_up(self, ticket_id: str, marker: str) -> bool:
        """Whether an audit of the ticket carries this follow-up's marker: an earlier attempt
        added the comment, and only its answer (or the job's completion) was lost."""
        # https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_audits/
        params = {"page[size]": "100"}
        for _ in range(MAX_AUDIT_PAGES):
            data = (
                await self._call("GET", f"/api/v2/tickets/{ticket_id}/audits.json", params=params)
            ).json()
            for audit in data.get("audits") or []:
                custom = (audit.get("metadata") or {}).get("custom") or {}
                if str(custom.get(FOLLOW_UP_METADATA)) == marker:
                    return True
            meta = data.get("meta") or {}
            if not meta.get("has_more") or not meta.get("after_cursor"):
                break
            params = {"page[size]": "100", "page[after]": str(meta["after_cursor"])}
        return False

    async def _find_by_external_id(self, external_id: str) -> int | None:
        response = await self._call(
            "GET", "/api/v2/tickets.json", params={"external_id": external_id}
        )
        tickets = response.json().get("tickets") or []
        # external_id is not unique on Zendesk; the oldest match is the one we created first.
        ids = sorted(int(t["id"]) for t in tickets if t.get("external_id") == external_id)
        return ids[0] if ids else None

    async def _upsert_requester(self, contact: domain.Contact, key: str) -> int:
        user: dict[str, Any] = {"name": contact.display_name, "role": "end-user"}
        if contact.email:
            user["email"] = contact.email
        else:
            # create_or_update matches on email or external_id only: without an email, a stable
            # external id keeps retries (and phone-only users) from creating duplicates.
            user["external_id"] = f"handoff:{contact.external_id or key}"
        if contact.phone:
            user["phone"] = contact.phone
        response = await self._call(
            "POST", "/api/v2/users/create_or_update.json", json={"user": user}
        )
        return int(response.json()["user"]["id"])

    async def _list(self, path: str, key: str) -> list[dict[str, Any]]:
        """Return every item of an offset-paginated list, page by page until `next_page` is null."""
        items: list[dict[str, Any]] = []
        for page in range(1, MAX_LIST_PAGES + 1):
            params = {"page": str(page), "per_page": "100"}
            data = (await self._call("GET", path, params=params)).json()
            items += [i for i in data.get(key) or [] if isinstance(i, dict)]
            if not data.get("next_page"):
                break
        return items

    def _ref(self, ticket_id: int | str) -> domain.TicketRef:
        # ticket.url in API answers is the API URL; agents open /agent/tickets/{id}.
        url = f"https://{self._credentials.subdomain}.zendesk.com/agent/tickets/{ticket_id}"
        return domain.TicketRef(id=str(ticket_id), url=url)

    def _codes(self, response: httpx.Response) -> list[object]:
        """Read the codes of Zendesk's `{"error", "description", "details"}` error bodies."""
        body = common.json_object(response)
        codes: list[object] = [body.get("error")]
        details = body.get("details")
        for field, problems in (details if isinstance(details, dict) else {}).items():
            codes.append(field)
            for problem in problems if isinstance(problems, list) else [problems]:
                codes.append(problem.get("error") if isinstance(problem, dict) else None)
        return codes

    # --- inbound -----------------------------------------------------------------------

    def verify_webhook(self, request: WebhookRequest, *, now: float | None = None) -> None:
        """Check the webhook's HMAC-SHA256 signature and its timestamp; raise BadSignature."""
        verify_zendesk(
            secret=self._webhook_secret,
            body=request.body,
            signature=request.header("x-zendesk-webhook-signature"),
            timestamp=request.header("x-zendesk-webhook-signature-timestamp"),
            now=now,
        )

    async def parse_webhook(self, request: WebhookRequest) -> list[domain.TicketEvent]:
        """Return the agent's public reply or the solved/closed change in a verified webhook."""
        payload = common.webhook_json(request.body, "Zendesk webhook body")
        if not isinstance(payload, dict):
            return []
        kind = payload.get("type")
        detail = payload.get("detail") or {}
        event = payload.get("event") or {}
        ticket_id = _ticket_id(payload, detail)
        event_id = str(payload.get("id") or "")
        if ticket_id is None or not event_id:
            return []
        if kind == COMMENT_ADDED:
            comment = event.get("comment") or {}
            author = comment.get("author") or {}
            # Internal notes stay internal; comments by end users are the customer's own
            # messages (our follow-ups, the first comment) and must not echo back.
            if comment.get("is_public") is not True or author.get("is_staff") is not True:
                return []
            if str(author.get("id")) == str(detail.get("requester_id")):
                return []
            text = comment.get("body") or ""
            if not text.strip():
                return []
            return [
                domain.TicketEvent.reply(
                    ticket_id,
                    event_id,
                    text=text,
                    author_name=author.get("name"),
                )
            ]
        if kind == STATUS_CHANGED:
            # Event payloads spell statuses in capitals ("SOLVED"); the REST API in lower case.
            current = str(event.get("current") or detail.get("status") or "").lower()
            previous = str(event.get("previous") or "").lower()
            if current in DONE_STATUSES and previous not in DONE_STATUSES:
                return [domain.TicketEvent.solved(ticket_id, event_id)]
        return []

    def webhook_setup(self, webhook_url: str) -> list[str]:
        """Return the steps an admin follows on Zendesk to send us its webhooks."""
        return [
            f"In Zendesk, open Admin Center ({self._admin_url()}) → Apps and integrations → "
            "Webhooks → Create webhook.",
            "Choose 'Zendesk events', then subscribe to: Ticket → Comment added, and "
            "Ticket → Status changed. Click Next.",
            f"Name it 'handoff'. Endpoint URL: {webhook_url}. Request method: POST. "
            "Request format: JSON. Authentication: None.",
            "Click Create webhook.",
            "On the webhook's page, under Signing secret, click Reveal secret and copy it.",
            "In handoff, open Settings → Integrations → Zendesk and paste it into "
            "'Webhook signing secret', then save.",
        ]

    def _admin_url(self) -> str:
        return f"https://{self._credentials.subdomain}.zendesk.com/admin"


def verify_zendesk(
    *,
    secret: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    now: float | None = None,
) -> None:
    """Check `base64(HMAC-SHA256(secret, timestamp + body))` within a 5-minute window."""
    if not signature or not timestamp:
        raise BadSignature("Zendesk webhook signature headers are missing")
    try:
        signed_at = datetime.fromisoformat(timestamp).timestamp()
    except ValueError as error:
        raise BadSignature("Zendesk webhook timestamp is not ISO 8601") from error
    common.require_recent(
        signed_at,
        now,
        window=MAX_SKEW_SECONDS,
        problem="Zendesk webhook timestamp is outside the 5-minute window",
    )
    common.require_equal(sign_zendesk(secret, timestamp, body), signature, "Zendesk signature")


def sign_zendesk(secret: str, timestamp: str, body: bytes) -> str:
    """Return Zendesk's webhook signature for a timestamp and raw body."""
    return common.hmac_base64(secret, timestamp.encode() + body)


def _choice(item: dict[str, Any]) -> Choice:
    return Choice(value=str(item["id"]), label=str(item.get("name") or item["id"]))


def _tags(packet: domain.TicketPacket) -> list[str]:
    # Zendesk tags are lower-case words; spaces would split one tag into several.
    raw = [*packet.tags, "handoff", *(f"handoff_{r.value}" for r in packet.reasons)]
    tags = [re.sub(r"\s+", "_", t.strip().lower()) for t in raw if t.strip()]
    return list(dict.fromkeys(tags))


def _ticket_id(payload: dict[str, Any], detail: dict[str, Any]) -> str | None:
    if detail.get("id") is not None:
        return str(detail["id"])
    subject = str(payload.get("subject") or "")
    return subject.removeprefix("zen:ticket:") if subject.startswith("zen:ticket:") else None
