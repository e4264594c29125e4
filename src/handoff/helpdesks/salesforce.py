"""Salesforce Service Cloud: Cases through the REST API, agent replies through a Flow callout.

Auth is OAuth 2.0 against `POST {My Domain}/services/oauth2/token`, by one of two server-to-server
flows of an External Client App (or connected app): the JWT bearer flow (an RS256 assertion
signed with the private key whose certificate is uploaded to the app, for a pre-authorized
user) or the client credentials flow (with a "Run As" integration user). The answer carries no
`expires_in` (a token lives as long as the org's session timeout allows), so the token is
re-minted after TOKEN_MAX_AGE_SECONDS, and once on `401 INVALID_SESSION_ID`, one mint at a time
per integration through its TokenStore.

A case is created once per escalation on a Case custom field marked External ID + Unique:
`GET /sobjects/Case/{field}/{key}` first, then the upsert `PATCH /sobjects/Case/{field}/{key}`.
The upsert alone never makes a second case, but on a match it *updates* the case, and a retry
must not reset the Status or Priority an agent has already changed.

Salesforce has no 429: an exhausted allocation or too many long requests is `403` with
`errorCode` REQUEST_LIMIT_EXCEEDED and no Retry-After. Errors are JSON arrays of
`{"message", "errorCode", "fields"}`. Salesforce has no signed webhooks for records either: the
admin builds two record-triggered Flows whose HTTP Callout POSTs FLOW_BODY to us, with the
shared token in an `X-Handoff-Token` header.

References:
- https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_client_credentials_flow.htm
- https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_jwt_flow.htm
- https://developer.salesforce.com/docs/platform/api-rest/guide/dome-upsert.html
- https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm
- https://developer.salesforce.com/docs/platform/salesforce-app-limits-cheatsheet/guide/salesforce-app-limits-platform-api.html
- https://developer.salesforce.com/docs/atlas.en-us.sfFieldRef.meta/sfFieldRef/salesforce_field_reference_Case.htm
- https://help.salesforce.com/s/articleView?id=000382141&type=1 (CaseComment body: 4,000 bytes)
- https://help.salesforce.com/s/articleView?id=platform.flow_http_callout_configure.htm
"""

from __future__ import annotations

import re
import time
from typing import Any, ClassVar, Literal
from urllib.parse import quote, urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from pydantic import Field, SecretStr, field_validator, model_validator

from handoff import domain
from handoff.helpdesks import common
from handoff.helpdesks.base import Choice, Connector, SignInForm, WebhookRequest, address_override
from handoff.helpdesks.errors import InvalidCredentials, RateLimited, Rejected, Unavailable
from handoff.helpdesks.oauth import (
    EXPIRY_MARGIN_SECONDS,
    OAuthTokens,
    TokenAuth,
    grant,
)

PLATFORM = "Salesforce"
TOKEN_PATH = "/services/oauth2/token"
TOKEN_HEADER = "x-handoff-token"
# Salesforce sends no expiry; the shortest session timeout an org can set is 15 minutes, and
# a 401 re-mints anyway, so this only spares most calls the failed round trip.
TOKEN_MAX_AGE_SECONDS = 15 * 60
REFUSED = {
    "client_credentials": "the consumer key or secret",
    "jwt_bearer": "the JWT bearer assertion (consumer key, username or private key)",
}
JWT_LIFETIME_SECONDS = 180  # Salesforce takes assertions that expire within 3 minutes
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
LIMIT_RETRY_SECONDS = 60.0  # REQUEST_LIMIT_EXCEEDED has no Retry-After; the allocation rolls
SUBJECT_CHARS = 255  # Case.Subject is a string(255)
COMMENT_BYTES = 4000  # CaseComment.CommentBody: 4,000 bytes through the API, not characters
# Follow-ups are written by the integration user, so every one is marked as the customer's; the
# same prefix tells our own comments apart when the Flow sends them back.
CUSTOMER_PREFIX = "Customer: "
SUPPLIED_LIMITS = {"SuppliedName": 80, "SuppliedPhone": 40}
PRIORITY_HELP = "The Case Priority picklist value handoff sets for this priority."
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# What both Flows POST ("type" is "comment" or "status"); also the callout's sample body.
FLOW_BODY = (
    '{"event_id": "00a5e00000AbCdE", "case_id": "5005e00000AbCdE", "type": "comment", '
    '"is_published": true, "created_by_name": "Dana", "created_by_type": "Standard", '
    '"comment": "Hello", "status": "Closed", "is_closed": false}'
)


