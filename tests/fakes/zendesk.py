"""A faithful fake of the Zendesk Support API and its event webhooks, over real HTTP.

`FakeZendesk` runs a Starlette app under uvicorn in a background thread on 127.0.0.1 and keeps
users, tickets and comments in memory. It implements what handoff calls:

- `GET /api/v2/users/me` (Basic `{email}/token:{token}`; 401 `Couldn't authenticate you`;
  200 with an anonymous user when no credentials are sent at all),
- `POST /api/v2/users/create_or_update` (matches on email, then external_id),
- `GET /api/v2/tickets?external_id=`, `POST /api/v2/tickets` (with `Idempotency-Key`),
- `GET` and `PUT /api/v2/tickets/{id}` (comments with `author_id`, status changes; the
  update's `metadata` becomes its audit's `metadata.custom`),
- `GET /api/v2/tickets/{id}/audits` (one audit per create or update, oldest first; cursor
  pagination with `page[size]` and `page[after]`, else offset pagination),
- `GET /api/v2/groups` and `GET /api/v2/brands` (offset pagination: `page`, `per_page`,
  `next_page`; edit `groups` and `brands` to change what they list),
- OAuth: `GET /oauth/authorizations/new` (approves at once and redirects back with a code, or
  with `error=access_denied` after `deny_next_authorization()`), `POST /oauth/tokens` for the
  `authorization_code` and `refresh_token` grants. A refresh rotates: it deletes the old access
  and refresh tokens, so a second refresh with the same refresh token gets `invalid_grant`.
  `Authorization: Bearer` works for live access tokens. The OAuth state and its knobs
  (`deny_next()`, `expire_access_tokens()`, `delay`) are in `oauth` (tests.fakes.oauth).

each with or without the `.json` suffix, answering Zendesk's error bodies:
`{"error","description","details":{field:[{"description","error"}]}}` for 422, `RecordNotFound`
for 404, a text/plain 400 for a body that is not JSON. Knobs: `rate_limit(n, retry_after)`,
`drop_next_create(seconds)` or `drop_next_creates(count, seconds)` (the ticket is stored, then
the answer stalls past the client's timeout), `fail_next(requests, status)` (an outage: the next
requests get a 5xx before the fake looks at them), `delays[path] = seconds` (every answer on
that API path, `.json` or not, is held back). Helpers build signed event webhooks
(`agent_reply`, `internal_note`, `requester_comment`, `status_changed`, then `signed`)::

    with FakeZendesk() as zd:
        creds = Credentials(subdomain="acme", email=zd.email, api_token=zd.api_token,
                            base_url=zd.base_url)
        ...
        body, headers = zd.signed(zd.agent_reply(ticket_id, "Hi!"), secret)

Reference: https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/,
https://developer.zendesk.com/api-reference/webhooks/event-types/ticket-events/ and
https://developer.zendesk.com/documentation/webhooks/verifying/. Assumed, not documented:
the status and body for an Idempotency-Key reused with another payload (400 below), and the
429 body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from tests.fakes.oauth import OAuthGrants
from tests.fakes.server import LoopbackServer, Received

PRIORITIES = {"urgent", "high", "normal", "low"}
STATUSES = {"new", "open", "pending", "hold", "solved", "closed"}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ACCOUNT_ID = 22129848


class Invalid(Exception):
    """A 422 RecordInvalid with Zendesk's details."""

    def __init__(self, field: str, description: str, error: str = "InvalidValue") -> None:
        super().__init__(description)
        self.field, self.description, self.error = field, description, error


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error(status: int, error: str, description: str | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"error": error}
    if description is not None:
        body["description"] = description
    body.update(extra)
    return JSONResponse(body, status_code=status)


def _outage(status: int) -> Response:
    """What Zendesk's edge answers while the API is down: an HTML page, not its JSON errors."""
    reason = "Service Unavailable" if status == 503 else "Internal Server Error"
    return HTMLResponse(f"<html><body><h1>{status} {reason}</h1></body></html>", status)


def _invalid(problem: Invalid) -> JSONResponse:
    details = {problem.field: [{"description": problem.description, "error": problem.error}]}
    return _error(422, "RecordInvalid", "Record validation errors", details=details)


