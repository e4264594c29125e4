"""A faithful fake of HubSpot's CRM v3 API (tickets, contacts, notes) over real HTTP.

`FakeHubSpot` runs a Starlette app under uvicorn in a background thread on 127.0.0.1, holds
contacts, tickets, notes, associations, pipelines, ticket properties and conversation threads in
memory, and records every request. It answers in HubSpot's wire format: bearer-token check (401
`INVALID_AUTHENTICATION`), property validation (400 `VALIDATION_ERROR` with `errors[]`), unique
ticket properties (409 `CONFLICT`, or 400 "already has that value" when `unique_conflict_status`
is 400), contact email dedupe (409 "Contact already exists. Existing ID: …"), and 429 with the
`X-HubSpot-RateLimit-*` headers and a `policyName` body. Knobs::

    with FakeHubSpot() as hs:
        hs.rate_limit(2)                    # the next 2 requests get 429
        hs.lose_next_ticket_response(3.0)   # store the ticket, then stall past the client timeout
        hs.fail_message_lookups(1, 500)     # the next message GET answers 500
        body, headers = hs.signed_webhook([hs.stage_change(ticket_id, "4")], url=...)

References: https://developers.hubspot.com/docs/api/crm/tickets,
https://developers.hubspot.com/docs/api/usage-details (rate limits),
https://developers.hubspot.com/docs/apps/legacy-apps/authentication/validating-requests.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from handoff.helpdesks.hubspot import v3_signature
from tests.fakes.oauth import OAuthGrants
from tests.fakes.server import LoopbackServer, Received

PRIORITIES = {"LOW", "MEDIUM", "HIGH", "URGENT"}
TICKET_PROPERTIES = {
    "subject", "content", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_priority",
    "hs_ticket_category", "hubspot_owner_id", "source_type",
}  # fmt: skip
DEFAULT_PIPELINE = {
    "id": "0",
    "label": "Support Pipeline",
    "displayOrder": 0,
    "stages": [
        {"id": "1", "label": "New", "displayOrder": 0, "metadata": {"ticketState": "OPEN"}},
        {"id": "2", "label": "Waiting on contact", "displayOrder": 1,
         "metadata": {"ticketState": "OPEN"}},
        {"id": "3", "label": "Waiting on us", "displayOrder": 2,
         "metadata": {"ticketState": "OPEN"}},
        {"id": "4", "label": "Closed", "displayOrder": 3,
         "metadata": {"ticketState": "CLOSED", "isClosed": "true"}},
    ],
}  # fmt: skip


def _oauth_error(status: str, message: str) -> JSONResponse:
    """The OAuth endpoints' own error shape: the code is in `status`."""
    body = {"status": status, "message": message, "correlationId": str(uuid.uuid4())}
    return JSONResponse(body, status_code=400)


def _error(
    status: int, message: str, category: str, errors: list[dict[str, Any]] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
    }
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status)


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


