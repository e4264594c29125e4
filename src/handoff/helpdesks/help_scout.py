"""Help Scout: conversations through the Inbox (Mailbox) API 2.0, agent replies by webhook.

Auth is OAuth 2 client credentials (an app under Your Profile → My Apps): the app id and
secret buy a bearer token from `POST /v2/oauth2/token`, kept in the integration's TokenStore
until shortly before it expires and refreshed once on a 401, one refresh at a time.

Idempotency: Help Scout has no idempotency key and no external id. Every conversation we
create carries a tag holding `packet.idempotency_key`, and `create_ticket` first lists the
inbox's conversations with that tag (`GET /v2/conversations?tag=…&status=all`). Residual
risk: Help Scout's list is served by a search index that may lag a create by a few seconds,
so a retry racing a create whose response was lost can still open a second conversation; the
outbox's backoff makes that window small, not zero. Each key also leaves one tag behind in
the account's tag list.

Webhooks carry no event id and no timestamp; see `parse_webhook` for the ids we derive.

References:
- https://developer.helpscout.com/mailbox-api/overview/authentication/
- https://developer.helpscout.com/mailbox-api/endpoints/conversations/create/
- https://developer.helpscout.com/mailbox-api/endpoints/conversations/list/
- https://developer.helpscout.com/mailbox-api/endpoints/conversations/threads/customer/
- https://developer.helpscout.com/mailbox-api/overview/errors/
- https://developer.helpscout.com/mailbox-api/overview/rate-limiting/
- https://developer.helpscout.com/webhooks/
"""

from __future__ import annotations

import re
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field, SecretStr, field_validator

from handoff import domain
from handoff.helpdesks import common
from handoff.helpdesks.base import Choice, Connector, WebhookRequest, address_override
from handoff.helpdesks.errors import InvalidCredentials, Rejected, Unavailable
from handoff.helpdesks.oauth import OAuthTokens, TokenAuth, grant

PLATFORM = "Help Scout"
API_URL = "https://api.helpscout.net"
WEB_URL = "https://secure.helpscout.net"
AGENT_REPLY = "convo.agent.reply.created"
STATUS_CHANGED = "convo.status"
# Threads an agent writes that the customer sees; notes ("note") and line items are internal.
AGENT_THREAD_TYPES = frozenset({"reply", "message", "chat"})
MAX_SECRET_CHARS = 40  # Help Scout's limit for a webhook's secret key


