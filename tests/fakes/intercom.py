"""A faithful fake of the Intercom REST API (tickets, contacts, tags) over real HTTP.

`FakeIntercom` runs a Starlette app under uvicorn in a background thread on 127.0.0.1 and
keeps contacts, ticket types, tickets with their parts, and tags in memory. It checks what
the real API checks: the bearer token (401 `unauthorized`), the `Intercom-Version` header,
and the shapes of request bodies (400 `parameter_not_found` / `parameter_invalid`), and it
answers in Intercom's `error.list` envelope. Knobs script trouble: rate limiting with the
`X-RateLimit-*` headers, a ticket create whose response is lost, forced errors. It also
signs webhook notifications the way Intercom does (`X-Hub-Signature: sha1=<hmac>`)::

    with FakeIntercom() as fake:
        ...  # Credentials(access_token=fake.token, base_url=fake.base_url, ...)
        body, headers = fake.admin_reply(ticket_id, "On it!", admin_name="Sam")

References: https://developers.intercom.com/docs/references/rest-api/api.intercom.io,
https://developers.intercom.com/docs/references/rest-api/errors/rate-limiting and
https://developers.intercom.com/docs/references/webhooks/webhook-models
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import LoopbackServer

VERSIONS = {f"2.{n}" for n in range(0, 18)} | {"1.0", "1.1", "1.2", "1.3", "1.4", "Preview"}
SEARCH_OPERATORS = {"=", "!=", "IN", "NIN", "<", ">", "~", "!~", "^", "$"}


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the fake saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int


@dataclass(slots=True)
class Forced:
    """An error the next matching request gets instead of its answer."""

    status: int
    code: str
    message: str
    field: str | None = None
    path: str | None = None  # only requests to this path (e.g. "/tickets"); None: any


@dataclass(slots=True)
class State:
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    tickets: dict[str, dict[str, Any]] = field(default_factory=dict)
    tags: dict[str, dict[str, Any]] = field(default_factory=dict)
    ticket_tags: dict[str, set[str]] = field(default_factory=dict)


def error_list(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    """Return Intercom's error envelope."""
    error: dict[str, Any] = {"code": code, "message": message}
    if field:
        error["field"] = field
    return {"type": "error.list", "request_id": uuid.uuid4().hex[:20], "errors": [error]}


