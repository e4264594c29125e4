"""Rotating OAuth tokens kept in the database: one refresh at a time across processes.

Zendesk deletes the old token pair on every refresh, so two processes refreshing with the same
refresh token leave one of them with `invalid_grant`, and a rotated token that is not written
down at once is lost. These tests run real connectors against the fake Zendesk, with the
tokens in a real database, from several OS processes at once.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Iterator
from multiprocessing.synchronize import Barrier
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from handoff.helpdesks.oauth import OAuthTokens
from handoff.service import integrations
from handoff.service.demo import ensure_demo
from handoff.service.runtime import Handoff
from handoff.settings import Settings
from handoff.store.models import Agent, Integration
from tests.fakes.zendesk import FakeZendesk
from tests.service.support import SECRET_KEY


@pytest.fixture
def fake() -> Iterator[FakeZendesk]:
    with FakeZendesk() as server:
        yield server


def oauth_form(fake: FakeZendesk) -> dict[str, Any]:
    return {
        "subdomain": fake.subdomain,
        "auth": "oauth",
        "client_id": fake.oauth.client_id,
        "client_secret": fake.oauth.client_secret,
        "base_url": fake.base_url,
    }


async def connect_with_oauth(hf: Handoff, fake: FakeZendesk) -> str:
    """Approve on the fake and come back through the callback logic; return the integration."""
    async with hf.transaction() as session:
        demo = await ensure_demo(session, hf.settings.data_dir)
        assert demo is not None
        agent = await session.get(Agent, demo.agent_id)
        assert agent is not None
        url = await integrations.start_authorization(hf, agent, "zendesk", oauth_form(fake))
    async with httpx.AsyncClient() as browser:
        back = parse_qs(urlsplit((await browser.get(url)).headers["location"]).query)
    _, integration = await integrations.finish_authorization(
        hf, state=back["state"][0], code=back["code"][0]
    )
    return integration.id


async def stored_tokens(hf: Handoff, integration_id: str) -> OAuthTokens:
    async with hf.transaction() as session:
        integration = await session.get(Integration, integration_id)
        assert integration is not None and integration.tokens
        return OAuthTokens.from_json(hf.vault.open(integration.tokens))


async def _verify_once(database_url: str, data_dir: str, integration_id: str) -> None:
    settings = Settings(
        database_url=database_url,
        data_dir=data_dir,
        secret_key=SECRET_KEY,
        allow_private_urls=True,  # the fake Zendesk listens on 127.0.0.1
    )
    hf = Handoff(settings)
    try:
        async with hf.transaction() as session:
            integration = await session.get(Integration, integration_id)
            assert integration is not None
            connector = integrations.connector_for(hf, integration)
        await connector.verify_credentials()
    finally:
        await hf.close()


def _process(database_url: str, data_dir: str, integration_id: str, barrier: Barrier) -> None:
    barrier.wait(timeout=60)  # every process calls Zendesk at the same moment
    asyncio.run(_verify_once(database_url, data_dir, integration_id))


async def test_tokens_from_the_approval_are_sealed_in_the_integration(
    hf: Handoff, fake: FakeZendesk
) -> None:
    integration_id = await connect_with_oauth(hf, fake)
    tokens = await stored_tokens(hf, integration_id)
    assert tokens.access_token in fake.oauth.access_tokens
    assert tokens.refresh_token in fake.oauth.refresh_tokens
    async with hf.transaction() as session:
        integration = await session.get(Integration, integration_id)
        assert integration is not None and integration.tokens
        assert tokens.refresh_token not in integration.tokens  # encrypted at rest


async def test_a_rotated_refresh_token_is_kept_for_the_next_connector(
    hf: Handoff, fake: FakeZendesk
) -> None:
    integration_id = await connect_with_oauth(hf, fake)
    first = await stored_tokens(hf, integration_id)
    for _ in range(2):  # each round builds a fresh connector, as each outbox job does
        fake.oauth.expire_access_tokens()
        await _verify_once(hf.settings.database_url, str(hf.settings.data_dir), integration_id)
    latest = await stored_tokens(hf, integration_id)
    assert fake.oauth.refreshes == 2
    assert latest.refresh_token in fake.oauth.refresh_tokens
    assert first.refresh_token not in fake.oauth.refresh_tokens


async def test_processes_refreshing_at_once_refresh_once(hf: Handoff, fake: FakeZendesk) -> None:
    integration_id = await connect_with_oauth(hf, fake)
    fake.oauth.expire_access_tokens()
    fake.oauth.delay = 1.0  # every process is waiting for tokens while the refresh runs
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(3)
    processes = [
        context.Process(
            target=_process,
            args=(hf.settings.database_url, str(hf.settings.data_dir), integration_id, barrier),
        )
        for _ in range(3)
    ]
    for process in processes:
        process.start()
    for process in processes:
        await asyncio.to_thread(process.join, 120)
    # A second refresh with the rotated-away token would have failed its process.
    assert [p.exitcode for p in processes] == [0, 0, 0]
    assert fake.oauth.refreshes == 1
    assert (await stored_tokens(hf, integration_id)).refresh_token in fake.oauth.refresh_tokens
