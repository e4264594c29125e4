"""A faithful fake of the Freshdesk API v2 subset handoff uses, over real HTTP.

`FakeFreshdesk` runs a Starlette app under uvicorn in a background thread on 127.0.0.1 and
keeps tickets, contacts and notes in memory. It checks what Freshdesk checks: Basic auth with
the API key as user name (401 `invalid_credentials`), the create-ticket body (400 `Validation
failed` with per-field errors: a requester identifier, an email's format, `name` with a phone,
the integer enums, known custom fields), the search query's quoting, and note bodies. It lists
ticket fields (`GET /api/v2/ticket_fields`: the system ones, then `custom_field_info`).
Knobs: `add_custom_field(name, label, type)` adds a custom ticket field; `rate_limit(n)` answers
the next n requests with 429 + `Retry-After` and the `X-RateLimit-*` headers;
`lose_next_create(seconds)` stores the next ticket and then stalls longer than the client's
timeout; `search_lag` hides fresh tickets from search, like Freshdesk's index. `webhook(...)`
builds what the admin's automation rule would send::

    with FakeFreshdesk() as fake:
        ...  # Credentials(domain="acme", api_key=fake.api_key, base_url=fake.base_url)
        body, headers = fake.webhook(ticket_id, secret, kind="agent_reply", text="Hi")

References: https://developers.freshdesk.com/api/ (tickets, notes, filter tickets, contacts,
errors, rate limits) and the webhook body in `handoff.helpdesks.freshdesk.WEBHOOK_BODY`.
"""

from __future__ import annotations

import base64
import html
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import LoopbackServer, Received

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
REQUESTER_KEYS = (
    "requester_id",
    "email",
    "phone",
    "twitter_id",
    "facebook_id",
    "unique_external_id",
)
STATUS_NAMES = {2: "Open", 3: "Pending", 4: "Resolved", 5: "Closed"}
QUERY = re.compile(r"^\"(\w+):'([^']*)'\"$")
# Freshdesk's validation messages and codes (https://developers.freshdesk.com/api/#error).
UNEXPECTED = "Unexpected/invalid field in request"
BAD_EMAIL = "It should be in the 'valid email address' format"
BAD_QUERY = "It should be in the format \"field:'value'\""
NO_CONTACT = "There is no contact matching the given user_id"
# The system ticket fields every helpdesk lists before its custom ones (name, label, type).
DEFAULT_TICKET_FIELDS = (
    ("requester", "Search a requester", "default_requester"),
    ("subject", "Subject", "default_subject"),
    ("ticket_type", "Type", "default_ticket_type"),
    ("source", "Source", "default_source"),
    ("status", "Status", "default_status"),
    ("priority", "Priority", "default_priority"),
    ("group", "Group", "default_group"),
    ("agent", "Agent", "default_agent"),
    ("description", "Description", "default_description"),
)


@dataclass(slots=True)
class Note:
    id: int
    body: str
    private: bool
    incoming: bool
    user_id: int | None


@dataclass(slots=True)
class Ticket:
    id: int
    data: dict[str, Any]
    created: float
    notes: list[Note] = field(default_factory=list)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _invalid(*errors: tuple[str, str, str]) -> JSONResponse:
    body = {
        "description": "Validation failed",
        "errors": [{"field": f, "message": m, "code": c} for f, m, c in errors],
    }
    return JSONResponse(body, status_code=400)