class FakeZendesk(LoopbackServer):
    """A fake Zendesk account on 127.0.0.1; use it as a context manager."""

    def __init__(
        self,
        *,
        subdomain: str = "acme",
        email: str = "agent@acme.test",
        api_token: str = "zd-test-token-0123456789",
    ) -> None:
        self.subdomain = subdomain
        self.email = email
        self.api_token = api_token
        self.requests: list[Received] = []
        self.users: dict[int, dict[str, Any]] = {}
        self.tickets: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.audits: dict[int, list[dict[str, Any]]] = {}
        self.idempotency: dict[str, tuple[str, int, dict[str, Any]]] = {}
        self.groups: list[dict[str, Any]] = [
            {"id": 360001, "name": "Support", "deleted": False, "default": True},
            {"id": 360002, "name": "Billing", "deleted": False, "default": False},
            {"id": 360003, "name": "Old team", "deleted": True, "default": False},
        ]
        self.brands: list[dict[str, Any]] = [
            {"id": 470001, "name": "Acme", "subdomain": subdomain, "active": True, "default": True},
            {"id": 470002, "name": "Acme Kids", "subdomain": "acmekids", "active": True},
            {"id": 470003, "name": "Retired", "subdomain": "retired", "active": False},
        ]
        self._ids = iter(range(1001, 10**9))
        self._rate_limited = 0
        self._retry_after = "1"
        self._drops_left = 0
        self._drop_stall = 0.0
        self._failing = 0
        self._failure_status = 503
        self.delays: dict[str, float] = {}  # API path → seconds its answers are held back
        self._lock = threading.RLock()
        self.oauth = OAuthGrants(
            client_id="handoff_acme",
            client_secret="zd-oauth-secret-0123456789",
            lifetime=7200,
            rotate=True,  # a refresh deletes the old access and refresh tokens
            prefix="z",
        )
        self.agent = self._add_user(
            {"name": "Agent Smith", "email": email, "role": "admin", "external_id": None}
        )
        routes: list[Route] = []
        for path, handler, methods in (
            ("/api/v2/users/me", self._me, ["GET"]),
            ("/api/v2/users/create_or_update", self._create_or_update_user, ["POST"]),
            ("/api/v2/tickets", self._tickets, ["GET", "POST"]),
            ("/api/v2/tickets/{ticket_id:int}", self._ticket, ["GET", "PUT"]),
            ("/api/v2/tickets/{ticket_id:int}/audits", self._ticket_audits, ["GET"]),
            ("/api/v2/groups", self._groups, ["GET"]),
            ("/api/v2/brands", self._brands, ["GET"]),
        ):
            routes.append(Route(path, self._wrap(handler), methods=methods))
            routes.append(Route(path + ".json", self._wrap(handler), methods=methods))
        routes.append(Route("/oauth/authorizations/new", self._authorize, methods=["GET"]))
        routes.append(Route("/oauth/tokens", self._wrap(self._token_grant), methods=["POST"]))
        app = Starlette(routes=routes)
        super().__init__(app, name="Zendesk")

    # --- knobs -------------------------------------------------------------------------

    def rate_limit(self, requests: int, retry_after: int = 1) -> None:
        """Answer the next `requests` requests with 429 and `Retry-After`."""
        with self._lock:
            self._rate_limited, self._retry_after = requests, str(retry_after)

    def drop_next_create(self, stall_seconds: float = 5.0) -> None:
        """Store the next created ticket, then stall its answer (a timeout that reached us)."""
        self.drop_next_creates(1, stall_seconds)

    def drop_next_creates(self, count: int, stall_seconds: float = 5.0) -> None:
        """Store each of the next `count` created tickets, then stall its answer."""
        with self._lock:
            self._drops_left, self._drop_stall = count, stall_seconds

    def fail_next(self, requests: int, status: int = 503) -> None:
        """Answer the next `requests` requests with `status` (500 or 503), doing nothing."""
        with self._lock:
            self._failing, self._failure_status = requests, status

    def add_end_user(self, name: str, email: str | None = None) -> dict[str, Any]:
        """Create an end user directly, as if they had written in before."""
        return self._add_user({"name": name, "email": email, "role": "end-user"})

    def tickets_with_external_id(self, external_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [t for t in self.tickets.values() if t["external_id"] == external_id]

    def requests_to(self, method: str, path_prefix: str) -> list[Received]:
        with self._lock:
            return [
                r for r in self.requests if r.method == method and r.path.startswith(path_prefix)
            ]

    # --- webhooks (https://developer.zendesk.com/api-reference/webhooks/event-types/) ---

    def agent_reply(
        self, ticket_id: int | str, text: str, author_name: str = "Dana"
    ) -> dict[str, Any]:
        """Post a public agent comment on the ticket; return its comment_added event."""
        author = self._add_user({"name": author_name, "email": None, "role": "agent"})
        return self._comment_event(int(ticket_id), text, author, public=True)

    def internal_note(self, ticket_id: int | str, text: str) -> dict[str, Any]:
        """Post an internal note by an agent; return its comment_added event."""
        return self._comment_event(int(ticket_id), text, self.agent, public=False)

    def requester_comment(self, ticket_id: int | str, text: str) -> dict[str, Any]:
        """Post a public comment by the requester (our own echo); return its event."""
        requester = self.users[self.tickets[int(ticket_id)]["requester_id"]]
        return self._comment_event(int(ticket_id), text, requester, public=True)

    def status_changed(self, ticket_id: int | str, status: str = "solved") -> dict[str, Any]:
        """Change the ticket's status; return its status_changed event."""
        with self._lock:
            ticket = self.tickets[int(ticket_id)]
            previous, ticket["status"] = ticket["status"], status
        return self._event(
            "zen:event-type:ticket.status_changed",
            ticket,
            {"current": status.upper(), "previous": previous.upper()},
        )

    @staticmethod
    def signed(
        payload: dict[str, Any], secret: str, timestamp: str | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """Serialize an event and sign it as Zendesk does: base64(HMAC-SHA256(ts + body))."""
        body = json.dumps(payload).encode()
        stamp = timestamp or _now()
        digest = hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()
        return body, {
            "content-type": "application/json; charset=utf-8",
            "x-zendesk-account-id": str(ACCOUNT_ID),
            "x-zendesk-webhook-id": "01HZZZZZZZZZZZZZZZZZZZZZZZ",
            "x-zendesk-webhook-invocation-id": str(uuid.uuid4().int)[:19],
            "x-zendesk-webhook-signature": base64.b64encode(digest).decode(),
            "x-zendesk-webhook-signature-timestamp": stamp,
        }

    def _comment_event(
        self, ticket_id: int, text: str, author: dict[str, Any], *, public: bool
    ) -> dict[str, Any]:
        with self._lock:
            ticket = self.tickets[ticket_id]
            comment = self._add_comment(ticket_id, author["id"], text, None, public)
            self._add_audit(ticket_id, author["id"], [comment], {})
        is_staff = author["role"] in ("agent", "admin")
        event = {
            "comment": {
                "id": str(comment["id"]),
                "body": text,
                "is_public": public,
                "author": {"id": str(author["id"]), "is_staff": is_staff, "name": author["name"]},
            }
        }
        return self._event("zen:event-type:ticket.comment_added", ticket, event)

    def _event(self, kind: str, ticket: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
        # Event payloads carry ids as strings and enums in capitals (unlike the REST API).
        detail = {
            "actor_id": str(self.agent["id"]),
            "assignee_id": None,
            "brand_id": str(ticket["brand_id"]) if ticket["brand_id"] else None,
            "created_at": ticket["created_at"],
            "description": ticket["description"],
            "external_id": ticket["external_id"],
            "group_id": str(ticket["group_id"]) if ticket["group_id"] else None,
            "id": str(ticket["id"]),
            "is_public": True,
            "organization_id": None,
            "priority": (ticket["priority"] or "normal").upper(),
            "requester_id": str(ticket["requester_id"]),
            "status": ticket["status"].upper(),
            "subject": ticket["subject"],
            "submitter_id": str(ticket["submitter_id"]),
            "tags": ticket["tags"],
            "type": None,
            "updated_at": _now(),
            "via": {"channel": "api"},
        }
        return {
            "account_id": ACCOUNT_ID,
            "detail": detail,
            "event": event,
            "id": str(uuid.uuid4()),
            "subject": f"zen:ticket:{ticket['id']}",
            "time": _now(),
            "type": kind,
            "zendesk_event_version": "2022-11-06",
        }

    # --- the API -----------------------------------------------------------------------

    def _wrap(self, handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            body: Any = None
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
            received = Received.of(request, body)
            with self._lock:
                self.requests.append(received)
            delay = self.delays.get(request.url.path.removesuffix(".json"))
            if delay:
                await self.stall(delay)
            response = await self._answer(request, handler, body)
            received.status = response.status_code
            return response

        return endpoint

    async def _answer(self, request: Request, handler: Any, body: Any) -> Response:
        with self._lock:
            if self._failing > 0:
                self._failing -= 1
                return _outage(self._failure_status)
            if self._rate_limited > 0:
                self._rate_limited -= 1
                response = _error(
                    429,
                    "APIRateLimitExceeded",
                    "Number of allowed API requests per minute exceeded",
                )
                response.headers["Retry-After"] = self._retry_after
                return response
        auth = self._authenticate(request)
        if auth is False:
            return _error(401, "Couldn't authenticate you")
        if request.method in ("POST", "PUT"):
            if not request.headers.get("content-type", "").startswith("application/json"):
                return PlainTextResponse("Content-Type must be application/json", status_code=400)
            if not isinstance(body, dict):
                return PlainTextResponse("Unprocessable JSON body", status_code=400)
        try:
            result: Response = await handler(request, body, auth is True)
        except Invalid as problem:
            return _invalid(problem)
        return result

    def _authenticate(self, request: Request) -> bool | None:
        """Return True for our agent, False for bad credentials, None for no credentials."""
        header = request.headers.get("authorization")
        if header is None:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return self.oauth.live(value)
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except ValueError:
            return False
        return decoded == f"{self.email}/token:{self.api_token}"

    # --- OAuth (https://developer.zendesk.com/api-reference/ticketing/oauth/grant_type_tokens/)

    async def _authorize(self, request: Request) -> Response:
        query = request.query_params
        redirect = query.get("redirect_uri", "")
        if query.get("client_id") != self.oauth.client_id or not redirect:
            return PlainTextResponse("Invalid OAuth client or redirect URI", status_code=400)
        if query.get("response_type") != "code":
            return PlainTextResponse("response_type must be code", status_code=400)
        return RedirectResponse(self.oauth.approve(redirect, query.get("state", "")), 302)

    async def _token_grant(self, request: Request, body: Any, authed: bool) -> Response:
        if self.oauth.delay:
            await self.stall(self.oauth.delay)
        if not self.oauth.client_ok(body.get("client_id"), body.get("client_secret")):
            return _error(401, "invalid_client", error_description="Client authentication failed")
        grant_type = body.get("grant_type")
        if grant_type == "authorization_code":
            issued = self.oauth.exchange(body.get("code"), body.get("redirect_uri"))
        elif grant_type == "refresh_token":
            issued = self.oauth.refresh(body.get("refresh_token"))
        else:
            return _error(400, "unsupported_grant_type")
        if issued is None:
            return _error(
                400,
                "invalid_grant",
                error_description="The provided authorization grant is invalid, expired, or "
                "revoked",
            )
        return JSONResponse(
            {
                **issued,
                "token_type": "bearer",
                "scope": body.get("scope") or "read write",
                "refresh_token_expires_in": 30 * 24 * 3600,
            }
        )

    async def _me(self, request: Request, body: Any, authed: bool) -> Response:
        if not authed:  # /users/me is allowed anonymously: an anonymous end user, id null
            return JSONResponse(
                {"user": {"id": None, "name": "Anonymous user", "role": "end-user", "email": None}}
            )
        return JSONResponse({"user": self._user_json(self.agent)})

    async def _create_or_update_user(self, request: Request, body: Any, authed: bool) -> Response:
        if not authed:
            return _error(401, "Couldn't authenticate you")
        user = body.get("user")
        if not isinstance(user, dict):
            return PlainTextResponse("Missing user parameter", status_code=400)
        email, external_id = user.get("email"), user.get("external_id")
        if email is not None and not (isinstance(email, str) and EMAIL.match(email)):
            raise Invalid("email", f"Email: {email} is not properly formatted")
        if user.get("role", "end-user") not in ("end-user", "agent", "admin"):
            raise Invalid("role", "Role: is invalid")
        with self._lock:
            match = next(
                (
                    u
                    for u in self.users.values()
                    if (email and u["email"] == email.lower())
                    or (external_id and u["external_id"] == str(external_id).lower())
                ),
                None,
            )
            if match is None:
                if not str(user.get("name") or "").strip():
                    raise Invalid("name", "Name: cannot be blank", "BlankValue")
                created = self._add_user(user)
                return JSONResponse({"user": self._user_json(created)}, status_code=201)
            for key in ("name", "phone", "external_id"):
                if user.get(key):
                    match[key] = user[key] if key != "external_id" else str(user[key]).lower()
            return JSONResponse({"user": self._user_json(match)})

    async def _tickets(self, request: Request, body: Any, authed: bool) -> Response:
        if not authed:
            return _error(401, "Couldn't authenticate you")
        if request.method == "GET":
            wanted = request.query_params.get("external_id")
            with self._lock:
                found = [
                    self._ticket_json(t)
                    for t in self.tickets.values()
                    if wanted is None or t["external_id"] == wanted
                ]
            return JSONResponse(
                {"tickets": found, "next_page": None, "previous_page": None, "count": len(found)}
            )
        return await self._create_ticket(request, body)

    async def _create_ticket(self, request: Request, body: dict[str, Any]) -> Response:
        key = request.headers.get("idempotency-key")
        fingerprint = json.dumps(body, sort_keys=True)
        with self._lock:
            if key is not None and key in self.idempotency:
                seen, status, answer = self.idempotency[key]
                if seen != fingerprint:
                    return _error(
                        400,
                        "IdempotentRequestError",
                        "Idempotency-Key was already used with a different request payload",
                    )
                return JSONResponse(
                    answer, status_code=status, headers={"x-idempotency-lookup": "hit"}
                )
            ticket = self._store_ticket(body.get("ticket"))
            answer = {"ticket": self._ticket_json(ticket), "audit": {"id": next(self._ids)}}
            if key is not None:
                self.idempotency[key] = (fingerprint, 201, answer)
            stall = self._drops_left > 0
            self._drops_left -= stall
        if stall:
            await self.stall(self._drop_stall)
        headers = {"Location": self._ticket_json(ticket)["url"]}
        if key is not None:
            headers["x-idempotency-lookup"] = "miss"
        return JSONResponse(answer, status_code=201, headers=headers)

    def _store_ticket(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise Invalid("base", "Ticket: is missing", "BlankValue")
        comment = data.get("comment")
        if not isinstance(comment, dict) or not (comment.get("body") or comment.get("html_body")):
            raise Invalid("base", "Description: cannot be blank", "BlankValue")
        priority = data.get("priority")
        if priority is not None and priority not in PRIORITIES:
            raise Invalid("priority", f"Priority: {priority} is not a valid value")
        tags = data.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise Invalid("tags", "Tags: must be a list of strings")
        for field in ("group_id", "brand_id"):
            if data.get(field) is not None and not isinstance(data[field], int):
                raise Invalid(field, f"{field}: is invalid")
        custom = self._custom_metadata(data)
        requester_id = self._requester(data)
        submitter_id = data.get("submitter_id", self.agent["id"])
        author_id = comment.get("author_id", submitter_id)
        for field, user_id in (("submitter", submitter_id), ("author_id", author_id)):
            if user_id not in self.users:
                raise Invalid(field, f"{field}: is invalid")
        ticket_id = next(self._ids)
        ticket = {
            "id": ticket_id,
            "external_id": data.get("external_id"),
            "subject": data.get("subject") or "",
            "description": comment.get("body") or comment.get("html_body"),
            "status": "new",
            "priority": priority,
            "requester_id": requester_id,
            "submitter_id": submitter_id,
            "assignee_id": None,
            "group_id": data.get("group_id"),
            "brand_id": data.get("brand_id"),
            "tags": sorted(set(tags)),  # Zendesk stores tags as a set
            "created_at": _now(),
            "updated_at": _now(),
        }
        self.tickets[ticket_id] = ticket
        self.comments[ticket_id] = []
        self.audits[ticket_id] = []
        first = self._add_comment(
            ticket_id,
            author_id,
            comment.get("body"),
            comment.get("html_body"),
            comment.get("public", True),
        )
        self._add_audit(ticket_id, submitter_id, [first], custom)
        return ticket

    def _requester(self, data: dict[str, Any]) -> int:
        if "requester_id" in data:
            if data["requester_id"] not in self.users:
                raise Invalid("requester", "Requester: is invalid")
            return int(data["requester_id"])
        requester = data.get("requester")
        if isinstance(requester, dict):
            email = requester.get("email")
            if not (isinstance(email, str) and EMAIL.match(email)):
                raise Invalid("requester", f"Requester: Email {email} is not properly formatted")
            for user in self.users.values():
                if user["email"] == email.lower():
                    return int(user["id"])
            created = self._add_user({"name": requester.get("name") or email, "email": email})
            return int(created["id"])
        return int(self.agent["id"])  # no requester: the authenticated agent asks

    async def _ticket(self, request: Request, body: Any, authed: bool) -> Response:
        if not authed:
            return _error(401, "Couldn't authenticate you")
        ticket_id = int(request.path_params["ticket_id"])
        with self._lock:
            ticket = self.tickets.get(ticket_id)
            if ticket is None:
                return _error(404, "RecordNotFound", "Not found")
            if request.method == "GET":
                return JSONResponse({"ticket": self._ticket_json(ticket)})
            data = body.get("ticket")
            if not isinstance(data, dict):
                return PlainTextResponse("Missing ticket parameter", status_code=400)
            status = data.get("status")
            if status is not None and status not in STATUSES:
                raise Invalid("status", f"Status: {status} is not a valid value")
            custom = self._custom_metadata(data)
            comment = data.get("comment")
            added: list[dict[str, Any]] = []
            if comment is not None:
                if not isinstance(comment, dict) or not (
                    comment.get("body") or comment.get("html_body")
                ):
                    raise Invalid("comment", "Comment: cannot be blank", "BlankValue")
                author_id = comment.get("author_id", self.agent["id"])
                if author_id not in self.users:
                    raise Invalid("author_id", "Author: is invalid")
                added.append(
                    self._add_comment(
                        ticket_id,
                        author_id,
                        comment.get("body"),
                        comment.get("html_body"),
                        comment.get("public", True),
                    )
                )
            self._add_audit(ticket_id, self.agent["id"], added, custom)
            if status is not None:
                ticket["status"] = status
            ticket["updated_at"] = _now()
            return JSONResponse(
                {"ticket": self._ticket_json(ticket), "audit": {"id": next(self._ids)}}
            )

    async def _ticket_audits(self, request: Request, body: Any, authed: bool) -> Response:
        """The ticket's audits, oldest first: cursor pages when `page[size]` is asked for."""
        if not authed:
            return _error(401, "Couldn't authenticate you")
        ticket_id = int(request.path_params["ticket_id"])
        query = request.query_params
        with self._lock:
            if ticket_id not in self.tickets:
                return _error(404, "RecordNotFound", "Not found")
            audits = [dict(a) for a in self.audits[ticket_id]]
        if "page[size]" not in query and "page[after]" not in query:
            return JSONResponse(
                {"audits": audits, "next_page": None, "previous_page": None, "count": len(audits)}
            )
        try:
            size = min(100, int(query.get("page[size]", "100")))
            start = (
                int(base64.urlsafe_b64decode(query["page[after]"]))
                if ("page[after]" in query)
                else 0
            )
        except ValueError:
            return _error(400, "InvalidPaginationParameter", "page[after] is not a cursor")
        chunk = audits[start : start + size]
        more = start + size < len(audits)
        after = base64.urlsafe_b64encode(str(start + size).encode()).decode() if chunk else None
        path = f"{self.base_url}/api/v2/tickets/{ticket_id}/audits.json?page[size]={size}"
        return JSONResponse(
            {
                "audits": chunk,
                "meta": {"has_more": more, "after_cursor": after, "before_cursor": None},
                "links": {"next": f"{path}&page[after]={after}" if more else None, "prev": None},
            }
        )

    async def _groups(self, request: Request, body: Any, authed: bool) -> Response:
        return self._page(request, authed, "groups", self.groups)

    async def _brands(self, request: Request, body: Any, authed: bool) -> Response:
        return self._page(request, authed, "brands", self.brands)

    def _page(
        self, request: Request, authed: bool, key: str, items: list[dict[str, Any]]
    ) -> Response:
        """Answer one page of a list the way Zendesk's offset pagination does."""
        if not authed:
            return _error(401, "Couldn't authenticate you")
        try:
            page = int(request.query_params.get("page", "1"))
            per_page = min(100, int(request.query_params.get("per_page", "100")))
        except ValueError:
            return _error(400, "InvalidPaginationParameter", "page must be a number")
        with self._lock:
            chunk = [dict(i) for i in items[(page - 1) * per_page : page * per_page]]
            more = page * per_page < len(items)
        url = f"{self.base_url}/api/v2/{key}.json?page={{}}&per_page={per_page}"
        return JSONResponse(
            {
                key: chunk,
                "next_page": url.format(page + 1) if more else None,
                "previous_page": url.format(page - 1) if page > 1 else None,
                "count": len(items),
            }
        )

    # --- storage -----------------------------------------------------------------------

    def _add_user(self, data: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            user_id = next(self._ids)
            email = data.get("email")
            external_id = data.get("external_id")
            user = {
                "id": user_id,
                "name": data.get("name") or "",
                "email": email.lower() if email else None,
                "phone": data.get("phone"),
                "external_id": str(external_id).lower() if external_id else None,
                "role": data.get("role") or "end-user",
            }
            self.users[user_id] = user
            return user

    def _add_comment(
        self, ticket_id: int, author_id: int, body: str | None, html: str | None, public: bool
    ) -> dict[str, Any]:
        comment = {
            "id": next(self._ids),
            "type": "Comment",
            "author_id": author_id,
            "body": body if body is not None else re.sub(r"<[^>]+>", "", html or ""),
            "html_body": html if html is not None else f"<p>{body}</p>",
            "public": public,
            "created_at": _now(),
        }
        self.comments[ticket_id].append(comment)
        return comment

    def _add_audit(
        self,
        ticket_id: int,
        author_id: int,
        comments: list[dict[str, Any]],
        custom: dict[str, Any],
    ) -> None:
        """Record one create or update: its comment events, and the caller's metadata."""
        events = [
            {"id": c["id"], "type": "Comment", "body": c["body"], "public": c["public"]}
            | {"author_id": c["author_id"]}
            for c in comments
        ]
        self.audits[ticket_id].append(
            {
                "id": next(self._ids),
                "ticket_id": ticket_id,
                "author_id": author_id,
                "created_at": _now(),
                "metadata": {"system": {"client": "handoff-tests"}, "custom": custom},
                "events": events,
                "via": {"channel": "api"},
            }
        )

    @staticmethod
    def _custom_metadata(data: dict[str, Any]) -> dict[str, Any]:
        """The update's own metadata, checked before anything of the update is stored."""
        custom = data.get("metadata") or {}
        if not isinstance(custom, dict):
            raise Invalid("metadata", "Metadata: must be an object")
        if len(json.dumps(custom)) > 1024:  # Zendesk keeps up to 1 KB per audit
            raise Invalid("metadata", "Metadata: is too large")
        return custom

    def _user_json(self, user: dict[str, Any]) -> dict[str, Any]:
        return {**user, "url": f"{self.base_url}/api/v2/users/{user['id']}.json", "active": True}

    def _ticket_json(self, ticket: dict[str, Any]) -> dict[str, Any]:
        return {**ticket, "url": f"{self.base_url}/api/v2/tickets/{ticket['id']}.json"}
