"""A service runtime whose AI answers with a model: the fake OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from handoff.decide import Encoder
from handoff.service.runtime import Handoff
from tests.fakes.openai_server import FakeOpenAI
from tests.service.support import runtime


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def hf(tmp_path: Path, encoder: Encoder, fake: FakeOpenAI) -> AsyncIterator[Handoff]:
    fake.reset()
    llm = {
        "llm_base_url": fake.base_url,
        "llm_model": "m",
        "llm_api_key": fake.api_key,
        "llm_timeout_seconds": 0.5,
    }
    async with runtime("sqlite", tmp_path, encoder, **llm) as service:
        yield service