class Credentials(SignInForm):
    """The Salesforce connect form."""

    auth_fields: ClassVar[dict[str, tuple[str, ...]]] = {
        "client_credentials": ("client_secret",),
        "jwt_bearer": ("username", "private_key"),
    }

    instance_url: str = Field(
        title="My Domain URL",
        description="Your org's My Domain, e.g. https://acme.my.salesforce.com.",
    )
    auth: Literal["client_credentials", "jwt_bearer"] = Field(
        default="client_credentials",
        title="OAuth flow",
        description="`client_credentials` (consumer key + secret, Run As user) or `jwt_bearer` "
        "(consumer key + username + private key).",
    )
    client_id: str = Field(
        title="Consumer key",
        description="Setup → External Client App Manager → your app → Settings → OAuth "
        "Settings → Consumer Key and Secret. Enable the Client Credentials Flow and set a "
        "Run As user with access to Cases, or enable JWT Bearer Flow with your certificate.",
        min_length=1,
    )
    client_secret: SecretStr | None = Field(
        default=None,
        title="Consumer secret",
        description="With client credentials: shown with the key.",
    )
    username: str | None = Field(
        default=None,
        title="Username",
        description="With JWT bearer: the Salesforce user handoff acts as; the app must be "
        "pre-authorized for that user's profile or permission set.",
    )
    private_key: SecretStr | None = Field(
        default=None,
        title="Private key (PEM)",
        description="With JWT bearer: the RSA private key of the certificate uploaded to the app.",
    )
    audience: str = Field(
        default="https://login.salesforce.com",
        title="JWT audience",
        description="With JWT bearer: https://login.salesforce.com, or https://test.salesforce.com "
        "for a sandbox.",
    )
    api_version: str = Field(
        default="v61.0",
        title="API version",
        description="REST API version, e.g. v61.0.",
        pattern=r"^v\d{2,3}\.0$",
    )
    external_id_field: str = Field(
        default="Handoff_Conversation_Id__c",
        title="External ID field",
        description="API name of a Text field on Case marked External ID and Unique; handoff "
        "writes one key per escalation into it so a case is never created twice.",
        pattern=r"^[A-Za-z][A-Za-z0-9_]*__c$",
    )
    origin: str = Field(
        default="Chat", title="Case Origin", description="A value of the Case Origin picklist."
    )
    priority_low: str = Field(default="Low", title="Low priority", description=PRIORITY_HELP)
    priority_normal: str = Field(
        default="Medium", title="Normal priority", description=PRIORITY_HELP
    )
    priority_high: str = Field(default="High", title="High priority", description=PRIORITY_HELP)
    priority_urgent: str = Field(default="High", title="Urgent priority", description=PRIORITY_HELP)
    webhook_token: SecretStr | None = Field(
        default=None,
        title="Webhook token",
        description="A long random string you choose (e.g. `openssl rand -hex 32`). Enter the "
        "same value in the Salesforce External Credential, which sends it as X-Handoff-Token.",
        min_length=24,
    )
    base_url: str | None = address_override("the My Domain URL for API calls")

    @model_validator(mode="after")
    def _private_key(self) -> Credentials:
        if self.private_key is not None:
            try:
                serialization.load_pem_private_key(
                    self.private_key.get_secret_value().encode(), password=None
                )
            except (ValueError, TypeError):
                raise ValueError("private_key: paste an unencrypted PEM RSA private key") from None
        return self

    @field_validator("instance_url")
    @classmethod
    def _instance_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/"):
            raise ValueError("enter the https:// address of your My Domain, with no path")
        return f"https://{parts.netloc.lower()}"


