"""Helpers for tests that drive the service core directly, on a real database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from handoff.decide import Encoder
from handoff.domain import Contact
from handoff.service import conversations
from handoff.service.demo import ensure_demo
from handoff.service.runtime import Handoff
from handoff.settings import Settings
from handoff.store.migrate import upgrade
from tests.conftest import fresh_database_url

SECRET_KEY = "test-secret"


@asynccontextmanager
async def runtime(
    backend: str, tmp_path: Path, encoder: Encoder | None = None, **settings: Any
) -> AsyncIterator[Handoff]:
    """A service runtime on a fresh, migrated database of the given backend."""
    url = await asyncio.to_thread(fresh_database_url, backend, tmp_path)
    await asyncio.to_thread(upgrade, url)
    configured = Settings(
        database_url=url,
        data_dir=tmp_path,
        secret_key=SECRET_KEY,
        **{"allow_private_urls": True, **settings},  # the fakes listen on 127.0.0.1
    )
    hf = Handoff(configured, encoder=encoder)
    try:
        yield hf
    finally:
        await hf.close()


async def open_chat(hf: Handoff, email: str | None = "kim@example.com") -> str:
    """Open a widget conversation on the demo agent; return its id."""
    async with hf.transaction() as session:
        demo = await ensure_demo(session, hf.settings.data_dir)
        assert demo is not None
        conversation, _, _ = await conversations.start_conversation(
            hf, session, agent_id=demo.agent_id, channel="widget", contact=Contact(email=email)
        )
        return conversation.id


async def say(hf: Handoff, conversation_id: str, text: str) -> conversations.Reply:
    """Send one user message as the channel API does: the AI's draft first, then the
    message's own unit of work."""
    return await conversations.take_message(hf, conversation_id, text)