class Credentials(BaseModel):
    """The Help Scout connect form."""

    app_id: str = Field(
        title="App ID",
        description="Your Profile → My Apps → Create My App (any redirect URL); copy its App ID.",
    )
    app_secret: SecretStr = Field(
        title="App Secret",
        description="The App Secret shown next to the App ID. The app acts as the user who "
        "created it, who must be an active user with access to the inbox.",
    )
    mailbox_id: int | None = Field(
        default=None,
        title="Inbox",
        description="The inbox new conversations open in (pick from the list after the App ID "
        "and Secret are checked).",
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        max_length=MAX_SECRET_CHARS,
        title="Webhook secret key",
        description="Optional: the secret key you typed on the Help Scout webhook (40 "
        "characters at most). Leave empty to use the one handoff generates and shows in the "
        "webhook setup steps.",
    )
    conversation_type: Literal["email", "chat"] = Field(
        default="email",
        title="Conversation type",
        description="How new conversations appear in Help Scout. With 'email', agent replies "
        "are also emailed to users who gave an email address.",
    )
    base_url: str | None = address_override(API_URL)

    @field_validator("app_id")
    @classmethod
    def _app_id(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("enter the App ID of your Help Scout app")
        return value.strip()


class HelpScoutHelpdesk(Connector[Credentials]):
    """Help Scout behind the `Helpdesk` protocol."""

    platform = "help_scout"
    title = "Help Scout"
    description = "Conversations in a Help Scout inbox."
    # Create requests were capped at 256 kB in API v1 (413 beyond); v2 documents no number.
    # 40k characters stays under it even if every character were JSON-escaped to 6 bytes.
    max_body_chars = 40_000
    retry_headers = ("x-ratelimit-retry-after",)

    def _setup(self, form: Credentials) -> None:
        self._base_url = (form.base_url or API_URL).rstrip("/")
        self._headers["Accept"] = "application/hal+json"
        # Help Scout lets the admin choose the webhook's secret key, so the one handoff
        # generated works as is; a key the admin typed into the form takes precedence.
        self._sign_webhooks_with(form.webhook_secret)
        self._auth = TokenAuth(self._tokens, self._mint)

    # --- outbound ----------------------------------------------------------------------

    async def verify_credentials(self) -> None:
        """Get a token, then list the inboxes; raise InvalidCredentials unless ours is there."""
        boxes = await self.mailboxes()
        if self._credentials.mailbox_id is not None and self._credentials.mailbox_id not in boxes:
            raise InvalidCredentials(
                f"mailbox_id: this app's user cannot see inbox {self._credentials.mailbox_id}"
            )

    async def options(self) -> dict[str, list[Choice]]:
        """Return the inboxes the app's user can see (`mailbox_id`)."""
        boxes = await self.mailboxes()
        return {"mailbox_id": [Choice(value=str(i), label=name) for i, name in boxes.items()]}

    async def mailboxes(self) -> dict[int, str]:
        """Return the inboxes the app's user can see, id → name, for the connect form."""
        found: dict[int, str] = {}
        page, pages = 1, 1
        while page <= min(pages, 20):
            data = (await self._call("GET", "/v2/mailboxes", params={"page": str(page)})).json()
            for box in (data.get("_embedded") or {}).get("mailboxes") or []:
                found[int(box["id"])] = str(box.get("name") or box["id"])
            pages = int((data.get("page") or {}).get("totalPages") or 1)
            page += 1
        return found

    async def create_ticket(self, packet: domain.TicketPacket) -> domain.TicketRef:
        """Create the conversation once per `packet.idempotency_key`, even when retried."""
        if self._credentials.mailbox_id is None:
            raise Rejected(400, "Help Scout: choose an inbox in the integration settings")
        key_tag = _key_tag(packet.idempotency_key)
        existing = await self._find(key_tag)
        if existing is not None:
            return existing
        customer = await self._customer(packet.contact)
        conversation: dict[str, Any] = {
            "subject": packet.subject[:255] or "Conversation escalated",
            "mailboxId": self._credentials.mailbox_id,
            "type": self._credentials.conversation_type,
            "status": "active",
            "customer": customer,
            # A customer thread: the transcript is the customer's, so it never comes back to
            # us as an agent reply, and the inbox treats the conversation as waiting on us.
            "threads": [
                {
                    "type": "customer",
                    "customer": _thread_customer(customer),
                    "text": common.html_body(packet, self.max_body_chars),
                }
            ],
            "tags": _tags(packet, key_tag),
        }
        response = await self._call("POST", "/v2/conversations", json=conversation)
        return _ref(_resource_id(response, "conversation"))  # the next attempt finds it by tag

    async def add_message(
        self, ticket: domain.TicketRef, message: domain.Message, contact: domain.Contact
    ) -> None:
        """Add the user's message as a customer thread (it reopens the conversation)."""
        if contact.email:
            customer: dict[str, Any] = {"email": contact.email}
        else:
            shown = (await self._call("GET", f"/v2/conversations/{int(ticket.id)}")).json()
            customer = {"id": int((shown.get("primaryCustomer") or {})["id"])}
        body = {"customer": customer, "text": common.html_paragraph(message.text)}
        await self._call("POST", f"/v2/conversations/{int(ticket.id)}/customer", json=body)

    async def _find(self, key_tag: str) -> domain.TicketRef | None:
        params = {
            "mailbox": str(self._credentials.mailbox_id),
            "status": "all",  # the default lists active conversations only
            "tag": key_tag,
            "sortField": "createdAt",
            "sortOrder": "asc",
        }
        data = (await self._call("GET", "/v2/conversations", params=params)).json()
        found = [
            c
            for c in (data.get("_embedded") or {}).get("conversations") or []
            if key_tag in {str(t.get("tag", "")).lower() for t in c.get("tags") or []}
        ]
        if not found:
            return None
        first = min(found, key=lambda c: int(c["id"]))  # the oldest is the one we made first
        return _ref(first["id"], first.get("number"))

    async def _customer(self, contact: domain.Contact) -> dict[str, Any]:
        first, _, last = (contact.name or "").strip().partition(" ")
        if contact.email:
            customer: dict[str, Any] = {"email": contact.email, "firstName": first or "Visitor"}
            if last:
                customer["lastName"] = last
            if contact.phone:
                customer["phone"] = contact.phone  # used only when Help Scout creates them
            return customer
        # A conversation needs a customer id or an email: create one for anonymous and
        # phone-only users. A retry may leave an unused customer behind; that is harmless.
        new: dict[str, Any] = {"firstName": first or contact.display_name}
        if last:
            new["lastName"] = last
        if contact.phone:
            new["phones"] = [{"type": "mobile", "value": contact.phone}]
        response = await self._call("POST", "/v2/customers", json=new)
        return {"id": int(_resource_id(response, "customer"))}

    def _codes(self, response: httpx.Response) -> list[object]:
        """Read the codes of `{"error","logRef","_embedded":{"errors":[{"path"}]}}` bodies."""
        body = common.json_object(response)
        codes: list[object] = [body.get("error")]  # the token endpoint speaks OAuth: {"error"}
        for problem in (body.get("_embedded") or {}).get("errors") or []:
            codes.append(problem.get("path") if isinstance(problem, dict) else None)
        return [*codes, body.get("logRef")]  # the id Help Scout support asks for

    async def _mint(self, held: OAuthTokens | None) -> OAuthTokens:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._credentials.app_id,
            "client_secret": self._credentials.app_secret.get_secret_value(),
        }
        url = f"{self._base_url}/v2/oauth2/token"
        return await grant(
            self._http, url, platform=PLATFORM, form=form, refused="the App ID or App Secret"
        )

    # --- inbound -----------------------------------------------------------------------

    def verify_webhook(self, request: WebhookRequest, *, now: float | None = None) -> None:
        """Check `X-HelpScout-Signature`; raise BadSignature on a mismatch."""
        # Help Scout signs the body only and sends no timestamp, so `now` has nothing to
        # check; a replayed delivery carries the same derived event id and is dropped there.
        signature = request.header("x-helpscout-signature")
        common.require_equal(
            sign_help_scout(self._webhook_secret, request.body), signature, "Help Scout signature"
        )

    async def parse_webhook(self, request: WebhookRequest) -> list[domain.TicketEvent]:
        """Return the agent's reply or the move to closed in a verified webhook.

        Help Scout sends no event id, so ids are derived from what a redelivery repeats:
        `{conversation}:reply:{thread id}` for a reply, `{conversation}:closed:{closedAt}` for
        a close (the same whether it arrives as `convo.status` or with a reply-and-close).
        """
        payload = common.webhook_json(request.body, "Help Scout webhook body")
        event = (request.header("x-helpscout-event") or "").strip()
        if not isinstance(payload, dict) or payload.get("id") is None:
            return []
        ticket_id = str(payload["id"])
        events: list[domain.TicketEvent] = []
        if event == AGENT_REPLY:
            thread = await self._newest_agent_thread(payload)
            text = common.html_to_text(str(thread.get("body") or "")) if thread else ""
            if thread is not None and text:
                author = thread.get("createdBy") or {}
                name = " ".join(p for p in (author.get("first"), author.get("last")) if p)
                events.append(
                    domain.TicketEvent.reply(
                        ticket_id,
                        f"{ticket_id}:reply:{thread['id']}",
                        text=text,
                        author_name=name or None,
                    )
                )
        # Notes (convo.note.created) stay internal; customer replies are the user's
        # own messages, including the follow-ups we add: neither goes back to the user.
        if event in (AGENT_REPLY, STATUS_CHANGED) and payload.get("status") == "closed":
            closed_at = payload.get("closedAt") or payload.get("userUpdatedAt") or ""
            events.append(domain.TicketEvent.solved(ticket_id, f"{ticket_id}:closed:{closed_at}"))
        return events

    async def _newest_agent_thread(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        threads = (payload.get("_embedded") or {}).get("threads")
        if not isinstance(threads, list):  # not embedded: ask for them (a verified id)
            path = f"/v2/conversations/{int(payload['id'])}/threads"
            threads = ((await self._call("GET", path)).json().get("_embedded") or {}).get(
                "threads"
            ) or []
        replies = [
            t
            for t in threads
            if isinstance(t, dict)
            and t.get("type") in AGENT_THREAD_TYPES
            and (t.get("createdBy") or {}).get("type") == "user"
            and t.get("state", "published") == "published"  # not drafts
        ]
        return max(
            replies, key=lambda t: (str(t.get("createdAt") or ""), int(t["id"])), default=None
        )

    def webhook_setup(self, webhook_url: str) -> list[str]:
        """Return the steps an admin follows in Help Scout to send us its webhooks."""
        if self._credentials.webhook_secret is not None:
            secret = "the webhook secret key you entered in handoff's Help Scout form"
        else:
            secret = f"{self._webhook_secret}  (keep it private)"
        return [
            "In Help Scout, open Manage → Apps → Webhooks and click Install App (or Edit).",
            f"Callback URL: {webhook_url}",
            f"Secret Key: {secret}",
            "Events: tick Conversation → Agent Reply and Conversation → Status Updated only.",
            f"Inboxes: choose the inbox handoff opens conversations in (id "
            f"{self._credentials.mailbox_id}), or all inboxes.",
            "Click Save. Notes and the customer's own replies are never sent to the user; an "
            "agent reply is, and closing the conversation hands it back to the AI.",
        ]


def sign_help_scout(secret: str, body: bytes) -> str:
    """Return Help Scout's webhook signature: base64(HMAC-SHA1(secret, raw body))."""
    return common.hmac_base64(secret, body, "sha1")


def _ref(conversation_id: int | str, number: int | str | None = None) -> domain.TicketRef:
    # The agent link is /conversation/{id}/{number}; the number is optional in the path.
    tail = f"/{number}" if number else ""
    return domain.TicketRef(str(conversation_id), f"{WEB_URL}/conversation/{conversation_id}{tail}")


def _key_tag(key: str) -> str:
    # Help Scout shows tags in lower case; keep the key as one word so the tag filter matches.
    return re.sub(r"[^a-z0-9_-]+", "-", key.strip().lower())


def _tags(packet: domain.TicketPacket, key_tag: str) -> list[str]:
    raw = [*packet.tags, "handoff", *(f"handoff-{r.value}" for r in packet.reasons), key_tag]
    return list(dict.fromkeys(t.strip().lower() for t in raw if t.strip()))


def _thread_customer(customer: dict[str, Any]) -> dict[str, Any]:
    return {"id": customer["id"]} if "id" in customer else {"email": customer["email"]}


def _resource_id(response: httpx.Response, what: str) -> str:
    """Read the new id of a 201 with an empty body: Resource-ID, else the end of Location."""
    found = str(response.headers.get("resource-id") or "")
    if not found:
        tail = str(response.headers.get("location") or "").rstrip("/").rsplit("/", 1)[-1]
        found = tail if tail.isdigit() else ""
    if not found:  # it was created; a retry will find it
        raise Unavailable(f"Help Scout created the {what} but sent no Resource-ID")
    return found
