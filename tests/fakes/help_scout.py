"""A faithful fake of Help Scout's Inbox API 2.0 and its webhooks, over real HTTP.

`FakeHelpScout` runs a Starlette app under uvicorn in a background thread on 127.0.0.1 and keeps
inboxes, customers, conversations and threads in memory. It implements what handoff calls:

- `POST /v2/oauth2/token` (client credentials, form or JSON; 401 `invalid_client`),
- `GET /v2/mailboxes` (HAL: `_embedded.mailboxes`, `page`),
- `GET /v2/conversations` (`mailbox`, `status` defaulting to active, `tag`, `sortOrder`),
  `POST /v2/conversations` (201, empty body, `Resource-ID` and `Location` headers),
- `GET /v2/conversations/{id}` and `/threads`, `POST /v2/conversations/{id}/customer`,
- `POST /v2/customers`,

with a Bearer token on every API call (401 otherwise) and Help Scout's error body:
`{"logRef","message","_embedded":{"errors":[{"path","message","rejectedValue","source"}]}}`.
Knobs: `rate_limit(n, retry_after)` (429 with `X-RateLimit-Retry-After`), `drop_next_create`
(the conversation is stored, then the answer stalls past the client's timeout),
`expire_tokens()` (every issued token now answers 401). Webhook helpers change the state and
return the v2 Conversation object Help Scout posts (`agent_reply`, `note`, `customer_reply`,
`status_changed`); `signed` and `forged` turn one into a body and headers.

References: https://developer.helpscout.com/mailbox-api/ and https://developer.helpscout.com/webhooks/.
Assumed, not documented: the token endpoint's error body, the 429 and 401 bodies, and that
the `tag` filter matches any of the listed tags.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import LoopbackServer, Received

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TYPES = {"email", "chat", "phone"}
STATUSES = {"active", "pending", "closed"}
LIST_STATUSES = {"active", "all", "closed", "open", "pending", "spam"}


class Invalid(Exception):
    """A 400 with Help Scout's validation errors."""

    def __init__(self, path: str, message: str, rejected: Any = None) -> None:
        super().__init__(message)
        self.path, self.message, self.rejected = path, message, rejected


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error(status: int, message: str, errors: list[dict[str, Any]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"logRef": str(uuid.uuid4()), "message": message}
    if errors:
        body["_embedded"] = {"errors": errors}
    body["_links"] = {
        "about": {"href": "http://developer.helpscout.net/mailbox-api/overview/errors"}
    }
    return JSONResponse(body, status_code=status)


def _invalid(problem: Invalid) -> JSONResponse:
    error: dict[str, Any] = {"path": problem.path, "message": problem.message, "source": "JSON"}
    if problem.rejected is not None:
        error["rejectedValue"] = problem.rejected
    return _error(400, "Bad request", [error])


class FakeHelpScout(LoopbackServer):
    """A fake Help Scout account on 127.0.0.1; use it as a context manager."""

    def __init__(
        self, *, app_id: str = "hs-app-id-0123", app_secret: str = "hs-app-secret-abcdef"
    ) -> None:
        self.app_id = app_id
        self.app_secret = app_secret
        self.token_ttl = 172_800
        self.tokens: dict[str, float] = {}  # token -> expiry (monotonic)
        self.requests: list[Received] = []
        self.mailboxes: dict[int, dict[str, Any]] = {}
        self.customers: dict[int, dict[str, Any]] = {}
        self.conversations: dict[int, dict[str, Any]] = {}
        self.threads: dict[int, list[dict[str, Any]]] = {}
        self._ids = iter(range(5001, 10**9))
        self._numbers = iter(range(101, 10**9))
        self._rate_limited = 0
        self._retry_after = "1"
        self._drop_next_create: float | None = None
        self._lock = threading.RLock()
        self.user = {"id": 77, "first": "Dana", "last": "Scully", "email": "dana@acme.test"}
        self.mailbox = self.add_mailbox("Support", "support@acme.test")
        routes = [
            Route("/v2/oauth2/token", self._wrap(self._token, auth=False), methods=["POST"]),
            Route("/v2/mailboxes", self._wrap(self._mailboxes), methods=["GET"]),
            Route("/v2/conversations", self._wrap(self._conversations), methods=["GET", "POST"]),
            Route("/v2/conversations/{cid:int}", self._wrap(self._conversation), methods=["GET"]),
            Route(
                "/v2/conversations/{cid:int}/threads",
                self._wrap(self._list_threads),
                methods=["GET"],
            ),
            Route(
                "/v2/conversations/{cid:int}/customer",
                self._wrap(self._customer_thread),
                methods=["POST"],
            ),
            Route("/v2/customers", self._wrap(self._create_customer), methods=["POST"]),
        ]
        super().__init__(Starlette(routes=routes), name="Help Scout")

    # --- knobs -------------------------------------------------------------------------

    def rate_limit(self, requests: int, retry_after: int = 1) -> None:
        """Answer the next `requests` API requests with 429 and `X-RateLimit-Retry-After`."""
        with self._lock:
            self._rate_limited, self._retry_after = requests, str(retry_after)

    def drop_next_create(self, stall_seconds: float = 5.0) -> None:
        """Store the next created conversation, then stall its answer."""
        with self._lock:
            self._drop_next_create = stall_seconds

    def expire_tokens(self) -> None:
        """Make every issued token stale: the next API call with one answers 401."""
        with self._lock:
            self.tokens.clear()

    def add_mailbox(self, name: str, email: str) -> dict[str, Any]:
        with self._lock:
            box_id = next(self._ids)
            box: dict[str, Any] = {"id": box_id, "name": name, "slug": uuid.uuid4().hex[:16]}
            box |= {"email": email, "createdAt": _now(), "updatedAt": _now()}
            self.mailboxes[box_id] = box
            return box

    def requests_to(self, method: str, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    def conversations_tagged(self, tag: str) -> list[dict[str, Any]]:
        with self._lock:
            return [c for c in self.conversations.values() if tag in c["tags"]]

    # --- webhooks (https://developer.helpscout.com/webhooks/) ---------------------------

    def agent_reply(
        self, cid: int | str, text: str, *, status: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Add an agent's reply thread (optionally changing status); return its event."""
        with self._lock:
            self._add_thread(int(cid), "reply", text, self._user_ref())
            if status is not None:
                self._set_status(int(cid), status)
        return "convo.agent.reply.created", self._conversation_json(int(cid), embed=True)

    def note(self, cid: int | str, text: str) -> tuple[str, dict[str, Any]]:
        """Add an internal note by the agent; return its event."""
        with self._lock:
            self._add_thread(int(cid), "note", text, self._user_ref())
        return "convo.note.created", self._conversation_json(int(cid), embed=True)

    def customer_reply(self, cid: int | str, text: str) -> tuple[str, dict[str, Any]]:
        """Add a customer thread (our own follow-up echo); return its event."""
        with self._lock:
            customer = self.customers[self.conversations[int(cid)]["customerId"]]
            self._add_thread(int(cid), "customer", text, self._customer_ref(customer))
        return "convo.customer.reply.created", self._conversation_json(int(cid), embed=True)

    def status_changed(self, cid: int | str, status: str = "closed") -> tuple[str, dict[str, Any]]:
        """Change the conversation's status; return its convo.status event."""
        with self._lock:
            self._set_status(int(cid), status)
        return "convo.status", self._conversation_json(int(cid), embed=True)

    @staticmethod
    def signed(event: tuple[str, dict[str, Any]], secret: str) -> tuple[bytes, dict[str, str]]:
        """Serialize an event as Help Scout posts it, signed base64(HMAC-SHA1(secret, body))."""
        name, payload = event
        body = json.dumps(payload).encode()
        digest = hmac.new(secret.encode(), body, hashlib.sha1).digest()
        return body, {
            "content-type": "application/json",
            "x-helpscout-event": name,
            "x-helpscout-signature": base64.b64encode(digest).decode(),
        }

    @classmethod
    def forged(cls, event: tuple[str, dict[str, Any]]) -> tuple[bytes, dict[str, str]]:
        """Sign an event with a key that is not the webhook's."""
        return cls.signed(event, secrets.token_urlsafe(16))

    # --- the API -----------------------------------------------------------------------

    def _wrap(self, handler: Any, *, auth: bool = True) -> Any:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            body: Any = None
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            received = Received.of(request, body)
            with self._lock:
                self.requests.append(received)
            response = await self._answer(request, handler, body, auth)
            received.status = response.status_code
            return response

        return endpoint

    async def _answer(self, request: Request, handler: Any, body: Any, auth: bool) -> Response:
        with self._lock:
            if auth and self._rate_limited > 0:
                self._rate_limited -= 1
                response = _error(429, "Too many requests")
                response.headers["X-RateLimit-Retry-After"] = self._retry_after
                response.headers["X-RateLimit-Remaining-Minute"] = "0"
                return response
            if auth and not self._authorized(request):
                return _error(401, "Unauthorized")
        if request.method == "POST" and auth and not isinstance(body, dict):
            return _error(400, "Bad request", [{"path": "", "message": "Malformed JSON"}])
        try:
            result: Response = await handler(request, body)
        except Invalid as problem:
            return _invalid(problem)
        return result

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        expiry = self.tokens.get(token)
        return scheme.lower() == "bearer" and expiry is not None and time.monotonic() < expiry

    async def _token(self, request: Request, body: Any) -> Response:
        form = body if isinstance(body, dict) else {}
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if (form.get("client_id"), form.get("client_secret")) != (self.app_id, self.app_secret):
            return JSONResponse(
                {"error": "invalid_client", "error_description": "Bad client credentials"},
                status_code=401,
            )
        token = secrets.token_hex(16)
        with self._lock:
            self.tokens[token] = time.monotonic() + self.token_ttl
        return JSONResponse(
            {"token_type": "bearer", "access_token": token, "expires_in": self.token_ttl}
        )

    async def _mailboxes(self, request: Request, body: Any) -> Response:
        with self._lock:
            boxes = list(self.mailboxes.values())
        return JSONResponse(
            {
                "_embedded": {"mailboxes": boxes},
                "page": {"size": 50, "totalElements": len(boxes), "totalPages": 1, "number": 1},
            }
        )

    async def _conversations(self, request: Request, body: Any) -> Response:
        if request.method == "POST":
            return await self._create(body)
        query = request.query_params
        status = query.get("status", "active")
        if status not in LIST_STATUSES:
            raise Invalid("status", f"Expected one of these: {sorted(LIST_STATUSES)}", status)
        mailboxes = {int(m) for m in query.get("mailbox", "").split(",") if m}
        tags = {t.strip().lower() for t in query.get("tag", "").split(",") if t.strip()}
        with self._lock:
            found = [
                self._conversation_json(c["id"])
                for c in self.conversations.values()
                if (not mailboxes or c["mailboxId"] in mailboxes)
                and (status == "all" or c["status"] == status)
                and (not tags or tags & set(c["tags"]))
            ]
        found.sort(key=lambda c: c["id"], reverse=query.get("sortOrder", "desc") == "desc")
        return JSONResponse(
            {
                "_embedded": {"conversations": found},
                "page": {"size": 25, "totalElements": len(found), "totalPages": 1, "number": 1},
            }
        )

    async def _create(self, body: dict[str, Any]) -> Response:
        if not str(body.get("subject") or "").strip():
            raise Invalid("subject", "may not be empty")
        if body.get("mailboxId") not in self.mailboxes:
            raise Invalid("mailboxId", "Invalid identifier", body.get("mailboxId"))
        if body.get("type") not in TYPES:
            raise Invalid("type", f"Expected one of these: {sorted(TYPES)}", body.get("type"))
        if body.get("status") not in STATUSES:
            raise Invalid("status", f"Expected one of: {sorted(STATUSES)}", body.get("status"))
        threads = body.get("threads")
        if not isinstance(threads, list) or not threads:
            raise Invalid("threads", "may not be empty")
        if len(threads) > 100:
            return _error(412, "A conversation cannot have more than 100 threads")
        tags = body.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise Invalid("tags", "must be a list of strings", tags)
        with self._lock:
            customer = self._resolve_customer(body.get("customer"), "customer")
            for i, thread in enumerate(threads):
                if not str(thread.get("text") or "").strip():
                    raise Invalid(f"threads[{i}].text", "may not be empty")
                if thread.get("type") != "customer":
                    raise Invalid(f"threads[{i}].type", "unsupported here", thread.get("type"))
                self._resolve_customer(thread.get("customer"), f"threads[{i}].customer")
            cid = next(self._ids)
            self.conversations[cid] = {
                "id": cid,
                "number": next(self._numbers),
                "subject": body["subject"],
                "mailboxId": body["mailboxId"],
                "type": body["type"],
                "status": body["status"],
                "customerId": customer["id"],
                "tags": sorted({t.strip().lower() for t in tags}),
                "createdAt": _now(),
                "closedAt": None,
                "userUpdatedAt": _now(),
            }
            self.threads[cid] = []
            for thread in threads:
                self._add_thread(cid, "customer", thread["text"], self._customer_ref(customer))
            stall, self._drop_next_create = self._drop_next_create, None
        if stall:
            await self.stall(stall)
        return self._created(f"/v2/conversations/{cid}", cid)

    async def _conversation(self, request: Request, body: Any) -> Response:
        cid = int(request.path_params["cid"])
        with self._lock:
            if cid not in self.conversations:
                return _error(404, "Resource not found")
            embed = request.query_params.get("embed") == "threads"
            return JSONResponse(self._conversation_json(cid, embed=embed))

    async def _list_threads(self, request: Request, body: Any) -> Response:
        cid = int(request.path_params["cid"])
        with self._lock:
            if cid not in self.conversations:
                return _error(404, "Resource not found")
            threads = list(reversed(self.threads[cid]))  # newest first
        return JSONResponse({"_embedded": {"threads": threads}, "page": {"totalPages": 1}})

    async def _customer_thread(self, request: Request, body: dict[str, Any]) -> Response:
        cid = int(request.path_params["cid"])
        with self._lock:
            if cid not in self.conversations:
                return _error(404, "Resource not found")
            if not str(body.get("text") or "").strip():
                raise Invalid("text", "may not be empty")
            customer = self._resolve_customer(body.get("customer"), "customer")
            thread = self._add_thread(cid, "customer", body["text"], self._customer_ref(customer))
            if not body.get("imported"):
                self.conversations[cid]["status"] = "active"  # a customer thread reopens it
        return self._created(f"/v2/conversations/{cid}/threads/{thread['id']}", thread["id"])

    async def _create_customer(self, request: Request, body: dict[str, Any]) -> Response:
        if not str(body.get("firstName") or "").strip():
            raise Invalid("firstName", "may not be empty")
        with self._lock:
            customer = self._add_customer(body)
        return self._created(f"/v2/customers/{customer['id']}", customer["id"])

    # --- storage -----------------------------------------------------------------------

    def _created(self, path: str, resource_id: int) -> Response:
        headers = {"Resource-ID": str(resource_id), "Location": self.base_url + path}
        return Response(status_code=201, headers=headers)

    def _resolve_customer(self, ref: Any, path: str) -> dict[str, Any]:
        if not isinstance(ref, dict):
            raise Invalid(path, "may not be null")
        if ref.get("id") is not None:
            if ref["id"] not in self.customers:
                raise Invalid(f"{path}.id", "Invalid identifier", ref["id"])
            return self.customers[ref["id"]]
        email = ref.get("email")
        if not (isinstance(email, str) and EMAIL.match(email)):
            raise Invalid(f"{path}.email", "must be a well-formed email address", email)
        for customer in self.customers.values():
            if customer["email"] == email.lower():
                return customer  # matched: the optional fields are ignored
        return self._add_customer(ref)

    def _add_customer(self, data: dict[str, Any]) -> dict[str, Any]:
        email = data.get("email")
        phones = [p.get("value") for p in data.get("phones") or [] if isinstance(p, dict)]
        customer_id = next(self._ids)
        customer: dict[str, Any] = {
            "id": customer_id,
            "firstName": data.get("firstName"),
            "lastName": data.get("lastName"),
            "email": email.lower() if isinstance(email, str) else None,
            "phones": ([data["phone"]] if data.get("phone") else []) + phones,
        }
        self.customers[customer_id] = customer
        return customer

    def _add_thread(self, cid: int, kind: str, text: str, by: dict[str, Any]) -> dict[str, Any]:
        thread = {
            "id": next(self._ids),
            "type": kind,
            "status": "active",
            "state": "published",
            "body": text,
            "source": {"type": "api", "via": by["type"]},
            "createdBy": by,
            "createdAt": _now(),
            "_embedded": {"attachments": []},
        }
        if by["type"] == "customer":
            thread["customer"] = {k: v for k, v in by.items() if k != "type"}
        self.threads[cid].append(thread)
        self.conversations[cid]["userUpdatedAt"] = _now()
        return thread

    def _set_status(self, cid: int, status: str) -> None:
        conversation = self.conversations[cid]
        conversation["status"] = status
        conversation["closedAt"] = _now() if status == "closed" else None

    def _user_ref(self) -> dict[str, Any]:
        return {**self.user, "type": "user"}

    @staticmethod
    def _customer_ref(customer: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": customer["id"],
            "type": "customer",
            "first": customer["firstName"],
            "last": customer["lastName"],
            "email": customer["email"],
        }

    def _conversation_json(self, cid: int, *, embed: bool = False) -> dict[str, Any]:
        with self._lock:
            c = self.conversations[cid]
            customer = self.customers[c["customerId"]]
            data: dict[str, Any] = {
                "id": cid,
                "number": c["number"],
                "threads": len(self.threads[cid]),
                "type": c["type"],
                "folderId": 1,
                "status": c["status"],
                "state": "published",
                "subject": c["subject"],
                "preview": re.sub(r"<[^>]+>", "", self.threads[cid][-1]["body"])[:185],
                "mailboxId": c["mailboxId"],
                "createdBy": self._customer_ref(customer),
                "createdAt": c["createdAt"],
                "closedAt": c["closedAt"],
                "userUpdatedAt": c["userUpdatedAt"],
                "source": {"type": "api", "via": "user"},
                "tags": [
                    {"id": abs(hash(t)) % 10**6, "color": "#929499", "tag": t} for t in c["tags"]
                ],
                "primaryCustomer": self._customer_ref(customer),
                "customFields": [],
                "_links": {
                    "self": {"href": f"{self.base_url}/v2/conversations/{cid}"},
                    "web": {
                        "href": f"https://secure.helpscout.net/conversation/{cid}/{c['number']}"
                    },
                },
            }
            if embed:
                data["_embedded"] = {"threads": list(reversed(self.threads[cid]))}
            return data