class SalesforceHelpdesk(Connector[Credentials]):
    """Salesforce Service Cloud behind the `Helpdesk` protocol."""

    platform = "salesforce"
    title = "Salesforce"
    description = "Cases in Service Cloud, created once by external id."
    max_body_chars = 32_000  # Case.Description is a textarea(32000)

    def _setup(self, form: Credentials) -> None:
        self._org = (form.base_url or form.instance_url).rstrip("/")
        self._base_url = f"{self._org}/services/data/{form.api_version}"
        # handoff's generated secret is shown nowhere and changes on reconnect, so the admin's
        # own token wins.
        self._sign_webhooks_with(form.webhook_token)
        self._priorities = {
            domain.Priority.LOW: form.priority_low,
            domain.Priority.NORMAL: form.priority_normal,
            domain.Priority.HIGH: form.priority_high,
            domain.Priority.URGENT: form.priority_urgent,
        }
        self._auth = TokenAuth(self._tokens, self._mint)

    # --- outbound ----------------------------------------------------------------------

    async def verify_credentials(self) -> None:
        """Mint a token, then check Case, the external id field and the picklist values."""
        describe = await self._describe_case()
        fields = _fields(describe)
        name = self._credentials.external_id_field
        field = fields.get(name)
        if field is None:
            raise InvalidCredentials(
                f"Case has no field {name} the Run As user can see: create a Text field, "
                "tick External ID and Unique, and grant the user access to it"
            )
        if not (field.get("externalId") and field.get("unique")):
            raise InvalidCredentials(f"Case.{name} must be marked both External ID and Unique")
        if not describe.get("createable", True):
            raise InvalidCredentials("the Run As user cannot create Cases")
        checks = [
            ("Origin", self._credentials.origin),
            *(("Priority", v) for v in self._priorities.values()),
        ]
        for picklist, value in checks:
            allowed = _picklist(fields.get(picklist) or {})
            if allowed is not None and value not in allowed:
                raise InvalidCredentials(
                    f"{value!r} is not a value of the Case {picklist} picklist "
                    f"(allowed: {', '.join(allowed)})"
                )

    async def options(self) -> dict[str, list[Choice]]:
        """Return the active values of the Case Origin and Priority picklists."""
        fields = _fields(await self._describe_case())
        origins = _choices(fields.get("Origin") or {})
        priorities = _choices(fields.get("Priority") or {})
        return {
            "origin": origins,
            "priority_low": priorities,
            "priority_normal": list(priorities),
            "priority_high": list(priorities),
            "priority_urgent": list(priorities),
        }

    async def create_ticket(self, packet: domain.TicketPacket) -> domain.TicketRef:
        """Create the case once per `packet.idempotency_key`, even when retried."""
        path = f"/sobjects/Case/{self._credentials.external_id_field}/"
        path += quote(packet.idempotency_key, safe="")
        existing = await self._find(path)
        if existing is not None:
            return self._ref(existing)
        case: dict[str, Any] = {
            "Subject": packet.subject[:SUBJECT_CHARS],
            # Description is plain text (a long text area, not rich text).
            "Description": _fit_bytes(packet, self.max_body_chars),
            "Origin": self._credentials.origin,
            "Priority": self._priorities[packet.priority],
            "Status": "New",
            **_supplied(packet.contact),
        }
        response = await self._call("PATCH", path, json=case)
        # v46.0+ answers an update with 200 and the id; older versions with an empty 204.
        if response.status_code != 204 and response.content:
            return self._ref(str(response.json()["id"]))
        found = await self._find(path)
        if found is None:
            raise Unavailable("Salesforce accepted the case but does not find it yet")
        return self._ref(found)

    async def add_message(
        self, ticket: domain.TicketRef, message: domain.Message, contact: domain.Contact
    ) -> None:
        """Add a user's follow-up to the case as public case comments."""
        # The REST API cannot write a CaseComment as anyone but the integration user, so each
        # comment starts with CUSTOMER_PREFIX; that is also how its echo is recognised.
        budget = COMMENT_BYTES - len(CUSTOMER_PREFIX.encode())
        for part in _split_bytes(message.text, budget):
            comment = {"ParentId": ticket.id, "CommentBody": CUSTOMER_PREFIX + part}
            await self._call("POST", "/sobjects/CaseComment", json={**comment, "IsPublished": True})

    async def _describe_case(self) -> dict[str, Any]:
        # https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_sobject_describe.htm
        describe = (await self._call("GET", "/sobjects/Case/describe")).json()
        return describe if isinstance(describe, dict) else {}

    async def _find(self, path: str) -> str | None:
        response = await self._call("GET", path, params={"fields": "Id"}, check=False)
        if response.status_code == 404:
            # A missing case and a missing field are both 404 NOT_FOUND; only the message
            # ("Provided external ID field does not exist or is not accessible") differs.
            if any("external id field" in str(e.get("message")).lower() for e in _errors(response)):
                field = self._credentials.external_id_field
                raise Rejected(
                    404,
                    f"{PLATFORM}: the external ID field {field} does not exist or is not "
                    f"accessible ({common.status_reason(response, self._codes(response))})",
                )
            return None
        return str(self._check(response).json()["Id"])

    def _ref(self, case_id: str) -> domain.TicketRef:
        url = f"{self._credentials.instance_url}/lightning/r/Case/{case_id}/view"
        return domain.TicketRef(id=case_id, url=url)

    def _check(self, response: httpx.Response) -> httpx.Response:
        # A 401 (INVALID_SESSION_ID: the session ended) gets here once TokenAuth has minted
        # a new token and resent the call.
        if response.status_code == 300:  # several records carry the external id
            raise Rejected(300, f"{PLATFORM}: several cases match; make the field Unique")
        if response.status_code == 403 and "REQUEST_LIMIT_EXCEEDED" in self._codes(response):
            reason = common.status_reason(response, self._codes(response))
            raise RateLimited(f"{PLATFORM} API limit: {reason}", LIMIT_RETRY_SECONDS)
        return super()._check(response)

    def _codes(self, response: httpx.Response) -> list[object]:
        """Read the codes of Salesforce's `[{"message", "errorCode", "fields"}]` error bodies."""
        codes: list[object] = []
        for error in _errors(response):
            fields = error.get("fields")
            codes += [error.get("errorCode"), *(fields if isinstance(fields, list) else [])]
        return codes

    async def _mint(self, held: OAuthTokens | None) -> OAuthTokens:
        form = self._credentials
        if form.auth == "jwt_bearer":
            grant_form = {"grant_type": JWT_BEARER, "assertion": self._assertion()}
        else:
            secret = form.client_secret.get_secret_value() if form.client_secret else ""
            grant_form = {
                "grant_type": "client_credentials",
                "client_id": form.client_id,
                "client_secret": secret,
            }
        return await grant(
            self._http,
            self._org + TOKEN_PATH,
            platform=PLATFORM,
            form=grant_form,
            lifetime_if_unsaid=TOKEN_MAX_AGE_SECONDS + EXPIRY_MARGIN_SECONDS,
            refused=REFUSED[form.auth],
        )

    def _assertion(self) -> str:
        """Sign the JWT bearer assertion: the app (iss) asks for a session as the user (sub)."""
        form = self._credentials
        key = form.private_key.get_secret_value() if form.private_key else ""
        claims = {
            "iss": form.client_id,
            "sub": form.username,
            "aud": form.audience.rstrip("/"),
            "exp": int(time.time()) + JWT_LIFETIME_SECONDS,
        }
        return jwt.encode(claims, key, algorithm="RS256")

    # --- inbound -----------------------------------------------------------------------

    def verify_webhook(self, request: WebhookRequest, *, now: float | None = None) -> None:
        """Compare the Flow's X-Handoff-Token header with our token; raise BadSignature."""
        # A Flow callout cannot sign its body or stamp a time: a constant-time token check is
        # what it allows (over HTTPS); redeliveries are deduplicated on event_id downstream.
        common.require_equal(self._webhook_secret, request.header(TOKEN_HEADER), "X-Handoff-Token")

    async def parse_webhook(self, request: WebhookRequest) -> list[domain.TicketEvent]:
        """Return the agent's published comment or the case closing in a verified callout."""
        payload = common.webhook_json(request.body, "Salesforce Flow body")
        if not isinstance(payload, dict):
            raise Rejected(400, "Salesforce Flow body is not a JSON object")
        event_id, case_id = payload.get("event_id"), payload.get("case_id")
        if not (isinstance(event_id, str) and event_id and isinstance(case_id, str) and case_id):
            raise Rejected(400, f"Salesforce Flow body needs event_id and case_id: {FLOW_BODY}")
        kind = payload.get("type")
        if kind == "comment":
            text = payload.get("comment")
            # Unpublished comments are internal; comments by portal users (not "Standard"
            # users) are customers; CUSTOMER_PREFIX marks the follow-ups we wrote ourselves.
            if payload.get("is_published") is not True or not isinstance(text, str):
                return []
            if payload.get("created_by_type", "Standard") != "Standard":
                return []
            if text.startswith(CUSTOMER_PREFIX.strip()) or not text.strip():
                return []
            author = payload.get("created_by_name")
            return [
                domain.TicketEvent.reply(
                    case_id,
                    event_id,
                    text=text,
                    author_name=author if isinstance(author, str) else None,
                )
            ]
        if kind == "status":
            closed = payload.get("is_closed")
            if closed is True or (closed is None and payload.get("status") == "Closed"):
                return [domain.TicketEvent.solved(case_id, event_id)]
        return []

    def webhook_setup(self, webhook_url: str) -> list[str]:
        """Return the Salesforce Setup steps that send us comments and closed cases."""
        base = urlsplit(webhook_url)
        return [
            "In handoff, make sure 'Webhook token' is set on this integration (a long random "
            "string you keep); Salesforce sends it with every callout.",
            "In Salesforce Setup → Named Credentials → External Credentials → New: label "
            "'handoff', authentication protocol 'Custom'. Add a principal 'handoff' with an "
            "authentication parameter 'token' = your webhook token, then a custom header "
            "X-Handoff-Token = {!$Credential.handoff.token}.",
            f"Named Credentials → New: label 'handoff', URL {base.scheme}://{base.netloc}, "
            "external credential 'handoff', 'Generate Authorization Header' off, 'Allow "
            "formulas in HTTP header' on. In a permission set for the users who create case "
            "comments and close cases, grant External Credential Principal Access to handoff.",
            "Setup → Flows → New Flow → Record-Triggered Flow on Case Comment, 'A record is "
            "created'. Add a 'Run Asynchronously' path with an Action → Create HTTP Callout: "
            f"named credential handoff, method POST, URL path {base.path}, "
            f"sample request body {FLOW_BODY}.",
            "Map its body: event_id = {!$Record.Id}, case_id = {!$Record.ParentId}, type = "
            "'comment', is_published = {!$Record.IsPublished}, created_by_name = "
            "{!$Record.CreatedBy.Name}, created_by_type = {!$Record.CreatedBy.UserType}, "
            "comment = {!$Record.CommentBody}. Save and activate.",
            "New Record-Triggered Flow on Case, 'A record is updated', condition IsClosed "
            "equals True, 'Only when a record is updated to meet the condition requirements'; "
            "the same callout on a 'Run Asynchronously' path with event_id = {!$Record.Id} & "
            "'-' & {!$Record.LastModifiedDate}, case_id = {!$Record.Id}, type = 'status', "
            "status = {!$Record.Status}, is_closed = {!$Record.IsClosed}. Save and activate.",
            "Without Flow HTTP Callout, an Apex trigger or queueable can POST the same JSON "
            "with the same header (callout:handoff).",
        ]


