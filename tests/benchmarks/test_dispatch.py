"""`handoff bench dispatch`: every escalation becomes one ticket, and the figures agree."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from rich.console import Console

from handoff.benchmarks.dispatch import (
    DispatchConfig,
    DispatchResult,
    Throughput,
    run_dispatch_benchmark,
)
from handoff.benchmarks.fake_helpdesk import WINDOW_SECONDS, MinuteWindow
from handoff.cli.dispatch_bench import render_dispatch
from handoff.decide import Encoder
from tests.conftest import BACKENDS, fresh_database_url


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("workers", [1, 2])
async def test_every_escalation_becomes_one_ticket(
    backend: str, workers: int, tmp_path: Path, encoder: Encoder
) -> None:
    url = await asyncio.to_thread(fresh_database_url, backend, tmp_path)
    config = DispatchConfig(
        tickets=10, latency_ms=20, workers=workers, database_url=url, timeout_seconds=60
    )
    seen: list[int] = []

    result = await run_dispatch_benchmark(config, progress=seen.append, encoder=encoder)

    assert result.escalations == 10
    assert (result.lost, result.duplicated) == (0, 0)
    assert result.dispatch.tickets == len(result.wait_ms) == 10
    assert seen[-1] == 10
    # Each ticket waited at least the fake's answer, and the percentiles are ordered.
    assert min(result.wait_ms) >= 20
    p50, p99 = result.percentile_ms(0.5), result.percentile_ms(0.99)
    assert p50 is not None and p99 is not None and p50 <= p99 <= max(result.wait_ms)
    figures = result.to_json()
    assert figures["share_of_limit"] == pytest.approx(result.dispatch.per_minute / 700, abs=1e-3)
    assert figures["ratio_to_baseline"] == pytest.approx(
        result.dispatch.per_minute / result.baseline.per_minute, abs=0.01
    )
    assert result.baseline.tickets == 10
    assert result.steady.tickets == 9 and result.steady.seconds <= result.dispatch.seconds
    assert figures["database"] == ("sqlite" if backend == "sqlite" else "postgresql")


async def test_a_steady_rate_spreads_the_users_and_times_what_the_service_adds(
    tmp_path: Path, encoder: Encoder
) -> None:
    url = await asyncio.to_thread(fresh_database_url, "sqlite", tmp_path)
    config = DispatchConfig(
        tickets=6, latency_ms=20, rate_per_min=240, database_url=url, timeout_seconds=60
    )

    result = await run_dispatch_benchmark(config, encoder=encoder)

    assert (result.escalations, result.lost, result.duplicated) == (6, 0, 0)
    # Six users a quarter of a second apart: the last asks 1.25 s after the first.
    assert result.dispatch.seconds >= 1.25
    assert len(result.beyond_helpdesk_ms) == 6
    # Sent to ticket, less the fake's 20 ms, is at most the whole run, and the message
    # stored to the ticket is at least the fake's latency.
    assert max(result.beyond_helpdesk_ms) <= 1000 * result.dispatch.seconds
    assert min(result.wait_ms) >= 20
    figures = result.to_json()
    assert figures["rate_per_min"] == 240
    assert figures["beyond_helpdesk_p50_ms"] <= figures["beyond_helpdesk_p99_ms"]


def test_the_window_refuses_past_the_limit_until_a_call_leaves_it() -> None:
    window = MinuteWindow(limit=2)
    assert window.admit(100.0) is None
    assert window.admit(110.0) is None
    assert window.admit(120.0) == pytest.approx(100.0 + WINDOW_SECONDS - 120.0)
    assert window.admit(100.0 + WINDOW_SECONDS) is None  # the first call has left


def test_the_table_shows_both_runs_and_the_losses() -> None:
    result = DispatchResult(
        config=DispatchConfig(tickets=4, limit_per_min=100),
        backend="sqlite",
        escalations=4,
        dispatch=Throughput(4, 6.0),
        steady=Throughput(3, 4.0),
        wait_ms=[300.0, 400.0, 500.0, 900.0],
        beyond_helpdesk_ms=[90.0, 150.0, 250.0, 700.0],
        lost=0,
        duplicated=0,
        refused=3,
        baseline=Throughput(4, 12.0),
    )
    console = Console(record=True, width=200)

    render_dispatch(result, console)

    text = console.export_text()
    assert "handoff outbox" in text and "sequential httpx loop" in text
    assert "40%" in text  # 40 tickets a minute of a 100 limit
    assert "lost 0, duplicated 0, 429s 3; outbox / loop = 2.0x" in text
    assert "first to last ticket" in text and "45%" in text  # 3 tickets in 4 s of 100/min
    assert "beyond the fake's 200 ms: p50 250 ms, p99 700 ms" in text
