"""Zoho Desk: tickets through the Desk API v1, agent replies through Desk webhooks.

Auth is OAuth 2.0 with a Self Client refresh token: access tokens (1 h) come from
`POST {accounts}/oauth/v2/token?grant_type=refresh_token`, are kept in the integration's
TokenStore for every process to share (Zoho allows only ~10 token requests per 10 minutes),
refreshed shortly before expiry and once on a 401, one refresh at a time. Every call sends
`Authorization: Zoho-oauthtoken …` and `orgId`.

Zoho has no idempotency key. A ticket carries the escalation's key in the custom field
`cf_handoff_conversation_id` (the admin creates it once), and `GET /tickets/search` with
`customField1=cf_handoff_conversation_id:{key}` runs before every create.

Webhooks are not HMAC-signed: Zoho sends an RS256 JWT in `X-ZDesk-JWT` (`iss=orgId:{id}`,
`aud=webhookId:{id}`, `exp`, `kid`), verified with the data center's JWKS. The JWT does not cover
the body, so the body is only a hint: the thread or ticket it names is fetched back from the API.

References:
- https://desk.zoho.com/DeskAPIDocument (Tickets, Search, Threads, Comments, Contacts)
- https://desk.zoho.com/support/WebhookDocument.do (events, JWT, 5-second answer)
- https://www.zoho.com/accounts/protocol/oauth/web-apps/access-token-expiry.html
- https://www.zoho.com/accounts/protocol/oauth/token-limits.html
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import BaseModel, Field, SecretStr

from handoff import domain
from handoff.helpdesks import common
from handoff.helpdesks.base import Choice, Connector, WebhookRequest, address_override
from handoff.helpdesks.errors import BadSignature, InvalidCredentials, RateLimited, Rejected
from handoff.helpdesks.oauth import OAuthTokens, TokenAuth

PLATFORM = "Zoho Desk"
DataCenter = Literal["com", "eu", "in", "com.au", "jp", "ca", "sa", "com.cn"]
# Canada is served from zohocloud.ca, not zoho.ca (Desk "API Endpoints by Data Center").
DOMAINS: dict[str, str] = {"ca": "zohocloud.ca"}
KEY_FIELD = "cf_handoff_conversation_id"
MAX_SKEW = 300.0
JWKS_TTL = 3600.0
JWKS_MIN_REFETCH = 60.0  # an unknown kid refetches the keys at most once a minute
PRIORITIES: dict[domain.Priority, str] = {  # system picklist: Low, Medium, High (no Urgent)
    domain.Priority.LOW: "Low",
    domain.Priority.NORMAL: "Medium",
    domain.Priority.HIGH: "High",
    domain.Priority.URGENT: "High",
}

Json = dict[str, Any]
_jwks: dict[str, tuple[float, dict[str, rsa.RSAPublicKey]]] = {}


class Credentials(BaseModel):
    """The Zoho Desk connect form."""

    data_center: DataCenter = Field(
        default="com",
        title="Data center",
        description="Where your Zoho account lives: the end of desk.zoho.… in your browser "
        "(com, eu, in, com.au, jp, ca, sa, com.cn).",
    )
    client_id: str = Field(
        title="Client ID",
        description="api-console.zoho.{dc} → Self Client → Client ID.",
    )
    client_secret: SecretStr = Field(title="Client secret", description="The Self Client's.")
    refresh_token: SecretStr = Field(
        title="Refresh token",
        description="Generate a code in the Self Client with scopes Desk.tickets.ALL, "
        "Desk.contacts.ALL, Desk.search.READ, Desk.basic.READ, then exchange it for a refresh "
        "token (grant_type=authorization_code).",
    )
    org_id: str = Field(
        title="Organization ID",
        description="Zoho Desk → Setup → Developer Space → API → Organization ID.",
    )
    department_id: str | None = Field(
        default=None,
        title="Department",
        description="The department new tickets open in: connect first, then pick it from "
        "the integration's options and reconnect.",
    )
    webhook_id: str | None = Field(
        default=None,
        title="Webhook ID",
        description="Optional: the id of the Zoho Desk webhook; when set, deliveries whose "
        "token names another webhook are refused.",
    )
    base_url: str | None = address_override("https://desk.zoho.{dc}")
    accounts_url: str | None = address_override("https://accounts.zoho.{dc}", title="Accounts URL")


class ZohoDeskHelpdesk(Connector[Credentials]):
    """Zoho Desk behind the `Helpdesk` protocol."""

    platform = "zoho_desk"
    title = "Zoho Desk"
    description = "Tickets in a Zoho Desk department."
    max_body_chars = 65_000  # `description` takes up to 65,535 characters
    max_comment_chars: ClassVar[int] = 32_000

    def _setup(self, form: Credentials) -> None:
        # Zoho signs webhooks with its own keys; the generated `_webhook_secret` goes unused.
        region = DOMAINS.get(form.data_center, f"zoho.{form.data_center}")
        self._desk = (form.base_url or f"https://desk.{region}").rstrip("/")
        self._accounts = (form.accounts_url or f"https://accounts.{region}").rstrip("/")
        self._jwks_url = f"{self._desk}/.well-known/jwks.json"
        self._base_url = f"{self._desk}/api/v1"
        self._headers["orgId"] = form.org_id
        self._auth = TokenAuth(self._tokens, self._refresh, scheme="Zoho-oauthtoken")

    # --- outbound ----------------------------------------------------------------------

    async def verify_credentials(self) -> None:
        """Get an access token, then list departments; raise InvalidCredentials otherwise."""
        await self._tokens.token(self._refresh)  # the refresh token itself, checked first
        ids = [d["id"] for d in await self.departments()]
        if (
            self._credentials.department_id is not None
            and self._credentials.department_id not in ids
        ):
            raise InvalidCredentials(
                f"no Zoho Desk department {self._credentials.department_id!r} in this org"
            )

    async def options(self) -> dict[str, list[Choice]]:
        """Return the org's enabled departments (`department_id`)."""
        departments = await self.departments()
        return {"department_id": [Choice(value=d["id"], label=d["name"]) for d in departments]}

    async def departments(self) -> list[dict[str, str]]:
        """Return the org's enabled departments as `{"id", "name"}`, for the admin to pick."""
        data = await self._json("GET", "/departments", params={"isEnabled": "true"})
        return [{"id": str(d["id"]), "name": str(d.get("name") or "")} for d in _list(data)]

    async def create_ticket(self, packet: domain.TicketPacket) -> domain.TicketRef:
        """Create the ticket once per `packet.idempotency_key`, even when retried."""
        if self._credentials.department_id is None:
            raise Rejected(400, "Zoho Desk: choose a department in the integration settings")
        existing = await self._find_ticket(packet.idempotency_key)
        if existing is not None:
            return _ref(existing)
        contact = packet.contact
        body: Json = {
            "subject": packet.subject,
            "departmentId": self._credentials.department_id,
            "contactId": await self._contact_id(contact),
            "description": common.html_body(packet, self.max_body_chars),
            "priority": PRIORITIES[packet.priority],
            "channel": "Chat",
            "cf": {KEY_FIELD: packet.idempotency_key},
        }
        if contact.email:
            body["email"] = contact.email
        if contact.phone:
            body["phone"] = contact.phone
        return _ref(await self._json("POST", "/tickets", body=body))

    async def add_message(
        self, ticket: domain.TicketRef, message: domain.Message, contact: domain.Contact
    ) -> None:
        """Add a user's follow-up as a public comment that names the customer.

        The API cannot write an inbound thread as the contact (only channel integrations and
        email can), and `sendReply` would email the customer as an agent. A public comment is
        shown to agents, fires no Ticket_Thread_Add, so it never echoes back as a reply.
        """
        text = f"{contact.display_name} (customer) wrote:\n{message.text}"
        body = {
            "isPublic": True,
            "contentType": "plainText",
            "content": text[: self.max_comment_chars],
        }
        await self._json("POST", f"/tickets/{ticket.id}/comments", body=body)

    async def _find_ticket(self, key: str) -> Json | None:
        found = await self._json(
            "GET", "/tickets/search", params={"customField1": f"{KEY_FIELD}:{key}", "limit": "10"}
        )
        # Search matches loosely; keep exact matches only, and the oldest of them.
        matches = [t for t in _list(found) if (t.get("cf") or {}).get(KEY_FIELD) == key]
        return min(matches, key=lambda t: str(t.get("createdTime") or "")) if matches else None

    async def _contact_id(self, contact: domain.Contact) -> str:
        if contact.email:
            found = await self._json("GET", "/contacts/search", params={"email": contact.email})
            for item in _list(found):
                if str(item.get("email") or "").lower() == contact.email.lower():
                    return str(item["id"])
        first, _, last = contact.display_name.rpartition(" ")
        new: Json = {"lastName": last or contact.display_name}
        if first:
            new["firstName"] = first
        for field, value in (("email", contact.email), ("phone", contact.phone)):
            if value:
                new[field] = value
        return str((await self._json("POST", "/contacts", body=new))["id"])

    async def _json(
        self,
        method: str,
        path: str,
        *,
        body: Json | None = None,
        params: dict[str, str] | None = None,
    ) -> Json:
        response = await self._call(method, path, json=body, params=params)
        if response.status_code == 204 or not response.content:
            return {}  # Zoho answers a search with no match by 204 and no body
        data = response.json()
        return data if isinstance(data, dict) else {"data": data}

    async def _refresh(self, held: OAuthTokens | None) -> OAuthTokens:
        creds = self._credentials
        request = self._http.build_request(
            "POST",
            f"{self._accounts}/oauth/v2/token",
            params={
                "grant_type": "refresh_token",
                "client_id": creds.client_id,
                "client_secret": creds.client_secret.get_secret_value(),
                "refresh_token": creds.refresh_token.get_secret_value(),
            },
        )
        response = common.check_response(
            await common.send(self._http, request, platform=PLATFORM), platform=PLATFORM
        )
        data = response.json()
        # Zoho answers a bad refresh token with 200 and {"error": "invalid_code"}.
        error = data.get("error")
        if error or not data.get("access_token"):
            if "too many requests" in str(data.get("error_description") or error).lower():
                raise RateLimited("Zoho accounts: too many token requests", 60.0)
            raise InvalidCredentials(f"Zoho refused the refresh token or client: {error}")
        return OAuthTokens.from_grant(data, keep_refresh=creds.refresh_token.get_secret_value())

    def _codes(self, response: httpx.Response) -> list[object]:
        """Read the codes of `{"errorCode","message","errors":[{"fieldName","errorType"}]}`."""
        body = common.json_object(response)
        codes: list[object] = [body.get("errorCode")]
        for problem in _list(body, "errors"):
            codes += [str(problem.get("fieldName") or "").lstrip("/"), problem.get("errorType")]
        return codes

    # --- inbound -----------------------------------------------------------------------

    def verify_webhook(self, request: WebhookRequest, *, now: float | None = None) -> None:
        """Check the X-ZDesk-JWT claims, and its RS256 signature when the key is known.

        The check is synchronous; a key not yet fetched is fetched by `parse_webhook`, which
        verifies the signature again before it reads the body.
        """
        cached = _jwks.get(self._jwks_url)
        verify_zoho_desk(
            token=request.header("x-zdesk-jwt"),
            org_id=self._credentials.org_id,
            webhook_id=self._credentials.webhook_id,
            keys=cached[1] if cached else None,
            now=now,
        )

    async def parse_webhook(self, request: WebhookRequest) -> list[domain.TicketEvent]:
        """Return agents' public replies and closed tickets, each fetched back from Zoho."""
        token = request.header("x-zdesk-jwt")
        keys = await self._keys(_kid(token))
        verify_zoho_desk(
            token=token,
            org_id=self._credentials.org_id,
            webhook_id=self._credentials.webhook_id,
            keys=keys,
        )
        deliveries = common.webhook_json(request.body, "Zoho Desk webhook body")
        events: list[domain.TicketEvent] = []
        for delivery in deliveries if isinstance(deliveries, list) else [deliveries]:
            if isinstance(delivery, dict):
                event = await self._event(delivery)
                if event is not None:
                    events.append(event)
        return events

    async def _event(self, delivery: Json) -> domain.TicketEvent | None:
        kind, hint = delivery.get("eventType"), delivery.get("payload") or {}
        if kind == "Ticket_Thread_Add" and hint.get("ticketId") and hint.get("id"):
            ticket_id, thread_id = str(hint["ticketId"]), str(hint["id"])
            thread = await self._json("GET", f"/tickets/{ticket_id}/threads/{thread_id}")
            author = thread.get("author") or {}
            # Only what an agent sent out publicly: customers' threads come in ("in"),
            # private threads stay with the team, drafts and failed sends never reached anyone.
            if (
                thread.get("direction") != "out"
                or str(thread.get("visibility") or "public").lower() != "public"
                or str(author.get("type") or "AGENT").upper() != "AGENT"
                or str(thread.get("status") or "SUCCESS").upper() in ("DRAFT", "FAILED")
            ):
                return None
            text = common.html_to_text(str(thread.get("content") or ""))
            if not text:
                return None
            return domain.TicketEvent.reply(
                ticket_id,
                f"thread:{thread_id}",
                text=text,
                author_name=author.get("name"),
            )
        if kind == "Ticket_Update" and hint.get("id"):
            ticket = await self._json("GET", f"/tickets/{hint['id']}")
            previous = delivery.get("prevState") or {}
            if _closed(ticket) and not (previous and _closed(previous)):
                stamp = ticket.get("closedTime") or ticket.get("modifiedTime") or ""
                return domain.TicketEvent.solved(
                    str(ticket["id"]),
                    f"closed:{ticket['id']}:{stamp}",
                )
        return None

    async def _keys(self, kid: str | None) -> dict[str, rsa.RSAPublicKey]:
        cached = _jwks.get(self._jwks_url)
        if cached is not None:
            age = time.time() - cached[0]
            # Keys rotate: an unknown kid refetches them, at most once a minute.
            if (age < JWKS_TTL and kid in cached[1]) or age < JWKS_MIN_REFETCH:
                return cached[1]
        request = self._http.build_request("GET", self._jwks_url)
        response = self._check(await common.send(self._http, request, platform=PLATFORM))
        keys = {str(k["kid"]): _rsa_key(k) for k in _list(response.json(), "keys") if "kid" in k}
        _jwks[self._jwks_url] = (time.time(), keys)
        return keys

    def webhook_setup(self, webhook_url: str) -> list[str]:
        """Return the steps an admin follows in Zoho Desk to send us its webhooks."""
        return [
            "In Zoho Desk, open Setup → Customization → Layouts and Fields → Ticket Fields and add "
            "a single-line field 'handoff conversation id' (API name "
            f"{KEY_FIELD}): handoff stores each escalation's key there so a retry never opens a "
            "second ticket.",
            "Open Setup → Developer Space → Webhooks → New Webhook (Professional edition or "
            "higher).",
            f"Name it 'handoff'. URL: {webhook_url}.",
            "Under events, add Ticket → 'Ticket Thread Add' (direction: Outgoing) and Ticket → "
            "'Ticket Update' (include the previous state), for the department handoff uses.",
            "Save. Zoho checks the URL, then signs every delivery with a JWT (X-ZDesk-JWT) that "
            "handoff verifies with Zoho's public keys: there is no secret to paste.",
            "Optional: copy the webhook's id into handoff (Settings → Integrations → Zoho Desk "
            "→ Webhook ID) so only this webhook is accepted.",
        ]


