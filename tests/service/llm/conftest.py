"""A service runtime whose AI answers with a model: the fake OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from handoff.decide import Encoder
from handoff.service.runtime import Handoff
from tests.fakes.openai_server import FakeOpenAI
from tests.service.support import runtime


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def llm_settings(fake: FakeOpenAI, timeout_seconds: float) -> dict[str, Any]:
    return {
        "llm_base_url": fake.base_url,
        "llm_model": "m",
        "llm_api_key": fake.api_key,
        "llm_timeout_seconds": timeout_seconds,
    }


@pytest.fixture
async def hf(tmp_path: Path, encoder: Encoder, fake: FakeOpenAI) -> AsyncIterator[Handoff]:
    fake.reset()
    async with runtime("sqlite", tmp_path, encoder, **llm_settings(fake, 0.5)) as service:
        yield service


@pytest.fixture
async def patient_hf(tmp_path: Path, encoder: Encoder, fake: FakeOpenAI) -> AsyncIterator[Handoff]:
    """A runtime that waits for a model taking seconds (10 s timeout)."""
    fake.reset()
    async with runtime("sqlite", tmp_path, encoder, **llm_settings(fake, 10)) as service:
        yield service