class FakeHubSpot(LoopbackServer):
    """A fake HubSpot API on 127.0.0.1; use it as a context manager."""

    def __init__(
        self,
        *,
        token: str = "pat-na1-fake-token",
        client_secret: str = "fake-client-secret",
        portal_id: int = 4242,
    ) -> None:
        self.token = token
        self.client_secret = client_secret
        self.portal_id = portal_id
        self.pipelines: list[dict[str, Any]] = [json.loads(json.dumps(DEFAULT_PIPELINE))]
        self.ticket_properties: dict[str, dict[str, Any]] = {}
        self.contacts: dict[str, dict[str, Any]] = {}
        self.tickets: dict[str, dict[str, Any]] = {}
        self.notes: dict[str, dict[str, Any]] = {}
        # (from_type, from_id, to_type, to_id, type_id)
        self.associations: list[tuple[str, str, str, str, int]] = []
        self.threads: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, dict[str, Any]] = {}
        self.requests: list[Received] = []
        self.unique_conflict_status = 409
        self.allow_property_create = True
        self.search_lags = False  # search misses new contacts, as HubSpot's index can
        self.oauth = OAuthGrants(
            client_id="5e3f0c7a-fake-app",
            client_secret=client_secret,  # a public app's secret also signs its webhooks
            lifetime=1800,
            rotate=False,  # HubSpot refresh tokens are long-lived and come back unchanged
            prefix="hs-",
        )
        self._ids = itertools.count(1001)
        self._rate_limited = 0
        self._rate_policy = "SECONDLY"
        self._lose_next_ticket: float = 0.0
        self._failing_messages: tuple[int, int] = (0, 500)  # (how many, status)
        self._lock = threading.Lock()
        crm = "/crm/v3"
        threads = "/conversations/v3/conversations/threads"
        app = Starlette(
            routes=[
                Route("/account-info/v3/details", self._account, methods=["GET"]),
                Route(f"{crm}/pipelines/tickets", self._pipelines, methods=["GET"]),
                Route(f"{crm}/properties/tickets", self._create_property, methods=["POST"]),
                Route(f"{crm}/properties/tickets/{{name}}", self._get_property, methods=["GET"]),
                Route(f"{crm}/objects/contacts/search", self._search_contacts, methods=["POST"]),
                Route(f"{crm}/objects/contacts", self._create_contact, methods=["POST"]),
                Route(f"{crm}/objects/tickets", self._create_ticket, methods=["POST"]),
                Route(f"{crm}/objects/tickets/{{id}}", self._get_ticket, methods=["GET"]),
                Route(f"{crm}/objects/notes", self._create_note, methods=["POST"]),
                Route(f"{threads}/{{thread}}", self._get_thread, methods=["GET"]),
                Route(f"{threads}/{{thread}}/messages/{{msg}}", self._get_msg, methods=["GET"]),
                Route("/oauth/authorize", self._authorize, methods=["GET"]),
                Route("/oauth/v1/token", self._token_grant, methods=["POST"]),
            ]
        )
        super().__init__(app, name="HubSpot")

    # --- knobs -----------------------------------------------------------------------------

    def rate_limit(self, n: int, policy: str = "SECONDLY") -> None:
        """Answer the next `n` requests with 429 (policy SECONDLY or DAILY)."""
        with self._lock:
            self._rate_limited, self._rate_policy = n, policy

    def lose_next_ticket_response(self, seconds: float) -> None:
        """Store the next ticket, then stall `seconds` before answering (past the timeout)."""
        with self._lock:
            self._lose_next_ticket = seconds

    def fail_message_lookups(self, n: int, status: int = 500) -> None:
        """Answer the next `n` Help Desk message GETs with `status` (HubSpot's error body)."""
        with self._lock:
            self._failing_messages = (n, status)

    def add_unique_property(self, name: str = "handoff_conversation_id") -> None:
        """Create a unique-value ticket property, as an admin would."""
        self.ticket_properties[name] = {"name": name, "type": "string", "hasUniqueValue": True}

    def associated(self, from_type: str, from_id: str, to_type: str) -> list[tuple[str, int]]:
        """Return (to_id, type_id) of an object's associations to one object type."""
        return [
            (a[3], a[4])
            for a in self.associations
            if a[0] == from_type and a[1] == from_id and a[2] == to_type
        ]

    def ticket_create_requests(self) -> list[Received]:
        return [r for r in self.requests if r.method == "POST" and r.path.endswith("/tickets")]

    # --- webhooks --------------------------------------------------------------------------

    def stage_change(
        self, ticket_id: str, stage: str, *, event_id: int | None = None
    ) -> dict[str, Any]:
        """Return a `ticket.propertyChange` event for `hs_pipeline_stage`."""
        return {
            "eventId": event_id or next(self._ids),
            "subscriptionId": 77,
            "portalId": self.portal_id,
            "appId": 5151,
            "occurredAt": int(time.time() * 1000),
            "subscriptionType": "ticket.propertyChange",
            "attemptNumber": 0,
            "objectId": int(ticket_id),
            "propertyName": "hs_pipeline_stage",
            "propertyValue": stage,
            "changeSource": "CRM_UI",
            "sourceId": "userId:123",
        }

    def agent_reply(
        self, ticket_id: str | None, text: str, *, direction: str = "OUTGOING"
    ) -> dict[str, Any]:
        """Store a Help Desk message on a thread tied to the ticket; return its newMessage event."""
        thread_id = str(next(self._ids))
        message_id = uuid.uuid4().hex
        associations = {"associatedTicketId": ticket_id} if ticket_id else {}
        self.threads[thread_id] = {
            "id": thread_id,
            "status": "OPEN",
            "inboxId": "1",
            "createdAt": _now_iso(),
            "archived": False,
            "threadAssociations": associations,
        }
        self.messages[message_id] = {
            "type": "MESSAGE",
            "id": message_id,
            "conversationsThreadId": thread_id,
            "createdAt": _now_iso(),
            "direction": direction,
            "text": text,
            "richText": f"<p>{text}</p>",
            "senders": [{"actorId": "A-123", "name": "Sam Agent"}],
            "recipients": [],
            "archived": False,
        }
        return {
            "eventId": next(self._ids),
            "subscriptionId": 78,
            "portalId": self.portal_id,
            "appId": 5151,
            "occurredAt": int(time.time() * 1000),
            "subscriptionType": "conversation.newMessage",
            "attemptNumber": 0,
            "objectId": int(thread_id),
            "messageId": message_id,
            "messageType": "MESSAGE",
            "changeFlag": "NEW_MESSAGE",
            "changeSource": "AGENT",
        }

    def signed_webhook(
        self,
        events: list[dict[str, Any]],
        *,
        url: str,
        timestamp_ms: int | None = None,
        secret: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """Return a webhook body and the headers HubSpot signs it with (v3) for `url`."""
        body = json.dumps(events).encode()
        stamp = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
        signature = v3_signature(
            secret or self.client_secret, method="POST", uri=url, body=body, timestamp=stamp
        )
        return body, {
            "Content-Type": "application/json",
            "X-HubSpot-Signature-v3": signature,
            "X-HubSpot-Request-Timestamp": stamp,
            "X-HubSpot-Signature-Version": "v1",
        }

    # --- OAuth (https://developers.hubspot.com/docs/api/oauth/tokens) ------------------------

    async def _authorize(self, request: Request) -> Response:
        query = request.query_params
        redirect = query.get("redirect_uri", "")
        if query.get("client_id") != self.oauth.client_id or not redirect:
            return _oauth_error("BAD_CLIENT_ID", "Invalid client_id or redirect_uri")
        if "tickets" not in query.get("scope", "").split():
            return _oauth_error("BAD_SCOPE", "The tickets scope is required")
        return RedirectResponse(self.oauth.approve(redirect, query.get("state", "")), 302)

    async def _token_grant(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        with self._lock:
            self.requests.append(Received.of(request, form))
        if request.headers.get("content-type", "").split(";")[0] != (
            "application/x-www-form-urlencoded"
        ):
            return _error(415, "The token endpoint takes a form-encoded body", "UNSUPPORTED")
        if not self.oauth.client_ok(form.get("client_id"), form.get("client_secret")):
            return _oauth_error("BAD_CLIENT_ID", "missing or invalid client_id or client_secret")
        if form.get("grant_type") == "authorization_code":
            issued = self.oauth.exchange(form.get("code"), form.get("redirect_uri"))
            failure = ("BAD_AUTH_CODE", "missing or unknown auth code")
        elif form.get("grant_type") == "refresh_token":
            issued = self.oauth.refresh(form.get("refresh_token"))
            failure = ("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
        else:
            return _oauth_error("BAD_GRANT_TYPE", "unsupported grant_type")
        if issued is None:
            return _oauth_error(*failure)
        return JSONResponse({**issued, "token_type": "bearer"})

    # --- plumbing --------------------------------------------------------------------------

    async def _gate(self, request: Request) -> tuple[Any, Response | None]:
        """Parse the body, record the request, and answer 401/429 before any handler."""
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        denial: Response | None = None
        scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or not (bearer == self.token or self.oauth.live(bearer)):
            denial = _error(
                401,
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at "
                "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                "INVALID_AUTHENTICATION",
            )
        else:
            with self._lock:
                limited = self._rate_limited > 0
                if limited:
                    self._rate_limited -= 1
            if limited:
                daily = self._rate_policy == "DAILY"
                denial = JSONResponse(
                    {
                        "status": "error",
                        "message": "You have reached your daily limit."
                        if daily
                        else "You have reached your secondly limit.",
                        "errorType": "RATE_LIMIT",
                        "correlationId": str(uuid.uuid4()),
                        "policyName": self._rate_policy,
                        "requestId": uuid.uuid4().hex,
                    },
                    status_code=429,
                    headers={
                        "X-HubSpot-RateLimit-Max": "190",
                        "X-HubSpot-RateLimit-Remaining": "0",
                        "X-HubSpot-RateLimit-Interval-Milliseconds": "1000"
                        if not daily
                        else "10000",
                        "X-HubSpot-RateLimit-Daily": "1000000",
                        "X-HubSpot-RateLimit-Daily-Remaining": "0" if daily else "999000",
                    },
                )
        status = denial.status_code if denial is not None else 0
        self._record(request, body, status)
        return body, denial

    def _record(self, request: Request, body: Any, status: int) -> None:
        with self._lock:
            self.requests.append(Received.of(request, body, status))

    def _new_id(self) -> str:
        return str(next(self._ids))

    def _object(self, id_: str, properties: dict[str, Any]) -> dict[str, Any]:
        now = _now_iso()
        return {
            "id": id_,
            "properties": {**properties, "hs_object_id": id_, "createdate": now},
            "createdAt": now,
            "updatedAt": now,
            "archived": False,
        }

    def _associate(self, from_type: str, from_id: str, body: dict[str, Any]) -> Response | None:
        known = {"contacts": self.contacts, "tickets": self.tickets}
        to_type = {16: "contacts", 228: "tickets"}
        for association in body.get("associations") or []:
            to_id = str(association.get("to", {}).get("id"))
            for type_ in association.get("types") or []:
                type_id = type_.get("associationTypeId")
                target = to_type.get(type_id)
                if target is None or to_id not in known[target]:
                    return _error(
                        400,
                        f"association to {to_id} with type {type_id} is not valid",
                        "VALIDATION_ERROR",
                        [
                            {
                                "message": f"Object {to_id} does not exist",
                                "code": "INVALID_OBJECT_ID",
                            }
                        ],
                    )
        for association in body.get("associations") or []:
            to_id = str(association["to"]["id"])
            for type_ in association["types"]:
                type_id = type_["associationTypeId"]
                self.associations.append((from_type, from_id, to_type[type_id], to_id, type_id))
        return None

    # --- endpoints -------------------------------------------------------------------------

    async def _account(self, request: Request) -> Response:
        _, denial = await self._gate(request)
        return denial or JSONResponse(
            {
                "portalId": self.portal_id,
                "accountType": "STANDARD",
                "timeZone": "US/Eastern",
                "companyCurrency": "USD",
                "additionalCurrencies": [],
                "utcOffset": "-05:00",
                "utcOffsetMilliseconds": -18000000,
                "uiDomain": "app.hubspot.com",
                "dataHostingLocation": "na1",
            }
        )

    async def _pipelines(self, request: Request) -> Response:
        _, denial = await self._gate(request)
        return denial or JSONResponse({"results": self.pipelines})

    async def _get_property(self, request: Request) -> Response:
        _, denial = await self._gate(request)
        if denial:
            return denial
        name = request.path_params["name"]
        prop = self.ticket_properties.get(name)
        if prop is None and name not in TICKET_PROPERTIES:
            return _error(404, f"Unable to find property {name}", "OBJECT_NOT_FOUND")
        return JSONResponse(prop or {"name": name, "type": "string", "hasUniqueValue": False})

    async def _create_property(self, request: Request) -> Response:
        body, denial = await self._gate(request)
        if denial:
            return denial
        if not self.allow_property_create:
            return _error(
                403,
                "This app hasn't been granted all required scopes to make this call.",
                "MISSING_SCOPES",
                [{"message": "One or more of the following scopes are required.",
                  "context": {"requiredGranularScopes": ["crm.schemas.tickets.write"]}}],
            )  # fmt: skip
        missing = [
            k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)
        ]
        if missing:
            return _error(400, f"Missing required fields: {missing}", "VALIDATION_ERROR")
        self.ticket_properties[body["name"]] = dict(body)
        return JSONResponse(body, status_code=201)

    async def _search_contacts(self, request: Request) -> Response:
        body, denial = await self._gate(request)
        if denial:
            return denial
        filters = [f for g in body.get("filterGroups", []) for f in g.get("filters", [])]
        results = (
            []
            if self.search_lags
            else [
                c
                for c in self.contacts.values()
                if all(
                    f.get("operator") == "EQ"
                    and str(c["properties"].get(f["propertyName"], "")).lower()
                    == str(f["value"]).lower()
                    for f in filters
                )
            ]
        )
        return JSONResponse({"total": len(results), "results": results[: body.get("limit", 10)]})

    async def _create_contact(self, request: Request) -> Response:
        body, denial = await self._gate(request)
        if denial:
            return denial
        properties = body.get("properties") or {}
        email = str(properties.get("email", "")).lower()
        for contact in self.contacts.values():
            if email and contact["properties"].get("email", "").lower() == email:
                return _error(
                    409, f"Contact already exists. Existing ID: {contact['id']}", "CONFLICT"
                )
        contact = self._object(self._new_id(), properties)
        self.contacts[contact["id"]] = contact
        return JSONResponse(contact, status_code=201)

    def _validate_ticket(self, properties: dict[str, Any]) -> list[dict[str, Any]]:
        problems: list[dict[str, Any]] = []
        for name, value in properties.items():
            if name not in TICKET_PROPERTIES and name not in self.ticket_properties:
                problems.append(
                    {"message": f'Property "{name}" does not exist',
                     "code": "PROPERTY_DOESNT_EXIST", "context": {"propertyName": [name]}}
                )  # fmt: skip
            elif not isinstance(value, str):
                problems.append(
                    {"message": f"{value!r} is not a valid string for {name}",
                     "code": "INVALID_STRING", "context": {"propertyName": [name]}}
                )  # fmt: skip
        if not properties.get("subject"):
            problems.append({"message": "subject is required", "code": "REQUIRED_FIELD"})
        pipeline = next(
            (p for p in self.pipelines if p["id"] == properties.get("hs_pipeline", "0")), None
        )
        stages = {s["id"] for s in pipeline["stages"]} if pipeline else set()
        if pipeline is None:
            problems.append(
                {"message": f"{properties.get('hs_pipeline')} is not a valid pipeline",
                 "code": "INVALID_OPTION"}
            )  # fmt: skip
        elif properties.get("hs_pipeline_stage") not in stages:
            problems.append(
                {"message": f"{properties.get('hs_pipeline_stage')} was not one of the allowed "
                 f"options: {sorted(stages)}", "code": "INVALID_OPTION",
                 "context": {"propertyName": ["hs_pipeline_stage"]}}
            )  # fmt: skip
        priority = properties.get("hs_ticket_priority")
        if priority is not None and priority not in PRIORITIES:
            problems.append(
                {"message": f"{priority} was not one of the allowed options: "
                 f"{sorted(PRIORITIES)}", "code": "INVALID_OPTION"}
            )  # fmt: skip
        content = properties.get("content")
        if isinstance(content, str) and len(content) > 65_536:
            problems.append({"message": "content is longer than 65536 characters"})
        return problems

    async def _create_ticket(self, request: Request) -> Response:
        body, denial = await self._gate(request)
        if denial:
            return denial
        properties = (body or {}).get("properties") or {}
        problems = self._validate_ticket(properties)
        if problems:
            return _error(
                400,
                "Property values were not valid: "
                + json.dumps([{"isValid": False, "message": p["message"]} for p in problems]),
                "VALIDATION_ERROR",
                problems,
            )
        for name, spec in self.ticket_properties.items():
            value = properties.get(name)
            taken = value is not None and any(
                t["properties"].get(name) == value for t in self.tickets.values()
            )
            if spec.get("hasUniqueValue") and taken:
                if self.unique_conflict_status == 400:
                    return _error(
                        400,
                        f"propertyValue: {value} already has that value {name}",
                        "VALIDATION_ERROR",
                    )
                return _error(409, f"A ticket with {name}={value} already exists", "CONFLICT")
        ticket_id = self._new_id()
        problem = self._associate("tickets", ticket_id, body)
        if problem is not None:
            return problem
        ticket = self._object(ticket_id, properties)
        self.tickets[ticket_id] = ticket
        with self._lock:
            lose, self._lose_next_ticket = self._lose_next_ticket, 0.0
        if lose:
            await self.stall(lose)
        return JSONResponse(ticket, status_code=201)

    async def _get_ticket(self, request: Request) -> Response:
        _, denial = await self._gate(request)
        if denial:
            return denial
        key = request.path_params["id"]
        id_property = request.query_params.get("idProperty")
        if id_property:
            found = [t for t in self.tickets.values() if t["properties"].get(id_property) == key]
            ticket = found[0] if found else None
        else:
            ticket = self.tickets.get(key)
        if ticket is None:
            return _error(404, "Object not found.", "OBJECT_NOT_FOUND")
        return JSONResponse(ticket)

    async def _create_note(self, request: Request) -> Response:
        body, denial = await self._gate(request)
        if denial:
            return denial
        properties = body.get("properties") or {}
        if not properties.get("hs_timestamp"):
            return _error(
                400,
                "Property values were not valid",
                "VALIDATION_ERROR",
                [{"message": "hs_timestamp is required", "code": "REQUIRED_FIELD"}],
            )
        note_id = self._new_id()
        problem = self._associate("notes", note_id, body)
        if problem is not None:
            return problem
        note = self._object(note_id, properties)
        self.notes[note_id] = note
        return JSONResponse(note, status_code=201)

    async def _get_thread(self, request: Request) -> Response:
        _, denial = await self._gate(request)
        if denial:
            return denial
        thread = self.threads.get(request.path_params["thread"])
        if thread is None:
            return _error(404, "Thread not found", "OBJECT_NOT_FOUND")
        if request.query_params.get("association") != "TICKET":
            thread = {k: v for k, v in thread.items() if k != "threadAssociations"}
        return JSONResponse(thread)

    async def _get_msg(self, request: Request) -> Response:
        _, denial = await self._gate(request)
        if denial:
            return denial
        with self._lock:
            failing, status = self._failing_messages
            if failing:
                self._failing_messages = (failing - 1, status)
        if failing:
            return _error(status, "internal error", "INTERNAL_ERROR")
        message = self.messages.get(request.path_params["msg"])
        if message is None or message["conversationsThreadId"] != request.path_params["thread"]:
            return _error(404, "Message not found", "OBJECT_NOT_FOUND")
        return JSONResponse(message)
