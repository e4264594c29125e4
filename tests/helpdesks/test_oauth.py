"""Connectors that sign in with OAuth: approval, code exchange and refreshes, against the fakes.

Zendesk rotates refresh tokens (each refresh deletes the old pair); HubSpot keeps them. Both run
the same checks; the rotation ones only where the platform rotates.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import BaseModel

from handoff.helpdesks import hubspot, zendesk
from handoff.helpdesks.errors import InvalidCredentials
from handoff.helpdesks.oauth import MemoryTokens, OAuthTokens
from tests.fakes.hubspot import FakeHubSpot
from tests.fakes.oauth import OAuthGrants
from tests.fakes.zendesk import FakeZendesk

REDIRECT = "https://handoff.example/api/v1/oauth/callback"


@dataclass(frozen=True)
class Platform:
    name: str
    fake: Callable[[], Any]
    connector: Any  # the connector class
    credentials: type[BaseModel]
    static_form: Callable[[Any], dict[str, Any]]  # the form without OAuth
    approval_path: str
    scope: str  # one scope the approval must ask for
    me_path: str  # a call verify_credentials makes

    def oauth_form(self, fake: Any, **changes: Any) -> BaseModel:
        base: dict[str, Any] = {
            "auth": "oauth",
            "client_id": fake.oauth.client_id,
            "client_secret": fake.oauth.client_secret,
            "base_url": fake.base_url,
        }
        if self.name == "zendesk":
            base["subdomain"] = fake.subdomain
        return self.credentials.model_validate({**base, **changes})


PLATFORMS = [
    Platform(
        "zendesk",
        FakeZendesk,
        zendesk.ZendeskHelpdesk,
        zendesk.Credentials,
        lambda f: {"subdomain": "acme", "email": f.email, "api_token": f.api_token},
        "/oauth/authorizations/new",
        "write",
        "/api/v2/users/me",
    ),
    Platform(
        "hubspot",
        FakeHubSpot,
        hubspot.HubSpotHelpdesk,
        hubspot.Credentials,
        lambda f: {"access_token": f.token, "base_url": f.base_url},
        "/oauth/authorize",
        "tickets",
        "/crm/v3/pipelines/tickets",
    ),
]


@pytest.fixture(params=PLATFORMS, ids=lambda p: p.name)
def platform(request: pytest.FixtureRequest) -> Platform:
    spec: Platform = request.param
    return spec


@pytest.fixture
def fake(platform: Platform) -> Iterator[Any]:
    with platform.fake() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=2.0) as client:
        yield client


def grants(fake: Any) -> OAuthGrants:
    oauth: OAuthGrants = fake.oauth
    return oauth


async def approve(http: httpx.AsyncClient, connector: Any) -> str:
    """Open the approval page as the admin's browser would; return the code sent back."""
    url = connector.authorize_url(REDIRECT, "state-123")
    assert url is not None
    answer = await http.get(url)
    assert answer.status_code == 302, answer.text
    back = parse_qs(urlsplit(answer.headers["location"]).query)
    assert back["state"] == ["state-123"]
    return back["code"][0]


async def connected(
    platform: Platform, fake: Any, http: httpx.AsyncClient
) -> tuple[Any, MemoryTokens]:
    first = platform.connector(platform.oauth_form(fake), http=http, webhook_secret="s")
    tokens = MemoryTokens(await first.exchange_code(await approve(http, first), REDIRECT))
    form = platform.oauth_form(fake)
    return platform.connector(form, http=http, webhook_secret="s", tokens=tokens), tokens


def refused(fake: Any, path: str) -> list[Any]:
    return [r for r in fake.requests if r.path.startswith(path) and r.status == 401]


def test_the_form_asks_for_what_its_sign_in_needs(platform: Platform) -> None:
    with pytest.raises(ValueError, match="client_id and client_secret required"):
        platform.credentials.model_validate({"subdomain": "acme", "auth": "oauth"})


def test_a_static_token_form_has_no_approval_page(platform: Platform, fake: Any) -> None:
    form = platform.credentials.model_validate(platform.static_form(fake))
    connector = platform.connector(form, http=httpx.AsyncClient(), webhook_secret="s")
    assert connector.authorize_url(REDIRECT, "x") is None