def verify_zoho_desk(
    *,
    token: str | None,
    org_id: str,
    webhook_id: str | None,
    keys: Mapping[str, rsa.RSAPublicKey] | None,
    now: float | None = None,
) -> None:
    """Check a Zoho Desk webhook JWT: RS256, issuer, audience, time; the signature if `keys`."""
    if not token:
        raise BadSignature("Zoho Desk webhook has no X-ZDesk-JWT header")
    try:
        head_b64, claims_b64, signature_b64 = token.split(".")
        head, claims = json.loads(_b64(head_b64)), json.loads(_b64(claims_b64))
        signature = _b64(signature_b64)
    except ValueError as error:
        raise BadSignature("Zoho Desk webhook JWT is malformed") from error
    if not isinstance(head, dict) or not isinstance(claims, dict) or head.get("alg") != "RS256":
        raise BadSignature("Zoho Desk webhook JWT is not RS256")
    if claims.get("iss") != f"orgId:{org_id}":
        raise BadSignature("Zoho Desk webhook JWT is for another organization")
    audience = str(claims.get("aud") or "")
    if not audience.startswith("webhookId:") or (
        webhook_id and audience != f"webhookId:{webhook_id}"
    ):
        raise BadSignature("Zoho Desk webhook JWT is for another webhook")
    current = time.time() if now is None else now
    expires, issued = _seconds(claims.get("exp")), _seconds(claims.get("iat"))
    if expires is None or current > expires + MAX_SKEW:
        raise BadSignature("Zoho Desk webhook JWT has expired")
    if issued is not None and issued > current + MAX_SKEW:
        raise BadSignature("Zoho Desk webhook JWT is issued in the future")
    if keys is None:
        return  # signature checked in parse_webhook, once the keys are fetched
    key = keys.get(str(head.get("kid")))
    if key is None:
        raise BadSignature("Zoho Desk webhook JWT is signed with an unknown key")
    signed = f"{head_b64}.{claims_b64}".encode()
    try:
        key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as error:
        raise BadSignature("Zoho Desk webhook JWT signature does not match") from error


def _ref(ticket: Json) -> domain.TicketRef:
    return domain.TicketRef(id=str(ticket["id"]), url=str(ticket.get("webUrl") or ""))


def _closed(ticket: Json) -> bool:
    # Custom statuses keep their statusType; "Closed" is the system status of that type.
    return str(ticket.get("statusType") or ticket.get("status") or "").lower() == "closed"


def _list(data: Any, field: str = "data") -> list[Json]:
    items = data.get(field) if isinstance(data, dict) else None
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _seconds(value: Any) -> float | None:
    # Zoho documents milliseconds but its example uses seconds: accept both.
    if not isinstance(value, int | float):
        return None
    return value / 1000 if value > 10**11 else float(value)


def _kid(token: str | None) -> str | None:
    try:
        head = json.loads(_b64((token or "").split(".")[0]))
    except ValueError:
        return None
    return str(head.get("kid")) if isinstance(head, dict) else None


def _rsa_key(jwk: Json) -> rsa.RSAPublicKey:
    n, e = (int.from_bytes(_b64(str(jwk[p])), "big") for p in ("n", "e"))
    return rsa.RSAPublicNumbers(e, n).public_key()
