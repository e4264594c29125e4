"""TokenAuth: the one place a connector's OAuth calls get their token, renewed once on a 401."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from handoff.helpdesks.oauth import MemoryTokens, OAuthTokens, TokenAuth

URL = "https://api.example.test/me"


class Platform:
    """An API that takes only the newest access token, and the token endpoint that mints it."""

    def __init__(self) -> None:
        self.live = "t0"
        self.mints = 0
        self.seen: list[str] = []  # the Authorization header of every API call

    async def mint(self, held: OAuthTokens | None) -> OAuthTokens:
        await asyncio.sleep(0.01)  # let concurrent callers pile up behind the refresh
        self.mints += 1
        self.live = f"t{self.mints}"
        return OAuthTokens(self.live, f"r{self.mints}", expires_at=time.time() + 3600)

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request.headers["authorization"])
        if request.headers["authorization"].split(" ", 1)[1] != self.live:
            return httpx.Response(401, json={"error": "invalid_token"})
        return httpx.Response(200, json={"ok": True})


@pytest.fixture
def platform() -> Platform:
    return Platform()


@pytest.fixture
async def http(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(platform.answer)) as client:
        yield client


def held(access_token: str, *, expires_in: float = 3600) -> MemoryTokens:
    return MemoryTokens(OAuthTokens(access_token, "r0", expires_at=time.time() + expires_in))


async def test_a_live_token_signs_the_call_without_a_refresh(
    platform: Platform, http: httpx.AsyncClient
) -> None:
    auth = TokenAuth(held("t0"), platform.mint)
    response = await http.get(URL, auth=auth)
    assert response.status_code == 200
    assert platform.seen == ["Bearer t0"]
    assert platform.mints == 0


async def test_a_401_refreshes_once_resends_once_and_keeps_the_new_tokens(
    platform: Platform, http: httpx.AsyncClient
) -> None:
    tokens = held("revoked")
    response = await http.get(URL, auth=TokenAuth(tokens, platform.mint))
    assert response.status_code == 200
    assert platform.seen == ["Bearer revoked", "Bearer t1"]
    assert platform.mints == 1
    kept = tokens.current
    assert kept is not None and (kept.access_token, kept.refresh_token) == ("t1", "r1")


async def test_a_second_401_is_the_answer_not_another_refresh(
    platform: Platform, http: httpx.AsyncClient
) -> None:
    async def mint_refused(held: OAuthTokens | None) -> OAuthTokens:
        platform.mints += 1
        return OAuthTokens("also-refused", expires_at=time.time() + 3600)

    response = await http.get(URL, auth=TokenAuth(held("revoked"), mint_refused))
    assert response.status_code == 401
    assert platform.seen == ["Bearer revoked", "Bearer also-refused"]
    assert platform.mints == 1


async def test_concurrent_401s_share_one_refresh(
    platform: Platform, http: httpx.AsyncClient
) -> None:
    auth = TokenAuth(held("revoked"), platform.mint)
    answers = await asyncio.gather(*(http.get(URL, auth=auth) for _ in range(5)))
    assert [a.status_code for a in answers] == [200] * 5
    assert platform.mints == 1
    assert platform.seen.count("Bearer t1") == 5


async def test_a_token_near_its_expiry_is_refreshed_before_the_call(
    platform: Platform, http: httpx.AsyncClient
) -> None:
    auth = TokenAuth(held("t0", expires_in=30), platform.mint)
    response = await http.get(URL, auth=auth)
    assert response.status_code == 200
    assert platform.seen == ["Bearer t1"]  # no call left with the old token
    assert platform.mints == 1


async def test_the_scheme_is_the_platform_s(platform: Platform, http: httpx.AsyncClient) -> None:
    auth = TokenAuth(held("t0"), platform.mint, scheme="Zoho-oauthtoken")
    assert (await http.get(URL, auth=auth)).status_code == 200
    assert platform.seen == ["Zoho-oauthtoken t0"]


def test_a_sync_client_is_refused_rather_than_sent_unsigned(platform: Platform) -> None:
    auth = TokenAuth(held("t0"), platform.mint)
    client = httpx.Client(transport=httpx.MockTransport(platform.answer))
    with client, pytest.raises(RuntimeError, match="AsyncClient"):
        client.get(URL, auth=auth)
    assert platform.seen == []
