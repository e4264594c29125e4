"""`handoff bench dispatch --isolation`: a hanging helpdesk holds its share of the worker's
slots and no more; the inbox's and another helpdesk's tickets are made meanwhile."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from rich.console import Console

from handoff.benchmarks.isolation import IsolationConfig, run_isolation_benchmark
from handoff.cli.dispatch_bench import render_isolation
from handoff.decide import Encoder
from tests.conftest import BACKENDS, fresh_database_url


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_hanging_helpdesk_delays_neither_the_inbox_nor_another_helpdesk(
    backend: str, tmp_path: Path, encoder: Encoder
) -> None:
    url = await asyncio.to_thread(fresh_database_url, backend, tmp_path)
    # The timeout is far longer than the run: any ticket made waited on no hanging call.
    config = IsolationConfig(
        tickets=3,
        hanging_tickets=12,
        latency_ms=20,
        helpdesk_timeout_seconds=600,
        database_url=url,
        timeout_seconds=120,
    )

    result = await run_isolation_benchmark(config, encoder=encoder)

    for run in (result.calm, result.hanging):
        assert len(run.inbox_ms) == len(run.helpdesk_ms) == 3
        assert max(run.inbox_ms + run.helpdesk_ms) < 120_000
    hanging = result.hanging
    # Its share of the slots, every one still hanging when the other tickets were all made.
    assert hanging.share == hanging.slots // 2
    assert hanging.hung_calls == hanging.share
    assert hanging.hung_answered == 0
    assert result.calm.hung_calls == 0

    console = Console(record=True, width=200)
    render_isolation(result, console)
    text = console.export_text()
    assert "no helpdesk hanging" in text and "one helpdesk hanging" in text
    assert f"hanging calls in hand at the end: {hanging.share}" in text
