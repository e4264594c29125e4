"""Zendesk over OAuth: approval, code exchange and rotating refresh tokens, against the fake."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from handoff.helpdesks.errors import InvalidCredentials
from handoff.helpdesks.oauth import MemoryTokens, OAuthTokens
from handoff.helpdesks.zendesk import Credentials, ZendeskHelpdesk
from tests.fakes.zendesk import FakeZendesk

REDIRECT = "https://handoff.example/api/v1/oauth/callback"


@pytest.fixture
def fake() -> Iterator[FakeZendesk]:
    with FakeZendesk() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=2.0) as client:
        yield client


def oauth_form(fake: FakeZendesk, **changes: object) -> Credentials:
    return Credentials.model_validate(
        {
            "subdomain": fake.subdomain,
            "auth": "oauth",
            "client_id": fake.oauth_client_id,
            "client_secret": fake.oauth_client_secret,
            "base_url": fake.base_url,
            **changes,
        }
    )


async def approve(fake: FakeZendesk, http: httpx.AsyncClient, zendesk: ZendeskHelpdesk) -> str:
    """Open the approval page as the admin's browser would; return the code sent back."""
    url = zendesk.authorize_url(REDIRECT, "state-123")
    assert url is not None
    answer = await http.get(url)
    assert answer.status_code == 302
    back = parse_qs(urlsplit(answer.headers["location"]).query)
    assert back["state"] == ["state-123"]
    return back["code"][0]


def test_the_form_asks_for_what_its_sign_in_needs() -> None:
    with pytest.raises(ValueError, match="client_id and client_secret required"):
        Credentials.model_validate({"subdomain": "acme", "auth": "oauth"})
    with pytest.raises(ValueError, match="email and api_token required"):
        Credentials.model_validate({"subdomain": "acme"})


def test_an_api_token_form_has_no_approval_page(fake: FakeZendesk) -> None:
    form = Credentials.model_validate(
        {"subdomain": "acme", "email": fake.email, "api_token": fake.api_token}
    )
    zendesk = ZendeskHelpdesk(form, http=httpx.AsyncClient(), webhook_secret="s")
    assert zendesk.authorize_url(REDIRECT, "x") is None


async def test_the_approval_page_asks_for_our_client_and_scopes(
    fake: FakeZendesk, http: httpx.AsyncClient
) -> None:
    zendesk = ZendeskHelpdesk(oauth_form(fake), http=http, webhook_secret="s")
    url = zendesk.authorize_url(REDIRECT, "state-123")
    assert url is not None and url.startswith(f"{fake.base_url}/oauth/authorizations/new?")
    query = parse_qs(urlsplit(url).query)
    assert query["client_id"] == [fake.oauth_client_id]
    assert query["redirect_uri"] == [REDIRECT]
    assert query["response_type"] == ["code"]
    assert query["scope"] == ["read write"]


async def test_code_exchange_gives_tokens_that_call_the_api(
    fake: FakeZendesk, http: httpx.AsyncClient
) -> None:
    zendesk = ZendeskHelpdesk(oauth_form(fake), http=http, webhook_secret="s")
    tokens = await zendesk.exchange_code(await approve(fake, http, zendesk), REDIRECT)
    assert tokens.refresh_token and tokens.expires_at is not None
    connected = ZendeskHelpdesk(
        oauth_form(fake), http=http, webhook_secret="s", tokens=MemoryTokens(tokens)
    )
    await connected.verify_credentials()
    me = fake.requests_to("GET", "/api/v2/users/me")[-1]
    assert me.headers["authorization"] == f"Bearer {tokens.access_token}"


async def test_a_code_is_good_once(fake: FakeZendesk, http: httpx.AsyncClient) -> None:
    zendesk = ZendeskHelpdesk(oauth_form(fake), http=http, webhook_secret="s")
    code = await approve(fake, http, zendesk)
    await zendesk.exchange_code(code, REDIRECT)
    with pytest.raises(InvalidCredentials, match="invalid_grant"):
        await zendesk.exchange_code(code, REDIRECT)


async def test_a_wrong_client_secret_is_refused_readably(
    fake: FakeZendesk, http: httpx.AsyncClient
) -> None:
    zendesk = ZendeskHelpdesk(
        oauth_form(fake, client_secret="wrong"), http=http, webhook_secret="s"
    )
    with pytest.raises(InvalidCredentials, match="invalid_client"):
        await zendesk.exchange_code(await approve(fake, http, zendesk), REDIRECT)


async def _connected(
    fake: FakeZendesk, http: httpx.AsyncClient
) -> tuple[ZendeskHelpdesk, MemoryTokens]:
    first = ZendeskHelpdesk(oauth_form(fake), http=http, webhook_secret="s")
    tokens = MemoryTokens(await first.exchange_code(await approve(fake, http, first), REDIRECT))
    return ZendeskHelpdesk(oauth_form(fake), http=http, webhook_secret="s", tokens=tokens), tokens


async def test_an_expired_token_is_refreshed_and_the_rotated_pair_kept(
    fake: FakeZendesk, http: httpx.AsyncClient
) -> None:
    zendesk, tokens = await _connected(fake, http)
    before = tokens.current
    assert before is not None
    fake.expire_access_tokens()  # Zendesk refuses it with a 401: refresh once, then retry
    await zendesk.verify_credentials()
    after = tokens.current
    assert after is not None
    assert after.access_token != before.access_token
    assert after.refresh_token != before.refresh_token  # rotated
    assert fake.refreshes == 1
    assert before.refresh_token not in fake.refresh_tokens  # the old one is dead


async def test_a_token_near_its_expiry_is_refreshed_before_the_call(
    fake: FakeZendesk, http: httpx.AsyncClient
) -> None:
    zendesk, tokens = await _connected(fake, http)
    held = tokens.current
    assert held is not None
    tokens._tokens = OAuthTokens(held.access_token, held.refresh_token, expires_at=0.0)
    await zendesk.verify_credentials()
    assert fake.refreshes == 1
    assert not [r for r in fake.requests_to("GET", "/api/v2/users/me") if r.status == 401]


async def test_concurrent_calls_share_one_refresh(
    fake: FakeZendesk, http: httpx.AsyncClient
) -> None:
    zendesk, _ = await _connected(fake, http)
    fake.expire_access_tokens()
    await asyncio.gather(*(zendesk.verify_credentials() for _ in range(5)))
    # Two refreshes with one rotating refresh token would fail the second with invalid_grant.
    assert fake.refreshes == 1


async def test_a_revoked_refresh_token_asks_for_approval_again(
    fake: FakeZendesk, http: httpx.AsyncClient
) -> None:
    zendesk, _ = await _connected(fake, http)
    fake.expire_access_tokens()
    fake.refresh_tokens.clear()
    with pytest.raises(InvalidCredentials, match=r"invalid_grant.*connect again"):
        await zendesk.verify_credentials()
