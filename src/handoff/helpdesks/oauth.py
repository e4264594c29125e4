"""OAuth 2.0 tokens a connector lives on, and where they are kept between calls.

A connector never keeps an access token to itself: its calls go out through `TokenAuth`, which asks
the integration's `TokenStore`. The store hands out the current token and, when it is missing,
about to expire or refused, has the connector mint a new one — once, however many tasks or
processes need it at the same moment. That matters most where the refresh token rotates (Zendesk
deletes the old pair on every refresh): two concurrent refreshes with one refresh token leave one
of them holding a dead token, and a rotated token not written down at once is lost for good.

The service keeps tokens in the database (`service.oauth.StoredTokens`); `MemoryTokens` keeps
them in the process, for a connect-time check and for tests of a connector alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import httpx
from pydantic import SecretStr

from handoff.helpdesks import common
from handoff.helpdesks.errors import InvalidCredentials, RateLimited, Unavailable

# Refresh this long before the announced expiry, so a call never leaves with a token that
# dies on the way.
EXPIRY_MARGIN_SECONDS = 120.0
# Token endpoints that throttle say so in the error code (Salesforce, RFC 8628), often without
# Retry-After; such grants are tried again after a minute, not refused as bad credentials.
SLOW_DOWN = frozenset({"rate_limit_exceeded", "slow_down"})
SLOW_DOWN_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class OAuthTokens:
    """An access token, the refresh token that renews it (if any), and when it expires."""

    access_token: str
    refresh_token: str | None = None
    expires_at: float | None = None  # Unix time; None when the platform announces no expiry

    def usable(self, *, now: float | None = None) -> bool:
        if self.expires_at is None:
            return True
        return (now if now is not None else time.time()) < self.expires_at - EXPIRY_MARGIN_SECONDS

    @classmethod
    def from_grant(
        cls,
        answer: Mapping[str, Any],
        *,
        keep_refresh: str | None = None,
        lifetime_if_unsaid: float | None = None,
    ) -> OAuthTokens:
        """Read a token endpoint's answer; a refresh that returns no refresh token keeps ours."""
        lifetime = answer.get("expires_in") or lifetime_if_unsaid
        return cls(
            access_token=str(answer["access_token"]),
            refresh_token=str(answer.get("refresh_token") or keep_refresh or "") or None,
            expires_at=time.time() + float(lifetime) if lifetime else None,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OAuthTokens:
        return cls(
            access_token=str(data["access_token"]),
            refresh_token=data.get("refresh_token"),
            expires_at=data.get("expires_at"),
        )


Mint = Callable[[OAuthTokens | None], Awaitable[OAuthTokens]]


class TokenStore(Protocol):
    """Where one integration's tokens live, shared by everything that calls the platform."""

    async def token(self, mint: Mint, *, stale: str | None = None) -> OAuthTokens:
        """Return usable tokens whose access token is not `stale`.

        When there are none, call `mint` with the tokens held so far (None before the
        first) exactly once among all concurrent callers, keep what it returns, and return it.
        """
        ...


class MemoryTokens:
    """Tokens kept in this process only."""

    def __init__(self, tokens: OAuthTokens | None = None) -> None:
        self._tokens = tokens
        self._lock = asyncio.Lock()

    @property
    def current(self) -> OAuthTokens | None:
        return self._tokens

    async def token(self, mint: Mint, *, stale: str | None = None) -> OAuthTokens:
        async with self._lock:  # waiters find the token the first caller minted
            held = self._tokens
            if held is not None and held.usable() and held.access_token != stale:
                return held
            self._tokens = await mint(held)
            return self._tokens


class TokenAuth(httpx.Auth):
    """Sign each request with the store's access token; on a 401, renew it once and resend once.

    The store decides when to renew: before the call when the token is near its expiry, and
    once among all concurrent callers (under its own lock, and a lease across processes),
    keeping what the mint returns. A 401 names the refused token `stale`, so of many calls
    refused at once the first renews it and the others resend with the token it got. Hence no
    lock here: the store's is the one shared by every connector of the integration.
    """

    def __init__(self, tokens: TokenStore, mint: Mint, *, scheme: str = "Bearer") -> None:
        self._tokens = tokens
        self._mint = mint
        self._scheme = scheme  # Zoho wants `Zoho-oauthtoken`

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._access_token()
        response = yield self._sign(request, token)
        if response.status_code != 401:
            return
        # Free the refused answer's connection before the mint needs one from the same pool.
        await response.aread()
        yield self._sign(request, await self._access_token(stale=token))  # a second 401 stands

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        # The base class would send the request unsigned; the store can only be awaited.
        raise RuntimeError("TokenAuth signs requests of an httpx.AsyncClient only")

    async def _access_token(self, stale: str | None = None) -> str:
        return (await self._tokens.token(self._mint, stale=stale)).access_token

    def _sign(self, request: httpx.Request, token: str) -> httpx.Request:
        request.headers["Authorization"] = f"{self._scheme} {token}"
        return request


class BearerToken(httpx.Auth):
    """Sign each request with a token that never changes (a private app's); a 401 stands."""

    def __init__(self, token: str) -> None:
        self._authorization = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._authorization
        yield request


@runtime_checkable
class AuthorizationCodeApp(Protocol):
    """A connector whose connect form can use the OAuth authorization code flow."""

    def authorize_url(self, redirect_uri: str, state: str) -> str | None:
        """Return where to send the admin to approve access; None when the form uses no OAuth."""
        ...

    async def exchange_code(self, code: str, redirect_uri: str) -> OAuthTokens:
        """Trade the code the platform sent back for the first tokens."""
        ...


def client_fields(client_id: str | None, client_secret: SecretStr | None) -> dict[str, str]:
    """Return the OAuth client a grant names; blanks when unset, for the platform to refuse."""
    secret = client_secret.get_secret_value() if client_secret else ""
    return {"client_id": client_id or "", "client_secret": secret}


async def grant(
    http: httpx.AsyncClient,
    url: str,
    *,
    platform: str,
    form: Mapping[str, str] | None = None,
    json: Mapping[str, str] | None = None,
    keep_refresh: str | None = None,
    lifetime_if_unsaid: float | None = None,
    refused: str = "the grant",
) -> OAuthTokens:
    """POST one grant to a token endpoint and read its answer the OAuth 2.0 way (RFC 6749 §5).

    `lifetime_if_unsaid` bounds a token whose answer has no `expires_in`, so it is renewed
    before the platform's own (unannounced) session end rather than after a refused call;
    `refused` names what the admin should check when the endpoint says no.
    """
    request = http.build_request(
        "POST", url, data=form, json=json, headers={"Accept": "application/json"}
    )
    response = await common.send(http, request, platform=platform)
    if response.status_code == 429:
        wait = common.retry_after(response.headers)
        raise RateLimited(f"{platform} token endpoint: too many requests", wait)
    if response.status_code >= 500:
        raise Unavailable(f"{platform} token endpoint answered {common.status_reason(response)}")
    body = common.json_body(response)
    answer: dict[str, Any] = body if isinstance(body, dict) else {}
    if response.status_code == 200 and answer.get("access_token"):
        return OAuthTokens.from_grant(
            answer, keep_refresh=keep_refresh, lifetime_if_unsaid=lifetime_if_unsaid
        )
    # The OAuth error code only (RFC 6749 §5.2): error_description is free text.
    error = answer.get("error") or answer.get("status")
    reason = common.status_reason(response, [error])
    if isinstance(error, str) and error in SLOW_DOWN:
        wait = common.retry_after(response.headers) or SLOW_DOWN_SECONDS
        raise RateLimited(f"{platform} token endpoint: {reason}", wait)
    raise InvalidCredentials(f"{platform} refused {refused} ({reason}); connect again")