class FakeFreshdesk(LoopbackServer):
    """A fake Freshdesk helpdesk on 127.0.0.1; use it as a context manager."""

    def __init__(
        self,
        *,
        api_key: str = "fd-test-key",
        custom_fields: tuple[str, ...] = ("cf_handoff_conversation",),
        agent_name: str = "Dana Agent",
    ) -> None:
        self.api_key = api_key
        self.custom_fields = set(custom_fields)
        # What GET /api/v2/ticket_fields lists for the custom fields: name → (label, type).
        self.custom_field_info: dict[str, tuple[str, str]] = {
            name: (name.removeprefix("cf_").replace("_", " ").capitalize(), "custom_text")
            for name in custom_fields
        }
        self.agent_name = agent_name
        self.tickets: dict[int, Ticket] = {}
        self.contacts: dict[int, dict[str, Any]] = {}
        self.requests: list[Received] = []
        self.search_lag = 0.0  # seconds a new ticket stays out of search results
        self._rate_limited = 0
        self._retry_after = "1"
        self._lose_create: float = 0.0
        self._ids = iter(range(1001, 10**6))
        self._lock = threading.Lock()
        app = Starlette(
            routes=[
                Route("/api/v2/agents/me", self._me, methods=["GET"]),
                Route("/api/v2/ticket_fields", self._ticket_fields, methods=["GET"]),
                Route("/api/v2/search/tickets", self._search, methods=["GET"]),
                Route("/api/v2/contacts", self._list_contacts, methods=["GET"]),
                Route("/api/v2/tickets", self._list_tickets, methods=["GET"]),
                Route("/api/v2/tickets", self._create_ticket, methods=["POST"]),
                Route("/api/v2/tickets/{id:int}", self._view_ticket, methods=["GET"]),
                Route("/api/v2/tickets/{id:int}/notes", self._add_note, methods=["POST"]),
            ]
        )
        super().__init__(app, name="Freshdesk")

    # knobs

    def rate_limit(self, requests: int, retry_after: str = "1") -> None:
        """Answer the next `requests` requests with 429 and `Retry-After`."""
        with self._lock:
            self._rate_limited, self._retry_after = requests, retry_after

    def lose_next_create(self, seconds: float) -> None:
        """Store the next created ticket, then stall `seconds` before answering."""
        with self._lock:
            self._lose_create = seconds

    def add_contact(self, **fields: Any) -> int:
        """Add a contact (e.g. an existing customer) and return its id."""
        with self._lock:
            return self._contact(fields)

    def add_custom_field(self, name: str, label: str, field_type: str = "custom_text") -> None:
        """Add a custom ticket field (Admin → Ticket fields), e.g. `custom_paragraph`."""
        with self._lock:
            self.custom_fields.add(name)
            self.custom_field_info[name] = (label, field_type)

    def calls(self, method: str, path: str) -> list[Received]:
        """Return the requests received for one method and path, oldest first."""
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    def webhook(
        self,
        ticket_id: int | str,
        secret: str | None,
        *,
        kind: str,
        text: str = "",
        modified_on: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """Build the automation's webhook for `kind`, rendered as Freshdesk renders it.

        Kinds: "agent_reply" (Reply is sent), "public_note" (an agent's public note),
        "private_note", "customer_echo" (the incoming note handoff added for the user),
        "resolved" and "closed" (Status is changed).
        """
        ticket = self.tickets[int(ticket_id)]
        requester = self.contacts[ticket.data["requester_id"]]["name"]
        status = ticket.data["status"]
        comment = self._latest_public(ticket)
        if kind == "agent_reply":
            event, comment = "{reply_sent:sent}", f"{self.agent_name} : <div>{text}</div>"
        elif kind == "public_note":
            event, comment = "{note_type:public}", f"{self.agent_name} : <div>{text}</div>"
        elif kind == "private_note":
            event = "{note_type:private}"
        elif kind == "customer_echo":
            event, comment = "{note_type:public}", f"{requester} : <p>{text}</p>"
        elif kind in {"resolved", "closed"}:
            new = 4 if kind == "resolved" else 5
            event = f"{{status:{{from:{status},to:{new}}}}}"
            ticket.data["status"] = status = new
        else:
            raise ValueError(f"unknown webhook kind {kind!r}")
        rendered = {
            "handoff": "freshdesk/1",
            "ticket_id": str(ticket.id),
            "triggered_event": event,
            "status": STATUS_NAMES.get(status, str(status)),
            "comment": comment,
            "requester": requester,
            "agent": self.agent_name,
            "modified_on": modified_on or _now(),
        }
        headers = {"content-type": "application/json"}
        if secret is not None:
            headers["x-handoff-token"] = secret
        return json.dumps(rendered).encode(), headers

    # plumbing

    def _latest_public(self, ticket: Ticket) -> str:
        for note in reversed(ticket.notes):
            if not note.private:
                author = self.contacts.get(note.user_id or 0, {}).get("name", self.agent_name)
                return f"{author} : {note.body}"
        return ""

    def _contact(self, fields: dict[str, Any]) -> int:
        contact_id = next(self._ids)
        self.contacts[contact_id] = {"id": contact_id, "name": None, **fields}
        return contact_id

    async def _gate(self, request: Request) -> tuple[Any, Response | None]:
        """Read the body, record the request, and answer auth and rate-limit failures."""
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        expected = base64.b64encode(f"{self.api_key}:X".encode()).decode()
        refusal: Response | None = None
        with self._lock:
            if request.headers.get("authorization") != f"Basic {expected}":
                refusal = JSONResponse(
                    {
                        "code": "invalid_credentials",
                        "message": "You have to be logged in to perform this action.",
                    },
                    status_code=401,
                )
            elif self._rate_limited > 0:
                self._rate_limited -= 1
                refusal = JSONResponse(
                    {"message": "You have exceeded the limit of requests per minute"},
                    status_code=429,
                    headers={
                        "Retry-After": self._retry_after,
                        "X-RateLimit-Total": "200",
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Used-CurrentRequest": "1",
                    },
                )
            elif request.method == "POST" and not request.headers.get(
                "content-type", ""
            ).startswith("application/json"):
                refusal = JSONResponse(
                    {"code": "invalid_content_type", "message": "Content-Type must be JSON"},
                    status_code=415,
                )
        if refusal is not None:
            self._record(request, body, refusal.status_code)
        return body, refusal

    def _record(self, request: Request, body: Any, status: int) -> None:
        with self._lock:
            self.requests.append(Received.of(request, body, status))

    def _reply(self, request: Request, body: Any, response: JSONResponse) -> JSONResponse:
        self._record(request, body, response.status_code)
        response.headers["X-RateLimit-Total"] = "200"
        response.headers["X-RateLimit-Remaining"] = "199"
        response.headers["X-RateLimit-Used-CurrentRequest"] = "1"
        return response

    async def _me(self, request: Request) -> Response:
        body, refusal = await self._gate(request)
        if refusal:
            return refusal
        agent = {"id": 432, "type": "support_agent", "contact": {"name": self.agent_name}}
        return self._reply(request, body, JSONResponse(agent))

    async def _ticket_fields(self, request: Request) -> Response:
        body, refusal = await self._gate(request)
        if refusal:
            return refusal
        with self._lock:
            custom = [(n, *info) for n, info in self.custom_field_info.items()]
        fields = [
            {
                "id": 60000 + position,
                "name": name,
                "label": label,
                "label_for_customers": label,
                "type": kind,
                "default": kind.startswith("default_"),
                "position": position,
                "required_for_agents": name in ("requester", "subject"),
            }
            for position, (name, label, kind) in enumerate(
                [*DEFAULT_TICKET_FIELDS, *custom], start=1
            )
        ]
        return self._reply(request, body, JSONResponse(fields))

    async def _search(self, request: Request) -> Response:
        body, refusal = await self._gate(request)
        if refusal:
            return refusal
        match = QUERY.match(request.query_params.get("query", ""))
        if not match:  # Freshdesk wants the query in double quotes, strings in single ones
            return self._reply(
                request,
                body,
                _invalid(
                    ("query", "It should be in the format \"field:'value'\"", "invalid_value")
                ),
            )
        name, value = match.groups()
        if name not in self.custom_fields:
            return self._reply(
                request,
                body,
                _invalid((name, UNEXPECTED, "invalid_field")),
            )
        now = time.monotonic()
        with self._lock:
            results = [
                t.data
                for t in self.tickets.values()
                if t.data["custom_fields"].get(name) == value and now - t.created >= self.search_lag
            ]
        return self._reply(request, body, JSONResponse({"total": len(results), "results": results}))

    async def _list_contacts(self, request: Request) -> Response:
        body, refusal = await self._gate(request)
        if refusal:
            return refusal
        filters = {k: v for k, v in request.query_params.items() if k not in {"page", "per_page"}}
        allowed = {"email", "phone", "mobile", "unique_external_id", "company_id", "state"}
        if set(filters) - allowed:
            bad = sorted(set(filters) - allowed)[0]
            return self._reply(
                request,
                body,
                _invalid((bad, UNEXPECTED, "invalid_field")),
            )
        with self._lock:
            found = [
                c for c in self.contacts.values() if all(c.get(k) == v for k, v in filters.items())
            ]
        return self._reply(request, body, JSONResponse(found))

    async def _list_tickets(self, request: Request) -> Response:
        body, refusal = await self._gate(request)
        if refusal:
            return refusal
        requester = request.query_params.get("requester_id")
        with self._lock:
            found = [
                t.data
                for t in self.tickets.values()
                if requester is None or str(t.data["requester_id"]) == requester
            ]
        found.sort(key=lambda t: t["id"], reverse=True)
        per_page = int(request.query_params.get("per_page", "30"))
        return self._reply(request, body, JSONResponse(found[: min(per_page, 100)]))

    async def _view_ticket(self, request: Request) -> Response:
        body, refusal = await self._gate(request)
        if refusal:
            return refusal
        ticket = self.tickets.get(int(request.path_params["id"]))
        if ticket is None:
            self._record(request, body, 404)
            return Response(status_code=404)
        return self._reply(request, body, JSONResponse(ticket.data))

    def _validate_ticket(self, body: Any) -> JSONResponse | None:
        if not isinstance(body, dict):
            return _invalid(("body", "It should be a JSON object", "datatype_mismatch"))
        errors: list[tuple[str, str, str]] = []
        for name in ("subject", "description"):
            if not isinstance(body.get(name), str) or not body[name]:
                errors.append((name, "It should be a/an String", "missing_field"))
        if not any(body.get(k) for k in REQUESTER_KEYS):
            errors.append(
                (
                    "requester_id",
                    "Please fill at least 1 of requester_id, phone, email, twitter_id, "
                    "facebook_id, unique_external_id attributes",
                    "missing_field",
                )
            )
        if "email" in body and not (isinstance(body["email"], str) and EMAIL.match(body["email"])):
            errors.append(
                ("email", "It should be in the 'valid email address' format", "invalid_value")
            )
        if body.get("phone") and not body.get("email") and not body.get("name"):
            errors.append(("name", "It should be a/an String", "missing_field"))
        for name, allowed in (("priority", {1, 2, 3, 4}), ("status", {2, 3, 4, 5})):
            if name in body and body[name] not in allowed:
                values = ",".join(str(v) for v in sorted(allowed))
                errors.append(
                    (name, f"It should be one of these values: '{values}'", "invalid_value")
                )
        if "source" in body and body["source"] not in {1, 2, 3, 7, 9, 10}:
            errors.append(
                ("source", "It should be one of these values: '1,2,3,7,9,10'", "invalid_value")
            )
        tags = body.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            errors.append(("tags", "It should be a/an Array", "datatype_mismatch"))
        custom = body.get("custom_fields", {})
        if not isinstance(custom, dict):
            errors.append(
                ("custom_fields", "It should be a/an key/value pair", "datatype_mismatch")
            )
        else:
            for name in custom:
                if name not in self.custom_fields:
                    errors.append((name, UNEXPECTED, "invalid_field"))
        return _invalid(*errors) if errors else None

    async def _create_ticket(self, request: Request) -> Response:
        body, refusal = await self._gate(request)
        if refusal:
            return refusal
        problem = self._validate_ticket(body)
        if problem is not None:
            return self._reply(request, body, problem)
        with self._lock:
            requester = body.get("requester_id") or self._find_or_create_contact(body)
            ticket_id = next(self._ids)
            data = {
                "id": ticket_id,
                "subject": body["subject"],
                "description": body["description"],
                "description_text": html.unescape(re.sub(r"<[^>]+>", " ", body["description"])),
                "requester_id": requester,
                "priority": body.get("priority", 1),
                "status": body.get("status", 2),
                "source": body.get("source", 2),
                "tags": body.get("tags", []),
                "custom_fields": {
                    **dict.fromkeys(self.custom_fields),
                    **body.get("custom_fields", {}),
                },
                "created_at": _now(),
                "updated_at": _now(),
            }
            self.tickets[ticket_id] = Ticket(ticket_id, data, time.monotonic())
            stall, self._lose_create = self._lose_create, 0.0
        response = self._reply(request, body, JSONResponse(data, status_code=201))
        if stall:
            await self.stall(stall)
        return response

    def _find_or_create_contact(self, body: dict[str, Any]) -> int:
        for key in ("email", "phone", "unique_external_id", "twitter_id", "facebook_id"):
            if body.get(key):
                for contact in self.contacts.values():
                    if contact.get(key) == body[key]:
                        return int(contact["id"])
                fields = {key: body[key], "name": body.get("name") or body[key]}
                return self._contact(fields)
        raise AssertionError("validated: one requester identifier is present")

    async def _add_note(self, request: Request) -> Response:
        body, refusal = await self._gate(request)
        if refusal:
            return refusal
        ticket = self.tickets.get(int(request.path_params["id"]))
        if ticket is None:
            self._record(request, body, 404)
            return Response(status_code=404)
        errors: list[tuple[str, str, str]] = []
        if not isinstance(body, dict) or not isinstance(body.get("body"), str) or not body["body"]:
            errors.append(("body", "It should be a/an String", "missing_field"))
        else:
            for name in ("private", "incoming"):
                if name in body and not isinstance(body[name], bool):
                    errors.append((name, "It should be a/an Boolean", "datatype_mismatch"))
            user = body.get("user_id")
            if user is not None and user not in self.contacts and user != 432:
                errors.append(
                    ("user_id", "There is no contact matching the given user_id", "invalid_value")
                )
        if errors:
            return self._reply(request, body, _invalid(*errors))
        with self._lock:
            note = Note(
                id=next(self._ids),
                body=body["body"],
                private=body.get("private", True),  # notes are private unless told otherwise
                incoming=body.get("incoming", False),
                user_id=body.get("user_id"),
            )
            ticket.notes.append(note)
        data = {
            "id": note.id,
            "ticket_id": ticket.id,
            "body": note.body,
            "private": note.private,
            "incoming": note.incoming,
            "user_id": note.user_id or 432,
            "created_at": _now(),
        }
        return self._reply(request, body, JSONResponse(data, status_code=201))
