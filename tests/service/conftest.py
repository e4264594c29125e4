"""A service runtime per test, on each database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from handoff.decide import Encoder
from handoff.service.runtime import Handoff
from tests.conftest import BACKENDS
from tests.service.support import runtime


@pytest.fixture(params=BACKENDS)
async def hf(
    request: pytest.FixtureRequest, tmp_path: Path, encoder: Encoder
) -> AsyncIterator[Handoff]:
    async with runtime(request.param, tmp_path, encoder) as service:
        yield service