class FakeIntercom(LoopbackServer):
    """A fake Intercom workspace on 127.0.0.1; use it as a context manager."""

    def __init__(
        self,
        *,
        token: str = "dG9rOmZha2UtdG9rZW4=",
        client_secret: str = "fake-client-secret",
        app_id: str = "fk4pp1d",
    ) -> None:
        self.token = token
        self.client_secret = client_secret
        self.app_id = app_id
        self.admin = {"type": "admin", "id": "991267", "name": "Token Owner", "email": "o@x.io"}
        self.ticket_types: list[dict[str, Any]] = [
            {"id": "88", "name": "Escalation", "category": "Customer", "archived": False},
            {"id": "89", "name": "Old type", "category": "Customer", "archived": True},
            {"id": "90", "name": "Bug tracker", "category": "Tracker", "archived": False},
        ]
        self.state = State()
        self.requests: list[Received] = []
        self.rate_limit_limit = 167
        self._rate_limited = 0
        self._rate_reset_in = 1.0
        self._lose_next_create: float | None = None
        self._contact_search_misses = 0
        self._forced: list[Forced] = []
        self._ids = itertools.count(1000)
        self._lock = threading.Lock()
        routes = [
            Route("/me", self._me, methods=["GET"]),
            Route("/ticket_types", self._ticket_types, methods=["GET"]),
            Route("/contacts/search", self._contacts_search, methods=["POST"]),
            Route("/contacts", self._contacts_create, methods=["POST"]),
            Route("/tickets/search", self._tickets_search, methods=["POST"]),
            Route("/tickets", self._tickets_create, methods=["POST"]),
            Route("/tickets/{id}", self._ticket_get, methods=["GET"]),
            Route("/tickets/{id}/reply", self._ticket_reply, methods=["POST"]),
            Route("/tickets/{id}/tags", self._ticket_tag, methods=["POST"]),
            Route("/tags", self._tags_create, methods=["POST"]),
        ]
        super().__init__(Starlette(routes=routes), name="Intercom")

    # -- knobs -----------------------------------------------------------------------------

    def rate_limit(self, requests: int, *, reset_in: float = 1.0) -> None:
        """Answer the next `requests` requests with 429 and a reset `reset_in` seconds away."""
        with self._lock:
            self._rate_limited, self._rate_reset_in = requests, reset_in

    def lose_next_ticket_create(self, stall: float = 5.0) -> None:
        """Store the next ticket, then stall its response for `stall` seconds."""
        with self._lock:
            self._lose_next_create = stall

    def miss_contact_searches(self, searches: int) -> None:
        """Answer the next `searches` contact searches with no results (index lag)."""
        with self._lock:
            self._contact_search_misses = searches

    def fail_next(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        path: str | None = None,
    ) -> None:
        """Answer the next request (to `path`, if given) with this error."""
        with self._lock:
            self._forced.append(Forced(status, code, message, field, path))

    def add_contact(self, *, email: str | None = None, name: str | None = None) -> str:
        """Seed an existing contact; return its id."""
        contact = self._new_contact({"role": "user", "email": email, "name": name})
        return str(contact["id"])

    def calls(self, method: str, path: str) -> list[Received]:
        """Return the requests received for one endpoint, oldest first."""
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    # -- webhook notifications -------------------------------------------------------------

    def sign(self, body: bytes, secret: str | None = None) -> dict[str, str]:
        """Return the headers Intercom sends with a notification body."""
        digest = hmac.new((secret or self.client_secret).encode(), body, hashlib.sha1).hexdigest()
        return {
            "Content-Type": "application/json",
            "User-Agent": "intercom-parrot-service-client/1.0",
            "X-Hub-Signature": f"sha1={digest}",
        }

    def notification(
        self,
        topic: str,
        item: dict[str, Any],
        *,
        created_at: float | None = None,
        secret: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """Return a signed `notification_event` body and its headers."""
        now = int(time.time())
        payload = {
            "type": "notification_event",
            "app_id": self.app_id,
            "data": {"type": "notification_event_data", "item": item},
            "links": {},
            "id": f"notif_{uuid.uuid4()}",
            "topic": topic,
            "delivery_status": "pending",
            "delivery_attempts": 1,
            "delivered_at": 0,
            "first_sent_at": now,
            "created_at": int(created_at) if created_at is not None else now,
            "self": None,
        }
        body = json.dumps(payload).encode()
        return body, self.sign(body, secret)

    def admin_reply(
        self, ticket_id: str, html_body: str, *, admin_name: str = "Sam Support"
    ) -> tuple[bytes, dict[str, str]]:
        """Add a teammate's public reply to the ticket; return the signed notification."""
        author = {"id": "814860", "type": "admin", "name": admin_name, "email": "sam@x.io"}
        self._add_part(ticket_id, "comment", html_body, author)
        return self.notification("ticket.admin.replied", self._ticket_view(ticket_id))

    def admin_note(self, ticket_id: str, html_body: str) -> tuple[bytes, dict[str, str]]:
        """Add an internal note to the ticket; return the signed notification."""
        author = {"id": "814860", "type": "admin", "name": "Sam Support", "email": "sam@x.io"}
        self._add_part(ticket_id, "note", html_body, author)
        return self.notification("ticket.note.created", self._ticket_view(ticket_id))

    def user_reply_echo(self, ticket_id: str) -> tuple[bytes, dict[str, str]]:
        """Return the signed notification Intercom sends for the contact's latest reply."""
        return self.notification("ticket.contact.replied", self._ticket_view(ticket_id))

    def resolve(self, ticket_id: str) -> tuple[bytes, dict[str, str]]:
        """Resolve the ticket; return the signed `ticket.state.updated` notification."""
        with self._lock:
            ticket = self.state.tickets[ticket_id]
            ticket["ticket_state"] = _state("resolved")
            ticket["open"] = False
        return self.notification("ticket.state.updated", self._ticket_view(ticket_id))

    def close(self, ticket_id: str) -> tuple[bytes, dict[str, str]]:
        """Close the ticket; return `ticket.closed` (the ticket nested under `ticket`)."""
        with self._lock:
            self.state.tickets[ticket_id]["open"] = False
        item = {"type": "ticket_close", "ticket": self._ticket_view(ticket_id)}
        return self.notification("ticket.closed", item)

    def forged(self, ticket_id: str, html_body: str) -> tuple[bytes, dict[str, str]]:
        """Return an admin-reply notification signed with the wrong secret."""
        item = self._ticket_view(ticket_id)
        author = {"id": "1", "type": "admin", "name": "Mallory", "email": "m@evil.example"}
        item["ticket_parts"]["ticket_parts"].append(
            {
                "type": "ticket_part",
                "id": "666",
                "part_type": "comment",
                "body": html_body,
                "author": author,
                "attachments": [],
            }
        )
        return self.notification("ticket.admin.replied", item, secret="not-the-client-secret")

    # -- internals -------------------------------------------------------------------------

    def _next_id(self) -> str:
        return str(next(self._ids))

    def _new_contact(self, body: dict[str, Any]) -> dict[str, Any]:
        contact = {
            "type": "contact",
            "id": secrets.token_hex(12),  # 24-hex, like Intercom's
            "workspace_id": self.app_id,
            "external_id": body.get("external_id"),
            "role": body.get("role", "lead"),
            "email": body.get("email"),
            "phone": body.get("phone"),
            "name": body.get("name"),
            "created_at": int(time.time()),
        }
        with self._lock:
            self.state.contacts[contact["id"]] = contact
        return contact

    def _add_part(
        self, ticket_id: str, part_type: str, body: str, author: dict[str, Any]
    ) -> dict[str, Any]:
        now = int(time.time())
        part = {
            "type": "ticket_part",
            "id": self._next_id(),
            "part_type": part_type,
            "body": body,
            "created_at": now,
            "updated_at": now,
            "author": author,
            "attachments": [],
            "redacted": False,
        }
        with self._lock:
            self.state.tickets[ticket_id]["_parts"].append(part)
        return part

    def _ticket_view(self, ticket_id: str) -> dict[str, Any]:
        with self._lock:
            ticket = self.state.tickets[ticket_id]
            view = {k: v for k, v in ticket.items() if not k.startswith("_")}
            parts = list(ticket["_parts"])
        view["ticket_parts"] = {
            "type": "ticket_part.list",
            "ticket_parts": parts,
            "total_count": len(parts),
        }
        return view

    def _record(self, request: Request, body: Any, status: int) -> None:
        with self._lock:
            self.requests.append(
                Received(request.method, request.url.path, dict(request.headers), body, status)
            )

    async def _guard(self, request: Request) -> tuple[Any, Response | None]:
        """Read the body and answer the checks every endpoint shares, or None to go on."""
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        problem = self._problem(request, body)
        if problem is not None:
            self._record(request, body, problem.status_code)
        return body, problem

    def _problem(self, request: Request, body: Any) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return JSONResponse(error_list("unauthorized", "Access Token Invalid"), 401)
        version = request.headers.get("intercom-version")
        if version not in VERSIONS:
            message = f"Requested version {version!r} is not valid"
            return JSONResponse(error_list("intercom_version_invalid", message), 400)
        with self._lock:
            reset = int(time.time() + self._rate_reset_in)
            if self._rate_limited > 0:
                self._rate_limited -= 1
                headers = {
                    "X-RateLimit-Limit": str(self.rate_limit_limit),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(reset),
                }
                message = f"Exceeded rate limit of {self.rate_limit_limit} in 10_seconds"
                return JSONResponse(
                    error_list("rate_limit_exceeded", message), 429, headers=headers
                )
            for forced in self._forced:
                if forced.path is None or forced.path == request.url.path:
                    self._forced.remove(forced)
                    return JSONResponse(
                        error_list(forced.code, forced.message, forced.field), forced.status
                    )
        if request.method == "POST" and not isinstance(body, dict):
            return JSONResponse(error_list("parameter_invalid", "Body must be JSON"), 400)
        return None

    def _answer(
        self, request: Request, body: Any, payload: dict[str, Any], status: int = 200
    ) -> Response:
        self._record(request, body, status)
        headers = {
            "X-RateLimit-Limit": str(self.rate_limit_limit),
            "X-RateLimit-Remaining": str(self.rate_limit_limit - 1),
            "X-RateLimit-Reset": str(int(time.time()) + 10),
        }
        return JSONResponse(payload, status, headers=headers)

    def _invalid(
        self, request: Request, body: Any, code: str, message: str, status: int = 400
    ) -> Response:
        self._record(request, body, status)
        return JSONResponse(error_list(code, message), status)

    async def _me(self, request: Request) -> Response:
        body, problem = await self._guard(request)
        if problem:
            return problem
        app = {
            "type": "app",
            "id_code": self.app_id,
            "name": "Fake workspace",
            "region": "US",
            "timezone": "Europe/London",
            "created_at": 1671465577,
            "identity_verification": False,
        }
        return self._answer(request, body, {**self.admin, "app": app})

    async def _ticket_types(self, request: Request) -> Response:
        body, problem = await self._guard(request)
        if problem:
            return problem
        data = [{"type": "ticket_type", **t} for t in self.ticket_types]
        return self._answer(request, body, {"type": "list", "data": data})

    async def _contacts_search(self, request: Request) -> Response:
        body, problem = await self._guard(request)
        if problem:
            return problem
        query = body.get("query")
        if not isinstance(query, dict) or not {"field", "operator", "value"} <= query.keys():
            return self._invalid(request, body, "parameter_invalid", "Invalid query")
        if query["operator"] not in SEARCH_OPERATORS:
            return self._invalid(request, body, "parameter_invalid", "Unknown operator")
        with self._lock:
            found = [
                c
                for c in self.state.contacts.values()
                if query["operator"] == "=" and c.get(query["field"]) == query["value"]
            ]
            if self._contact_search_misses > 0:
                self._contact_search_misses -= 1
                found = []
        payload = {"type": "list", "data": found, "total_count": len(found), "pages": {}}
        return self._answer(request, body, payload)

    async def _contacts_create(self, request: Request) -> Response:
        body, problem = await self._guard(request)
        if problem:
            return problem
        role = body.get("role", "lead")
        if role not in {"user", "lead"}:
            return self._invalid(request, body, "parameter_invalid", "role must be user or lead")
        if role == "user" and not (body.get("email") or body.get("external_id")):
            message = "A user must have an email or an external_id"
            return self._invalid(request, body, "parameter_not_found", message)
        with self._lock:
            for contact in self.state.contacts.values():
                for key in ("email", "external_id"):
                    if body.get(key) and contact.get(key) == body[key]:
                        message = (
                            "A contact matching those details already exists "
                            f"with id={contact['id']}"
                        )
                        self.requests.append(
                            Received("POST", "/contacts", dict(request.headers), body, 409)
                        )
                        return JSONResponse(error_list("conflict", message), 409)
        return self._answer(request, body, self._new_contact(body))

    async def _tickets_search(self, request: Request) -> Response:
        body, problem = await self._guard(request)
        if problem:
            return problem
        query = body.get("query")
        if not isinstance(query, dict) or query.get("operator") not in SEARCH_OPERATORS:
            return self._invalid(request, body, "parameter_invalid", "Invalid query")
        fields = {"title": "_default_title_", "description": "_default_description_"}
        if query.get("field") not in fields or not isinstance(query.get("value"), str):
            return self._invalid(request, body, "parameter_invalid", "Unsupported query")
        key = fields[query["field"]]
        found = [
            self._ticket_view(t["id"])
            for t in list(self.state.tickets.values())
            if query["value"] in str(t["ticket_attributes"].get(key, ""))
        ]
        payload = {"type": "ticket.list", "tickets": found, "total_count": len(found)}
        return self._answer(request, body, payload)

    async def _tickets_create(self, request: Request) -> Response:
        body, problem = await self._guard(request)
        if problem:
            return problem
        type_id = body.get("ticket_type_id")
        contacts = body.get("contacts")
        if type_id is None:
            return self._invalid(request, body, "parameter_not_found", "ticket_type_id missing")
        if not isinstance(type_id, str):
            message = "ticket_type_id must be a string"
            return self._invalid(request, body, "parameter_invalid", message)
        ticket_type = next((t for t in self.ticket_types if t["id"] == type_id), None)
        if ticket_type is None:
            return self._invalid(request, body, "parameter_invalid", "Ticket type not found")
        if not isinstance(contacts, list) or len(contacts) != 1:
            message = "contacts must hold exactly one contact"
            return self._invalid(request, body, "parameter_invalid", message)
        ref = contacts[0]
        if (
            not isinstance(ref, dict)
            or len(ref) != 1
            or next(iter(ref))
            not in {
                "id",
                "external_id",
                "email",
            }
        ):
            message = "a contact is one of {id}, {external_id} or {email}"
            return self._invalid(request, body, "parameter_invalid", message)
        contact = self._contact_for(ref)
        if contact is None:
            return self._invalid(request, body, "not_found", "Contact not found", 404)
        attributes = body.get("ticket_attributes") or {}
        if not isinstance(attributes, dict) or not all(isinstance(k, str) for k in attributes):
            return self._invalid(request, body, "parameter_invalid", "Invalid ticket_attributes")
        ticket_id = self._next_id()
        now = int(time.time())
        with self._lock:
            self.state.tickets[ticket_id] = {
                "type": "ticket",
                "id": ticket_id,
                "ticket_id": str(int(ticket_id) - 900),
                "category": ticket_type["category"],
                "ticket_attributes": dict(attributes),
                "ticket_state": _state("submitted"),
                "ticket_type": {"type": "ticket_type", **ticket_type},
                "contacts": {
                    "type": "contact.list",
                    "contacts": [{"type": "contact", "id": contact["id"], "external_id": None}],
                },
                "admin_assignee_id": "0",
                "team_assignee_id": "0",
                "created_at": now,
                "updated_at": now,
                "open": True,
                "linked_objects": {"type": "list", "data": [], "total_count": 0},
                "is_shared": True,
                "_parts": [],
            }
            stall, self._lose_next_create = self._lose_next_create, None
        view = self._ticket_view(ticket_id)
        response = self._answer(request, body, view)  # recorded now: the ticket exists
        if stall:
            await self.stall(stall)
        return response

    def _contact_for(self, ref: dict[str, Any]) -> dict[str, Any] | None:
        key, value = next(iter(ref.items()))
        with self._lock:
            for contact in self.state.contacts.values():
                if contact.get(key) == value:
                    return contact
        if key == "email":  # Intercom creates the contact when it only knows the email
            return self._new_contact({"role": "user", "email": value})
        return None

    async def _ticket_get(self, request: Request) -> Response:
        body, problem = await self._guard(request)
        if problem:
            return problem
        ticket_id = request.path_params["id"]
        if ticket_id not in self.state.tickets:
            return self._invalid(request, body, "ticket_not_found", "Ticket not found", 404)
        return self._answer(request, body, self._ticket_view(ticket_id))

    async def _ticket_reply(self, request: Request) -> Response:
        body, problem = await self._guard(request)
        if problem:
            return problem
        ticket_id = request.path_params["id"]
        if ticket_id not in self.state.tickets:
            return self._invalid(request, body, "ticket_not_found", "Ticket not found", 404)
        if body.get("message_type") != "comment" or body.get("type") != "user":
            message = "message_type must be comment with type user"
            return self._invalid(request, body, "parameter_invalid", message)
        keys = [k for k in ("intercom_user_id", "user_id", "email") if body.get(k)]
        if len(keys) != 1:
            message = "one of intercom_user_id, user_id or email is required"
            return self._invalid(request, body, "parameter_not_found", message)
        if not isinstance(body.get("body"), str) or not body["body"]:
            return self._invalid(request, body, "parameter_not_found", "body is required")
        field_name = {"intercom_user_id": "id", "user_id": "external_id", "email": "email"}
        contact = next(
            (
                c
                for c in self.state.contacts.values()
                if c.get(field_name[keys[0]]) == body[keys[0]]
            ),
            None,
        )
        if contact is None:
            return self._invalid(request, body, "not_found", "User Not Found", 404)
        author = {"id": contact["id"], "type": "user", "name": contact["name"]}
        author["email"] = contact["email"]
        part = self._add_part(ticket_id, "comment", body["body"], author)
        return self._answer(request, body, part)

    async def _tags_create(self, request: Request) -> Response:
        body, problem = await self._guard(request)
        if problem:
            return problem
        name = body.get("name")
        if not isinstance(name, str) or not name:
            return self._invalid(request, body, "parameter_not_found", "name is required")
        with self._lock:
            tag = next((t for t in self.state.tags.values() if t["name"] == name), None)
            if tag is None:
                tag = {"type": "tag", "id": str(len(self.state.tags) + 1), "name": name}
                self.state.tags[tag["id"]] = tag
        return self._answer(request, body, tag)

    async def _ticket_tag(self, request: Request) -> Response:
        body, problem = await self._guard(request)
        if problem:
            return problem
        ticket_id = request.path_params["id"]
        if ticket_id not in self.state.tickets:
            return self._invalid(request, body, "ticket_not_found", "Ticket not found", 404)
        if not body.get("admin_id"):
            return self._invalid(request, body, "parameter_not_found", "admin_id is required")
        tag = self.state.tags.get(str(body.get("id")))
        if tag is None:
            return self._invalid(request, body, "tag_not_found", "Tag not found", 404)
        with self._lock:
            self.state.ticket_tags.setdefault(ticket_id, set()).add(tag["name"])
        return self._answer(request, body, tag)


def _state(category: str) -> dict[str, Any]:
    labels = {"submitted": "Submitted", "in_progress": "In progress", "resolved": "Resolved"}
    ids = {"submitted": "1", "in_progress": "2", "waiting_on_customer": "3", "resolved": "4"}
    return {
        "type": "ticket_state",
        "id": ids[category],
        "category": category,
        "internal_label": labels.get(category, category),
        "external_label": labels.get(category, category),
    }
