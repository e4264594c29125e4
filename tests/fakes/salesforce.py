"""A faithful fake of a Salesforce org's OAuth and REST API, over real HTTP.

`FakeSalesforce` runs a Starlette app under uvicorn in a background thread on 127.0.0.1 and keeps
cases and case comments in memory. It implements what handoff calls:

- `POST /services/oauth2/token` with `grant_type=client_credentials` (400 `invalid_client` for a
  wrong key or secret) or the JWT bearer grant (an RS256 assertion checked against the
  certificate's key in `jwt_key`: iss the consumer key, sub a pre-authorized `username`, aud
  the login URL, exp within 3 minutes; 400 `invalid_grant` otherwise), 400
  `unsupported_grant_type` for any other grant,
- `GET /services/data/vNN.0/limits` and `/sobjects/Case/describe`,
- `GET` and `PATCH /sobjects/Case/{ExternalIdField}/{value}` (upsert: 201 `created: true`; on a
  match 200 `created: false` from v46.0, an empty 204 before; 404 NOT_FOUND),
- `GET /sobjects/Case/{id}`, `POST /sobjects/CaseComment`,

answering Salesforce's error arrays `[{"message", "errorCode", "fields"}]`: 401
INVALID_SESSION_ID, 400 INVALID_FIELD / INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST /
STRING_TOO_LONG / INVALID_CROSS_REFERENCE_KEY, 403 REQUEST_LIMIT_EXCEEDED and 403
INSUFFICIENT_ACCESS_OR_READONLY. Knobs: `limit_requests(n)` or `limit_requests_for(seconds)`
(the allocation is spent for a while), `deny_access(n)` (the integration user may not write),
`drop_next_upsert(seconds)` (the case is stored, then the answer stalls past
the client's timeout), `miss_next_lookup()` (a case created by a racing request), and
`expire_tokens()`. Helpers play the admin's Flows: `agent_comment`, `customer_comment`,
`close_case`, then `flow_request` for the body and `X-Handoff-Token` header::

    with FakeSalesforce() as sf:
        creds = Credentials(instance_url="https://acme.my.salesforce.com",
                            client_id=sf.client_id, client_secret=sf.client_secret,
                            base_url=sf.base_url)
        body, headers = sf.flow_request(sf.agent_comment(case_id, "Hi!"), token)

Reference: https://developer.salesforce.com/docs/platform/api-rest/guide/dome-upsert.html,
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm and
the client credentials flow in Salesforce Help. Assumed, not documented: the exact messages of
INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST and STRING_TOO_LONG, and the describe fields beyond
`name`, `externalId`, `unique`, `restrictedPicklist` and `picklistValues`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import secrets
import threading
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import LoopbackServer, Received

ORG_ID = "00D5e000000AbCdEAK"
USER_ID = "0055e000001IntGAAS"
EXTERNAL_ID_FIELD = "Handoff_Conversation_Id__c"
CASE_FIELDS = {
    "Subject": 255,
    "Description": 32_000,
    "Origin": 255,
    "Priority": 255,
    "Status": 255,
    "SuppliedName": 80,
    "SuppliedEmail": 80,
    "SuppliedPhone": 40,
    EXTERNAL_ID_FIELD: 255,
}
PICKLISTS = {
    "Origin": ["Phone", "Email", "Web", "Chat"],
    "Priority": ["High", "Medium", "Low"],
    "Status": ["New", "Working", "Escalated", "Closed"],
}


class SalesforceError(Exception):
    """An error answered as Salesforce's `[{"message", "errorCode", "fields"}]`."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or []


