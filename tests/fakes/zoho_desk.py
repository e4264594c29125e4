"""A faithful fake of Zoho Desk (API v1), its accounts server and its webhooks, over real HTTP.

`FakeZohoDesk` runs a Starlette app under uvicorn in a background thread on 127.0.0.1 and keeps
departments, contacts, tickets, threads and comments in memory. One server plays both hosts:

- accounts: `POST /oauth/v2/token?grant_type=refresh_token&…` → `{"access_token",
  "expires_in": 3600, "api_domain", "token_type": "Bearer"}`; a bad refresh token or client
  answers **200** `{"error": "invalid_code"}`, as Zoho does;
- desk: `GET /api/v1/departments`, `GET /api/v1/contacts/search?email=` (204 when nothing
  matches), `POST /api/v1/contacts`, `GET /api/v1/tickets/search?customField1=apiName:value`,
  `POST /api/v1/tickets` (200, with `webUrl`), `GET /api/v1/tickets/{id}`,
  `GET /api/v1/tickets/{id}/threads/{thread}`, `POST /api/v1/tickets/{id}/comments`, and
  `GET /.well-known/jwks.json`.

Every desk call needs `Authorization: Zoho-oauthtoken <live token>` (401 `INVALID_OAUTH`) and the
`orgId` header (400 / `OAUTH_ORG_MISMATCH`). Errors are `{"errorCode","message"}`, validation
adds `errors[{fieldName,errorType,errorMessage}]` (422). Knobs: `rate_limit(n, retry_after)`,
`drop_next_create(seconds)`, `expire_tokens()`. Webhook helpers build deliveries (a JSON array)
with an RS256 `X-ZDesk-JWT` from the fake's own key: `agent_reply`, `private_thread`,
`customer_thread`, `closed`, then `signed` (or `signed(..., key=other)` for forgeries).

Assumed, not documented: the 429 body, 204 for an empty search, and the search parameter
`customField1=apiName:value`.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import LoopbackServer

PRIORITIES = {"Low", "Medium", "High"}
CHANNELS = {"Email", "Phone", "Web", "Chat", "Forums", "Twitter", "Facebook"}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"errorCode": code, "message": message, **extra}, status_code=status)


def _invalid(field: str, kind: str, message: str) -> JSONResponse:
    errors = [{"fieldName": f"/{field}", "errorType": kind, "errorMessage": message}]
    return _error(422, "INVALID_DATA", "An invalid value is given in the request", errors=errors)


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class FakeZohoDesk(LoopbackServer):
    """A fake Zoho Desk org on 127.0.0.1; use it as a context manager."""

    def __init__(self, *, org_id: str = "60001234567", webhook_id: str = "9000000012001") -> None:
        self.org_id, self.webhook_id = org_id, webhook_id
        self.client_id, self.client_secret = "1000.CLIENTID", "client-secret-xyz"
        self.refresh_token = "1000.refresh.abc123"
        self.department_id = "4000000007001"
        self.departments = [
            {"id": self.department_id, "name": "Support", "isEnabled": True},
            {"id": "4000000007002", "name": "Billing", "isEnabled": True},
        ]
        self.requests: list[dict[str, Any]] = []
        self.contacts: dict[str, dict[str, Any]] = {}
        self.tickets: dict[str, dict[str, Any]] = {}
        self.threads: dict[str, dict[str, Any]] = {}
        self.comments: dict[str, list[dict[str, Any]]] = {}
        self.tokens: set[str] = set()
        self.token_grants = 0
        self.key, self.kid = new_key(), "zdesk-key-1"
        self._ids = itertools.count(1_892_000_000_100_001)
        self._rate_limited = 0
        self._retry_after: int | None = None
        self._stall_next: float | None = None
        self._lock = threading.RLock()
        routes = [
            Route("/oauth/v2/token", self._wrap(self._token), methods=["POST"]),
            Route("/.well-known/jwks.json", self._wrap(self._jwks), methods=["GET"]),
            Route("/api/v1/departments", self._desk(self._departments), methods=["GET"]),
            Route("/api/v1/contacts/search", self._desk(self._search_contacts), methods=["GET"]),
            Route("/api/v1/contacts", self._desk(self._create_contact), methods=["POST"]),
            Route("/api/v1/tickets/search", self._desk(self._search_tickets), methods=["GET"]),
            Route("/api/v1/tickets", self._desk(self._create_ticket), methods=["POST"]),
            Route("/api/v1/tickets/{tid}", self._desk(self._ticket), methods=["GET"]),
            Route(
                "/api/v1/tickets/{tid}/threads/{hid}", self._desk(self._get_thread), methods=["GET"]
            ),
            Route("/api/v1/tickets/{tid}/comments", self._desk(self._comment), methods=["POST"]),
        ]
        super().__init__(Starlette(routes=routes), name="Zoho Desk")

    # --- knobs -------------------------------------------------------------------------

    def rate_limit(self, requests: int, retry_after: int | None = None) -> None:
        """Answer the next desk calls with 429 (Retry-After only when given)."""
        with self._lock:
            self._rate_limited, self._retry_after = requests, retry_after

    def drop_next_create(self, stall_seconds: float = 5.0) -> None:
        """Store the next ticket, then stall its answer past the client's timeout."""
        self._stall_next = stall_seconds

    def expire_tokens(self) -> None:
        """Revoke every access token, as if they had expired early."""
        with self._lock:
            self.tokens.clear()

    def requests_to(self, method: str, path: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if r["method"] == method and r["path"] == path]

    # --- webhooks ----------------------------------------------------------------------

    def agent_reply(self, ticket_id: str, html: str, name: str = "Dana") -> dict[str, Any]:
        return self._add_thread(ticket_id, html, "out", "public", {"type": "AGENT", "name": name})

    def private_thread(self, ticket_id: str, html: str) -> dict[str, Any]:
        return self._add_thread(ticket_id, html, "out", "private", {"type": "AGENT", "name": "X"})

    def customer_thread(self, ticket_id: str, html: str) -> dict[str, Any]:
        author = {"type": "END_USER", "name": "Ann Lee"}
        return self._add_thread(ticket_id, html, "in", "public", author)

    def closed(self, ticket_id: str, status: str = "Closed") -> dict[str, Any]:
        """Change the ticket's status; return its Ticket_Update delivery (with prevState)."""
        with self._lock:
            ticket = self.tickets[ticket_id]
            previous = dict(ticket)
            ticket["status"] = status
            ticket["statusType"] = "Closed" if status == "Closed" else "Open"
            ticket["closedTime"] = _now() if status == "Closed" else None
            ticket["modifiedTime"] = _now()
        return self._delivery("Ticket_Update", dict(ticket), previous)

    def signed(
        self,
        deliveries: list[dict[str, Any]],
        *,
        key: rsa.RSAPrivateKey | None = None,
        exp_in: float = 300,
        **claims: Any,
    ) -> tuple[bytes, dict[str, str]]:
        """Serialize deliveries and add an RS256 X-ZDesk-JWT as Zoho does."""
        now = int(time.time())
        head = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        body_claims = {
            "iss": f"orgId:{self.org_id}",
            "aud": f"webhookId:{self.webhook_id}",
            "iat": now,
            "exp": int(now + exp_in),
            **claims,
        }
        signing = f"{_b64(json.dumps(head).encode())}.{_b64(json.dumps(body_claims).encode())}"
        signature = (key or self.key).sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
        token = f"{signing}.{_b64(signature)}"
        return json.dumps(deliveries).encode(), {
            "content-type": "application/json",
            "x-zdesk-jwt": token,
        }

    def _add_thread(
        self, ticket_id: str, html: str, direction: str, visibility: str, author: dict[str, Any]
    ) -> dict[str, Any]:
        with self._lock:
            thread: dict[str, Any] = {
                "id": str(next(self._ids)),
                "ticketId": ticket_id,
                "direction": direction,
                "visibility": visibility,
                "status": "SUCCESS",
                "channel": "EMAIL",
                "contentType": "html",
                "content": html,
                "summary": html[:100],
                "author": author,
                "createdTime": _now(),
            }
            self.threads[thread["id"]] = thread
        return self._delivery("Ticket_Thread_Add", json.loads(json.dumps(thread)), None)

    def _delivery(self, kind: str, payload: dict[str, Any], prev: Any) -> dict[str, Any]:
        event = {
            "eventType": kind,
            "orgId": self.org_id,
            "eventTime": str(int(time.time() * 1000)),
            "payload": payload,
        }
        if prev is not None:
            event["prevState"] = prev
        return event

    # --- accounts ----------------------------------------------------------------------

    def _wrap(self, handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            record = {
                "method": request.method,
                "path": request.url.path,
                "query": dict(request.query_params),
                "headers": dict(request.headers),
                "body": body,
            }
            with self._lock:
                self.requests.append(record)
            response: Response = await handler(request, body)
            record["status"] = response.status_code
            return response

        return endpoint

    async def _token(self, request: Request, body: Any) -> Response:
        q = request.query_params
        if q.get("grant_type") != "refresh_token":
            return JSONResponse({"error": "unsupported_grant_type"})
        if (q.get("client_id"), q.get("client_secret")) != (self.client_id, self.client_secret):
            return JSONResponse({"error": "invalid_client"})
        if q.get("refresh_token") != self.refresh_token:
            return JSONResponse({"error": "invalid_code"})  # Zoho: HTTP 200 with an error
        with self._lock:
            token = f"1000.{next(self._ids):x}.access"
            self.tokens.add(token)
            self.token_grants += 1
        return JSONResponse(
            {
                "access_token": token,
                "expires_in": 3600,
                "api_domain": "https://www.zohoapis.com",
                "token_type": "Bearer",
            }
        )

    async def _jwks(self, request: Request, body: Any) -> Response:
        numbers = self.key.public_key().public_numbers()
        jwk = {
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "n": _b64(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": _b64(numbers.e.to_bytes(3, "big")),
        }
        return JSONResponse({"keys": [jwk]})

    # --- desk --------------------------------------------------------------------------

    def _desk(self, handler: Any) -> Any:
        async def guarded(request: Request, body: Any) -> Response:
            with self._lock:
                if self._rate_limited > 0:
                    self._rate_limited -= 1
                    response = _error(
                        429, "TOO_MANY_REQUESTS", "You have exceeded the concurrency limit."
                    )
                    if self._retry_after is not None:
                        response.headers["Retry-After"] = str(self._retry_after)
                    return response
                scheme, _, token = request.headers.get("authorization", "").partition(" ")
                if scheme != "Zoho-oauthtoken" or token not in self.tokens:
                    return _error(401, "INVALID_OAUTH", "The OAuth Token you provided is invalid.")
            org = request.headers.get("orgid")
            if org is None:
                return _error(400, "BAD_REQUEST", "orgId is missing in the request header")
            if org != self.org_id:
                return _error(403, "OAUTH_ORG_MISMATCH", "The OAuth token is for another org.")
            if request.method == "POST" and not isinstance(body, dict):
                return _error(400, "BAD_REQUEST", "The request body is not valid JSON")
            result: Response = await handler(request, body)
            return result

        return self._wrap(guarded)

    async def _departments(self, request: Request, body: Any) -> Response:
        enabled = request.query_params.get("isEnabled")
        wanted = [
            d
            for d in self.departments
            if enabled is None or str(d.get("isEnabled", True)).lower() == enabled.lower()
        ]
        return JSONResponse({"data": wanted})

    async def _search_contacts(self, request: Request, body: Any) -> Response:
        email = (request.query_params.get("email") or "").lower()
        with self._lock:
            found = [c for c in self.contacts.values() if email and c.get("email") == email]
        return JSONResponse({"data": found, "count": len(found)}) if found else Response(b"", 204)

    async def _create_contact(self, request: Request, body: Any) -> Response:
        if not str(body.get("lastName") or "").strip():
            return _invalid("lastName", "missing", "lastName is required")
        email = body.get("email")
        if email is not None and ("@" not in email or "." not in email.split("@")[-1]):
            return _invalid("email", "invalid", f"{email} is not a valid email")
        with self._lock:
            contact = {
                "id": str(next(self._ids)),
                "firstName": body.get("firstName"),
                "lastName": body["lastName"],
                "email": email.lower() if email else None,
                "phone": body.get("phone"),
            }
            self.contacts[contact["id"]] = contact
        return JSONResponse(contact)

    async def _search_tickets(self, request: Request, body: Any) -> Response:
        field, _, value = (request.query_params.get("customField1") or "").partition(":")
        with self._lock:
            found = [t for t in self.tickets.values() if field and t["cf"].get(field) == value]
        return JSONResponse({"data": found, "count": len(found)}) if found else Response(b"", 204)

    async def _create_ticket(self, request: Request, body: Any) -> Response:
        for field in ("subject", "departmentId"):
            if not body.get(field):
                return _invalid(field, "missing", f"{field} is required")
        if body["departmentId"] not in {d["id"] for d in self.departments}:
            return _invalid("departmentId", "invalid", "departmentId is invalid")
        if body.get("contactId") not in self.contacts:
            return _invalid("contactId", "invalid", "contactId is invalid")
        if body.get("priority") not in (None, *PRIORITIES):
            return _invalid("priority", "invalid", f"{body['priority']} is not a valid priority")
        if body.get("channel") not in (None, *CHANNELS):
            return _invalid("channel", "invalid", f"{body['channel']} is not a valid channel")
        if len(body.get("description") or "") > 65_535:
            return _invalid("description", "invalid", "description exceeds 65535 characters")
        with self._lock:
            tid = str(next(self._ids))
            ticket = {
                "id": tid,
                "ticketNumber": str(100 + len(self.tickets)),
                "subject": body["subject"],
                "description": body.get("description"),
                "departmentId": body["departmentId"],
                "contactId": body["contactId"],
                "email": body.get("email"),
                "phone": body.get("phone"),
                "priority": body.get("priority"),
                "channel": body.get("channel") or "Web",
                "status": "Open",
                "statusType": "Open",
                "cf": dict(body.get("cf") or {}),
                "createdTime": _now(),
                "modifiedTime": _now(),
                "closedTime": None,
                "webUrl": f"https://desk.zoho.com/support/acme/ShowHomePage.do#Cases/dv/{tid}",
            }
            self.tickets[tid], self.comments[tid] = ticket, []
            stall, self._stall_next = self._stall_next, None
        if stall:
            await self.stall(stall)
        return JSONResponse(ticket)  # 200, not 201

    async def _ticket(self, request: Request, body: Any) -> Response:
        ticket = self.tickets.get(request.path_params["tid"])
        if ticket is None:
            return _error(404, "URL_NOT_FOUND", "The URL you requested could not be found")
        return JSONResponse(ticket)

    async def _get_thread(self, request: Request, body: Any) -> Response:
        thread = self.threads.get(request.path_params["hid"])
        if thread is None or thread["ticketId"] != request.path_params["tid"]:
            return _error(404, "URL_NOT_FOUND", "The URL you requested could not be found")
        return JSONResponse(thread)

    async def _comment(self, request: Request, body: Any) -> Response:
        tid = request.path_params["tid"]
        if tid not in self.tickets:
            return _error(404, "URL_NOT_FOUND", "The URL you requested could not be found")
        if not str(body.get("content") or "").strip():
            return _invalid("content", "missing", "content is required")
        if len(body["content"]) > 32_000:
            return _invalid("content", "invalid", "content exceeds 32000 characters")
        comment = {
            "id": str(next(self._ids)),
            "isPublic": body.get("isPublic", False),
            "contentType": body.get("contentType", "html"),
            "content": body["content"],
            "commenter": {"type": "AGENT", "name": "API user"},
            "commentedTime": _now(),
        }
        with self._lock:
            self.comments[tid].append(comment)
        return JSONResponse(comment)