def _errors(response: httpx.Response) -> list[dict[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        return []
    items = body if isinstance(body, list) else [body]
    return [item for item in items if isinstance(item, dict)]


def _fields(describe: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(f.get("name")): f for f in describe.get("fields") or [] if isinstance(f, dict)}


def _choices(field: dict[str, Any]) -> list[Choice]:
    """Return a picklist's active values with the labels Salesforce shows for them."""
    return [
        Choice(value=str(v["value"]), label=str(v.get("label") or v["value"]))
        for v in field.get("picklistValues") or []
        if v.get("active") and v.get("value") is not None
    ]


def _picklist(field: dict[str, Any]) -> list[str] | None:
    """Return the active values of a restricted picklist; None when any value is accepted."""
    if not field.get("restrictedPicklist"):
        return None
    return [str(v["value"]) for v in field.get("picklistValues") or [] if v.get("active")]


def _supplied(contact: domain.Contact) -> dict[str, str]:
    """Return the Web-to-Case fields; an email Salesforce would refuse is left out."""
    fields = {"SuppliedName": contact.display_name, "SuppliedPhone": contact.phone or ""}
    supplied = {k: v[: SUPPLIED_LIMITS[k]] for k, v in fields.items() if v}
    if contact.email and len(contact.email) <= 80 and EMAIL.match(contact.email):
        supplied["SuppliedEmail"] = contact.email
    return supplied


def _fit_bytes(packet: domain.TicketPacket, limit: int) -> str:
    """Return the plain body within `limit` UTF-8 bytes as well as characters."""
    chars = limit
    body = common.plain_body(packet, chars)
    while len(body.encode()) > limit and chars > 1000:
        chars = chars * limit // len(body.encode()) - 16
        body = common.plain_body(packet, chars)
    return body


def _split_bytes(text: str, budget: int) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for char in text:
        width = len(char.encode())
        if size + width > budget:
            parts.append("".join(current))
            current, size = [], 0
        current.append(char)
        size += width
    parts.append("".join(current))
    return parts