def id18(record_id: str) -> str:
    """Append Salesforce's case-insensitivity suffix to a 15-character id."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
    suffix = ""
    for start in (0, 5, 10):
        chunk = record_id[start : start + 5]
        suffix += alphabet[sum(1 << i for i, c in enumerate(chunk) if "A" <= c <= "Z")]
    return record_id + suffix


def _oauth_error(error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=400)


def _errors(error: SalesforceError) -> JSONResponse:
    body = [{"message": error.message, "errorCode": error.code, "fields": error.fields}]
    return JSONResponse(body, status_code=error.status)


JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class FakeSalesforce(LoopbackServer):
    """A fake Salesforce org on 127.0.0.1; use it as a context manager."""

    def __init__(
        self,
        *,
        client_id: str = "3MVG9fake.consumer.key",
        client_secret: str = "fake-consumer-secret-0123456789",
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.username = "handoff.integration@acme.test"  # pre-authorized for the app
        self.audience = "https://login.salesforce.com"
        self.jwt_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.jwt_key_pem = self.jwt_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self.requests: list[Received] = []
        self.cases: dict[str, dict[str, Any]] = {}
        self.comments: dict[str, dict[str, Any]] = {}
        self.tokens: set[str] = set()
        self.restricted = {"Origin": False, "Priority": True, "Status": False}
        # What describe shows besides PICKLISTS: labels an admin renamed (the API value
        # stays), and retired values that are listed with `active: false`.
        self.labels: dict[str, str] = {"Chat": "Live chat"}
        self.inactive: dict[str, list[str]] = {"Origin": ["Fax"]}
        self._serial = iter(range(1, 10**9))
        self._limited = 0
        self._limited_until = 0.0  # time.monotonic() until which every call is refused
        self._denied = 0
        self._drop_next_upsert: float | None = None
        self._miss_next_lookup = False
        self._lock = threading.RLock()
        data = "/services/data/{version:str}"
        routes = [
            Route("/services/oauth2/token", self._wrap(self._token), methods=["POST"]),
            Route(data + "/limits", self._api(self._limits), methods=["GET"]),
            Route(data + "/sobjects/Case/describe", self._api(self._describe), methods=["GET"]),
            Route(data + "/sobjects/CaseComment", self._api(self._comment), methods=["POST"]),
            Route(data + "/sobjects/Case/{case_id:str}", self._api(self._case), methods=["GET"]),
            Route(
                data + "/sobjects/Case/{field:str}/{value:str}",
                self._api(self._by_external_id),
                methods=["GET", "PATCH"],
            ),
        ]
        super().__init__(Starlette(routes=routes), name="Salesforce")

    # --- knobs -------------------------------------------------------------------------

    def limit_requests(self, requests: int) -> None:
        """Answer the next `requests` API calls with 403 REQUEST_LIMIT_EXCEEDED."""
        with self._lock:
            self._limited = requests

    def limit_requests_for(self, seconds: float) -> None:
        """Answer every API call of the next `seconds` with 403 REQUEST_LIMIT_EXCEEDED."""
        with self._lock:
            self._limited_until = time.monotonic() + seconds

    def deny_access(self, requests: int) -> None:
        """Answer the next `requests` API calls with 403 INSUFFICIENT_ACCESS_OR_READONLY."""
        with self._lock:
            self._denied = requests

    def drop_next_upsert(self, stall_seconds: float = 5.0) -> None:
        """Store the next upserted case, then stall its answer (a timeout that reached us)."""
        with self._lock:
            self._drop_next_upsert = stall_seconds

    def miss_next_lookup(self) -> None:
        """Answer the next GET by external id with 404, as if the case came a moment later."""
        with self._lock:
            self._miss_next_lookup = True

    def expire_tokens(self) -> None:
        """End every session, as the org's session timeout does."""
        with self._lock:
            self.tokens.clear()

    def cases_with_key(self, key: str) -> list[dict[str, Any]]:
        with self._lock:
            return [c for c in self.cases.values() if c.get(EXTERNAL_ID_FIELD) == key]

    def comments_on(self, case_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [c for c in self.comments.values() if c["ParentId"] == case_id]

    def requests_to(self, method: str, path_part: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.method == method and path_part in r.path]

    # --- the admin's Flows (the body handoff's webhook_setup asks for) ------------------

    def agent_comment(
        self, case_id: str, text: str, *, author: str = "Dana Agent", published: bool = True
    ) -> dict[str, Any]:
        """Add an agent's case comment; return the body its Flow callout sends."""
        comment = self._add_comment(case_id, text, published, author)
        return self._comment_body(comment, "Standard")

    def customer_comment(
        self, case_id: str, text: str, user_type: str = "Standard"
    ) -> dict[str, Any]:
        """Return the Flow body for an existing comment by text (our echo), or a portal user's."""
        with self._lock:
            comment = next((c for c in self.comments_on(case_id) if c["CommentBody"] == text), None)
        comment = comment or self._add_comment(case_id, text, True, "Ann Portal")
        return self._comment_body(comment, user_type)

    def close_case(self, case_id: str, status: str = "Closed") -> dict[str, Any]:
        """Close the case; return the body of the Case Flow's callout."""
        with self._lock:
            case = self.cases[case_id]
            case.update(Status=status, IsClosed=status == "Closed", LastModifiedDate=_now())
            return {
                "event_id": f"{case_id}-{case['LastModifiedDate']}",
                "case_id": case_id,
                "type": "status",
                "status": case["Status"],
                "is_closed": case["IsClosed"],
            }

    @staticmethod
    def flow_request(payload: dict[str, Any], token: str) -> tuple[bytes, dict[str, str]]:
        """Serialize a Flow body with the headers its named credential adds."""
        body = json.dumps(payload).encode()
        return body, {
            "content-type": "application/json",
            "x-handoff-token": token,
            "user-agent": "SFDC-Callout/61.0",
        }

    def _comment_body(self, comment: dict[str, Any], user_type: str) -> dict[str, Any]:
        return {
            "event_id": comment["Id"],
            "case_id": comment["ParentId"],
            "type": "comment",
            "is_published": comment["IsPublished"],
            "created_by_name": comment["CreatedByName"],
            "created_by_type": user_type,
            "comment": comment["CommentBody"],
        }

    # --- the API -----------------------------------------------------------------------

    def _wrap(self, handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            body: Any = raw.decode(errors="replace") if raw else None
            if raw and request.headers.get("content-type", "").startswith("application/json"):
                with contextlib.suppress(ValueError):
                    body = json.loads(raw)
            elif raw and "form-urlencoded" in request.headers.get("content-type", ""):
                body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            received = Received.of(request, body)
            with self._lock:
                self.requests.append(received)
            try:
                response: Response = await handler(request, body)
            except SalesforceError as error:
                response = _errors(error)
            received.status = response.status_code
            return response

        return endpoint

    def _api(self, handler: Any) -> Any:
        async def authed(request: Request, body: Any) -> Response:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            with self._lock:
                if scheme != "Bearer" or token not in self.tokens:
                    raise SalesforceError(401, "INVALID_SESSION_ID", "Session expired or invalid")
                if self._denied > 0:
                    self._denied -= 1
                    raise SalesforceError(
                        403,
                        "INSUFFICIENT_ACCESS_OR_READONLY",
                        "insufficient access rights on object id",
                    )
                spent = self._limited > 0 or time.monotonic() < self._limited_until
                self._limited -= self._limited > 0
                if spent:
                    raise SalesforceError(
                        403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."
                    )
            if request.method in ("POST", "PATCH") and not isinstance(body, dict):
                raise SalesforceError(400, "JSON_PARSER_ERROR", "The request body is not JSON")
            result: Response = await handler(request, body)
            return result

        return self._wrap(authed)

    def _assertion_problem(self, assertion: str) -> str | None:
        """Why Salesforce would refuse this JWT bearer assertion, or None when it is good."""
        try:
            claims = jwt.decode(
                assertion,
                self.jwt_key.public_key(),
                algorithms=["RS256"],
                audience=self.audience,
                options={"require": ["iss", "sub", "aud", "exp"]},
            )
        except jwt.InvalidTokenError:
            return "invalid assertion"
        if claims["iss"] != self.client_id:
            return "invalid client credentials"
        if claims["exp"] > time.time() + 5 * 60:
            return "invalid assertion"  # too far in the future: at most 3 minutes (+ skew)
        if claims["sub"] != self.username:
            return "user hasn't approved this consumer"
        return None

    async def _token(self, request: Request, body: Any) -> Response:
        form = body if isinstance(body, dict) else {}
        grant = form.get("grant_type")
        if grant == JWT_BEARER:
            problem = self._assertion_problem(str(form.get("assertion", "")))
            if problem is not None:
                return _oauth_error("invalid_grant", problem)
        elif grant != "client_credentials":
            return _oauth_error("unsupported_grant_type", "grant type not supported")
        elif (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return _oauth_error("invalid_client", "invalid client credentials")
        token = f"{ORG_ID[:15]}!{secrets.token_urlsafe(48)}"
        issued_at = str(int(time.time() * 1000))
        digest = hmac.new(
            self.client_secret.encode(), (USER_ID + issued_at).encode(), hashlib.sha256
        )
        with self._lock:
            self.tokens.add(token)
        return JSONResponse(
            {
                "access_token": token,
                "signature": base64.b64encode(digest.digest()).decode(),
                "scope": "api",
                "instance_url": self.base_url,
                "id": f"{self.base_url}/id/{ORG_ID}/{USER_ID}",
                "token_type": "Bearer",
                "issued_at": issued_at,
            }
        )

    async def _limits(self, request: Request, body: Any) -> Response:
        used = len(self.requests)
        return JSONResponse({"DailyApiRequests": {"Max": 15000, "Remaining": 15000 - used}})

    async def _describe(self, request: Request, body: Any) -> Response:
        fields: list[dict[str, Any]] = [{"name": "Id", "type": "id", "externalId": False}]
        for name, length in CASE_FIELDS.items():
            field: dict[str, Any] = {
                "name": name,
                "type": "textarea" if name == "Description" else "string",
                "length": length,
                "externalId": name == EXTERNAL_ID_FIELD,
                "unique": name == EXTERNAL_ID_FIELD,
                "restrictedPicklist": False,
                "picklistValues": [],
            }
            if name in PICKLISTS:
                field["type"] = "picklist"
                field["restrictedPicklist"] = self.restricted[name]
                field["picklistValues"] = [
                    {
                        "active": v in PICKLISTS[name],
                        "defaultValue": v == "New",
                        "label": self.labels.get(v, v),
                        "value": v,
                    }
                    for v in [*PICKLISTS[name], *self.inactive.get(name, [])]
                ]
            fields.append(field)
        return JSONResponse({"name": "Case", "createable": True, "fields": fields})

    async def _case(self, request: Request, body: Any) -> Response:
        with self._lock:
            case = self.cases.get(request.path_params["case_id"])
        if case is None:
            raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
        return JSONResponse(self._case_json(case))

    async def _by_external_id(self, request: Request, body: Any) -> Response:
        field, value = request.path_params["field"], request.path_params["value"]
        if field != EXTERNAL_ID_FIELD:
            raise SalesforceError(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {field}",
            )
        with self._lock:
            matches = self.cases_with_key(value)
            if request.method == "GET":
                missed, self._miss_next_lookup = self._miss_next_lookup, False
                if not matches or missed:
                    raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
                wanted = request.query_params.get("fields")
                return JSONResponse(self._case_json(matches[0], wanted))
            self._validate(body)
            if matches:
                matches[0].update(body, LastModifiedDate=_now())
                version = float(request.path_params["version"].lstrip("v"))
                if version < 46:
                    return Response(status_code=204)
                answer = {"id": matches[0]["Id"], "success": True, "errors": [], "created": False}
                return JSONResponse(answer)
            case_id = id18(f"5005e{next(self._serial):010d}")
            self.cases[case_id] = {
                "Id": case_id,
                "Status": "New",
                "IsClosed": False,
                **body,
                EXTERNAL_ID_FIELD: value,
                "CreatedDate": _now(),
                "LastModifiedDate": _now(),
            }
            stall, self._drop_next_upsert = self._drop_next_upsert, None
        if stall:
            await self.stall(stall)
        answer = {"id": case_id, "success": True, "errors": [], "created": True}
        return JSONResponse(answer, status_code=201)

    def _validate(self, body: dict[str, Any]) -> None:
        for name, value in body.items():
            if name not in CASE_FIELDS:
                raise SalesforceError(
                    400, "INVALID_FIELD", f"No such column '{name}' on sobject of type Case"
                )
            if name in PICKLISTS and self.restricted[name] and value not in PICKLISTS[name]:
                raise SalesforceError(
                    400,
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"{name}: bad value for restricted picklist field: {value}",
                    [name],
                )
            limit = CASE_FIELDS[name]
            if isinstance(value, str) and len(value) > limit:
                raise SalesforceError(
                    400,
                    "STRING_TOO_LONG",
                    f"{name}: data value too large: {value[:20]}... (max length={limit})",
                    [name],
                )

    async def _comment(self, request: Request, body: dict[str, Any]) -> Response:
        text = body.get("CommentBody") or ""
        if len(text.encode()) > 4000:
            raise SalesforceError(
                400,
                "STRING_TOO_LONG",
                "Body: data value too large (max length=4000)",
                ["CommentBody"],
            )
        if body.get("ParentId") not in self.cases:
            raise SalesforceError(
                400,
                "INVALID_CROSS_REFERENCE_KEY",
                "Parent ID: id value of incorrect type or not found",
                ["ParentId"],
            )
        comment = self._add_comment(body["ParentId"], text, bool(body.get("IsPublished")))
        return JSONResponse({"id": comment["Id"], "success": True, "errors": []}, status_code=201)

    # --- storage -----------------------------------------------------------------------

    def _add_comment(
        self, case_id: str, text: str, published: bool, author: str = "Integration User"
    ) -> dict[str, Any]:
        with self._lock:
            comment_id = id18(f"00a5e{next(self._serial):010d}")
            comment = {
                "Id": comment_id,
                "ParentId": case_id,
                "CommentBody": text,
                "IsPublished": published,
                "CreatedByName": author,
                "CreatedDate": _now(),
            }
            self.comments[comment_id] = comment
            return comment

    def _case_json(self, case: dict[str, Any], fields: str | None = None) -> dict[str, Any]:
        url = f"/services/data/v61.0/sobjects/Case/{case['Id']}"
        record = dict(case)
        if fields:
            record = {k: case.get(k) for k in fields.split(",")}
        return {"attributes": {"type": "Case", "url": url}, **record}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