async def test_the_approval_page_asks_for_our_client_and_scopes(
    platform: Platform, fake: Any, http: httpx.AsyncClient
) -> None:
    connector = platform.connector(platform.oauth_form(fake), http=http, webhook_secret="s")
    url = connector.authorize_url(REDIRECT, "state-123")
    assert url is not None and url.startswith(f"{fake.base_url}{platform.approval_path}?")
    query = parse_qs(urlsplit(url).query)
    assert query["client_id"] == [grants(fake).client_id]
    assert query["redirect_uri"] == [REDIRECT]
    assert platform.scope in query["scope"][0].split()


async def test_code_exchange_gives_tokens_that_call_the_api(
    platform: Platform, fake: Any, http: httpx.AsyncClient
) -> None:
    connector, tokens = await connected(platform, fake, http)
    held = tokens.current
    assert held is not None and held.refresh_token and held.expires_at is not None
    await connector.verify_credentials()
    call = [r for r in fake.requests if r.path.startswith(platform.me_path)][-1]
    assert call.headers["authorization"] == f"Bearer {held.access_token}"


async def test_a_code_is_good_once(platform: Platform, fake: Any, http: httpx.AsyncClient) -> None:
    connector = platform.connector(platform.oauth_form(fake), http=http, webhook_secret="s")
    code = await approve(http, connector)
    await connector.exchange_code(code, REDIRECT)
    with pytest.raises(InvalidCredentials, match="connect again"):
        await connector.exchange_code(code, REDIRECT)


async def test_a_wrong_client_secret_is_refused_readably(
    platform: Platform, fake: Any, http: httpx.AsyncClient
) -> None:
    form = platform.oauth_form(fake, client_secret="wrong")
    connector = platform.connector(form, http=http, webhook_secret="s")
    with pytest.raises(InvalidCredentials, match="refused the grant"):
        await connector.exchange_code(await approve(http, connector), REDIRECT)


async def test_an_expired_token_is_refreshed_once_and_kept(
    platform: Platform, fake: Any, http: httpx.AsyncClient
) -> None:
    connector, tokens = await connected(platform, fake, http)
    before = tokens.current
    assert before is not None
    grants(fake).expire_access_tokens()  # the platform refuses it: refresh once, then retry
    await connector.verify_credentials()
    after = tokens.current
    assert after is not None and after.access_token != before.access_token
    assert grants(fake).refreshes == 1
    assert after.refresh_token in grants(fake).refresh_tokens
    rotated = after.refresh_token != before.refresh_token
    assert rotated == grants(fake).rotate
    if rotated:
        assert before.refresh_token not in grants(fake).refresh_tokens  # the old one is dead


async def test_a_token_near_its_expiry_is_refreshed_before_the_call(
    platform: Platform, fake: Any, http: httpx.AsyncClient
) -> None:
    connector, tokens = await connected(platform, fake, http)
    held = tokens.current
    assert held is not None
    tokens._tokens = OAuthTokens(held.access_token, held.refresh_token, expires_at=0.0)
    await connector.verify_credentials()
    assert grants(fake).refreshes == 1
    assert not refused(fake, platform.me_path)  # no call left with the old token


async def test_concurrent_calls_share_one_refresh(
    platform: Platform, fake: Any, http: httpx.AsyncClient
) -> None:
    connector, _ = await connected(platform, fake, http)
    grants(fake).expire_access_tokens()
    await asyncio.gather(*(connector.verify_credentials() for _ in range(5)))
    # With a rotating refresh token, a second refresh would fail with invalid_grant.
    assert grants(fake).refreshes == 1


async def test_a_revoked_refresh_token_asks_for_approval_again(
    platform: Platform, fake: Any, http: httpx.AsyncClient
) -> None:
    connector, _ = await connected(platform, fake, http)
    grants(fake).expire_access_tokens()
    grants(fake).refresh_tokens.clear()
    with pytest.raises(InvalidCredentials, match="connect again"):
        await connector.verify_credentials()
